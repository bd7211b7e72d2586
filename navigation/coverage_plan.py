"""Coverage planning: a path that cleans every room of a map, room by room.

After ipa_room_exploration's boustrophedon explorator and Fields2Cover's structure (boundary
pass, swaths at the best angle, route, connections); see ../shared/research/navigation.md
4.2, 4.4 and 4.6. The robot centre may stand on the costmap's enterable cells (cost <= 252:
the round body overlaps no wall, obstacle, restriction or unknown cell). The enterable cells
connected to the start (4-connected, as A* moves) are the *reachable* cells; those of one room
form one or more 4-connected *parts*. The floor to clean is navigation.coverage.
reachable_floor's: the free cells within half the cleaning width of a reachable cell, each
belonging to the part of its nearest reachable cell. Per part:

1. **Edge passes.** A closed loop along the part's boundary cell chain, i.e. along the walls
   and obstacles at the robot radius: around the outside first (entered near the door the
   robot comes in by), and around each piece of furniture inside. The chain is thinned to its
   turns (or by Douglas-Peucker with `edge_tolerance`), keeping only cuts that touch
   reachable cells; a diagonal step past an obstacle's corner becomes two straight steps.
2. **Lanes** over the floor the edge passes leave, `clean_width` apart along the part's
   dominant direction: the grid axes, the minimum-area rectangle's sides and the principal
   direction of the part's cells are tried, each at every lane offset, and the cheapest wins
   (shortest lanes, one turn per run: fewer lanes at equal length). A lane is cut into runs of
   the part's cells (an exact cell walk), so obstacles split it, and each run is trimmed to
   the floor it serves. Runs of consecutive lanes that overlap one to one chain into
   boustrophedon cells (Choset's decomposition on the lanes), each driven back and forth from
   one of its four corners. The furniture loops and the cells are ordered together: nearest
   first, then 2-opt, or-opt and turning tasks round, ending near the door to the next room.
   Cells cleaning less than `min_chain` are left to spots.
3. **Spots.** Floor still dirty (an oblique lane's corners, a doorway's middle) is covered
   by the fewest brush discs found greedily, each visited by an out-and-back detour from the
   nearest point of the path that sees it.

Rooms are visited in the order of a shortest open tour over the room connections (where
reachable cells of two rooms touch: doors): a room is cleaned from the door it is entered by
to the door it is left by, so going on from room a to room b costs the door-to-door distance
through the rooms between them (0 for rooms sharing a door). The tour is exact (Held-Karp) for
up to `tsp_exact_max` rooms, nearest neighbour then 2-opt and or-opt beyond. Every move
between two points is a straight segment when every cell it touches is reachable (an exact
supercover walk, like navigation._kernels.segment_clear), else an L along the grid axes, else
an A* plan (navigation.planner): no segment touches a lethal or inscribed cell.

For a mission interrupted by a bump (the obstacle then added to the costmap), `plan_coverage`
takes the cells already `cleaned` and the `rooms` still to do, and plans only what is left
(edge passes shrink to the stretches with dirty floor beside them).

Coordinates: world metres; rasters as maps.grid (row i <-> y, column j <-> x, `origin` the
corner of cell (0, 0)). Inside the module, points are in *grid units*: x = (wx - ox) / res,
so cell (i, j) is the square [j, j + 1] x [i, i + 1] and its centre (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
import scipy.ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, shortest_path

from maps.geometry import Pose
from navigation.costmap import INSCRIBED, MAX_NON_OBSTACLE, Costmap
from navigation.coverage import CoverageConfig
from navigation.errors import NoPathFound
from navigation.planner import Planner, PlannerConfig
from navigation.rooms import Segmentation

log = logging.getLogger(__name__)

KINDS = ("edge", "lanes", "spot", "transition")
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class CoveragePlanConfig:
    """How the coverage path is laid out (metres). The robot radius is the costmap's."""

    clean_width: float = CoverageConfig().clean_width  # m, the brush: lanes are this far apart
    lane_overlap: float = 0.0  # m taken off the lane spacing (drift margin for a real robot)
    edge_tolerance: float = 0.0  # m the thinned edge pass may cut inside the cell chain (0: exact)
    min_start_area: float = 0.1  # m2: a start in a smaller pocket of enterable cells moves out
    min_chain: float = 0.5  # m: boustrophedon cells cleaning less are left to spots on the way
    tsp_exact_max: int = 12  # rooms up to which the visiting order is exact (Held-Karp)
    planner: PlannerConfig | None = None  # A* for the moves a straight segment cannot make

    def __post_init__(self) -> None:
        for name in (
            "clean_width",
            "lane_overlap",
            "edge_tolerance",
            "min_chain",
            "min_start_area",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"CoveragePlanConfig.{name} must be a finite number >= 0 m, got {value!r}"
                )
        if not self.clean_width > 0:
            raise ValueError(
                f"CoveragePlanConfig.clean_width must be > 0 m, got {self.clean_width}"
            )
        if not self.lane_overlap < self.clean_width:
            raise ValueError(
                f"CoveragePlanConfig.lane_overlap ({self.lane_overlap} m) must be below "
                f"clean_width ({self.clean_width} m)"
            )
        if not (isinstance(self.tsp_exact_max, int) and 1 <= self.tsp_exact_max <= 16):
            raise ValueError(
                f"CoveragePlanConfig.tsp_exact_max must be an int in 1..16, got "
                f"{self.tsp_exact_max!r} (Held-Karp needs 2^n n^2 steps)"
            )


@dataclass(frozen=True, slots=True)
class CoverageSegment:
    """One piece of the path, driven start to end: an edge pass, a run of lanes, spot visits,
    or a transition (a move that is not meant to clean). `room` is the room it cleans, or for a
    transition the room it leads to."""

    kind: str  # "edge" | "lanes" | "spot" | "transition"
    room: int
    waypoints: np.ndarray  # (N, 2) float64 world xy (m), N >= 2 (a spot alone repeats itself)

    @property
    def length(self) -> float:
        """Length of the polyline, metres."""
        return float(np.sum(np.hypot(*np.diff(self.waypoints, axis=0).T)))


