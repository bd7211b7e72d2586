"""The mission: a vacuum that lost its map rebuilds it, finds itself again and cleans room by room.

Phases, each driving a `firmware_bridge.robot.Robot` and nothing else (no simulator truth):
1. `rebuild_map`: frontier exploration with SLAM running live (navigation.exploration); the map
   is saved to the store as a new version with its pose graph, the dock at the map origin, and
   the exploration's bump points go into the floor's obstacle memory.
2. `relocalize_robot`: after a restart the odometry starts again at zero somewhere in the home;
   relocalization over every floor of the store (navigation.floors) gives `map_from_odom`.
3. `clean`: the loop sense -> localize -> plan -> command -> react.
   - Rooms are segmented on the stored map (navigation.rooms) and saved with it; the costmap
     holds the map and the obstacle memory (navigation.costmap); the coverage plan
     (navigation.coverage_plan) is driven segment by segment, room by room. Both see the
     floor the exploring robot's body swept (its pose graph) as free: SLAM puts a door's
     jamb a few cm into the way the robot came through it, and the door looks closed. A
     door the body went through with less room than the plans' 1 cm margin is opened on
     its centre line at the highest cost (exploration.open_tight_passages).
   - Sense and localize: every `track_every`-th scan goes to a `localization.Tracker` with the
     odometry at its time (interpolated between commands) and the mean speeds over its
     revolution (to de-skew it); the pose between scans is the tracked `map_from_odom`
     composed with the odometry now.
   - Command: a segment's polyline, simplified within `smoothing` and without nooks a few cm
     deep, is driven by pure pursuit (aim `lookahead` further along; Coulter 1992) except at
     its sharp corners (turns above `corner_angle`), where the robot stops and turns in place;
     commands last `control_dt` (turns at most 0.5 s each, so the odometry's heading change per
     command stays well below pi). On the last 0.25 m of a leg, the robot slows down and stops
     1.5 cm short of what the last scan shows in the body's way, and the leg counts as driven:
     a leg placed by a map or a pose a few cm off would end with the bumper in a wall the lidar
     sees. Edge passes are thinned within `edge_smoothing` and moved leg by leg up to
     `edge_shift` towards the wall beside them, `edge_clearance` from the wall cells, or from
     the hits of well-tracked scans (`edge_hit_range` from the lidar) where those show the
     wall's face behind its cells (navigation.wall_hug): whole cells would keep the brush
     several cm off every wall. Where the last scan shows a straight wall beside the robot, the
     pursuit target is moved across to `edge_gauge` from that face (a wall follower: the map
     and the tracked pose are each a few cm off, the gap the lidar measures is not). A bump
     during such a pass is taken for an obstacle the map does not hold.
   - React: a bump on an obstacle the map does not show marks the arc where the body may have
     touched it (`bump_depth` beyond the body's edge, `contact_spread` to each side, and a
     row `bump_deeper` further out; the bumper does not tell where) in the costmap and in the
     store's obstacle memory; a second such bump near the first also marks a line across the
     approach (the obstacle is wider). Marks are guesses: those the body has passed over
     without a bump, before or after, are dropped before each plan (`carve`), except the
     contact point itself. A bump on an obstacle the map shows (a tracking error of a few
     cm) marks only the contact point in the costmap, nothing in the store. Either
     way the robot backs off, drives to the nearest cell its body may stand on if the marks
     cover it, and what is left of the room is replanned from there, the floor swept so far
     (the brush along the estimated path) counted as cleaned. Stuck (`max_bumps` bumps within
     `stuck_radius`, no progress for `stall_time`, or no plan from the robot's cell): the
     recovery sequence gets free of the marks, or, shut in a pocket by them, backs out along
     its own path (floor it has driven), or turns towards the most open direction of the
     costmap and drives up to `recovery_distance` into it; then it goes on with the next
     segment. A plan made from a pocket never counts a room as done. Tracking lost:
     relocalize on the same floor, then replan.
   - After each room, the progress (rooms done, the swept area, the path) is saved to the store
     as a new version of the floor (the pose graph carried over).
4. `run_story`: the whole story in the simulator (`vacnav run`): explore from the dock, save,
   reboot at a random pose, relocalize (or, refused, start again from the dock), clean, then
   score everything against the simulator's truth, with the bump-and-turn baseline for the same
   robot time beside it.

Frames: every pose and point of phases 1-3 is in the stored map's frame. A map rebuilt by
`rebuild_map` has its origin where the exploration began (SLAM's first scan); in the story that
is the dock, `world.start`, so a world point is `world.start.compose(map point)`. Only the scoring
of `run_story` converts, at the edge. Units: metres, radians, seconds of robot time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy.spatial import cKDTree

from firmware_bridge.robot import Robot
from firmware_bridge.simulated import SimConfig, SimulatedRobot
from firmware_bridge.world import World, robot_room
from maps.geometry import Pose, wrap_angle
from maps.model import MapDocument, MapPath
from maps.model import Room as MapRoom
from maps.scan import Odometry
from maps.store import MapStore, VersionInfo, check_floor_name
from navigation.baseline import BaselineConfig, run_bump_and_turn
from navigation.costmap import MAX_NON_OBSTACLE, Costmap, CostmapConfig
from navigation.coverage import (
    CoverageConfig,
    body_cells,
    coverage_ratio,
    reachable_floor,
    swept_area,
)
from navigation.coverage_plan import CoveragePlan, CoveragePlanConfig, plan_coverage
from navigation.errors import NavigationError, NoPathFound, check_numbers
from navigation.exploration import (
    ExplorationConfig,
    ExplorationResult,
    explore,
    footprint_cleared,
    map_iou,
    nearest_free,
    odometry_at,
    open_tight_passages,
)
from navigation.floors import FloorResult, LocalizerCache, relocalize_floors
from navigation.localization import Localizer, LocalizerConfig, Tracker
from navigation.planner import Planner
from navigation.rooms import RoomConfig, Segmentation, segment_rooms
from navigation.wall_hug import WallHits, hug_walls, side_wall

log = logging.getLogger(__name__)

DONE = "done"
TIME_BUDGET = "time budget"
LOST = "lost"
STUCK = "stuck"

Progress = Callable[[dict], None]


class MissionError(NavigationError):
    """A mission cannot be run: the world or the map gives the robot no floor to clean."""


@dataclass(frozen=True, slots=True)
class MissionConfig:
    """Mission parameters (SI units); one set of defaults for every home."""

    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    rooms: RoomConfig = field(default_factory=RoomConfig)
    body_radius: float = 0.17  # m, the round body (where a bump's contact point is)
    # plans keep the body 1 cm off what the map shows (tracking errors of a few cm on a map
    # whose walls are jagged by a cell; with no margin the robot grazes walls; 2 cm cost 3
    # points of coverage in the default home), and each point of the obstacle memory marks a
    # disc of obstacle_radius: a bump marks two rows of them (see bump_depth)
    costmap: CostmapConfig = field(
        default_factory=lambda: CostmapConfig(robot_radius=0.18, obstacle_radius=0.1)
    )
    # lanes overlap by a few cm, so tracking errors of that size leave no strip unswept
    coverage: CoveragePlanConfig = field(
        default_factory=lambda: CoveragePlanConfig(lane_overlap=0.03)
    )
    # relocalization and tracking in a map the robot rebuilt itself: on the true pose, 2-4 % of
    # the beams of a scan end beyond a wall of such a map (single-cell table legs smeared over
    # two cells, noisy wall faces), up to ~10 % on a scan, where a map drawn from the plan shows
    # almost none; the through-walls limits are raised to match
    localizer: LocalizerConfig = field(
        default_factory=lambda: LocalizerConfig(
            max_through=0.05,
            max_through_scan=0.12,
            max_through_low=0.04,
            rival_through=0.15,
            drop_through=0.25,
            track_lost_through=0.35,
        )
    )
    time_budget: float = 86400.0  # s of robot time for the cleaning: a safety cap
    control_dt: float = 0.2  # s per drive command while following a path
    max_v: float = 0.3  # m/s
    max_w: float = 1.2  # rad/s, turning in place
    heading_gain: float = 2.0  # 1/s: turn rate per rad of heading error while driving
    align_tolerance: float = 0.8  # rad: above this heading error, turn in place first; below
    # it the robot drives on, slowed by the share of align_tolerance the error takes
    lookahead: float = 0.15  # m: pure pursuit aims this far along the path
    corner_angle: float = math.radians(60)  # a sharper turn between legs of at least
    corner_leg: float = 0.1  # ... this length (m) is driven exactly: stop, turn in place
    reach_tolerance: float = 0.02  # m short of a leg's end (along it) that counts as there
    # a planned polyline is driven simplified (Douglas-Peucker) within this distance: the
    # cell-by-cell steps of an edge pass along a jagged wall become fewer, longer legs
    smoothing: float = 0.025
    # edge passes: each leg moved towards the wall beside it, up to edge_shift, while the
    # centre keeps edge_clearance from the wall cells' edges (navigation.wall_hug): the
    # costmap's whole cells would keep it 4.5 cm further out than the body needs
    # (thinned by edge_smoothing first: straight legs along a jagged wall, then each moved
    # out of or into the jags as the clearance allows)
    edge_clearance: float = 0.18
    edge_shift: float = 0.06
    edge_smoothing: float = 0.05
    edge_hit_range: float = 1.5  # m: hits this near the lidar place the walls' faces
    # ... and driven by the lidar where a straight wall runs beside the robot: its centre held
    # edge_gauge from the face the last scan shows (navigation.wall_hug.side_wall), which
    # neither the map nor the tracked pose can give to a cm; 0 drives the plan as it is
    edge_gauge: float = 0.185
    backoff: float = 0.06  # m reversed after a bump
    # the bumper does not say where it was pressed; contacts in the simulator come up to ~70
    # deg off the heading when the robot passes an obstacle. A bump marks an arc of points
    # `bump_depth` beyond the body's edge, `contact_spread` to each side, and a second row
    # `bump_deeper` further out over the middle of the arc: a low obstacle (a shoe, a bin, a
    # pet bowl, the corner of a low shelf, up to ~0.35 m across) is then held as a whole
    bump_depth: float = 0.05
    contact_spread: float = math.radians(60)
    bump_deeper: float = 0.15
    # a bump on an unmapped obstacle within grow_distance of an earlier one: the obstacle is
    # wider than the arc of discs; a line across the approach, grow_radius to each side
    grow_distance: float = 0.6
    grow_radius: float = 0.3
    mapped_tolerance: float = 0.04  # m: a contact this close to a mapped obstacle is that one
    stuck_radius: float = 0.3  # m: bumps this close to the previous one count as no progress
    max_bumps: int = 3  # such bumps in a row: stuck
    stall_time: float = 20.0  # s without progress along a segment: stuck
    progress_step: float = 0.05  # m the distance left on a segment must shrink to count
    recovery_distance: float = 0.3  # m the recovery sequence drives into open space at most
    free_reach: float = 0.6  # m: how far a robot on a cell it may not stand on looks for one
    recovery_skip: float = 0.5  # m of the segment given up where the robot got stuck
    max_recoveries: int = 20  # recoveries in one cleaning before giving up (STUCK)
    max_relocalizations: int = 3  # times tracking may be lost and found again
    progress_period: float = 5.0  # s of robot time between progress reports
    track_every: int = 2  # scans: the tracker re-matches every n-th (odometry in between)

    def __post_init__(self) -> None:
        check_numbers(
            self,
            positive=(
                "time_budget control_dt max_v max_w heading_gain align_tolerance lookahead "
                "reach_tolerance stall_time stuck_radius progress_period"
            ),
            non_negative=(
                "contact_spread corner_angle corner_leg body_radius smoothing edge_clearance "
                "edge_shift edge_smoothing edge_hit_range edge_gauge grow_distance bump_deeper "
                "grow_radius backoff bump_depth mapped_tolerance progress_step "
                "recovery_distance recovery_skip free_reach"
            ),
        )
        if not (isinstance(self.track_every, int) and self.track_every >= 1):
            raise ValueError(
                f"MissionConfig.track_every must be an int >= 1, got {self.track_every!r}"
            )
        for name in ("max_bumps", "max_recoveries", "max_relocalizations"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"MissionConfig.{name} must be an int >= 0, got {value!r}")


# ---------------------------------------------------------------------------- phase 1: rebuild
@dataclass(slots=True)
class RebuiltMap:
    """What `rebuild_map` did: the exploration and the stored version (map frame)."""

    exploration: ExplorationResult
    version: VersionInfo
    document: MapDocument
    remembered: int  # exploration bumps put into the obstacle memory


def rebuild_map(
    robot: Robot,
    store: MapStore,
    floor: str,
    config: MissionConfig | None = None,
    *,
    on_dock: bool = True,
    time_budget: float | None = None,
    progress: Progress | None = None,
) -> RebuiltMap:
    """Explore with `robot` from nothing, running SLAM, and save the map as a new version of
    `floor` in `store` (source "slam", with the pose graph and the explored path).

    `on_dock`: the robot starts on its dock, which is then stored at the map origin.
    `time_budget` (s) caps the exploration's own. The exploration's bump points (map frame)
    join the floor's obstacle memory. Raises ExplorationError when the lidar gives nothing.
    """
    config = config or MissionConfig()
    check_floor_name(floor)
    explore_config = config.exploration
    if time_budget is not None:
        explore_config = replace(
            explore_config, time_budget=max(min(explore_config.time_budget, time_budget), 1e-3)
        )
    result = explore(robot, explore_config, progress=progress)
    poses = result.trajectory
    doc = MapDocument(
        result.grid,
        dock=Pose() if on_dock else None,
        robot=Pose.from_array(poses[-1]) if len(poses) else None,
        paths=[MapPath("path", poses[:, :2])] if len(poses) > 1 else [],
        meta={"source": "exploration", "stop_reason": result.stop_reason},
    )
    note = (
        f"explored for {result.time_s:.0f} s ({result.stop_reason}): {result.path_m:.1f} m, "
        f"{result.scans} scans"
    )
    version = store.save(doc, floor=floor, source="slam", note=note, pose_graph=result.pose_graph)
    for x, y in result.bumps:
        store.remember_obstacle(floor, x, y, source="bumper")
    log.info("map saved as version %d of floor %r (%s)", version.id, floor, note)
    return RebuiltMap(result, version, doc, len(result.bumps))


# ---------------------------------------------------------------------------- phase 2: relocalize
def relocalize_robot(
    robot: Robot,
    store: MapStore,
    config: MissionConfig | None = None,
    *,
    cache: LocalizerCache | None = None,
    progress: Progress | None = None,
) -> tuple[FloorResult, dict[str, Localizer]]:
    """Relocalize `robot` over every floor of `store` (navigation.floors.relocalize_floors);
    returns the result and the Localizers used, {floor: Localizer}. `cache` defaults to one
    with `config.localizer`. Raises MissionError when the store holds no map."""
    config = config or MissionConfig()
    cache = cache or LocalizerCache(config.localizer)
    localizers = cache.for_store(store)
    if not localizers:
        raise MissionError(f"{store.path}: the store holds no map to relocalize in")

    def on_scan(result: FloorResult) -> None:
        if progress is not None:
            progress({"scans": result.scans_used, "status": result.status})

    result = relocalize_floors(localizers, robot, on_scan=on_scan)
    log.info("relocalization: %s (%s)", result.status, result.reason)
    return result, localizers


# ---------------------------------------------------------------------------- phase 3: clean
@dataclass(slots=True)
class CleaningResult:
    """What `clean` did (map frame, SI units)."""

    stop_reason: str  # DONE, TIME_BUDGET, LOST or STUCK
    time_s: float  # robot time from the start of the cleaning
    path_m: float  # along the estimated path
    trajectory: np.ndarray  # (N, 3) estimated map pose after every command
    cleaned: np.ndarray  # (H, W) bool on the map grid: swept by the brush along the estimate
    floor: np.ndarray  # (H, W) bool: the floor the first plan meant to clean
    segmentation: Segmentation
    costmap: Costmap  # with the obstacles found on the way
    first_plan: CoveragePlan
    rooms_done: list[int]
    bumps: list[tuple[float, float, bool]]  # estimated contacts: x, y, on a mapped obstacle
    remembered: int  # contacts put into the obstacle memory
    plans: int  # coverage plans made (the first one and every replan)
    recoveries: int
    relocalizations: int
    versions: list[int]  # store versions saved (rooms, progress)
    tracked_scans: int
    bad_scans: int  # scans the tracker found fitting badly

    @property
    def cleaned_share(self) -> float:
        """Share of the first plan's floor the estimate shows swept."""
        return coverage_ratio(self.cleaned, self.floor)


