"""Global relocalization: the top-bins kernel against its twin, relocalization in the simulated
default home, refusals on bad input, and refusal (never a wrong pose) in a symmetric world."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import reference
from numba import config as numba_config

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps import OccupancyGrid, Pose, Scan, wrap_angle
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument
from navigation import _kernels
from navigation.localization import (
    LOCALIZED,
    REFUSED,
    SEARCHING,
    Localizer,
    Result,
    Tracker,
    relocalize,
)
from navigation.relocalize_bench import RIGHT_ANGLE, RIGHT_DISTANCE, map_from_world, run_trials
from navigation.slam.correlative import FLOOR, SCALE

FILL = round(FLOOR * SCALE)
needs_jit = pytest.mark.skipif(
    numba_config.DISABLE_JIT, reason="relocalizes in a simulated home: minutes without the JIT"
)


# ------------------------------------------------------------------ kernel against its twin
def random_search(rng: np.random.Generator):
    """A small max-filtered stack, points that stay inside it at every offset of a random
    window, and a random mask of allowed offsets (block-any levels)."""
    depth = int(rng.integers(1, 5))
    h, w = (int(v) for v in rng.integers(3, 14, size=2))
    values = rng.choice(np.array([FILL, FILL, 100, 150, 225], np.uint8), size=(h, w))
    levels = _kernels.block_max_levels(values, depth, 2 ** (depth - 1), FILL)
    _, hp, wp = levels.shape
    na, n = int(rng.integers(1, 8)), int(rng.integers(1, 16))
    sy, sx = int(rng.integers(0, min(9, hp))), int(rng.integers(0, min(9, wp)))
    ylo = -int(rng.integers(0, min(6, hp - 1 - sy) + 1))
    xlo = -int(rng.integers(0, min(6, wp - 1 - sx) + 1))
    bounds = np.array([ylo, ylo + sy, xlo, xlo + sx], dtype=np.int64)
    # each point's cell at offset 0 and at every offset of the window lies in the array
    rows = rng.integers(max(0, -ylo), min(hp, hp - ylo - sy), size=(na, n))
    cols = rng.integers(max(0, -xlo), min(wp, wp - xlo - sx), size=(na, n))
    flat = (rows * wp + cols).astype(np.int32)
    mask = rng.random((sy + 1, sx + 1)) < rng.choice([0.0, 0.3, 0.8, 1.0])
    allowed = _kernels.block_max_levels(mask.astype(np.uint8), depth, 0, 0).reshape(depth, -1)
    return levels.reshape(depth, hp * wp), wp, flat, bounds, allowed, n


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(40))
def test_branch_and_bound_top_bins_matches_reference(seed):
    rng = np.random.default_rng(seed)
    levels, wp, flat, bounds, allowed, n = random_search(rng)
    min_sum = int(rng.choice([0, FILL * n, 120 * n, 226 * n]))
    slack = int(rng.choice([0, 50, 200, 1 << 40]))
    k = int(rng.integers(0, 7))
    ba, by, bx = (int(v) for v in rng.integers(1, 4, size=3))
    args = (levels, wp, flat, bounds, allowed, min_sum, slack, k, ba, by, bx)
    out, n_found, n_scored = _kernels.branch_and_bound_top_bins(*args)
    slow, slow_found = reference.branch_and_bound_top_bins(*args)
    assert n_found == slow_found
    np.testing.assert_array_equal(out, slow)
    assert out.shape == (k, 4)
    if n_found:
        assert n_scored >= 1
        assert (np.diff(out[:n_found, 3]) <= 0).all()  # best first
        assert out[n_found - 1, 3] >= max(min_sum, out[0, 3] - slack)


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(12))
def test_top_bins_with_one_bin_is_the_branch_and_bound(seed):
    """k = 1, no slack, every offset allowed: the best candidate of `branch_and_bound`."""
    rng = np.random.default_rng(100 + seed)
    levels, wp, flat, bounds, allowed, n = random_search(rng)
    allowed = np.ones_like(allowed)
    min_sum = int(rng.choice([0, FILL * n, 120 * n]))
    out, n_found, _ = _kernels.branch_and_bound_top_bins(
        levels, wp, flat, bounds, allowed, min_sum, 1 << 40, 1, 1, 1, 1
    )
    a, iy, ix, total, _ = _kernels.branch_and_bound(levels, wp, flat, bounds, min_sum)
    if a < 0:
        assert n_found == 0
    else:
        assert n_found == 1
        assert tuple(out[0]) == (a, iy, ix, total)


# ------------------------------------------------------------------ worlds and helpers
def box_world(rooms: list[tuple[float, float]], gap: float = 1.0) -> World:
    """Closed identical rooms side by side (x from each given corner), 3 m x 4 m inside, walls
    0.15 m, an asymmetric feature in each (a 0.6 m x 0.4 m block in the same corner), outside
    everywhere else. Rooms listed by their inner lower-left corners (m)."""
    res = 0.05
    w, h = 20.0, 7.0
    walls = np.zeros((round(h / res), round(w / res)), bool)
    outside = np.ones_like(walls)

    def fill(mask, x0, y0, x1, y1, value=True):
        mask[round(y0 / res) : round(y1 / res), round(x0 / res) : round(x1 / res)] = value

    for x0, y0 in rooms:
        fill(walls, x0 - 0.15, y0 - 0.15, x0 + 3.15, y0 + 4.15)
        fill(walls, x0, y0, x0 + 3.0, y0 + 4.0, False)
        fill(outside, x0 - 0.15, y0 - 0.15, x0 + 3.15, y0 + 4.15, False)
        fill(walls, x0 + 2.4, y0 + 3.6, x0 + 3.0, y0 + 4.0)  # the feature, same place
    x0, y0 = rooms[0]
    return World("boxes", walls, np.zeros_like(walls), outside, res, (0.0, 0.0),
                 Pose(x0 + 1.0, y0 + 1.0, 0.0))  # fmt: skip


def still_scan(world: World, pose: Pose, seed: int = 0) -> tuple[Scan, Pose]:
    robot = SimulatedRobot(world, seed=seed, start=pose)
    robot.drive(0.0, 0.0, 0.25)
    return robot.scans()[0], robot.true_pose


def is_right(result: Result, truth: Pose) -> bool:
    p = result.pose
    return (
        p is not None
        and p.distance_to(truth) <= RIGHT_DISTANCE
        and abs(wrap_angle(p.theta - truth.theta)) <= RIGHT_ANGLE
    )


class StuckRobot:
    """A robot whose wheels spin in the air: time passes and scans come, nothing moves."""

    def __init__(self, inner: SimulatedRobot) -> None:
        self.inner = inner

    time = property(lambda self: self.inner.time)
    bumper_pressed = property(lambda self: False)

    def drive(self, v: float, w: float, dt: float) -> bool:
        return self.inner.drive(0.0, 0.0, dt)

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        return False

    def scans(self):
        return self.inner.scans()

    def odometry(self):
        return self.inner.odometry()


@pytest.fixture(scope="module")
def home():
    world = World.default()
    return world, Localizer(map_from_world(world))


# ------------------------------------------------------------------ relocalization works
@needs_jit
@pytest.mark.parametrize("seed", range(6))
def test_relocalizes_in_the_default_home_from_random_poses(home, seed):
    from navigation.relocalize_bench import drop_poses

    world, localizer = home
    start = drop_poses(world, 1, seed=seed)[0]
    robot = SimulatedRobot(world, seed=seed, start=start)
    result = relocalize(localizer, robot)
    assert result.status == LOCALIZED, result.reason
    assert is_right(result, robot.true_pose)
    # map_from_odom carries the current odometry into the map
    now = result.map_from_odom.compose(robot.odometry().pose)
    assert now.distance_to(robot.true_pose) <= RIGHT_DISTANCE
    assert 2 <= result.scans_used <= localizer.config.max_scans
    assert result.elapsed_ms > 0


@needs_jit
def test_whole_map_search_ranks_the_true_pose_first(home):
    world, localizer = home
    from navigation.relocalize_bench import drop_poses

    for k, pose in enumerate(drop_poses(world, 5, seed=11)):
        scan, truth = still_scan(world, pose, seed=k)
        found = localizer.search(localizer.observe(scan))
        assert found, "no hypothesis"
        assert found[0].pose.distance_to(truth) < RIGHT_DISTANCE
        assert found[0].through < 0.03
        # hypotheses are distinct and best first
        for i, a in enumerate(found):
            for b in found[i + 1 :]:
                far = a.pose.distance_to(b.pose) > localizer.config.separation
                turned = abs(wrap_angle(a.pose.theta - b.pose.theta))
                assert far or turned > localizer.config.separation_angle
        assert all(a.score >= b.score for a, b in zip(found, found[1:], strict=False))


@needs_jit
def test_session_api_steps_from_searching_to_a_decision(home):
    world, localizer = home
    robot = SimulatedRobot(world, seed=3, start=Pose(2.0, 2.0, 0.5))
    robot.drive(0.0, 0.0, 0.25)
    search = localizer.start(robot.scans()[0], robot.odometry())
    assert search.result.status == SEARCHING
    assert search.result.candidates
    for _ in range(localizer.config.max_scans):
        robot.drive(0.0, 1.0, 0.6)  # turn in place, then stand still for a whole scan
        robot.scans()
        robot.drive(0.0, 0.0, 0.45)
        result = search.update(robot.scans()[-1], robot.odometry())
        if result.status != SEARCHING:
            break
    assert result.status == LOCALIZED, result.reason
    assert is_right(result, robot.true_pose)
    assert search.update(robot.scans()[-1] if robot.scans() else None) is result


@needs_jit
def test_run_trials_reports_and_is_deterministic():
    world = World.default()
    seen = []
    first = run_trials(world, trials=3, seed=5, progress=lambda k, n, r: seen.append((k, n, r)))
    again = run_trials(world, trials=3, seed=5)
    assert [(k, n) for k, n, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(r["outcome"] in ("right", "wrong", "refused") for _, _, r in seen)
    for key in ("trials", "right", "wrong", "refused", "median_ms", "p99_ms", "median_scans"):
        assert key in first
    assert first["trials"] == 3
    assert first["right"] + first["wrong"] + first["refused"] == 3
    assert first["wrong"] == 0
    assert [f["start"] for f in first["failures"]] == [f["start"] for f in again["failures"]]
    assert (first["right"], first["refused"]) == (again["right"], again["refused"])


# ------------------------------------------------------------------ bad input: refused, no crash
def refused_start(localizer: Localizer, scan: Scan) -> Result:
    result = localizer.start(scan, Pose()).result
    assert result.status == REFUSED
    assert result.pose is None and result.map_from_odom is None
    return result


@pytest.fixture(scope="module")
def a_scan():
    world = World.default()
    return still_scan(world, world.start)[0]


def test_unknown_only_map_is_refused(a_scan):
    grid = OccupancyGrid(np.zeros((200, 200), np.float32), 0.05, (0.0, 0.0))
    localizer = Localizer(grid)
    assert localizer.problem is not None and "unknown" in localizer.problem
    assert "unknown" in refused_start(localizer, a_scan).reason


def test_map_without_walls_is_refused(a_scan):
    states = np.full((200, 200), FREE, np.int8)
    localizer = Localizer(MapDocument.from_cells(states, 0.05, (0.0, 0.0)).grid)
    assert "no walls" in refused_start(localizer, a_scan).reason
    empty = OccupancyGrid(np.zeros((0, 0), np.float32), 0.05, (0.0, 0.0))
    assert "empty" in refused_start(Localizer(empty), a_scan).reason
    assert "OccupancyGrid" in refused_start(Localizer(np.zeros((5, 5))), a_scan).reason


def test_map_of_another_resolution_is_refused(a_scan):
    world = World.default()
    grid = map_from_world(world)
    coarse = OccupancyGrid(grid.log_odds[::2, ::2].copy(), 0.1, grid.origin)
    localizer = Localizer(coarse, expected_resolution=0.05)
    reason = refused_start(localizer, a_scan).reason
    assert "resolution" in reason and "0.05" in reason
    odd = OccupancyGrid(grid.log_odds, 0.5, grid.origin)
    assert "resolution" in refused_start(Localizer(odd), a_scan).reason


@needs_jit
def test_map_scaled_wrong_is_never_a_wrong_pose():
    """A map whose cells are labelled 0.04 m but drawn at 0.05 m: nothing fits; refused."""
    world = World.default()
    grid = map_from_world(world)
    squeezed = OccupancyGrid(grid.log_odds, 0.04, grid.origin)
    localizer = Localizer(squeezed)
    for seed in range(3):
        robot = SimulatedRobot(world, seed=seed, start=Pose(2.0 + seed, 2.0, 0.3 * seed))
        result = relocalize(localizer, robot)
        assert result.status == REFUSED, result


def test_scan_with_almost_no_valid_beams_is_refused(home):
    _, localizer = home
    ranges = np.full(360, np.inf, np.float32)
    ranges[:5] = 2.0
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False).astype(np.float32)
    scan = Scan(ranges, angles, 0.0, 0.15, 6.0)
    reason = refused_start(localizer, scan).reason
    assert "valid beams" in reason
    nothing = Scan(np.full(360, np.inf, np.float32), angles, 0.0, 0.15, 6.0)
    assert "valid beams" in refused_start(localizer, nothing).reason


@needs_jit
def test_robot_that_cannot_move_is_refused(home):
    world, localizer = home
    robot = StuckRobot(SimulatedRobot(world, seed=1, start=Pose(2.0, 2.0, 0.0)))
    result = relocalize(localizer, robot)
    assert result.status == REFUSED
    assert "did not move" in result.reason


def test_wrong_argument_types_are_refused_not_raised(home, a_scan):
    _, localizer = home
    search = localizer.start(a_scan, Pose())
    result = search.update("not a scan", Pose())  # type: ignore[arg-type]
    assert result.status == REFUSED and "Scan" in result.reason


# ------------------------------------------------------------------ symmetry: refuse, never guess
@needs_jit
@pytest.mark.parametrize("seed", range(3))
def test_identical_closed_rooms_are_refused_not_guessed(seed):
    world = box_world([(1.0, 1.0), (8.0, 1.0)])
    localizer = Localizer(map_from_world(world))
    rng = np.random.default_rng(seed)
    start = Pose(1.0 + rng.uniform(0.6, 2.4), 1.0 + rng.uniform(0.6, 3.0), rng.uniform(-3, 3))
    # both rooms are found by the whole-map search
    scan, truth = still_scan(world, start, seed)
    found = localizer.search(localizer.observe(scan))
    twins = [h for h in found if h.pose.distance_to(truth) < 0.1 or
             h.pose.distance_to(Pose(truth.x + 7.0, truth.y)) < 0.1]  # fmt: skip
    assert len(twins) == 2
    robot = SimulatedRobot(world, seed=seed, start=start)
    result = relocalize(localizer, robot)
    assert result.status == REFUSED
    assert "ambiguous" in result.reason


def twin_rooms_world() -> World:
    """Two rooms as in `box_world` (3 m x 4 m, the same feature in the same corner), each with
    a 0.8 m door in the lower left of its bottom wall to a small hall, whose own door to a
    corridor below is offset: from inside a room nothing tells the twins apart. The corridor
    runs 2.5 m past the right room but only 0.5 m past the left one; the dock is in it."""
    res = 0.05
    walls = np.zeros((round(8.5 / res), round(15.0 / res)), bool)
    outside = np.ones_like(walls)

    def fill(mask, x0, y0, x1, y1, value=True):
        mask[round(y0 / res) : round(y1 / res), round(x0 / res) : round(x1 / res)] = value

    fill(walls, 0.35, 0.35, 13.65, 1.85)  # the corridor's walls and its floor
    fill(walls, 0.5, 0.5, 13.5, 1.7, False)
    fill(outside, 0.35, 0.35, 13.65, 1.85, False)
    for x0, y0 in ((1.0, 3.0), (8.0, 3.0)):
        fill(walls, x0 - 0.15, y0 - 0.15, x0 + 3.15, y0 + 4.15)
        fill(walls, x0, y0, x0 + 3.0, y0 + 4.0, False)
        fill(outside, x0 - 0.15, y0 - 0.15, x0 + 3.15, y0 + 4.15, False)
        fill(walls, x0 + 2.4, y0 + 3.6, x0 + 3.0, y0 + 4.0)  # the feature
        fill(walls, x0 - 0.1, 1.7, x0 + 2.15, y0 - 0.15)  # the hall's walls and floor
        fill(walls, x0 + 0.05, 1.85, x0 + 2.0, y0 - 0.15, False)
        fill(outside, x0 - 0.1, 1.7, x0 + 2.15, y0 - 0.15, False)
        fill(walls, x0 + 0.1, y0 - 0.15, x0 + 0.9, y0, False)  # room to hall
        fill(walls, x0 + 1.15, 1.7, x0 + 1.95, 1.85, False)  # hall to corridor
    return World("twin rooms", walls, np.zeros_like(walls), outside, res, (0.0, 0.0),
                 Pose(1.5, 1.1, 0.0))  # fmt: skip


@needs_jit
@pytest.mark.parametrize("seed", range(3))
def test_twin_rooms_are_told_apart_by_walking_out_of_them(seed):
    """Inside either twin room the scans fit both alike; the robot must walk out through the
    hall to where the corridor tells them apart (no one short move shows a difference)."""
    world = twin_rooms_world()
    localizer = Localizer(map_from_world(world))
    rng = np.random.default_rng(seed)
    x0 = (1.0, 8.0)[seed % 2]
    start = Pose(x0 + rng.uniform(1.6, 2.4), rng.uniform(4.8, 6.0), rng.uniform(-3, 3))
    robot = SimulatedRobot(world, seed=seed, start=start)
    result = relocalize(localizer, robot)
    assert result.status == LOCALIZED, result.reason
    assert is_right(result, robot.true_pose)
    assert robot.true_pose.y < 3.0  # it left the room


@needs_jit
def test_one_room_of_the_pair_is_found_when_the_other_is_not_in_the_map():
    """The same rooms, but the map holds only one: the robot is localized there."""
    world = box_world([(1.0, 1.0)])
    localizer = Localizer(map_from_world(world))
    robot = SimulatedRobot(world, seed=2, start=Pose(2.0, 2.5, 1.0))
    result = relocalize(localizer, robot)
    assert result.status == LOCALIZED, result.reason
    assert is_right(result, robot.true_pose)


def furnished_twin_world() -> World:
    """`box_world` with two rooms, the second furnished (a bed, a wardrobe, a sofa, two
    stools): the furniture a robot's own map would hold, had it explored that room."""
    world = box_world([(1.0, 1.0), (8.0, 1.0)])
    walls = world.walls.copy()
    for x0, y0, x1, y1 in [
        (8.0, 1.0, 9.0, 1.6),
        (10.4, 2.0, 11.0, 3.2),
        (8.0, 4.3, 9.2, 5.0),
        (9.6, 3.4, 9.9, 3.7),
        (8.3, 3.0, 8.5, 3.2),
    ]:
        walls[round(y0 / 0.05) : round(y1 / 0.05), round(x0 / 0.05) : round(x1 / 0.05)] = True
    return dataclasses.replace(world, walls=walls)


