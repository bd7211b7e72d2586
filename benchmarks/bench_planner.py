"""Planning speed: A* corner to corner on 1000 x 1000 costmaps, and costmap build times.

Maps (0.05 m cells):
- `home-x4`: the default home scaled 4x (nearest neighbour: thick walls, big rooms, the
  furniture as blocks) and padded with unknown to 1000 x 1000;
- `lab_ipa`: ../shared/data/floorplans/lab_ipa_furnitures.png (768 x 864) padded the same way
  (skipped when ../shared/data is absent);
- `empty`: a free 1000 x 1000 square, for reference.
Corner to corner: in the largest 4-connected region of enterable cells, from the cell nearest
the lower-left corner to the one nearest the upper-right corner.

Target (issue 6): A* median <= 20 ms, goal faster than pyastar2d side by side. pyastar2d runs on
the same weights (the step multiplier 1 + 2 cost / 252 per cell, inf where blocked) when it is
installed; note that it prices a diagonal step like a straight one (a Chebyshev metric, with
its L-inf heuristic), a different and easier problem than our octile one. Timings: the kernel
with its work arrays reused (as `Planner` does from plan to plan), the whole `Planner.plan`
(snapping, A*, line-of-sight shortcuts, waypoints), and pyastar2d. Costmap builds: the default
home and ../shared/data/floorplans/office_a_furnitures.png (1194 x 685), full build and one
incremental bump.

Run: `pytest benchmarks/bench_planner.py --benchmark-only`.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from firmware_bridge.world import World
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument, Obstacle
from navigation import _kernels
from navigation.costmap import Costmap
from navigation.planner import COST_UNIT, Planner, PlannerConfig, step_costs
from navigation.relocalize_bench import map_from_world

SIZE = 1000
RES = 0.05


def states_of(world: World) -> np.ndarray:
    states = np.full(world.shape, FREE, np.int8)
    states[world.outside] = UNKNOWN
    states[world.walls] = OCCUPIED
    return states


def padded(states: np.ndarray) -> np.ndarray:
    out = np.full((SIZE, SIZE), UNKNOWN, np.int8)
    h, w = min(SIZE, states.shape[0]), min(SIZE, states.shape[1])
    out[:h, :w] = states[:h, :w]
    return out


def map_states(name: str) -> np.ndarray:
    if name == "home-x4":
        small = states_of(World.default())
        big = cv2.resize(
            (small + 1).astype(np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST
        )
        return padded(big.astype(np.int8) - 1)
    if name == "lab_ipa":
        png = SHARED_DATA / "floorplans" / "lab_ipa_furnitures.png"
        if not png.exists():
            pytest.skip(f"{png} not found")
        return padded(states_of(World.from_png(png)))
    return np.full((SIZE, SIZE), FREE, np.int8)


def corners(costmap: Costmap) -> tuple[tuple[int, int], tuple[int, int]]:
    """In the largest 4-connected region of enterable cells, the cells nearest the lower-left
    and the upper-right corner of the map."""
    ok = (costmap.costs <= 252).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ok, connectivity=4)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ii, jj = np.nonzero(labels == largest)
    s, e = int(np.argmin(ii + jj)), int(np.argmax(ii + jj))
    return (int(ii[s]), int(jj[s])), (int(ii[e]), int(jj[e]))


@pytest.fixture(scope="module", params=["home-x4", "lab_ipa", "empty"])
def problem(request):
    states = map_states(request.param)
    costmap = Costmap.from_map(MapDocument.from_cells(states, RES, (0.0, 0.0)))
    start, goal = corners(costmap)
    return request.param, costmap, start, goal


def test_astar_kernel_corner_to_corner_1000x1000(benchmark, problem):
    name, costmap, start, goal = problem
    straight, diagonal = step_costs(PlannerConfig())
    n = costmap.costs.size  # the work arrays Planner keeps from plan to plan
    work = (np.empty(n, np.int64), np.empty(n, np.int32), np.zeros(n + 1, np.int32),
            np.empty((n // 4, 2), np.int64))  # fmt: skip
    args = (costmap.costs, straight, diagonal, start[0] * SIZE + start[1], goal[0] * SIZE + goal[1])
    path, cost, expansions, entries = _kernels.astar_grid(*args, work)  # JIT warm-up
    work = (*work[:3], entries)
    result = benchmark(_kernels.astar_grid, *args, work)
    assert result[0].size == path.size and result[1] == cost
    benchmark.extra_info.update(
        map=name, expansions=int(expansions), path_cells=int(path.size),
        cost_m=float(cost) / COST_UNIT * RES,
    )  # fmt: skip


def test_plan_corner_to_corner_1000x1000(benchmark, problem):
    name, costmap, start, goal = problem
    planner = Planner(costmap)
    a, b = costmap.cell_to_world([start, goal])
    plan = planner.plan(tuple(a), tuple(b))  # JIT warm-up
    result = benchmark(planner.plan, tuple(a), tuple(b))
    assert len(result.waypoints) == len(plan.waypoints)
    benchmark.extra_info.update(map=name, waypoints=len(plan.waypoints), length_m=plan.length)


def test_pyastar2d_corner_to_corner_1000x1000(benchmark, problem):
    pyastar2d = pytest.importorskip("pyastar2d")
    name, costmap, start, goal = problem
    straight, _ = step_costs(PlannerConfig())
    mult = straight[costmap.costs] / COST_UNIT
    weights = np.where(straight[costmap.costs] >= 0, mult, np.inf).astype(np.float32)
    path = pyastar2d.astar_path(weights, start, goal, allow_diagonal=True)
    result = benchmark(pyastar2d.astar_path, weights, start, goal, allow_diagonal=True)
    assert result is not None and len(result) == len(path)
    benchmark.extra_info.update(map=name, path_cells=len(path))


# ------------------------------------------------------------------ costmap builds
@pytest.fixture(scope="module", params=["default-home", "office_a"])
def stored_map(request):
    if request.param == "default-home":
        return request.param, map_from_world(World.default())
    png = SHARED_DATA / "floorplans" / "office_a_furnitures.png"
    if not png.exists():
        pytest.skip(f"{png} not found")
    return request.param, map_from_world(World.from_png(png))


def test_costmap_build(benchmark, stored_map):
    name, grid = stored_map
    costmap = benchmark(Costmap.from_map, grid)
    benchmark.extra_info.update(map=name, shape=list(costmap.shape))


def test_costmap_bump_update(benchmark, stored_map):
    name, grid = stored_map
    costmap = Costmap.from_map(grid)
    free = np.argwhere(costmap.costs <= 252)
    xy = costmap.cell_to_world(free[len(free) // 2 : len(free) // 2 + 1])[0]
    bump = [Obstacle(float(xy[0]), float(xy[1]), source="bumper")]

    def fresh():  # a costmap that has not seen the bump yet (untimed)
        return (Costmap.from_map(grid), bump), {}

    window = benchmark.pedantic(Costmap.add_obstacles, setup=fresh, rounds=30)
    assert window is not None
    rows, cols = window
    benchmark.extra_info.update(map=name, window=[rows.stop - rows.start, cols.stop - cols.start])
