"""Lifelong map: while the robot is localized in a stored map, find what changed in the home
(furniture moved or gone, a door closed) and save a new version of the map when the change is
real.

API
    LifelongMap(doc, config=None, *, base_version=None, floor=None, expected_resolution=None)
    LifelongMap.from_store(store, floor="default", config=None)   on the floor's current version
    integrate(scan, pose, odometry=None) -> Integration   used, or skipped with the reason
    changes() -> ChangeSet          regions appeared / vanished (cells, m2, centroid, evidence)
    updated_document(changes=None) -> MapDocument         the stored map with the changes
    save_if_changed(store, floor=None, *, note=None, source="lifelong", keep_versions=None)
        -> VersionInfo | None       raises StaleMap / LifelongError instead of overwriting
    memory_bytes, reset(); cap_pose_graph(arrays, max_nodes) -> arrays

The stored map is never edited in place. `LifelongMap` keeps a working copy beside it: per cell,
how many scans saw a return there (hits) and how many saw a beam go through it (misses), and
from how many distinct viewpoints. Each hit takes 1/`memory` (at least 1) of the cell's misses
away and each miss as much of its hits, so the counts follow the home as it is now (a door
closed an hour ago, a person gone) rather than its history. Counters are uint8 and halve
together when one reaches 254: the working copy has the stored grid's shape and a fixed size,
10 bytes per cell, however long it runs (`memory_bytes`).

Evidence (`integrate(scan, pose)`, `pose` the robot's map pose at the scan, e.g. from
`navigation.localization.Tracker`):
- a hit within `max_range` counts for its cell;
- a beam counts as a miss on the stored-free cells it crosses up to `clear_gap` short of its hit,
  so a cell right in front of an obstacle is never cleared by range noise;
- a beam counts as a miss on stored-occupied cells only when it surely went through them: it
  ends more than `through_tolerance` beyond the first stored wall on its way, and so do the same
  beam turned by +-`through_angle` and shifted sideways by +-`through_offset` (a beam grazing a
  wall or passing a wall's end, a heading error of a degree, the few cm the robot moves during
  a revolution: any of them moves that first wall a long way; such beams are no evidence).
Beams with no return are no evidence at all: a lidar drops returns at random, and a black sofa
or a mirror returns nothing.
Returns beyond `beam_reach` are ignored. A scan is skipped, with the reason, when it has fewer
than `min_beams` valid returns, when the pose is off the map or in its unknown part, or when
more than `max_through_fraction` of its returns end beyond stored walls (the pose is then
wrong, not the map: furniture makes beams short, never long). NaN or negative ranges are
dropped and counted.

Changes (`changes()`): a stored-free cell appeared when at least `min_ratio` of its
observations are hits; a stored-occupied cell vanished when at least `min_ratio` are misses.
A region is a connected group of such cells that holds "sure" cells: observed in at least
`min_scans` scans from at least `min_views` viewpoints `view_spacing` apart (for appeared
cells also more than `wall_margin` from any stored wall, where range noise and pose error put
the hits of the walls themselves), grown by `wall_margin` into the weaker cells around them
(half the scans, the same ratio: a closed door reaches its jambs). Its area must reach
`min_area`; a vanished region must also face stored floor on at least `min_open_edge` of its
edge (an obstacle is seen going from its faces in: the inside of a wall whose faces are still
hit never vanishes). A person walking by (seen in a few scans, then seen through), sensor noise
or one scan at a bad pose do not make a region.
Appeared regions also take the stored-free cells they enclose that beams crossed no more often
than they hit (the inside of furniture seen from all sides); vanished regions also take the
stored-occupied cells within `wall_margin` that no beam hit (the edges the through test is too
careful to clear).
Stored-unknown cells are never changed.

Saving (`save_if_changed(store)`): nothing when there is no region. Otherwise the stored
document with the appeared cells occupied and the vanished ones free (rooms, restrictions,
dock, obstacles, frame kept; `meta["lifelong"]` records what changed) is saved as a new version
of the floor, parent = the version the working copy was built on, source "lifelong", note e.g.
"lifelong: 3 regions appeared (0.42 m2), 1 vanished (0.30 m2)", carrying that version's pose
graph capped at `max_graph_nodes` nodes (`cap_pose_graph`), so it does not grow from run to
run. When the floor's current version is no longer that version (another writer saved
meanwhile), it refuses with `StaleMap` and writes nothing (the check and the save are two
store calls: a writer that saves between them is not seen). `keep_versions` (optional) then
prunes the floor's old versions (`MapStore.prune`). After a save the working copy starts again
on the new version.

Use:
    with MapStore(path) as store:
        life = LifelongMap.from_store(store, floor="default")
        tracker = Tracker(Localizer(life.doc.grid), result.map_from_odom)
        for scan, odom in robot_feed:
            step = tracker.update(scan, odom)
            if not step.lost and not step.reason:
                life.integrate(scan, step.pose, odom)
        info = life.save_if_changed(store)   # VersionInfo, or None when nothing changed

Units: metres, radians, m2. Grid axes as maps.grid (row i <-> y up, column j <-> x right).
Change detection in the spirit of slam_toolbox's lifelong mode (navigation.md section 1.4), but
on the grid instead of pose-graph nodes: a fixed-size working copy, no growing graph.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from maps.errors import MapError
from maps.geometry import Pose, wrap_angle
from maps.grid import GridConfig, OccupancyGrid
from maps.model import FREE, FREE_LOG_ODDS, OCCUPIED, OCCUPIED_LOG_ODDS, UNKNOWN, MapDocument
from maps.raster import cast_rays
from maps.scan import Odometry, Scan
from maps.store import FloorMovedOn, MapStore, VersionInfo, check_floor_name
from navigation.errors import NavigationError

log = logging.getLogger(__name__)

APPEARED, VANISHED = "appeared", "vanished"
KINDS = (APPEARED, VANISHED)
COUNTER_CAP = 254  # counters halve together on reaching this (uint8, one increment per scan)
PRUNED_KIND = "pruned"  # edge kind of the chain edges cap_pose_graph puts across dropped nodes


class LifelongError(NavigationError):
    """A lifelong working copy cannot be saved as asked (the message says why)."""


class StaleMap(LifelongError):
    """The floor's current version is not the one the working copy was built on: not saved."""