@needs_jit
@pytest.mark.parametrize("seed", [1, 3, 5])
def test_own_map_refuses_a_weak_fit_on_floor_it_does_not_hold(seed):
    """The robot's own map holds the first room only (it never explored the second). Dropped
    in the furnished second room, its scans fit the empty first one weakly: a plan-like map
    (own_map False) may take that for the first room with clutter added; its own map, which
    would hold any furniture there, must not."""
    grid = map_from_world(box_world([(1.0, 1.0)]))
    rng = np.random.default_rng(seed)
    start = Pose(9.3 + rng.uniform(0, 0.7), 2.0 + rng.uniform(0.4, 1.0), rng.uniform(-3, 3))
    robot = SimulatedRobot(furnished_twin_world(), seed=seed, start=start)
    result = relocalize(Localizer(grid, own_map=True), robot)
    assert result.status == REFUSED
    assert "own map" in result.reason


@needs_jit
def test_own_map_still_localizes_where_it_fits_well():
    world = box_world([(1.0, 1.0)])
    localizer = Localizer(map_from_world(world), own_map=True)
    robot = SimulatedRobot(world, seed=2, start=Pose(2.0, 2.5, 1.0))
    result = relocalize(localizer, robot)
    assert result.status == LOCALIZED, result.reason
    assert is_right(result, robot.true_pose)


