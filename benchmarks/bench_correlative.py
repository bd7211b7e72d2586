"""Correlative scan matching speed in the simulated default home (0.05 m cells).

Targets (medians, not asserted): front-end `match_window`, 180-360 points, 0.2 m / 15 deg window:
< 5 ms; `match_branch_and_bound`, 360-beam scan, 20 m x 20 m grid, 7 m / 180 deg window: < 100 ms;
the same over the whole home map (12.3 m x 10.3 m = 127 m2, 77 m2 of floor) at +-180 deg: < 300 ms.
The map is fused from 80 scans at their true poses; the matched scans come from other spots.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps import OccupancyGrid, Pose, Scan
from navigation import _kernels
from navigation.slam import correlative
from navigation.slam.correlative import (
    MatchGrid,
    SearchWindow,
    match_branch_and_bound,
    match_window,
)

RES = 0.05


def revolution(world: World, pose: Pose, seed: int) -> tuple[Scan, Pose]:
    """One 360-beam revolution taken standing still at `pose`, and the true pose."""
    robot = SimulatedRobot(world, seed=seed, start=pose)
    robot.drive(0.0, 0.0, 0.2)
    (scan,) = robot.scans()
    return scan, robot.true_pose


def clear_poses(world: World, n: int, seed: int) -> list[Pose]:
    """n random poses at least 0.3 m from any obstacle."""
    dist = cv2.distanceTransform(world.free.astype(np.uint8), cv2.DIST_L2, 5) * world.resolution
    i, j = np.nonzero(dist > 0.3)
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(i), size=n)
    return [
        Pose(
            world.origin[0] + (j[k] + 0.5) * world.resolution,
            world.origin[1] + (i[k] + 0.5) * world.resolution,
            float(rng.uniform(-math.pi, math.pi)),
        )
        for k in picks
    ]


@pytest.fixture(scope="module")
def home():
    """(world, 20 m x 20 m MatchGrid, home-sized MatchGrid, scans to match with their truth)."""
    world = World.default()
    h, w = world.shape
    tight = OccupancyGrid.empty(w * world.resolution, h * world.resolution, world.origin)
    cx = world.origin[0] + w * world.resolution / 2
    cy = world.origin[1] + h * world.resolution / 2
    wide = OccupancyGrid.centred(cx, cy, 20.0)
    for k, pose in enumerate(clear_poses(world, 80, seed=1)):
        scan, truth = revolution(world, pose, seed=k)
        tight.integrate(truth, scan)
        wide.integrate(truth, scan)
    assert wide.shape == (400, 400)
    probes = [
        revolution(world, pose, seed=1000 + k) for k, pose in enumerate(clear_poses(world, 3, 2))
    ]
    stacks = MatchGrid.from_grid(wide), MatchGrid.from_grid(tight)
    # JIT warm-up (a no-op with a warm cache)
    points = probes[0][0].points()
    match_window(points, stacks[0], probes[0][1], SearchWindow(0.1, 0.1))
    match_branch_and_bound(points, stacks[0], probes[0][1], SearchWindow(0.5, 0.5), 0.5)
    return world, stacks[0], stacks[1], probes


def report_search(benchmark, points, grid, initial, window, min_score) -> None:
    """Record the candidates scored by one search (the kernel's count) next to the timing."""
    cells, bounds, _, _ = correlative._prepare(points, grid, initial, window)
    levels, width, flat = correlative._flat_search_space(grid.levels, cells, bounds)
    min_sum = math.ceil(min_score * correlative.SCALE * len(points) - 1e-6)
    n_scored = _kernels.branch_and_bound(levels, width, flat, bounds, min_sum)[4]
    full = cells.shape[0] * (bounds[1] - bounds[0] + 1) * (bounds[3] - bounds[2] + 1)
    benchmark.extra_info.update(
        points=len(points),
        rotations=int(cells.shape[0]),
        candidates=int(full),
        scored=int(n_scored),
    )


@pytest.mark.parametrize("beams", [180, 360])
def test_match_window_0p2m_15deg_400x400(benchmark, home, beams):
    """Front end: 0.2 m / 15 deg around a guess 7 cm and 6 deg off."""
    _, grid, _, probes = home
    scan, truth = probes[0]
    points = scan.points()[:: 360 // beams]
    initial = Pose(truth.x + 0.05, truth.y - 0.05, truth.theta + math.radians(6.0))
    window = SearchWindow(0.2, math.radians(15.0))
    found = benchmark(match_window, points, grid, initial, window)
    assert found.pose.distance_to(truth) <= 2 * RES
    benchmark.extra_info.update(points=len(points))


@pytest.mark.parametrize("probe", range(3))
def test_branch_and_bound_7m_180deg_400x400(benchmark, home, probe):
    """Loop closure / local relocalization: 7 m / 180 deg around a guess metres and 90+ deg off."""
    _, grid, _, probes = home
    scan, truth = probes[probe]
    points = scan.points()
    initial = Pose(truth.x + 2.5, truth.y - 1.5, truth.theta + 2.0)
    window = SearchWindow(7.0, math.pi)
    found = benchmark(match_branch_and_bound, points, grid, initial, window, 0.55)
    assert found is not None and found.pose.distance_to(truth) <= 2 * RES
    report_search(benchmark, points, grid, initial, window, 0.55)


@pytest.mark.parametrize("probe", range(3))
def test_branch_and_bound_whole_home_360deg_246x206(benchmark, home, probe):
    """Global relocalization: the whole home map, every heading, from a guess at its centre."""
    world, _, grid, probes = home
    scan, truth = probes[probe]
    points = scan.points()
    h, w = grid.shape
    initial = Pose(grid.origin[0] + w * RES / 2, grid.origin[1] + h * RES / 2, 0.0)
    window = SearchWindow(math.inf, math.pi)
    found = benchmark(match_branch_and_bound, points, grid, initial, window, 0.55)
    assert found is not None and found.pose.distance_to(truth) <= 2 * RES
    report_search(benchmark, points, grid, initial, window, 0.55)


def test_match_grid_from_grid_depth7_400x400(benchmark, home):
    """The precomputation: probabilities -> scores -> 7 max-filtered levels."""
    _, grid, _, _ = home
    prob = grid.scores()
    benchmark(MatchGrid.from_probability, prob, RES, grid.origin, 7)
