"""Planner: the A* and line-of-sight kernels against their twins, optimality against a plain
Dijkstra, plans in the default home (clearance, restrictions, bumps), NoPathFound and the start
and goal fallbacks, bad input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import reference
from numba import config as numba_config
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from firmware_bridge.world import World
from maps.geometry import Pose
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument, Obstacle, Restrictions
from navigation import _kernels
from navigation.costmap import LETHAL, Costmap, CostmapConfig
from navigation.errors import NavigationError, NoPathFound
from navigation.planner import COST_UNIT, Plan, Planner, PlannerConfig, plan_path, step_costs
from navigation.relocalize_bench import map_from_world

RES = 0.05
# the home has ~50 k cells: seconds per plan in pure Python, fine; keep the count small there
NO_JIT = numba_config.DISABLE_JIT


def doc_of(states: np.ndarray, **kwargs) -> MapDocument:
    return MapDocument.from_cells(states, RES, (0.0, 0.0), **kwargs)


def random_costs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random uint8 costmap: smooth costs, lethal blobs, inscribed rims, unknown patches."""
    base = rng.random((h, w)).astype(np.float32)
    base = cv2.GaussianBlur(base, (0, 0), 1.5)
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    costs = np.rint(base * rng.uniform(50, 252)).astype(np.uint8)
    blocked = rng.random((h, w)) < rng.uniform(0.05, 0.3)
    costs[blocked] = rng.choice([253, 254, 255], size=int(blocked.sum()))
    costs[rng.random((h, w)) < 0.2] = 0
    return costs


def work_for(costs: np.ndarray) -> tuple:
    n = costs.size
    return (
        np.empty(n, np.int64),
        np.empty(n, np.int32),
        np.zeros(n + 1, np.int32),
        np.empty((1, 2), np.int64),  # tiny on purpose: the kernel must grow it
    )