def test_map_states_are_what_the_harness_builds():
    world = World.default()
    states = MapDocument(map_from_world(world)).cell_states()
    assert (states[world.walls] == OCCUPIED).all()
    assert (states[world.outside] == UNKNOWN).all()
    assert (states[world.invisible] == FREE).all()


# ------------------------------------------------------------------ tracking after relocalization
def drive_and_feed(robot: SimulatedRobot, tracker: Tracker, moves, errors: list[float]) -> None:
    """Drive (v, w, seconds) moves in 0.2 s steps; feed every scan with the odometry of its
    time (interpolated) and record the tracked pose's error against the truth at that time."""
    times = [robot.time]
    odom = [robot.odometry().pose.as_array()]
    truth = [robot.true_pose.as_array()]

    def at(series, t):
        k = min(max(int(np.searchsorted(times, t)), 1), len(times) - 1)
        t0, t1 = times[k - 1], times[k]
        f = 0.0 if t1 <= t0 else min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        a, b = series[k - 1], series[k]
        return Pose(
            a[0] + f * (b[0] - a[0]),
            a[1] + f * (b[1] - a[1]),
            a[2] + f * wrap_angle(b[2] - a[2]),
        )

    for v, w, seconds in moves:
        for _ in range(round(seconds / 0.2)):
            robot.drive(v, w, 0.2)
            times.append(robot.time)
            odom.append(robot.odometry().pose.as_array())
            truth.append(robot.true_pose.as_array())
            for scan in robot.scans():
                step = tracker.update(scan, at(odom, scan.stamp))
                if not step.lost:
                    errors.append(step.pose.distance_to(at(truth, scan.stamp)))