def clean(
    robot: Robot,
    store: MapStore,
    floor: str,
    map_from_odom: Pose,
    config: MissionConfig | None = None,
    *,
    localizer: Localizer | None = None,
    time_budget: float | None = None,
    progress: Progress | None = None,
) -> CleaningResult:
    """Clean every room of the current map of `floor` (see the module docstring).

    `map_from_odom` places the robot's odometry frame in the map (a relocalization result's, or
    the dock pose for a robot that starts on its dock); `localizer` is the map's Localizer
    (built when None) for tracking and for relocalizing when tracking is lost. `time_budget`
    (s) caps `config.time_budget`. `progress(info)` gets {"time_s", "cleaned", "rooms_done",
    "rooms", "bumps"} every `progress_period` s. Raises MissionError when the map has no floor
    the robot can reach from where it is.
    """
    config = config or MissionConfig()
    doc = store.load(floor=floor)  # with the obstacle memory appended
    base = store.info(store.resolve(floor))
    grid = doc.grid
    # the floor the exploring body swept is free: SLAM puts a door's jamb a few cm into the
    # way the robot came through it, and the door then looks closed to the planner
    graph = store.pose_graph(base.id) if base.has_pose_graph else None
    swept = graph.get("poses") if graph is not None else None  # the exploring body's way
    plan_doc = doc
    if swept is not None:
        cleared = footprint_cleared(grid, swept, config.exploration.robot_radius)
        plan_doc = replace(doc, grid=cleared)
    segmentation = segment_rooms(plan_doc.grid, config=config.rooms)
    costmap = Costmap.from_map(plan_doc, config=config.costmap)
    if swept is not None:
        # a door the exploring body went through with less room than the plans' margin
        open_tight_passages(costmap, swept, config.body_radius)
    if localizer is None:
        localizer = Localizer(grid, config.localizer)
    budget = config.time_budget if time_budget is None else min(config.time_budget, time_budget)
    cleaner = _Cleaner(robot, store, floor, doc, base, segmentation, costmap, localizer, config)
    return cleaner.run(map_from_odom, budget, progress)


_MAX_COMMAND = 0.5  # s: the longest single drive command
_CONTACT_POSE = 0.05  # m: poses this near the robot's centre at a bump carve no bump marks
_NEAR_REACH = 0.5  # m: hits this near the centre (each way) are kept for the next moves
_NEAR_AGE = 0.5  # s: ... while this fresh
_STOP_GAP = 0.015  # m: the body stops this short of a wall the lidar sees ahead ...
_STOP_SKIP = 0.25  # m: ... on the last of a leg, and takes the leg as driven
_GAUGE_SHIFT = 0.08  # m: the edge gauge moves the pursuit target at most this far across


