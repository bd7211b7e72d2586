"""Coverage plan: coverage of the reachable floor and path length on the default home, the
shared homes and the floor plans; no segment touches an obstacle or its inflation; rooms once
each in an optimal order; restrictions; replanning what is left; the exact cell walk against a
brute-force twin; bad input."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from firmware_bridge.world import World
from maps.geometry import Pose
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument, Restrictions
from navigation import coverage_plan as cp
from navigation.costmap import MAX_NON_OBSTACLE, Costmap
from navigation.coverage import coverage_ratio, reachable_floor, swept_area
from navigation.coverage_plan import (
    CoveragePlan,
    CoveragePlanConfig,
    order_rooms,
    plan_coverage,
)
from navigation.errors import NoPathFound
from navigation.relocalize_bench import map_from_world
from navigation.rooms import segment_rooms

RES = 0.05
WIDTH = 0.25  # the brush, CoverageConfig.clean_width


# ---------------------------------------------------------------------------- helpers
def touched_cells(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the cells whose closed square the segment p -> q (grid units: cell
    (i, j) is [j, j+1] x [i, i+1]) meets, by clipping it against every square of its box."""
    lo = np.floor(np.minimum(p, q)).astype(int) - 1
    hi = np.floor(np.maximum(p, q)).astype(int) + 1
    jj, ii = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
    jj, ii = jj.ravel(), ii.ravel()
    t0, t1 = np.zeros(jj.size), np.ones(jj.size)
    for axis, low in ((0, jj), (1, ii)):
        d = q[axis] - p[axis]
        if abs(d) < 1e-15:
            inside = (low <= p[axis]) & (p[axis] <= low + 1)
            t1 = np.where(inside, t1, -1.0)
            continue
        ta, tb = (low - p[axis]) / d, (low + 1 - p[axis]) / d
        t0 = np.maximum(t0, np.minimum(ta, tb))
        t1 = np.minimum(t1, np.maximum(ta, tb))
    meet = t0 <= t1 + 1e-12
    return ii[meet], jj[meet]


def legs_touching(plan: CoveragePlan, costmap: Costmap, bad: np.ndarray) -> int:
    """How many legs of the plan's polyline touch a `bad` cell (or leave the map)."""
    pts = (plan.path() - np.asarray(costmap.origin)) / costmap.resolution
    h, w = bad.shape
    count = 0
    for p, q in itertools.pairwise(pts):
        ii, jj = touched_cells(p, q)
        inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
        if not inside.all() or bad[ii, jj].any():
            count += 1
    return count


def cleaned_by(plan: CoveragePlan, costmap: Costmap) -> np.ndarray:
    path = plan.path()
    traj = np.column_stack((path, np.zeros(len(path))))
    return swept_area(traj, costmap.shape, costmap.resolution, costmap.origin, WIDTH)


def floor_of(costmap: Costmap, start) -> np.ndarray:
    free = ~(costmap.static | costmap.unknown | costmap.keepout)
    pose = start if isinstance(start, Pose) else Pose(*start)
    return reachable_floor(free, costmap.resolution, costmap.origin, pose)


def path_ratio(plan: CoveragePlan, floor: np.ndarray, res: float) -> float:
    """Path length over the length of lanes that would clean the floor without overlap."""
    return plan.length / (np.count_nonzero(floor) * res * res / WIDTH)