@dataclass(frozen=True, slots=True)
class CoveragePlan:
    """A coverage path: segments to drive in order, rooms in visiting order, what was left out.

    `floor` is the (H, W) bool raster of the cells the plan means to clean (the reachable
    floor, less `cleaned`, within the requested rooms); `skipped` maps a room id to the reason
    it is not in `order` (not reachable from the start, or nothing left to clean in it).
    `lane_angles` gives each planned room's lane direction (radians, world frame, of its
    largest part).
    """

    segments: tuple[CoverageSegment, ...]
    order: tuple[int, ...]
    skipped: dict[int, str]
    start: tuple[float, float]  # where the path begins (the requested start)
    floor: np.ndarray  # (H, W) bool
    lane_angles: dict[int, float] = field(default_factory=dict)

    @property
    def length(self) -> float:
        """Total path length, metres."""
        return float(sum(s.length for s in self.segments))

    def length_of(self, kind: str) -> float:
        """Length (m) of the segments of one kind ("edge", "lanes", "spot", "transition")."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return float(sum(s.length for s in self.segments if s.kind == kind))

    def path(self) -> np.ndarray:
        """(N, 2) world xy: the whole polyline, segment after segment (joints not repeated)."""
        if not self.segments:
            return np.array([self.start], dtype=np.float64)
        parts = [self.segments[0].waypoints]
        for seg in self.segments[1:]:
            wp = seg.waypoints
            same = np.allclose(wp[0], parts[-1][-1], atol=1e-9)
            parts.append(wp[1:] if same else wp)
        return np.vstack(parts)

    def room_segments(self, room: int) -> list[CoverageSegment]:
        """The segments that clean `room` or lead to it, in order."""
        return [s for s in self.segments if s.room == room]


# --------------------------------------------------------------------------------------------
# The plan


def plan_coverage(
    costmap: Costmap,
    segmentation: Segmentation,
    start: Pose | tuple[float, float],
    config: CoveragePlanConfig | None = None,
    *,
    cleaned: np.ndarray | None = None,
    rooms: Iterable[int] | None = None,
) -> CoveragePlan:
    """Plan a path that cleans the floor of every room reachable from `start` (module doc).

    `segmentation` must split the costmap's grid (same shape, resolution and origin), e.g.
    `segment_rooms(grid)` of the map the costmap was built from. `cleaned` ((H, W) bool) marks
    cells already cleaned, `rooms` the room ids still to clean (default: all): with both, a
    mission replans what is left from where the robot stands, after adding a bumped obstacle
    to the costmap.

    A start closer to an obstacle than the robot radius is moved to the nearest enterable cell
    within the planner's `start_tolerance` (0.25 m by default; the path then begins with that
    move), as navigation.planner does. Raises NoPathFound (reason "start") when the start is
    outside the map, on an obstacle, restriction or unknown cell, or too deep in the inflation;
    ValueError/TypeError on malformed input. Rooms not reachable from the start are skipped and
    named in `skipped`, never an error.
    """
    config = config or CoveragePlanConfig()
    if not isinstance(costmap, Costmap):
        raise TypeError(
            f"expected a navigation.costmap.Costmap, got {type(costmap).__qualname__}; build "
            "one with Costmap.from_map(grid_or_document)"
        )
    if not isinstance(segmentation, Segmentation):
        raise TypeError(
            f"expected a navigation.rooms.Segmentation, got {type(segmentation).__qualname__}; "
            "make one with segment_rooms(grid)"
        )
    labels = np.asarray(segmentation.labels)
    if labels.shape != costmap.shape:
        raise ValueError(
            f"the segmentation's labels {labels.shape} do not match the costmap {costmap.shape}; "
            "segment the map the costmap was built from"
        )
    if not math.isclose(segmentation.resolution, costmap.resolution, rel_tol=1e-9) or any(
        not math.isclose(a, b, abs_tol=1e-9 * max(1.0, abs(b)))
        for a, b in zip(segmentation.origin, costmap.origin, strict=True)
    ):
        raise ValueError(
            f"the segmentation's grid (resolution {segmentation.resolution} m, origin "
            f"{segmentation.origin}) differs from the costmap's ({costmap.resolution} m, "
            f"{costmap.origin}); segment the map the costmap was built from"
        )
    if cleaned is not None:
        cleaned = np.asarray(cleaned)
        if cleaned.shape != costmap.shape:
            raise ValueError(
                f"cleaned {cleaned.shape} must be a bool raster of the costmap's shape "
                f"{costmap.shape}"
            )
        cleaned = cleaned.astype(bool)
    n_rooms = len(segmentation.rooms)
    wanted = None
    if rooms is not None:
        try:
            wanted = sorted({int(r) for r in rooms})
        except (TypeError, ValueError):
            raise TypeError(f"rooms must be room ids (ints), got {rooms!r}") from None
        bad = [r for r in wanted if not 1 <= r <= n_rooms]
        if bad:
            raise ValueError(f"no room {bad[0]} in the segmentation: ids run from 1 to {n_rooms}")

    res = costmap.resolution
    sxy = _xy(start)
    s_grid = _to_grid(np.array([sxy]), costmap)[0]
    enterable = costmap.costs <= MAX_NON_OBSTACLE
    # the cells the robot centre can reach (4-connected: what A* can always follow)
    n_comp, comp = cv2.connectedComponents(enterable.view(np.uint8), connectivity=4)
    # a robot that edged up to a jagged wall may stand in a pocket of a few enterable cells
    # cut off by the jags: it starts from the open floor next to it instead
    sizes = np.bincount(comp.ravel(), minlength=n_comp)
    big = sizes >= max(config.min_start_area / (res * res), 1.0)
    big[0] = False
    s_cell, s_centre = _snap_start(costmap, enterable, sxy, s_grid, config, big[comp])
    reach = comp == comp[s_cell]
    del comp

    # the floor under the brush: within half the cleaning width of a reachable centre cell
    half = config.clean_width / 2.0 / res
    dist = cv2.distanceTransform((~reach).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    free = ~(costmap.lethal | costmap.unknown)
    floor = (dist <= half) & free
    del dist
    target = floor & ~cleaned if cleaned is not None else floor.copy()

    # rooms of the reachable cells, and of each floor cell (the room of its nearest one)
    room_of = _reach_rooms(labels, reach)
    parts, part_room = _parts(room_of, n_rooms)
    part_of_floor = _spread(parts, floor, math.ceil(half) + 1)
    floor_room = np.where(part_of_floor > 0, part_room[part_of_floor], 0)
    if wanted is not None:
        keep = np.zeros(n_rooms + 1, bool)
        keep[wanted] = True
        target &= keep[floor_room]
    target &= part_of_floor > 0
    floor_plan = target.copy()

    dirty = np.bincount(floor_room[target], minlength=n_rooms + 1)
    reachable_rooms = np.bincount(room_of[reach], minlength=n_rooms + 1) > 0
    skipped: dict[int, str] = {}
    for r in wanted if wanted is not None else range(1, n_rooms + 1):
        if not reachable_rooms[r]:
            skipped[r] = (
                "not reachable from the start: no cell of the room connected to the start "
                f"has room for the robot (radius {costmap.config.robot_radius} m)"
            )
        elif dirty[r] == 0:
            skipped[r] = "nothing left to clean"
    todo = [r for r in range(1, n_rooms + 1) if dirty[r] > 0]

    # visiting order: a shortest open tour over the room connections
    graph = _room_graph(room_of, reach, s_grid, int(room_of[s_cell]))
    order = _visit_order(graph, todo, config)

    builder = _Builder(costmap, reach, Planner(costmap, config.planner), res)
    builder.pos = s_grid.copy()
    if s_centre is not None:  # the snap move, checked clear of obstacles by _snap_start
        builder.add(
            "transition", order[0] if order else int(room_of[s_cell]), np.array([s_grid, s_centre])
        )
    ctx = _Context(costmap, reach, parts, part_room, part_of_floor, target, config, builder)
    lane_angles: dict[int, float] = {}
    for k, r in enumerate(order):
        _, door = graph.handover(order[k - 1] if k else 0, r)
        leave = graph.handover(r, order[k + 1])[0] if k + 1 < len(order) else None
        angle = ctx.plan_room(r, door, leave)
        if angle is not None:
            lane_angles[r] = angle
    plan = CoveragePlan(
        segments=tuple(builder.segments),
        order=tuple(order),
        skipped=skipped,
        start=sxy,
        floor=floor_plan,
        lane_angles=lane_angles,
    )
    log.info(
        "coverage plan: %d rooms, %.1f m (edge %.1f, lanes %.1f, spots %.1f, transitions %.1f), "
        "%d A* moves",
        len(order),
        plan.length,
        plan.length_of("edge"),
        plan.length_of("lanes"),
        plan.length_of("spot"),
        plan.length_of("transition"),
        builder.astar_calls,
    )
    return plan


# --------------------------------------------------------------------------------------------
# Start, reachable cells, rooms and parts


def _xy(value) -> tuple[float, float]:
    if isinstance(value, Pose):
        x, y = value.x, value.y
    else:
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(
                f"start must be a Pose or an (x, y) pair in metres, got {value!r}"
            ) from None
    x, y = float(x), float(y)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"start must be finite, got ({x}, {y})")
    return x, y


def _to_grid(xy: np.ndarray, costmap: Costmap) -> np.ndarray:
    return (np.asarray(xy, np.float64) - np.asarray(costmap.origin)) / costmap.resolution


def _snap_start(
    costmap: Costmap,
    enterable: np.ndarray,
    sxy: tuple[float, float],
    s_grid: np.ndarray,
    config: CoveragePlanConfig,
    open_floor: np.ndarray | None = None,
) -> tuple[tuple[int, int], np.ndarray | None]:
    """The start cell, and the grid point of the cell centre it moves to (None if it stays).
    A start on an enterable cell outside `open_floor` (a pocket) moves to the nearest
    `open_floor` cell within the tolerance if there is one."""
    h, w = costmap.shape
    i, j = math.floor(s_grid[1]), math.floor(s_grid[0])
    where = f"start ({sxy[0]:.3f}, {sxy[1]:.3f})"

    def refuse(why: str) -> NoPathFound:
        return NoPathFound(f"{where} {why}", reason="start", start=sxy)

    if not (0 <= i < h and 0 <= j < w):
        x0, y0 = costmap.origin
        raise refuse(
            f"lies outside the map (x {x0:.2f}..{x0 + w * costmap.resolution:.2f} m, "
            f"y {y0:.2f}..{y0 + h * costmap.resolution:.2f} m)"
        )
    if open_floor is None:
        open_floor = enterable
    if open_floor[i, j]:
        return (i, j), None
    if not enterable[i, j] and int(costmap.costs[i, j]) != INSCRIBED:
        raise refuse(f"is {costmap.describe(i, j)}; pick a free spot")
    tolerance = (config.planner or PlannerConfig()).start_tolerance
    reach = math.floor(tolerance / costmap.resolution + 0.5)
    i0, i1 = max(i - reach, 0), min(i + reach + 1, h)
    j0, j1 = max(j - reach, 0), min(j + reach + 1, w)
    ii, jj = np.mgrid[i0:i1, j0:j1]
    ii, jj = ii.ravel(), jj.ravel()
    centres = np.column_stack((jj + 0.5, ii + 0.5))
    d = np.hypot(*(centres - s_grid).T) * costmap.resolution
    not_wall = ~(costmap.lethal | costmap.unknown)
    for mask in (open_floor, enterable):
        ok = np.flatnonzero(mask[ii, jj] & (d <= tolerance))
        ok = ok[np.argsort(d[ok], kind="stable")]
        if ok.size:
            here = np.repeat(np.array([[j + 0.5, i + 0.5]]), ok.size, axis=0)
            clear = _clear(here, centres[ok], not_wall)
            if clear.any():
                k = ok[int(np.argmax(clear))]
                return (int(ii[k]), int(jj[k])), centres[k]
        if enterable[i, j]:
            return (i, j), None  # a pocket with no open floor near: start in it
    raise refuse(
        f"is {costmap.describe(i, j)} and no free cell lies within {tolerance} m of it in a "
        "straight line clear of obstacles; move it away from the obstacle"
    )


def _reach_rooms(labels: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """(H, W) int32 room id of each reachable cell (0 elsewhere); reachable cells the
    segmentation left unlabelled take the label of the nearest labelled reachable cell."""
    room_of = np.where(reach, labels, 0).astype(np.int32)
    missing = reach & (room_of == 0)
    if missing.any():
        known = room_of > 0
        if not known.any():
            raise ValueError(
                "the segmentation labels none of the cells the robot can reach; segment the map "
                "the costmap was built from"
            )
        _, (ii, jj) = ndi.distance_transform_edt(~known, return_indices=True)
        room_of[missing] = room_of[ii[missing], jj[missing]]
        log.warning(
            "%d reachable cells had no room label; given their nearest room's", missing.sum()
        )
    return room_of


def _parts(room_of: np.ndarray, n_rooms: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) int32 part ids (1..P; 0 = not reachable): the 4-connected pieces of each room's
    reachable cells, and (P + 1,) the room of each part (0 for part 0)."""
    parts = np.zeros(room_of.shape, np.int32)
    part_room = [0]
    four = ndi.generate_binary_structure(2, 1)
    for r, box in enumerate(ndi.find_objects(room_of, max_label=n_rooms), start=1):
        if box is None:
            continue
        pieces, n = ndi.label(room_of[box] == r, structure=four)
        view = parts[box]
        inside = pieces > 0
        view[inside] = pieces[inside] + len(part_room) - 1
        part_room += [r] * n
    return parts, np.array(part_room, np.int64)


