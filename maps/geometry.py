"""SE(2) poses: composition, inversion, point transforms and angle wrapping.

World frame: x right, y up, theta counter-clockwise in radians, normalised to (-pi, pi].
Lengths are metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Trajectory = np.ndarray  # (N, 3) float64 rows of x [m], y [m], theta [rad]


def wrap_angle(angle: float | np.ndarray) -> float | np.ndarray:
    """Wrap an angle (or an array of angles) into (-pi, pi]."""
    if isinstance(angle, float | int):
        if -math.pi < angle <= math.pi:
            return float(angle)
        wrapped = math.remainder(angle, 2.0 * math.pi)  # in [-pi, pi]
        return math.pi if wrapped <= -math.pi else wrapped
    wrapped = np.pi - np.mod(np.pi - np.asarray(angle, dtype=np.float64), 2.0 * np.pi)
    if np.ndim(wrapped) == 0:
        return float(wrapped)
    return wrapped


@dataclass(frozen=True, slots=True)
class Pose:
    """A rigid transform in the plane: position in metres, heading in radians (CCW).

    `a.compose(b)` is `a * b`: the pose `b`, given in the frame of `a`, expressed in the frame
    `a` lives in. `a.inverse().compose(b)` is `b` seen from `a`.
    """

    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.x) and math.isfinite(self.y) and math.isfinite(self.theta)):
            raise ValueError(f"pose must be finite, got ({self.x}, {self.y}, {self.theta})")
        object.__setattr__(self, "theta", wrap_angle(self.theta))

    def compose(self, other: Pose) -> Pose:
        c, s = math.cos(self.theta), math.sin(self.theta)
        return Pose(
            self.x + c * other.x - s * other.y,
            self.y + s * other.x + c * other.y,
            self.theta + other.theta,
        )

    def inverse(self) -> Pose:
        c, s = math.cos(self.theta), math.sin(self.theta)
        return Pose(-c * self.x - s * self.y, s * self.x - c * self.y, -self.theta)

    def between(self, other: Pose) -> Pose:
        """`other` expressed in this pose's frame (the relative motion from self to other)."""
        return self.inverse().compose(other)

    def transform_points(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from this pose's frame into the parent frame; (N, 2) float64."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"expected (N, 2) points, got shape {pts.shape}")
        c, s = math.cos(self.theta), math.sin(self.theta)
        out = np.empty_like(pts)
        out[:, 0] = c * pts[:, 0] - s * pts[:, 1] + self.x
        out[:, 1] = s * pts[:, 0] + c * pts[:, 1] + self.y
        return out

    def as_array(self) -> np.ndarray:
        """(3,) float64 array x, y, theta."""
        return np.array([self.x, self.y, self.theta], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray | tuple[float, float, float]) -> Pose:
        x, y, theta = (float(v) for v in values)
        return cls(x, y, theta)

    def distance_to(self, other: Pose) -> float:
        """Euclidean distance between the two positions, metres."""
        return math.hypot(other.x - self.x, other.y - self.y)
