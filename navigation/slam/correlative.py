"""Correlative scan matching: exhaustive window search and exact branch and bound.

Both searches score the same discrete set of poses around an initial guess (Cartographer's
CorrelativeScanMatcher2D search parameters):
- headings: initial.theta + k * dtheta for k in [-n, n], dtheta = (1 - 1e-3) acos(1 - r^2 /
  (2 d^2)) with r the grid resolution and d the range of the farthest point (at least 3 r), so the
  farthest point moves about one cell per step; n = ceil(angular window / dtheta);
- translations: initial xy + (ix, iy) * r for ix, iy in [-L, L], L = ceil(linear window / r).
  Offsets that would put every point off the grid are not searched (they score the floor).
Points set the angular step, so a stray point kilometres away makes a search huge: the searches
refuse (ValueError) beyond MAX_ROTATED_POINTS rotated points; pass only real hits.

The score of a pose is the mean, over the points, of the score grid at the cell each point falls
in. The score grid is the occupancy probability where it says "occupied" and a floor elsewhere:
    value = clip(p, 0.1, 0.9) where p > 0.5, else 0.1
so unknown cells (p = 0.5 exactly, as OccupancyGrid.probability() gives them) and free cells
(p < 0.5) both count 0.1, as does any point off the grid: only evidence of an obstacle rewards a
match. The [0.1, 0.9] range is Cartographer's (kMinProbability, kMaxProbability), so its score
thresholds (0.55 for loop closure, 0.6 for global localization) carry over. Values are stored as
uint8 in steps of 1/250 (0.1 -> 25, 0.9 -> 225), which makes candidate scores exact integer sums:
the branch and bound then returns exactly the exhaustive search's answer, ties included. Ties go to
the candidate nearest the initial pose: smallest |heading step|, then smallest |ix| + |iy|, then
negative heading steps before positive, then smallest iy, then smallest ix.

`match_window` is Olson's real-time correlative matcher in its brute-force single-level form
(Cartographer RealTimeCorrelativeScanMatcher2D, without the motion prior): for the front end's
small windows. `match_branch_and_bound` is Cartographer's FastCorrelativeScanMatcher2D (Hess et
al., "Real-Time Loop Closure in 2D LIDAR SLAM", ICRA 2016): for loop closure and relocalization
with windows of metres and up to +-180 degrees.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from numbers import Real
from typing import NamedTuple

import numpy as np

from maps.geometry import Pose
from maps.grid import OccupancyGrid
from navigation import _kernels

log = logging.getLogger(__name__)

FLOOR = 0.1  # score of unknown, free and off-grid cells (Cartographer's kMinProbability)
CEILING = 0.9  # highest cell score (kMaxProbability)
SCALE = 250  # uint8 steps per unit of score: FLOOR and CEILING are exact (25, 225)
MAX_DEPTH = 12  # levels of the max-filtered stack (a frame of 2048 cells): more is only memory
MAX_WINDOW_CANDIDATES = 4_000_000  # match_window refuses more: use match_branch_and_bound
MAX_SEARCH_BYTES = 256 << 20  # match_branch_and_bound refuses to allocate more
MAX_ROTATED_POINTS = 1 << 23  # rotations x points (64 MB of cells); 1000 points at 8 m: 2.4 M
_FILL = round(FLOOR * SCALE)
_HUGE_OFFSET = 1 << 30  # cells: stands for an unbounded linear window (clipped to the grid)


@dataclass(frozen=True, slots=True)
class SearchWindow:
    """Half-widths of a correlative search around the initial pose.

    `linear` (m) applies to x and to y, and may be `math.inf` (the whole grid); `angular` (rad)
    is capped at pi (a full turn).
    """

    linear: float  # m, half-width of the x and y search
    angular: float  # rad, half-width of the heading search

    def __post_init__(self) -> None:
        for name in ("linear", "angular"):
            value = getattr(self, name)
            if not _is_number(value) or math.isnan(value) or value < 0:
                raise ValueError(
                    f"SearchWindow.{name} must be a number >= 0, got {value!r}; pass the "
                    "half-width of the search, e.g. SearchWindow(linear=0.2, "
                    "angular=math.radians(15))"
                )


@dataclass(frozen=True, slots=True)
class Match:
    """Result of a correlative search."""

    pose: Pose  # best pose of the scan's robot frame in the grid's world frame
    score: float  # mean score of the points at that pose, in [FLOOR, CEILING]


@dataclass(frozen=True, slots=True, eq=False)
class MatchGrid:
    """A probability grid prepared for correlative matching: level 0 = the grid, level k = max
    over 2^k x 2^k blocks (Cartographer PrecomputationGrid2D).

    Every level is framed by `pad` = 2^(depth-1) cells of FLOOR on each side, so level k's value
    at padded cell (i, j) is the max of level 0 over [i, i + 2^k) x [j, j + 2^k), and the outer
    ring of every level is FLOOR (off-grid lookups are clamped onto it). Cell (i, j)
    of the unpadded grid is levels[:, i + pad, j + pad]; row i <-> y, column j <-> x, `origin`
    is the world xy (m) of the corner of unpadded cell (0, 0), as in maps.grid. Build it with
    `from_grid` or `from_probability` (the module docstring says how probabilities become scores).
    """

    levels: np.ndarray  # (depth, H + 2 pad, W + 2 pad) uint8, score * SCALE
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy of the corner of unpadded cell (0, 0), metres

    def __post_init__(self) -> None:
        levels = self.levels
        if not isinstance(levels, np.ndarray) or levels.dtype != np.uint8 or levels.ndim != 3:
            raise ValueError(
                "MatchGrid.levels must be a (depth, H, W) uint8 stack; build the grid with "
                "MatchGrid.from_grid(grid) or MatchGrid.from_probability(prob, resolution, origin)"
            )
        depth = levels.shape[0]
        if not 1 <= depth <= MAX_DEPTH or min(levels.shape[1:]) <= 2 * 2 ** (depth - 1):
            raise ValueError(f"MatchGrid.levels has an impossible shape {levels.shape}")
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise ValueError(f"resolution must be > 0 m, got {self.resolution}")
        levels.flags.writeable = False

    @classmethod
    def from_probability(
        cls,
        prob: np.ndarray,
        resolution: float,
        origin: tuple[float, float],
        depth: int = 7,
    ) -> MatchGrid:
        """Build the stack from an (H, W) occupancy probability grid in [0, 1].

        0.5 means unknown (OccupancyGrid.probability()); unknown and free cells score FLOOR,
        occupied ones their probability clipped to CEILING. `resolution` m per cell, `origin` the
        world xy (m) of the corner of cell (0, 0), `depth` the number of levels (7: blocks up to
        64 x 64 cells; 1 is enough for `match_window` alone).
        """
        p = np.asarray(prob)
        if p.ndim != 2 or p.size == 0:
            raise ValueError(
                f"prob must be a non-empty 2-D (H, W) probability grid, got shape {p.shape}; "
                "pass grid.probability() or use MatchGrid.from_grid(grid)"
            )
        if not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer)):
            raise ValueError(f"prob must hold numbers in [0, 1], got dtype {p.dtype}")
        p = p.astype(np.float32, copy=False)
        if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
            raise ValueError(
                "prob must hold probabilities in [0, 1] with no NaN; "
                "pass grid.probability() (0.5 = unknown)"
            )
        resolution = float(resolution)
        if not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f"resolution must be > 0 m per cell, got {resolution}")
        ox, oy = (float(v) for v in origin)
        if not (math.isfinite(ox) and math.isfinite(oy)):
            raise ValueError(f"origin must be a finite (x, y) in metres, got {origin}")
        if isinstance(depth, bool) or not isinstance(depth, int | np.integer):
            raise ValueError(f"depth must be an int in [1, {MAX_DEPTH}], got {depth!r}")
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be in [1, {MAX_DEPTH}] levels, got {depth}")
        values = np.where(p > 0.5, p, np.float32(FLOOR))
        np.clip(values, FLOOR, CEILING, out=values)
        quantised = np.rint(values * SCALE).astype(np.uint8)
        pad = 2 ** (int(depth) - 1)
        levels = _kernels.block_max_levels(quantised, int(depth), pad, _FILL)
        return cls(levels, resolution, (ox, oy))

    @classmethod
    def from_grid(cls, grid: OccupancyGrid, depth: int = 7) -> MatchGrid:
        """Build the stack from an OccupancyGrid (same cells, resolution and origin)."""
        if not isinstance(grid, OccupancyGrid):
            raise TypeError(
                f"expected an OccupancyGrid, got {type(grid).__name__}; for a bare array use "
                "MatchGrid.from_probability(prob, resolution, origin)"
            )
        return cls.from_probability(grid.probability(), grid.resolution, grid.origin, depth)

    @property
    def depth(self) -> int:
        return int(self.levels.shape[0])

    @property
    def pad(self) -> int:
        """Cells of FLOOR framing every level on each side."""
        return 2 ** (self.depth - 1)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the unpadded grid."""
        _, hp, wp = self.levels.shape
        return hp - 2 * self.pad, wp - 2 * self.pad

    @property
    def nbytes(self) -> int:
        return int(self.levels.nbytes)

    def scores(self, level: int = 0) -> np.ndarray:
        """(H, W) float32 cell scores of one level, unpadded, in [FLOOR, CEILING]."""
        if not 0 <= level < self.depth:
            raise ValueError(f"level must be in [0, {self.depth - 1}], got {level}")
        h, w = self.shape
        pad = self.pad
        return self.levels[level, pad : pad + h, pad : pad + w].astype(np.float32) / SCALE