def crossings(path: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """Legs of `path` that meet the segment a-b."""
    p, q = path[:-1], path[1:]

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    d1, d2 = cross(b - a, p - a), cross(b - a, q - a)
    d3, d4 = cross(q - p, a - p), cross(q - p, b - p)
    return int(np.count_nonzero((d1 * d2 <= 0) & (d3 * d4 <= 0)))


def costmap_cell(costmap: Costmap, pose: Pose) -> tuple[int, int]:
    ((i, j),) = costmap.world_to_cell([(pose.x, pose.y)]).tolist()
    return i, j


def grid_of(states: np.ndarray):
    return MapDocument.from_cells(states, RES, (0.0, 0.0)).grid


def box_home() -> np.ndarray:
    """Three rooms in a row: a 4 x 3 m room, a 3 x 3 m room (0.9 m door) and a closet behind
    a 0.25 m gap the robot cannot pass; walls 0.1 m, unknown outside."""
    states = np.full((70, 190), UNKNOWN, np.int8)
    states[3:67, 3:187] = OCCUPIED
    states[5:65, 5:85] = FREE  # room A: x 0.25-4.25, y 0.25-3.25
    states[5:65, 87:147] = FREE  # room B: x 4.35-7.35
    states[5:65, 149:185] = FREE  # closet: x 7.45-9.25
    states[26:44, 85:87] = FREE  # door A-B, 0.9 m
    states[30:35, 147:149] = FREE  # 0.25 m slit B-closet
    return states


@pytest.fixture(scope="module")
def home():
    world = World.default()
    grid = map_from_world(world)
    costmap = Costmap.from_map(grid)
    seg = segment_rooms(grid)
    plan = plan_coverage(costmap, seg, world.start)
    return world, grid, costmap, seg, plan


# ---------------------------------------------------------------------------- the default home
def test_default_home_plan_covers_the_reachable_floor(home):
    world, _, costmap, _, plan = home
    cleaned = cleaned_by(plan, costmap)
    floor = floor_of(costmap, world.start)
    # the whole floor the plan aims at, and nearly all of reachable_floor's: that one also
    # counts a 0.96 m2 pocket behind a diagonal gap (sofa and armchair corners 0.36 m apart)
    # that no 4-connected cell path, hence no A* path, enters (measured 0.9865)
    assert coverage_ratio(cleaned, plan.floor) >= 0.999
    assert coverage_ratio(cleaned, floor) >= 0.98
    assert np.count_nonzero(plan.floor & ~floor) == 0
    assert path_ratio(plan, floor, costmap.resolution) <= 1.40  # measured 1.33
    assert set(plan.skipped) == set()
    assert plan.segments[0].waypoints[0] == pytest.approx(np.array([world.start.x, world.start.y]))


def test_no_segment_touches_an_obstacle_or_its_inflation(home):
    _, _, costmap, _, plan = home
    assert legs_touching(plan, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0
    for seg in plan.segments:
        assert seg.kind in cp.KINDS
        assert np.isfinite(seg.waypoints).all() and seg.waypoints.shape[1] == 2


def test_rooms_are_visited_once_each_in_the_order(home):
    _, _, _, seg, plan = home
    assert sorted(plan.order) == [r.id for r in seg.rooms]
    rooms = [s.room for s in plan.segments]
    # the segments of a room come together, rooms in the plan's order
    blocks = [r for k, r in enumerate(rooms) if k == 0 or r != rooms[k - 1]]
    assert blocks == list(plan.order)
    # the robot starts in room 1 (the living room with the dock) and cleans it first
    assert plan.order[0] == seg.labels[costmap_cell(home[2], home[0].start)]
    kinds = {s.kind for s in plan.segments}
    assert {"edge", "lanes", "transition"} <= kinds
    assert plan.length == pytest.approx(sum(s.length for s in plan.segments))
    assert len(plan.path()) >= 2


def test_lanes_follow_the_grid_in_the_default_home(home):
    _, _, _, _, plan = home
    for angle in plan.lane_angles.values():
        assert min(angle % (math.pi / 2), math.pi / 2 - angle % (math.pi / 2)) < 1e-9


def test_plan_is_deterministic(home):
    world, _, costmap, seg, plan = home
    again = plan_coverage(costmap, seg, world.start)
    assert again.order == plan.order
    np.testing.assert_array_equal(again.path(), plan.path())


# ---------------------------------------------------------------------------- restrictions
def test_restrictions_are_respected(home):
    world, grid, _, seg, _ = home
    zone = np.array([[2.8, 2.8], [4.2, 2.8], [4.2, 4.0], [2.8, 4.0]])  # living room middle
    wall = np.array([[9.2, 5.05], [10.25, 5.05]])  # across the kitchen-hall door
    costmap = Costmap.from_map(grid, restrictions=Restrictions(no_go=[zone], virtual_walls=[wall]))
    plan = plan_coverage(costmap, seg, world.start)
    cleaned = cleaned_by(plan, costmap)
    assert costmap.keepout.any()
    assert np.count_nonzero(cleaned & costmap.keepout) == 0  # never swept
    assert crossings(plan.path(), wall[0], wall[1]) == 0  # never crossed
    assert legs_touching(plan, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0
    floor = floor_of(costmap, world.start)
    assert coverage_ratio(cleaned, plan.floor) >= 0.999
    assert coverage_ratio(cleaned, floor) >= 0.98
    # the kitchen is still cleaned, entered through the living room
    assert 2 in plan.order


# ---------------------------------------------------------------------------- replanning
def test_replan_after_a_bump_cleans_what_is_left(home):
    world, grid, _, seg, plan = home
    costmap = Costmap.from_map(grid)
    half = len(plan.segments) // 2
    driven = np.vstack([s.waypoints for s in plan.segments[:half]])
    cleaned = swept_area(
        np.column_stack((driven, np.zeros(len(driven)))),
        costmap.shape,
        costmap.resolution,
        costmap.origin,
        WIDTH,
    )
    # the bumper finds an obstacle 0.6 m along the next segment
    nxt = plan.segments[half].waypoints
    step = nxt[-1] - nxt[0]
    bump = nxt[0] + 0.6 * step / max(float(np.hypot(*step)), 1e-9)
    costmap.add_obstacles([tuple(bump)])
    done = {s.room for s in plan.segments[:half]} - {plan.segments[half].room}
    left = [r for r in plan.order if r not in done]
    again = plan_coverage(costmap, seg, tuple(driven[-1]), cleaned=cleaned, rooms=left)
    assert set(again.order) <= set(left)
    assert set(again.skipped) <= set(left)
    assert again.length < plan.length
    assert legs_touching(again, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0
    full = plan_coverage(costmap, seg, tuple(driven[-1]))
    assert coverage_ratio(cleaned | cleaned_by(again, costmap), full.floor) >= 0.999
    # nothing of what was cleaned is planned again
    assert np.count_nonzero(again.floor & cleaned) == 0


def test_plan_only_the_rooms_asked_for(home):
    world, _, costmap, seg, _ = home
    kitchen = int(seg.labels[costmap_cell(costmap, Pose(8.0, 3.0))])
    plan = plan_coverage(costmap, seg, world.start, rooms=[kitchen])
    assert plan.order == (kitchen,) and plan.skipped == {}
    assert {s.room for s in plan.segments} == {kitchen}
    assert plan.segments[0].kind == "transition"  # from the dock to the kitchen
    cleaned = cleaned_by(plan, costmap)
    assert coverage_ratio(cleaned, plan.floor) >= 0.999
    # the floor planned is the kitchen's: the part of it nearest the kitchen's cells
    whole = plan_coverage(costmap, seg, world.start).floor
    assert np.count_nonzero(plan.floor & ~whole) == 0
    assert 0.15 < np.count_nonzero(plan.floor) / np.count_nonzero(whole) < 0.3


def test_a_clean_home_gives_an_empty_plan(home):
    world, _, costmap, seg, _ = home
    plan = plan_coverage(costmap, seg, world.start, cleaned=np.ones(costmap.shape, bool))
    assert plan.segments == () and plan.order == () and plan.length == 0.0
    assert set(plan.skipped.values()) == {"nothing left to clean"}
    np.testing.assert_allclose(plan.path(), [[world.start.x, world.start.y]])


# ---------------------------------------------------------------------------- room order
def tour_cost(dist, first, tour) -> float:
    return float(first[tour[0]] + sum(dist[a, b] for a, b in itertools.pairwise(tour)))


@pytest.mark.parametrize("seed", range(12))
def test_room_order_is_optimal_on_small_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    if seed % 3 == 0:  # room-graph-like: shortest paths over a sparse graph (metric)
        w = rng.uniform(1, 10, (n + 1, n + 1))
        w = np.where(rng.random((n + 1, n + 1)) < 0.4, w, np.inf)
        w = np.minimum(w, w.T)
        np.fill_diagonal(w, 0)
        w[np.arange(n), np.arange(1, n + 1)] = w[np.arange(1, n + 1), np.arange(n)] = 5.0
        for k in range(n + 1):  # Floyd-Warshall
            w = np.minimum(w, w[:, k : k + 1] + w[k : k + 1, :])
    else:  # points in the plane, and a few zero distances (rooms that share a door)
        pts = rng.uniform(0, 10, (n + 1, 2))
        w = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
        if n > 2:
            w[1, 2] = w[2, 1] = 0.0
    dist, first = w[1:, 1:], w[0, 1:]
    tour = order_rooms(dist, first)
    assert sorted(tour) == list(range(n))
    best = min(tour_cost(dist, first, t) for t in itertools.permutations(range(n)))
    assert tour_cost(dist, first, tour) == pytest.approx(best, abs=1e-9)


def test_room_order_heuristic_beyond_the_exact_limit():
    rng = np.random.default_rng(5)
    ratios = []
    for _ in range(10):
        n = 11
        pts = rng.uniform(0, 10, (n + 1, 2))
        w = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
        dist, first = w[1:, 1:], w[0, 1:]
        exact = tour_cost(dist, first, order_rooms(dist, first, exact_max=16))
        fast = order_rooms(dist, first, exact_max=0)  # nearest neighbour + 2-opt + or-opt
        assert sorted(fast) == list(range(n))
        ratios.append(tour_cost(dist, first, fast) / exact)
    assert min(ratios) >= 1.0 - 1e-9
    assert np.mean(ratios) <= 1.02 and max(ratios) <= 1.10  # measured 1.004 mean, 1.05 worst


def test_room_order_rejects_bad_matrices():
    with pytest.raises(ValueError, match="distances must be"):
        order_rooms(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        order_rooms(np.array([[0.0, np.inf], [1.0, 0.0]]), np.zeros(2))
    assert order_rooms(np.zeros((0, 0)), np.zeros(0)) == []


# ---------------------------------------------------------------------------- lanes
def rotated_room(width: float, height: float, degrees: float) -> np.ndarray:
    """A rectangular room turned by `degrees`, walls 0.15 m, in a 10 x 10 m unknown map."""
    size = 200
    states = np.full((size, size), UNKNOWN, np.int8)
    img = np.zeros((size, size), np.uint8)
    centre = (size / 2, size / 2)
    wall = cv2.boxPoints((centre, (width / RES + 6, height / RES + 6), degrees))
    room = cv2.boxPoints((centre, (width / RES, height / RES), degrees))
    cv2.fillPoly(img, [np.round(wall).astype(np.int32)], 1)
    cv2.fillPoly(img, [np.round(room).astype(np.int32)], 2)
    states[img == 1] = OCCUPIED
    states[img == 2] = FREE
    return states


@pytest.mark.parametrize("degrees", [0.0, 30.0, 45.0, 100.0])
def test_lanes_follow_the_room(degrees):
    grid = grid_of(rotated_room(6.0, 3.0, degrees))
    costmap = Costmap.from_map(grid)
    seg = segment_rooms(grid)
    start = (5.0, 5.0)
    plan = plan_coverage(costmap, seg, start)
    ((room, angle),) = plan.lane_angles.items()
    # along the long side (fewest lanes): the rectangle's direction, modulo a half turn
    diff = (math.degrees(angle) - degrees) % 180.0
    assert min(diff, 180.0 - diff) < 2.0
    floor = floor_of(costmap, start)
    assert coverage_ratio(cleaned_by(plan, costmap), floor) >= 0.999
    # oblique lanes sit one cell closer (a drawn oblique line strays half a cell)
    assert path_ratio(plan, floor, RES) <= (1.15 if degrees % 90 == 0 else 1.4)
    assert legs_touching(plan, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0


def test_lanes_are_cut_by_obstacles_and_stay_off_them():
    states = rotated_room(6.0, 4.0, 0.0)
    states[90:110, 60:64] = OCCUPIED  # a pillar
    states[95:98, 120:150] = OCCUPIED  # a low wall across the lanes
    grid = grid_of(states)
    costmap = Costmap.from_map(grid)
    plan = plan_coverage(costmap, segment_rooms(grid), (5.0, 4.2))
    assert legs_touching(plan, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0
    floor = floor_of(costmap, (5.0, 4.2))
    assert coverage_ratio(cleaned_by(plan, costmap), floor) >= 0.999
    assert path_ratio(plan, floor, RES) <= 1.3


# ---------------------------------------------------------------------------- the cell walk
@pytest.mark.parametrize("seed", range(6))
def test_cell_walk_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    ok = rng.random((30, 40)) < 0.9
    free = cp._Free(ok)
    # random segments, and ones on grid lines, through corners, axis-aligned, points
    p0 = rng.uniform(-1, 41, (300, 2))
    p1 = p0 + rng.normal(0, 6, (300, 2))
    k = np.arange(300)
    p0[k % 5 == 0] = np.round(p0[k % 5 == 0])
    p1[k % 5 == 0] = np.round(p1[k % 5 == 0])
    p1[k % 7 == 0, 1] = p0[k % 7 == 0, 1]
    p1[k % 11 == 0, 0] = p0[k % 11 == 0, 0]
    p1[k % 13 == 0] = p0[k % 13 == 0]
    diag = k % 17 == 0
    p1[diag] = p0[diag] + rng.integers(-5, 6, (int(diag.sum()), 1))
    h, w = ok.shape
    expect = []
    for a, b in zip(p0, p1, strict=True):
        ii, jj = touched_cells(a, b)
        inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
        expect.append(bool(inside.all() and ok[ii, jj].all()))
    np.testing.assert_array_equal(cp._clear(p0, p1, ok), expect)
    np.testing.assert_array_equal(cp._clear(p0, p1, free), expect)


# ---------------------------------------------------------------------------- bad input
def test_unreachable_room_is_skipped_and_reported():
    grid = grid_of(box_home())
    costmap = Costmap.from_map(grid)
    seg = segment_rooms(grid)
    plan = plan_coverage(costmap, seg, (1.0, 1.0))
    closet = int(seg.labels[35, 170])
    assert closet not in plan.order
    assert "not reachable" in plan.skipped[closet]
    assert len(plan.order) == len(seg.rooms) - 1
    floor = floor_of(costmap, (1.0, 1.0))
    assert coverage_ratio(cleaned_by(plan, costmap), floor) >= 0.999


def test_start_in_an_obstacle_is_refused():
    grid = grid_of(box_home())
    costmap = Costmap.from_map(grid)
    seg = segment_rooms(grid)
    for where in ((4.3, 1.0), (-3.0, 1.0), (0.1, 0.1)):  # wall, outside the map, unknown
        with pytest.raises(NoPathFound) as err:
            plan_coverage(costmap, seg, where)
        assert err.value.reason == "start"
    # a restriction under the robot
    zone = Restrictions(no_go=[np.array([[0.8, 0.8], [1.2, 0.8], [1.2, 1.2], [0.8, 1.2]])])
    with pytest.raises(NoPathFound, match="no-go zone"):
        plan_coverage(Costmap.from_map(grid, restrictions=zone), seg, (1.0, 1.0))


def test_start_against_a_wall_moves_out_first():
    grid = grid_of(box_home())
    costmap = Costmap.from_map(grid)
    start = (0.33, 1.5)  # 0.08 m from the wall: inside the inflation
    plan = plan_coverage(costmap, segment_rooms(grid), start)
    first = plan.segments[0]
    assert first.kind == "transition" and len(first.waypoints) == 2
    assert first.waypoints[0] == pytest.approx(np.array(start))
    assert first.length <= 0.25 + 1e-9
    rest = CoveragePlan(plan.segments[1:], plan.order, plan.skipped, plan.start, plan.floor)
    assert legs_touching(rest, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0
    # the move out touches no wall
    assert legs_touching(plan, costmap, costmap.costs > MAX_NON_OBSTACLE + 1) == 0


def test_start_in_a_pocket_moves_to_the_open_floor_beside_it():
    """A robot that edged up to a jagged wall can stand on a few enterable cells that the
    jags' inflation cuts off: the plan starts from the open floor next to them instead of
    finding nothing to clean."""
    grid = grid_of(box_home())
    costmap = Costmap.from_map(grid)
    start = (2.025, 1.525)  # the centre of cell (30, 40), in room A
    i, j = costmap_cell(costmap, Pose(*start))
    ring = np.zeros(costmap.shape, bool)
    ring[i - 2 : i + 3, j - 2 : j + 3] = True
    ring[i - 1 : i + 2, j - 1 : j + 2] = False
    costmap.costs[ring] = cp.INSCRIBED  # a 3 x 3 pocket of enterable cells
    plan = plan_coverage(costmap, segment_rooms(grid), start)
    first = plan.segments[0]
    assert first.kind == "transition"
    assert first.waypoints[0] == pytest.approx(np.array(start))
    assert 0.1 <= first.length <= 0.25 + 1e-9  # out across the ring, no further
    assert "nothing left to clean" not in plan.skipped.values()
    assert coverage_ratio(cleaned_by(plan, costmap), plan.floor) > 0.9


def test_map_without_room_for_the_robot():
    states = np.full((40, 40), OCCUPIED, np.int8)
    states[10:30, 18:22] = FREE  # a 0.2 m wide slot
    grid = grid_of(states)
    with pytest.raises(NoPathFound, match="pick a free spot|no free cell"):
        plan_coverage(Costmap.from_map(grid), segment_rooms(grid), (1.0, 1.0))
    with pytest.raises(ValueError, match="no free cell"):
        Costmap.from_map(grid_of(np.full((10, 10), OCCUPIED, np.int8)))


def test_malformed_arguments():
    grid = grid_of(box_home())
    costmap = Costmap.from_map(grid)
    seg = segment_rooms(grid)
    with pytest.raises(TypeError, match="Costmap"):
        plan_coverage(grid, seg, (1.0, 1.0))
    with pytest.raises(TypeError, match="Segmentation"):
        plan_coverage(costmap, seg.labels, (1.0, 1.0))
    with pytest.raises(ValueError, match="do not match the costmap"):
        plan_coverage(costmap, segment_rooms(np.ones((5, 5), bool), RES), (1.0, 1.0))
    moved = segment_rooms(grid.probability() < 0.2, RES, (1.0, 0.0))
    with pytest.raises(ValueError, match="differs from the costmap"):
        plan_coverage(costmap, moved, (1.0, 1.0))
    with pytest.raises(ValueError, match="cleaned"):
        plan_coverage(costmap, seg, (1.0, 1.0), cleaned=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="no room 99"):
        plan_coverage(costmap, seg, (1.0, 1.0), rooms=[1, 99])
    with pytest.raises(TypeError, match="room ids"):
        plan_coverage(costmap, seg, (1.0, 1.0), rooms=["hall"])
    with pytest.raises(TypeError, match="start must be"):
        plan_coverage(costmap, seg, "here")
    with pytest.raises(ValueError, match="finite"):
        plan_coverage(costmap, seg, (math.nan, 1.0))
    with pytest.raises(ValueError, match="clean_width"):
        CoveragePlanConfig(clean_width=0.0)
    with pytest.raises(ValueError, match="lane_overlap"):
        CoveragePlanConfig(lane_overlap=0.3)
    with pytest.raises(ValueError, match="tsp_exact_max"):
        CoveragePlanConfig(tsp_exact_max=40)
    plan = plan_coverage(costmap, seg, (1.0, 1.0))
    with pytest.raises(ValueError, match="kind"):
        plan.length_of("mop")


# ---------------------------------------------------------------------------- real plans
HOMES = SHARED_DATA / "homes"
PLANS = SHARED_DATA / "floorplans"


def shared(folder: Path, pattern: str) -> list[Path | None]:
    """The matching files, or [None] (the test then skips, naming the folder)."""
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    return found or [None]


def world_or_skip(path: Path | None, folder: Path) -> World:
    if path is None:
        pytest.skip(f"no plans found in {folder} (../shared/data beside the repository)")
    return World.from_png(path)


def check_world(world: World, coverage: float, ratio: float) -> None:
    grid = map_from_world(world)
    costmap = Costmap.from_map(grid)
    plan = plan_coverage(costmap, segment_rooms(grid), world.start)
    cleaned = cleaned_by(plan, costmap)
    floor = floor_of(costmap, world.start)
    assert coverage_ratio(cleaned, plan.floor) >= 0.999
    assert coverage_ratio(cleaned, floor) >= coverage
    assert path_ratio(plan, floor, costmap.resolution) <= ratio
    assert legs_touching(plan, costmap, costmap.costs > MAX_NON_OBSTACLE) == 0
    rooms = [s.room for s in plan.segments]
    assert [r for k, r in enumerate(rooms) if k == 0 or r != rooms[k - 1]] == list(plan.order)


def stem(path: Path | None) -> str:
    return path.stem if path is not None else "missing"


@pytest.mark.shared_data
@pytest.mark.parametrize("path", shared(HOMES, "home_*_furnished.png"), ids=stem)
def test_shared_homes_furnished(path):
    # measured: coverage 1.000 on every home, path ratio 1.26 to 1.44
    check_world(world_or_skip(path, HOMES), coverage=0.995, ratio=1.5)


@pytest.mark.shared_data
@pytest.mark.parametrize("path", shared(PLANS, "*_furnitures.png"), ids=stem)
def test_floor_plans_furnished(path):
    # measured: coverage >= 0.9998 on every plan, path ratio 1.24 to 1.34
    check_world(world_or_skip(path, PLANS), coverage=0.995, ratio=1.42)
