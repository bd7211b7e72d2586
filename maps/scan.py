"""Sensor data types: one lidar revolution (`Scan`) and one wheel-odometry reading (`Odometry`).

A scan keeps three kinds of beam apart:
- hits: finite ranges in [range_min, range_max): an obstacle was seen there;
- no return: `inf` (the beam went out to range_max and saw nothing): it clears free space up to
  a cap and is never drawn as an obstacle;
- too close: finite ranges below range_min: the sensor cannot tell, the beam is ignored.
NaN or negative ranges are rejected: readers drop such beams and count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maps.geometry import Pose


@dataclass(slots=True)
class Scan:
    """One lidar revolution taken at `stamp` seconds.

    `angles` are in the sensor frame (radians, CCW, 0 = straight ahead); `sensor` is the sensor's
    mounting pose in the robot frame (for a lidar mounted off the robot centre).
    """

    ranges: np.ndarray  # (N,) float32 metres; inf = no return
    angles: np.ndarray  # (N,) float32 radians in the sensor frame
    stamp: float  # seconds
    range_min: float = 0.0  # metres
    range_max: float = np.inf  # metres; readings at or beyond it are no-return
    sensor: Pose = field(default_factory=Pose)
    duration: float = 0.0  # s from the first beam to the last (beams evenly spread in array
    # order); 0 for a scanner that is fast next to the robot's motion

    def __post_init__(self) -> None:
        ranges = np.asarray(self.ranges, dtype=np.float32)
        angles = np.asarray(self.angles, dtype=np.float32)
        if ranges.ndim != 1 or angles.shape != ranges.shape:
            raise ValueError(
                f"expected (N,) ranges and (N,) angles, got {ranges.shape} and {angles.shape}"
            )
        if np.isnan(ranges).any():
            raise ValueError(
                f"scan at t={self.stamp}: {int(np.isnan(ranges).sum())} NaN ranges; "
                "drop those beams before building the Scan"
            )
        if (ranges < 0).any():
            raise ValueError(
                f"scan at t={self.stamp}: {int((ranges < 0).sum())} negative ranges; "
                "drop those beams before building the Scan"
            )
        if not np.isfinite(angles).all():
            raise ValueError(f"scan at t={self.stamp}: non-finite beam angles")
        if not (np.isfinite(self.duration) and self.duration >= 0):
            raise ValueError(f"scan duration must be >= 0 s, got {self.duration}")
        if not (0.0 <= self.range_min < self.range_max):
            raise ValueError(
                f"need 0 <= range_min < range_max, got {self.range_min}, {self.range_max}"
            )
        ranges = ranges.copy()
        ranges[ranges >= self.range_max] = np.inf
        self.ranges = ranges
        self.angles = angles

    def __len__(self) -> int:
        return int(self.ranges.shape[0])

    @property
    def hit_mask(self) -> np.ndarray:
        """(N,) bool: beams that returned from an obstacle."""
        return np.isfinite(self.ranges) & (self.ranges >= self.range_min)

    @property
    def no_return_mask(self) -> np.ndarray:
        """(N,) bool: beams that saw nothing up to range_max."""
        return np.isinf(self.ranges)

    def points(self) -> np.ndarray:
        """(M, 2) float64 hit points in the robot frame, metres."""
        mask = self.hit_mask
        r = self.ranges[mask].astype(np.float64)
        a = self.angles[mask].astype(np.float64)
        local = np.column_stack((r * np.cos(a), r * np.sin(a)))
        return self.sensor.transform_points(local)

    def endpoints(self, pose: Pose) -> np.ndarray:
        """(M, 2) float64 world xy of the hits, for the robot at `pose`."""
        return pose.transform_points(self.points())

    def deskewed(self, v: float, w: float) -> Scan:
        """This scan as if every beam had been taken at `stamp`, for a robot moving at forward
        speed `v` (m/s) and turn rate `w` (rad/s) during the revolution.

        A spinning lidar on a moving robot measures each beam from a different pose; each hit is
        moved into the robot frame at `stamp` (constant velocity over the revolution) and
        expressed again as a range and bearing from the sensor there. No-return beams keep their
        range and turn with the robot. Returns self when there is nothing to correct.
        """
        n = len(self)
        if self.duration <= 0 or n < 2 or (v == 0 and w == 0):
            return self
        t = np.linspace(0.0, self.duration, n)
        th = w * t
        # robot displacement at each beam time (arc of a constant-velocity unicycle)
        small = np.abs(w) < 1e-9
        safe_w = np.where(small, 1.0, w)
        dx = np.where(small, v * t, v * np.sin(th) / safe_w)
        dy = np.where(small, 0.0, v * (1.0 - np.cos(th)) / safe_w)
        s = self.sensor
        a = self.angles.astype(np.float64) + s.theta + th  # beam direction, frame at stamp
        ox = dx + np.cos(th) * s.x - np.sin(th) * s.y  # sensor position at the beam time
        oy = dy + np.sin(th) * s.x + np.cos(th) * s.y
        hit = np.isfinite(self.ranges)
        r = np.where(hit, self.ranges, 0.0).astype(np.float64)
        px = ox + r * np.cos(a)
        py = oy + r * np.sin(a)
        # back to range and bearing from the sensor pose at stamp
        qx = np.cos(s.theta) * (px - s.x) + np.sin(s.theta) * (py - s.y)
        qy = -np.sin(s.theta) * (px - s.x) + np.cos(s.theta) * (py - s.y)
        ranges = np.where(hit, np.hypot(qx, qy), np.inf)
        angles = np.where(hit, np.arctan2(qy, qx), self.angles + th)
        return Scan(
            ranges.astype(np.float32),
            angles.astype(np.float32),
            self.stamp,
            self.range_min,
            self.range_max,
            self.sensor,
            0.0,
        )

    def origin(self, pose: Pose) -> Pose:
        """World pose of the sensor for the robot at `pose`."""
        return pose.compose(self.sensor)


@dataclass(frozen=True, slots=True)
class Odometry:
    """Wheel-odometry reading at `stamp` seconds: the dead-reckoned pose in the odometry frame.

    `v` (m/s) and `w` (rad/s) are the measured velocities where the source gives them.
    """

    pose: Pose
    stamp: float
    v: float = 0.0
    w: float = 0.0