@needs_jit
def test_tracking_follows_the_robot_after_relocalization(home):
    world, localizer = home
    robot = SimulatedRobot(world, seed=4, start=Pose(2.5, 2.0, 0.0))
    result = relocalize(localizer, robot)
    assert result.status == LOCALIZED, result.reason
    tracker = Tracker(localizer, result.map_from_odom)
    errors: list[float] = []
    moves = [(0.0, 1.0, 1.6), (0.2, 0.0, 3.0), (0.0, -1.0, 1.6), (0.2, 0.2, 4.0)]
    drive_and_feed(robot, tracker, moves, errors)
    assert not tracker.lost
    assert len(errors) >= 40
    assert float(np.median(errors)) < 0.05 and max(errors) < 0.15


@needs_jit
def test_tracking_is_lost_from_a_wrong_pose(home):
    world, localizer = home
    robot = SimulatedRobot(world, seed=5, start=Pose(2.5, 2.0, 0.0))
    # the robot believes it is 2.5 m and 90 deg away from where it is
    tracker = Tracker(localizer, Pose(6.0, 6.5, math.pi / 2))
    drive_and_feed(robot, tracker, [(0.0, 0.5, 2.0)], [])
    assert tracker.lost
    assert "in a row" in tracker.last.reason


@needs_jit
def test_kidnapped_while_tracking_is_lost_then_found_again(home):
    world, localizer = home
    robot = SimulatedRobot(world, seed=6, start=Pose(2.5, 2.0, 0.0))
    result = relocalize(localizer, robot)
    assert result.status == LOCALIZED, result.reason
    tracker = Tracker(localizer, result.map_from_odom)
    drive_and_feed(robot, tracker, [(0.2, 0.0, 2.0)], [])
    assert not tracker.lost
    # carried to the kitchen and switched on again: odometry restarts, the old frame is wrong
    carried = SimulatedRobot(world, seed=7, start=Pose(8.5, 3.0, 2.0))
    drive_and_feed(carried, tracker, [(0.0, 0.5, 2.0)], [])
    assert tracker.lost, "tracking went on in the wrong place"
    again = relocalize(localizer, carried)
    assert again.status == LOCALIZED, again.reason
    assert is_right(again, carried.true_pose)