def _spread(parts: np.ndarray, floor: np.ndarray, steps: int) -> np.ndarray:
    """(H, W) int32: each floor cell's part, grown from the reachable cells `steps` rings out
    (3x3 steps; where two parts reach a cell at once the larger id takes it)."""
    out = parts.copy()
    if out.max() >= 1 << 24:  # float32 dilation must stay exact
        _, (ii, jj) = ndi.distance_transform_edt(parts == 0, return_indices=True)
        return np.where(floor, parts[ii, jj], 0).astype(np.int32)
    grown = out.astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    todo = floor & (out == 0)
    for _ in range(steps):
        if not todo.any():
            break
        grown = cv2.dilate(grown, kernel)
        take = todo & (grown > 0)
        out[take] = grown[take].astype(np.int32)
        todo &= ~take
        grown = out.astype(np.float32)
    out[~floor & (parts == 0)] = 0
    return out


# --------------------------------------------------------------------------------------------
# Room order


@dataclass(slots=True)
class _RoomGraph:
    """The doors between rooms (where their reachable cells touch), and the shortest distances
    between doors through the rooms (straight lines from door to door inside a room), with the
    start as one more node. A room is cleaned from the door it is entered by to the door it is
    left by, so the cost of going on from room a to room b is the door-to-door distance: 0 for
    rooms that share a door."""

    doors: list[tuple[int, int, np.ndarray]]  # (room a, room b, grid xy of the doorway)
    of_room: dict[int, list[int]]  # room id -> indices of its doors
    dist: np.ndarray  # (K + 1, K + 1) door-to-door distances (grid units); node K: the start
    start_room: int

    def _pair(self, a: int, b: int) -> tuple[int, int]:
        """(exit door of a, entry door of b) of the shortest way from room a to room b; a = 0
        means from the start (exit index K)."""
        outs = self.of_room.get(a, []) if a > 0 else [len(self.doors)]
        ins = self.of_room.get(b, [])
        if not outs or not ins:
            return -1, -1
        sub = self.dist[np.ix_(outs, ins)]
        k, m = np.unravel_index(int(np.argmin(sub)), sub.shape)
        return outs[int(k)], ins[int(m)]

    def cost(self, a: int, b: int) -> float:
        if a == b or (a == 0 and b == self.start_room):
            return 0.0
        k, m = self._pair(a, b)
        return float(self.dist[k, m]) if k >= 0 else math.inf

    def handover(self, a: int, b: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Where the way from room a (0: the start) to room b leaves a and enters b."""
        if a == b or (a == 0 and b == self.start_room):
            return None, None
        k, m = self._pair(a, b)
        if k < 0:
            return None, None
        leave = self.doors[k][2] if k < len(self.doors) else None
        return leave, self.doors[m][2]


def _room_graph(
    room_of: np.ndarray, reach: np.ndarray, start: np.ndarray, start_room: int
) -> _RoomGraph:
    # every 4-adjacent pair of reachable cells of two rooms: rooms and the shared edge's middle
    rows = []
    for first, second in (
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        a, b = room_of[first], room_of[second]
        touch = (a != b) & (a > 0) & (b > 0)
        ci, cj = np.nonzero(touch)
        di, dj = (0, 1) if first[1] == slice(None, -1) else (1, 0)
        lo, hi = np.minimum(a[touch], b[touch]), np.maximum(a[touch], b[touch])
        rows.append(np.column_stack((lo, hi, cj + 0.5 + dj / 2, ci + 0.5 + di / 2)))
    both = np.vstack(rows)
    doors: list[tuple[int, int, np.ndarray]] = []
    if len(both):
        key = both[:, 0] * (int(room_of.max()) + 1) + both[:, 1]
        srt = np.argsort(key, kind="stable")
        both, key = both[srt], key[srt]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], len(key)]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            pts = both[s:e, 2:]
            # separate openings between the same two rooms: groups of border points
            _, group = _clusters(pts, 1.5)
            for g in range(int(group.max()) + 1):
                mine = pts[group == g]
                mean = mine.mean(axis=0)
                door = mine[int(np.argmin(np.hypot(*(mine - mean).T)))]
                doors.append((int(both[s, 0]), int(both[s, 1]), door))
    k = len(doors)
    of_room: dict[int, list[int]] = {}
    for idx, (a, b, _) in enumerate(doors):
        of_room.setdefault(a, []).append(idx)
        of_room.setdefault(b, []).append(idx)
    pts = np.array([d[2] for d in doors] + [start]).reshape(-1, 2)
    r, c, w = [], [], []
    groups = list(of_room.items()) + [(start_room, of_room.get(start_room, []))]
    for room, members in groups:
        nodes = members + ([k] if room == start_room else [])
        for x, y in itertools.combinations(nodes, 2):
            d = max(float(np.hypot(*(pts[x] - pts[y]))), _EPS)
            r += [x, y]
            c += [y, x]
            w += [d, d]
    m = coo_matrix((w, (r, c)), shape=(k + 1, k + 1)).tocsr()
    dist = shortest_path(m, method="D", directed=True)
    return _RoomGraph(doors, of_room, dist, start_room)


def _clusters(pts: np.ndarray, gap: float) -> tuple[int, np.ndarray]:
    """Groups of points chained by steps of at most `gap` (single linkage)."""
    n = len(pts)
    if n == 1:
        return 1, np.zeros(1, np.int64)
    near = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1)) <= gap
    return connected_components(near, directed=False)


def _visit_order(graph: _RoomGraph, todo: list[int], config: CoveragePlanConfig) -> list[int]:
    if not todo:
        return []
    dist = np.array([[graph.cost(a, b) for b in todo] for a in todo])
    first = np.array([graph.cost(0, b) for b in todo])
    finite = np.isfinite(dist)
    if not (finite.all() and np.isfinite(first).all()):
        # rooms of one reachable region are always connected; guard against surprises
        big = float(np.max(np.where(finite, dist, 0.0), initial=1.0)) * 10 + 1e3
        dist = np.where(finite, dist, big)
        first = np.where(np.isfinite(first), first, big)
    return [todo[k] for k in order_rooms(dist, first, config.tsp_exact_max)]


def order_rooms(distances: np.ndarray, from_start: np.ndarray, exact_max: int = 12) -> list[int]:
    """The order (indices 0..n-1) visiting every node once that minimises
    from_start[o0] + sum distances[o_k, o_k+1]: an open tour from a start outside the nodes.

    Exact (Held-Karp dynamic programming over subsets) for n <= `exact_max`, for any
    distances; beyond, nearest neighbour from the start improved by 2-opt and or-opt moves
    until none helps (a local optimum), which assumes symmetric distances. `distances` (n, n)
    and `from_start` (n,) finite. Raises ValueError otherwise.
    """
    dist = np.asarray(distances, np.float64)
    first = np.asarray(from_start, np.float64).ravel()
    n = first.size
    if dist.shape != (n, n):
        raise ValueError(f"distances must be ({n}, {n}) for {n} start distances, got {dist.shape}")
    if not (np.isfinite(dist).all() and np.isfinite(first).all()):
        raise ValueError("distances and from_start must be finite")
    if n <= 1:
        return list(range(n))
    if n <= exact_max:
        return _held_karp(dist, first)
    return _two_opt(dist, first, _nearest_neighbour(dist, first))


def _held_karp(dist: np.ndarray, first: np.ndarray) -> list[int]:
    n = first.size
    full = (1 << n) - 1
    dp = np.full((1 << n, n), np.inf)
    bits = 1 << np.arange(n)
    dp[bits, np.arange(n)] = first
    masks = np.arange(1 << n)
    popcount = np.zeros(1 << n, np.int64)
    for k in range(n):
        popcount += (masks >> k) & 1
    for size in range(1, n):
        layer = masks[popcount == size]
        # best cost of ending at k after visiting `layer`, via its best last node j
        cand = (dp[layer][:, :, None] + dist[None, :, :]).min(axis=1)  # (m, n)
        inside = (layer[:, None] & bits[None, :]) != 0
        m_idx, k_idx = np.nonzero(~inside)
        nxt = layer[m_idx] | bits[k_idx]
        np.minimum.at(dp, (nxt, k_idx), cand[m_idx, k_idx])
    # walk back from the best end
    last = int(np.argmin(dp[full]))
    tour = [last]
    mask = full
    while mask != bits[last]:
        prev_mask = mask ^ int(bits[last])
        options = dp[prev_mask] + dist[:, last]
        options[(prev_mask & bits) == 0] = np.inf
        last = int(np.argmin(options))
        tour.append(last)
        mask = prev_mask
    return tour[::-1]


def _nearest_neighbour(dist: np.ndarray, first: np.ndarray) -> list[int]:
    n = first.size
    left = np.ones(n, bool)
    cur = int(np.argmin(first))
    tour = [cur]
    left[cur] = False
    for _ in range(n - 1):
        options = np.where(left, dist[cur], np.inf)
        cur = int(np.argmin(options))
        tour.append(cur)
        left[cur] = False
    return tour


def _two_opt(dist: np.ndarray, first: np.ndarray, tour: list[int]) -> list[int]:
    """2-opt (segment reversal) and or-opt (moving 1-3 nodes, either way round) on an open tour
    from a fixed outside start, until no move shortens it. Assumes symmetric distances."""
    tour = list(tour)
    n = len(tour)

    def c(x: int, y: int) -> float:  # x = -1: the start; y = -1: past the end (free)
        if y < 0:
            return 0.0
        if x < 0:
            return float(first[y])
        return float(dist[x, y])

    improved = True
    while improved:
        improved = False
        for a in range(n - 1):
            p = tour[a - 1] if a > 0 else -1
            for b in range(a + 1, n):
                q = tour[b + 1] if b + 1 < n else -1
                delta = c(p, tour[b]) + c(tour[a], q) - c(p, tour[a]) - c(tour[b], q)
                if delta < -1e-9:
                    tour[a : b + 1] = tour[a : b + 1][::-1]
                    improved = True
        for size in (1, 2, 3):
            a = 0
            while a + size <= n and size < n:
                piece = tour[a : a + size]
                p = tour[a - 1] if a > 0 else -1
                q = tour[a + size] if a + size < n else -1
                gain = c(p, piece[0]) + c(piece[-1], q) - (c(p, q) if q >= 0 else 0.0)
                rest = tour[:a] + tour[a + size :]
                best_delta, best_at, best_rev = -1e-9, -1, False
                for b in range(len(rest) + 1):
                    if b == a:
                        continue
                    x = rest[b - 1] if b > 0 else -1
                    y = rest[b] if b < len(rest) else -1
                    base = c(x, y) if y >= 0 else 0.0
                    for rev in (False, True):
                        head, tail = (piece[-1], piece[0]) if rev else (piece[0], piece[-1])
                        delta = c(x, head) + c(tail, y) - base - gain
                        if delta < best_delta:
                            best_delta, best_at, best_rev = delta, b, rev
                if best_at >= 0:
                    moved = piece[::-1] if best_rev else piece
                    tour = rest[:best_at] + moved + rest[best_at:]
                    improved = True
                a += 1
    return tour


# --------------------------------------------------------------------------------------------
# Exact cell walks


def _touched(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, ...]:
    """The cells that segments p0 -> p1 (grid units) touch, as points along them.

    A cell is touched when the segment meets its closed square (a supercover line, as
    navigation._kernels.segment_clear). Returns, sorted by segment then position: the segment
    index (K,), the position t in [0, 1] (K,), and the cells of each point, rows and columns
    (K, 4) (repeated when the point touches fewer than four cells). The points are the ends,
    every crossing of a cell edge, and the middle of every stretch between crossings.
    """
    p0 = np.asarray(p0, np.float64).reshape(-1, 2)
    p1 = np.asarray(p1, np.float64).reshape(-1, 2)
    m = len(p0)
    ar = np.arange(m)
    d = p1 - p0
    seg_l = [ar, ar]
    t_l = [np.zeros(m), np.ones(m)]
    for axis in (0, 1):
        lo = np.ceil(np.minimum(p0[:, axis], p1[:, axis]))
        hi = np.floor(np.maximum(p0[:, axis], p1[:, axis]))
        n = np.where(d[:, axis] != 0, np.maximum(hi - lo + 1, 0), 0).astype(np.int64)
        seg = np.repeat(ar, n)
        offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        value = lo[seg] + offs
        seg_l.append(seg)
        t_l.append((value - p0[seg, axis]) / d[seg, axis])
    seg = np.concatenate(seg_l)
    t = np.minimum(np.maximum(np.concatenate(t_l), 0.0), 1.0)
    o = np.lexsort((t, seg))
    seg, t = seg[o], t[o]
    gap = (seg[1:] == seg[:-1]) & (t[1:] - t[:-1] > 1e-12)
    seg = np.concatenate((seg, seg[:-1][gap]))
    t = np.concatenate((t, ((t[1:] + t[:-1]) / 2)[gap]))
    o = np.lexsort((t, seg))
    seg, t = seg[o], t[o]
    pts = p0[seg] + t[:, None] * d[seg]
    near = np.rint(pts)
    on_edge = np.abs(pts - near) < 1e-9
    low = np.where(on_edge, near - 1, np.floor(pts)).astype(np.int64)
    high = np.where(on_edge, near, np.floor(pts)).astype(np.int64)
    cols = np.column_stack((low[:, 0], high[:, 0], low[:, 0], high[:, 0]))
    rows = np.column_stack((low[:, 1], low[:, 1], high[:, 1], high[:, 1]))
    return seg, t, rows, cols


def _lookup(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, i0: int = 0, j0: int = 0):
    """mask[rows - i0, cols - j0], False outside the mask."""
    h, w = mask.shape
    r, c = rows - i0, cols - j0
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    out = np.zeros(r.shape, bool)
    out[inside] = mask[r[inside], c[inside]]
    return out


class _Free:
    """A bool raster of the cells a move may touch, with running counts of the others along
    rows and columns, so that a horizontal or vertical segment is checked in O(1)."""

    def __init__(self, ok: np.ndarray) -> None:
        self.ok = ok
        bad = (~ok).astype(np.int32)
        h, w = ok.shape
        self.along_rows = np.zeros((h, w + 1), np.int32)
        np.cumsum(bad, axis=1, out=self.along_rows[:, 1:])
        self.along_cols = np.zeros((h + 1, w), np.int32)
        np.cumsum(bad, axis=0, out=self.along_cols[1:, :])


def _span(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last cell index touched between coordinates lo <= hi on one axis (a point
    on a cell edge touches the cells on both sides)."""
    first = np.floor(lo).astype(np.int64)
    first -= np.abs(lo - np.rint(lo)) < 1e-9
    return first, np.floor(hi).astype(np.int64)


def _clear(p0: np.ndarray, p1: np.ndarray, ok, i0: int = 0, j0: int = 0) -> np.ndarray:
    """(M,) bool: whether every cell each segment p0 -> p1 (grid units) touches is `ok` (a
    bool raster whose cell (0, 0) is grid cell (i0, j0), or a _Free of the whole grid)."""
    p0 = np.asarray(p0, np.float64).reshape(-1, 2)
    p1 = np.asarray(p1, np.float64).reshape(-1, 2)
    m = len(p0)
    if m == 0:
        return np.zeros(0, bool)
    out = np.zeros(m, bool)
    rest = np.ones(m, bool)
    if isinstance(ok, _Free):
        h, w = ok.ok.shape
        flat = np.abs(p1 - p0) < 1e-12
        for axis in (0, 1):  # axis 0: a horizontal segment (x varies), 1: vertical
            sel = np.flatnonzero(flat[:, 1 - axis] & rest)
            if sel.size == 0:
                continue
            along_lo, along_hi = _span(
                np.minimum(p0[sel, axis], p1[sel, axis]), np.maximum(p0[sel, axis], p1[sel, axis])
            )
            across_lo, across_hi = _span(p0[sel, 1 - axis], p0[sel, 1 - axis])
            lim_along, lim_across = (w, h) if axis == 0 else (h, w)
            good = (along_lo >= 0) & (along_hi < lim_along) & (across_lo >= 0)
            good &= across_hi < lim_across
            count = np.zeros(sel.size, np.int64)
            a = np.minimum(np.maximum(along_lo, 0), lim_along - 1)
            b = np.minimum(np.maximum(along_hi, 0), lim_along - 1) + 1
            for line in (across_lo, across_hi):
                line = np.minimum(np.maximum(line, 0), lim_across - 1)
                if axis == 0:
                    count += ok.along_rows[line, b] - ok.along_rows[line, a]
                else:
                    count += ok.along_cols[b, line] - ok.along_cols[a, line]
            out[sel] = good & (count == 0)
            rest[sel] = False
        ok = ok.ok
    idx = np.flatnonzero(rest)
    if idx.size:
        seg, _, rows, cols = _touched(p0[idx], p1[idx])
        bad = ~_lookup(ok, rows, cols, i0, j0).all(axis=1)
        out[idx] = np.bincount(seg[bad], minlength=idx.size) == 0
    return out


# --------------------------------------------------------------------------------------------
# Building the path


class _Builder:
    """The path so far: segments in world metres, the current point in grid units, and the
    moves between points (straight when clear, else A*)."""

    def __init__(self, costmap: Costmap, reach: np.ndarray, planner: Planner, res: float):
        self.reach = reach
        self.free = _Free(reach)
        self.planner = planner
        self.res = res
        self.origin = np.asarray(costmap.origin, np.float64)
        self.segments: list[CoverageSegment] = []
        self.pos = np.zeros(2)
        self.astar_calls = 0

    def world(self, pts: np.ndarray) -> np.ndarray:
        return self.origin + np.asarray(pts, np.float64) * self.res

    def link(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(N, 2) grid points from a to b: [a, b] when the straight move is clear, else an
        L (along x then y, or y then x) when one is, else A*."""
        if _clear(a[None], b[None], self.free)[0]:
            return np.array([a, b])
        return self._detour(a, b)

    def _detour(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        corners = np.array([[b[0], a[1]], [a[0], b[1]]])
        firsts = np.repeat(a[None], 2, axis=0)
        seconds = np.repeat(b[None], 2, axis=0)
        ok = _clear(firsts, corners, self.free) & _clear(corners, seconds, self.free)
        if ok.any():
            return np.array([a, corners[int(np.argmax(ok))], b])
        return self.astar(a, b)

    def astar(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.astar_calls += 1
        wa, wb = self.world(a), self.world(b)
        plan = self.planner.plan((float(wa[0]), float(wa[1])), (float(wb[0]), float(wb[1])))
        pts = (plan.waypoints - self.origin) / self.res
        pts[0], pts[-1] = a, b
        return pts

    def links(self, pts: np.ndarray) -> np.ndarray:
        """The polyline through `pts` with every leg that is not clear replaced by a detour
        (an L or A*)."""
        if len(pts) < 2:
            return pts
        ok = _clear(pts[:-1], pts[1:], self.free)
        if ok.all():
            return pts
        out = [pts[:1]]
        for k in range(len(pts) - 1):
            if ok[k]:
                out.append(pts[k + 1 : k + 2])
            else:
                out.append(self._detour(pts[k], pts[k + 1])[1:])
        return np.vstack(out)

    def add(self, kind: str, room: int, pts: np.ndarray) -> None:
        """Append a polyline (grid units) that starts at the current point."""
        pts = np.asarray(pts, np.float64)
        if len(pts) == 1:
            pts = np.vstack((pts, pts))
        keep = np.r_[True, np.hypot(*np.diff(pts, axis=0).T) > 1e-9]
        pts = pts[keep]
        if len(pts) == 1:
            pts = np.vstack((pts, pts))
        self.segments.append(CoverageSegment(kind, room, self.world(pts)))
        self.pos = pts[-1].copy()


@dataclass(slots=True)
class _Task:
    """A piece of work in a part ("outer", "piece" or "hole" edge pass, or a "chain" of lanes)
    and the ways to drive it: per way, a polyline of grid points (a closed loop is entered at
    one of several of its points, an open piece from either end, a chain from any corner)."""

    kind: str
    entries: np.ndarray  # (E, 2): the first point of each way
    paths: list  # E (N, 2) arrays
    size: float = math.inf  # cleaning length (grid units) of a chain of lanes


class _Route:
    """A part's path in the making: pieces (kind, (N, 2) grid points) driven one after the
    other from `start`, transitions included; every leg is clear (else an L or A*)."""

    def __init__(self, builder: _Builder, start: np.ndarray) -> None:
        self.builder = builder
        self.here = start.copy()
        self.pieces: list[tuple[str, np.ndarray]] = []

    def drive(self, pts: np.ndarray, kind: str) -> None:
        """Go to pts[0] (a transition), then along pts."""
        if np.hypot(*(pts[0] - self.here)) > 1e-9:
            self.pieces.append(("transition", self.builder.link(self.here, pts[0])))
        path = self.builder.links(pts)
        self.pieces.append((kind, path))
        self.here = path[-1].copy()

    def insert(self, spots: np.ndarray) -> None:
        """Visit each spot by an out-and-back detour from the nearest point of a cleaning
        piece whose straight way there is clear (the piece itself is still driven in full);
        a spot no nearby leg sees is reached by a transition at the end."""
        legs = [
            (k, m)
            for k, (kind, pts) in enumerate(self.pieces)
            if kind != "transition"
            for m in range(len(pts) - 1)
        ]
        late = []
        detours: dict[tuple[int, int], list[tuple[float, np.ndarray, np.ndarray]]] = {}
        if legs:
            a = np.array([self.pieces[k][1][m] for k, m in legs])
            b = np.array([self.pieces[k][1][m + 1] for k, m in legs])
            ab = b - a
            length2 = np.maximum(np.einsum("ij,ij->i", ab, ab), _EPS)
        for spot in spots:
            if not legs:
                late.append(spot)
                continue
            t = np.minimum(np.maximum(((spot - a) * ab).sum(axis=1) / length2, 0.0), 1.0)
            foot = a + t[:, None] * ab
            best = np.argsort(np.hypot(*(spot - foot).T), kind="stable")[:16]
            ok = _clear(foot[best], np.repeat(spot[None], len(best), axis=0), self.builder.free)
            if not ok.any():
                late.append(spot)
                continue
            q = int(best[int(np.argmax(ok))])
            detours.setdefault(legs[q], []).append((float(t[q]), foot[q], spot))
        # the detours of a leg in order along it; the legs' own points do not move
        by_piece: dict[int, dict[int, list]] = {}
        for (k, m), items in detours.items():
            by_piece.setdefault(k, {})[m] = sorted(items, key=lambda item: item[0])
        for k, legs_of in by_piece.items():
            kind, pts = self.pieces[k]
            out = [pts[:1]]
            for m in range(len(pts) - 1):
                for _, foot, spot in legs_of.get(m, []):
                    out.append(np.array([foot, spot, foot]))
                out.append(pts[m + 1 : m + 2])
            self.pieces[k] = (kind, np.vstack(out))
        for spot in late:
            self.pieces.append(("transition", self.builder.link(self.here, spot)))
            self.pieces.append(("spot", np.array([spot, spot])))
            self.here = spot.copy()

    def emit(self, room: int) -> None:
        for kind, pts in self.pieces:
            self.builder.add(kind, room, pts)


class _Context:
    """Everything a room's plan needs; `plan_room` appends its segments to the builder."""

    def __init__(self, costmap, reach, parts, part_room, part_of_floor, target, config, builder):
        self.reach = reach
        self.parts = parts
        self.part_room = part_room
        self.part_of_floor = part_of_floor
        self.target = target
        self.config = config
        self.builder = builder
        self.res = costmap.resolution
        self.half = config.clean_width / 2.0 / self.res  # brush half-width, cells
        self.boxes = ndi.find_objects(part_of_floor)
        self.min_chain = config.min_chain / self.res

    # ---------------------------------------------------------------- per room
    def plan_room(
        self, room: int, door: np.ndarray | None, exit_to: np.ndarray | None = None
    ) -> float | None:
        """Append the room's edge passes, lanes and spots; returns its lane angle."""
        todo = []
        for p in np.flatnonzero(self.part_room == room).tolist():
            box = self.boxes[p - 1] if p - 1 < len(self.boxes) else None
            if box is None:
                continue
            if (self.target[box] & (self.part_of_floor[box] == p)).any():
                todo.append(p)
        angle_of_largest, largest = None, -1
        ref = door
        while todo:
            here = self.builder.pos if ref is None else ref
            dists = [self._distance_to_part(p, here) for p in todo]
            p = todo.pop(int(np.argmin(dists)))
            angle, size = self._plan_part(p, room, ref, exit_to)
            ref = None
            if angle is not None and size > largest:
                angle_of_largest, largest = angle, size
        return angle_of_largest

    def _distance_to_part(self, p: int, xy: np.ndarray) -> float:
        box = self.boxes[p - 1]
        ii, jj = np.nonzero(self.parts[box] == p)
        if ii.size == 0:
            return math.inf
        pts = np.column_stack((jj + box[1].start + 0.5, ii + box[0].start + 0.5))
        return float(np.min(np.hypot(*(pts - xy).T)))

    def _window(self, p: int) -> tuple[int, int, int, int]:
        box = self.boxes[p - 1]
        h, w = self.parts.shape
        pad = math.ceil(self.half) + 3
        return (
            max(box[0].start - pad, 0),
            min(box[0].stop + pad, h),
            max(box[1].start - pad, 0),
            min(box[1].stop + pad, w),
        )

    def _plan_part(
        self, p: int, room: int, ref: np.ndarray | None, exit_to: np.ndarray | None
    ) -> tuple[float | None, int]:
        """Append one part's edge passes, lanes and spots to the builder; returns the lane
        angle and the part's size (cells)."""
        i0, i1, j0, j1 = self._window(p)
        win = (slice(i0, i1), slice(j0, j1))
        mine = self.parts[win] == p
        dirty = self.target[win] & (self.part_of_floor[win] == p)
        reach = self.reach[win]
        route = _Route(self.builder, self.builder.pos)

        # 1. edge passes: along the walls, then round the furniture (driven with the lanes)
        edges = self._edge_tasks(mine, dirty, i0, j0)
        outer = [t for t in edges if t.kind != "hole"]
        holes = [t for t in edges if t.kind == "hole"]
        swept = self._sweep([pts for t in edges for pts in t.paths[:1]], mine.shape, i0, j0)
        for task, way in _order_tasks(outer, route.here if ref is None else ref, None):
            route.drive(task.paths[way], "edge")
        ref = None if outer else ref

        # 2. lanes over the floor the edge passes leave dirty, in one order with the loops
        rest = dirty & ~swept
        angle = None
        chains: list[_Task] = []
        if rest.any():
            lanes = _Lanes(mine, rest, i0, j0, self.config, self.res)
            angle = lanes.angle
            # a stub of a chain (a doorway's middle, a nook) is cheaper as spots on the way
            chains = [t for t in lanes.chains() if t.size > self.min_chain]
        for task, way in _order_tasks(holes + chains, route.here if ref is None else ref, exit_to):
            route.drive(task.paths[way], "edge" if task.kind == "hole" else "lanes")
        swept = self._sweep([pts for _, pts in route.pieces], mine.shape, i0, j0)
        rest = dirty & ~swept

        # 3. spots for what is still dirty, each an out-and-back from the nearest leg
        if rest.any():
            route.insert(_spots(rest, reach, self.half) + np.array([j0, i0]))
        route.emit(room)
        return angle, int(mine.sum())

    # ---------------------------------------------------------------- edge passes
    def _edge_tasks(self, mine, dirty, i0, j0) -> list[_Task]:
        """The edge passes of a part: its boundary cell chains (outside and around each hole)
        where dirty floor lies under the brush; a whole chain is a loop, else (a replan) its
        dirty stretches are pieces."""
        contours, hierarchy = cv2.findContours(
            mine.view(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE
        )
        if hierarchy is None:
            return []
        r = self.half
        size = 2 * math.ceil(r) + 1
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        # a boundary cell is worth passing while dirty floor lies within the brush of it
        near_dirty = cv2.dilate(dirty.view(np.uint8), disc).astype(bool)
        tasks = []
        for contour, info in zip(contours, hierarchy[0], strict=True):
            chain = contour[:, 0, :].astype(np.float64) + 0.5  # (x, y) cell centres, window
            cells = contour[:, 0, :]
            needed = near_dirty[cells[:, 1], cells[:, 0]]
            needed = _bridge(needed, 3)
            if not needed.any():
                continue
            chain += np.array([j0, i0])
            kind = "outer" if info[3] < 0 else "hole"
            tolerance = self.config.edge_tolerance / self.res
            if needed.all():
                loop = np.vstack((chain, chain[:1]))
                loop = self.builder.links(_simplify(loop, self.builder.free, tolerance))
                # entered at one of up to 8 points spread along it, driven all the way round
                n = len(loop) - 1
                at = np.unique(np.linspace(0, n, min(n, 8), endpoint=False).astype(np.int64))
                paths = [np.vstack((loop[k:-1], loop[: k + 1])) for k in at.tolist()]
                tasks.append(_Task(kind, np.array([q[0] for q in paths]), paths))
                continue
            # the stretches near dirty floor: pieces, either way round
            for piece in _stretches(needed):
                pts = self.builder.links(_simplify(chain[piece], self.builder.free, tolerance))
                tasks.append(_Task("piece", pts[[0, -1]], [pts, pts[::-1]]))
        return tasks

    def _sweep(self, paths: list[np.ndarray], shape, i0: int, j0: int) -> np.ndarray:
        """(h, w) bool: the window cells within the brush's half-width of the drawn paths,
        measured as navigation.coverage.swept_area does (sub-cell polylines, cell centres)."""
        canvas = np.zeros(shape, np.uint8)
        scale = 16
        for pts in paths:
            px = np.round((pts - np.array([j0, i0]) - 0.5) * scale).astype(np.int32)
            cv2.polylines(canvas, [px.reshape(-1, 1, 2)], False, 1, 1, cv2.LINE_8, 4)
            cv2.circle(canvas, (int(px[0, 0]), int(px[0, 1])), 0, 1, -1, cv2.LINE_8, 4)
        dist = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return dist <= self.half


def _order_tasks(
    tasks: list[_Task], start: np.ndarray, end: np.ndarray | None
) -> list[tuple[_Task, int]]:
    """A short order and a way (entry) for each task: from `start`, ending near `end` (when
    given). Nearest entry first, then improved until no move helps: turning one task round
    (another way), driving a stretch of the order backwards (2-opt), moving one task
    elsewhere (or-opt). Distances are straight lines from a task's exit to the next entry."""
    n = len(tasks)
    if n == 0:
        return []
    ways = max(len(t.paths) for t in tasks)
    ent = np.empty((n, ways, 2))
    ext = np.empty((n, ways, 2))
    for k, t in enumerate(tasks):
        for w in range(ways):
            path = t.paths[w % len(t.paths)]
            ent[k, w], ext[k, w] = path[0], path[-1]
    # the way that drives a task backwards: enters where `w` leaves and leaves where it enters
    match = np.hypot(*(ent[:, None, :, :] - ext[:, :, None, :]).transpose(3, 0, 1, 2))
    match += np.hypot(*(ext[:, None, :, :] - ent[:, :, None, :]).transpose(3, 0, 1, 2))
    rev = np.argmin(match, axis=2)  # (n, ways)
    free_end = end is None
    end_pt = np.zeros(2) if free_end else np.asarray(end, np.float64)

    def d(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.hypot(p[..., 0] - q[..., 0], p[..., 1] - q[..., 1])

    # nearest entry first
    left = np.ones(n, bool)
    seq = np.empty(n, np.int64)
    way = np.empty(n, np.int64)
    here = np.asarray(start, np.float64)
    for pos in range(n):
        dd = np.where(left[:, None], d(ent, here), np.inf)
        k, w = np.unravel_index(int(np.argmin(dd)), dd.shape)
        seq[pos], way[pos] = k, w
        left[k] = False
        here = ext[k, w]

    def links(seq: np.ndarray, way: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exit points before each position (start first) and entry points after each
        position (the end last)."""
        outs = np.vstack((start[None], ext[seq, way]))  # outs[p]: the exit before position p
        ins = np.vstack((ent[seq, way], end_pt[None]))  # ins[p]: the entry at position p
        return outs, ins

    def tail(q: np.ndarray, last: np.ndarray) -> np.ndarray:
        """The cost of a link into `q` where `last` marks links into the free end."""
        return np.where(last & free_end, 0.0, q)

    for _ in range(50):
        improved = False
        # turn each task round: its best way between its neighbours
        for pos in range(n):
            outs, ins = links(seq, way)
            k = seq[pos]
            cost = d(outs[pos], ent[k]) + tail(d(ext[k], ins[pos + 1]), np.array(pos == n - 1))
            w = int(np.argmin(cost))
            if cost[w] < cost[way[pos]] - 1e-9:
                way[pos] = w
                improved = True
        # 2-opt: the best stretch a..b to drive backwards
        outs, ins = links(seq, way)
        a, b = np.triu_indices(n)
        last = b == n - 1
        old = d(outs[a], ins[a]) + tail(d(outs[b + 1], ins[b + 1]), last)
        new = d(outs[a], outs[b + 1]) + tail(d(ins[a], ins[b + 1]), last)
        gain = old - new
        best = int(np.argmax(gain)) if len(gain) else 0
        if len(gain) and gain[best] > 1e-9:
            lo, hi = int(a[best]), int(b[best])
            seq[lo : hi + 1] = seq[lo : hi + 1][::-1].copy()
            way[lo : hi + 1] = rev[seq[lo : hi + 1], way[lo : hi + 1][::-1]]
            improved = True
        # or-opt: move one task to its best place and way
        for pos in range(n):
            outs, ins = links(seq, way)
            k, w0 = seq[pos], way[pos]
            removed = d(outs[pos], ent[k, w0]) + float(
                tail(d(ext[k, w0], ins[pos + 1]), np.array(pos == n - 1))
            )
            removed -= float(tail(d(outs[pos], ins[pos + 1]), np.array(pos == n - 1)))
            rest_seq = np.delete(seq, pos)
            rest_way = np.delete(way, pos)
            r_outs, r_ins = links(rest_seq, rest_way)
            at = np.arange(n)  # insert before position `at` of the rest (n - 1: at the end)
            last = at == n - 1
            base = tail(d(r_outs[at], r_ins[at]), last)
            add = d(r_outs[at][:, None, :], ent[k][None, :, :])
            add += tail(d(ext[k][None, :, :], r_ins[at][:, None, :]), last[:, None])
            delta = add - base[:, None] - removed
            delta[pos] = np.inf  # where it already is
            spot, w = np.unravel_index(int(np.argmin(delta)), delta.shape)
            if delta[spot, w] < -1e-9:
                seq = np.insert(rest_seq, spot, k)
                way = np.insert(rest_way, spot, w)
                improved = True
        if not improved:
            break
    return [(tasks[k], int(w) % len(tasks[k].paths)) for k, w in zip(seq, way, strict=True)]


def _bridge(flags: np.ndarray, gap: int) -> np.ndarray:
    """A closed chain's flags with runs of at most `gap` False between True set True."""
    if flags.all() or not flags.any():
        return flags
    shift = int(np.argmax(flags))  # start on a True so no gap wraps
    rolled = np.roll(flags, -shift)
    edges = np.diff(np.r_[1, rolled.astype(np.int8), 1])
    starts, stops = np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)
    out = rolled.copy()
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        if b - a <= gap:
            out[a:b] = True
    return np.roll(out, shift)


def _stretches(needed: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the runs of True in a closed chain's flags, each widened by one point."""
    n = len(needed)
    if needed.all():
        return [np.arange(n)]
    shift = int(np.argmin(needed))  # start on a False so no run wraps
    rolled = np.roll(needed, -shift)
    edges = np.diff(np.r_[0, rolled.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = []
    for s, e in zip(starts.tolist(), stops.tolist(), strict=True):
        idx = np.arange(s - 1, e + 1)
        out.append((idx + shift) % n)
    return out


def _simplify(pts: np.ndarray, ok: _Free, tolerance: float) -> np.ndarray:
    """A chain of grid points thinned by Douglas-Peucker (`tolerance` cells), keeping only the
    cuts whose every touched cell is `ok`; a cut that is not is split until it is, or until it
    is a single step of the chain (a step that is not clear is left to A*)."""
    pts = _unpinch(pts, ok.ok)
    n = len(pts)
    if n <= 2:
        return pts
    keep = np.zeros(n, bool)
    keep[[0, -1]] = True
    if tolerance <= 0:
        # exact: only the points where the chain turns
        step = np.diff(pts, axis=0)
        turn = np.abs(step[1:, 0] * step[:-1, 1] - step[1:, 1] * step[:-1, 0]) > _EPS
        turn |= np.einsum("ij,ij->i", step[1:], step[:-1]) <= 0  # folds back or repeats
        keep[1:-1] = turn
    stack = [] if tolerance <= 0 else [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b <= a + 1:
            continue
        mid = pts[a + 1 : b]
        seg = pts[b] - pts[a]
        rel = mid - pts[a]
        length = math.hypot(*seg)
        if length < _EPS:
            d = np.hypot(*rel.T)
        else:
            t = np.clip((rel @ seg) / (length * length), 0.0, 1.0)
            d = np.hypot(*(rel - t[:, None] * seg).T)
        k = int(np.argmax(d))
        if d[k] > tolerance:
            keep[a + 1 + k] = True
            stack += [(a, a + 1 + k), (a + 1 + k, b)]
    idx = np.flatnonzero(keep)
    while True:
        a, b = idx[:-1], idx[1:]
        bad = ~_clear(pts[a], pts[b], ok) & (b - a > 1)
        if not bad.any():
            break
        idx = np.union1d(idx, (a[bad] + b[bad]) // 2)
    return pts[idx]


def _unpinch(pts: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """A chain of 8-neighbour steps with each diagonal step that touches a cell not `ok` (the
    corner of an obstacle's inflation) turned into two straight steps through whichever side
    cell is `ok`; a step with neither is left as it is (for A*)."""
    if len(pts) < 2:
        return pts
    step = np.diff(pts, axis=0)
    diag = (np.abs(step[:, 0]) > 0.5) & (np.abs(step[:, 1]) > 0.5)
    if not diag.any():
        return pts
    k = np.flatnonzero(diag)
    a = pts[k]
    side_x = a + np.column_stack((step[k, 0], np.zeros(len(k))))
    side_y = a + np.column_stack((np.zeros(len(k)), step[k, 1]))
    cells = lambda q: (np.floor(q[:, 1]).astype(np.int64), np.floor(q[:, 0]).astype(np.int64))  # noqa: E731
    ok_x = _lookup(ok, *cells(side_x))
    ok_y = _lookup(ok, *cells(side_y))
    need = ~(ok_x & ok_y) & (ok_x | ok_y)  # a corner is touched, and one side is free
    if not need.any():
        return pts
    corner = np.where(ok_x[:, None], side_x, side_y)
    out = []
    last = 0
    for m in np.flatnonzero(need).tolist():
        idx = int(k[m])
        out.append(pts[last : idx + 1])
        out.append(corner[m : m + 1])
        last = idx + 1
    out.append(pts[last:])
    return np.vstack(out)


def _spots(dirty: np.ndarray, reach: np.ndarray, half: float) -> np.ndarray:
    """(K, 2) window grid points (cell centres of `reach`) whose brush discs cover the `dirty`
    cells they can, picked greedily (most dirty cells first)."""
    size = 2 * math.ceil(half) + 1
    c = size // 2
    yy, xx = np.mgrid[-c : c + 1, -c : c + 1]
    disc = ((xx * xx + yy * yy) <= half * half + _EPS).astype(np.float32)
    left = dirty.copy()
    score = cv2.filter2D(left.astype(np.float32), -1, disc, borderType=cv2.BORDER_CONSTANT)
    score[~reach] = 0
    h, w = dirty.shape
    picks = []
    while left.any():
        k = int(np.argmax(score))
        i, j = divmod(k, w)
        if score[i, j] < 0.5:
            break  # what is left cannot be reached by the brush
        picks.append((j + 0.5, i + 0.5))
        a0, a1, b0, b1 = max(i - c, 0), min(i + c + 1, h), max(j - c, 0), min(j + c + 1, w)
        sub = disc[a0 - i + c : a1 - i + c, b0 - j + c : b1 - j + c] > 0
        left[a0:a1, b0:b1] &= ~sub
        # rescore the cells whose disc overlaps the cleared one
        r0, r1, s0, s1 = (
            max(i - 2 * c, 0),
            min(i + 2 * c + 1, h),
            max(j - 2 * c, 0),
            min(j + 2 * c + 1, w),
        )
        pad = np.zeros((r1 - r0 + 2 * c, s1 - s0 + 2 * c), np.float32)
        q0, q1, u0, u1 = max(r0 - c, 0), min(r1 + c, h), max(s0 - c, 0), min(s1 + c, w)
        pad[q0 - (r0 - c) : q1 - (r0 - c), u0 - (s0 - c) : u1 - (s0 - c)] = left[q0:q1, u0:u1]
        local = cv2.filter2D(pad, -1, disc, borderType=cv2.BORDER_CONSTANT)[c:-c, c:-c]
        local[~reach[r0:r1, s0:s1]] = 0
        score[r0:r1, s0:s1] = local
    return np.array(picks, np.float64).reshape(-1, 2)


# --------------------------------------------------------------------------------------------
# Lanes


@dataclass(slots=True)
class _Runs:
    """Lane runs in a frame: direction `d` and normal `nrm` (grid units); per run its lane
    index, the lane's offset v along `nrm`, the trimmed span [s, e] and the clear span
    [ua, ub] along `d`; `missed` dirty cells no run reaches."""

    d: np.ndarray
    nrm: np.ndarray
    lane: np.ndarray
    v: np.ndarray
    s: np.ndarray
    e: np.ndarray
    ua: np.ndarray
    ub: np.ndarray
    missed: int

    @property
    def length(self) -> float:
        return float(np.sum(self.e - self.s))


class _Lanes:
    """Boustrophedon lanes over one part: the best direction and offset, runs, chains.

    Candidates: the grid axes, the minimum-area rectangle's sides and the principal direction
    of the part's cells (oblique ones only if more than 3 degrees off the axes). Axis lanes run
    through cell centres, a whole number of cells apart (at most the cleaning width); their
    runs are exact row or column runs. Oblique lanes are scored on the part rotated to make
    them rows (nearest-neighbour resampling), one cell closer together because a drawn oblique
    line strays up to half a cell from the true one; the winner's runs are then found by an
    exact cell walk on the part itself. Per direction the cheapest offset is taken (shortest
    lanes, one turn of one spacing per run); between directions the one with the fewest runs
    wins (dirty floor no run reaches counted as the lanes it would take), then the cheapest.
    An oblique direction is skipped when the width of the dirty floor across it already needs
    more lanes than the best so far has runs."""

    def __init__(self, mine, dirty, i0, j0, config: CoveragePlanConfig, res: float):
        self.mine, self.dirty, self.i0, self.j0 = mine, dirty, i0, j0
        self.half = config.clean_width / 2.0 / res
        axis_spacing = max(math.floor((config.clean_width - config.lane_overlap) / res + 1e-9), 1)
        oblique_spacing = max(axis_spacing - 1, 1)
        best = None
        for angle, kind in self._angles():
            if kind == "rows":
                m, d, spacing, reach = mine, dirty, axis_spacing, self.half
            elif kind == "cols":
                m, d, spacing, reach = mine.T, dirty.T, axis_spacing, self.half
            else:
                spacing, reach = oblique_spacing, self.half - 0.5
                # at least one run per lane across the dirty floor: skip hopeless angles
                di, dj = np.nonzero(dirty)
                v = dj * -math.sin(angle) + di * math.cos(angle)
                fewest = math.ceil(max(float(np.ptp(v)) - 2 * reach, 0.0) / spacing) + 1
                if best is not None and fewest > best[0][0]:
                    continue
                m, d = _rotate(mine, angle), _rotate(dirty, angle)
            if not d.any():
                continue
            score, lanes = _row_runs(m, d, spacing, reach)
            if best is None or score < best[0]:
                best = (score, angle, kind, lanes)
        if best is None:  # nothing survived rotation: fall back to rows
            best = ((0, 0.0), 0.0, "rows", _row_runs(mine, dirty, axis_spacing, self.half)[1])
        _, self.angle, kind, lanes = best
        if kind == "rows":
            self.runs = self._from_rows(lanes, np.array([1.0, 0.0]), np.array([0.0, 1.0]), j0, i0)
        elif kind == "cols":
            self.runs = self._from_rows(lanes, np.array([0.0, 1.0]), np.array([1.0, 0.0]), i0, j0)
        else:
            self.runs = min(
                (
                    self._exact(
                        self.angle, oblique_spacing, o * oblique_spacing / 4, self.half - 0.5
                    )
                    for o in range(4)
                ),
                key=lambda r: _lane_cost(r.length, len(r.lane), r.missed, oblique_spacing),
            )

    def _angles(self) -> list[tuple[float, str]]:
        out = [(0.0, "rows"), (math.pi / 2, "cols")]
        ii, jj = np.nonzero(self.mine)
        if ii.size < 3:
            return out
        pts = np.column_stack((jj, ii)).astype(np.float32)
        rect = math.radians(cv2.minAreaRect(pts)[2])
        cov = np.cov((pts - pts.mean(axis=0)).T)
        _, vecs = np.linalg.eigh(cov)
        pca = math.atan2(vecs[1, -1], vecs[0, -1])
        for a in (rect, pca):
            a = a % (math.pi / 2)
            if min(a, math.pi / 2 - a) > math.radians(3):
                for b in (a, a + math.pi / 2):
                    if all(abs(b - o) > math.radians(1) for o, _ in out):
                        out.append((b, "oblique"))
        return out

    @staticmethod
    def _from_rows(lanes, d, nrm, u0: int, v0: int) -> _Runs:
        """Runs found on rows (or columns, transposed) in grid units: +0.5 to cell centres."""
        lane, row, s, e, ua, ub, missed = lanes
        return _Runs(
            d=d,
            nrm=nrm,
            lane=lane,
            v=row + v0 + 0.5,
            s=s + u0 + 0.5,
            e=e + u0 + 0.5,
            ua=ua + u0 + 0.5,
            ub=ub + u0 + 0.5,
            missed=missed,
        )

    def _exact(self, angle: float, spacing: float, offset: float, reach: float) -> _Runs:
        """Oblique lanes at `angle`: runs of the part's cells along each lane by an exact
        cell walk, trimmed to the dirty floor they serve."""
        d = np.array([math.cos(angle), math.sin(angle)])
        nrm = np.array([-d[1], d[0]])
        ii, jj = np.nonzero(self.mine)
        cells = np.column_stack((jj + self.j0 + 0.5, ii + self.i0 + 0.5))
        di, dj = np.nonzero(self.dirty)
        dirty = np.column_stack((dj + self.j0 + 0.5, di + self.i0 + 0.5))
        u_c = cells @ d
        u_t, v_t = dirty @ d, dirty @ nrm
        v0 = float(v_t.min()) + math.floor(spacing / 2) - offset
        n_lanes = int(math.floor((float(v_t.max()) - v0) / spacing + 0.5)) + 1
        v_l = v0 + spacing * np.arange(n_lanes)
        u_lo, u_hi = float(u_c.min()) - 2.0, float(u_c.max()) + 2.0
        p0 = u_lo * d[None, :] + v_l[:, None] * nrm[None, :]
        p1 = u_hi * d[None, :] + v_l[:, None] * nrm[None, :]
        seg, t, rows, cols = _touched(p0, p1)
        ok = _lookup(self.mine, rows, cols, self.i0, self.j0).all(axis=1)
        same_prev = np.r_[False, seg[1:] == seg[:-1]]
        same_next = np.r_[seg[1:] == seg[:-1], False]
        starts = np.flatnonzero(ok & ~(np.r_[False, ok[:-1]] & same_prev))
        stops = np.flatnonzero(ok & ~(np.r_[ok[1:], False] & same_next))
        span = u_hi - u_lo
        k_t = np.clip(np.rint((v_t - v0) / spacing).astype(np.int64), 0, n_lanes - 1)
        dv = v_t - v_l[k_t]
        lane, s, e, ua, ub, has = _trim(
            seg[starts],
            u_lo + t[starts] * span,
            u_lo + t[stops] * span,
            k_t,
            dv,
            u_t,
            reach,
            snap=False,
        )
        missed = int(np.count_nonzero(~has))
        return _Runs(d, nrm, lane, v_l[lane], s, e, ua, ub, missed)

    def chains(self) -> list[_Task]:
        """Boustrophedon cells: runs of consecutive lanes that overlap one to one, each a task
        with four entries (first or last lane, either end)."""
        runs = self.runs
        order = np.lexsort((runs.ua, runs.lane))
        lane, v, s, e, ua, ub = (
            a[order] for a in (runs.lane, runs.v, runs.s, runs.e, runs.ua, runs.ub)
        )
        n = len(lane)
        up: list[list[int]] = [[] for _ in range(n)]
        down: list[list[int]] = [[] for _ in range(n)]
        by_lane: dict[int, list[int]] = {}
        for k, ln in enumerate(lane.tolist()):
            by_lane.setdefault(ln, []).append(k)
        for ln, ks in by_lane.items():
            for k in ks:
                for q in by_lane.get(ln + 1, []):
                    if min(ub[k], ub[q]) - max(ua[k], ua[q]) > 0:
                        up[k].append(q)
                        down[q].append(k)
        seen = np.zeros(n, bool)
        tasks = []
        for k in range(n):
            if seen[k]:
                continue
            # runs come lane by lane, so k starts its chain (a run linked one to one below it
            # was met earlier and took k along)
            chain = [k]
            seen[k] = True
            cur = k
            while len(up[cur]) == 1 and len(down[up[cur][0]]) == 1 and not seen[up[cur][0]]:
                cur = up[cur][0]
                chain.append(cur)
                seen[cur] = True
            tasks.append(_chain_task(chain, v, s, e, runs.d, runs.nrm))
        return tasks


def _chain_task(chain: list[int], v, s, e, d, nrm) -> _Task:
    """The four ways to drive a chain of runs back and forth: from its first or last run,
    starting at either end."""

    def zigzag(runs: list[int], forward: bool) -> np.ndarray:
        pts = []
        for k in runs:
            a, b = (s[k], e[k]) if forward else (e[k], s[k])
            pts.append(a * d + v[k] * nrm)
            pts.append(b * d + v[k] * nrm)
            forward = not forward
        return np.array(pts)

    paths = [
        zigzag(chain, True),
        zigzag(chain, False),
        zigzag(chain[::-1], True),
        zigzag(chain[::-1], False),
    ]
    size = float(sum(e[k] - s[k] for k in chain)) + len(chain)
    return _Task("chain", np.array([p[0] for p in paths]), paths, size=size)


def _row_runs(mask: np.ndarray, dirty: np.ndarray, spacing: int, reach: float):
    """Lanes along the rows of `mask`, `spacing` rows apart, at the cheapest (`_lane_cost`)
    of the `spacing` possible offsets: (cost, (lane (R,), row (R,), trimmed start and end
    columns (R,), clear start and end columns (R,), dirty cells left over)). Row and column
    indices are of the raster (cell centres at +0.5). Every offset is trimmed in one pass:
    lane ids o * n + k for offset o, lane k."""
    h, w = mask.shape
    dr, dc = np.nonzero(dirty)
    top = int(dr.min()) + spacing // 2  # lane 0 of offset o is row top - o
    n = (int(dr.max()) - (top - spacing + 1) + spacing // 2) // spacing + 1
    offs = np.arange(spacing)
    rows = (top - offs)[:, None] + spacing * np.arange(n)[None, :]  # (spacing, n)
    flat = rows.ravel()
    inside = (flat >= 0) & (flat < h)
    lanes = np.zeros((flat.size, w + 2), np.int8)
    lanes[inside, 1:-1] = mask[flat[inside]]
    step = np.diff(lanes, axis=1)
    ls, cs = np.nonzero(step == 1)
    _, ce = np.nonzero(step == -1)  # both in row-major order: the k-th start pairs the k-th end
    # each dirty cell to its nearest lane, for every offset
    k_t = np.rint((dr[None, :] - (top - offs)[:, None]) / spacing).astype(np.int64)
    k_t = np.clip(k_t, 0, n - 1)
    dv = dr[None, :] - np.take_along_axis(rows, k_t, axis=1)
    lane_t = (k_t + offs[:, None] * n).ravel()
    u_t = np.tile(dc, spacing).astype(np.float64)
    lane, s, e, ua, ub, has = _trim(
        ls,
        cs.astype(np.float64),
        ce.astype(np.float64) - 1,
        lane_t,
        dv.ravel().astype(np.float64),
        u_t,
        reach,
        snap=True,
    )
    group = lane // n
    runs = np.bincount(group, minlength=spacing)
    length = np.bincount(group, weights=e - s, minlength=spacing)
    missed = np.bincount(np.repeat(offs, len(dr))[~has], minlength=spacing)
    score = _lane_cost(length, runs, missed, spacing)
    best = int(np.argmin(score))
    pick = group == best
    # between directions: the fewest lanes (runs, and what spots would stand in for), then cost
    lanes = int(runs[best]) + math.ceil(int(missed[best]) / (spacing * spacing))
    return (lanes, float(score[best])), (
        lane[pick] - best * n,
        flat[lane[pick]],
        s[pick],
        e[pick],
        ua[pick],
        ub[pick],
        int(missed[best]),
    )


def _lane_cost(length, runs, missed, spacing):
    """Estimated length (cells) of driving lanes: their runs, a turn of one spacing per run,
    and for dirty cells no run reaches an out-and-back spot visit, as if lanes cleaned them
    (area / spacing, twice)."""
    return length + spacing * runs + 2.0 * missed / spacing


def _trim(lane, ua, ub, lane_t, dv, u_t, reach, snap):
    """Trim runs (lane id, clear span [ua, ub] along the lane) to the dirty cells they serve.

    Dirty cell t lies on lane `lane_t`, `dv` off its line, at `u_t` along it. It goes to the
    run of its lane whose span comes within the brush's reach of it, sqrt(reach^2 - dv^2)
    along the lane. A run keeps the shortest span that reaches all its cells (a point when
    one spot serves them all); runs serving none are dropped. With `snap` (lanes through
    cell centres, integer coordinates) reaches are floored to whole cells, so the trimmed
    ends stay on cell centres. Returns (lane, s, e, ua, ub, served) with served (T,) bool."""
    order = np.lexsort((ua, lane))
    lane, ua, ub = lane[order], ua[order], ub[order]
    r_t = np.sqrt(np.maximum(reach * reach - dv * dv, 0.0))
    if snap:
        r_t = np.floor(r_t + 1e-9)
    usable = np.abs(dv) <= reach + 1e-9
    n_runs = len(lane)
    best = np.full(len(u_t), -1)
    if n_runs and len(u_t):
        base = min(float(ua.min()), float(u_t.min()))
        width = float(max(ub.max(), u_t.max())) - base + 10.0
        key_runs = lane * width + (ua - base)
        key_t = lane_t * width + (u_t - base)
        pos = np.searchsorted(key_runs, key_t, side="right") - 1
        gap_best = np.full(len(u_t), np.inf)
        for cand in (pos, pos + 1):
            c = np.minimum(np.maximum(cand, 0), n_runs - 1)
            valid = (cand >= 0) & (cand < n_runs) & (lane[c] == lane_t)
            gap = np.maximum(np.maximum(ua[c] - u_t, u_t - ub[c]), 0.0)
            better = valid & usable & (gap <= r_t + 1e-9) & (gap < gap_best)
            best[better] = c[better]
            gap_best[better] = gap[better]
    has = best >= 0
    lo = np.full(n_runs, np.inf)
    hi = np.full(n_runs, -np.inf)
    np.minimum.at(lo, best[has], u_t[has] + r_t[has])
    np.maximum.at(hi, best[has], u_t[has] - r_t[has])
    used = np.isfinite(lo)
    lo, hi, ua, ub, lane = lo[used], hi[used], ua[used], ub[used], lane[used]
    point = lo > hi  # every window overlaps: one spot serves them all
    mid = (lo + hi) / 2
    if snap:
        mid = np.floor(mid)
    mid = np.minimum(np.maximum(mid, ua), ub)
    s = np.where(point, mid, np.minimum(np.maximum(lo, ua), ub))
    e = np.where(point, mid, np.minimum(np.maximum(hi, ua), ub))
    return lane, s, e, ua, ub, has


def _rotate(mask: np.ndarray, angle: float) -> np.ndarray:
    """The raster turned by -angle (grid frame) so that direction `angle` runs along its
    rows; nearest-neighbour, on a canvas big enough to hold it all."""
    h, w = mask.shape
    c, s_ = math.cos(angle), math.sin(angle)
    # R(-angle) maps (x, y) to (c x + s y, -s x + c y)
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
    xr = corners[:, 0] * c + corners[:, 1] * s_
    yr = -corners[:, 0] * s_ + corners[:, 1] * c
    out_w = int(math.ceil(xr.max() - xr.min())) + 2
    out_h = int(math.ceil(yr.max() - yr.min())) + 2
    m = np.array([[c, s_, 1 - xr.min()], [-s_, c, 1 - yr.min()]], np.float64)
    return cv2.warpAffine(
        mask.view(np.uint8), m, (out_w, out_h), flags=cv2.INTER_NEAREST, borderValue=0
    ).astype(bool)


# --------------------------------------------------------------------------------------------
# A picture

_KIND_COLOURS = {  # BGR
    "edge": (40, 150, 40),
    "lanes": (170, 90, 20),
    "spot": (160, 40, 160),
    "transition": (0, 120, 240),
}


def draw_coverage_plan(
    plan: CoveragePlan,
    costmap: Costmap,
    segmentation: Segmentation | None = None,
    cleaned: np.ndarray | None = None,
    scale: int | None = None,
    caption: list[str] | None = None,
):
    """A maps.render.Picture of a plan over its map: walls dark, unknown grey, restrictions
    red, the floor to clean white (or pale blue where `cleaned`), then the path coloured by
    kind (edge green, lanes blue, spots purple, transitions orange), the start as a green disc
    and each room's place in the order at its centre."""
    from maps import render

    h, w = costmap.shape
    scale = render.auto_scale((h, w)) if scale is None else max(1, int(scale))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = render.UNKNOWN_GREY
    img[~costmap.unknown] = (235, 235, 235)
    img[plan.floor] = render.FREE_WHITE
    if cleaned is not None:
        img[np.asarray(cleaned, bool) & ~costmap.lethal] = render.CLEANED
    img[costmap.static | costmap.obstacles] = render.WALL_DARK
    img[costmap.keepout] = (60, 60, 220)
    pic = render.raster_picture(img, costmap.resolution, costmap.origin, scale)
    for seg in plan.segments:
        pic.path(seg.waypoints, _KIND_COLOURS[seg.kind])
    pic.pose(Pose(plan.start[0], plan.start[1], 0.0), render.START, max(4, scale * 2))
    if segmentation is not None:
        for k, rid in enumerate(plan.order, start=1):
            room = segmentation.room(rid)
            pic.label(f"{k}:#{rid}", room.centre, size=0.4 if scale < 3 else 0.5)
    if caption:
        pic.fit_caption([(line, render.TEXT) for line in caption])
    return pic


__all__ = [
    "CoveragePlan",
    "CoveragePlanConfig",
    "CoverageSegment",
    "draw_coverage_plan",
    "order_rooms",
    "plan_coverage",
]
