"""Global path planning on a costmap: cost-aware A*, line-of-sight shortcuts, firmware waypoints.

The search is Nav2 Smac Planner 2D's (nav2_smac_planner, Node2D::getTraversalCost): 8-connected
A* where a step costs its length (1 or sqrt 2 cells) times 1 + cost_weight * cost / 252 of the
cell it enters, so paths keep away from walls where the corridor allows it. Cells of cost 253
and up (inscribed, lethal, and unknown unless `allow_unknown`) are never entered, and a diagonal
step needs both cells beside it enterable. The heuristic is the octile distance, so the path is
optimal for that cost. The kernel is `navigation._kernels.astar_grid`.

The cell path is then shortened by line of sight (Theta*, one of Nav2's planners, does such
checks during the search; we do them once, on the A* path): from each kept cell, the farthest
turn of the path that a straight segment reaches without touching a cell costlier than
`shortcut_max_cost` (or than the costliest cell of the stretch it replaces). What remains is a
waypoint at each turn; legs longer than `max_segment` are split evenly for the firmware's go-to.
A `Planner` keeps its search arrays from plan to plan; `plan_path` is the one-off form.

Start and goal (world metres) may be snapped: a start closer to an obstacle than the robot radius
(after a bump, say) moves to the nearest enterable cell within `start_tolerance`, a goal likewise
within `goal_tolerance`, provided the straight move there crosses no lethal or unknown cell. A
start or goal on a lethal or unknown cell, or too deep in the inflation, raises NoPathFound with
the reason, as does a goal that is not connected to the start.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from maps.geometry import Pose
from navigation.costmap import INSCRIBED, LETHAL, MAX_NON_OBSTACLE, UNKNOWN, Costmap
from navigation.errors import NoPathFound

log = logging.getLogger(__name__)

_BLOCKED_RANK = 1000  # rank of the cells a segment may never touch (above every cost)


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """A* weights, smoothing and waypoint spacing. cost_weight 2.0 and goal_tolerance 0.125 m are
    Smac 2D's defaults (cost_travel_multiplier, tolerance)."""

    cost_weight: float = 2.0  # step multiplier 1 + cost_weight * cost / 252
    allow_unknown: bool = False  # may the path cross unknown cells (cost 255)?
    shortcut_max_cost: int = 100  # shortcuts touch no cell costlier (~9 cm past the body at k=10)
    max_segment: float = 1.0  # m, longest leg between two firmware waypoints
    start_tolerance: float = 0.25  # m, how far a start inside the inflation may be moved
    goal_tolerance: float = 0.125  # m, how far a goal inside the inflation may be moved

    def __post_init__(self) -> None:
        for name in ("cost_weight", "max_segment", "start_tolerance", "goal_tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"PlannerConfig.{name} must be a finite number >= 0, got {value!r}"
                )
        if self.cost_weight > 100:
            # the search's bucket ring grows with the costliest step
            raise ValueError(f"PlannerConfig.cost_weight must be <= 100, got {self.cost_weight}")
        if not self.max_segment > 0:
            raise ValueError(f"PlannerConfig.max_segment must be > 0 m, got {self.max_segment}")
        if not (isinstance(self.shortcut_max_cost, int) and 0 <= self.shortcut_max_cost <= 252):
            raise ValueError(
                f"PlannerConfig.shortcut_max_cost must be an int in 0..252, got "
                f"{self.shortcut_max_cost!r}"
            )


@dataclass(frozen=True, slots=True)
class Plan:
    """A planned path. World metres; cells (i, j) as the costmap's grid."""

    waypoints: np.ndarray  # (N, 2) float64, N >= 2: start, a point at each turn, goal
    cells: np.ndarray  # (M, 2) int64: the A* cell path, start cell to goal cell
    cost: float  # A* cost in metres: sum of step length * (1 + cost_weight * cost / 252)
    length: float  # m, along the waypoints
    start_shift: float  # m the start was moved out of the inflation (0 when it was not)
    goal_shift: float  # m the goal was moved out of the inflation (0 when it was not)
    expansions: int  # cells A* closed


COST_UNIT = 1024  # integer cost units per cell of straight travel on free floor