@needs_jit
def test_run_trials_takes_the_map_from_a_world_a_grid_or_a_plan(tmp_path):
    import cv2

    world = box_world([(1.0, 1.0)])
    png = tmp_path / "plan.png"
    grey = np.where(world.walls, 0, np.where(world.outside, 205, 255)).astype(np.uint8)
    cv2.imwrite(str(png), grey[::-1])  # PNG row 0 is the top
    reports = [
        run_trials(world, source, trials=2, seed=1)
        for source in (None, world, map_from_world(world), png, str(png))
    ]
    for report in reports:
        assert report["trials"] == 2 and report["wrong"] == 0
        assert report["right"] == reports[0]["right"]


@needs_jit
def test_run_trials_in_the_map_the_robot_rebuilt():
    """`SLAM` as map source: the robot explores the world from its dock first, and the trials
    relocalize in that map; the truth is judged in the map's frame (the dock at its origin)."""
    from navigation.relocalize_bench import SLAM

    world = box_world([(1.0, 1.0)])
    report = run_trials(world, SLAM, trials=3, seed=2)
    assert report["explore"]["stop"] == "no reachable frontier"
    assert report["trials"] == 3 and report["wrong"] == 0
    assert report["right"] >= 2, report["failures"]
    assert report["refused_unmapped"] == 0 and report["refused_sealed"] == 0
    assert report["wrong_on_map"] == 0 and report["right_on_map"] >= 2