def tables(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cfg = PlannerConfig(
        cost_weight=float(rng.choice([0.0, 2.0, 7.5])), allow_unknown=bool(rng.random() < 0.3)
    )
    return step_costs(cfg)


def enterable_cells(costs, straight, rng, k):
    cells = np.flatnonzero(straight[costs.ravel()] >= 0)
    return rng.choice(cells, size=k)


def dijkstra_cost(costs, straight, diagonal, start, goal) -> float:
    """Shortest cost from start to goal by scipy's Dijkstra on the same 8-connected graph."""
    h, w = costs.shape
    ok = straight[costs] >= 0
    src, dst, wgt = [], [], []
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
        a = ok.copy()
        ii, jj = np.nonzero(a)
        ni, nj = ii + di, jj + dj
        inside = (ni >= 0) & (ni < h) & (nj >= 0) & (nj < w)
        ii, jj, ni, nj = ii[inside], jj[inside], ni[inside], nj[inside]
        good = ok[ni, nj]
        if di and dj:
            good &= ok[ii + di, jj] & ok[ii, jj + dj]
            step = diagonal[costs[ni, nj]]
        else:
            step = straight[costs[ni, nj]]
        src.append((ii * w + jj)[good])
        dst.append((ni * w + nj)[good])
        wgt.append(step[good].astype(np.float64))
    graph = coo_matrix(
        (np.concatenate(wgt), (np.concatenate(src), np.concatenate(dst))), shape=(h * w, h * w)
    ).tocsr()
    dist = dijkstra(graph, indices=int(start))
    return float(dist[int(goal)])


def path_cost(costs, straight, diagonal, path, w) -> int:
    """Check a flat path is a legal 8-connected walk and sum its step costs."""
    total = 0
    for a, b in zip(path[:-1], path[1:], strict=True):
        ai, aj = divmod(int(a), w)
        bi, bj = divmod(int(b), w)
        di, dj = bi - ai, bj - aj
        assert max(abs(di), abs(dj)) == 1, "not 8-adjacent"
        assert straight[costs[bi, bj]] >= 0, "enters a blocked cell"
        if di and dj:
            assert straight[costs[ai + di, aj]] >= 0 and straight[costs[ai, aj + dj]] >= 0, (
                "cuts a corner"
            )
            total += int(diagonal[costs[bi, bj]])
        else:
            total += int(straight[costs[bi, bj]])
    return total


# ------------------------------------------------------------------ kernels against their twins
@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(8))
def test_astar_kernel_matches_twin(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(8, 40, size=2)
    costs = random_costs(rng, int(h), int(w))
    straight, diagonal = tables(rng)
    work = work_for(costs)
    for start, goal in enterable_cells(costs, straight, rng, 12).reshape(-1, 2):
        path, cost, expansions, entries = _kernels.astar_grid(
            costs, straight, diagonal, int(start), int(goal), work
        )
        work = (*work[:3], entries)  # the work arrays are reused from plan to plan
        twin_path, twin_cost, twin_exp = reference.astar_grid(
            costs, straight, diagonal, int(start), int(goal)
        )
        np.testing.assert_array_equal(path, twin_path)
        assert cost == twin_cost and expansions == twin_exp


@pytest.mark.kernel
def test_astar_kernel_blocked_ends_and_mark_wrap():
    rng = np.random.default_rng(7)
    costs = random_costs(rng, 20, 25)
    straight, diagonal = step_costs(PlannerConfig())
    work = work_for(costs)
    blocked = int(np.flatnonzero(costs.ravel() == LETHAL)[0])
    free = int(np.flatnonzero(straight[costs.ravel()] >= 0)[0])
    for s, g in ((blocked, free), (free, blocked)):
        path, cost, expansions, _ = _kernels.astar_grid(costs, straight, diagonal, s, g, work)
        assert path.size == 0 and cost == -1 and expansions == 0
    # the call counter about to overflow: the marks start over and the answer is unchanged
    work[2][-1] = 2**31 - 3
    work[2][:-1] = 2**31 - 3
    start, goal = enterable_cells(costs, straight, rng, 2)
    path, cost, expansions, _ = _kernels.astar_grid(
        costs, straight, diagonal, int(start), int(goal), work
    )
    twin = reference.astar_grid(costs, straight, diagonal, int(start), int(goal))
    np.testing.assert_array_equal(path, twin[0])
    assert (cost, expansions) == twin[1:]
    assert work[2][-1] == 2


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(4))
def test_segment_clear_matches_twin(seed):
    rng = np.random.default_rng(50 + seed)
    costs = rng.integers(0, 256, size=(14, 17)).astype(np.uint8)
    rank = np.arange(256, dtype=np.int64)
    for _ in range(300):
        i0, i1 = rng.integers(0, 14, size=2)
        j0, j1 = rng.integers(0, 17, size=2)
        touched = reference.segment_cells(i0, j0, i1, j1)
        worst = max(int(costs[c]) for c in touched)
        for limit in (worst - 1, worst, int(rng.integers(0, 256))):
            fast = _kernels.segment_clear(costs, rank, i0, j0, i1, j1, limit)
            assert fast == reference.segment_clear(costs, rank, i0, j0, i1, j1, limit)
        assert _kernels.segment_clear(costs, rank, i0, j0, i1, j1, worst)
        if worst > 0:
            assert not _kernels.segment_clear(costs, rank, i0, j0, i1, j1, worst - 1)