class _Cleaner:
    """The cleaning loop's state: the robot, its tracked pose, the plan, what was swept."""

    def __init__(
        self,
        robot: Robot,
        store: MapStore,
        floor: str,
        doc: MapDocument,
        base: VersionInfo,
        segmentation: Segmentation,
        costmap: Costmap,
        localizer: Localizer,
        config: MissionConfig,
    ) -> None:
        self.robot = robot
        self.store = store
        self.floor = floor
        self.doc = doc
        self.base = base
        self.seg = segmentation
        self.costmap = costmap
        self.localizer = localizer
        self.config = config
        self.tracker: Tracker | None = None
        self.lost = False
        self.t0 = float(robot.time)
        self.budget = config.time_budget
        self.traj: list[np.ndarray] = []
        self.swept_upto = 0
        self.cleaned = np.zeros(costmap.shape, bool)
        self.floor_mask = np.zeros(costmap.shape, bool)
        self.segments: list = []
        self.first_plan: CoveragePlan | None = None
        self.rooms_left: set[int] = set()
        self.rooms_done: list[int] = []
        self.bumps: list[tuple[float, float, bool]] = []
        self.unmapped: list[tuple[float, float]] = [
            (o.x, o.y) for o in doc.obstacles if o.source == "bumper"
        ]
        self.remembered = 0
        self.plans = 0
        self.recoveries = 0
        self.relocalizations = 0
        self.versions: list[int] = []
        self.tracked = 0
        self.bad = 0
        self.scans_seen = 0
        self.near_bumps = 0
        self.rest = np.zeros((0, 2))  # what was left of the path a bump interrupted
        self.hits = WallHits()  # the walls' faces the lidar saw, for the edge passes
        self.hugging = False  # driving an edge pass moved up to the walls
        # the last scan's hits near the robot: (its stamp, the odometry then, robot frame)
        self.near: tuple[float, np.ndarray, np.ndarray] | None = None
        self.opened = 0  # times bump marks closing the way to rooms were dropped
        self.opened_for: dict[int, int] = {}  # ... for each room
        self.parted: set[int] = set()  # rooms done but for a part out of reach
        self.unreachable = 0  # segments found cut off
        # bump marks are guesses: the floor the body has since passed over is free of them
        self.body_swept = np.zeros(costmap.shape, bool)  # cells the body overlapped
        self.carved_upto = 0  # poses of traj stamped into body_swept
        self.bump_poses: list[tuple[float, float]] = []  # the robot's centre at each bump
        self.contacts = np.zeros(costmap.shape, bool)  # the contacts' cells: never carved
        self.progress: Progress | None = None
        self.next_report = 0.0

    # -------------------------------------------------------------- sensing
    def start_tracking(self, map_from_odom: Pose) -> None:
        """Track from now on with this map_from_odom; scans taken before are dropped."""
        self.robot.scans()
        odom = self.robot.odometry()
        self.tracker = Tracker(self.localizer, map_from_odom)
        self.lost = False
        self.times = [float(self.robot.time)]
        self.odoms = [odom.pose.as_array()]
        self.traj.append(self.pose().as_array())

    def elapsed(self) -> float:
        return float(self.robot.time) - self.t0

    def out_of_time(self) -> bool:
        return self.elapsed() >= self.budget - 1e-9

    def pose(self) -> Pose:
        """The map pose now: the tracked map_from_odom and the odometry since."""
        assert self.tracker is not None
        return self.tracker.map_from_odom.compose(Pose.from_array(self.odoms[-1]))

    def step(self, v: float, w: float, dt: float) -> bool:
        """Drive (v, w) for dt s (cut at the time budget) in commands of at most
        `_MAX_COMMAND` s, feeding the tracker after each. True on a bump (which ends it)."""
        dt = min(dt, max(self.budget - self.elapsed(), 0.0))
        while dt > 1e-9:
            # short commands keep the odometry's heading change per command well below pi, so
            # interpolating it at a scan's time is unambiguous
            piece = min(dt, _MAX_COMMAND)
            dt -= piece
            bumped = bool(self.robot.drive(v, w, piece))
            self.times.append(float(self.robot.time))
            self.odoms.append(self.robot.odometry().pose.as_array())
            self._ingest()
            self.traj.append(self.pose().as_array())
            self._report()
            if bumped:
                return True
        return False

    def _ingest(self) -> None:
        assert self.tracker is not None
        scans = self.robot.scans()
        for scan in scans:
            self.scans_seen += 1
            # the odometry at the revolution's start, and the mean speeds over it (to de-skew)
            start = Pose.from_array(self._odom_at(scan.stamp))
            moved = start.between(Pose.from_array(self._odom_at(scan.stamp + scan.duration)))
            span = max(scan.duration, 1e-6)
            v, w = moved.x / span, moved.theta / span
            skewed = scan.deskewed(v, w)
            pts = skewed.points()
            near = (np.abs(pts[:, 0]) < _NEAR_REACH) & (np.abs(pts[:, 1]) < _NEAR_REACH)
            self.near = (float(scan.stamp), start.as_array(), pts[near])
            if self.scans_seen % self.config.track_every:
                continue
            step = self.tracker.update(scan, Odometry(start, scan.stamp, v, w))
            self.tracked += 1
            if step.score < self.localizer.config.track_lost_score:
                self.bad += 1
            elif self.tracker.bad == 0 and not step.lost:
                self._remember_hits(skewed, pts, step.pose)
            if step.lost:
                self.lost = True
                log.info("tracking lost: %s", step.reason)
                break
        if scans:
            keep = max(int(np.searchsorted(self.times, scans[-1].stamp)) - 1, 0)
            if keep > 0:
                del self.times[:keep], self.odoms[:keep]

    def _remember_hits(self, skewed, pts: np.ndarray, pose: Pose) -> None:
        """Count the near hits of a well-matched scan where the walls' faces are: `skewed`
        the de-skewed scan, `pts` its points() (robot frame), `pose` where it was matched."""
        near = skewed.ranges[skewed.hit_mask] <= self.config.edge_hit_range  # as points() orders
        if near.any():
            self.hits.add(pose.transform_points(pts[near]))

    def _odom_at(self, t: float) -> np.ndarray:
        return odometry_at(self.times, self.odoms, t)

    def update_cleaned(self) -> np.ndarray:
        """Add the brush's sweep along the estimated path since the last update."""
        if len(self.traj) - self.swept_upto >= 2:
            chunk = np.asarray(self.traj[max(self.swept_upto - 1, 0) :])
            self.cleaned |= swept_area(
                chunk,
                self.costmap.shape,
                self.costmap.resolution,
                self.costmap.origin,
                self.config.coverage.clean_width,
            )
            self.swept_upto = len(self.traj)
        return self.cleaned

    def _report(self, force: bool = False) -> None:
        if self.progress is None or (not force and self.elapsed() < self.next_report):
            return
        self.next_report = self.elapsed() + self.config.progress_period
        self.update_cleaned()
        self.progress(
            {
                "time_s": round(self.elapsed(), 1),
                "cleaned": coverage_ratio(self.cleaned, self.floor_mask),
                "rooms_done": len(self.rooms_done),
                "rooms": len(self.seg.rooms),
                "bumps": len(self.bumps),
            }
        )

    # -------------------------------------------------------------- planning
    def carve(self) -> bool:
        """Drop the bump marks the body has passed over since they were made or before: a
        mark is a guess of where a contact was, and floor the body covered without a bump is
        free. The poses within `_CONTACT_POSE` of a bump `on_bump` took (the body touching
        the thing, the wheels slipping) carve nothing, nor is the mark on a contact point
        (straight ahead of the body at a bump) carved: what is known of the thing stays. True
        if marks were dropped."""
        cm = self.costmap
        new = np.asarray(self.traj[self.carved_upto :], np.float64).reshape(-1, 3)[:, :2]
        self.carved_upto = len(self.traj)
        if len(new) and self.bump_poses:
            near, _ = cKDTree(self.bump_poses).query(new, distance_upper_bound=_CONTACT_POSE)
            new = new[np.isinf(near)]
        if len(new):
            self.body_swept |= body_cells(
                new, cm.shape, cm.resolution, cm.origin, cm.config.robot_radius
            )
        drop = cm.obstacles & self.body_swept & ~self.contacts
        if not drop.any():
            return False
        cm.obstacles &= ~drop
        cm.rebuild()
        log.debug("%d cells of bump marks the body has passed over dropped", int(drop.sum()))
        return True

    def replan(self, rooms: set[int] | None = None) -> bool:
        """Plan what is left of `rooms` (default: the rooms not done) from the robot's pose;
        False when no plan can start here."""
        self.update_cleaned()
        self.carve()
        p = self.pose()
        wanted = self.rooms_left if rooms is None else rooms
        if not wanted:
            self.segments = []
            return True
        try:
            plan = plan_coverage(
                self.costmap,
                self.seg,
                (p.x, p.y),
                self.config.coverage,
                cleaned=self.cleaned,
                rooms=sorted(wanted),
            )
        except NoPathFound as exc:
            log.info("no coverage plan from (%.2f, %.2f): %s", p.x, p.y, exc)
            return False
        # from a pocket (bump marks, the jags of a wall the robot edged up to) nothing of the
        # rooms seems "left to clean": that says nothing of the rooms
        pocket = np.count_nonzero(plan.floor) * self.costmap.resolution**2 < _POCKET
        self.plans += 1
        if self.first_plan is None:
            self.first_plan = plan
            self.floor_mask = plan.floor.copy()
        for rid, why in plan.skipped.items():
            if rid in self.rooms_left:
                log.debug("room %d left out: %s", rid, why)
                if why == "nothing left to clean" and not pocket:
                    self.finish_room(rid)
        self.segments = list(plan.segments)
        return True

    def replan_room(self, room: int) -> bool:
        """After the costmap changed in `room`: plan what is left of that room from here and
        keep the rest of the plan (the other rooms' segments; the way to the next room is
        planned when it is reached). False when no plan can start here."""
        later = [s for s in self.segments if s.room != room]
        if later and later[0].kind == "transition":
            later = later[1:]  # it started where the room's old plan ended
        if not self.replan({room} & self.rooms_left):
            return False
        self.segments += later
        return True

    def finish_room(self, rid: int, save: bool = True) -> None:
        """The plan of room `rid` is done. When part of the room is out of reach from here
        (`out_of_reach`), the room is kept in `parted`: `open_passages` may open the way to
        it, and the room is then left to clean again."""
        if rid not in self.rooms_left:
            return
        self.update_cleaned()
        if self.out_of_reach({rid}):
            log.debug("room %d: part of it is out of reach from here", rid)
            self.parted.add(rid)
        self.rooms_left.discard(rid)
        if rid not in self.rooms_done:
            self.rooms_done.append(rid)
        if save:
            self.save_progress(f"cleaning: room {rid} done ({len(self.rooms_done)} rooms)")

    # -------------------------------------------------------------- the store
    def save_rooms(self) -> None:
        """Save the map with its rooms as a new version (the pose graph carried over)."""
        if len(self.seg.rooms) > 255:
            log.warning("%d rooms: too many for the store's rooms raster", len(self.seg.rooms))
            return
        self.doc.rooms = self.seg.labels.astype(np.uint8)
        self.doc.room_info = {
            r.id: MapRoom(r.id, f"room {r.id}", meta={"area_m2": round(r.area, 2)})
            for r in self.seg.rooms
        }
        self._save("rooms segmented by vacnav")

    def save_progress(self, note: str) -> None:
        self.update_cleaned()
        cell = self.costmap.resolution**2
        for rid in self.rooms_done:
            if rid in self.doc.room_info:
                self.doc.room_info[rid].meta["cleaned"] = True
        self.doc.meta["mission"] = {
            "rooms_done": [int(r) for r in self.rooms_done],
            "cleaned_m2": round(float(np.count_nonzero(self.cleaned & self.floor_mask)) * cell, 2),
            "floor_m2": round(float(np.count_nonzero(self.floor_mask)) * cell, 2),
            "time_s": round(self.elapsed(), 1),
            "cleaned": np.packbits(self.cleaned, axis=None),
        }
        traj = np.asarray(self.traj)
        self.doc.paths = [MapPath("path", traj[:, :2])] if len(traj) > 1 else []
        self.doc.robot = Pose.from_array(traj[-1]) if len(traj) else None
        self._save(note)

    def _save(self, note: str) -> None:
        graph = self.store.pose_graph(self.base.id) if self.base.has_pose_graph else None
        info = self.store.save(self.doc, self.floor, source="edit", note=note, pose_graph=graph)
        self.versions.append(info.id)

    # -------------------------------------------------------------- driving
    def follow(self, waypoints: np.ndarray, hug: bool = False) -> str:
        """Drive a polyline (`hug`: an edge pass, moved up to the walls beside it): DONE,
        "bumped" (a new obstacle), "touched" (one the map shows), "stalled", "unreachable"
        (no way to its start), LOST or
        TIME_BUDGET."""
        pts = np.asarray(waypoints, np.float64)

        p = self.pose()
        if math.hypot(pts[0, 0] - p.x, pts[0, 1] - p.y) > 2 * self.config.stuck_radius:
            # far from where the segment starts (a segment was given up): plan a way there
            try:
                way = Planner(self.costmap, self.config.coverage.planner).plan((p.x, p.y), pts[0])
            except NoPathFound as exc:
                log.info("no way to the next segment: %s", exc)
                self.rest = np.zeros((0, 2))
                return "unreachable"
            pts = np.vstack((way.waypoints, pts[1:]))
        else:
            pts = np.vstack(([p.x, p.y], pts[1:] if len(pts) > 1 else pts))
        cfg = self.config
        self.hugging = hug and cfg.edge_shift > 0
        pts = simplify(pts, cfg.edge_smoothing if self.hugging else cfg.smoothing)
        if self.hugging:
            cm = self.costmap
            walls = cm.lethal | cm.unknown
            pts = hug_walls(
                pts,
                walls,
                cm.resolution,
                cm.origin,
                cfg.edge_clearance,
                cfg.edge_shift,
                hits=self.hits,
                faces=cm.static & ~(cm.obstacles | cm.keepout),
                soft=cm.unknown,
                chord=cfg.lookahead,
            )
        outcome = self.track(_Path(pts, self.config))
        self.hugging = False
        return outcome

    def track(self, path: _Path) -> str:
        """Pure pursuit along `path`: steer towards the point `lookahead` m further along it
        than the robot's projection, never past the next sharp corner, where the robot stops
        and turns in place; the end is reached within `reach_tolerance` along the path."""
        cfg = self.config
        done = 0.0  # arc length reached (the robot's projection, never going back)
        seg = 0
        best = math.inf
        since = float(self.robot.time)
        while True:
            if self.out_of_time():
                return TIME_BUDGET
            if self.lost:
                return LOST
            p = self.pose()
            seg, done = path.project(p.x, p.y, seg, done)
            corner = path.next_corner(done + cfg.reach_tolerance)
            left = corner - done
            if left <= cfg.reach_tolerance:
                if corner >= path.length - 1e-9:
                    return DONE
                done = corner  # at a sharp corner: go on with the next leg
                seg = path.segment_of(corner)
                corner = path.next_corner(done + cfg.reach_tolerance)
                left = corner - done
            remaining = path.length - done
            if remaining < best - cfg.progress_step:
                best, since = remaining, float(self.robot.time)
            elif float(self.robot.time) - since > cfg.stall_time:
                self.rest = path.after(done)
                return "stalled"
            tx, ty = path.point_at(min(done + cfg.lookahead, corner))
            if self.hugging and cfg.edge_gauge > 0:
                tx, ty = self.gauged(p, tx, ty)
            dist = math.hypot(tx - p.x, ty - p.y)
            if dist < 1e-6:
                done += cfg.reach_tolerance
                continue
            err = float(wrap_angle(math.atan2(ty - p.y, tx - p.x) - p.theta))
            if abs(err) > cfg.align_tolerance:
                self.step(0.0, math.copysign(cfg.max_w, err), abs(err) / cfg.max_w)
                continue
            w = float(np.clip(cfg.heading_gain * err, -cfg.max_w, cfg.max_w))
            v = min(cfg.max_v, left / cfg.control_dt) * (1.0 - abs(err) / cfg.align_tolerance)
            room = self.room_ahead() if left <= _STOP_SKIP else None
            if room is not None and room < _STOP_GAP + v * cfg.control_dt:
                # the leg ends in a wall the lidar sees (the map or the pose is a few cm
                # off): slow down, and short of the wall its end is as good as reached
                if room < _STOP_GAP:
                    if corner >= path.length - 1e-9:
                        return DONE
                    done = corner
                    seg = path.segment_of(corner)
                    continue
                v = max(room - _STOP_GAP, 0.0) / cfg.control_dt
            if self.step(v, w, cfg.control_dt):
                self.rest = path.after(done)
                return "bumped" if self.on_bump(v) else "touched"

    def near_hits(self) -> np.ndarray | None:
        """The last scan's hits near the robot, in its frame now (the odometry since the scan
        is exact enough), or None when there is no scan from the last `_NEAR_AGE` s."""
        if self.near is None or float(self.robot.time) - self.near[0] > _NEAR_AGE:
            return None
        _, odom, hits = self.near
        now = Pose.from_array(self.odoms[-1]).between(Pose.from_array(odom))
        return now.transform_points(hits)

    def room_ahead(self) -> float | None:
        """How far (m) the body can drive straight ahead before it touches what the last
        scan shows (the second nearest hit in its way: one stray hit stops nothing), or None
        when nothing is near. Hits grazing the sides (within 1 cm of the body's width) do not
        count: a wall the robot runs along is beside it, not ahead."""
        hits = self.near_hits()
        if hits is None:
            return None
        r = self.config.body_radius
        ahead = (hits[:, 0] > 0.05) & (np.abs(hits[:, 1]) < r - 0.01)
        if np.count_nonzero(ahead) < 2:
            return None
        gap = hits[ahead, 0] - np.sqrt(r * r - hits[ahead, 1] ** 2)
        return float(np.partition(gap, 1)[1])

    def gauged(self, p: Pose, tx: float, ty: float) -> tuple[float, float]:
        """The pursuit target (tx, ty) of an edge pass moved across the heading to
        `edge_gauge` from the straight wall the last scan shows beside the robot, when one
        runs there and the move is at most `_GAUGE_SHIFT`: the plan placed the pass by the
        map and the tracked pose, a few cm off; the lidar measures the gap itself."""
        hits = self.near_hits()
        wall = side_wall(hits) if hits is not None and len(hits) else None
        if wall is None:
            return tx, ty
        a, b = wall
        c, s = math.cos(p.theta), math.sin(p.theta)
        dx, dy = tx - p.x, ty - p.y
        xr, yr = c * dx + s * dy, -s * dx + c * dy
        want = a + b * xr - math.copysign(self.config.edge_gauge * math.hypot(1.0, b), a)
        if abs(want - yr) > _GAUGE_SHIFT:
            return tx, ty
        return p.x + c * xr - s * want, p.y + s * xr + c * want

    def on_bump(self, v: float) -> bool:
        """Remember the contact (unless the map shows an obstacle there) and back off. True
        when the obstacle is new (not on the map): the costmap changed."""
        cfg = self.config
        p = self.pose()
        heading = p.theta if v >= 0 else p.theta + math.pi
        reach = cfg.body_radius + 0.01
        cx, cy = p.x + reach * math.cos(heading), p.y + reach * math.sin(heading)
        last = self.bumps[-1] if self.bumps else None
        if last is not None and math.hypot(last[0] - cx, last[1] - cy) <= cfg.stuck_radius:
            self.near_bumps += 1
        else:
            self.near_bumps = 1
        # a wall touched through a tracking error is not touched again at once: a second bump
        # at the same spot is something the map does not hold (a low object by the wall).
        # An edge pass moved up to a wall keeps its clearance from the wall's face by the
        # robot's own reckoning, so its bump is taken for something the map does not hold
        mapped = self.near_bumps == 1 and not self.hugging and self._mapped_near(p, heading)
        self.bumps.append((cx, cy, mapped))
        self.bump_poses.append((p.x, p.y))
        ci, cj = self.costmap.world_to_cell([(cx, cy)])[0]
        if 0 <= ci < self.contacts.shape[0] and 0 <= cj < self.contacts.shape[1]:
            self.contacts[ci, cj] = True
        if mapped:
            # a mapped obstacle touched through a tracking error: nothing new for the store,
            # but the plan is kept off that spot from now on
            self.costmap.add_obstacles([(cx, cy)])
        else:
            # the bumper does not say where on the front of the body it was pressed: mark the
            # front arc, `contact_spread` to each side, `bump_depth` beyond the body's edge
            reach = cfg.body_radius + cfg.bump_depth
            spread = cfg.contact_spread
            points = [
                (p.x + d * math.cos(heading + a), p.y + d * math.sin(heading + a))
                for d, angles in (
                    (reach, (-spread, -spread / 2, 0.0, spread / 2, spread)),
                    (reach + cfg.bump_deeper, (-spread / 2, 0.0, spread / 2)),
                )
                for a in angles
            ]
            x, y = points[2]
            near = [
                (ox, oy)
                for ox, oy in self.unmapped
                if math.hypot(x - ox, y - oy) <= cfg.grow_distance
            ]
            self.unmapped.append((x, y))
            for px, py in points:
                self.store.remember_obstacle(self.floor, px, py, source="bumper")
            self.remembered += 1
            if near:
                # a second bump near one before: the obstacle is wider than the arc shows; mark
                # a line across the approach, grow_radius to each side, behind the contact
                step = self.costmap.config.obstacle_radius
                n = math.ceil(cfg.grow_radius / step)
                ux, uy = math.cos(heading), math.sin(heading)
                bx, by = x + step * ux, y + step * uy
                points += [(bx - k * step * uy, by + k * step * ux) for k in range(-n, n + 1)]
            self.costmap.add_obstacles(points)
        log.debug("bump at (%.2f, %.2f)%s", cx, cy, " (mapped obstacle)" if mapped else "")
        if cfg.backoff > 0:
            speed = min(cfg.max_v, 0.1)
            if self.step(-math.copysign(speed, v or 1.0), 0.0, cfg.backoff / speed):
                self.near_bumps += 1
        return not mapped

    def _mapped_near(self, p: Pose, heading: float) -> bool:
        """Does the map show an obstacle the body at `p` may have touched moving along
        `heading`: an occupied cell within body_radius + mapped_tolerance of the centre, on
        the front half of the body."""
        cm = self.costmap
        reach = self.config.body_radius + self.config.mapped_tolerance
        i, j = cm.world_to_cell([(p.x, p.y)])[0]
        r = math.ceil(reach / cm.resolution) + 1
        h, w = cm.shape
        i0, i1, j0, j1 = max(i - r, 0), min(i + r + 1, h), max(j - r, 0), min(j + r + 1, w)
        ii, jj = np.nonzero(cm.static[i0:i1, j0:j1])
        if ii.size == 0:
            return False
        xy = cm.cell_to_world(np.column_stack((ii + i0, jj + j0)))
        dx, dy = xy[:, 0] - p.x, xy[:, 1] - p.y
        ahead = dx * math.cos(heading) + dy * math.sin(heading) > 0
        near = np.hypot(dx, dy) - cm.resolution / 2 <= reach
        return bool((ahead & near).any())

    def recover(self) -> bool:
        """The recovery sequence: turn in place towards the most open direction of the costmap
        (the longest straight run of cells the body fits in, up to `recovery_distance`), drive
        up to `recovery_distance` along it. False (nothing done) once `max_recoveries` are used."""
        cfg = self.config
        if self.recoveries >= cfg.max_recoveries:
            return False
        self.recoveries += 1
        if self.get_free() or self.retreat():
            return True
        if self.in_pocket() and self.forget_marks() and self.get_free():
            return True
        p = self.pose()
        cm = self.costmap
        steps = np.arange(1, math.ceil(cfg.recovery_distance / (cm.resolution / 2)) + 1)
        reach = steps * (cm.resolution / 2)
        best, best_run = p.theta, -1.0
        # headings nearest the robot's first (no turn when ahead is open), 15 deg apart
        offsets = [0.0] + [sign * m * math.pi / 12 for m in range(1, 13) for sign in (1, -1)]
        for offset in offsets[:-1]:
            heading = p.theta + offset
            xy = np.column_stack((p.x + reach * math.cos(heading), p.y + reach * math.sin(heading)))
            ij = cm.world_to_cell(xy)
            h, w = cm.shape
            inside = (ij[:, 0] >= 0) & (ij[:, 0] < h) & (ij[:, 1] >= 0) & (ij[:, 1] < w)
            ok = np.zeros(len(ij), bool)
            ok[inside] = cm.costs[ij[inside, 0], ij[inside, 1]] <= MAX_NON_OBSTACLE
            run = float(reach[np.argmin(ok)] - cm.resolution / 2) if not ok.all() else reach[-1]
            if run > best_run + 1e-9:
                best, best_run = heading, run
        turn = float(wrap_angle(best - p.theta))
        if abs(turn) > 1e-3:
            self.step(0.0, math.copysign(cfg.max_w, turn), abs(turn) / cfg.max_w)
        if best_run > 0:
            speed = min(cfg.max_v, 0.15)
            if self.step(speed, 0.0, best_run / speed):
                self.on_bump(speed)
        log.info(
            "recovery %d at (%.2f, %.2f): %.2f m towards %.0f deg",
            self.recoveries,
            p.x,
            p.y,
            max(best_run, 0.0),
            math.degrees(best),
        )
        return True

    def open_passages(self) -> bool:
        """Rooms are left that no plan reaches from here, all or part of them (`out_of_reach`):
        if bump marks close the way (a mark is a guess of where on the front of the body a
        contact was, and the arcs of two contacts on a low thing in a doorway can close the
        whole door), drop blobs of marks from the costmap. First only the guesses: the marks
        around each contact stay, so the plan goes round the spot the bumper found instead of
        into it again; when that does not open the way, the contacts' marks too
        (`_drop_blobs`; a blob that was a real thing is found again by the bumper, and marked
        again). Marks the body has passed over go first (`carve`). Rooms that the map's walls
        alone keep out are no business of the marks. At most `_MAX_OPENINGS` times a cleaning
        and `_MAX_ROOM_OPENINGS` times for one room (each time the way closes again, a new bump
        has added a contact, and the plan goes round more of the thing); the store keeps the
        marks. True if any were dropped."""
        cm = self.costmap
        self.carve()
        self.update_cleaned()
        rooms = self.rooms_left | self.parted
        if self.opened >= _MAX_OPENINGS or not cm.obstacles.any() or not rooms:
            return False
        # a room whose way was opened and closed again by new bumps _MAX_ROOM_OPENINGS times
        # stays cut off
        cut_off = {
            r for r in self.out_of_reach(rooms) if self.opened_for.get(r, 0) < _MAX_ROOM_OPENINGS
        }
        if not cut_off:
            return False
        # only the rooms that the marks keep out (not the map's walls alone)
        marks = cm.obstacles.copy()
        cm.obstacles[:] = False
        cm.rebuild()
        cut_off -= self.out_of_reach(cut_off)
        cm.obstacles[:] = marks
        cm.rebuild()
        if not cut_off:
            log.debug("rooms left stay out of reach without the marks")
            return False
        self.opened += 1
        for r in cut_off:
            self.opened_for[r] = self.opened_for.get(r, 0) + 1
        # the marks on and next to each contact cell (the middle of its arc)
        firm = marks & (cv2.dilate(self.contacts.view(np.uint8), np.ones((3, 3), np.uint8)) > 0)

        def opens() -> bool:
            return bool(cut_off - self.out_of_reach(cut_off))

        dropped, what = self._drop_blobs(marks & ~firm, opens), "guesses"
        if not dropped:  # the contacts' marks too (dropping all of them opens it, as seen)
            dropped, what = self._drop_blobs(marks, opens), "marks"
        log.info(
            "%d blobs of bump %s closed the way to rooms %s: dropped",
            dropped,
            what,
            sorted(cut_off),
        )
        for r in cut_off & self.parted:  # to clean again: its plan now reaches the rest
            self.parted.discard(r)
            self.rooms_left.add(r)
            self.rooms_done.remove(r)
            if r in self.doc.room_info:
                self.doc.room_info[r].meta.pop("cleaned", None)
        return dropped > 0

    def _drop_blobs(self, marks: np.ndarray, opens) -> int:
        """Drop 8-connected blobs of `marks` (cells among the costmap's bump marks) until
        `opens()`: in raster order, each put back while it stays False; from the first whose
        removal makes it True, that blob and every later one are dropped. If no blob does it
        alone, all of them, and if even that does not, they are all put back. The number of
        blobs dropped."""
        cm = self.costmap
        n, blobs = cv2.connectedComponents(marks.view(np.uint8), connectivity=8)
        dropped = 0
        for b in range(1, n):
            blob = blobs == b
            cm.obstacles[blob] = False
            cm.rebuild()
            if opens():
                dropped += 1
            else:
                cm.obstacles[blob] = True
        if dropped or n <= 1:
            cm.rebuild()
            return dropped
        cm.obstacles[marks] = False
        cm.rebuild()
        if opens():
            return n - 1
        cm.obstacles[marks] = True
        cm.rebuild()
        return 0

    def reach_here(self) -> np.ndarray:
        """(H, W) bool: the enterable cells a plan from here would reach, those connected to
        the one nearest the robot (within free_reach); none when no cell is that near."""
        cm = self.costmap
        p = self.pose()
        i, j = cm.world_to_cell([(p.x, p.y)])[0]
        r = math.ceil(self.config.free_reach / cm.resolution)
        i0, j0 = max(i - r, 0), max(j - r, 0)
        ok = cm.costs <= MAX_NON_OBSTACLE
        ii, jj = np.nonzero(ok[i0 : max(i + r + 1, 0), j0 : max(j + r + 1, 0)])
        if ii.size == 0:
            return np.zeros(cm.shape, bool)
        k = int(np.argmin((ii + i0 - i) ** 2 + (jj + j0 - j) ** 2))
        _, comp = cv2.connectedComponents(ok.view(np.uint8), connectivity=4)
        return comp == comp[ii[k] + i0, jj[k] + j0]

    def out_of_reach(self, rooms: set[int] | None = None) -> set[int]:
        """The rooms (of `rooms`, default the rooms left) that a plan from here cannot clean
        all of: no cell of the room is reached (`reach_here`), or enterable cells of it not
        yet cleaned lie out of reach in a blob of at least `_POCKET` (the far part of a room
        whose middle bump marks close)."""
        rooms = self.rooms_left if rooms is None else rooms
        if not rooms:
            return set()
        cm = self.costmap
        labels = self.seg.labels
        hit = self.reach_here()
        out = rooms - {int(x) for x in np.unique(labels[hit])}
        away = (cm.costs <= MAX_NON_OBSTACLE) & ~hit & ~self.cleaned & (labels > 0)
        n, blobs, stats, _ = cv2.connectedComponentsWithStats(away.view(np.uint8), connectivity=8)
        big = stats[:, cv2.CC_STAT_AREA] * cm.resolution**2 >= _POCKET
        big[0] = False
        if big.any():
            out |= {int(x) for x in np.unique(labels[big[blobs]])} & rooms
        return out

    def forget_marks(self) -> bool:
        """Shut in by bump marks (guesses of where contacts were) with no free cell in reach:
        drop the marks within `free_reach` of the robot from the costmap (the store keeps them).
        True if any were dropped."""
        cm = self.costmap
        p = self.pose()
        res = cm.resolution
        i, j = cm.world_to_cell([(p.x, p.y)])[0]
        r = math.ceil(self.config.free_reach / res)
        h, w = cm.shape
        i0, i1, j0, j1 = max(i - r, 0), min(i + r + 1, h), max(j - r, 0), min(j + r + 1, w)
        if i0 >= i1 or j0 >= j1 or not cm.obstacles[i0:i1, j0:j1].any():
            return False
        cm.obstacles[i0:i1, j0:j1] = False
        cm.rebuild()
        log.info("shut in at (%.2f, %.2f): bump marks near the robot forgotten", p.x, p.y)
        return True

    def get_free(self) -> bool:
        """When the robot's cell is one the body may not stand on (marks of a bump just
        made, the margin of the map's obstacles), drive straight to the nearest cell where it
        may, within `free_reach` (backwards when that is behind). True if it got there."""
        cm = self.costmap
        p = self.pose()
        i, j = cm.world_to_cell([(p.x, p.y)])[0]
        h, w = cm.shape
        if 0 <= i < h and 0 <= j < w and cm.costs[i, j] <= MAX_NON_OBSTACLE:
            return False
        # bump marks may be crossed: they are guesses of where a contact was, and the robot
        # stands among its own
        spot = nearest_free(cm, p, self.config.free_reach, cm.static | cm.keepout | cm.unknown)
        if spot is None:
            return False
        dist, bumped = self._straight_to(spot[0], spot[1])
        log.debug("%s: %.2f m to (%.2f, %.2f)", "bumped" if bumped else "got free", dist, *spot[:2])
        return not bumped

    def retreat(self) -> bool:
        """Back out the way the robot came, when it stands in a pocket (its bump marks and
        the walls around it leave it a few cells): straight to the first point of its own
        path at least `recovery_distance` back along it where the body may stand on open floor
        (the path is floor it has driven). True if it got there."""
        cfg = self.config
        p = self.pose()
        path = np.asarray(self.traj[-_RETREAT_POSES:], np.float64).reshape(-1, 3)[::-1, :2]
        if len(path) < 2 or not self.in_pocket():
            return False
        back = np.r_[0.0, np.cumsum(np.hypot(*np.diff(path, axis=0).T))]
        ok = self._on_open_floor(path)
        far = np.flatnonzero(ok & (back >= cfg.recovery_distance))
        if far.size == 0:
            return False
        x, y = path[far[0]]
        if math.hypot(x - p.x, y - p.y) > 2 * cfg.free_reach:
            return False  # the path wound about: no straight way back
        dist, bumped = self._straight_to(x, y)
        log.info("retreated %.2f m the way it came to (%.2f, %.2f)", dist, x, y)
        return not bumped

    def _on_open_floor(self, xy: np.ndarray) -> np.ndarray:
        """(N,) bool: the body may stand at each (N, 2) point, on open floor (a 4-connected
        region of enterable cells of at least the coverage plan's `min_start_area`)."""
        cm = self.costmap
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            (cm.costs <= MAX_NON_OBSTACLE).view(np.uint8), connectivity=4
        )
        area = stats[:, cv2.CC_STAT_AREA] * cm.resolution**2
        open_floor = area >= self.config.coverage.min_start_area
        open_floor[0] = False
        ij = cm.world_to_cell(np.asarray(xy, np.float64).reshape(-1, 2))
        h, w = cm.shape
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < h) & (ij[:, 1] >= 0) & (ij[:, 1] < w)
        ok = np.zeros(len(ij), bool)
        ok[inside] = open_floor[labels[ij[inside, 0], ij[inside, 1]]]
        return ok

    def in_pocket(self) -> bool:
        """The robot stands where its body may not, or in a pocket of a few cells."""
        p = self.pose()
        return not bool(self._on_open_floor(np.array([[p.x, p.y]]))[0])

    def _straight_to(self, x: float, y: float) -> tuple[float, bool]:
        """Turn and drive straight to (x, y), backwards when it is behind: its distance, and
        whether the bumper stopped it (the contact then taken as any other, `on_bump`)."""
        p = self.pose()
        dx, dy = x - p.x, y - p.y
        dist = math.hypot(dx, dy)
        bearing = math.atan2(dy, dx)
        back = abs(float(wrap_angle(bearing - p.theta))) > math.pi / 2
        heading = bearing + math.pi if back else bearing
        turn = float(wrap_angle(heading - p.theta))
        if abs(turn) > 1e-3:
            self.step(0.0, math.copysign(self.config.max_w, turn), abs(turn) / self.config.max_w)
        speed = min(self.config.max_v, 0.1)
        v = -speed if back else speed
        bumped = self.step(v, 0.0, (dist + 0.02) / speed)
        if bumped:
            self.on_bump(v)
        return dist, bumped

    def relocalize(self) -> bool:
        """Tracking was lost: relocalize on this floor and track again."""
        if self.relocalizations >= self.config.max_relocalizations:
            return False
        self.relocalizations += 1
        result = relocalize_floors({self.floor: self.localizer}, self.robot)
        if not result.localized or result.result.map_from_odom is None:
            log.info("relocalization after losing track refused: %s", result.reason)
            return False
        self.start_tracking(result.result.map_from_odom)
        # the drive while searching is not a known sweep, nor floor known to be free
        self.swept_upto = self.carved_upto = len(self.traj)
        return True

    # -------------------------------------------------------------- the loop
    def run(self, map_from_odom: Pose, budget: float, progress: Progress | None) -> CleaningResult:
        self.budget = budget
        self.progress = progress
        self.start_tracking(map_from_odom)
        self.rooms_left = {r.id for r in self.seg.rooms}
        self.save_rooms()
        reason = self.loop()
        self.update_cleaned()
        self._report(force=True)
        if self.first_plan is None:
            raise MissionError(
                "no coverage plan could start from the robot's pose: it is not on the map's "
                "free floor"
            )
        self.save_progress(f"cleaning ended: {reason}")
        traj = np.asarray(self.traj)
        steps = np.diff(traj[:, :2], axis=0)
        log.info(
            "cleaning ended (%s) after %.0f s: %d plans, %d bumps, %d recoveries",
            reason,
            self.elapsed(),
            self.plans,
            len(self.bumps),
            self.recoveries,
        )
        return CleaningResult(
            stop_reason=reason,
            time_s=self.elapsed(),
            path_m=float(np.hypot(steps[:, 0], steps[:, 1]).sum()),
            trajectory=traj,
            cleaned=self.cleaned,
            floor=self.floor_mask,
            segmentation=self.seg,
            costmap=self.costmap,
            first_plan=self.first_plan,
            rooms_done=list(self.rooms_done),
            bumps=list(self.bumps),
            remembered=self.remembered,
            plans=self.plans,
            recoveries=self.recoveries,
            relocalizations=self.relocalizations,
            versions=list(self.versions),
            tracked_scans=self.tracked,
            bad_scans=self.bad,
        )

    def loop(self) -> str:
        cfg = self.config
        if not self.replan():
            if not self.recover() or not self.replan():
                return STUCK
        empty = 0  # plans in a row that found nothing to drive to
        while True:
            if self.out_of_time():
                return TIME_BUDGET
            if not self.segments:
                if (self.rooms_left or self.parted) and self.open_passages():
                    empty = 0
                    self.replan()
                    continue
                if self.rooms_left and empty < 2:
                    # rooms the last plan could not reach from here: move a little, plan again
                    empty += 1
                    if empty == 2 and not self.recover():
                        return STUCK
                    if not self.replan():
                        continue
                    if self.segments:
                        empty = 0
                    continue
                return DONE
            segment = self.segments[0]
            outcome = self.follow(segment.waypoints, hug=segment.kind == "edge")
            if outcome == DONE:
                self.segments.pop(0)
                self.near_bumps = 0
                nxt = self.segments[0] if self.segments else None
                if segment.kind != "transition" and (nxt is None or nxt.room != segment.room):
                    self.finish_room(segment.room)
                continue
            if outcome == TIME_BUDGET:
                return TIME_BUDGET
            if outcome == "unreachable" and self.unreachable < _MAX_UNREACHABLE:
                # the way to the segment closed (a bump's marks in a door): plan again from
                # here; what no plan reaches is left to open_passages
                self.unreachable += 1
                if self.replan():
                    continue
            if outcome == LOST:
                if not self.relocalize():
                    return LOST
                if not self.replan():
                    return STUCK
                continue
            if outcome in ("bumped", "touched"):
                log.debug("%s during a %s segment of room %d", outcome, segment.kind, segment.room)
            if outcome in ("bumped", "touched") and self.near_bumps < cfg.max_bumps:
                # the costmap now holds the contact: plan the rest of the room around it
                self.get_free() or self.retreat()
                if self.replan_room(segment.room):
                    continue
            # stalled, bumped again and again near one spot, or no plan from here
            again = outcome in ("bumped", "touched") and self.near_bumps >= cfg.max_bumps
            if not self.recover():
                return STUCK
            if again:
                # the segment leads into what the bumper keeps finding: go on well past it
                self.near_bumps = 0
                self.skip(segment, 2 * cfg.recovery_skip)
            else:
                self.skip(segment, cfg.recovery_skip)  # go on with the segment past the spot

    def skip(self, segment, distance: float) -> None:
        """Replace the current segment by what was left of it (`rest`) after `distance` m;
        drop it when less is left."""
        rest = _after(self.rest, distance)
        if rest is None:
            self.segments.pop(0)
        else:
            self.segments[0] = replace(segment, waypoints=rest)


