"""The Robot protocol: what navigation may ask of any robot (simulated, miio, fake firmware).

Frames and units: SI; the odometry frame starts at Pose(0, 0, 0) where the robot started, and
`goto` targets are given in that odometry frame (the robot steers by its own dead reckoning).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from maps.scan import Odometry, Scan


@runtime_checkable
class Robot(Protocol):
    """A lidar vacuum that can be driven and read. `SimulatedRobot` is the reference."""

    @property
    def time(self) -> float:
        """Robot clock, seconds since the robot started."""
        ...

    @property
    def bumper_pressed(self) -> bool:
        """True when the last command was stopped by contact."""
        ...

    def drive(self, v: float, w: float, dt: float) -> bool:
        """Drive at v m/s and w rad/s for dt s (stops at contact); True if the bumper fired."""
        ...

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        """Turn towards (x, y) (odometry frame, m), drive there; stops on contact or after
        `timeout` s. True if the target was reached."""
        ...

    def scans(self) -> list[Scan]:
        """The lidar revolutions completed since the last call, oldest first."""
        ...

    def odometry(self) -> Odometry:
        """The current dead-reckoned pose in the odometry frame."""
        ...