@needs_jit
def test_refusals_in_rooms_the_robot_cannot_leave_are_counted():
    """Two closed twin rooms, the dock in the first: a drop in the second is sealed off (the
    body cannot leave it), and any refusal there is counted as such."""
    world = box_world([(1.0, 1.0), (8.0, 1.0)])
    report = run_trials(world, trials=4, seed=3)
    assert report["wrong"] == 0
    sealed = [f for f in report["failures"] if f["start"][0] > 5.0]
    assert report["refused_sealed"] == len(sealed) >= 1
    assert all(f["sealed"] for f in sealed)
    assert report["refused_unmapped"] == 0


@needs_jit
def test_a_speck_the_scans_left_unsure_is_floor_to_stand_on():
    """A map SLAM built has spots in the middle of a room that its scans crossed too seldom
    (neither free nor occupied). A robot standing on one, its pose right, is located there,
    not told it cannot stand there (which lost the tracking of home_00922f91 at seed 2 again
    and again on one spot); an unsure blob against a wall, or a large one, is not floor."""
    world = World.default()
    grid = map_from_world(world)
    truth = Pose(2.5, 2.0, 0.7)
    i, j = grid.world_to_cell(np.array([[truth.x, truth.y]]))[0]
    lo = grid.log_odds.copy()
    lo[i, j - 1 : j + 1] = 0.0  # two unsure cells under the robot
    lo[i + 8 : i + 30, j + 8 : j + 30] = 0.0  # a large unsure patch
    localizer = Localizer(OccupancyGrid(lo, grid.resolution, grid.origin, grid.config))
    assert localizer.on_free_floor(truth)
    assert not localizer.on_free_floor(Pose(truth.x + 0.9, truth.y + 0.9, 0.0))
    robot = SimulatedRobot(world, seed=1, start=truth)
    robot.drive(0.0, 0.0, 0.6)
    found = localizer.locate(localizer.observe(robot.scans()[-1]), truth)
    assert found.pose.distance_to(truth) < 0.05
    assert found.score > 0.5 and found.through < 0.05
    # the same cells against a wall's face are the edge of something: no floor
    wall = np.argwhere(world.walls & np.roll(world.free, 1, axis=0))[0]  # free cell below
    lo = grid.log_odds.copy()
    lo[wall[0] - 1, wall[1]] = 0.0
    edge = Localizer(OccupancyGrid(lo, grid.resolution, grid.origin, grid.config))
    assert not edge.free[wall[0] - 1, wall[1]] and not edge.walkable(0.0)[wall[0] - 1, wall[1]]
