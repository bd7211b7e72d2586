"""Global relocalization in a stored map: find the robot's pose from no prior, or say it cannot.

How (navigation.md section 1: Cartographer's global search, Hess et al. ICRA 2016, with the
hypotheses confirmed over several scans as its section 1.5 recommends):

1. Per map (`Localizer(grid)`, built once per map version, a few ms): a likelihood field
   0.1 + 0.8 exp(-d^2 / (2 sigma^2)), d the distance (m) from a cell centre to the nearest face
   of an obstacle (an occupied cell touching free floor: the inside of a thick wall or of a
   solid "outside" is never seen); a twice coarser copy (each cell the max of its four, the
   field as wide as a coarse cell) framed and max-filtered into Cartographer's precomputation
   stack; and where the robot's centre may stand (known free floor `wall_clearance` m from
   walls).
2. Whole-map search (`Localizer.search`): a branch and bound over every standable position
   and every heading of the coarse stack that keeps the best candidate of each of the `bins`
   best bins of about 0.3 m x 0.3 m x 10 deg within `global_slack` of the best
   (`_kernels.branch_and_bound_top_bins`, exact); non-maximum suppression (distinct = more
   than `separation` m or `separation_angle` rad apart); each of the `candidates` kept
   re-matched at full resolution (correlative window, then Levenberg-Marquardt on the field,
   navigation.slam.matcher.refine; `Localizer.locate`) and checked against the walls; the
   best `hypotheses`.
3. Scoring (`Localizer.evaluate`): the mean field value at the scan's points, less
   `through_weight` times the fraction of its beams that end more than `through_tolerance`
   beyond a mapped wall (ray cast in the map), and still do when moved `through_spread` m
   sideways or turned `through_spread_angle` (a right pose is a few cm and a degree off, and
   a beam that slips past a wall end, along a wall or beside a speck went through nothing);
   occupied specks under `speck_area` (people walking by, noise in a SLAM-built map) stop no
   beam there. Furniture the map does not hold makes beams short, never long, so the right
   pose has almost none of those; most wrong ones have some.
4. Next scans (`Relocalization.update`): every hypothesis is carried by the odometry and
   re-matched in a small window (`Localizer.locate`: the window's best peak, refined; when
   clutter pulls it onto a pose whose beams cross walls, the next peaks too, best evaluated
   wins). When none still fits, the whole map is searched again with the points of the last
   `search_scans` scans put together by odometry.
5. Decision: the leader is accepted when it scores at least `accept_score` on each of the last
   `confirm_scans` scans, sees at most `max_through` of its beams through walls there (and
   never more than `max_through_scan` on any scan); a weaker fit (below `sure_score`: much
   clutter) must hold over `confirm_scans_low` scans with at most `max_through_low`. It must
   beat by `margin` on average every distinct rival that could be the place (one that saw more
   than `rival_through` of its beams through walls cannot), the robot must have moved (a robot
   that stands still gives the same view again), the last scans together must pin its
   position (the score drops by `min_sharpness` `sharpness_step` away in every direction; one
   slanted wall along a corridor does not), and a last whole-map search on the scan finds no
   distinct place within `margin` of it; the accepted pose is then refined on the last scans
   together. Otherwise the search goes on until `max_scans`,
   then ends "refused" with the reason (no place fits, two places fit alike, the robot did not
   move, ...). It never guesses. In the robot's own map (`own_map`), which holds the
   furniture, a weaker fit is never accepted.

Bad input never raises: an empty or unknown-only map, a map at a resolution other than the one
expected, a scan with almost no valid beams, a robot that does not move: a "refused" Result
with the reason.

Use:
    localizer = Localizer(stored_map.grid)           # once per map version
    search = localizer.start(scan, odometry)         # first scan, no prior
    while search.result.status == "searching":
        ... move or turn the robot a little, take a scan standing still ...
        search.update(scan, odometry)
    search.result  # Result(status "localized" | "refused", pose, map_from_odom, reason, ...)
or `relocalize(localizer, robot)`, which drives a `firmware_bridge.robot.Robot` (short moves
chosen to tell the hypotheses apart) until a decision. Once localized, `Tracker` follows the
pose scan by scan and says when tracking is lost. Units: metres, radians, milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from maps.geometry import Pose, wrap_angle
from maps.grid import OccupancyGrid
from maps.model import FREE_THRESH, OCCUPIED_THRESH
from maps.raster import cast_rays
from maps.scan import Odometry, Scan
from navigation import _kernels
from navigation.slam.correlative import SCALE, MatchGrid, SearchWindow, match_window
from navigation.slam.matcher import RefineWeights, ScoreField, refine

FLOOR = 0.1  # field value on free floor far from any wall (a hit there: unmapped clutter)
PEAK = 0.9  # field value on the face of a wall
VOID = 0.0  # where no hit can be for the right pose: off the map, unknown, deep in a wall
_FILL = round(VOID * SCALE)
# sub-cell refinement: Cartographer's loop-closure weights (the match, not the prior, decides)
_REFINE = RefineWeights(occupied=20.0, translation=10.0, rotation=1.0, iterations=15)

LOCALIZED = "localized"
SEARCHING = "searching"
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class LocalizerConfig:
    """Relocalization parameters (SI units). The same defaults serve every map."""

    # the map
    sigma: float = 0.05  # m, width of the likelihood field around walls
    wall_clearance: float = 0.1  # m: the robot's centre is never closer to a mapped wall
    min_occupied_cells: int = 20  # a map with fewer occupied cells has nothing to match
    min_resolution: float = 0.01  # m per cell: finer or coarser maps are refused
    max_resolution: float = 0.2
    # the scans
    max_range: float = 8.0  # m, hits farther than this are dropped
    local_voxel: float = 0.05  # m, one point per cell of this size for matching and scoring
    min_points: int = 30  # a scan with fewer hits (after the voxel filter) is unusable
    through_tolerance: float = 0.2  # m: a hit this far beyond a mapped wall went through it
    through_beams: int = 180  # beams checked for that per scan (subsampled)
    through_spread: float = 0.05  # m: ... and still does moved this far sideways ...
    through_spread_angle: float = math.radians(1.0)  # ... or turned this much either way
    speck_area: float = 0.0125  # m2: smaller occupied blobs stop no beam in that check
    through_weight: float = 1.0  # score lost per unit fraction of beams through walls
    # the whole-map search
    depth: int = 7  # levels of the branch-and-bound stack (blocks up to 64 x 64 cells)
    global_decimation: int = 2  # it runs on cells this many times larger than the map's
    global_voxel: float = 0.15  # m, one point per cell of this size
    global_min_score: float = 0.3  # candidates below this mean (coarse) field value ignored ...
    global_slack: float = 0.2  # ... and those this far below the best one
    bins: int = 64  # bins kept by the branch and bound, at least, ...
    candidates: int = 24  # ... distinct candidates re-matched and checked against the walls ...
    search_area: float = 4.0  # ... and more on bigger maps: x 1 per this many m2 of floor
    candidate_window: float = 2.0  # coarse cells: half-width of their re-match window
    window_peaks: int = 3  # peaks of a re-match window tried when the best crosses walls
    hypotheses: int = 8  # distinct hypotheses kept from them
    separation: float = 0.3  # m: poses farther apart are distinct ...
    separation_angle: float = math.radians(10.0)  # ... and so are headings farther apart
    # following the hypotheses
    local_window: float = 0.1  # m, half-width of the re-match around the odometry prediction
    local_window_angle: float = math.radians(4.0)  # rad, its angular half-width
    merge: float = 0.1  # m: tracked hypotheses closer than this (and merge_angle) become one
    merge_angle: float = math.radians(4.0)
    drop_margin: float = 0.15  # a hypothesis this far below the leader (recent mean) is dropped
    drop_through: float = 0.15  # ... and one above this fraction through walls (on 2 scans)
    max_tracks: int = 16  # hypotheses followed at once
    search_scans: int = 3  # scans (put together by odometry) a repeated search uses
    max_searches: int = 10  # whole-map searches for new hypotheses per relocalization
    # the decision
    accept_score: float = 0.35  # a winner scores at least this on every confirming scan ...
    margin: float = 0.05  # ... beats every distinct rival by this on average ...
    max_through: float = 0.02  # ... sees at most this fraction of beams through walls there
    max_through_scan: float = 0.05  # ... and never more than this on any scan
    max_through_low: float = 0.01  # ... at most this when it scores below sure_score
    rival_through: float = 0.08  # a rival that saw more than this on a scan cannot be the place
    confirm_scans: int = 3  # scans it must win (the first included) ...
    sure_score: float = 0.55  # ... when it scores at least this on each, else
    confirm_scans_low: int = 5  # ... this many (clutter the map does not hold)
    min_sharpness: float = 0.045  # score drop it shows a sharpness_step away, every direction
    sharpness_step: float = 0.1  # m
    min_travel: float = 0.1  # m of odometry travel, or ...
    min_turn: float = math.radians(20.0)  # ... this much turning before any acceptance
    veto_slack: float = 0.05  # the last whole-map check searches this far below the bar
    # usable scans before giving up: along a corridor the ends come into view only as the
    # robot moves on (16 refused 16 of 200 Intel trials as "position loose", 32 refuses 3)
    max_scans: int = 32
    max_still_scans: int = 4  # scans in a row without odometry change before giving up
    # tracking (Tracker)
    track_lost_score: float = 0.25  # a scan scoring below this is bad (clutter alone: ~0.3) ...
    track_lost_through: float = 0.1  # ... and one with more beams through walls
    track_lost_scans: int = 3  # bad scans in a row: tracking is lost

    def __post_init__(self) -> None:
        positive = (
            "sigma wall_clearance min_resolution max_resolution max_range local_voxel "
            "through_tolerance through_spread through_spread_angle speck_area global_voxel "
            "separation separation_angle local_window local_window_angle merge merge_angle "
            "search_area sharpness_step"
        )
        for name in positive.split():
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"LocalizerConfig.{name} must be > 0, got {value!r}")
        at_least_one = (
            "min_points through_beams depth global_decimation bins candidates hypotheses "
            "max_tracks search_scans confirm_scans confirm_scans_low max_scans max_still_scans "
            "track_lost_scans"
        )
        for name in at_least_one.split():
            if getattr(self, name) < 1:
                raise ValueError(f"LocalizerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.depth > 12:
            raise ValueError(f"LocalizerConfig.depth must be at most 12, got {self.depth}")
        if max(self.confirm_scans, self.confirm_scans_low) > self.max_scans:
            raise ValueError("LocalizerConfig: the confirming scans must fit in max_scans")


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """A candidate map pose of the robot at the last scan, its score (`Localizer.evaluate`) and
    the fraction of its beams that pass through walls there."""

    pose: Pose
    score: float
    through: float = 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    """A scan as the localizer uses it (`Localizer.observe`): (N, 2) robot-frame points (m) for
    matching, and the hit beams checked against the walls: (M,) ranges (m), (M,) sensor-frame
    angles (rad) and the sensor's pose on the robot."""

    points: np.ndarray
    ranges: np.ndarray
    angles: np.ndarray
    sensor: Pose


