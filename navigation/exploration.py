"""Frontier exploration with SLAM running live: rebuild a lost map from nothing.

The robot knows only its odometry and its lidar. Every scan goes into `Slam` with the odometry
of its own time (interpolated between drive commands), and the robot steers by the SLAM pose:
the map pose of the last scan composed with the odometry motion since that scan. Nothing here
reads a simulator's true pose.

The loop (Yamauchi 1997, "A frontier-based approach for autonomous exploration"; frontier
scoring after m-explore's explore_lite):
1. stand still for a first scan (the map frame's origin), then turn once in place, so the first
   map has free space around the robot;
2. at every decision, and every `replan_period` s while driving: the live map (the SLAM nodes
   fused at their graph poses, kept incrementally, rebuilt when the graph is optimised) becomes
   a costmap where unknown space is traversable (`CostmapConfig(unknown_is_obstacle=False)`)
   and the bump marks are obstacles;
3. frontiers: free cells with an unknown 4-neighbour, unknown patches smaller than `min_hole`
   (behind a table leg, between diverging beams) left out; cells within `group` of each other
   form one frontier; frontiers shorter than `min_frontier` (the robot's width) are noise;
4. each frontier's goal is the cell nearest to its centroid among those within `approach` of
   it (on a way that crosses no occupied cell: not behind a wall) where the body fits and that
   the robot can get to (one 4-connected flood of the costmap from the robot, as A* moves);
   its score is `distance_weight * A* cost - size_weight * size` (explore_lite's
   potential_scale 3 and gain_scale 1, there with the straight-line distance; here the A*
   cost on the costmap, unknown traversable). Frontiers are planned in order of a lower bound
   of their score (the straight-line distance) until none can beat the best; the frontier
   being pursued gets `keep_bonus`, so the robot does not swing between two equal ones;
5. the robot follows the plan's waypoints: turn in place towards the next waypoint when the
   heading error exceeds `align_tolerance`, else drive with a proportional heading correction,
   `control_dt` s per command; every `replan_period` s the plan is made again on the new map;
   the pursuit ends when the goal is reached, another frontier is better, the frontier has
   been missing from `vanish_plans` plans in a row ("gone"), a bump, or no progress along the
   plan for `stall_time` s;
6. a bump: when the live map has an obstacle touching the front of the body, the map explains
   it and nothing is marked; otherwise the expected contact point (a body radius ahead, in the
   direction of motion) is marked, so the same obstacle is planned around; the robot backs off;
7. failed attempts on a frontier (counted at its cell nearest the goal; attempts within
   `attempt_radius` count for the same frontier): a stall, a bump near its goal, "gone" (a
   frontier at the mouth of a pocket the lidar cannot see into flickers with the map updates),
   and, dropping it at once, "still there" after the robot reached its goal and looked around
   (a slow turn in place: SLAM fuses scans only as the robot moves). A frontier with
   `max_attempts` failed attempts is dropped.
It stops when no frontier is left that can be planned to ("no reachable frontier"), at the time
budget ("time budget"), when the lidar stops ("lidar stopped") or when the robot cannot get free
("stuck"). The result lists the frontiers left, each with the reason. Two fallbacks: a robot
too close to obstacles to plan from drives back along its own trajectory to where its body had
room; a robot shut in, or out of the rest of the home, by its own bump marks (a mark is a
guess of where on the front of the body the bumper was touched) forgets the marks near it, or
failing that all of them, at most `max_forget` times.

Frames: everything is in the SLAM map frame, which starts at the first scan's pose. The
exploration stands still for its first scan, so with a fresh `Slam` the map frame is the pose
where the robot started: a world point p is `start.compose(p)` in the world (see `map_iou`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from firmware_bridge.robot import Robot
from firmware_bridge.world import World
from maps.geometry import Pose, wrap_angle
from maps.grid import GridConfig, OccupancyGrid
from maps.model import FREE_THRESH, OCCUPIED_THRESH
from maps.scan import Scan
from navigation.costmap import LETHAL, MAX_NON_OBSTACLE, UNKNOWN, Costmap, CostmapConfig
from navigation.coverage import CoverageConfig, reachable_floor, swept_area
from navigation.errors import NavigationError, NoPathFound, check_numbers
from navigation.planner import Plan, Planner, PlannerConfig
from navigation.slam.slam import Slam

log = logging.getLogger(__name__)

NO_FRONTIER = "no reachable frontier"
TIME_BUDGET = "time budget"
LIDAR_STOPPED = "lidar stopped"
STUCK = "stuck"

# map_server's thresholds as log-odds, as navigation.costmap uses them
_FREE_LOG_ODDS = math.log(FREE_THRESH / (1.0 - FREE_THRESH))
_OCCUPIED_LOG_ODDS = math.log(OCCUPIED_THRESH / (1.0 - OCCUPIED_THRESH))
_SWEPT_LOG_ODDS = -2.0  # floor the robot's body swept: surely free (maps.model FREE_LOG_ODDS)
ROBOT_RADIUS = CoverageConfig().robot_radius  # m, for the reachable floor in map_iou


class ExplorationError(NavigationError):
    """Exploration cannot start: the robot is not a Robot, or its lidar gives nothing to map."""


@dataclass(frozen=True, slots=True)
class ExplorationConfig:
    """Exploration parameters (SI units). One set of defaults for every home."""

    time_budget: float = 3600.0  # s of robot time, then stop with TIME_BUDGET
    control_dt: float = 0.1  # s per drive command
    max_v: float = 0.3  # m/s forward
    max_w: float = 1.2  # rad/s turning
    min_w: float = 0.3  # rad/s: slowest turn in place (a small error still turns)
    look_angle: float = 0.6  # rad turned at min_w at a goal whose frontier is still there
    heading_gain: float = 2.0  # 1/s: turn rate per rad of heading error
    align_tolerance: float = 0.35  # rad: turn in place above this heading error
    waypoint_tolerance: float = 0.10  # m: a waypoint this close is passed
    goal_tolerance: float = 0.15  # m: the goal this close is reached
    replan_period: float = 1.0  # s between two plans while following
    vanish_plans: int = 2  # plans in a row without the frontier pursued: it is gone
    min_frontier: float = 0.34  # m: shorter frontier clusters are noise (the robot's width)
    min_hole: float = 0.09  # m2: smaller unknown patches are holes, not unexplored (the body)
    group: float = 0.2  # m: frontier cells this close belong to the same frontier
    approach: float = 0.5  # m: the goal may lie this far from its frontier
    distance_weight: float = 3.0  # explore_lite potential_scale (per m of A* cost)
    size_weight: float = 1.0  # explore_lite gain_scale (per m of frontier)
    keep_bonus: float = 2.0  # score bonus of the frontier being pursued (sharing a cell)
    max_attempts: int = 3  # failed attempts before a frontier is dropped
    attempt_radius: float = 0.4  # m: failed attempts this close count for the same frontier
    stall_time: float = 15.0  # s without progress along the plan: a failed attempt
    progress_step: float = 0.10  # m the remaining path must shrink to count as progress
    backoff: float = 0.06  # m reversed after a bump
    scan_timeout: float = 2.0  # s of robot time without a scan: the lidar has stopped
    max_stuck: int = 5  # plans in a row that cannot start from the robot's pose: STUCK
    max_forget: int = 3  # times a run may forget the bump marks that close its way
    robot_radius: float = 0.17  # m, the round body (for the bump point)
    # the live and the final maps (the SLAM grid config otherwise): a beam with no return
    # clears nothing, since a lidar's random dropouts pass "through" walls and, over thousands
    # of scans, clear the space behind them
    no_return_cap: float = 0.0  # m: replaces the SLAM grid's (GridConfig.no_return_cap)
    costmap: CostmapConfig = field(default_factory=lambda: CostmapConfig(unknown_is_obstacle=False))
    planner: PlannerConfig = field(default_factory=lambda: PlannerConfig(allow_unknown=True))

    def __post_init__(self) -> None:
        check_numbers(
            self,
            positive=(
                "time_budget control_dt max_v max_w heading_gain align_tolerance "
                "waypoint_tolerance goal_tolerance replan_period approach stall_time scan_timeout "
                "robot_radius"
            ),
            non_negative=(
                "min_w look_angle min_frontier min_hole group no_return_cap distance_weight "
                "size_weight keep_bonus attempt_radius progress_step backoff"
            ),
        )
        for name in ("max_attempts", "max_stuck", "vanish_plans"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"ExplorationConfig.{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.max_forget, int) and self.max_forget >= 0):
            raise ValueError(
                f"ExplorationConfig.max_forget must be an int >= 0, got {self.max_forget!r}"
            )
        if self.min_w > self.max_w:
            raise ValueError(f"need min_w <= max_w, got {self.min_w} > {self.max_w}")
        if self.costmap.unknown_is_obstacle or not self.planner.allow_unknown:
            raise ValueError(
                "exploration plans through unknown space: use "
                "CostmapConfig(unknown_is_obstacle=False) and PlannerConfig(allow_unknown=True)"
            )


@dataclass(frozen=True, slots=True)
class Frontier:
    """A cluster of frontier cells (SLAM map frame, metres).

    `goal` is where the robot would go to see past it (None when no enterable cell is within
    `approach`), `cost` the A* cost there (m, None when not planned), `reason` why it is left
    ("" while it is open), `attempts` the failed attempts counted on it.
    """

    centroid: tuple[float, float]
    size: float  # m: cells times the resolution
    cells: int
    goal: tuple[float, float] | None = None
    cost: float | None = None
    attempts: int = 0
    reason: str = ""


@dataclass(slots=True)
class ExplorationResult:
    """What an exploration did and the map it rebuilt (SLAM map frame, SI units)."""

    grid: OccupancyGrid  # the SLAM map after `Slam.finish()`
    stop_reason: str  # NO_FRONTIER, TIME_BUDGET, LIDAR_STOPPED or STUCK
    time_s: float  # robot time from the start of exploration to the stop
    path_m: float  # along the SLAM trajectory
    scans: int  # scans given to SLAM
    frontiers_left: list[Frontier]  # at the stop, each with the reason it was left
    bumps: list[tuple[float, float]]  # every bump's estimated contact point, map frame
    obstacles: list[tuple[float, float]]  # the marks of the bumps the map does not show
    pose: Pose  # the robot's map-frame pose at the stop (after the final optimisation)
    stamps: np.ndarray  # (N,) s: every scan's stamp
    trajectory: np.ndarray  # (N, 3) map-frame pose of every scan
    pose_graph: dict[str, np.ndarray]  # Slam.graph.to_arrays(), for MapStore.save
    slam: Slam
    goals_reached: int = 0
    failed_attempts: int = 0
    plans: int = 0
    slam_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # wall ms per Slam.add
    wall_s: float = 0.0  # wall time of the whole exploration
    plan_wall_s: float = 0.0  # of which map updates, costmaps, frontiers and A*

    @property
    def unreachable(self) -> list[Frontier]:
        """The frontiers left that are not merely too small."""
        return [f for f in self.frontiers_left if not f.reason.startswith("smaller")]


# ---------------------------------------------------------------------------- frontiers
def frontier_mask(grid: OccupancyGrid, min_hole: float = 0.0) -> np.ndarray:
    """(H, W) bool: free cells with an unknown 4-neighbour (beyond the raster is unknown).

    Free and unknown by map_server's thresholds (maps.model), as the costmap reads the grid.
    Unknown patches (8-connected) smaller than `min_hole` m2 that do not reach the raster's edge
    are holes in what was seen (behind a table leg, between diverging beams, a wall cell seen
    edge-on), not unexplored space: they make no frontier.
    """
    lo = grid.log_odds
    free = lo < _FREE_LOG_ODDS
    unknown = ~free & ~(lo > _OCCUPIED_LOG_ODDS)
    padded = np.pad(unknown, 1, constant_values=True)
    min_cells = min_hole / grid.resolution**2
    if min_cells > 1:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            padded.view(np.uint8), connectivity=8
        )
        small = stats[:, cv2.CC_STAT_AREA] < min_cells
        small[0] = False  # the background: known cells
        small[labels[0, 0]] = False  # the frame: beyond the raster
        padded &= ~small[labels]
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    near_unknown = cv2.dilate(padded.view(np.uint8), cross)[1:-1, 1:-1].astype(bool)
    return free & near_unknown


def frontier_clusters(
    grid: OccupancyGrid, min_hole: float = 0.0, group: float = 0.0
) -> list[np.ndarray]:
    """Clusters of `frontier_mask(grid, min_hole)`: cells 8-connected or within `group` m of
    each other (space seen through a doorway at a grazing angle is speckled, its frontier
    broken into pieces). Each cluster is an (M, 2) int64 array of (i, j) cells, largest first."""
    mask = frontier_mask(grid, min_hole)
    joined = mask.view(np.uint8)
    k = math.ceil(group / grid.resolution / 2 - 1e-9)
    if k > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        joined = cv2.dilate(joined, disc)
    n, labels = cv2.connectedComponents(joined, connectivity=8)
    if n <= 1:
        return []
    flat = np.where(mask, labels, 0).ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, n + 1))
    w = mask.shape[1]
    clusters = []
    for k in range(n - 1):
        idx = order[bounds[k] : bounds[k + 1]]
        if idx.size:
            clusters.append(np.column_stack((idx // w, idx % w)).astype(np.int64))
    clusters.sort(key=len, reverse=True)
    return clusters


# ---------------------------------------------------------------------------- live map
class _LiveMap:
    """The SLAM map kept up to date cheaply: each new node's scan is fused at its graph pose; the
    whole grid is rebuilt (as `Slam.map` builds it) after the graph was optimised."""

    def __init__(self, slam: Slam, config: GridConfig) -> None:
        self.slam = slam
        self.config = config
        self.grid: OccupancyGrid | None = None
        self._fused = 0
        self._optimizations = -1

    def update(self) -> bool:
        """Bring the grid up to date; True if it changed."""
        slam = self.slam
        if not slam.nodes:
            return False
        if self.grid is None or slam.stats.optimizations != self._optimizations:
            poses = slam.graph.poses
            self.grid = OccupancyGrid.centred(poses[0, 0], poses[0, 1], 4.0, self.config)
            self._fused = 0
            self._optimizations = slam.stats.optimizations
        if self._fused == len(slam.nodes):
            return False
        poses = slam.graph.poses
        for k in range(self._fused, len(slam.nodes)):
            self.grid.integrate(Pose.from_array(poses[k]), slam.nodes[k].scan)
        self._fused = len(slam.nodes)
        return True


# ---------------------------------------------------------------------------- the robot side
class _Driver:
    """Drives the robot, feeds SLAM with every scan and keeps the map-frame pose estimate."""

    def __init__(self, robot: Robot, slam: Slam, config: ExplorationConfig) -> None:
        self.robot = robot
        self.slam = slam
        self.config = config
        odom = robot.odometry()
        self._times = [float(robot.time)]
        self._odom = [odom.pose.as_array()]
        self._map_pose: Pose | None = None  # SLAM pose of the last scan ...
        self._odom_at_scan: Pose | None = None  # ... and the odometry at its stamp
        self.last_scan_time = float(robot.time)
        self.scans = 0
        self.slam_ms: list[float] = []

    def drive(self, v: float, w: float, dt: float) -> bool:
        bumped = bool(self.robot.drive(v, w, dt))
        self._times.append(float(self.robot.time))
        self._odom.append(self.robot.odometry().pose.as_array())
        self._ingest()
        return bumped

    def _ingest(self) -> None:
        scans: list[Scan] = self.robot.scans()
        for scan in scans:
            odom = Pose.from_array(self._odom_at(scan.stamp))
            started = time.perf_counter()
            self._map_pose = self.slam.add(scan, odom)
            self.slam_ms.append((time.perf_counter() - started) * 1e3)
            self._odom_at_scan = odom
            self.scans += 1
        if scans:
            self.last_scan_time = float(self.robot.time)
            # keep the odometry history from just before the last scan on
            keep = max(int(np.searchsorted(self._times, scans[-1].stamp)) - 1, 0)
            if keep > 0:
                del self._times[:keep], self._odom[:keep]

    def _odom_at(self, t: float) -> np.ndarray:
        return odometry_at(self._times, self._odom, t)

    @property
    def has_pose(self) -> bool:
        return self._map_pose is not None

    @property
    def pose(self) -> Pose:
        """Map-frame pose now: the last scan's SLAM pose and the odometry since that scan."""
        return self.pose_from(self._map_pose)

    def pose_from(self, scan_pose: Pose | None) -> Pose:
        """Map-frame pose now, given the map pose of the last scan (e.g. after optimising)."""
        if scan_pose is None or self._odom_at_scan is None:
            return Pose()
        now = Pose.from_array(self._odom[-1])
        return scan_pose.compose(self._odom_at_scan.between(now))