class _Path:
    """A polyline to drive, with arc lengths; its sharp corners (a turn above
    `corner_angle` between legs of at least `corner_leg` m) are where the robot stops."""

    def __init__(self, points: np.ndarray, config: MissionConfig) -> None:
        pts = _drop_spikes(np.asarray(points, np.float64), config.corner_leg)
        steps = np.diff(pts, axis=0)
        lengths = np.hypot(steps[:, 0], steps[:, 1])
        self.points = pts
        self.lengths = lengths
        self.cum = np.r_[0.0, np.cumsum(lengths)]
        self.length = float(self.cum[-1])
        headings = np.arctan2(steps[:, 1], steps[:, 0])
        turns = np.abs(wrap_angle(np.diff(headings))) if len(headings) > 1 else np.zeros(0)
        shorter = np.minimum(lengths[:-1], lengths[1:]) if len(lengths) > 1 else np.zeros(0)
        sharp = (turns > config.corner_angle) & (shorter >= config.corner_leg)
        self.corners = np.r_[self.cum[1:-1][sharp], self.length]  # arc lengths, ascending

    def next_corner(self, s: float) -> float:
        """Arc length of the first sharp corner (or the end) at or beyond s."""
        k = int(np.searchsorted(self.corners, s - 1e-9))
        return float(self.corners[min(k, len(self.corners) - 1)])

    def segment_of(self, s: float) -> int:
        return int(
            min(max(np.searchsorted(self.cum, s, side="right") - 1, 0), len(self.lengths) - 1)
        )

    def after(self, s: float) -> np.ndarray:
        """(M, 2) the rest of the path from arc length s on."""
        k = self.segment_of(min(max(s, 0.0), self.length))
        return np.vstack((self.point_at(s), self.points[k + 1 :]))

    def point_at(self, s: float) -> tuple[float, float]:
        if len(self.lengths) == 0:
            return float(self.points[0, 0]), float(self.points[0, 1])
        s = min(max(s, 0.0), self.length)
        k = self.segment_of(s)
        f = (s - self.cum[k]) / self.lengths[k] if self.lengths[k] > 0 else 0.0
        x, y = self.points[k] + f * (self.points[k + 1] - self.points[k])
        return float(x), float(y)

    def project(self, x: float, y: float, seg: int, done: float) -> tuple[int, float]:
        """(segment, arc length) of the point of the path nearest to (x, y) among the
        segments from `seg` on up to `_PROJECT_AHEAD` m ahead; never behind `done`."""
        if len(self.lengths) == 0:
            return 0, 0.0
        last = int(np.searchsorted(self.cum, done + _PROJECT_AHEAD, side="right"))
        ks = np.arange(seg, min(max(last, seg + 1), len(self.lengths)))
        a = self.points[ks]
        d = self.points[ks + 1] - a
        l2 = np.maximum(self.lengths[ks] ** 2, 1e-18)
        t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / l2, 0.0, 1.0)
        dist = np.hypot(a[:, 0] + t * d[:, 0] - x, a[:, 1] + t * d[:, 1] - y)
        m = int(np.argmin(dist))  # ties (where the path comes back): the earliest
        s = float(self.cum[ks[m]] + t[m] * self.lengths[ks[m]])
        if s < done:
            return seg, done
        return int(ks[m]), s