@dataclass(frozen=True, slots=True)
class LifelongConfig:
    """Change-detection parameters (SI units). The same defaults serve every map."""

    # evidence from one scan
    max_range: float = 4.0  # m: farther hits are no evidence (heading error grows with range)
    clear_gap: float = 0.1  # m: a beam clears stored-free cells up to this short of its hit
    wall_margin: float = 0.1  # m: hits this close to a stored wall may be the wall's own
    through_tolerance: float = 0.15  # m: a hit this far beyond a stored wall went through it
    through_angle: float = math.radians(2.0)  # rad: ... and the beam turned by this either way
    through_offset: float = 0.05  # m: ... and shifted this far sideways
    min_beams: int = 30  # a scan with fewer valid returns is skipped
    beam_reach: float = 12.0  # m: farther returns are ignored (they bound the work per beam)
    max_through_fraction: float = 0.3  # a scan with more returns beyond walls: pose wrong
    view_spacing: float = 0.3  # m the sensor moves before its scans count as a new viewpoint
    memory: int = 8  # each hit takes 1/memory of a cell's misses away (at least 1), and back
    # what makes a change
    min_scans: int = 5  # a sure cell: seen changed in this many scans ...
    min_views: int = 3  # ... from this many viewpoints ...
    min_ratio: float = 0.75  # ... and this share of all its observations say so
    min_area: float = 0.015  # m2: smaller regions are not reported
    min_open_edge: float = 0.2  # share of a vanished region's edge that must be stored floor
    # what a save carries
    max_graph_nodes: int = 5000  # the pose graph carried to a new version is capped at this
    min_resolution: float = 0.01  # m per cell: maps outside this range are refused
    max_resolution: float = 0.2

    def __post_init__(self) -> None:
        positive = (
            "max_range clear_gap wall_margin through_tolerance through_angle through_offset "
            "beam_reach view_spacing min_area min_resolution max_resolution"
        )
        for name in positive.split():
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"LifelongConfig.{name} must be > 0, got {value!r}")
        for name in ("min_beams", "min_scans", "min_views", "max_graph_nodes", "memory"):
            if getattr(self, name) < 1:
                raise ValueError(f"LifelongConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_views > self.min_scans:
            raise ValueError("LifelongConfig: min_views cannot exceed min_scans")
        if self.min_scans > COUNTER_CAP // 2:  # counters halve on reaching the cap
            raise ValueError(f"LifelongConfig.min_scans must be at most {COUNTER_CAP // 2}")
        if not 0.5 <= self.min_ratio <= 1.0:
            raise ValueError(f"LifelongConfig.min_ratio must be in [0.5, 1], got {self.min_ratio}")
        if not 0.0 <= self.min_open_edge <= 1.0:
            raise ValueError("LifelongConfig.min_open_edge must be in [0, 1]")
        if not 0.0 < self.max_through_fraction <= 1.0:
            raise ValueError("LifelongConfig.max_through_fraction must be in (0, 1]")
        if self.max_graph_nodes < 2:
            raise ValueError("LifelongConfig.max_graph_nodes must be >= 2")


@dataclass(frozen=True, slots=True)
class Integration:
    """What `LifelongMap.integrate` made of one scan: `used`, or skipped with `reason`; the
    cells its returns hit (within max_range), the fraction of returns ending beyond stored
    walls, the beams that surely went through stored walls, and the beams dropped as invalid
    (NaN, negative)."""

    used: bool
    reason: str = ""
    hits: int = 0
    through: float = 0.0
    through_beams: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Region:
    """A connected changed region: `kind` "appeared" or "vanished", its cells (K, 2) int64
    (row i, column j of the stored grid), area (m2), centroid and bounding box (world m), and
    the most scans and viewpoints that saw a cell of it changed."""

    kind: str
    cells: np.ndarray
    area_m2: float
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax
    scans: int
    views: int


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """The changed regions of a working copy against its stored map (grid of `shape`)."""

    regions: tuple[Region, ...]
    shape: tuple[int, int]
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy of the corner of cell (0, 0)
    scans: int = 0  # scans integrated since the working copy started

    def __bool__(self) -> bool:
        return bool(self.regions)

    @property
    def appeared(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.kind == APPEARED)

    @property
    def vanished(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.kind == VANISHED)

    def area(self, kind: str) -> float:
        """Total m2 of the regions of `kind`."""
        _check_kind(kind)
        return float(sum(r.area_m2 for r in self.regions if r.kind == kind))

    def mask(self, kind: str | None = None) -> np.ndarray:
        """(H, W) bool: cells of the regions of `kind` (both kinds when None)."""
        if kind is not None:
            _check_kind(kind)
        out = np.zeros(self.shape, bool)
        for r in self.regions:
            if kind is None or r.kind == kind:
                out[r.cells[:, 0], r.cells[:, 1]] = True
        return out

    def note(self) -> str:
        """One line for the version note: "lifelong: 3 regions appeared (0.42 m2), 1 vanished
        (0.30 m2)"."""
        a, v = len(self.appeared), len(self.vanished)
        if not a and not v:
            return "lifelong: no change"
        return (
            f"lifelong: {a} region{'' if a == 1 else 's'} appeared ({self.area(APPEARED):.2f} m2), "
            f"{v} vanished ({self.area(VANISHED):.2f} m2)"
        )

    def as_dict(self) -> dict:
        """JSON-ready summary (kept in the saved version's meta["lifelong"])."""
        return {
            "scans": self.scans,
            "appeared": len(self.appeared),
            "appeared_m2": round(self.area(APPEARED), 4),
            "vanished": len(self.vanished),
            "vanished_m2": round(self.area(VANISHED), 4),
            "regions": [
                {
                    "kind": r.kind,
                    "area_m2": round(r.area_m2, 4),
                    "centroid": [round(c, 3) for c in r.centroid],
                    "bbox": [round(c, 3) for c in r.bbox],
                    "scans": r.scans,
                    "views": r.views,
                }
                for r in self.regions
            ],
        }


@dataclass(slots=True)
class _Evidence:
    """Per-cell saturating counters of the working copy (all (H, W) uint8)."""

    hits: np.ndarray
    misses: np.ndarray
    hit_views: np.ndarray
    miss_views: np.ndarray
    last_hit_view: np.ndarray
    last_miss_view: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> _Evidence:
        return cls(*(np.zeros(shape, np.uint8) for _ in range(6)))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.__slots__)