def test_segment_through_a_corner_touches_all_four_cells():
    assert sorted(reference.segment_cells(0, 0, 2, 2)) == [
        (0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)
    ]  # fmt: skip
    costs = np.zeros((3, 3), np.uint8)
    costs[0, 1] = 9
    rank = np.arange(256, dtype=np.int64)
    assert not _kernels.segment_clear(costs, rank, 0, 0, 2, 2, 5)
    assert _kernels.segment_clear(costs, rank, 1, 0, 1, 2, 5)


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(6))
def test_shortcut_kernel_matches_twin(seed):
    rng = np.random.default_rng(80 + seed)
    costs = random_costs(rng, 30, 34)
    cfg = PlannerConfig()
    straight, diagonal = step_costs(cfg)
    rank = np.where(straight >= 0, np.arange(256), 1000).astype(np.int64)
    for start, goal in enterable_cells(costs, straight, rng, 8).reshape(-1, 2):
        path, *_ = reference.astar_grid(costs, straight, diagonal, int(start), int(goal))
        if path.size == 0:
            continue
        cells = np.column_stack((path // 34, path % 34)).astype(np.int64)
        for limit in (0, 60, 252):
            keep = _kernels.shortcut_path(costs, rank, cells, limit)
            np.testing.assert_array_equal(keep, reference.shortcut_path(costs, rank, cells, limit))
            assert keep[0] == 0 and keep[-1] == len(cells) - 1


# ------------------------------------------------------------------ optimality
@pytest.mark.parametrize("seed", range(10))
def test_astar_cost_is_the_dijkstra_optimum(seed):
    rng = np.random.default_rng(200 + seed)
    h, w = rng.integers(10, 45, size=2)
    costs = random_costs(rng, int(h), int(w))
    straight, diagonal = tables(rng)
    work = work_for(costs)
    for start, goal in enterable_cells(costs, straight, rng, 10).reshape(-1, 2):
        path, cost, _, entries = _kernels.astar_grid(
            costs, straight, diagonal, int(start), int(goal), work
        )
        work = (*work[:3], entries)
        best = dijkstra_cost(costs, straight, diagonal, start, goal)
        if not math.isfinite(best):
            assert path.size == 0 and cost == -1
            continue
        assert cost == best  # integer step costs: exact
        assert path[0] == start and path[-1] == goal
        assert path_cost(costs, straight, diagonal, path, int(w)) == cost


def test_free_grid_path_length_is_the_octile_distance():
    cm = Costmap.from_map(doc_of(np.full((60, 80), FREE, np.int8)), config=CostmapConfig(
        robot_radius=0.0, inflation_radius=0.0))  # fmt: skip
    plan = Planner(cm, PlannerConfig(cost_weight=0.0)).plan((0.425, 0.525), (3.425, 2.025))
    dx, dy = 60, 30  # cells
    octile = (dx - dy) * COST_UNIT + dy * round(COST_UNIT * math.sqrt(2))
    assert plan.cost == pytest.approx(octile / COST_UNIT * RES, abs=1e-12)
    # in open space the line of sight leaves a single straight leg, split for the firmware
    np.testing.assert_allclose(plan.waypoints[[0, -1]], [[0.425, 0.525], [3.425, 2.025]])
    assert plan.length == pytest.approx(math.hypot(3.0, 1.5), abs=1e-9)
    legs = np.hypot(*np.diff(plan.waypoints, axis=0).T)
    assert legs.max() <= PlannerConfig().max_segment + 1e-9
    assert len(plan.waypoints) == 1 + math.ceil(math.hypot(3.0, 1.5) / 1.0)


# ------------------------------------------------------------------ plans in the home
@pytest.fixture(scope="module")
def home():
    world = World.default()
    return world, Costmap.from_map(map_from_world(world))


def free_spots(world: World, costmap: Costmap, rng, k: int) -> np.ndarray:
    cells = np.argwhere(costmap.costs <= 60)
    picks = cells[rng.choice(len(cells), size=k, replace=False)]
    return costmap.cell_to_world(picks)


def clearance_along(world: World, points: np.ndarray) -> np.ndarray:
    """Distance (m) from each world point to the nearest wall or outside cell's edge."""
    solid = world.walls | world.outside
    dist = cv2.distanceTransform((~solid).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ij = np.floor((points[:, ::-1] - np.array(world.origin)[::-1]) / world.resolution).astype(int)
    return (dist[ij[:, 0], ij[:, 1]] - 0.5) * world.resolution


def densify(waypoints: np.ndarray, step: float = 0.01) -> np.ndarray:
    out = [waypoints[:1]]
    for a, b in zip(waypoints[:-1], waypoints[1:], strict=True):
        n = max(1, math.ceil(np.hypot(*(b - a)) / step))
        out.append(a + (np.arange(1, n + 1)[:, None] / n) * (b - a))
    return np.vstack(out)


def test_home_plans_keep_the_body_off_walls_and_are_short(home):
    world, cm = home
    rng = np.random.default_rng(3)
    planner = Planner(cm)
    plain = Planner(cm, PlannerConfig(cost_weight=0.0))
    spots = free_spots(world, cm, rng, 8 if NO_JIT else 24)
    gained = []
    for start, goal in spots.reshape(-1, 2, 2):
        plan = planner.plan(tuple(start), tuple(goal))
        assert isinstance(plan, Plan)
        np.testing.assert_allclose(plan.waypoints[0], start)
        np.testing.assert_allclose(plan.waypoints[-1], goal)
        legs = np.hypot(*np.diff(plan.waypoints, axis=0).T)
        assert legs.max() <= planner.config.max_segment + 1e-9
        # the whole body stays clear of walls along every leg (half a cell of slack for the
        # cell-centre model)
        assert clearance_along(world, densify(plan.waypoints)).min() >= 0.17 - RES / 2
        # smoothing shortens: never longer than the cell path
        cell_len = np.hypot(*np.diff(cm.cell_to_world(plan.cells), axis=0).T).sum()
        assert plan.length <= cell_len + 2 * RES
        # no leg touches a cell costlier than the threshold, or than the A* path itself
        ceiling = max(planner.config.shortcut_max_cost, int(cm.costs[tuple(plan.cells.T)].max()))
        rank = np.arange(256, dtype=np.int64)
        keep = _kernels.shortcut_path(cm.costs, rank, plan.cells, planner.config.shortcut_max_cost)
        corners = plan.cells[keep]
        for (i0, j0), (i1, j1) in zip(corners[:-1], corners[1:], strict=True):
            assert all(cm.costs[c] <= ceiling for c in reference.segment_cells(i0, j0, i1, j1))
        # the waypoints between the ends lie on those legs
        centres = cm.cell_to_world(corners)
        for p in plan.waypoints[1:-1]:
            a, b = centres[:-1], centres[1:]
            t = np.clip(np.einsum("ij,ij->i", p - a, b - a) / np.maximum(
                np.einsum("ij,ij->i", b - a, b - a), 1e-12), 0, 1)  # fmt: skip
            assert np.hypot(*(a + t[:, None] * (b - a) - p).T).min() < 1e-9
        # cost-aware planning keeps farther from walls than the shortest path
        short = plain.plan(tuple(start), tuple(goal))
        # ... and is optimal for its cost: the shortest path costs at least as much
        straight, diagonal = step_costs(planner.config)
        w = cm.shape[1]
        flat = short.cells[:, 0] * w + short.cells[:, 1]
        short_cost = path_cost(cm.costs, straight, diagonal, flat, w) / COST_UNIT * RES
        assert plan.cost <= short_cost + 1e-9
        mean_aware = clearance_along(world, cm.cell_to_world(plan.cells)).mean()
        mean_short = clearance_along(world, cm.cell_to_world(short.cells)).mean()
        gained.append(mean_aware - mean_short)
        assert short.length <= plan.length * 1.05 + 0.1
    assert np.mean(gained) > 0.03  # metres of extra clearance on average


def test_bump_adds_an_obstacle_and_the_replan_avoids_it(home):
    world, _ = home
    cm = Costmap.from_map(map_from_world(world))
    planner = Planner(cm)
    start, goal = (4.5, 1.0), (4.6, 4.5)
    first = planner.plan(start, goal)
    # the bumper finds something right on the planned route
    mid = densify(first.waypoints)[len(densify(first.waypoints)) // 2]
    assert cm.add_obstacles([Obstacle(float(mid[0]), float(mid[1]), source="bumper")])
    second = planner.plan(start, goal)
    body = densify(second.waypoints)
    assert (
        np.hypot(*(body - mid).T).min() >= cm.config.robot_radius + cm.config.obstacle_radius - RES
    )
    assert second.length > first.length


def test_no_go_zone_and_virtual_wall_are_respected(home):
    world, _ = home
    grid = map_from_world(world)
    start, goal = (4.5, 1.0), (4.6, 4.5)
    base = Planner(Costmap.from_map(grid)).plan(start, goal)
    # a no-go zone over the middle of the direct route
    mid = densify(base.waypoints)[len(densify(base.waypoints)) // 2]
    zone = mid + np.array([[-0.4, -0.3], [0.4, -0.3], [0.4, 0.3], [-0.4, 0.3]])
    doc = MapDocument(grid=grid, restrictions=Restrictions(no_go=[zone]))
    cm = Costmap.from_map(doc)
    plan = Planner(cm).plan(start, goal)  # around the zone, through the next room
    body = densify(plan.waypoints)
    dx = np.maximum(np.abs(body[:, 0] - mid[0]) - 0.4, 0)
    dy = np.maximum(np.abs(body[:, 1] - mid[1]) - 0.3, 0)
    assert np.hypot(dx, dy).min() >= cm.config.robot_radius - RES
    assert plan.length > base.length
    # a virtual wall across the whole home at y = 2.6 m: no way through
    x0, _, x1, _ = grid.bounds
    doc = MapDocument(
        grid=grid, restrictions=Restrictions(virtual_walls=[np.array([[x0, 2.6], [x1, 2.6]])])
    )
    with pytest.raises(NoPathFound, match="not connected") as info:
        Planner(Costmap.from_map(doc)).plan(start, goal)
    assert info.value.reason == "unreachable"


# ------------------------------------------------------------------ no path, fallbacks
def two_rooms() -> np.ndarray:
    states = np.full((40, 60), FREE, np.int8)
    states[[0, -1], :] = OCCUPIED
    states[:, [0, -1]] = OCCUPIED
    states[:, 29:31] = OCCUPIED  # a wall with no door
    return states


def test_disconnected_goal_raises_no_path_found():
    cm = Costmap.from_map(doc_of(two_rooms()))
    with pytest.raises(NoPathFound, match="not connected to the start") as info:
        plan_path(cm, (0.5, 1.0), (2.5, 1.0))
    assert info.value.reason == "unreachable"
    assert info.value.start == (0.5, 1.0) and info.value.goal == (2.5, 1.0)
    assert isinstance(info.value, NavigationError)


def test_a_door_narrower_than_the_robot_is_no_path():
    states = two_rooms()
    states[18:24, 29:31] = FREE  # 0.30 m door: the 0.34 m body does not pass
    with pytest.raises(NoPathFound, match="radius 0.17 m"):
        plan_path(Costmap.from_map(doc_of(states)), (0.5, 1.0), (2.5, 1.0))
    states[16:26, 29:31] = FREE  # 0.50 m: it does
    plan = plan_path(Costmap.from_map(doc_of(states)), (0.5, 1.0), (2.5, 1.0))
    assert plan.waypoints[-1].tolist() == [2.5, 1.0]


@pytest.mark.parametrize(
    "goal, words",
    [
        ((1.475, 0.4), "in a wall"),
        ((1.2, 1.5), "no-go zone"),
        ((2.6, 0.2), "remembered obstacle"),
        ((2.9, 1.9), "unknown space"),
        ((9.0, 1.0), "outside the map"),
        ((0.5, 0.1), "closer than the robot radius"),
    ],
)
def test_blocked_goal_raises_with_the_reason(goal, words):
    states = two_rooms()
    states[16:26, 29:31] = FREE  # a door
    states[35:, 55:] = UNKNOWN
    zone = np.array([[1.0, 1.3], [1.3, 1.3], [1.3, 1.7], [1.0, 1.7]])
    doc = doc_of(states, restrictions=Restrictions(no_go=[zone]))
    cm = Costmap.from_map(doc, obstacles=[Obstacle(2.6, 0.2, source="cliff")])
    with pytest.raises(NoPathFound, match=words) as info:
        plan_path(cm, (0.5, 1.0), goal, PlannerConfig(goal_tolerance=0.0))
    assert info.value.reason == "goal"


def test_start_in_an_obstacle_raises_and_inside_the_inflation_is_moved_out():
    states = two_rooms()
    cm = Costmap.from_map(doc_of(states))
    with pytest.raises(NoPathFound, match=r"start \(0.025, 1.000\) is in a wall") as info:
        plan_path(cm, (0.025, 1.0), (1.0, 1.0))
    assert info.value.reason == "start"
    # right after a bump: the centre 0.12 m from the wall's edge, inside the 0.17 m body
    start = (0.05 + 0.12, 1.0)
    assert cm.costs[tuple(cm.world_to_cell([start])[0])] == 253
    plan = plan_path(cm, start, (1.0, 1.0))
    assert 0 < plan.start_shift <= PlannerConfig().start_tolerance
    np.testing.assert_allclose(plan.waypoints[0], start)  # the path begins where the robot is
    moved_to = plan.waypoints[1]
    assert cm.costs[tuple(cm.world_to_cell([moved_to])[0])] <= 252
    assert moved_to[0] > start[0]  # away from the wall, not through it
    # deeper than the tolerance allows: refused
    with pytest.raises(NoPathFound, match="no free cell lies within 0.05 m"):
        plan_path(cm, start, (1.0, 1.0), PlannerConfig(start_tolerance=0.05))


def test_start_fallback_never_jumps_through_a_wall():
    states = np.full((40, 60), FREE, np.int8)
    states[:, 29:31] = OCCUPIED  # a thin wall (0.10 m)
    states[:, :23] = UNKNOWN  # left of the wall only a 0.30 m strip: too narrow for the robot
    cm = Costmap.from_map(doc_of(states))
    start = (1.425, 1.0)  # left of the wall, inscribed; free cells only right of the wall
    assert cm.costs[tuple(cm.world_to_cell([start])[0])] == 253
    with pytest.raises(NoPathFound, match="in a straight line clear of obstacles") as info:
        plan_path(cm, start, (2.5, 1.0), PlannerConfig(start_tolerance=0.4))
    assert info.value.reason == "start"


def test_goal_inside_the_inflation_snaps_within_tolerance():
    cm = Costmap.from_map(doc_of(two_rooms()))
    goal = (0.5, 0.17)  # 0.12 m from the wall edge at y = 0.05
    plan = plan_path(cm, (0.5, 1.0), goal, PlannerConfig(goal_tolerance=0.125))
    assert 0 < plan.goal_shift <= 0.125
    end = plan.waypoints[-1]
    assert end[1] > goal[1] and cm.costs[tuple(cm.world_to_cell([end])[0])] <= 252
    with pytest.raises(NoPathFound, match="closer than the robot radius"):
        plan_path(cm, (0.5, 1.0), goal, PlannerConfig(goal_tolerance=0.0))


def test_unknown_space_is_crossed_only_when_allowed():
    states = np.full((30, 80), FREE, np.int8)
    states[:, 35:45] = UNKNOWN  # a 0.5 m unexplored strip across the map
    config = CostmapConfig(unknown_is_obstacle=False)
    cm = Costmap.from_map(doc_of(states), config=config)
    with pytest.raises(NoPathFound, match="not connected"):
        plan_path(cm, (0.5, 0.75), (3.5, 0.75))
    plan = plan_path(cm, (0.5, 0.75), (3.5, 0.75), PlannerConfig(allow_unknown=True))
    assert plan.waypoints[-1].tolist() == [3.5, 0.75]
    assert np.any(cm.costs[tuple(plan.cells.T)] == 255)


def test_start_equal_to_goal_is_a_two_point_plan():
    cm = Costmap.from_map(doc_of(two_rooms()))
    plan = plan_path(cm, Pose(0.51, 1.0, 1.0), Pose(0.52, 1.01, -2.0))
    assert plan.waypoints.tolist() == [[0.51, 1.0], [0.52, 1.01]]
    assert plan.cost == 0.0 and len(plan.cells) == 1


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused():
    cm = Costmap.from_map(doc_of(two_rooms()))
    with pytest.raises(TypeError, match="expected a navigation.costmap.Costmap"):
        plan_path(map_from_world(World.default()), (0.5, 1.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="start must be finite"):
        plan_path(cm, (math.nan, 1.0), (1.0, 1.0))
    with pytest.raises(TypeError, match="goal must be a Pose or an"):
        plan_path(cm, (0.5, 1.0), "kitchen")
    for kwargs, message in (
        ({"cost_weight": -1.0}, "cost_weight must be a finite number"),
        ({"cost_weight": 1e6}, "cost_weight must be <= 100"),
        ({"max_segment": 0.0}, "max_segment must be > 0"),
        ({"shortcut_max_cost": 253}, "shortcut_max_cost must be an int in 0..252"),
        ({"start_tolerance": math.inf}, "start_tolerance must be a finite number"),
    ):
        with pytest.raises(ValueError, match=message):
            PlannerConfig(**kwargs)


def test_planner_follows_costmap_changes_of_the_same_size():
    states = two_rooms()
    states[16:26, 29:31] = FREE
    cm = Costmap.from_map(doc_of(states))
    planner = Planner(cm)
    before = planner.plan((0.5, 1.0), (2.5, 1.0))
    # block the door with a remembered obstacle: no way through any more
    cm.add_obstacles([(1.5, 1.05)])
    with pytest.raises(NoPathFound):
        planner.plan((0.5, 1.0), (2.5, 1.0))
    assert before.waypoints[-1].tolist() == [2.5, 1.0]