def angular_step(points: np.ndarray, resolution: float) -> float:
    """Heading step (rad) of the search for these (N, 2) robot-frame points (m): the farthest
    point moves about one cell of `resolution` m per step (Cartographer's SearchParameters)."""
    pts = _checked_points(points)
    if not (_is_number(resolution) and math.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution must be > 0 m per cell, got {resolution!r}")
    return _angular_step(pts, float(resolution))


def match_window(points: np.ndarray, grid: MatchGrid, initial: Pose, window: SearchWindow) -> Match:
    """Best pose of the scan in a window around `initial`, by scoring every candidate on level 0.

    Olson's real-time correlative matcher, brute force (Cartographer
    RealTimeCorrelativeScanMatcher2D without its motion prior). `points` (N, 2) float64 hits in
    the robot frame (m); `initial` the guess in the grid's world frame. For small windows (the
    front end: 0.1-0.3 m, 10-20 deg); ValueError beyond MAX_WINDOW_CANDIDATES candidates.
    """
    search = _prepare(points, grid, initial, window)
    ylo, yhi, xlo, xhi = (int(v) for v in search.bounds)
    count = search.cells.shape[0] * (yhi - ylo + 1) * (xhi - xlo + 1)
    if count > MAX_WINDOW_CANDIDATES:
        raise ValueError(
            f"window of {count} candidates is too large for an exhaustive search "
            f"(> {MAX_WINDOW_CANDIDATES}); use match_branch_and_bound for large windows"
        )
    sums = _kernels.window_scores(grid.levels[0], search.cells, search.bounds)
    a, iy, ix, total = _best_of(sums, search.bounds)
    return _as_match(initial, grid.resolution, search, a, iy, ix, total)


def match_branch_and_bound(
    points: np.ndarray,
    grid: MatchGrid,
    initial: Pose,
    window: SearchWindow,
    min_score: float,
) -> Match | None:
    """Best pose of the scan in a window around `initial` by branch and bound over the stack.

    Cartographer FastCorrelativeScanMatcher2D: returns exactly what an exhaustive search over the
    same candidates would (`match_window` with the same window), but visits a small fraction of
    them. None when no candidate scores at least `min_score` (in [0, 1]; Cartographer uses 0.55
    for loop closure, 0.6 for global localization). For loop closure and relocalization
    (windows of metres, +-30 to 180 deg); `math.inf` as the linear window searches the whole grid.
    ValueError when the search would need more than MAX_SEARCH_BYTES (points far off the grid
    with an unbounded window).
    """
    if not _is_number(min_score) or not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score must be a number in [0, 1], got {min_score!r}")
    search = _prepare(points, grid, initial, window)
    cells, bounds = search.cells, search.bounds
    target = float(min_score) * SCALE * cells.shape[1]
    min_sum = math.ceil(target - 1e-9 * max(1.0, target))  # sums are integers
    levels, width, flat = _flat_search_space(grid.levels, cells, bounds)
    a, iy, ix, total, n_scored = _kernels.branch_and_bound(levels, width, flat, bounds, min_sum)
    log.debug(
        "branch and bound: %d rotations x %d x %d offsets, %d candidates scored",
        cells.shape[0],
        int(bounds[1] - bounds[0] + 1),
        int(bounds[3] - bounds[2] + 1),
        int(n_scored),
    )
    if a < 0:
        return None
    return _as_match(initial, grid.resolution, search, int(a), int(iy), int(ix), int(total))


# ---------------------------------------------------------------------------------- helpers
def _checked_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(
            f"points must be an (N, 2) array of robot-frame hits in metres, got shape {pts.shape}; "
            "pass scan.points()"
        )
    if pts.shape[0] == 0:
        raise ValueError("points is empty: a scan with no hits cannot be matched; skip the scan")
    if not (np.issubdtype(pts.dtype, np.floating) or np.issubdtype(pts.dtype, np.integer)):
        raise ValueError(f"points must be numbers, got dtype {pts.dtype}")
    pts = np.ascontiguousarray(pts, dtype=np.float64)
    if not np.isfinite(pts).all():
        bad = int((~np.isfinite(pts).all(axis=1)).sum())
        raise ValueError(
            f"points has {bad} rows with NaN or inf; pass only the hits "
            "(scan.points() does), e.g. points[np.isfinite(points).all(axis=1)]"
        )
    return pts


def _angular_step(points: np.ndarray, resolution: float) -> float:
    d_max = max(float(np.sqrt((points * points).sum(axis=1)).max()), 3.0 * resolution)
    # = (1 - 1e-3) acos(1 - r^2 / (2 d^2)) as Cartographer writes it, without the cancellation
    return (1.0 - 1e-3) * 2.0 * math.asin(resolution / (2.0 * d_max))


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _offsets(half_width: float, resolution: float) -> int:
    """Cells of a linear half-width; the 1e-9 keeps 0.2 m / 0.05 m at 4, not 5."""
    if math.isinf(half_width):
        return _HUGE_OFFSET
    return min(_HUGE_OFFSET, math.ceil(half_width / resolution - 1e-9))


class _Search(NamedTuple):
    """The discrete search space of one match."""

    cells: np.ndarray  # (A, N, 2) int32 padded cells (row, col) of each rotation at offset 0
    bounds: np.ndarray  # (4,) int64 inclusive offsets (ylo, yhi, xlo, xhi), cells
    step: float  # rad between rotations
    n_ang: int  # rotation a has heading initial.theta + (a - n_ang) * step


def _prepare(points: np.ndarray, grid: MatchGrid, initial: Pose, window: SearchWindow) -> _Search:
    """Validate the arguments; rotate the points once per heading and clip the offsets."""
    if not isinstance(grid, MatchGrid):
        raise TypeError(
            f"grid must be a MatchGrid, got {type(grid).__name__}; "
            "build one with MatchGrid.from_grid(occupancy_grid)"
        )
    if not isinstance(initial, Pose):
        raise TypeError(f"initial must be a maps.Pose, got {type(initial).__name__}")
    if not isinstance(window, SearchWindow):
        raise TypeError(
            f"window must be a SearchWindow, got {type(window).__name__}; "
            "e.g. SearchWindow(linear=0.2, angular=math.radians(15))"
        )
    pts = _checked_points(points)
    res = grid.resolution
    step = _angular_step(pts, res)
    n_ang = math.ceil(min(window.angular, math.pi) / step - 1e-9) if window.angular > 0 else 0
    if (2 * n_ang + 1) * len(pts) > MAX_ROTATED_POINTS:
        far = float(np.sqrt((pts * pts).sum(axis=1)).max())
        raise ValueError(
            f"{2 * n_ang + 1} rotations of {len(pts)} points are too many: the farthest point "
            f"({far:.1f} m) sets the angular step ({step:.2e} rad); drop points far beyond the "
            "lidar's range, or use a smaller angular window"
        )
    headings = initial.theta + step * np.arange(-n_ang, n_ang + 1, dtype=np.float64)
    tx = initial.x - grid.origin[0]
    ty = initial.y - grid.origin[1]
    pad = grid.pad
    cells = _kernels.rotated_cells(pts, headings, tx, ty, res, pad)
    bounds = _clipped_bounds(cells, grid.shape, pad, _offsets(window.linear, res))
    return _Search(cells, bounds, step, n_ang)


def _clipped_bounds(cells: np.ndarray, shape: tuple[int, int], pad: int, half: int) -> np.ndarray:
    """(ylo, yhi, xlo, xhi) int64: [-half, half] in rows and columns, less the offsets at which no
    point of any rotation can land inside the (unpadded) grid; (0, 0, 0, 0) if that is all."""
    h, w = shape
    rows = cells[:, :, 0]
    cols = cells[:, :, 1]
    ylo = max(-half, pad - int(rows.max()))
    yhi = min(half, h - 1 + pad - int(rows.min()))
    xlo = max(-half, pad - int(cols.max()))
    xhi = min(half, w - 1 + pad - int(cols.min()))
    if ylo > yhi or xlo > xhi:
        return np.zeros(4, dtype=np.int64)
    return np.array([ylo, yhi, xlo, xhi], dtype=np.int64)


def _flat_search_space(
    levels: np.ndarray, cells: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, int, np.ndarray]:
    """The stack flattened per level, its row width, and the points' flat cells in it.

    The branch and bound reads cells without bounds checks, so every point must stay inside the
    stack at every offset within `bounds`. A point that is off the stack at every offset is moved
    to the nearest place that is still off it at every offset (the score there is FLOOR all the
    same); if some point still leaves the stack at some offset, the stack is copied into a wider
    frame of FLOOR (the value every level has there, see `MatchGrid`), at most one window wide.
    """
    depth, hp, wp = levels.shape
    ylo, yhi, xlo, xhi = (int(v) for v in bounds)
    rows = np.clip(cells[:, :, 0], -yhi, hp - 1 - ylo).astype(np.int64)
    cols = np.clip(cells[:, :, 1], -xhi, wp - 1 - xlo).astype(np.int64)
    below = max(0, -(int(rows.min()) + ylo))
    above = max(0, int(rows.max()) + yhi - (hp - 1))
    left = max(0, -(int(cols.min()) + xlo))
    right = max(0, int(cols.max()) + xhi - (wp - 1))
    size = depth * (hp + below + above) * (wp + left + right)
    roots = (
        cells.shape[0]
        * ((yhi - ylo) // 2 ** (depth - 1) + 1)
        * ((xhi - xlo) // 2 ** (depth - 1) + 1)
    )
    if size + 40 * roots > MAX_SEARCH_BYTES:
        raise ValueError(
            f"the search needs {(size + 40 * roots) / 2**20:.0f} MB "
            f"(> {MAX_SEARCH_BYTES >> 20} MB); use a smaller window, or drop points far beyond "
            "the lidar's range"
        )
    if below or above or left or right:
        wide = np.full((depth, hp + below + above, wp + left + right), _FILL, dtype=np.uint8)
        wide[:, below : below + hp, left : left + wp] = levels
        wide.flags.writeable = False  # one compiled variant of the kernel, not two
        levels = wide
    _, hp, wp = levels.shape
    flat = (rows + below) * wp + (cols + left)
    return levels.reshape(depth, hp * wp), wp, flat.astype(np.int32)


def _best_of(sums: np.ndarray, bounds: np.ndarray) -> tuple[int, int, int, int]:
    """(a, iy, ix, sum) of the highest sum in (A, ny, nx) `sums`; ties by the module's rule."""
    best = sums.max()
    a, y, x = np.nonzero(sums == best)
    iy = y + bounds[0]
    ix = x + bounds[2]
    da = a - (sums.shape[0] - 1) // 2
    order = np.lexsort((ix, iy, da > 0, np.abs(iy) + np.abs(ix), np.abs(da)))
    k = order[0]
    return int(a[k]), int(iy[k]), int(ix[k]), int(best)


def _as_match(
    initial: Pose, res: float, search: _Search, a: int, iy: int, ix: int, total: int
) -> Match:
    k = a - search.n_ang
    pose = Pose(initial.x + ix * res, initial.y + iy * res, initial.theta + k * search.step)
    return Match(pose, float(total) / (SCALE * search.cells.shape[1]))