class LifelongMap:
    """A working copy beside a stored map that finds what changed (see the module docstring).

    `doc` is the stored map the robot is localized in; `base_version` the store id it was
    loaded from (needed to save; `from_store` sets it) and `floor` its floor.
    `expected_resolution` (m per cell), when given, must be the map's. Raises ValueError when
    the map cannot be used (NaN cells, a resolution out of range or not the expected one, no
    known cell), TypeError when `doc` is not a MapDocument.
    """

    def __init__(
        self,
        doc: MapDocument,
        config: LifelongConfig | None = None,
        *,
        base_version: int | None = None,
        floor: str | None = None,
        expected_resolution: float | None = None,
    ) -> None:
        self.config = cfg = config or LifelongConfig()
        if not isinstance(doc, MapDocument):
            raise TypeError(f"expected a maps.model.MapDocument, got {type(doc).__name__}")
        grid = doc.grid
        res = float(grid.resolution)
        if expected_resolution is not None and not math.isclose(
            res, expected_resolution, rel_tol=1e-6
        ):
            raise ValueError(
                f"map resolution {res:g} m differs from the expected {expected_resolution:g} m"
            )
        if not cfg.min_resolution <= res <= cfg.max_resolution:
            raise ValueError(
                f"map resolution {res:g} m is outside [{cfg.min_resolution:g}, "
                f"{cfg.max_resolution:g}] m"
            )
        if grid.log_odds.size == 0 or not np.isfinite(grid.log_odds).all():
            raise ValueError("the map's grid is empty or holds NaN / inf cells")
        if floor is not None:
            check_floor_name(floor)
        self.base_version = None if base_version is None else int(base_version)
        self.floor = floor
        self.scans_used = 0
        self.scans_skipped = 0
        self.last_skip = ""  # the reason the last skipped scan was skipped
        self._view = 0  # viewpoint id, 1..255 cycling (0: never seen)
        self._anchor: tuple[float, float] | None = None  # where the current viewpoint began
        self._adopt(doc)

    @classmethod
    def from_store(
        cls, store: MapStore, floor: str = "default", config: LifelongConfig | None = None
    ) -> LifelongMap:
        """A working copy on the version of `floor` the store serves (its current one)."""
        check_floor_name(floor)
        vid = store.resolve(floor)
        doc = store.load(vid, memory=False)
        return cls(doc, config, base_version=vid, floor=floor)

    def _adopt(self, doc: MapDocument) -> None:
        """Take `doc` as the stored map and start an empty working copy on it."""
        states = doc.cell_states()
        if not (states != UNKNOWN).any():
            raise ValueError("the map is unknown everywhere: nothing to compare scans with")
        self.doc = doc
        self.resolution = res = float(doc.grid.resolution)
        self.origin = (float(doc.grid.origin[0]), float(doc.grid.origin[1]))
        self.shape: tuple[int, int] = states.shape  # type: ignore[assignment]
        self._states = states
        self._occupied = np.ascontiguousarray(states == OCCUPIED)
        self._free = states == FREE
        # distance (m) from each cell centre to the nearest edge of a stored-occupied cell
        d = cv2.distanceTransform(
            (~self._occupied).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        if not self._occupied.any():
            d[:] = np.inf
        self._open = (d - 0.5) * res > self.config.wall_margin  # where appeared cells are sure
        self._evidence = _Evidence.zeros(self.shape)
        self._scratch = GridConfig(
            resolution=res,
            l_free=-1.0,
            l_occ=1.0,
            l_min=-1.0,
            l_max=1.0,
            no_return_cap=0.0,
            grow_margin=res,
        )

    # ------------------------------------------------------------------ state
    @property
    def memory_bytes(self) -> int:
        """Bytes held by the working copy (counters and the per-map rasters); fixed per map."""
        return (
            self._evidence.nbytes
            + self._states.nbytes
            + self._occupied.nbytes
            + self._free.nbytes
            + self._open.nbytes
        )

    def reset(self) -> None:
        """Forget all evidence (the stored map stays)."""
        self._evidence = _Evidence.zeros(self.shape)
        self._view = 0
        self._anchor = None
        self.scans_used = 0
        self.scans_skipped = 0
        self.last_skip = ""

    # ------------------------------------------------------------------ evidence
    def integrate(
        self, scan: Scan, pose: Pose, odometry: Odometry | Pose | None = None
    ) -> Integration:
        """Add one scan taken with the robot at map pose `pose` (at `scan.stamp`) to the
        working copy. Never raises for bad data: a scan that cannot be used is skipped and the
        Integration says why (TypeError only for arguments of the wrong type).

        Pass the `odometry` (an Odometry: its speeds) for a scan taken while the robot moved,
        as the Tracker takes it: the scan is de-skewed with them (a Pose or None: no motion).
        A revolution smeared by a turn that is not de-skewed puts beams through walls, and
        enough of them look like a wall that vanished.
        """
        if not isinstance(scan, Scan):
            raise TypeError(f"expected a maps.Scan, got {type(scan).__name__}")
        if not isinstance(pose, Pose):
            raise TypeError(f"expected a maps.Pose, got {type(pose).__name__}")
        if odometry is not None and not isinstance(odometry, Odometry | Pose):
            raise TypeError(f"odometry must be a maps.Odometry or Pose, got {type(odometry)}")
        cfg = self.config
        scan, dropped, problem = _clean(scan)
        if problem is None and isinstance(odometry, Odometry) and scan.duration > 0:
            v, w = float(odometry.v), float(odometry.w)
            if not (math.isfinite(v) and math.isfinite(w)):
                problem = f"odometry speeds are not finite (v={v}, w={w}): cannot de-skew"
            elif v or w:
                scan = scan.deskewed(v, w)
        sensor = scan.origin(pose) if problem is None else pose
        if problem is None:
            problem = self._pose_problem(sensor)
        hit = scan.hit_mask & (scan.ranges <= cfg.beam_reach)
        if problem is None and int(np.count_nonzero(hit)) < cfg.min_beams:
            problem = f"only {int(np.count_nonzero(hit))} valid returns (< {cfg.min_beams})"
        if problem is not None:
            return self._skip(problem, dropped)

        res = self.resolution
        ranges = scan.ranges.astype(np.float64)
        angles = scan.angles.astype(np.float64)
        r_hit = ranges[hit]
        a_hit = angles[hit] + sensor.theta
        sx, sy = np.full(len(r_hit), sensor.x), np.full(len(r_hit), sensor.y)
        cap = float(r_hit.max()) + cfg.through_tolerance
        expected = cast_rays(self._occupied, res, self.origin, sx, sy, a_hit, cap)
        beyond = r_hit > expected + cfg.through_tolerance
        fraction = float(np.count_nonzero(beyond)) / len(r_hit)
        if fraction > cfg.max_through_fraction:
            return self._skip(
                f"{100 * fraction:.0f} % of the returns end beyond stored walls "
                f"(> {100 * cfg.max_through_fraction:.0f} %): the pose is wrong, not the map",
                dropped,
            )
        # beams that surely went through a stored wall: also turned either way, and also
        # shifted sideways (a beam measured while the robot moved did not start at the pose)
        sure = np.flatnonzero(beyond & (expected <= cfg.max_range))
        if len(sure):
            far = expected[sure]
            a, d = a_hit[sure], cfg.through_offset
            for turn, side in ((-cfg.through_angle, 0), (cfg.through_angle, 0), (0, -d), (0, d)):
                xs = sx[sure] - side * np.sin(a)
                ys = sy[sure] + side * np.cos(a)
                other = cast_rays(self._occupied, res, self.origin, xs, ys, a + turn, cap)
                far = np.maximum(far, other)
            sure = sure[r_hit[sure] > far + cfg.through_tolerance]

        # a new viewpoint once the sensor has moved view_spacing
        if (
            self._anchor is None
            or math.hypot(sensor.x - self._anchor[0], sensor.y - self._anchor[1]) > cfg.view_spacing
        ):
            self._view = self._view % 255 + 1
            self._anchor = (sensor.x, sensor.y)

        ev = self._evidence
        # hits within max_range
        near = r_hit <= cfg.max_range
        xy = np.column_stack(
            (
                sensor.x + r_hit[near] * np.cos(a_hit[near]),
                sensor.y + r_hit[near] * np.sin(a_hit[near]),
            )
        )
        hit_cells = self._flat(xy)
        self._count(ev.hits, ev.misses, ev.hit_views, ev.last_hit_view, hit_cells)
        # misses: stored-free cells the beams crossed, stored-occupied ones they surely crossed
        crossed = self._crossed(pose, scan.sensor, angles[hit], r_hit - cfg.clear_gap)
        crossed = crossed[~self._occupied.ravel()[crossed]]
        if len(sure):
            through = self._sampled(sensor, a_hit[sure], r_hit[sure] - cfg.through_tolerance)
            crossed = np.concatenate((crossed, through[self._occupied.ravel()[through]]))
        self._count(ev.misses, ev.hits, ev.miss_views, ev.last_miss_view, crossed)
        self.scans_used += 1
        return Integration(True, "", int(len(hit_cells)), fraction, int(len(sure)), dropped)

    def _skip(self, reason: str, dropped: int) -> Integration:
        self.scans_skipped += 1
        self.last_skip = reason
        log.debug("scan skipped: %s", reason)
        return Integration(False, reason, dropped=dropped)

    def _pose_problem(self, sensor: Pose) -> str | None:
        """Why the sensor cannot be at `sensor` in the stored map, or None."""
        h, w = self.shape
        j = math.floor((sensor.x - self.origin[0]) / self.resolution)
        i = math.floor((sensor.y - self.origin[1]) / self.resolution)
        if not (0 <= i < h and 0 <= j < w):
            x0, y0 = self.origin
            return (
                f"pose ({sensor.x:.2f}, {sensor.y:.2f}) is off the map (x {x0:.2f}..."
                f"{x0 + w * self.resolution:.2f}, y {y0:.2f}...{y0 + h * self.resolution:.2f} m)"
            )
        if self._states[i, j] == UNKNOWN:
            return f"pose ({sensor.x:.2f}, {sensor.y:.2f}) lies in unknown space of the map"
        return None

    def _flat(self, xy: np.ndarray) -> np.ndarray:
        """Unique flat indices of the stored-grid cells holding the (N, 2) world points."""
        h, w = self.shape
        j = np.floor((xy[:, 0] - self.origin[0]) / self.resolution).astype(np.int64)
        i = np.floor((xy[:, 1] - self.origin[1]) / self.resolution).astype(np.int64)
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        return np.unique(i[inside] * w + j[inside])

    def _crossed(
        self, pose: Pose, sensor: Pose, angles: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """Unique flat indices of the stored-grid cells that beams from the sensor (`sensor` on
        the robot at `pose`) along sensor-frame `angles` cross before `lengths` (m): the cells
        maps.grid's ray integration clears, traced on a scratch window around the beams."""
        keep = lengths > 0
        if not keep.any():
            return np.empty(0, np.int64)
        lengths, angles = lengths[keep], angles[keep]
        s = pose.compose(sensor)
        res = self.resolution
        ox, oy = self.origin
        ex = s.x + lengths * np.cos(angles + s.theta)
        ey = s.y + lengths * np.sin(angles + s.theta)
        j0 = math.floor((min(s.x, float(ex.min())) - ox) / res) - 1
        j1 = math.floor((max(s.x, float(ex.max())) - ox) / res) + 1
        i0 = math.floor((min(s.y, float(ey.min())) - oy) / res) - 1
        i1 = math.floor((max(s.y, float(ey.max())) - oy) / res) + 1
        window = OccupancyGrid(
            np.zeros((i1 - i0 + 1, j1 - j0 + 1), np.float32),
            res,
            (ox + j0 * res, oy + i0 * res),
            self._scratch,
        )
        rays = Scan(lengths.astype(np.float32), angles.astype(np.float32), 0.0, sensor=sensor)
        window.integrate(pose, rays)
        ii, jj = np.nonzero(window.log_odds < 0)
        # the window's own origin (it may have grown by a cell at an edge)
        di = round((window.origin[1] - oy) / res)
        dj = round((window.origin[0] - ox) / res)
        ii, jj = ii + di, jj + dj
        h, w = self.shape
        inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
        return (ii[inside] * w + jj[inside]).astype(np.int64)

    def _sampled(self, sensor: Pose, angles: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Unique flat indices of the stored-grid cells under points every third of a cell
        along the beams from `sensor` at world `angles` up to `lengths` (m); for the few beams
        that went through walls (the cells the beam only grazes at a corner may be missed)."""
        step = self.resolution / 3.0
        n = np.maximum(np.ceil(lengths / step).astype(np.int64), 0)
        if n.sum() == 0:
            return np.empty(0, np.int64)
        beam = np.repeat(np.arange(len(lengths)), n)
        t = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)) * step
        xy = np.column_stack(
            (sensor.x + t * np.cos(angles[beam]), sensor.y + t * np.sin(angles[beam]))
        )
        return self._flat(xy)

    def _count(
        self,
        counter: np.ndarray,
        opposite: np.ndarray,
        views: np.ndarray,
        last: np.ndarray,
        flat: np.ndarray,
    ) -> None:
        """+1 on the cells `flat` (unique), 1/memory of their `opposite` count (at least 1)
        taken away, a viewpoint more where this one is new to them; cells reaching
        COUNTER_CAP halve all their counters (the ratios stay)."""
        if len(flat) == 0:
            return
        c, o, v, seen = counter.ravel(), opposite.ravel(), views.ravel(), last.ravel()
        c[flat] += 1
        k = self.config.memory
        o[flat] -= ((o[flat].astype(np.int32) + (k - 1)) // k).astype(np.uint8)
        new = flat[seen[flat] != self._view]
        v[new] += 1
        seen[flat] = self._view
        full = flat[c[flat] >= COUNTER_CAP]
        if len(full):
            ev = self._evidence
            for arr in (ev.hits, ev.misses, ev.hit_views, ev.miss_views):
                arr.ravel()[full] >>= 1

    # ------------------------------------------------------------------ changes
    def changes(self) -> ChangeSet:
        """The regions that appeared or vanished with enough evidence (module docstring)."""
        cfg = self.config
        ev = self._evidence
        hits = ev.hits.astype(np.int32)
        misses = ev.misses.astype(np.int32)
        seen = hits + misses
        weak = max(2, cfg.min_scans // 2)
        free = self._states == FREE
        occupied = self._occupied
        weak_a = free & (hits >= weak) & (hits >= cfg.min_ratio * seen)
        sure_a = weak_a & self._open & (hits >= cfg.min_scans) & (ev.hit_views >= cfg.min_views)
        weak_v = occupied & (misses >= weak) & (misses >= cfg.min_ratio * seen)
        sure_v = weak_v & (misses >= cfg.min_scans) & (ev.miss_views >= cfg.min_views)
        regions = self._regions(
            APPEARED, weak_a, sure_a, hits, ev.hit_views, fill=free & (misses <= hits)
        )
        regions += self._regions(
            VANISHED, weak_v, sure_v, misses, ev.miss_views, grow=occupied & (hits == 0)
        )
        return ChangeSet(tuple(regions), self.shape, self.resolution, self.origin, self.scans_used)

    def _regions(
        self,
        kind: str,
        weak: np.ndarray,
        sure: np.ndarray,
        counts: np.ndarray,
        views: np.ndarray,
        *,
        fill: np.ndarray | None = None,
        grow: np.ndarray | None = None,
    ) -> list[Region]:
        if not sure.any():
            return []
        cfg = self.config
        res = self.resolution
        k = max(1, math.ceil(cfg.wall_margin / res - 1e-9))
        square = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        near = cv2.dilate(sure.astype(np.uint8), square) > 0
        cand = weak & near
        if grow is not None:  # unobserved cells at the edge of a vanished region
            for _ in range(k):
                cand |= (cv2.dilate(cand.astype(np.uint8), cross) > 0) & grow
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            cand.astype(np.uint8), connectivity=8
        )
        sure_count = np.bincount(labels[sure], minlength=n)
        out = []
        h, w = self.shape
        for label in range(1, n):
            if sure_count[label] == 0:
                continue
            x, y, bw, bh = stats[label, :4]
            i0, i1 = max(y - 1, 0), min(y + bh + 1, h)
            j0, j1 = max(x - 1, 0), min(x + bw + 1, w)
            mine = labels[i0:i1, j0:j1] == label
            if fill is not None:
                mine |= _holes(mine) & fill[i0:i1, j0:j1]
            if grow is not None:  # an obstacle goes from its faces in: the region must show
                edge = (cv2.dilate(mine.astype(np.uint8), cross) > 0) & ~mine
                facing = np.count_nonzero(edge & self._free[i0:i1, j0:j1])
                if facing < cfg.min_open_edge * np.count_nonzero(edge):
                    continue
            ii, jj = np.nonzero(mine)
            area = len(ii) * res * res
            if area < cfg.min_area - 1e-12:
                continue
            ii, jj = ii + i0, jj + j0
            ox, oy = self.origin
            out.append(
                Region(
                    kind,
                    np.column_stack((ii, jj)).astype(np.int64),
                    area,
                    (ox + (jj.mean() + 0.5) * res, oy + (ii.mean() + 0.5) * res),
                    (
                        ox + jj.min() * res,
                        oy + ii.min() * res,
                        ox + (jj.max() + 1) * res,
                        oy + (ii.max() + 1) * res,
                    ),
                    int(counts[ii, jj].max()),
                    int(views[ii, jj].max()),
                )
            )
        return out

    # ------------------------------------------------------------------ the new version
    def updated_document(self, changes: ChangeSet | None = None) -> MapDocument:
        """A copy of the stored document with the changes applied: appeared cells occupied,
        vanished cells free; everything else (rooms, restrictions, dock, obstacles, frame)
        kept; `meta["lifelong"]` says what changed and on which version."""
        changes = self.changes() if changes is None else changes
        if changes.shape != self.shape:
            raise ValueError(f"changes of a {changes.shape} grid, this map is {self.shape}")
        doc = copy.deepcopy(self.doc)
        lo = doc.grid.log_odds
        for r in changes.regions:
            value = OCCUPIED_LOG_ODDS if r.kind == APPEARED else FREE_LOG_ODDS
            lo[r.cells[:, 0], r.cells[:, 1]] = value
        doc.meta = {**doc.meta, "lifelong": {"base": self.base_version, **changes.as_dict()}}
        return doc

    def save_if_changed(
        self,
        store: MapStore,
        floor: str | None = None,
        *,
        note: str | None = None,
        source: str = "lifelong",
        keep_versions: int | None = None,
    ) -> VersionInfo | None:
        """Save the changed map as a new version of `floor` (default: the base version's) when
        `changes()` holds a region; None (nothing written) when it holds none.

        The parent is the base version; its pose graph is carried over, capped at
        `max_graph_nodes`. Raises StaleMap (nothing written) when the floor's current version
        is not the base version any more, LifelongError when the working copy has no base
        version or does not match it (floor, grid shape, resolution, origin). With
        `keep_versions`, the floor's old versions beyond that many are pruned after the save
        (`MapStore.prune`; the current version and its parent always stay; a prune that fails
        is logged, the save stands). The working copy then starts again on the new version.
        """
        if keep_versions is not None and (
            isinstance(keep_versions, bool)
            or not isinstance(keep_versions, int)
            or keep_versions < 1
        ):
            raise ValueError(f"keep_versions must be an int >= 1 or None, got {keep_versions!r}")
        changes = self.changes()
        if not changes:
            return None
        if self.base_version is None:
            raise LifelongError(
                "this working copy was not made from a stored version (base_version is None); "
                "build it with LifelongMap.from_store to save it"
            )
        try:
            base = store.info(self.base_version)
        except MapError as exc:
            raise LifelongError(
                f"the base version v{self.base_version} cannot be read ({exc}); not saved"
            ) from exc
        floor = base.floor if floor is None else check_floor_name(floor)
        if floor != base.floor:
            raise LifelongError(
                f"the base version v{base.id} belongs to floor '{base.floor}', not '{floor}'; "
                "not saved"
            )
        mismatch = self._mismatch(base)
        if mismatch:
            raise LifelongError(f"the working copy does not match v{base.id}: {mismatch}")
        current = {f.name: f.current for f in store.floors()}.get(floor)
        if current != base.id:
            raise StaleMap(
                f"floor '{floor}' moved on: its current version is "
                f"{'none' if current is None else f'v{current}'}, this working copy was built "
                f"on v{base.id}; the change is not saved (start again from the current version)"
            )
        graph = store.pose_graph(base.id) if base.has_pose_graph else None
        if graph is not None:
            graph = cap_pose_graph(graph, self.config.max_graph_nodes)
        doc = self.updated_document(changes)
        text = changes.note() if not note else f"{changes.note()}; {note}"
        try:
            info = store.save(
                doc, floor, source, text, pose_graph=graph, parent=base.id, expect_current=base.id
            )
        except FloorMovedOn as exc:  # another writer saved between the check and the write
            raise StaleMap(f"{exc} (this working copy was built on v{base.id})") from exc
        log.info("saved v%d of floor '%s' (parent v%d): %s", info.id, floor, base.id, text)
        self.base_version = info.id
        self.floor = floor
        self._adopt(doc)
        self._view, self._anchor = 0, None
        self.scans_used = self.scans_skipped = 0
        if keep_versions is not None:
            try:
                store.prune(floor, keep_versions)
            except MapError as exc:  # housekeeping: the new version is saved all the same
                log.warning("saved v%d, but old versions were not pruned: %s", info.id, exc)
        return info

    def _mismatch(self, base: VersionInfo) -> str:
        if not math.isclose(base.resolution, self.resolution, rel_tol=1e-9):
            return f"resolution {self.resolution:g} m vs {base.resolution:g} m"
        if tuple(base.shape) != tuple(self.shape):
            return f"grid {self.shape[1]}x{self.shape[0]} vs {base.shape[1]}x{base.shape[0]} cells"
        if max(abs(base.origin[0] - self.origin[0]), abs(base.origin[1] - self.origin[1])) > 1e-9:
            return f"origin {self.origin} vs {tuple(base.origin)}"
        return ""


# ---------------------------------------------------------------------------- pose graph
def cap_pose_graph(arrays: dict[str, np.ndarray], max_nodes: int) -> dict[str, np.ndarray]:
    """A stored pose graph (`PoseGraph.to_arrays` layout) with at most `max_nodes` nodes.

    A graph within the cap is returned as it is. Otherwise evenly spaced nodes are kept (the
    first, the last and every fixed node among them), edges between kept nodes are kept, and
    each run of dropped nodes between two kept ones becomes one edge of kind "pruned": the
    relative pose of the two estimates, with the summed covariance of the chain of (i, i+1)
    edges across the run (each rotated into the frame of the first node; first order, the
    rotation's lever arm ignored), or when that chain is incomplete the median diagonal
    information of the graph divided by the run's length. Raises ValueError for arrays that are
    not a graph.
    """
    if max_nodes < 2:
        raise ValueError(f"max_nodes must be >= 2, got {max_nodes}")
    try:
        poses = np.asarray(arrays["poses"], np.float64).reshape(-1, 3)
        fixed = np.asarray(arrays["fixed"], bool).reshape(-1)
        ij = np.asarray(arrays["ij"], np.int64).reshape(-1, 2)
        z = np.asarray(arrays["z"], np.float64).reshape(-1, 3)
        info = np.asarray(arrays["info"], np.float64).reshape(-1, 3, 3)
        robust = np.asarray(arrays["robust"], bool).reshape(-1)
        kind = np.asarray(arrays["kind"], np.int64).reshape(-1)
        kinds = [str(k) for k in np.asarray(arrays["kinds"]).reshape(-1)]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"not a stored pose graph: {exc}") from None
    n, m = len(poses), len(ij)
    if len(fixed) != n or not (len(z) == len(info) == len(robust) == len(kind) == m):
        raise ValueError("not a stored pose graph: array lengths disagree")
    if m and (ij.min() < 0 or ij.max() >= n or kind.min() < 0 or kind.max() >= len(kinds)):
        raise ValueError("not a stored pose graph: an edge names a node or kind it lacks")
    if n <= max_nodes:
        return dict(arrays)
    n_fixed = int(np.count_nonzero(fixed))
    budget = max(2, max_nodes - n_fixed)
    keep = np.union1d(
        np.rint(np.linspace(0, n - 1, budget)).astype(np.int64), np.flatnonzero(fixed)
    )
    new_id = np.full(n, -1, np.int64)
    new_id[keep] = np.arange(len(keep))
    both = (new_id[ij[:, 0]] >= 0) & (new_id[ij[:, 1]] >= 0)
    # covariance of each (i, i+1) link, in the frame of node i
    link: dict[int, np.ndarray] = {}
    for e in np.flatnonzero(ij[:, 1] == ij[:, 0] + 1).tolist():
        i = int(ij[e, 0])
        if i not in link:
            try:
                link[i] = np.linalg.inv(info[e])
            except np.linalg.LinAlgError:
                continue  # a singular one: that run gets the fallback
    diagonal = np.median(info[:, [0, 1, 2], [0, 1, 2]], axis=0) if m else np.zeros(3)
    fallback = np.diag(np.where(diagonal > 0, diagonal, [100.0, 100.0, 400.0]))
    if PRUNED_KIND not in kinds:
        kinds.append(PRUNED_KIND)
    code = kinds.index(PRUNED_KIND)
    new_ij, new_z, new_info = [], [], []
    for a, b in zip(keep[:-1].tolist(), keep[1:].tolist(), strict=True):
        if b - a == 1:
            continue
        pa, pb = Pose.from_array(poses[a]), Pose.from_array(poses[b])
        rel = pa.between(pb)
        inf = fallback / (b - a)
        if all(i in link for i in range(a, b)):
            cov = np.zeros((3, 3))
            for i in range(a, b):
                c, s = math.cos(poses[i, 2] - poses[a, 2]), math.sin(poses[i, 2] - poses[a, 2])
                rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
                cov += rot @ link[i] @ rot.T
            try:
                inf = np.linalg.inv(cov)
                inf = 0.5 * (inf + inf.T)
            except np.linalg.LinAlgError:
                pass  # keep the fallback
        new_ij.append((int(new_id[a]), int(new_id[b])))
        new_z.append((rel.x, rel.y, float(wrap_angle(rel.theta))))
        new_info.append(inf)
    k_extra = len(new_ij)
    return {
        "poses": poses[keep].copy(),
        "fixed": fixed[keep].copy(),
        "ij": np.concatenate((new_id[ij[both]], np.array(new_ij, np.int64).reshape(-1, 2))),
        "z": np.concatenate((z[both], np.array(new_z, np.float64).reshape(-1, 3))),
        "info": np.concatenate((info[both], np.array(new_info, np.float64).reshape(-1, 3, 3))),
        "robust": np.concatenate((robust[both], np.zeros(k_extra, bool))),
        "kind": np.concatenate((kind[both], np.full(k_extra, code, np.int64))),
        "kinds": np.array(kinds, dtype=str),
    }


# ---------------------------------------------------------------------------- helpers
def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _clean(scan: Scan) -> tuple[Scan, int, str | None]:
    """(the scan without NaN / negative ranges or non-finite angles, beams dropped, problem).

    A Scan refuses such beams when built; one changed afterwards (its arrays are mutable) is
    cleaned here instead of failing later."""
    ranges = np.asarray(scan.ranges)
    angles = np.asarray(scan.angles)
    if ranges.ndim != 1 or angles.shape != ranges.shape:
        return scan, 0, f"ranges {ranges.shape} and angles {angles.shape} do not pair up"
    bad = np.isnan(ranges) | (ranges < 0) | ~np.isfinite(angles)
    dropped = int(np.count_nonzero(bad))
    if not dropped:
        return scan, 0, None
    if dropped == len(ranges):
        return scan, dropped, f"no valid beam ({dropped} NaN or negative ranges)"
    try:
        clean = Scan(
            ranges[~bad],
            angles[~bad],
            scan.stamp,
            scan.range_min,
            scan.range_max,
            scan.sensor,
            scan.duration,
        )
    except ValueError as exc:
        return scan, dropped, f"scan unusable: {exc}"
    return clean, dropped, None


def _holes(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool: cells not in `mask` that it encloses (not 4-connected to the border)."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 1, flags=4)
    return padded[1:-1, 1:-1] == 0


__all__ = [
    "APPEARED",
    "VANISHED",
    "ChangeSet",
    "Integration",
    "LifelongConfig",
    "LifelongError",
    "LifelongMap",
    "Region",
    "StaleMap",
    "cap_pose_graph",
]
