"""The occupancy grid: log-odds cells, world <-> cell conversion, scan integration.

Axes: `log_odds[i, j]`, row i <-> y (up), column j <-> x (right). `origin` is the world position
(metres) of the outer corner of cell (0, 0); cell (i, j) covers
[ox + j*res, ox + (j+1)*res) x [oy + i*res, oy + (i+1)*res). Positive log-odds = occupied,
0 = unknown, negative = free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from maps.geometry import Pose
from maps.scan import Scan


@dataclass(frozen=True, slots=True)
class GridConfig:
    """Occupancy-grid parameters (metres, log-odds)."""

    resolution: float = 0.05  # m per cell, as the vendors use
    l_free: float = -0.4  # added to each cell a beam crosses
    l_occ: float = 0.85  # added to the cell a beam ends in
    l_min: float = -2.0  # clamp, so that a moved obstacle can come back within a few scans
    l_max: float = 3.5
    no_return_cap: float = 3.0  # m: a beam with no return clears free space this far at most
    grow_margin: float = 2.0  # m of room added on a side when a scan reaches past the edge

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0 m, got {self.resolution}")
        if not (self.l_free < 0 < self.l_occ):
            raise ValueError("need l_free < 0 < l_occ")
        if not (self.l_min < 0 < self.l_max):
            raise ValueError("need l_min < 0 < l_max")
        if not self.no_return_cap >= 0:
            raise ValueError("no_return_cap must be >= 0 m")


@dataclass(slots=True)
class OccupancyGrid:
    """Log-odds occupancy grid. See the module docstring for axes and origin."""

    log_odds: np.ndarray  # (H, W) float32
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy of the corner of cell (0, 0)
    config: GridConfig = field(default_factory=GridConfig)

    def __post_init__(self) -> None:
        lo = np.asarray(self.log_odds)
        if lo.ndim != 2:
            raise ValueError(f"log_odds must be 2-D, got shape {lo.shape}")
        self.log_odds = np.ascontiguousarray(lo, dtype=np.float32)
        self.origin = (float(self.origin[0]), float(self.origin[1]))
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0 m, got {self.resolution}")

    @classmethod
    def empty(
        cls,
        width_m: float,
        height_m: float,
        origin: tuple[float, float] = (0.0, 0.0),
        config: GridConfig | None = None,
    ) -> OccupancyGrid:
        """An all-unknown grid covering width_m x height_m metres from `origin`."""
        config = config or GridConfig()
        w = max(1, math.ceil(width_m / config.resolution))
        h = max(1, math.ceil(height_m / config.resolution))
        return cls(np.zeros((h, w), np.float32), config.resolution, origin, config)

    @classmethod
    def centred(cls, x: float, y: float, size_m: float, config: GridConfig | None = None):
        """An all-unknown square grid of side size_m around (x, y)."""
        config = config or GridConfig()
        half = size_m / 2
        return cls.empty(size_m, size_m, (x - half, y - half), config)

    @property
    def shape(self) -> tuple[int, int]:
        return self.log_odds.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """World extent (xmin, ymin, xmax, ymax), metres."""
        h, w = self.shape
        ox, oy = self.origin
        return ox, oy, ox + w * self.resolution, oy + h * self.resolution

    def world_to_cell(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) world xy (m) -> (N, 2) int64 cell indices (i, j); may lie outside the grid."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        ij = np.empty(pts.shape, dtype=np.int64)
        ij[:, 0] = np.floor((pts[:, 1] - self.origin[1]) / self.resolution)
        ij[:, 1] = np.floor((pts[:, 0] - self.origin[0]) / self.resolution)
        return ij

    def cell_to_world(self, ij: np.ndarray) -> np.ndarray:
        """(N, 2) cell indices (i, j) -> (N, 2) world xy (m) of the cell centres."""
        cells = np.asarray(ij, dtype=np.float64).reshape(-1, 2)
        xy = np.empty(cells.shape, dtype=np.float64)
        xy[:, 0] = self.origin[0] + (cells[:, 1] + 0.5) * self.resolution
        xy[:, 1] = self.origin[1] + (cells[:, 0] + 0.5) * self.resolution
        return xy

    def in_bounds(self, ij: np.ndarray) -> np.ndarray:
        """(N,) bool: which of the (N, 2) cells lie inside the grid."""
        cells = np.asarray(ij).reshape(-1, 2)
        h, w = self.shape
        return (cells[:, 0] >= 0) & (cells[:, 0] < h) & (cells[:, 1] >= 0) & (cells[:, 1] < w)

    def probability(self) -> np.ndarray:
        """(H, W) float32 occupancy probability, 0.5 where unknown."""
        return (1.0 / (1.0 + np.exp(-self.log_odds))).astype(np.float32)

    def ensure_contains(self, xy: np.ndarray) -> bool:
        """Grow the grid so that every (N, 2) world point lies inside; True if it grew.

        A side that must grow gets `config.grow_margin` metres of room beyond the point, so a
        robot moving along an edge does not reallocate the grid on every scan. The origin moves
        by whole cells, so existing cells keep their world positions.
        """
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if pts.shape[0] == 0:
            return False
        if not np.isfinite(pts).all():
            raise ValueError("cannot grow the grid to a non-finite point")
        res = self.resolution
        h, w = self.shape
        ox, oy = self.origin
        margin = max(1, math.ceil(self.config.grow_margin / res))
        jmin = math.floor((pts[:, 0].min() - ox) / res)
        jmax = math.floor((pts[:, 0].max() - ox) / res)
        imin = math.floor((pts[:, 1].min() - oy) / res)
        imax = math.floor((pts[:, 1].max() - oy) / res)
        left = margin - jmin if jmin < 0 else 0
        right = jmax - (w - 1) + margin if jmax >= w else 0
        bottom = margin - imin if imin < 0 else 0
        top = imax - (h - 1) + margin if imax >= h else 0
        if not (left or right or bottom or top):
            return False
        grown = np.zeros((h + bottom + top, w + left + right), dtype=np.float32)
        grown[bottom : bottom + h, left : left + w] = self.log_odds
        self.log_odds = grown
        self.origin = (ox - left * res, oy - bottom * res)
        return True

    def integrate(self, pose: Pose, scan: Scan) -> tuple[int, int]:
        """Fuse one scan taken by the robot at world `pose` into the grid (log-odds update).

        Hits mark their cell occupied and the cells before it free; no-return beams clear free
        space up to `min(config.no_return_cap, scan.range_max)`. The grid grows first when the
        scan reaches past its edge. Returns (cells marked free, cells marked occupied).
        """
        cfg = self.config
        sensor = scan.origin(pose)
        hit = scan.hit_mask
        miss = scan.no_return_mask
        cap = min(cfg.no_return_cap, scan.range_max)
        use = hit | (miss & (cap > 0))
        ranges = np.where(hit, scan.ranges, cap)[use].astype(np.float64)
        angles = scan.angles[use].astype(np.float64) + sensor.theta
        # row 0 is the sensor itself, rows 1.. the beam ends
        xy = np.empty((ranges.shape[0] + 1, 2))
        xy[0] = sensor.x, sensor.y
        xy[1:, 0] = sensor.x + ranges * np.cos(angles)
        xy[1:, 1] = sensor.y + ranges * np.sin(angles)
        self.ensure_contains(xy)
        cells = self.world_to_cell(xy)
        from maps import _kernels  # numba: loaded on first use, not by map I/O

        n_free, n_occ = _kernels.integrate_rays(
            self.log_odds,
            cells[0],
            cells[1:],
            np.ascontiguousarray(hit[use]),
            np.float32(cfg.l_free),
            np.float32(cfg.l_occ),
            np.float32(cfg.l_min),
            np.float32(cfg.l_max),
        )
        return int(n_free), int(n_occ)