# ---------------------------------------------------------------------------- exploration
def odometry_at(times: list[float], poses: list[np.ndarray], t: float) -> np.ndarray:
    """The odometry pose (x, y, theta) at robot time `t`, interpolated between the poses read
    after each drive command (`times` ascending; the heading along the shorter way round);
    the first or last pose outside them."""
    k = int(np.searchsorted(times, t))
    if k == 0:
        return poses[0]
    if k >= len(times):
        return poses[-1]
    t0, t1 = times[k - 1], times[k]
    f = 0.0 if t1 <= t0 else (t - t0) / (t1 - t0)
    a, b = poses[k - 1], poses[k]
    return np.array(
        [
            a[0] + f * (b[0] - a[0]),
            a[1] + f * (b[1] - a[1]),
            a[2] + f * float(wrap_angle(b[2] - a[2])),
        ]
    )


_GET_FREE_REACH = 0.6  # m: how far the robot looks for room when no plan can start


_FORGET_RADIUS = 1.5  # m: bump marks this close to a shut-in robot may be forgotten
_RETRACE_REACH = 5.0  # m of its own trajectory the robot drives back to get free
_CONTACT_SLACK = 0.075  # m: a mapped obstacle this close to the body explains a bump


def _mapped_contact(
    grid: OccupancyGrid | None, pose: Pose, heading: float, radius: float
) -> tuple[float, float] | None:
    """The nearest occupied cell centre of `grid` touching the front half of the body (within
    radius + _CONTACT_SLACK of its centre, ahead of it along `heading`), or None."""
    if grid is None:
        return None
    reach = radius + _CONTACT_SLACK
    ij = grid.world_to_cell([(pose.x - reach, pose.y - reach), (pose.x + reach, pose.y + reach)])
    h, w = grid.shape
    i0, j0 = max(int(ij[0, 0]), 0), max(int(ij[0, 1]), 0)
    i1, j1 = min(int(ij[1, 0]) + 1, h), min(int(ij[1, 1]) + 1, w)
    if i0 >= i1 or j0 >= j1:
        return None
    ii, jj = np.nonzero(grid.log_odds[i0:i1, j0:j1] > _OCCUPIED_LOG_ODDS)
    if ii.size == 0:
        return None
    xy = grid.cell_to_world(np.column_stack((ii + i0, jj + j0)))
    dx, dy = xy[:, 0] - pose.x, xy[:, 1] - pose.y
    dist = np.hypot(dx, dy)
    ahead = dx * math.cos(heading) + dy * math.sin(heading) > 0
    ok = ahead & (dist <= reach)
    if not ok.any():
        return None
    k = int(np.flatnonzero(ok)[np.argmin(dist[ok])])
    return float(xy[k, 0]), float(xy[k, 1])


