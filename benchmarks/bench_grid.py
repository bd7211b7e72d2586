"""Ray integration speed: one 360-beam scan into a 400 x 400 grid (target: median <= 0.2 ms)."""

import numpy as np
import pytest

from maps import OccupancyGrid, Pose, Scan, _kernels


def room_scan(seed=0):
    rng = np.random.default_rng(seed)
    angles = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    ranges = rng.uniform(1.0, 6.0, 360).astype(np.float32)  # walls 1-6 m away, like a home
    ranges[rng.random(360) < 0.05] = np.inf
    return Scan(ranges, angles, 0.0, 0.15, 6.0)


@pytest.fixture
def grid_and_scan():
    grid = OccupancyGrid.centred(0.0, 0.0, 20.0)  # 400 x 400 at 0.05 m
    scan = room_scan()
    grid.integrate(Pose(), scan)  # JIT warm-up
    return grid, scan


def test_integrate_scan_360rays_400x400(benchmark, grid_and_scan):
    grid, scan = grid_and_scan
    benchmark(grid.integrate, Pose(0.1, 0.2, 0.3), scan)
    assert grid.shape == (400, 400)


def test_integrate_rays_kernel_360rays_400x400(benchmark, grid_and_scan):
    grid, scan = grid_and_scan
    r = np.where(np.isfinite(scan.ranges), scan.ranges, 3.0)
    ends = np.column_stack((r * np.cos(scan.angles), r * np.sin(scan.angles)))
    end_ij = grid.world_to_cell(ends)
    start = grid.world_to_cell(np.zeros((1, 2)))[0]
    hit = np.isfinite(scan.ranges)
    args = (np.float32(-0.4), np.float32(0.85), np.float32(-2.0), np.float32(3.5))
    benchmark(_kernels.integrate_rays, grid.log_odds, start, end_ij, hit, *args)
