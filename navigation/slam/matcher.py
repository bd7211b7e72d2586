"""Sub-cell scan matching: Gauss-Newton / Levenberg-Marquardt on a smooth map score.

The score of a point is the bilinearly interpolated value of a smoothed hit-probability field
(Hector SLAM's matcher, Kohlbrecher et al. 2011); the cost adds Cartographer's priors that keep
the pose near the initial guess (CeresScanMatcher2D: occupied-space, translation and rotation
weights). Units: metres, radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maps.geometry import Pose, wrap_angle
from navigation import _kernels

MIN_P = 0.1  # score of unknown or free space (Cartographer's kMinProbability)
MAX_P = 0.9


@dataclass(frozen=True, slots=True)
class RefineWeights:
    """Weights of the refinement cost (Cartographer's names and local-SLAM defaults)."""

    occupied: float = 1.0  # on the mean squared (1 - score) of the points
    translation: float = 10.0  # 1/m, pulls towards the initial translation
    rotation: float = 40.0  # 1/rad, pulls towards the initial heading
    iterations: int = 20


@dataclass(slots=True)
class ScoreField:
    """A smooth score raster in [MIN_P, MAX_P] over a grid's cells (same axes and origin)."""

    values: np.ndarray  # (H, W) float32
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy of the corner of cell (0, 0)

    @classmethod
    def from_probability(
        cls, prob: np.ndarray, resolution: float, origin: tuple[float, float], sigma: float = 0.05
    ) -> ScoreField:
        """Clamp occupancy probability to [MIN_P, MAX_P] (unknown 0.5 counts as MIN_P, like free
        space) and blur it with a Gaussian of `sigma` metres to widen the basin of attraction."""
        values = np.where(prob > 0.5, prob, MIN_P).astype(np.float32)
        np.clip(values, MIN_P, MAX_P, out=values)
        if sigma > 0:
            cells = sigma / resolution
            values = cv2.GaussianBlur(values, (0, 0), cells, borderType=cv2.BORDER_REPLICATE)
        return cls(values, resolution, origin)


def refine(
    points: np.ndarray,
    field: ScoreField,
    initial: Pose,
    weights: RefineWeights | None = None,
    prior: Pose | None = None,
) -> tuple[Pose, float]:
    """Levenberg-Marquardt refinement of the pose of robot-frame (N, 2) `points` in `field`.

    Starts at `initial` and minimises occupied^2 * mean((1 - score)^2)
    + translation^2 * |t - t0|^2 + rotation^2 * (theta - theta0)^2, where (t0, theta0) is
    `prior` (default: `initial`). Where the map leaves a direction open (a long corridor) the
    prior decides it. Returns the refined pose and the mean point score there.
    """
    weights = weights or RefineWeights()
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return initial, 0.0
    anchor = prior or initial
    # the prior heading is taken on the same branch of the angle as the start
    x0 = np.array([anchor.x, anchor.y, initial.theta + wrap_angle(anchor.theta - initial.theta)])
    start = np.array([initial.x, initial.y, initial.theta])
    frame = np.array([field.resolution, field.origin[0], field.origin[1], MIN_P])
    w2 = np.array([weights.occupied, weights.translation, weights.rotation]) ** 2
    out = _kernels.refine_pose(
        np.ascontiguousarray(field.values, dtype=np.float32),
        frame,
        pts,
        start,
        x0,
        w2,
        int(weights.iterations),
    )
    return Pose(out[0], out[1], out[2]), float(out[3])