def _retrace(poses: np.ndarray, costmap: Costmap, reach: float) -> np.ndarray | None:
    """Waypoints (K, 2) back along the trajectory `poses` (N, 3), newest first, to the most
    recent pose where the body fits (cost <= 252), at most `reach` m of path back; None if there
    is none within reach."""
    if len(poses) < 2:
        return None
    h, w = costmap.shape
    cells = costmap.world_to_cell(poses[:, :2])
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < h) & (cells[:, 1] >= 0) & (cells[:, 1] < w)
    points = [poses[-1, :2]]
    walked = 0.0
    for k in range(len(poses) - 2, -1, -1):
        step = float(np.hypot(*(poses[k, :2] - points[-1])))
        if step >= 0.1:
            points.append(poses[k, :2])
            walked += step
        if walked > reach:
            return None
        if inside[k] and costmap.costs[cells[k, 0], cells[k, 1]] <= MAX_NON_OBSTACLE:
            if step < 0.1:
                points.append(poses[k, :2])
            return np.array(points)
    return None


def _keys(xy: np.ndarray, resolution: float) -> set[tuple[int, int]]:
    """Cells (M, 2 world xy of their centres) as integer map positions, which stay the same
    when the grid grows."""
    keys = np.floor(np.asarray(xy) / resolution).astype(np.int64)
    return set(zip(keys[:, 0].tolist(), keys[:, 1].tolist(), strict=True))


_SAME_FRONTIER = 3  # cells: frontiers of two plans this close are the same one (the map moves)