_POCKET = 0.5  # m2: reachable floor this small around the robot is a pocket, not the home
_MAX_OPENINGS = 8  # times a cleaning drops bump marks that close the way to rooms left
_MAX_ROOM_OPENINGS = 5  # ... that close the way to one room
_MAX_UNREACHABLE = 20  # segments found cut off that make the mission plan again
_RETREAT_POSES = 3000  # poses of the driven path (latest first) a retreat looks back along
_PROJECT_AHEAD = 0.5  # m of path ahead of the last projection searched for the robot's


def _after(points: np.ndarray, distance: float) -> np.ndarray | None:
    """The (N, 2) polyline from `distance` m along it on; None when it is not that long."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return None
    lengths = np.hypot(*np.diff(pts, axis=0).T)
    cum = np.r_[0.0, np.cumsum(lengths)]
    if cum[-1] <= distance + 1e-9:
        return None
    k = int(np.searchsorted(cum, distance, side="right")) - 1
    f = (distance - cum[k]) / lengths[k] if lengths[k] > 0 else 0.0
    return np.vstack((pts[k] + f * (pts[k + 1] - pts[k]), pts[k + 1 :]))


def _drop_spikes(pts: np.ndarray, short: float) -> np.ndarray:
    """The polyline without repeated points and without the tips of spikes: a point whose legs
    are both shorter than `short` m and that turns back by more than 150 deg (a nook a few cm
    deep, which the brush at the spike's base already sweeps)."""
    out = [pts[0]]
    for k in range(1, len(pts)):
        p = pts[k]
        if np.hypot(*(p - out[-1])) <= 1e-9:
            continue
        if len(out) >= 2:
            a, b = out[-1] - out[-2], p - out[-1]
            la, lb = float(np.hypot(*a)), float(np.hypot(*b))
            if la < short and lb < short and float(a @ b) < math.cos(math.radians(30)) * -la * lb:
                out.pop()  # out[-1] was the tip of a spike
                if np.hypot(*(p - out[-1])) <= 1e-9:
                    continue
        out.append(p)
    return np.array(out)


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """An (N, 2) polyline thinned by Douglas-Peucker: every dropped point lies within
    `tolerance` m of the kept polyline; the ends are kept."""
    pts = np.asarray(points, np.float64)
    n = len(pts)
    if n <= 2 or tolerance <= 0:
        return pts
    keep = np.zeros(n, bool)
    keep[[0, -1]] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b <= a + 1:
            continue
        seg = pts[b] - pts[a]
        rel = pts[a + 1 : b] - pts[a]
        length2 = float(seg @ seg)
        if length2 < 1e-18:
            d = np.hypot(rel[:, 0], rel[:, 1])
        else:
            t = np.clip(rel @ seg / length2, 0.0, 1.0)
            d = np.hypot(*(rel - t[:, None] * seg).T)
        k = int(np.argmax(d))
        if d[k] > tolerance:
            keep[a + 1 + k] = True
            stack += [(a, a + 1 + k), (a + 1 + k, b)]
    return pts[keep]


# ---------------------------------------------------------------------------- phase 4: the story
REBOOT_CLEARANCE = 0.35  # m from anything solid where the rebooted robot may stand


class _Recorded:
    """A SimulatedRobot seen through the Robot protocol only, its true pose recorded after every
    command for the scoring (the mission never sees it)."""

    def __init__(self, sim: SimulatedRobot) -> None:
        self.sim = sim
        self.truth = [sim.true_pose.as_array()]

    @property
    def time(self) -> float:
        return self.sim.time

    @property
    def bumper_pressed(self) -> bool:
        return self.sim.bumper_pressed

    def drive(self, v: float, w: float, dt: float) -> bool:
        bumped = self.sim.drive(v, w, dt)
        self.truth.append(self.sim.true_pose.as_array())
        return bumped

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        reached = self.sim.goto(x, y, timeout=timeout)
        self.truth.append(self.sim.true_pose.as_array())
        return reached

    def scans(self):
        return self.sim.scans()

    def odometry(self) -> Odometry:
        return self.sim.odometry()


@dataclass(slots=True)
class Story:
    """`run_story`'s outcome: the report and what the pictures need.

    Map-frame results (`rebuilt`, `cleaning`) and world-frame truth (`paths`, `cleaned`,
    `floor`, `bumps`), `frame` the world pose of the map origin (world = frame.compose(map)).
    """

    world: World
    floor_name: str
    frame: Pose
    report: dict  # the "vacnav" part of the report
    rebuilt: RebuiltMap
    relocalization: FloorResult | None
    cleaning: CleaningResult | None
    paths: list[np.ndarray]  # true (N, 3) world paths, one per robot (explore, clean)
    cleaned: np.ndarray  # (H, W) bool world raster swept by the brush over the whole story
    floor: np.ndarray  # (H, W) bool world raster: the reachable floor
    bumps: list  # every firmware_bridge Bump of the story
    baseline: dict | None = None
    baseline_path: np.ndarray | None = None
    baseline_bumps: list = field(default_factory=list)
    baseline_cleaned: np.ndarray | None = None
    wall_s: dict = field(default_factory=dict)  # wall time per phase


def reboot_pose(world: World, seed: int, clearance: float = REBOOT_CLEARANCE) -> Pose:
    """A seeded random pose, random heading, on the floor the robot can reach from the dock,
    at least `clearance` m from anything solid. Raises MissionError if there is none."""
    room = robot_room(world.free, world.resolution, 0.0)
    ok = (room >= clearance) & world.reachable(CoverageConfig().robot_radius, room)
    rows, cols = np.nonzero(ok)
    if rows.size == 0:
        raise MissionError(
            f"world {world.name!r}: no floor {clearance} m from every obstacle to reboot on"
        )
    rng = np.random.default_rng([seed, 1])
    k = int(rng.integers(rows.size))
    ox, oy = world.origin
    return Pose(
        ox + (cols[k] + 0.5) * world.resolution,
        oy + (rows[k] + 0.5) * world.resolution,
        float(rng.uniform(-math.pi, math.pi)),
    )


def floor_name(world: World) -> str:
    """The store floor a world's map goes to: its name when it is a valid floor name."""
    try:
        return check_floor_name(world.name)
    except ValueError:
        return "default"


def check_world(world: World, config: CoverageConfig | None = None) -> np.ndarray:
    """The reachable floor of a world from its start ((H, W) bool); MissionError when the world
    is not a home a vacuum can clean (no wall for the lidar, or under 1 m2 of floor)."""
    floor = reachable_floor(world.free, world.resolution, world.origin, world.start, config)
    area = float(np.count_nonzero(floor)) * world.resolution**2
    if not world.walls.any():
        raise MissionError(
            f"world {world.name!r} has no walls (no dark pixel): not a floor plan the lidar can "
            "map; draw walls in black"
        )
    if area < 1.0:
        raise MissionError(
            f"world {world.name!r}: only {area:.2f} m2 of floor is reachable from the start "
            "(< 1 m2): not a home to clean"
        )
    return floor


def run_story(
    world: World,
    store: MapStore,
    *,
    seed: int = 0,
    config: MissionConfig | None = None,
    duration: float | None = None,
    baseline: bool = True,
    progress: Callable[[str, dict], None] | None = None,
    robot: Callable[..., SimulatedRobot] | None = None,
) -> Story:
    """The whole story in the simulator, scored against the truth (module docstring, 4).

    `duration`: robot seconds for the whole vacnav job (exploration, relocalization and
    cleaning), default the exploration's and the cleaning's own budgets. The baseline (with
    `baseline`) drives bump-and-turn for the robot time vacnav used in all. `progress(phase,
    info)` sees the phases "explore", "relocalize", "clean", "baseline". `robot(world, seed=,
    start=)` makes each robot (default SimulatedRobot; `firmware_bridge.fake_firmware.MiioSim`
    drives the same simulation through python-miio and a fake firmware); it must expose the
    simulator's `true_pose` and `bumps` for the scoring, and is closed at the end if it can be.
    """
    factory = robot or SimulatedRobot
    made: list = []

    def make(**kw):
        made.append(factory(world, seed=seed, **kw))
        return made[-1]

    try:
        return _story(world, store, make, seed, config, duration, baseline, progress)
    finally:
        for r in made:
            close = getattr(r, "close", None)
            if close is not None:
                close()


def _story(world, store, make, seed, config, duration, baseline, progress) -> Story:
    config = config or MissionConfig()
    floor = check_world(world)
    name = floor_name(world)
    frame = world.start  # the map origin: exploration begins on the dock
    wall: dict[str, float] = {}

    def report_to(phase: str) -> Progress | None:
        return None if progress is None else (lambda info: progress(phase, info))

    left = math.inf if duration is None else float(duration)

    # 1. the cloud map is lost: explore from the dock and rebuild the map
    t = time.perf_counter()
    explorer = _Recorded(make())
    rebuilt = rebuild_map(
        explorer,
        store,
        name,
        config,
        time_budget=None if duration is None else left,
        progress=report_to("explore"),
    )
    wall["explore"] = time.perf_counter() - t
    left -= explorer.time
    robots = [explorer]

    # 2. reboot at a random pose; relocalize in the stored map, or start again from the dock
    relocalization = None
    cleaning = None
    map_from_odom: Pose | None = None
    cleaner: _Recorded | None = None
    localizer: Localizer | None = None
    reloc_truth: Pose | None = None
    reboot = reboot_pose(world, seed)
    if left > 0:
        t = time.perf_counter()
        cleaner = _Recorded(make(start=reboot))
        robots.append(cleaner)
        relocalization, localizers = relocalize_robot(
            cleaner, store, config, progress=report_to("relocalize")
        )
        reloc_truth = cleaner.sim.true_pose  # it stands where it took its last scan
        if relocalization.localized and relocalization.floor == name:
            map_from_odom = relocalization.result.map_from_odom
            localizer = localizers[name]
        else:
            # the dock is the map origin: a robot that starts there knows where it is
            left -= cleaner.time
            cleaner = _Recorded(make())
            robots.append(cleaner)
            map_from_odom = Pose()
            localizer = localizers.get(name)
        wall["relocalize"] = time.perf_counter() - t

    # 3. clean room by room
    clean_from = 0
    if cleaner is not None and left - cleaner.time > 0:
        t = time.perf_counter()
        clean_from = len(cleaner.truth) - 1
        assert map_from_odom is not None
        cleaning = clean(
            cleaner,
            store,
            name,
            map_from_odom,
            config,
            localizer=localizer,
            time_budget=None if duration is None else left - cleaner.time,
            progress=report_to("clean"),
        )
        wall["clean"] = time.perf_counter() - t

    # 4. the truth, for the scoring only
    paths = [np.asarray(r.truth) for r in robots]
    cleaned = np.zeros(world.shape, bool)
    for path in paths:
        cleaned |= swept_area(
            path, world.shape, world.resolution, world.origin, CoverageConfig().clean_width
        )
    bumps_by_robot = [r.sim.bumps for r in robots]
    story = Story(
        world=world,
        floor_name=name,
        frame=frame,
        report={},
        rebuilt=rebuilt,
        relocalization=relocalization,
        cleaning=cleaning,
        paths=paths,
        cleaned=cleaned,
        floor=floor,
        bumps=[b for bumps in bumps_by_robot for b in bumps],
        wall_s=wall,
    )
    clean_path = _length(paths[-1][clean_from:]) if cleaning is not None else 0.0
    story.report = _score(story, robots, bumps_by_robot, reloc_truth, clean_path)
    if baseline:
        t = time.perf_counter()
        run_baseline(story, seed, report_to("baseline"))
        wall["baseline"] = time.perf_counter() - t
    return story


def _score(
    story: Story,
    robots: list[_Recorded],
    bumps_by_robot: list,
    reloc_truth: Pose | None,
    clean_path: float,
) -> dict:
    """The "vacnav" report (definitions in the README and the issue)."""
    world = story.world
    res = world.resolution
    grid = story.rebuilt.exploration.grid
    # bumps into obstacles the saved map shows: after it was saved (relocalization and
    # cleaning), a contact point within 0.1 m of an occupied map cell
    occupied = grid.probability() > 0.65
    near = cv2.dilate(occupied.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    to_map = story.frame.inverse()
    mapped = 0
    for bump in (b for bumps in bumps_by_robot[1:] for b in bumps):
        if bump.invisible:
            continue
        i, j = grid.world_to_cell(to_map.transform_points(np.array([[bump.x, bump.y]])))[0]
        h, w = grid.shape
        if 0 <= i < h and 0 <= j < w and near[i, j]:
            mapped += 1
    # repeat bumps: per lidar-invisible obstacle (8-connected blob), every bump after its first
    _, blobs = cv2.connectedComponents(world.invisible.astype(np.uint8), connectivity=8)
    hits: dict[int, int] = {}
    for bump in story.bumps:
        if bump.invisible:
            label = _blob_at(blobs, world, bump.x, bump.y)
            hits[label] = hits.get(label, 0) + 1
    repeats = sum(n - 1 for n in hits.values())
    path_m = sum(_length(p) for p in story.paths)
    floor_m2 = float(np.count_nonzero(story.floor)) * res**2
    explore = story.rebuilt.exploration
    score = map_iou(grid, world, frame=story.frame)
    reloc = story.relocalization
    error = None
    if reloc is not None and reloc.localized and reloc.pose is not None and reloc_truth:
        estimate = story.frame.compose(reloc.pose)
        error = math.hypot(estimate.x - reloc_truth.x, estimate.y - reloc_truth.y)
    cleaning = story.cleaning
    return {
        "coverage": round(coverage_ratio(story.cleaned, story.floor), 4),
        "bumps": len(story.bumps),
        "bumps_mapped": mapped,
        "bumps_invisible": sum(b.invisible for b in story.bumps),
        "repeat_bumps": repeats,
        "max_repeat_bumps": max((n - 1 for n in hits.values()), default=0),
        "path_m": round(path_m, 2),
        "time_s": round(sum(r.time for r in robots), 2),
        "explore_time_s": round(explore.time_s, 2),
        "map_iou": round(score.free_iou, 4),
        "relocalized": bool(reloc is not None and reloc.localized),
        "relocalize_error_m": None if error is None else round(error, 3),
        "explore_bumps": len(bumps_by_robot[0]),
        "explore_stop": explore.stop_reason,
        "map_explored": round(score.explored, 4),
        "clean_path_m": round(clean_path, 2),
        "clean_time_s": round(cleaning.time_s, 2) if cleaning else 0.0,
        "path_ratio": round(clean_path / (floor_m2 / CoverageConfig().clean_width), 3)
        if floor_m2 > 0
        else None,
        "clean_stop": cleaning.stop_reason if cleaning else "no time left",
        "rooms": len(cleaning.segmentation.rooms) if cleaning else 0,
        "rooms_done": len(cleaning.rooms_done) if cleaning else 0,
        "replans": max(cleaning.plans - 1, 0) if cleaning else 0,
        "recoveries": cleaning.recoveries if cleaning else 0,
        "relocalizations": cleaning.relocalizations if cleaning else 0,
        "obstacles_remembered": story.rebuilt.remembered + (cleaning.remembered if cleaning else 0),
    }


def _length(path: np.ndarray) -> float:
    steps = np.diff(np.asarray(path)[:, :2], axis=0)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def _blob_at(blobs: np.ndarray, world: World, x: float, y: float) -> int:
    """The label of the lidar-invisible blob touched at world (x, y): the cell's, else the
    nearest labelled cell's within one cell (a contact point lies on a cell's edge)."""
    i, j = world.cell_of(x, y)
    h, w = blobs.shape
    window = blobs[max(i - 1, 0) : min(i + 2, h), max(j - 1, 0) : min(j + 2, w)]
    if 0 <= i < h and 0 <= j < w and blobs[i, j] > 0:
        return int(blobs[i, j])
    labels = window[window > 0]
    return int(labels[0]) if labels.size else 0


# a robot that drives by its bumper has no use for its lidar: one beam a second keeps the
# simulation cheap (the lidar's random numbers are its own, so the drive is the same)
_BLIND = SimConfig(beams=1, lds_rate=1.0)


def run_baseline(story: Story, seed: int, progress: Progress | None = None) -> dict:
    """Bump-and-turn (navigation.baseline) from the dock for the robot time vacnav used in all;
    fills the story's baseline fields and returns the baseline report."""
    world = story.world
    duration = max(float(story.report["time_s"]), 1.0)
    sim = SimulatedRobot(world, seed=seed, config=_BLIND)
    trail = [sim.true_pose.as_array()]
    shown = [0.0]

    def observe() -> None:
        trail.append(sim.true_pose.as_array())
        if progress is not None and sim.time >= shown[0] + 10.0:
            shown[0] = sim.time
            progress({"time_s": sim.time, "duration": duration})

    run_bump_and_turn(sim, BaselineConfig(duration=duration), seed=seed, observe=observe)
    path = np.asarray(trail)
    cleaned = swept_area(
        path, world.shape, world.resolution, world.origin, CoverageConfig().clean_width
    )
    bumps = sim.bumps
    story.baseline = {
        "coverage": round(coverage_ratio(cleaned, story.floor), 4),
        "bumps": len(bumps),
        "bumps_invisible": sum(b.invisible for b in bumps),
        "path_m": round(_length(path), 2),
        "time_s": round(sim.time, 2),
    }
    story.baseline_path = path
    story.baseline_bumps = bumps
    story.baseline_cleaned = cleaned
    return story.baseline