def step_costs(config: PlannerConfig) -> tuple[np.ndarray, np.ndarray]:
    """(256,) int64 straight and diagonal step costs of each cost value, in COST_UNIT per cell:
    round(COST_UNIT * length * (1 + cost_weight * cost / 252)), -1 where a cell is not entered.
    Integers make the A* sums exact, so every implementation finds the same optimum."""
    mult = np.full(256, np.nan)
    mult[: MAX_NON_OBSTACLE + 1] = 1.0 + config.cost_weight * np.arange(253) / MAX_NON_OBSTACLE
    if config.allow_unknown:
        mult[UNKNOWN] = 1.0 + config.cost_weight
    ok = np.isfinite(mult)
    straight = np.where(ok, np.rint(COST_UNIT * np.where(ok, mult, 0.0)), -1).astype(np.int64)
    diagonal = np.where(ok, np.rint(COST_UNIT * math.sqrt(2.0) * np.where(ok, mult, 0.0)), -1)
    return straight, diagonal.astype(np.int64)


class Planner:
    """Plans paths on one costmap, keeping the search's work arrays between plans.

    The costmap may change between plans (Costmap.add_obstacles); its size may not.
    """

    def __init__(self, costmap: Costmap, config: PlannerConfig | None = None) -> None:
        if not isinstance(costmap, Costmap):
            raise TypeError(
                f"expected a navigation.costmap.Costmap, got {type(costmap).__qualname__}; build "
                "one with Costmap.from_map(grid_or_document)"
            )
        self.costmap = costmap
        self.config = config or PlannerConfig()
        self._straight, self._diagonal = step_costs(self.config)
        enterable = self._straight >= 0
        # rank of each cost for the line-of-sight test: never-entered cells rank above all
        self._rank = np.where(enterable, np.arange(256), _BLOCKED_RANK).astype(np.int64)
        if self.config.allow_unknown:
            self._rank[UNKNOWN] = MAX_NON_OBSTACLE
        self._work: tuple | None = None

    def _work_arrays(self) -> tuple:
        n = self.costmap.costs.size
        if self._work is None or self._work[0].size != n:
            self._work = (
                np.empty(n, dtype=np.int64),
                np.empty(n, dtype=np.int32),
                np.zeros(n + 1, dtype=np.int32),
                np.empty((max(4096, n // 4), 2), dtype=np.int64),
            )
        return self._work

    def plan(self, start: Pose | tuple[float, float], goal: Pose | tuple[float, float]) -> Plan:
        """Plan from `start` to `goal` (world metres; a Pose's heading is ignored).

        Returns a Plan whose waypoints begin at `start` and end at `goal` (or where they were
        snapped to, see the module docstring). Raises NoPathFound (reason "start", "goal" or
        "unreachable") when there is no path.
        """
        costmap, config = self.costmap, self.config
        sxy = _xy(start, "start")
        gxy = _xy(goal, "goal")
        enterable = self._straight >= 0
        ends = (sxy, gxy)
        tol, unk = config.start_tolerance, config.allow_unknown
        s_cell, s_shift = _snap(costmap, "start", ends, enterable, tol, unk)
        g_cell, g_shift = _snap(costmap, "goal", ends, enterable, config.goal_tolerance, unk)

        from navigation import _kernels  # numba: loaded on first use

        w = costmap.shape[1]
        g_arr, parent, mark, entries = self._work_arrays()
        path, cost, expansions, entries = _kernels.astar_grid(
            costmap.costs,
            self._straight,
            self._diagonal,
            s_cell[0] * w + s_cell[1],
            g_cell[0] * w + g_cell[1],
            (g_arr, parent, mark, entries),
        )
        self._work = (g_arr, parent, mark, entries)
        expansions = int(expansions)
        if path.size == 0:
            raise NoPathFound(
                f"no path from ({sxy[0]:.3f}, {sxy[1]:.3f}) to ({gxy[0]:.3f}, {gxy[1]:.3f}): the "
                f"goal is not connected to the start for a robot of radius "
                f"{costmap.config.robot_radius} m (searched all {expansions} cells reachable "
                "from the start)",
                reason="unreachable",
                start=sxy,
                goal=gxy,
            )
        cells = np.column_stack((path // w, path % w))
        keep = _kernels.shortcut_path(
            costmap.costs, self._rank, cells, np.int64(config.shortcut_max_cost)
        )
        centres = costmap.cell_to_world(cells[keep])
        # the exact start and goal replace the centres of their cells; a snapped start is
        # followed by the centre it moved to, a snapped goal is replaced by it
        head = [np.array([sxy]), centres[:1]] if s_shift > 0 else [np.array([sxy])]
        tail = centres[-1:] if g_shift > 0 else np.array([gxy])
        points = np.vstack([*head, centres[1:-1], tail])
        waypoints = _split_legs(_drop_repeats(points), config.max_segment)
        length = float(np.sum(np.hypot(*np.diff(waypoints, axis=0).T)))
        log.debug(
            "A*: %d cells closed, %d path cells, %d waypoints, %.2f m",
            expansions,
            len(cells),
            len(waypoints),
            length,
        )
        return Plan(
            waypoints=waypoints,
            cells=cells.astype(np.int64),
            cost=float(cost) / COST_UNIT * costmap.resolution,
            length=length,
            start_shift=s_shift,
            goal_shift=g_shift,
            expansions=expansions,
        )


def plan_path(
    costmap: Costmap,
    start: Pose | tuple[float, float],
    goal: Pose | tuple[float, float],
    config: PlannerConfig | None = None,
) -> Plan:
    """One plan on `costmap` (see Planner.plan); keep a Planner to plan again on the same map."""
    return Planner(costmap, config).plan(start, goal)


def _xy(value, name: str) -> tuple[float, float]:
    if isinstance(value, Pose):
        return value.x, value.y
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a Pose or an (x, y) pair in metres, got {value!r}"
        ) from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{name} must be finite, got ({x}, {y})")
    return x, y


def _snap(
    costmap: Costmap,
    which: str,
    ends: tuple[tuple[float, float], tuple[float, float]],
    enterable: np.ndarray,
    tolerance: float,
    allow_unknown: bool,
) -> tuple[tuple[int, int], float]:
    """The cell to plan from (`which` "start") or to ("goal"), and how far (m) it moved.

    `ends` (start xy, goal xy); `enterable` (256,) bool by cost value. An enterable cell is used
    as it is. An inscribed cell (cost 253: the body would overlap an obstacle) moves to the
    nearest enterable cell centre within `tolerance` whose straight segment from it touches no
    lethal cell (nor unknown, unless allowed); ties go to the lower row, then column. Anything
    else raises NoPathFound.
    """
    xy = ends[0] if which == "start" else ends[1]
    ((i, j),) = costmap.world_to_cell([xy]).tolist()
    h, w = costmap.shape
    where = f"{which} ({xy[0]:.3f}, {xy[1]:.3f})"

    def refuse(why: str) -> NoPathFound:
        return NoPathFound(f"{where} {why}", reason=which, start=ends[0], goal=ends[1])

    if not (0 <= i < h and 0 <= j < w):
        x0, y0 = costmap.origin
        raise refuse(
            f"lies outside the map (x {x0:.2f}..{x0 + w * costmap.resolution:.2f} m, "
            f"y {y0:.2f}..{y0 + h * costmap.resolution:.2f} m)"
        )
    cost = int(costmap.costs[i, j])
    if enterable[cost]:
        return (i, j), 0.0
    if cost != INSCRIBED:
        raise refuse(f"is {costmap.describe(i, j)}; pick a free spot")
    from navigation import _kernels

    reach = math.floor(tolerance / costmap.resolution + 0.5)
    i0, i1 = max(i - reach, 0), min(i + reach + 1, h)
    j0, j1 = max(j - reach, 0), min(j + reach + 1, w)
    ii, jj = np.mgrid[i0:i1, j0:j1]
    ii, jj = ii.ravel(), jj.ravel()
    centres = costmap.cell_to_world(np.column_stack((ii, jj)))
    dist = np.hypot(centres[:, 0] - xy[0], centres[:, 1] - xy[1])
    ok = np.flatnonzero(enterable[costmap.costs[ii, jj]] & (dist <= tolerance))
    wall_rank = np.zeros(256, dtype=np.int64)
    wall_rank[LETHAL] = 1
    wall_rank[UNKNOWN] = 0 if allow_unknown else 1
    for k in ok[np.argsort(dist[ok], kind="stable")]:
        if _kernels.segment_clear(costmap.costs, wall_rank, i, j, int(ii[k]), int(jj[k]), 0):
            return (int(ii[k]), int(jj[k])), float(dist[k])
    raise refuse(
        f"is {costmap.describe(i, j)} and no free cell lies within {tolerance} m of it in a "
        "straight line clear of obstacles; move it away from the obstacle"
    )


def _drop_repeats(points: np.ndarray) -> np.ndarray:
    """Drop waypoints that repeat the previous one (a snapped start beside its own cell centre);
    the goal is always kept."""
    keep = [0]
    for k in range(1, len(points)):
        if np.hypot(*(points[k] - points[keep[-1]])) > 1e-9:
            keep.append(k)
    if len(keep) == 1:
        keep.append(len(points) - 1)
    return points[keep]


def _split_legs(points: np.ndarray, max_segment: float) -> np.ndarray:
    """Split every leg longer than `max_segment` into equal parts."""
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        parts = max(1, math.ceil(float(np.hypot(*(b - a))) / max_segment - 1e-9))
        t = np.arange(1, parts + 1)[:, None] / parts
        out.append(a + t * (b - a))
    return np.vstack(out)