def _around(keys: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The cells within _SAME_FRONTIER (Chebyshev) of any of `keys`."""
    r = range(-_SAME_FRONTIER, _SAME_FRONTIER + 1)
    return {(i + di, j + dj) for i, j in keys for di in r for dj in r}


def nearest_free(
    costmap: Costmap, pose: Pose, reach: float, blocked: np.ndarray | None = None
) -> tuple[float, float] | None:
    """The nearest cell centre within `reach` m where the body fits (cost <= 252) and the
    straight line from `pose` to it crosses no `blocked` cell (default: the lethal ones) and
    stays on the map; None if there is none."""
    res = costmap.resolution
    if blocked is None:
        blocked = costmap.costs >= LETHAL
    i, j = costmap.world_to_cell([(pose.x, pose.y)])[0]
    h, w = costmap.shape
    r = math.ceil(reach / res)
    i0, i1, j0, j1 = max(i - r, 0), min(i + r + 1, h), max(j - r, 0), min(j + r + 1, w)
    if i0 >= i1 or j0 >= j1:
        return None
    ii, jj = np.nonzero(costmap.costs[i0:i1, j0:j1] <= MAX_NON_OBSTACLE)
    if ii.size == 0:
        return None
    centres = costmap.cell_to_world(np.column_stack((ii + i0, jj + j0)))
    dist = np.hypot(centres[:, 0] - pose.x, centres[:, 1] - pose.y)
    for k in np.argsort(dist, kind="stable"):
        if dist[k] > reach:
            break
        n = max(2, math.ceil(dist[k] / (res / 2)))
        t = np.linspace(0.0, 1.0, n)[:, None]
        line = np.array([pose.x, pose.y]) + t * (centres[k] - np.array([pose.x, pose.y]))
        cells = costmap.world_to_cell(line)
        inside = (cells[:, 0] >= 0) & (cells[:, 0] < h) & (cells[:, 1] >= 0) & (cells[:, 1] < w)
        if inside.all() and not blocked[cells[:, 0], cells[:, 1]].any():
            return float(centres[k, 0]), float(centres[k, 1])
    return None


@dataclass(slots=True)
class _Candidate:
    cells: np.ndarray  # (M, 2) i, j
    xy: np.ndarray  # (M, 2) their centres, map frame
    keys: set[tuple[int, int]]  # the cells by map position: the same frontier from plan to plan
    centroid: tuple[float, float]
    size: float
    goal: tuple[float, float] | None
    attempts: int
    reason: str = ""
    plan: Plan | None = None
    score: float = math.inf


@dataclass(slots=True)
class _Attempt:
    xy: tuple[float, float]
    count: int
    last: str


def footprint_cleared(grid: OccupancyGrid, poses: np.ndarray, radius: float) -> OccupancyGrid:
    """`grid` with the floor a round body of `radius` swept along `poses` ((N, 3) map frame)
    marked free (Nav2's footprint clearing): where the scans put a door's jamb into the way
    the body went, the door the robot came through stays open. Swept: the cells whose centres
    lie within `radius` and half a cell of the path (drawn through the cell centres), which
    makes the cells of the path itself enterable."""
    poses = np.asarray(poses, np.float64).reshape(-1, 3)
    if len(poses) == 0:
        return grid
    width = 2 * (radius + grid.resolution / 2)
    swept = swept_area(poses, grid.shape, grid.resolution, grid.origin, width)
    log_odds = grid.log_odds.copy()
    log_odds[swept] = np.minimum(log_odds[swept], _SWEPT_LOG_ODDS)
    return OccupancyGrid(log_odds, grid.resolution, grid.origin, grid.config)


def open_tight_passages(
    costmap: Costmap, poses: np.ndarray, radius: float, min_area: float = 0.5
) -> np.ndarray:
    """Open in `costmap` the narrow doors a round body of `radius` went through along `poses`
    ((N, 3) map frame) and return their cells ((H, W) bool).

    A door a few cm wider than the body can look closed to plans that keep a margin beyond the
    body (the costmap's robot_radius), the more so as the scans thicken its jambs by a cell.
    Opened: the cells of the path and beside it (within 1.5 cells of its centre line) where
    the body of `radius` overlaps no lethal cell, taken as runs of such cells, and only the
    runs that join two parts of the floor of at least `min_area` m2 each which the plans could
    not join; the margin is kept everywhere else (`Costmap.allow_tight`).
    """
    poses = np.asarray(poses, np.float64).reshape(-1, 3)
    keep = np.zeros(costmap.shape, bool)
    if len(poses) == 0:
        return keep
    res = costmap.resolution
    before = costmap.costs <= MAX_NON_OBSTACLE
    n, parts = cv2.connectedComponents(before.view(np.uint8), connectivity=4)
    big = np.bincount(parts.ravel(), minlength=n) * res * res >= min_area
    big[0] = False
    near = swept_area(poses, costmap.shape, res, costmap.origin, 3 * res)
    costmap.allow_tight(near, radius)
    new = (costmap.costs <= MAX_NON_OBSTACLE) & ~before
    m, runs, stats, _ = cv2.connectedComponentsWithStats(new.view(np.uint8), connectivity=4)
    h, w = costmap.shape
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for k in range(1, m):
        x, y, bw, bh = (int(v) for v in stats[k, :4])
        i0, i1, j0, j1 = max(y - 1, 0), min(y + bh + 1, h), max(x - 1, 0), min(x + bw + 1, w)
        run = runs[i0:i1, j0:j1] == k
        beside = cv2.dilate(run.view(np.uint8), cross).view(bool) & before[i0:i1, j0:j1]
        joined = np.unique(parts[i0:i1, j0:j1][beside])
        if np.count_nonzero(big[joined]) >= 2:
            keep[i0:i1, j0:j1] |= run
    costmap.allow_tight(keep, radius)
    return keep


# rad: a bump marks the body's edge this far to either side of straight ahead too. A low box is
# touched off the heading as often as on it (up to ~90 deg as the robot turns by it); one mark
# straight ahead left it to be found again and again (the default home and 8 homes, seeds 0-2:
# 85 bumps while exploring before, 60 after; 13 on one box at home_51891573 seed 1, now 3)
_BUMP_ARC = 0.5


class _Explorer:
    def __init__(
        self,
        robot: Robot,
        slam: Slam,
        config: ExplorationConfig,
        progress: Callable[[dict], None] | None,
    ) -> None:
        self.config = config
        self.robot = robot
        self.slam = slam
        self.driver = _Driver(robot, slam, config)
        self.live = _LiveMap(slam, replace(slam.config.grid, no_return_cap=config.no_return_cap))
        self.progress = progress
        self.bumps: list[tuple[float, float]] = []  # every bump's contact estimate
        self.marked: list[tuple[float, float]] = []  # those the map does not explain
        self.touched: list[tuple[float, float]] = []  # those on obstacles the map shows
        self.attempts: list[_Attempt] = []
        self.goals_reached = 0
        self.failed = 0
        self.plans = 0
        self.plan_wall = 0.0
        self.costmap: Costmap | None = None
        self.left: list[Frontier] = []
        self.start_blocked = False
        self.plan_grid: OccupancyGrid | None = None  # the grid of the last costmap
        self.forgotten = 0  # times bump marks were forgotten
        self.t0 = float(robot.time)

    # -------------------------------------------------------------- helpers
    def elapsed(self) -> float:
        return float(self.robot.time) - self.t0

    def out_of_time(self) -> bool:
        return self.elapsed() >= self.config.time_budget - 1e-9

    def lidar_stopped(self) -> bool:
        return float(self.robot.time) - self.driver.last_scan_time > self.config.scan_timeout

    def step(self, v: float, w: float, dt: float | None = None) -> bool:
        dt = self.config.control_dt if dt is None else dt
        dt = min(dt, max(self.config.time_budget - self.elapsed(), 0.0))
        if dt <= 0:
            return False
        return self.driver.drive(v, w, dt)

    def attempts_near(self, cells_xy: np.ndarray) -> tuple[int, str]:
        """Failed attempts recorded within attempt_radius of any of these points."""
        best, why = 0, ""
        r2 = self.config.attempt_radius**2
        for a in self.attempts:
            d2 = np.min((cells_xy[:, 0] - a.xy[0]) ** 2 + (cells_xy[:, 1] - a.xy[1]) ** 2)
            if d2 <= r2 and a.count > best:
                best, why = a.count, a.last
        return best, why

    @staticmethod
    def spot(cand: _Candidate) -> tuple[float, float]:
        """The frontier cell nearest to the candidate's goal (map frame): where its failed
        attempts are recorded, so that they match the same frontier later whatever its goal."""
        assert cand.goal is not None
        d2 = (cand.xy[:, 0] - cand.goal[0]) ** 2 + (cand.xy[:, 1] - cand.goal[1]) ** 2
        k = int(np.argmin(d2))
        return float(cand.xy[k, 0]), float(cand.xy[k, 1])

    def fail(self, cand: _Candidate, why: str, drop: bool = False) -> None:
        """Count a failed attempt on the candidate's frontier (`drop`: as many as drop it)."""
        self.failed += 1
        xy = self.spot(cand)
        r = self.config.attempt_radius
        add = self.config.max_attempts if drop else 1
        for a in self.attempts:
            if math.hypot(a.xy[0] - xy[0], a.xy[1] - xy[1]) <= r:
                a.count += add
                a.last = why
                log.debug("attempt %d on frontier near (%.2f, %.2f) failed: %s", a.count, *xy, why)
                return
        self.attempts.append(_Attempt(xy, add, why))
        log.debug("attempt 1 on frontier near (%.2f, %.2f) failed: %s", *xy, why)

    # -------------------------------------------------------------- start
    def start(self) -> None:
        """Stand still for a first scan (the map frame's origin), then turn once around."""
        cfg = self.config
        waited = 0.0
        while self.driver.scans == 0 and waited < cfg.scan_timeout:
            self.driver.drive(0.0, 0.0, cfg.control_dt)
            waited += cfg.control_dt
        if self.driver.scans == 0:
            raise ExplorationError(
                f"the robot gave no lidar scan in {waited:.1f} s of robot time "
                f"(robot.scans() stayed empty): is the lidar running? Nothing to map"
            )
        if self.slam.stats.scans_used == 0 and not self.slam.nodes:
            raise ExplorationError(
                f"the first {self.driver.scans} lidar scans hold fewer than "
                f"{self.slam.config.min_points} returns within {self.slam.config.max_range} m: "
                "the lidar sees nothing to map"
            )
        self.look_around(2 * math.pi, cfg.max_w)

    # -------------------------------------------------------------- planning
    def planning_grid(self) -> OccupancyGrid | None:
        """The live map with the floor the robot's body swept marked free (Nav2's footprint
        clearing): a door the robot came through stays open however the scans from inside
        thicken its jambs. Swept: within the body radius and half a cell of the SLAM
        trajectory, which makes the cells of the path itself enterable."""
        self.live.update()
        grid = self.live.grid
        if grid is None:
            return None
        _, poses = self.slam.trajectory()
        return footprint_cleared(grid, poses, self.config.robot_radius)

    def build_costmap(self, config: CostmapConfig) -> Costmap | None:
        grid = self.planning_grid()
        self.plan_grid = grid
        if grid is None:
            return None
        try:
            costmap = Costmap.from_map(grid, config=config)
        except ValueError:  # no free cell yet
            return None
        if self.marked or self.touched:
            costmap.add_obstacles([*self.marked, *self.touched])
        return costmap

    def candidates(
        self, costmap: Costmap, grid: OccupancyGrid, reachable: np.ndarray
    ) -> list[_Candidate]:
        """The frontier clusters of the live map, each with its goal: the cell nearest to the
        centroid among those within `approach` of the cluster (on a way that crosses no
        occupied cell, so not behind a wall) where the body fits and that the robot can get
        to (`reachable`, (H, W) bool); or with the reason it has none."""
        cfg = self.config
        res = grid.resolution
        min_cells = max(1, math.ceil(cfg.min_frontier / res - 1e-9))
        reach = max(1, math.ceil(cfg.approach / res))
        enterable = (costmap.costs <= MAX_NON_OBSTACLE) & reachable
        h, w = enterable.shape
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        out = []
        for cells in frontier_clusters(grid, cfg.min_hole, cfg.group):
            xy = grid.cell_to_world(cells)
            centroid = (float(xy[:, 0].mean()), float(xy[:, 1].mean()))
            size = len(cells) * res
            attempts, why = self.attempts_near(xy)
            cand = _Candidate(cells, xy, _keys(xy, res), centroid, size, None, attempts)
            out.append(cand)
            if len(cells) < min_cells:
                cand.reason = f"smaller than {cfg.min_frontier} m ({size:.2f} m)"
                continue
            if attempts >= cfg.max_attempts:
                cand.reason = f"dropped after failed attempts (last: {why})"
                continue
            i0, i1 = max(int(cells[:, 0].min()) - reach, 0), min(int(cells[:, 0].max()) + reach, h)
            j0, j1 = max(int(cells[:, 1].min()) - reach, 0), min(int(cells[:, 1].max()) + reach, w)
            near = np.zeros((i1 - i0, j1 - j0), np.uint8)
            near[cells[:, 0] - i0, cells[:, 1] - j0] = 1
            open_space = (grid.log_odds[i0:i1, j0:j1] <= _OCCUPIED_LOG_ODDS).view(np.uint8)
            for _ in range(reach):
                grown = cv2.dilate(near, cross) & open_space
                if np.array_equal(grown, near):
                    break
                near = grown
            ii, jj = np.nonzero(enterable[i0:i1, j0:j1] & near.astype(bool))
            if ii.size == 0:
                cand.reason = (
                    f"unreachable: no place within {cfg.approach} m of it where the robot fits "
                    "and can get to"
                )
                continue
            centres = grid.cell_to_world(np.column_stack((ii + i0, jj + j0)))
            k = int(
                np.argmin((centres[:, 0] - centroid[0]) ** 2 + (centres[:, 1] - centroid[1]) ** 2)
            )
            cand.goal = (float(centres[k, 0]), float(centres[k, 1]))
        return out

    def select(
        self, target: set[tuple[int, int]] | None, *, plan_all: bool = False
    ) -> tuple[_Candidate | None, list[_Candidate]]:
        """The frontier to pursue (None when none can be reached) and every candidate (with
        reasons)."""
        return self.select_on(self.config.costmap, target, plan_all)

    def select_on(
        self, config: CostmapConfig, target: set[tuple[int, int]] | None, plan_all: bool
    ) -> tuple[_Candidate | None, list[_Candidate]]:
        """Plan to the frontiers in order of their score's lower bound on a costmap of the live
        map; the best one (None when none can be reached) and every candidate (with reasons)."""
        cfg = self.config
        costmap = self.build_costmap(config)
        self.costmap = costmap
        if costmap is None:
            return None, []
        grid = self.plan_grid
        assert grid is not None
        pose = self.driver.pose
        planner = Planner(costmap, cfg.planner)

        def bonus(c: _Candidate) -> float:
            return cfg.keep_bonus if target and not target.isdisjoint(c.keys) else 0.0

        # one flood of the costmap: goals only where the robot can get to
        start_labels, labels = self.connected(costmap, pose)
        self.start_blocked = not start_labels
        reachable = np.isin(labels, np.fromiter(start_labels, np.int32, len(start_labels)))
        cands = self.candidates(costmap, grid, reachable)
        if self.start_blocked:
            for c in cands:
                c.reason = c.reason or "not planned: the robot's own cell is blocked"
            self.plans += 1
            return None, cands
        open_ = [c for c in cands if not c.reason]
        bound = {
            id(c): cfg.distance_weight * math.hypot(c.goal[0] - pose.x, c.goal[1] - pose.y)
            - cfg.size_weight * c.size
            - bonus(c)
            for c in open_
        }
        open_.sort(key=lambda c: bound[id(c)])
        best: _Candidate | None = None
        start_blocked = 0
        for c in open_:
            if best is not None and not plan_all and bound[id(c)] >= best.score:
                break
            try:
                c.plan = planner.plan((pose.x, pose.y), c.goal)
            except NoPathFound as exc:
                if exc.reason == "start":
                    start_blocked += 1
                c.reason = f"unreachable: {exc}"
                continue
            c.score = cfg.distance_weight * c.plan.cost - cfg.size_weight * c.size - bonus(c)
            if best is None or c.score < best.score:
                best = c
        self.start_blocked = best is None and start_blocked > 0
        self.plans += 1
        return best, cands

    def connected(self, costmap: Costmap, pose: Pose) -> tuple[set[int], np.ndarray]:
        """Labels of the 4-connected regions of passable cells (enterable or unknown) the robot
        can start from (its own cell's, or those within the planner's start tolerance when its
        cell is too close to an obstacle), and the (H, W) label raster."""
        costs = costmap.costs
        passable = (costs <= MAX_NON_OBSTACLE) | (costs == UNKNOWN)
        # 4-connected: A* takes a diagonal step only between two enterable cells
        _, labels = cv2.connectedComponents(passable.view(np.uint8), connectivity=4)
        i, j = costmap.world_to_cell([(pose.x, pose.y)])[0]
        h, w = costs.shape
        if not (0 <= i < h and 0 <= j < w):
            return set(), labels
        if passable[i, j]:
            return {int(labels[i, j])}, labels
        r = math.ceil(self.config.planner.start_tolerance / costmap.resolution)
        near = labels[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1]
        return {int(v) for v in np.unique(near) if v > 0}, labels

    def forget_marks(self) -> bool:
        """No frontier is reachable: if bump marks are what shuts the robot in, or out of the
        rest of the home, forget them (at most `max_forget` times a run) and return True.

        A mark is placed straight ahead of the robot, but the bumper may have touched the
        obstacle anywhere on the front of the body, up to a body radius to the side: a few
        marks around one low box in a corridor can close a way the robot can in fact take
        beside it. Without them it may bump that obstacle again, and mark it again, better
        placed. The marks near the robot go first; when that does not open a way to a
        frontier, every mark.
        """
        cfg = self.config
        if self.forgotten >= cfg.max_forget or not self.marked:
            return False
        pose = self.driver.pose
        near = [
            m for m in self.marked if math.hypot(m[0] - pose.x, m[1] - pose.y) <= _FORGET_RADIUS
        ]
        saved = self.marked
        for drop in (near, saved) if near and len(near) < len(saved) else (saved,):
            self.marked = [m for m in saved if m not in drop]
            best, _ = self.select(None)
            if best is not None:
                self.forgotten += 1
                log.info("forgot %d of %d bump marks that closed the way", len(drop), len(saved))
                return True
        self.marked = saved
        return False

    def remember_left(self, cands: list[_Candidate]) -> None:
        self.left = [
            Frontier(
                c.centroid,
                c.size,
                len(c.cells),
                c.goal,
                None if c.plan is None else c.plan.cost,
                c.attempts,
                c.reason or "not pursued",
            )
            for c in cands
        ]

    # -------------------------------------------------------------- main loop
    def run(self) -> str:
        cfg = self.config
        self.start()
        target: _Candidate | None = None
        stuck = 0
        while True:
            if self.out_of_time():
                return TIME_BUDGET
            if self.lidar_stopped():
                return LIDAR_STOPPED
            started = time.perf_counter()
            best, cands = self.select(None if target is None else _around(target.keys))
            self.plan_wall += time.perf_counter() - started
            if best is None:
                if self.start_blocked:
                    stuck += 1
                    if stuck >= cfg.max_stuck:
                        self.remember_left(cands)
                        return STUCK
                    self.get_free()
                    continue
                if self.forget_marks():
                    continue
                self.remember_left(cands)
                return NO_FRONTIER
            stuck = 0
            target = best
            self.report(cands, best)
            before = float(self.robot.time)
            outcome = self.follow(best)
            log.debug("frontier at (%.2f, %.2f): %s", *best.goal, outcome)
            if outcome == "reached":
                self.goals_reached += 1
                # a frontier still there after the robot stood at its goal: SLAM fuses scans
                # only as the robot moves, so look around once (a slow turn in place) and
                # count a failed attempt if that did not clear it
                if self.frontier_near(best) and not self.out_of_time():
                    self.look_around(cfg.look_angle, cfg.min_w)
                    if self.frontier_near(best):
                        # the robot saw all it can from the nearest place its body fits:
                        # coming back would not see more
                        self.fail(best, "still there after a look around from its goal", drop=True)
                        continue
            elif outcome == "stalled" or (outcome == "bumped" and self.bumped_near(best.goal)):
                # a bump on the way is marked and planned around; one at the frontier may
                # mean that what lies behind it is an obstacle the lidar cannot see
                self.fail(best, outcome)
                continue
            elif outcome == "gone":
                # explored on the way (then the count does not matter), or a frontier that
                # flickers with the map updates at the mouth of a pocket the lidar cannot see
                # into: without a count, the robot would come back to it for ever
                self.fail(best, "vanished before it was reached")
                continue
            if float(self.robot.time) <= before:
                # nothing moved and nothing failed: never loop on the same decision
                self.fail(best, "no motion")

    def bumped_near(self, goal: tuple[float, float]) -> bool:
        """Whether the last bump was within `approach` + two body diameters of `goal`."""
        cfg = self.config
        bx, by = self.bumps[-1]
        return math.hypot(bx - goal[0], by - goal[1]) <= cfg.approach + 4 * cfg.robot_radius

    def frontier_near(self, cand: _Candidate) -> bool:
        """Whether frontier cells are left within attempt_radius of the candidate's spot."""
        grid = self.planning_grid()
        assert grid is not None
        spot = self.spot(cand)
        xy = grid.cell_to_world(np.argwhere(frontier_mask(grid, self.config.min_hole)))
        near = np.hypot(xy[:, 0] - spot[0], xy[:, 1] - spot[1]) <= self.config.attempt_radius
        return bool(near.any())

    def look_around(self, angle: float, rate: float) -> None:
        """Turn in place by `angle` rad at `rate` rad/s (a round body turning in place touches
        nothing): every scan on the way becomes a SLAM node, fused into the map."""
        cfg = self.config
        turned = 0.0
        while turned < angle - 1e-9 and not self.out_of_time():
            dt = min(cfg.control_dt, (angle - turned) / rate)
            self.step(0.0, rate, dt)
            turned += rate * dt

    def follow(self, cand: _Candidate) -> str:
        """Drive along the candidate's plan, replanning it every replan_period s. Returns
        "reached", "bumped", "stalled", "switch" (another frontier is better now), "gone" (this
        one was not found in `vanish_plans` plans in a row), "time" or "lidar"."""
        cfg = self.config
        plan = cand.plan
        assert plan is not None and cand.goal is not None
        goal = cand.goal
        waypoints = plan.waypoints
        k = 1
        last_plan = self.robot.time
        best_left = plan.length
        last_progress = self.robot.time
        missing = 0
        while True:
            if self.out_of_time():
                return "time"
            if self.lidar_stopped():
                return "lidar"
            pose = self.driver.pose
            if math.hypot(goal[0] - pose.x, goal[1] - pose.y) <= cfg.goal_tolerance:
                return "reached"
            if self.robot.time - last_plan >= cfg.replan_period:
                started = time.perf_counter()
                here = _around(cand.keys)
                best, cands = self.select(here)
                self.plan_wall += time.perf_counter() - started
                last_plan = self.robot.time
                if best is not None and not here.isdisjoint(best.keys):
                    missing = 0
                    cand.plan, goal, waypoints, k = best.plan, best.goal, best.plan.waypoints, 1
                    cand.goal, cand.cells, cand.xy, cand.keys = goal, best.cells, best.xy, best.keys
                    left = best.plan.length
                    if left < best_left - cfg.progress_step:
                        best_left, last_progress = left, self.robot.time
                    elif self.robot.time - last_progress > cfg.stall_time:
                        return "stalled"
                elif best is not None and any(
                    not c.reason and not here.isdisjoint(c.keys) for c in cands
                ):
                    return "switch"  # another frontier is better now
                else:
                    # gone: explored, or out of reach; or only for this map update (a small
                    # frontier flickers as scans come in): keep going for `vanish_plans` plans
                    missing += 1
                    if missing >= cfg.vanish_plans:
                        return "gone"
            k, v, w = self.control(pose, waypoints, k)
            if self.step(v, w):
                self.on_bump(v)
                return "bumped"

    def control(self, pose: Pose, waypoints: np.ndarray, k: int) -> tuple[int, float, float]:
        """The next waypoint not yet passed (index from k on) and the command (v, w) towards it:
        a turn in place above align_tolerance of heading error, else forward with a
        proportional heading correction."""
        cfg = self.config
        while k < len(waypoints) - 1 and (
            math.hypot(waypoints[k, 0] - pose.x, waypoints[k, 1] - pose.y) <= cfg.waypoint_tolerance
        ):
            k += 1
        tx, ty = waypoints[k]
        dist = math.hypot(tx - pose.x, ty - pose.y)
        err = float(wrap_angle(math.atan2(ty - pose.y, tx - pose.x) - pose.theta))
        if abs(err) > cfg.align_tolerance:
            w = math.copysign(min(cfg.max_w, max(cfg.min_w, cfg.heading_gain * abs(err))), err)
            return k, 0.0, w
        w = float(np.clip(cfg.heading_gain * err, -cfg.max_w, cfg.max_w))
        return k, min(cfg.max_v, dist / cfg.control_dt) * math.cos(err), w

    def on_bump(self, v: float) -> None:
        """Record the bump and back off. The contact is a mapped obstacle touching the front
        of the body (in the direction of motion) when the live map has one there: the map
        explains the bump (the robot came too close) and nothing is marked. Otherwise it is an
        obstacle the lidar cannot see: its expected contact point is the one straight ahead
        on the body's edge, and the costmap gets it and the edge points `_BUMP_ARC` to either
        side, as the bumper does not say where on the front arc it was pressed."""
        cfg = self.config
        pose = self.driver.pose
        heading = pose.theta if v >= 0 else pose.theta + math.pi
        self.live.update()
        mapped = _mapped_contact(self.live.grid, pose, heading, cfg.robot_radius)
        if mapped is not None:
            # the map shows it, a few cm off where the robot thought it was: nothing new to
            # remember, but the plans keep off that spot (else the next plan, from where the
            # robot backed off to, leads straight into it again, bump after bump)
            self.bumps.append(mapped)
            self.touched.append(mapped)
            log.debug("bump at (%.2f, %.2f): a mapped obstacle", *mapped)
        else:
            reach = cfg.robot_radius + 0.01
            arc = [
                (pose.x + reach * math.cos(heading + off), pose.y + reach * math.sin(heading + off))
                for off in (0.0, -_BUMP_ARC, _BUMP_ARC)
            ]
            point = arc[0]  # the expected contact, straight ahead
            self.bumps.append(point)
            self.marked += arc
            log.debug("bump at (%.2f, %.2f): an obstacle the map does not show", *point)
        if cfg.backoff > 0:
            speed = min(cfg.max_v, 0.1)
            self.step(-math.copysign(speed, v if v != 0 else 1.0), 0.0, cfg.backoff / speed)

    def get_free(self) -> None:
        """No plan can start from the robot's pose (too close to obstacles): drive back along
        its own trajectory (free, since it came that way) to the last pose where the body had
        room; failing that, straight to the nearest such cell, or back off and turn."""
        cfg = self.config
        costmap = self.costmap
        pose = self.driver.pose
        speed = min(cfg.max_v, 0.1)
        if costmap is None:
            self.step(0.0, cfg.max_w, math.radians(30) / cfg.max_w)
            return
        back = _retrace(self.slam.trajectory()[1], costmap, _RETRACE_REACH)
        if back is not None and len(back) >= 2:
            log.debug("no room to plan from: retracing %d points of the trajectory", len(back))
            k = 1
            length = float(np.sum(np.hypot(*np.diff(back, axis=0).T)))
            end = float(self.robot.time) + 3.0 * length / cfg.max_v + 10.0
            while float(self.robot.time) < end and not self.out_of_time():
                pose = self.driver.pose
                goal = back[-1]
                if math.hypot(goal[0] - pose.x, goal[1] - pose.y) <= cfg.waypoint_tolerance:
                    return
                k, v, w = self.control(pose, back, k)
                if self.step(min(v, 0.15), w):
                    self.on_bump(v)
                    return
            return
        target = nearest_free(costmap, pose, _GET_FREE_REACH)
        if target is not None:
            heading = math.atan2(target[1] - pose.y, target[0] - pose.x)
            err = float(wrap_angle(heading - pose.theta))
            self.step(0.0, math.copysign(cfg.max_w, err), abs(err) / cfg.max_w)
            dist = math.hypot(target[0] - pose.x, target[1] - pose.y)
            if self.step(speed, 0.0, dist / speed):
                self.on_bump(speed)
            return
        if self.step(-speed, 0.0, max(cfg.backoff, 0.05) / speed):
            self.on_bump(-speed)
        self.step(0.0, cfg.max_w, math.radians(30) / cfg.max_w)

    def report(self, cands: list[_Candidate], best: _Candidate) -> None:
        if self.progress is None:
            return
        self.progress(
            {
                "time_s": round(self.elapsed(), 2),
                "scans": self.driver.scans,
                "frontiers": sum(1 for c in cands if not c.reason or c.plan is not None),
                "target": best.goal,
                "bumps": len(self.bumps),
            }
        )


def explore(
    robot: Robot,
    config: ExplorationConfig | None = None,
    slam: Slam | None = None,
    progress: Callable[[dict], None] | None = None,
) -> ExplorationResult:
    """Explore with `robot` until no reachable frontier is left (or the time budget runs out),
    running SLAM live on every scan; returns the rebuilt map and what happened.

    `slam`: the Slam to feed (default a fresh `Slam()`; with a fresh one the map frame is the
    robot's pose at the start, see the module docstring). `progress(info)` is called before each
    new frontier is pursued with {"time_s", "scans", "frontiers", "target", "bumps"}.
    Raises TypeError when `robot` is not a `firmware_bridge.Robot`, ExplorationError when its
    lidar gives no scan (or nothing within range) at the start. A lidar that stops later ends the
    exploration with stop_reason LIDAR_STOPPED and the map so far.
    """
    if not isinstance(robot, Robot):
        missing = [
            name
            for name in ("time", "bumper_pressed", "drive", "goto", "scans", "odometry")
            if not hasattr(robot, name)
        ]
        raise TypeError(
            f"expected a firmware_bridge.Robot, got {type(robot).__qualname__} (missing "
            f"{', '.join(missing)})"
        )
    config = config or ExplorationConfig()
    if slam is None:
        slam = Slam()
    elif not isinstance(slam, Slam):
        raise TypeError(f"slam must be a navigation.slam.Slam, got {type(slam).__qualname__}")
    wall = time.perf_counter()
    explorer = _Explorer(robot, slam, config, progress)
    reason = explorer.run()
    if reason != NO_FRONTIER and not explorer.left:
        # stopped early: say which frontiers were still open
        best, cands = explorer.select(None, plan_all=True)
        explorer.remember_left(cands)
    slam.finish()
    stamps, poses = slam.trajectory()
    steps = np.diff(poses[:, :2], axis=0) if len(poses) > 1 else np.zeros((0, 2))
    result = ExplorationResult(
        grid=slam.map(explorer.live.config),
        stop_reason=reason,
        time_s=explorer.elapsed(),
        path_m=float(np.sum(np.hypot(steps[:, 0], steps[:, 1]))),
        scans=explorer.driver.scans,
        frontiers_left=explorer.left,
        bumps=list(explorer.bumps),
        obstacles=list(explorer.marked),
        pose=explorer.driver.pose_from(Pose.from_array(poses[-1])),
        stamps=stamps,
        trajectory=poses,
        pose_graph=slam.graph.to_arrays(),
        slam=slam,
        goals_reached=explorer.goals_reached,
        failed_attempts=explorer.failed,
        plans=explorer.plans,
        slam_ms=np.asarray(explorer.driver.slam_ms),
        wall_s=time.perf_counter() - wall,
        plan_wall_s=explorer.plan_wall,
    )
    log.info(
        "explored for %.0f s (%s): %.1f m, %d scans, %d bumps, %d frontiers left",
        result.time_s,
        reason,
        result.path_m,
        result.scans,
        len(result.bumps),
        len(result.frontiers_left),
    )
    return result


# ---------------------------------------------------------------------------- evaluation
@dataclass(frozen=True, slots=True)
class MapScore:
    """A rebuilt map against the world it was made in (world raster cells).

    free_iou: |map free & true free| / |map free | true free|, where true free is every cell
    that is not a lidar-visible wall nor outside (what `relocalize_bench.map_from_world` shows
    free; lidar-invisible obstacles are floor to a lidar map), and map free cells that fall
    outside the world raster count against the map.
    occupied_iou: with a tolerance of `tolerance` cells: the true cells are the visible faces of
    the walls (wall cells next to true free), the intersection is the true faces within
    `tolerance` of a map-occupied cell, the union adds the map-occupied cells farther than
    `tolerance` from any wall.
    explored: share of the reachable floor (`coverage.reachable_floor` from the world's start)
    that the map shows free.
    """

    free_iou: float
    free_precision: float
    free_recall: float
    occupied_iou: float
    explored: float
    map_free_m2: float
    true_free_m2: float


def map_iou(
    grid: OccupancyGrid,
    world: World,
    *,
    frame: Pose | None = None,
    region: np.ndarray | None = None,
    tolerance: int = 1,
) -> MapScore:
    """Compare a rebuilt map with the world (see MapScore).

    `frame`: the world pose of the map frame's origin; default `world.start`, right for a map
    rebuilt by `explore` with a fresh Slam from the start pose (world = start.compose(map)).
    `region`: optional (H, W) bool world raster; only its cells are compared (e.g. all but a room
    the robot cannot enter). Map cells are sampled at the world cell centres (nearest cell).
    """
    if not isinstance(grid, OccupancyGrid):
        raise TypeError(f"grid must be a maps.grid.OccupancyGrid, got {type(grid).__qualname__}")
    if not isinstance(world, World):
        raise TypeError(f"world must be a firmware_bridge.World, got {type(world).__qualname__}")
    if not (isinstance(tolerance, int) and tolerance >= 0):
        raise ValueError(f"tolerance must be an int >= 0 cells, got {tolerance!r}")
    frame = world.start if frame is None else frame
    h, w = world.shape
    if region is None:
        region = np.ones((h, w), bool)
    else:
        region = np.asarray(region, dtype=bool)
        if region.shape != (h, w):
            raise ValueError(f"region {region.shape} must have the world's shape {(h, w)}")
    res = world.resolution
    lo = grid.log_odds
    # world cell centres -> map frame -> map cells
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    wx = world.origin[0] + (jj + 0.5) * res
    wy = world.origin[1] + (ii + 0.5) * res
    inv = frame.inverse()
    c, s = math.cos(inv.theta), math.sin(inv.theta)
    mx = inv.x + c * wx - s * wy
    my = inv.y + s * wx + c * wy
    cells = grid.world_to_cell(np.column_stack((mx.ravel(), my.ravel())))
    inside = grid.in_bounds(cells)
    sampled = np.zeros(h * w, np.float32)
    sampled[inside] = lo[cells[inside, 0], cells[inside, 1]]
    sampled = sampled.reshape(h, w)
    map_free = (sampled < _FREE_LOG_ODDS) & region
    map_occ = (sampled > _OCCUPIED_LOG_ODDS) & region

    # map free cells that land outside the world raster count as false free
    gh, gw = grid.shape
    gj, gi = np.meshgrid(np.arange(gw), np.arange(gh))
    gx = grid.origin[0] + (gj + 0.5) * grid.resolution
    gy = grid.origin[1] + (gi + 0.5) * grid.resolution
    c2, s2 = math.cos(frame.theta), math.sin(frame.theta)
    px = frame.x + c2 * gx - s2 * gy
    py = frame.y + s2 * gx + c2 * gy
    pj = np.floor((px - world.origin[0]) / res)
    pi = np.floor((py - world.origin[1]) / res)
    beyond = (pi < 0) | (pi >= h) | (pj < 0) | (pj >= w)
    extra_free = int(np.count_nonzero(beyond & (lo < _FREE_LOG_ODDS)))
    if grid.resolution != res:
        extra_free = round(extra_free * (grid.resolution / res) ** 2)
    if not region.all():
        extra_free = 0  # a region limits the comparison to the world raster

    true_free = ~world.walls & ~world.outside & region
    both = int(np.count_nonzero(map_free & true_free))
    n_map = int(np.count_nonzero(map_free)) + extra_free
    n_true = int(np.count_nonzero(true_free))
    union = n_map + n_true - both

    k = 2 * tolerance + 1
    square = np.ones((k, k), np.uint8)
    near_free = cv2.dilate(
        (~world.walls & ~world.outside).view(np.uint8), np.ones((3, 3), np.uint8)
    )
    faces = world.walls & near_free.astype(bool) & region
    near_map_occ = cv2.dilate(map_occ.view(np.uint8), square).astype(bool)
    near_wall = cv2.dilate(world.walls.view(np.uint8), square).astype(bool)
    matched = int(np.count_nonzero(faces & near_map_occ))
    stray = int(np.count_nonzero(map_occ & ~near_wall))
    occ_union = int(np.count_nonzero(faces)) + stray

    floor = reachable_floor(
        world.free, res, world.origin, world.start, CoverageConfig(robot_radius=ROBOT_RADIUS)
    )
    floor &= region
    n_floor = int(np.count_nonzero(floor))
    return MapScore(
        free_iou=both / union if union else 0.0,
        free_precision=both / n_map if n_map else 0.0,
        free_recall=both / n_true if n_true else 0.0,
        occupied_iou=matched / occ_union if occ_union else 0.0,
        explored=int(np.count_nonzero(floor & map_free)) / n_floor if n_floor else 0.0,
        map_free_m2=n_map * res * res,
        true_free_m2=n_true * res * res,
    )