@dataclass(frozen=True, slots=True)
class Result:
    """Where a relocalization stands.

    status: "localized" (pose and map_from_odom set), "searching" (give it another scan) or
    "refused" (not localized; `reason` says why). `pose` is the robot's map pose at the last
    scan; `map_from_odom` turns odometry-frame poses into map poses (map = map_from_odom *
    odom). `elapsed_ms` is the compute time spent so far (not the driving); `score` the
    leader's mean score; `candidates` the best hypotheses at the last scan, best first.
    """

    status: str
    pose: Pose | None = None
    map_from_odom: Pose | None = None
    reason: str = ""
    scans_used: int = 0
    elapsed_ms: float = 0.0
    score: float = 0.0
    candidates: tuple[Hypothesis, ...] = ()

    @property
    def localized(self) -> bool:
        return self.status == LOCALIZED


class Localizer:
    """Per-map cache for relocalization and tracking (see the module docstring).

    `grid` is the stored map's OccupancyGrid. `expected_resolution` (m per cell), when given,
    must be the grid's. `own_map`: the map was built from this robot's own scans (its SLAM,
    kept up to date), so it holds the furniture; a fit that leaves much of the scans
    unexplained (below `sure_score`) is then never accepted. In such a map that means floor the
    map does not hold far more often than a changed home: a room the exploration never
    entered, whose twin it did (in the simulator's SLAM-map trials every wrong answer scored
    below 0.55 and every right one above). A plan or a vendor's map is not the robot's own.

    A map that cannot be used (not a grid, empty, unknown only, no walls, no room for a robot,
    a resolution out of range or not the expected one) does not raise: `problem` says why, and
    every relocalization started on it is refused with that reason.
    """

    def __init__(
        self,
        grid: OccupancyGrid,
        config: LocalizerConfig | None = None,
        *,
        expected_resolution: float | None = None,
        own_map: bool = False,
    ) -> None:
        self.config = cfg = config or LocalizerConfig()
        self.own_map = own_map
        self.build_ms = 0.0
        self._walkable: dict[float, np.ndarray] = {}
        self.problem: str | None = _map_problem(grid, cfg, expected_resolution)
        if self.problem is not None:
            return
        t0 = time.perf_counter()
        self.resolution = res = float(grid.resolution)
        self.origin = (float(grid.origin[0]), float(grid.origin[1]))
        prob = grid.probability()
        self.free = prob < FREE_THRESH  # (H, W) bool: known free floor
        self.occupied = prob > OCCUPIED_THRESH  # (H, W) bool: what beams cannot cross
        near_free = cv2.dilate(self.free.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        # (H, W) bool: what stops a beam in the through-walls check
        self.walls = _without_specks(self.occupied, cfg.speck_area / (res * res))
        faces = self.occupied & near_free  # the only obstacle cells a lidar can see
        d = _distance(~faces) * res
        values = self._plausible(_field(d, cfg.sigma), d, cfg.sigma)
        self.field = ScoreField(values, res, self.origin)  # for the refinement and scores
        quantised = np.rint(values * SCALE).astype(np.uint8)
        self._local = MatchGrid(_kernels.block_max_levels(quantised, 1, 1, _FILL), res, self.origin)
        # (H, W) bool: where the robot's centre may be
        self.standable = self.walkable(cfg.wall_clearance)
        if not self.standable.any():
            self.problem = f"no free floor {cfg.wall_clearance:g} m from the walls: no room"
            return
        f = cfg.global_decimation
        wide = max(cfg.sigma, f * res)
        coarse = _block_max(self._plausible(_field(d, wide), d, wide), f, VOID)
        standable = _block_max(self.standable, f, False)
        self._global = _Stack.build(coarse, standable, f * res, self.origin, cfg)
        self.build_ms = (time.perf_counter() - t0) * 1e3

    def _plausible(self, values: np.ndarray, d: np.ndarray, sigma: float) -> np.ndarray:
        """The field with VOID where a hit cannot be: neither known free floor nor within
        3 sigma of a wall face (beyond the walls, unknown space, the inside of a thick wall).
        Clutter the map does not hold lands on free floor (FLOOR); a wrong pose often puts
        points beyond the walls, which this tells apart."""
        return np.where(self.free | (d <= 3.0 * sigma), values, np.float32(VOID))

    def start(self, scan: Scan, odometry: Odometry | Pose | None = None) -> Relocalization:
        """Begin a relocalization from no prior with a first scan. `odometry` is the robot's
        odometry-frame pose at the scan (Pose(0, 0, 0) if None); an Odometry also carries the
        speeds to de-skew a scan taken moving (better: take scans standing still)."""
        return Relocalization(self, scan, odometry)

    def observe(self, scan: Scan, odometry: Odometry | None = None) -> Observation:
        """What the localizer uses of a scan: the hits, de-skewed with the odometry's speeds
        when given, those beyond `max_range` dropped; one point per `local_voxel` cell for
        matching, and up to about `through_beams` beams for the through-walls check."""
        cfg = self.config
        if odometry is not None and scan.duration > 0 and (odometry.v or odometry.w):
            scan = scan.deskewed(odometry.v, odometry.w)
        pts = scan.points()
        pts = pts[np.isfinite(pts).all(axis=1) & ((pts * pts).sum(axis=1) <= cfg.max_range**2)]
        hit = scan.hit_mask & (scan.ranges <= cfg.max_range)
        step = max(1, int(np.count_nonzero(hit)) // cfg.through_beams)
        ranges = scan.ranges[hit][::step].astype(np.float64)
        angles = scan.angles[hit][::step].astype(np.float64)
        return Observation(_voxel(pts, cfg.local_voxel), ranges, angles, scan.sensor)

    def search(
        self, obs: Observation, min_score: float | None = None, exclude: Pose | None = None
    ) -> list[Hypothesis]:
        """Whole-map, all-headings search: up to `config.hypotheses` distinct hypotheses, best
        `evaluate` score first, none with more than `drop_through` of its beams through walls.
        `min_score` (mean coarse field value) defaults to `config.global_min_score`; candidates
        not distinct from `exclude` are skipped."""
        cfg = self.config
        if self.problem is not None or len(obs.points) == 0:
            return []
        threshold = cfg.global_min_score if min_score is None else float(min_score)
        raw, step = self._global.search(_voxel(obs.points, cfg.global_voxel), threshold, cfg)
        kept = _suppress(raw, cfg.separation, cfg.separation_angle, self._global.candidates)
        found = []
        for h in kept:
            if exclude is not None and _near(h.pose, exclude, cfg.separation, cfg.separation_angle):
                continue
            h = self.locate(obs, h.pose, cfg.candidate_window * self._global.resolution, step)
            if h.through <= cfg.drop_through:
                found.append(h)
        found.sort(key=lambda h: -h.score)
        return _suppress(found, cfg.separation, cfg.separation_angle, cfg.hypotheses)

    def rematch(
        self,
        points: np.ndarray,
        predicted: Pose,
        linear: float | None = None,
        angular: float | None = None,
    ) -> tuple[Pose, float]:
        """Best pose of (N, 2) robot-frame points near `predicted`: an exhaustive window of
        `linear` m and `angular` rad (default `local_window`, `local_window_angle`) on the
        field, then sub-cell refinement. Returns (pose, mean field value there)."""
        cfg = self.config
        window = SearchWindow(
            cfg.local_window if linear is None else linear,
            cfg.local_window_angle if angular is None else angular,
        )
        found = match_window(points, self._local, predicted, window)
        return refine(points, self.field, found.pose, _REFINE)

    def locate(
        self,
        obs: Observation,
        predicted: Pose,
        linear: float | None = None,
        angular: float | None = None,
    ) -> Hypothesis:
        """The best-scored (`evaluate`) pose of an observation near `predicted`.

        An exhaustive window of `linear` m and `angular` rad (default `local_window`,
        `local_window_angle`) on the field; its best peak refined and evaluated. Unmapped
        clutter can pull that peak off the right pose onto one whose beams cross walls: when
        more than `max_through` do, the next `window_peaks` - 1 distinct peaks are refined and
        evaluated too, and the best evaluated wins. A pose off the standable floor scores 0,
        all its beams through walls.
        """
        cfg = self.config
        res = self.resolution
        half = _cells(cfg.local_window if linear is None else linear, res)
        pts = obs.points
        d_max = max(float(np.sqrt((pts * pts).sum(axis=1)).max()), 3.0 * res)
        step = (1.0 - 1e-3) * 2.0 * math.asin(res / (2.0 * d_max))
        span = cfg.local_window_angle if angular is None else angular
        n_ang = math.ceil(min(span, math.pi) / step - 1e-9)
        headings = predicted.theta + step * np.arange(-n_ang, n_ang + 1, dtype=np.float64)
        tx, ty = predicted.x - self.origin[0], predicted.y - self.origin[1]
        cells = _kernels.rotated_cells(pts, headings, tx, ty, res, 1)
        bounds = np.array([-half, half, -half, half], dtype=np.int64)
        sums = _kernels.window_scores(self._local.levels[0], cells, bounds)
        best: Hypothesis | None = None
        for a, iy, ix in _peaks(sums, cfg.window_peaks):
            start = Pose(
                predicted.x + (ix - half) * res,
                predicted.y + (iy - half) * res,
                predicted.theta + (a - n_ang) * step,
            )
            pose, _ = refine(pts, self.field, start, _REFINE)
            if self.on_free_floor(pose):
                found = Hypothesis(pose, *self.evaluate(obs, pose))
            else:
                found = Hypothesis(pose, 0.0, 1.0)
            if best is None or found.score > best.score:
                best = found
            if best.through <= cfg.max_through:
                break
        assert best is not None
        return best

    def evaluate(self, obs: Observation, pose: Pose) -> tuple[float, float]:
        """How well the robot at `pose` explains an observation: (score, through) with
        through = `through_walls` and score = `score` less `through_weight` * through."""
        through = self.through_walls(obs, pose)
        return self.score(obs.points, pose) - self.config.through_weight * through, through

    def score(self, points: np.ndarray, pose: Pose) -> float:
        """Mean field value (bilinear) of (N, 2) robot-frame points for the robot at `pose`."""
        xy = pose.transform_points(points)
        return float(_bilinear(self.field.values, self.resolution, self.origin, xy).mean())

    def through_walls(self, obs: Observation, pose: Pose) -> float:
        """Fraction of the observation's beams that, for the robot at `pose`, end more than
        `through_tolerance` m beyond the first wall (`walls`: occupied, specks left out) on
        their way, and still do when moved `through_spread` m sideways or turned
        `through_spread_angle` either way: a beam that slips past a wall end, along a wall or
        beside a speck once moved by less than a right pose's error went through nothing."""
        n = len(obs.ranges)
        if n == 0:
            return 0.0
        cfg = self.config
        s = pose.compose(obs.sensor)
        a = obs.angles + s.theta
        sx, sy = -np.sin(a), np.cos(a)  # sideways unit vectors
        w, da = cfg.through_spread, cfg.through_spread_angle
        xs = np.concatenate([s.x + k * w * sx for k in (0, -1, 1, 0, 0)])
        ys = np.concatenate([s.y + k * w * sy for k in (0, -1, 1, 0, 0)])
        angles = np.concatenate([a, a, a, a - da, a + da])
        expected = cast_rays(
            self.walls, self.resolution, self.origin, xs, ys, angles, float(obs.ranges.max())
        ).reshape(5, n)
        through = expected.max(axis=0) < obs.ranges - cfg.through_tolerance
        return float(np.count_nonzero(through)) / n

    def fit_near(
        self,
        scan: Scan,
        pose: Pose,
        linear: float,
        angular: float,
        odometry: Odometry | None = None,
    ) -> Pose:
        """Where `scan` fits the map best within `linear` m and `angular` rad of `pose`
        (`locate`): the pose tracking in this map would hold there; `pose` itself when the
        scan has too few hits. `odometry` de-skews it (`observe`)."""
        obs = self.observe(scan, odometry)
        if len(obs.points) < self.config.min_points:
            return pose
        return self.locate(obs, pose, linear, angular).pose

    def walkable(self, body: float) -> np.ndarray:
        """(H, W) bool: known free floor at least `body` m from mapped walls (cached)."""
        found = self._walkable.get(body)
        if found is None:
            clear = (_distance(~self.occupied) - 0.5) * self.resolution >= body
            floor = _with_unsure_specks(
                self.free, self.occupied, self.config.speck_area / self.resolution**2
            )
            found = self._walkable[body] = floor & clear
        return found

    def on_free_floor(self, pose: Pose) -> bool:
        """True when the robot's centre may be at `pose`: known free floor, at least
        `wall_clearance` m from mapped walls."""
        h, w = self.standable.shape
        j = math.floor((pose.x - self.origin[0]) / self.resolution)
        i = math.floor((pose.y - self.origin[1]) / self.resolution)
        return 0 <= i < h and 0 <= j < w and bool(self.standable[i, j])


@dataclass(frozen=True, slots=True, eq=False)
class _Stack:
    """The whole-map search space: the max-filtered levels of a (coarse) field, flattened,
    framed by `pad` cells of FLOOR so that no point within max_range of a robot inside the
    grid leaves the array (the branch and bound reads without bounds checks), and the mask of
    the positions searched, block-any filtered the same way over their bounding box."""

    levels: np.ndarray  # (depth, Hp * Wp) uint8
    width: int  # Wp
    pad: int  # cells
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy of the corner of unpadded cell (0, 0)
    box: tuple[int, int, int, int]  # rows and columns spanned by the positions, inclusive
    allowed: np.ndarray  # (depth, ny * nx) uint8
    bins: int  # bins the branch and bound keeps ...
    candidates: int  # ... and candidates re-matched, by the floor area searched

    @classmethod
    def build(
        cls,
        values: np.ndarray,
        allowed: np.ndarray,
        res: float,
        origin: tuple[float, float],
        cfg: LocalizerConfig,
    ) -> _Stack:
        """From (H, W) field `values` and the (H, W) bool positions `allowed` (at least one),
        `res` m per cell, `origin` the world xy of cell (0, 0)'s corner."""
        quantised = np.rint(values * SCALE).astype(np.uint8)
        pad = max(2 ** (cfg.depth - 1), math.ceil(cfg.max_range / res) + 2)
        levels = _kernels.block_max_levels(quantised, cfg.depth, pad, _FILL)
        rows, cols = np.nonzero(allowed)
        box = (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))
        crop = allowed[box[0] : box[1] + 1, box[2] : box[3] + 1].astype(np.uint8)
        mask = _kernels.block_max_levels(crop, cfg.depth, 0, 0).reshape(cfg.depth, -1)
        flat = levels.reshape(cfg.depth, -1)
        area = float(np.count_nonzero(allowed)) * res * res
        bins = max(cfg.bins, math.ceil(area / cfg.search_area))
        candidates = max(cfg.candidates, math.ceil(bins * cfg.candidates / cfg.bins))
        return cls(flat, levels.shape[2], pad, res, origin, box, mask, bins, candidates)

    def search(
        self, points: np.ndarray, threshold: float, cfg: LocalizerConfig
    ) -> tuple[list[Hypothesis], float]:
        """The best candidate of each of the best bins (cell-level scores), best first, and
        the heading step (rad): Cartographer's, the farthest point moving one cell per step."""
        res = self.resolution
        d_max = max(float(np.sqrt((points * points).sum(axis=1)).max()), 3.0 * res)
        step = (1.0 - 1e-3) * 2.0 * math.asin(res / (2.0 * d_max))
        n_ang = math.ceil(math.pi / step)
        headings = step * np.arange(-n_ang, n_ang + 1, dtype=np.float64)
        # candidate (a, iy, ix): heading a, the robot at the centre of cell (iy, ix)
        cells = _kernels.rotated_cells(points, headings, 0.5 * res, 0.5 * res, res, self.pad)
        flat = (cells[:, :, 0].astype(np.int64) * self.width + cells[:, :, 1]).astype(np.int32)
        n = len(points)
        rows, n_found, _ = _kernels.branch_and_bound_top_bins(
            self.levels,
            self.width,
            flat,
            np.array(self.box, dtype=np.int64),
            self.allowed,
            math.ceil(threshold * SCALE * n - 1e-6),
            math.floor(cfg.global_slack * SCALE * n),
            self.bins,
            max(1, int(cfg.separation_angle / step)),
            max(1, round(cfg.separation / res)),
            max(1, round(cfg.separation / res)),
        )
        ox, oy = self.origin
        out = [
            Hypothesis(
                Pose(ox + (ix + 0.5) * res, oy + (iy + 0.5) * res, (a - n_ang) * step),
                total / (SCALE * n),
            )
            for a, iy, ix, total in rows[:n_found].tolist()
        ]
        return out, step


# ---------------------------------------------------------------------------- relocalization
@dataclass(slots=True)
class _Track:
    """A hypothesis followed over scans: map_from_odom, its map pose at the last scan, and per
    scan since it was found the score and the fraction of beams through walls."""

    map_from_odom: Pose
    pose: Pose
    scores: list[float] = field(default_factory=list)
    through: list[float] = field(default_factory=list)

    def recent(self, n: int) -> float:
        """Mean score over the last n scans."""
        return float(np.mean(self.scores[-n:]))


class Relocalization:
    """One relocalization in progress (see the module docstring): made by `Localizer.start`,
    fed by `update`; `result` is the latest Result."""

    def __init__(
        self, localizer: Localizer, scan: Scan, odometry: Odometry | Pose | None = None
    ) -> None:
        self.localizer = localizer
        self.config = localizer.config
        self.tracks: list[_Track] = []  # best first
        self.scans = 0  # usable scans so far
        self.skipped = 0  # unusable scans so far
        self.searches = 0  # whole-map searches so far
        self.elapsed_ms = 0.0  # compute time so far
        self.travel = 0.0  # m of odometry travel since the start
        self.turn = 0.0  # rad of odometry turning since the start
        self.still = 0  # scans in a row without odometry change
        self._last_odom: Pose | None = None
        self._recent: list[tuple[Pose, Observation]] = []  # the last usable scans, newest last
        self._best_global = 0.0
        self.result = Result(SEARCHING)
        if localizer.problem is not None:
            self.result = Result(REFUSED, reason=f"unusable map: {localizer.problem}")
            return
        self.update(scan, odometry)

    def update(self, scan: Scan, odometry: Odometry | Pose | None = None) -> Result:
        """Add one scan with the robot's odometry-frame pose at its time (an Odometry also
        carries the speeds to de-skew it). Returns the new result; once "localized" or
        "refused", further scans change nothing."""
        if self.result.status != SEARCHING:
            return self.result
        t0 = time.perf_counter()
        try:
            result = self._step(scan, odometry)
        except (TypeError, ValueError) as exc:  # bad input: refuse, say why
            result = self._end(REFUSED, f"bad input: {exc}")
        self.elapsed_ms += (time.perf_counter() - t0) * 1e3
        self.result = dataclasses.replace(result, elapsed_ms=self.elapsed_ms)
        return self.result

    # ------------------------------------------------------------------------------ one scan
    def _step(self, scan: Scan, odometry: Odometry | Pose | None) -> Result:
        cfg = self.config
        loc = self.localizer
        if not isinstance(scan, Scan):
            raise TypeError(f"expected a maps.Scan, got {type(scan).__name__}")
        odom, speeds = _odometry(odometry)
        self._account_motion(odom)
        obs = loc.observe(scan, speeds)
        if len(obs.points) < cfg.min_points:
            self.skipped += 1
            reason = (
                f"scan has {len(obs.points)} usable hits (< {cfg.min_points}): almost no "
                "valid beams"
            )
            if self.scans == 0 or self.scans + self.skipped >= cfg.max_scans:
                return self._end(REFUSED, reason)
            return self._end(SEARCHING, reason)
        self.scans += 1
        self._recent = [*self._recent, (odom, obs)][-cfg.search_scans :]
        for t in self.tracks:
            found = loc.locate(obs, t.map_from_odom.compose(odom))
            pose, score, through = found.pose, found.score, found.through
            t.pose = pose
            t.map_from_odom = pose.compose(odom.inverse())
            t.scores.append(score)
            t.through.append(through)
        self._merge()
        self._prune()
        weak = not self.tracks or self.tracks[0].scores[-1] < cfg.sure_score
        if self.searches < cfg.max_searches and (weak or not any(map(self._viable, self.tracks))):
            # nothing followed fits well: search the whole map with the last few scans together
            # (a weakly fitting leader must not hide the right place, which clutter hid before)
            self._spawn(odom, self._search(self._combined(odom)))
            self._prune()
        if self.tracks:
            verdict, n = self._judge()
        else:
            verdict, n = f"no place in the map fits (best {self._best_global:.2f})", 0
        if verdict is None:
            verdict = self._loose(self.tracks[0], odom)
        if verdict is None:
            # a clear winner: is there really no other place in the map that fits this scan?
            leader = self.tracks[0]
            bar = leader.scores[-1] - cfg.margin
            rivals = self._search(obs, bar - cfg.veto_slack, exclude=leader.pose)
            fresh = [h for h in rivals if h.score >= bar and h.through <= cfg.rival_through]
            if not fresh:
                self._settle(leader, odom)
                return self._accept(leader, n)
            self._spawn(odom, fresh)
            verdict = "a last whole-map search found another place that fits as well"
        if self.scans >= cfg.max_scans:
            return self._end(REFUSED, verdict)
        if self.still >= cfg.max_still_scans:
            return self._end(
                REFUSED,
                f"the robot did not move (odometry unchanged over {self.still} scans): cannot "
                f"confirm a pose; {verdict}",
            )
        return self._end(SEARCHING, verdict)

    def _judge(self) -> tuple[str | None, int]:
        """(None, n) when the leader may be accepted on its last n scans, else (why not, 0)."""
        cfg = self.config
        leader = self.tracks[0]
        p = leader.pose
        where = f"({p.x:.2f}, {p.y:.2f}, {math.degrees(p.theta):.0f} deg)"
        n, max_through = cfg.confirm_scans, cfg.max_through
        if len(leader.scores) >= n and min(leader.scores[-n:]) < cfg.sure_score:
            if self.localizer.own_map:
                return (
                    f"best hypothesis {where} scores {min(leader.scores[-n:]):.2f} < "
                    f"{cfg.sure_score:.2f} in the robot's own map, which holds the furniture: "
                    "the robot may be on floor the map does not hold"
                ), 0
            # a weaker fit (clutter) must hold over more scans, and cross walls even less
            n, max_through = cfg.confirm_scans_low, cfg.max_through_low
        if len(leader.scores) < n:
            return f"confirming {where}: {len(leader.scores)} of {n} scans", 0
        low = min(leader.scores[-n:])
        if low < cfg.accept_score:
            return (
                f"best hypothesis {where} scores {low:.2f} < {cfg.accept_score:.2f}: the map "
                "does not fit the scans well enough"
            ), 0
        through, worst = float(np.mean(leader.through[-n:])), max(leader.through)
        if through > max_through or worst > cfg.max_through_scan:
            return (
                f"best hypothesis {where} sees beams through walls ({100 * through:.1f} % "
                f"lately, {100 * worst:.1f} % on its worst scan)"
            ), 0
        for r in self.tracks[1:]:
            if max(r.through) > cfg.rival_through:
                continue  # it saw plainly through walls: it cannot be the place
            m = min(n, len(r.scores))
            gap = leader.recent(m) - r.recent(m)
            if gap < cfg.margin:
                q = r.pose
                return (
                    f"ambiguous: {where} and ({q.x:.2f}, {q.y:.2f}, "
                    f"{math.degrees(q.theta):.0f} deg) fit alike (margin {gap:.3f} < "
                    f"{cfg.margin:.2f})"
                ), 0
        if self.travel < cfg.min_travel and self.turn < cfg.min_turn:
            return (
                f"the robot has not moved enough to confirm {where} ({self.travel:.2f} m, "
                f"{math.degrees(self.turn):.0f} deg)"
            ), 0
        return None, n

    def _viable(self, t: _Track) -> bool:
        """Could this track still win: it fits the last scan, not through walls."""
        cfg = self.config
        return t.scores[-1] >= cfg.accept_score and t.through[-1] <= cfg.max_through_scan

    # ------------------------------------------------------------------------------ tracks
    def _search(
        self, obs: Observation, min_score: float | None = None, exclude: Pose | None = None
    ) -> list[Hypothesis]:
        self.searches += 1
        found = self.localizer.search(obs, min_score, exclude)
        if found:
            self._best_global = max(self._best_global, found[0].score)
        return found

    def _combined(self, odom: Pose) -> Observation:
        """The last `search_scans` scans' points in the robot frame of the newest (put there
        by odometry; beyond max_range dropped, one per local_voxel cell), its beams."""
        newest = self._recent[-1][1]
        if len(self._recent) == 1:
            return newest
        back = odom.inverse()
        points = np.concatenate(
            [back.compose(o).transform_points(ob.points) for o, ob in self._recent]
        )
        points = points[(points * points).sum(axis=1) <= self.config.max_range**2]
        return dataclasses.replace(newest, points=_voxel(points, self.config.local_voxel))

    def _spawn(self, odom: Pose, found: list[Hypothesis]) -> None:
        """Follow new hypotheses (poses at the current scan) unless already followed."""
        cfg = self.config
        for h in found:
            if not any(_near(h.pose, t.pose, cfg.merge, cfg.merge_angle) for t in self.tracks):
                map_from_odom = h.pose.compose(odom.inverse())
                self.tracks.append(_Track(map_from_odom, h.pose, [h.score], [h.through]))

    def _merge(self) -> None:
        """Tracks that converged onto one pose become one (the best ranked)."""
        cfg = self.config
        self.tracks.sort(key=_rank)
        kept: list[_Track] = []
        for t in self.tracks:
            if not any(_near(t.pose, u.pose, cfg.merge, cfg.merge_angle) for u in kept):
                kept.append(t)
        self.tracks = kept

    def _prune(self) -> None:
        """Rank the tracks, drop the plainly wrong (through walls on the last two scans, below
        global_min_score, or drop_margin behind the leader); keep at most max_tracks."""
        cfg = self.config
        self.tracks.sort(key=_rank)
        kept: list[_Track] = []
        for t in self.tracks:
            if len(t.through) >= 2 and min(t.through[-2:]) > cfg.drop_through:
                continue
            if len(t.scores) >= 2 and t.scores[-1] < cfg.global_min_score:
                continue
            if kept:
                m = min(cfg.confirm_scans, len(t.scores), len(kept[0].scores))
                if m >= 2 and kept[0].recent(m) - t.recent(m) > cfg.drop_margin:
                    continue
            kept.append(t)
        self.tracks = kept[: cfg.max_tracks]

    def _account_motion(self, odom: Pose) -> None:
        if self._last_odom is not None:
            d = self._last_odom.between(odom)
            step, turn = math.hypot(d.x, d.y), abs(d.theta)
            self.travel += step
            self.turn += turn
            self.still = self.still + 1 if step < 1e-4 and turn < 1e-4 else 0
        self._last_odom = odom

    # ------------------------------------------------------------------------------ results
    def _loose(self, leader: _Track, odom: Pose) -> str | None:
        """Why the last scans leave the winner's position loose, or None: the score must drop
        by `min_sharpness` on average a `sharpness_step` away in every direction (a pose that
        only a slanted wall pins along a corridor may be off by more than 0.1 m)."""
        cfg = self.config
        loc = self.localizer
        obs = self._combined(odom)
        p = leader.pose
        centre = loc.score(obs.points, p)
        drops = []
        for a in np.linspace(0.0, math.pi, 12, endpoint=False):
            dx, dy = cfg.sharpness_step * math.cos(a), cfg.sharpness_step * math.sin(a)
            ahead = loc.score(obs.points, Pose(p.x + dx, p.y + dy, p.theta))
            behind = loc.score(obs.points, Pose(p.x - dx, p.y - dy, p.theta))
            drops.append((centre - 0.5 * (ahead + behind), a))
        drop, a = min(drops)
        if drop >= cfg.min_sharpness:
            return None
        return (
            f"position loose: ({p.x:.2f}, {p.y:.2f}) along {math.degrees(a):.0f} deg (score drop "
            f"{drop:.3f} < {cfg.min_sharpness:g} at {cfg.sharpness_step:g} m): moving on"
        )

    def _settle(self, leader: _Track, odom: Pose) -> None:
        """Refine the winner on the last `search_scans` scans together: more walls in view pin
        a pose that one scan leaves loose (along a corridor whose ends clutter hides). Kept
        only when it fits those scans at least as well and crosses no more walls."""
        if len(self._recent) < 2:
            return
        loc = self.localizer
        obs = self._combined(odom)
        before = loc.evaluate(obs, leader.pose)
        pose, _ = loc.rematch(obs.points, leader.pose)
        after = loc.evaluate(obs, pose)
        if loc.on_free_floor(pose) and after[0] >= before[0] and after[1] <= before[1]:
            leader.pose = pose
            leader.map_from_odom = pose.compose(odom.inverse())

    def _accept(self, leader: _Track, n: int) -> Result:
        others = [t.recent(min(n, len(t.scores))) for t in self.tracks[1:]]
        runner = f"{max(others):.2f}" if others else "none"
        return Result(
            LOCALIZED,
            leader.pose,
            leader.map_from_odom,
            f"score {leader.recent(n):.2f} over the last {n} scans, "
            f"{100 * float(np.mean(leader.through[-n:])):.1f} % of beams through walls; "
            f"best distinct rival {runner}",
            self.scans,
            score=leader.recent(n),
            candidates=self._candidates(),
        )

    def _end(self, status: str, reason: str) -> Result:
        return Result(
            status,
            reason=reason,
            scans_used=self.scans,
            score=self.tracks[0].recent(self.config.confirm_scans) if self.tracks else 0.0,
            candidates=self._candidates(),
        )

    def _candidates(self) -> tuple[Hypothesis, ...]:
        return tuple(Hypothesis(t.pose, t.scores[-1], t.through[-1]) for t in self.tracks[:5])

    def in_play(self, k: int = 4) -> list[tuple[Localizer, Pose]]:
        """The map poses of the best k hypotheses followed, with their localizer."""
        return [(self.localizer, t.pose) for t in self.tracks[:k]]


def _rank(t: _Track) -> float:
    """Sort key of the tracks: best recent mean first."""
    return -t.recent(3)


# ---------------------------------------------------------------------------- tracking
@dataclass(frozen=True, slots=True)
class TrackStep:
    """One tracked scan: the robot's map pose at the scan, its score and fraction of beams
    through walls there (`Localizer.evaluate`), and whether tracking is lost (`reason` why)."""

    pose: Pose
    score: float
    through: float
    lost: bool = False
    reason: str = ""


class Tracker:
    """Follow the pose scan by scan in the stored map once localized.

    Each scan is predicted with the odometry (`map_from_odom`, a localized Result's), re-matched
    in a small window and refined; `map_from_odom` follows. A scan scoring below
    `track_lost_score` or with more than `track_lost_through` of its beams through walls is bad
    (the pose then follows the odometry alone); `track_lost_scans` bad scans in a row mean
    tracking is lost: relocalize. Lost stays lost; scans with too few hits are skipped.
    """

    def __init__(self, localizer: Localizer, map_from_odom: Pose) -> None:
        if localizer.problem is not None:
            raise ValueError(f"cannot track in an unusable map: {localizer.problem}")
        self.localizer = localizer
        self.map_from_odom = map_from_odom
        self.bad = 0  # bad scans in a row
        self.last: TrackStep | None = None

    @property
    def lost(self) -> bool:
        return self.last is not None and self.last.lost

    def update(self, scan: Scan, odometry: Odometry | Pose) -> TrackStep:
        """Track one scan, with the odometry-frame pose at its time (an Odometry also carries
        the speeds to de-skew it)."""
        cfg = self.localizer.config
        odom, speeds = _odometry(odometry)
        predicted = self.map_from_odom.compose(odom)
        last = self.last
        if last is not None and last.lost:
            return dataclasses.replace(last, pose=predicted)
        obs = self.localizer.observe(scan, speeds)
        if len(obs.points) < cfg.min_points:
            score, through = (last.score, last.through) if last else (0.0, 0.0)
            self.last = TrackStep(predicted, score, through, reason="too few hits: skipped")
            return self.last
        found = self.localizer.locate(obs, predicted)
        pose, score, through = found.pose, found.score, found.through
        if score < cfg.track_lost_score or through > cfg.track_lost_through:
            self.bad += 1
            pose = predicted  # do not follow a bad match
        else:
            self.bad = 0
            self.map_from_odom = pose.compose(odom.inverse())
        lost = self.bad >= cfg.track_lost_scans
        reason = (
            f"{self.bad} scans in a row fit badly (score {score:.2f}, {100 * through:.0f} % "
            "of beams through walls): relocalize"
            if lost
            else ""
        )
        self.last = TrackStep(pose, score, through, lost, reason)
        return self.last


# ---------------------------------------------------------------------------- driving a robot
@dataclass(frozen=True, slots=True)
class DriveConfig:
    """How `relocalize` moves the robot to gather evidence (SI units)."""

    steps: tuple[float, ...] = (0.25, 0.5, 1.0)  # m, forward moves considered after a turn
    novelty: float = 1.5  # m: a move ending this far from where the robot has been is new
    directions: int = 24  # headings considered, evenly spread
    body: float = 0.2  # m, half-width of the corridor that must be clear in the scan
    clearance: float = 0.3  # m kept between the robot and what the scan shows ahead
    speed: float = 0.25  # m/s forward
    turn_rate: float = 1.0  # rad/s in place
    beams: int = 72  # beams cast per hypothesis to compare what each would see
    disagree: float = 0.3  # m: predicted ranges further apart than this tell places apart
    alike: float = 0.1  # when no move shows this fraction of beams differently ...
    reach: float = 8.0  # m: ... head for the nearest place this far at most (along the floor) ...
    telling: float = 0.25  # ... from which this fraction would differ
    spot_spacing: float = 0.3  # m between the places considered for that
    settle_timeout: float = 2.0  # s to wait for a scan taken standing still


def relocalize(
    localizer: Localizer,
    robot,
    drive: DriveConfig | None = None,
    *,
    on_scan: Callable[[Result], None] | None = None,
) -> Result:
    """Relocalize a `firmware_bridge.robot.Robot` from no prior, moving it to gather evidence.

    Takes a scan standing still and starts the search; then, until it ends, turns in place,
    drives a short way, stands still for a whole scan and updates. Each move is one of a few
    (heading, distance) pairs the last scan shows clear: the one after which the hypotheses in
    play would see the most different things (ranges cast in the map from each), else the one
    leading farthest from where the robot has been, towards open views. Ends "localized" or
    "refused" (a robot whose odometry does not change is refused). The result's `elapsed_ms`
    counts the localizer's and the move planning's compute time, not the driving; `on_scan`
    sees every intermediate result.
    """
    return drive_search(robot, localizer.start, drive, on_scan=on_scan)


def drive_search(robot, start: Callable, drive: DriveConfig | None = None, *, on_scan=None):
    """Drive `robot` to feed a search until it decides (see `relocalize`).

    `start(scan, odometry)` begins the search; it has `result` (with `status`, `scans_used`),
    `elapsed_ms`, `update(scan, odometry)` and `in_play()`, the (localizer, map pose) of its best
    hypotheses, which the moves are chosen to tell apart. Returns the final result with the
    move planning's compute time added to `elapsed_ms`.
    """
    drive = drive or DriveConfig()
    scan, odom = _still_scan(robot, drive.settle_timeout)
    if scan is None or odom is None:
        return Result(REFUSED, reason="the robot gave no scan taken standing still")
    search = start(scan, odom)
    planning_ms = 0.0
    visited = [odom.pose]  # odometry-frame poses of the scans so far
    bumped: list[tuple[float, float]] = []  # odometry-frame xy of what the bumper found
    while search.result.status == SEARCHING:
        if on_scan is not None:
            on_scan(search.result)
        t0 = time.perf_counter()
        blocked = odom.pose.inverse().transform_points(np.array(bumped).reshape(-1, 2))
        turn, distance = _plan_move(search.in_play(), scan, blocked, odom.pose, visited, drive)
        planning_ms += (time.perf_counter() - t0) * 1e3
        if abs(turn) > 1e-3:
            robot.drive(0.0, math.copysign(drive.turn_rate, turn), abs(turn) / drive.turn_rate)
        if distance > 0 and robot.drive(drive.speed, 0.0, distance / drive.speed):
            # something the lidar does not see: remember it in front of the robot
            at = robot.odometry().pose
            for side in (-0.1, 0.0, 0.1):
                ahead = at.compose(Pose(drive.body + 0.05, side, 0.0))
                bumped.append((ahead.x, ahead.y))
        scan, odom = _still_scan(robot, drive.settle_timeout)
        if scan is None or odom is None:
            failed = Result(REFUSED, reason="the robot stopped giving scans")
            return dataclasses.replace(failed, scans_used=search.result.scans_used)
        visited.append(odom.pose)
        search.update(scan, odom)
    return dataclasses.replace(search.result, elapsed_ms=search.elapsed_ms + planning_ms)


def _still_scan(robot, timeout: float) -> tuple[Scan | None, Odometry | None]:
    """Stand still until a whole revolution has been taken standing still: (scan, odometry)."""
    robot.drive(0.0, 0.0, 0.0)
    robot.scans()  # what was taken while moving
    t_still = robot.time
    waited = 0.0
    while waited < timeout:
        robot.drive(0.0, 0.0, 0.1)
        waited += 0.1
        for scan in robot.scans():
            if scan.stamp >= t_still - 1e-9:
                return scan, robot.odometry()
    return None, None


def _plan_move(
    in_play: list[tuple[Localizer, Pose]],
    scan: Scan,
    blocked: np.ndarray,
    here: Pose,
    visited: list[Pose],
    drive: DriveConfig,
) -> tuple[float, float]:
    """(turn in place, rad; then forward distance, m) for the next move (see relocalize);
    `blocked` (K, 2) robot-frame points the bumper found, `here` the odometry pose."""
    pts = np.concatenate((scan.points(), blocked))
    headings = [
        float(wrap_angle(2.0 * math.pi * k / drive.directions)) for k in range(drive.directions)
    ]
    best = (-1.0, 0.0, 0.0)
    telling = 0.0  # the most the leader and the runner-up disagree after any one move
    for a in headings:
        free = _free_distance(pts, a, drive.body, scan.range_max)
        for d in drive.steps:
            if d > free - drive.clearance:
                continue
            move = Pose(d * math.cos(a), d * math.sin(a), a)
            end = here.compose(move)
            novelty = min(min(math.hypot(end.x - v.x, end.y - v.y) for v in visited), drive.novelty)
            # new places first, then open views (doorways, halls show the most map)
            value = novelty + 0.15 * min(free, 6.0) + 0.1 * d
            if len(in_play) >= 2:  # what the hypotheses would see differently, if not seen yet
                fresh = min(1.0, novelty / 0.5)
                differ = _disagreement(in_play, move, drive)
                telling = max(telling, float(differ[0]))
                value += 10.0 * fresh * float(differ.mean())
            if value > best[0]:
                best = (value, a, d)
    if len(in_play) >= 2 and telling < drive.alike:
        # the two best places look alike all around (twin rooms): walk to where they differ
        guided = _guided_move(in_play[:2], pts, scan.range_max, drive)
        if guided is not None:
            return guided
    if best[0] < 0:  # nothing clear ahead anywhere: turn towards the most open direction
        a = max(headings, key=lambda h: _free_distance(pts, h, drive.body, scan.range_max))
        return (a if abs(a) > 1e-3 else math.pi / 2), 0.0
    return best[1], best[2]


def _guided_move(
    in_play: list[tuple[Localizer, Pose]], points: np.ndarray, cap: float, drive: DriveConfig
) -> tuple[float, float] | None:
    """(turn, distance) of a first step along the shortest way, in the leader's map, to the
    nearest place from which the hypotheses in play would see different things (at least
    `drive.telling` of the beams, `_disagreement`), found within `drive.reach` m along the
    floor (open for every hypothesis); the step is at most the longest of `drive.steps`, in
    line of sight in the map, and cut short where the scan's robot-frame `points` show
    something the map does not hold. None when there is no such place or step, or when that
    cut leaves less than half the longest step.

    Twin rooms look the same from every spot inside them; only their doorways and beyond tell
    them apart, and the moves `_plan_move` weighs (one short step from here) do not get there.
    """
    loc, here = in_play[0]
    res, (ox, oy) = loc.resolution, loc.origin
    h, w = loc.free.shape
    i0, j0 = math.floor((here.y - oy) / res), math.floor((here.x - ox) / res)
    r = math.ceil(drive.reach / res)
    if not (0 <= i0 < h and 0 <= j0 < w):
        return None
    top, left = max(0, i0 - r), max(0, j0 - r)
    way = loc.walkable(drive.body + 0.05)[top : i0 + r + 1, left : j0 + r + 1].copy()
    for other, there in in_play[1:]:
        # a way that is open wherever the robot may be: the same moves, whichever place is right
        way &= _seen_from(other, there, here, drive.body + 0.05, loc, top, left, way.shape)
    i0, j0 = i0 - top, j0 - left
    # the robot may stand nearer a wall than the way keeps: it joins the way within 0.3 m
    ii, jj = np.ogrid[: way.shape[0], : way.shape[1]]
    near = (ii - i0) ** 2 + (jj - j0) ** 2 <= (0.3 / res) ** 2
    seeds = near & (way | ((ii == i0) & (jj == j0)))
    way |= seeds
    steps = _floor_steps(way, seeds, r)
    # places on a lattice, nearest first (8-connected steps along the floor)
    k = max(1, round(drive.spot_spacing / res))
    rows, cols = np.nonzero(np.isfinite(steps[::k, ::k]))
    rows, cols = rows * k, cols * k
    goal = None
    for n in np.argsort(steps[rows, cols], kind="stable")[:400].tolist():
        x, y = ox + (left + cols[n] + 0.5) * res, oy + (top + rows[n] + 0.5) * res
        move = here.inverse().compose(Pose(x, y, here.theta))
        if _disagreement(in_play, move, drive).min() >= drive.telling:
            goal = (int(rows[n]), int(cols[n]))
            break
    if goal is None:
        return None
    # back from that place, downhill on the step count, to the farthest cell in sight of here
    target = None
    for i, j in _downhill(steps, goal):  # from here outwards
        if math.hypot(i - i0, j - j0) * res > max(drive.steps):
            break
        if _in_sight(way, (i0, j0), (i, j)):
            target = (i, j)
    if target is None:
        return None
    x, y = ox + (left + target[1] + 0.5) * res, oy + (top + target[0] + 0.5) * res
    rel = here.inverse().transform_points(np.array([[x, y]]))[0]
    heading, distance = math.atan2(rel[1], rel[0]), math.hypot(rel[0], rel[1])
    if distance < min(drive.steps):
        return None
    clear = _free_distance(points, heading, drive.body, cap) - drive.clearance
    if clear < distance:  # something the map does not hold is in the way
        if clear < 0.5 * max(drive.steps):
            return None  # ... close: explore instead
        distance = clear
    return heading, distance


def _seen_from(
    other: Localizer,
    there: Pose,
    here: Pose,
    body: float,
    loc: Localizer,
    top: int,
    left: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """(shape) bool: the cells of `loc`'s grid window at (top, left) whose place, moved with
    the robot from `here` to `there` (in `other`'s map), is walkable there (`body` m clear)."""
    res, (ox, oy) = loc.resolution, loc.origin
    ii, jj = np.mgrid[top : top + shape[0], left : left + shape[1]]
    xy = np.stack(((jj + 0.5) * res + ox, (ii + 0.5) * res + oy), axis=-1).reshape(-1, 2)
    moved = there.compose(here.inverse()).transform_points(xy)
    ores, (qx, qy) = other.resolution, other.origin
    mj = ((moved[:, 0] - qx) / ores - 0.5).reshape(shape).astype(np.float32)
    mi = ((moved[:, 1] - qy) / ores - 0.5).reshape(shape).astype(np.float32)
    open_there = other.walkable(body).view(np.uint8)
    return cv2.remap(open_there, mj, mi, cv2.INTER_NEAREST, borderValue=0) > 0


def _floor_steps(way: np.ndarray, seeds: np.ndarray, limit: int) -> np.ndarray:
    """(H, W) float64: 8-connected steps from the `seeds` to each cell of `way` (bool masks),
    inf beyond `limit` steps or off the way."""
    steps = np.full(way.shape, np.inf)
    reached = seeds & way
    steps[reached] = 0.0
    kernel = np.ones((3, 3), np.uint8)
    for n in range(1, limit + 1):
        grown = (cv2.dilate(reached.view(np.uint8), kernel) > 0) & way & ~reached
        if not grown.any():
            break
        steps[grown] = n
        reached |= grown
    return steps


def _downhill(steps: np.ndarray, goal: tuple[int, int]) -> list[tuple[int, int]]:
    """The cells from a seed of `_floor_steps` to `goal`, one step at a time."""
    h, w = steps.shape
    path = [goal]
    i, j = goal
    while steps[i, j] > 0:
        i, j = min(
            (
                (i + di, j + dj)
                for di in (-1, 0, 1)
                for dj in (-1, 0, 1)
                if 0 <= i + di < h and 0 <= j + dj < w
            ),
            key=lambda c: (steps[c], abs(c[0] - i) + abs(c[1] - j)),
        )
        path.append((i, j))
    return path[::-1]


def _in_sight(way: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """True when the straight line between two cells' centres stays on `way` cells."""
    n = 2 * max(abs(b[0] - a[0]), abs(b[1] - a[1])) + 1
    i = np.rint(np.linspace(a[0], b[0], n)).astype(np.int64)
    j = np.rint(np.linspace(a[1], b[1], n)).astype(np.int64)
    return bool(way[i, j].all())


def _free_distance(points: np.ndarray, heading: float, body: float, cap: float) -> float:
    """How far (m) a corridor of half-width `body` along `heading` (robot frame) runs before
    the first of the (N, 2) robot-frame `points`; `cap` (at most 8 m) when none."""
    c, s = math.cos(heading), math.sin(heading)
    along = points[:, 0] * c + points[:, 1] * s
    across = -points[:, 0] * s + points[:, 1] * c
    blocking = along[(np.abs(across) < body) & (along > 0)]
    return float(blocking.min()) if blocking.size else float(min(cap, 8.0))


def _disagreement(
    in_play: list[tuple[Localizer, Pose]], move: Pose, drive: DriveConfig
) -> np.ndarray:
    """For each hypothesis after the first, the fraction of beams whose ranges, cast in its
    map from it and in the first's from the first after `move`, differ by more than
    `drive.disagree`: (len(in_play) - 1,) float64."""
    angles = np.linspace(-math.pi, math.pi, drive.beams, endpoint=False)
    ranges = []
    for localizer, p in in_play:
        cap = localizer.config.max_range
        q = p.compose(move)
        r = cast_rays(
            localizer.occupied,
            localizer.resolution,
            localizer.origin,
            np.full(drive.beams, q.x),
            np.full(drive.beams, q.y),
            angles + q.theta,
            cap,
        )
        ranges.append(np.minimum(r, cap))
    return np.array([np.mean(np.abs(ranges[0] - r) > drive.disagree) for r in ranges[1:]])


# ---------------------------------------------------------------------------- helpers
def _odometry(odometry: Odometry | Pose | None) -> tuple[Pose, Odometry | None]:
    """(odometry-frame pose, the Odometry for de-skewing or None)."""
    if odometry is None:
        return Pose(), None
    if isinstance(odometry, Odometry):
        return odometry.pose, odometry
    if isinstance(odometry, Pose):
        return odometry, None
    raise TypeError(f"odometry must be a maps.Odometry or Pose, got {type(odometry).__name__}")


def _map_problem(grid: object, cfg: LocalizerConfig, expected: float | None) -> str | None:
    """Why this grid cannot be searched, or None."""
    if not isinstance(grid, OccupancyGrid):
        return f"expected an OccupancyGrid, got {type(grid).__name__}"
    res = float(grid.resolution)
    if expected is not None and not math.isclose(res, expected, rel_tol=1e-6):
        return f"map resolution {res:g} m differs from the expected {expected:g} m"
    if not cfg.min_resolution <= res <= cfg.max_resolution:
        return (
            f"map resolution {res:g} m is outside [{cfg.min_resolution:g}, "
            f"{cfg.max_resolution:g}] m"
        )
    if grid.log_odds.size == 0 or not np.isfinite(grid.log_odds).all():
        return "the grid is empty or holds NaN"
    prob = grid.probability()
    n_occ = int(np.count_nonzero(prob > OCCUPIED_THRESH))
    n_free = int(np.count_nonzero(prob < FREE_THRESH))
    if n_occ == 0 and n_free == 0:
        return "the map is unknown everywhere"
    if n_occ < cfg.min_occupied_cells:
        return f"the map has {n_occ} occupied cells (< {cfg.min_occupied_cells}): no walls"
    if n_free == 0:
        return "the map has no known free floor"
    return None


def _without_specks(occupied: np.ndarray, min_cells: float) -> np.ndarray:
    """(H, W) bool: the occupied cells of 8-connected blobs of at least `min_cells` cells."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        occupied.astype(np.uint8), connectivity=8
    )
    keep = stats[:, cv2.CC_STAT_AREA] >= min_cells
    keep[0] = False  # the background
    return keep[labels]


def _with_unsure_specks(free: np.ndarray, occupied: np.ndarray, max_cells: float) -> np.ndarray:
    """(H, W) bool: `free` with the specks of unsure cells (neither free nor occupied;
    4-connected blobs under `max_cells` cells that touch no occupied cell) in it: a spot
    the scans that built the map crossed too seldom, in the middle of the floor. Without
    them a robot standing there, its pose right, would be told it cannot stand there."""
    unsure = ~free & ~occupied
    _, labels, stats, _ = cv2.connectedComponentsWithStats(unsure.astype(np.uint8), connectivity=4)
    speck = stats[:, cv2.CC_STAT_AREA] < max_cells
    speck[0] = False  # the background
    near = cv2.dilate(occupied.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    speck[np.unique(labels[near & unsure])] = False  # the edge of something, not a speck
    return free | speck[labels]


def _cells(half_width: float, res: float) -> int:
    """Cells of a linear half-width (m); the 1e-9 keeps 0.2 m / 0.05 m at 4, not 5."""
    return max(0, math.ceil(half_width / res - 1e-9))


def _peaks(sums: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """Up to k (a, iy, ix) indices of the highest values of an (A, ny, nx) window of scores,
    each more than 2 steps (rotations, or rows plus columns) from those before it."""
    order = np.argsort(-sums, axis=None, kind="stable")
    a_idx, y_idx, x_idx = np.unravel_index(order, sums.shape)
    out: list[tuple[int, int, int]] = []
    for a, y, x in zip(a_idx.tolist(), y_idx.tolist(), x_idx.tolist(), strict=True):
        if all(abs(a - b) > 2 or abs(y - v) + abs(x - u) > 2 for b, v, u in out):
            out.append((a, y, x))
            if len(out) == k:
                break
    return out


def _distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) float64 distance (cells) from each cell to the nearest cell where `mask` is
    False (exact Euclidean between cell centres)."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(
        np.float64
    )


def _field(d: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) float32 likelihood field from distances `d` (m) to the nearest wall face."""
    return (FLOOR + (PEAK - FLOOR) * np.exp(-0.5 * (d / sigma) ** 2)).astype(np.float32)


def _block_max(values: np.ndarray, f: int, fill: float | bool) -> np.ndarray:
    """(ceil(H / f), ceil(W / f)) max over f x f blocks, the array padded with `fill`."""
    h, w = values.shape
    hc, wc = -(-h // f), -(-w // f)
    padded = np.full((hc * f, wc * f), fill, dtype=values.dtype)
    padded[:h, :w] = values
    return padded.reshape(hc, f, wc, f).max(axis=(1, 3))


def _voxel(points: np.ndarray, size: float) -> np.ndarray:
    """The first of the (N, 2) points in each size x size cell, in their original order."""
    if len(points) == 0:
        return points
    keys = np.floor(points / size).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.ascontiguousarray(points[np.sort(first)])


def _near(p: Pose, q: Pose, dist: float, angle: float) -> bool:
    return math.hypot(p.x - q.x, p.y - q.y) <= dist and abs(wrap_angle(p.theta - q.theta)) <= angle


def _suppress(ranked: list[Hypothesis], dist: float, angle: float, k: int) -> list[Hypothesis]:
    """Greedy non-maximum suppression of hypotheses sorted best first: keep one only if it
    is distinct from every one kept; at most k."""
    kept: list[Hypothesis] = []
    for h in ranked:
        if all(not _near(h.pose, g.pose, dist, angle) for g in kept):
            kept.append(h)
            if len(kept) == k:
                break
    return kept


def _bilinear(values: np.ndarray, res: float, origin: tuple[float, float], xy: np.ndarray):
    """(N,) field values at (N, 2) world points, bilinear between cell centres (as the
    refinement reads them), VOID off the map."""
    h, w = values.shape
    u = (xy[:, 0] - origin[0]) / res - 0.5
    v = (xy[:, 1] - origin[1]) / res - 0.5
    j0 = np.floor(u).astype(np.int64)
    i0 = np.floor(v).astype(np.int64)
    inside = (j0 >= 0) & (j0 < w - 1) & (i0 >= 0) & (i0 < h - 1)
    jc, ic = np.where(inside, j0, 0), np.where(inside, i0, 0)
    fu, fv = u - j0, v - i0
    v00, v01 = values[ic, jc], values[ic, jc + 1]
    v10, v11 = values[ic + 1, jc], values[ic + 1, jc + 1]
    val = (1 - fv) * ((1 - fu) * v00 + fu * v01) + fv * ((1 - fu) * v10 + fu * v11)
    return np.where(inside, val, VOID)
