import math

import numpy as np
import pytest

from maps import Pose
from navigation.coverage import (
    CoverageConfig,
    body_cells,
    coverage_ratio,
    reachable_floor,
    swept_area,
)

RES = 0.05


def two_rooms(door_m: float) -> np.ndarray:
    """A 4 m x 2 m room and a 2 m x 2 m room side by side, joined by a door `door_m` wide."""
    free = np.zeros((50, 130), bool)  # 2.5 m x 6.5 m with a wall border
    free[5:45, 5:85] = True  # room A: x 0.25-4.25, y 0.25-2.25
    free[5:45, 88:128] = True  # room B beyond a 0.15 m wall
    half = int(round(door_m / RES / 2))
    free[25 - half : 25 + half, 85:88] = True
    return free


def test_swept_area_of_a_straight_pass_matches_brush_geometry():
    traj = np.array([[1.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    swept = swept_area(traj, (40, 80), RES, (0.0, 0.0), 0.25)
    area = swept.sum() * RES**2
    expected = 2.0 * 0.25 + math.pi * 0.125**2
    assert area == pytest.approx(expected, rel=0.1)
    rows = np.nonzero(swept.any(axis=1))[0]
    assert (rows.max() - rows.min() + 1) * RES == pytest.approx(0.25, abs=0.051)


def test_closed_door_room_is_not_part_of_the_reachable_floor():
    narrow = reachable_floor(two_rooms(0.30), RES, (0, 0), Pose(1.0, 1.25, 0))
    wide = reachable_floor(two_rooms(0.80), RES, (0, 0), Pose(1.0, 1.25, 0))
    assert narrow[:, 88:].sum() == 0  # a 0.30 m door does not let a 0.34 m robot through
    assert wide[:, 88:].sum() > 0.8 * 40 * 40
    # room A: 4 m x 2 m less a band of (radius - half brush) = 0.045 m along the walls
    assert narrow.sum() * RES**2 == pytest.approx(8.0, rel=0.08)


def test_a_lawnmower_path_covers_the_reachable_floor():
    free = two_rooms(0.30)
    cfg = CoverageConfig()
    floor = reachable_floor(free, RES, (0, 0), Pose(1.0, 1.25, 0), cfg)
    ys = np.arange(0.25 + cfg.robot_radius, 2.25 - cfg.robot_radius + 1e-9, 0.2)
    ys = np.append(ys, 2.25 - cfg.robot_radius)
    pts = []
    for k, y in enumerate(ys):
        xs = (0.25 + cfg.robot_radius, 4.25 - cfg.robot_radius)
        for x in xs if k % 2 == 0 else xs[::-1]:
            pts.append((x, y, 0.0))
    cleaned = swept_area(np.array(pts), free.shape, RES, (0, 0), cfg.clean_width)
    assert coverage_ratio(cleaned, floor) > 0.97
    # half the lanes: about half the floor
    half = swept_area(np.array(pts[: len(pts) // 2]), free.shape, RES, (0, 0), cfg.clean_width)
    assert 0.35 < coverage_ratio(half, floor) < 0.65


def test_coverage_ratio_of_empty_floor_is_zero():
    assert coverage_ratio(np.ones((3, 3), bool), np.zeros((3, 3), bool)) == 0.0


def test_a_robot_that_never_moves_still_cleans_under_its_brush():
    swept = swept_area(np.array([[1.0, 1.0, 0.0]]), (40, 40), RES, (0.0, 0.0), 0.25)
    assert swept.sum() * RES**2 == pytest.approx(math.pi * 0.125**2, rel=0.25)


def test_body_cells_are_the_cells_the_round_body_overlaps(rng):
    """Cell by cell: a cell is marked iff the nearest point of its square lies within the
    radius of one of the centres; centres off the grid mark only the cells on it."""
    origin = (-0.3, 0.2)
    pts = np.column_stack((rng.uniform(-0.5, 2.0, 12), rng.uniform(0.0, 1.8, 12)))
    got = body_cells(pts, (30, 40), RES, origin, 0.17)
    ii, jj = np.mgrid[0:30, 0:40]
    x0, y0 = origin[0] + jj * RES, origin[1] + ii * RES  # lower-left corners
    want = np.zeros((30, 40), bool)
    for px, py in pts:
        dx = np.maximum(np.maximum(x0 - px, px - (x0 + RES)), 0.0)
        dy = np.maximum(np.maximum(y0 - py, py - (y0 + RES)), 0.0)
        want |= np.hypot(dx, dy) < 0.17
    assert want.any() and np.array_equal(got, want)
    assert not body_cells(np.zeros((0, 2)), (5, 5), RES, origin, 0.17).any()
