"""SimulatedRobot: physics, bumper, LDS, odometry, goto, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_bridge.robot import Robot
from firmware_bridge.simulated import Bump, SimConfig, SimulatedRobot
from firmware_bridge.world import World
from maps import Pose, wrap_angle

RES = 0.05
BOX_START = Pose(1.0, 1.5, 0.0)


def box_world(
    width: float = 4.0,
    height: float = 3.0,
    invisible: tuple[tuple[float, float, float, float], ...] = (),
    walls: tuple[tuple[float, float, float, float], ...] = (),
    start: Pose = BOX_START,
) -> World:
    """An empty room whose floor is exactly [0, width] x [0, height] (metres), inside a ring of
    one-cell walls. `invisible` and `walls` are extra (x0, y0, x1, y1) rectangles."""
    h, w = round(height / RES) + 2, round(width / RES) + 2
    origin = (-RES, -RES)
    solid = np.ones((h, w), bool)
    solid[1:-1, 1:-1] = False
    hidden = np.zeros((h, w), bool)

    def cells(rect):
        x0, y0, x1, y1 = rect
        rows = slice(round((y0 - origin[1]) / RES), round((y1 - origin[1]) / RES))
        cols = slice(round((x0 - origin[0]) / RES), round((x1 - origin[0]) / RES))
        return rows, cols

    for rect in invisible:
        hidden[cells(rect)] = True
    for rect in walls:
        solid[cells(rect)] = True
    return World("box", solid, hidden, np.zeros((h, w), bool), RES, origin, start)


def box_distance(x: float, y: float, angle: np.ndarray, width: float, height: float) -> np.ndarray:
    """Distance from (x, y) inside [0, width] x [0, height] to the box edge along `angle`."""
    c, s = np.cos(angle), np.sin(angle)
    with np.errstate(divide="ignore"):
        tx = np.where(c > 0, (width - x) / c, np.where(c < 0, -x / c, np.inf))
        ty = np.where(s > 0, (height - y) / s, np.where(s < 0, -y / s, np.inf))
    return np.minimum(tx, ty)


def noise_sigma(r: np.ndarray, cfg: SimConfig) -> np.ndarray:
    return cfg.range_noise + cfg.range_noise_frac * r


# ---------------------------------------------------------------- protocol and arguments


def test_is_a_robot():
    robot = SimulatedRobot(box_world())
    assert isinstance(robot, Robot)
    assert robot.time == 0.0
    assert robot.true_pose == Pose(1.0, 1.5, 0.0)
    assert robot.odometry().pose == Pose()
    assert robot.bumps == [] and not robot.bumper_pressed
    assert robot.scans() == []


def test_bad_arguments():
    robot = SimulatedRobot(box_world())
    with pytest.raises(ValueError, match="v must be finite"):
        robot.drive(float("nan"), 0.0, 1.0)
    with pytest.raises(ValueError, match="dt must be >= 0"):
        robot.drive(0.1, 0.0, -1.0)
    with pytest.raises(ValueError, match="timeout"):
        robot.goto(1.0, 1.0, timeout=-1.0)
    with pytest.raises(ValueError, match="room for"):
        SimulatedRobot(box_world(), start=Pose(0.1, 1.5, 0.0))  # overlaps the wall at x = 0
    with pytest.raises(ValueError, match="radius"):
        SimConfig(radius=0.0)
    with pytest.raises(ValueError, match="dropout"):
        SimConfig(dropout=1.0)


def test_velocities_are_clamped():
    robot = SimulatedRobot(box_world(), config=SimConfig(max_v=0.3))
    robot.drive(5.0, 0.0, 1.0)
    assert robot.true_pose.x == pytest.approx(1.3)


# ---------------------------------------------------------------- physics and bumper


def test_drive_into_wall_stops_at_radius_with_one_bump():
    robot = SimulatedRobot(box_world())
    r = robot.config.radius
    assert robot.drive(0.3, 0.0, 20.0) is True
    assert robot.bumper_pressed
    pose = robot.true_pose
    assert pose.x == pytest.approx(4.0 - r, abs=1e-3)
    assert pose.x <= 4.0 - r
    assert pose.y == pytest.approx(1.5) and pose.theta == 0.0
    # the command ended at contact (plus the bumper reaction), not after 20 s
    assert robot.time == pytest.approx((4.0 - r - 1.0) / 0.3 + robot.config.bump_reaction, abs=0.02)
    (bump,) = robot.bumps
    assert isinstance(bump, Bump)
    assert bump.x == pytest.approx(4.0, abs=1e-3) and bump.y == pytest.approx(1.5, abs=1e-3)
    assert not bump.invisible
    assert bump.stamp == pytest.approx((4.0 - r - 1.0) / 0.3, abs=0.02)

    # pushing on: still pressed, the body does not move, the same contact (no new bump)
    assert robot.drive(0.3, 0.0, 1.0)
    assert robot.true_pose.x == pytest.approx(pose.x, abs=1e-9)
    assert len(robot.bumps) == 1
    # turning in place against the wall is allowed
    assert robot.drive(0.0, 1.0, 0.5) is False
    assert not robot.bumper_pressed
    assert robot.true_pose.theta == pytest.approx(0.5)
    assert robot.drive(0.0, -1.0, 0.5) is False
    # backing away releases the bumper; driving in again is a new bump
    assert robot.drive(-0.2, 0.0, 0.5) is False
    assert robot.true_pose.x == pytest.approx(pose.x - 0.1, abs=1e-6)
    assert robot.drive(0.3, 0.0, 5.0)
    assert len(robot.bumps) == 2


def test_wheels_slip_on_contact():
    robot = SimulatedRobot(box_world(), seed=3)
    robot.drive(0.3, 0.0, 20.0)
    before_true = robot.true_pose
    before_odom = robot.odometry().pose
    for _ in range(5):
        robot.drive(0.3, 0.0, 0.2)
    assert robot.true_pose == before_true
    # the odometry believes the robot went on
    assert robot.odometry().pose.x - before_odom.x > 0.03


def test_bump_on_corner_while_driving_along_a_wall():
    # drive along the bottom wall (close to it, never touching), into the right wall
    robot = SimulatedRobot(box_world(start=Pose(1.0, 0.171, 0.0)))
    assert robot.drive(0.3, 0.0, 20.0)
    (bump,) = robot.bumps
    assert bump.x == pytest.approx(4.0, abs=1e-3)
    assert bump.y == pytest.approx(0.171, abs=1e-3)  # straight ahead, not the wall beside


def test_driving_backwards_bumps_behind():
    robot = SimulatedRobot(box_world())
    assert robot.drive(-0.3, 0.0, 10.0)
    assert robot.true_pose.x == pytest.approx(0.17, abs=1e-3)
    assert robot.bumps[0].x == pytest.approx(0.0, abs=1e-3)


def test_invisible_obstacle_is_bumped_but_not_seen():
    world = box_world(invisible=((2.5, 1.0, 2.7, 2.0),))
    robot = SimulatedRobot(world, seed=1)
    robot.drive(0.0, 0.0, 1.0)
    ahead = np.array([s.ranges[0] for s in robot.scans()])
    ahead = ahead[np.isfinite(ahead)]
    assert ahead.size >= 3
    np.testing.assert_allclose(ahead, 3.0, atol=0.1)  # the far wall, 3 m away; not 1.5 m
    assert robot.drive(0.3, 0.0, 20.0)
    assert robot.true_pose.x == pytest.approx(2.5 - 0.17, abs=1e-3)
    (bump,) = robot.bumps
    assert bump.invisible
    assert bump.x == pytest.approx(2.5, abs=1e-3) and bump.y == pytest.approx(1.5, abs=1e-3)


def test_robot_passes_between_table_legs_only_where_there_is_room():
    # two legs 0.5 m apart (the robot is 0.34 m wide) and two legs 0.25 m apart
    legs = (
        (2.0, 0.75, 2.05, 0.8),
        (2.0, 1.25, 2.05, 1.3),
        (2.0, 2.0, 2.05, 2.05),
        (2.0, 2.3, 2.05, 2.35),
    )
    world = box_world(walls=legs)
    wide = SimulatedRobot(world, start=Pose(1.0, 1.025, 0.0))
    assert not wide.drive(0.3, 0.0, 6.0)
    assert wide.true_pose.x > 2.5
    narrow = SimulatedRobot(world, start=Pose(1.0, 2.175, 0.0))
    assert narrow.drive(0.3, 0.0, 6.0)
    assert narrow.true_pose.x < 2.0


# ---------------------------------------------------------------- LDS


def test_scan_rate_and_layout():
    robot = SimulatedRobot(box_world())
    for _ in range(200):
        robot.drive(0.0, 0.0, 0.05)
    scans = robot.scans()
    assert len(scans) == 50  # 5 Hz over 10 s
    assert robot.scans() == []
    np.testing.assert_allclose([s.stamp for s in scans], np.arange(50) * 0.2, atol=1e-9)
    for s in scans:
        assert len(s) == 360
        assert s.ranges.dtype == np.float32
        assert s.range_min == 0.15 and s.range_max == 6.0
    angles = scans[0].angles.astype(np.float64)
    assert angles[0] == 0.0
    np.testing.assert_allclose(np.diff(np.unwrap(angles)), np.radians(1.0), atol=1e-6)


def test_static_ranges_match_truth_within_noise():
    cfg = SimConfig()
    robot = SimulatedRobot(box_world(start=Pose(1.3, 1.1, 0.4)), seed=2, config=cfg)
    robot.drive(0.0, 0.0, 4.0)
    scans = robot.scans()
    assert len(scans) == 20
    truth = box_distance(1.3, 1.1, 0.4 + scans[0].angles.astype(np.float64), 4.0, 3.0)
    ranges = np.array([s.ranges for s in scans], dtype=np.float64)
    finite = np.isfinite(ranges)
    z = (ranges - truth)[finite] / noise_sigma(np.broadcast_to(truth, ranges.shape)[finite], cfg)
    assert abs(z.mean()) < 0.1
    assert 0.9 < z.std() < 1.1
    assert np.abs(z).max() < 5.5


def test_dropouts_at_the_configured_rate():
    cfg = SimConfig(dropout=0.02)
    robot = SimulatedRobot(box_world(), seed=4, config=cfg)  # every beam hits a wall within 5 m
    robot.drive(0.0, 0.0, 20.0)
    ranges = np.array([s.ranges for s in robot.scans()])
    rate = np.isinf(ranges).mean()
    assert ranges.size == 100 * 360
    assert 0.017 < rate < 0.023


def test_ranges_beyond_range_max_are_no_return():
    robot = SimulatedRobot(box_world(width=9.0, start=Pose(1.0, 1.5, 0.0)), seed=5)
    robot.drive(0.0, 0.0, 1.0)
    ahead = [s.ranges[0] for s in robot.scans()]  # 8 m to the far wall
    assert np.isinf(ahead).all()
    behind = np.array([s.ranges[180] for s in robot.scans()])
    assert behind.size == 0  # drained


def test_scan_is_taken_while_moving():
    # beam k is measured at stamp + k / 1800 s from the pose at that time; no de-skew
    cfg = SimConfig(dropout=0.0)
    robot = SimulatedRobot(box_world(start=Pose(0.5, 1.5, 0.0)), seed=6, config=cfg)
    robot.drive(0.3, 0.0, 2.0)
    scans = robot.scans()
    assert len(scans) == 10
    for s in scans:
        x_front = 0.5 + 0.3 * s.stamp  # beam 0 (ahead) at the revolution start
        x_back = 0.5 + 0.3 * (s.stamp + 0.1)  # beam 180 (behind) half a revolution later
        assert s.ranges[0] == pytest.approx(4.0 - x_front, abs=5 * noise_sigma(4.0, cfg))
        assert s.ranges[180] == pytest.approx(x_back, abs=5 * noise_sigma(x_back, cfg))
    # the skew is measurable: over a revolution the robot moves 6 cm
    front = np.array([s.ranges[0] - (4.0 - 0.5 - 0.3 * s.stamp) for s in scans])
    back = np.array([s.ranges[180] - (0.5 + 0.3 * s.stamp) for s in scans])
    assert back.mean() - front.mean() == pytest.approx(0.03, abs=0.01)


def test_lidar_offset_is_reported_in_the_scan():
    cfg = SimConfig(lidar_offset=-0.05, dropout=0.0)
    robot = SimulatedRobot(box_world(), seed=7, config=cfg)
    robot.drive(0.0, 0.0, 0.2)
    (scan,) = robot.scans()
    assert scan.sensor == Pose(-0.05, 0.0, 0.0)
    assert scan.ranges[0] == pytest.approx(3.05, abs=0.05)
    assert scan.ranges[180] == pytest.approx(0.95, abs=0.05)


# ---------------------------------------------------------------- odometry


@pytest.mark.parametrize("seed", range(4))
def test_odometry_is_right_over_a_short_drive(seed):
    robot = SimulatedRobot(box_world(width=6.0), seed=seed)
    robot.drive(0.25, 0.0, 4.0)  # 1 m straight
    assert robot.true_pose.x == pytest.approx(2.0)
    odo = robot.odometry()
    assert math.hypot(odo.pose.x, odo.pose.y) == pytest.approx(1.0, rel=0.03)
    assert abs(odo.pose.theta) < math.radians(2)
    assert odo.stamp == robot.time
    assert odo.v == pytest.approx(0.25, rel=0.1)


@pytest.mark.parametrize("seed", range(4))
def test_dead_reckoning_drifts_over_minutes(seed):
    start = Pose(2.0, 1.5, 0.0)
    robot = SimulatedRobot(box_world(start=start), seed=seed)
    rng = np.random.default_rng(100 + seed)
    early = None
    while robot.time < 300.0:  # bump-and-turn for 5 minutes
        if robot.drive(0.25, 0.0, 0.1):
            robot.drive(-0.25, 0.0, 0.2)
            robot.drive(0.0, float(rng.choice([-1.2, 1.2])), float(rng.uniform(1.0, 3.0)) / 1.2)
        if early is None and robot.time > 10.0:
            early = start.between(robot.true_pose), robot.odometry().pose
    assert len(robot.bumps) > 20
    # after 10 s (a bump or two) the dead reckoning is still close ...
    assert early[1].distance_to(early[0]) < 0.1
    # ... after 5 minutes it is visibly wrong
    truth = start.between(robot.true_pose)  # the truth in the odometry frame
    odo = robot.odometry().pose
    position_error = odo.distance_to(truth)
    heading_error = abs(math.degrees(float(wrap_angle(odo.theta - truth.theta))))
    assert position_error > 0.2 or heading_error > 5.0


# ---------------------------------------------------------------- goto


def test_goto_reaches_a_reachable_waypoint():
    start = Pose(1.0, 1.0, 0.3)
    robot = SimulatedRobot(box_world(width=6.0, height=4.0, start=start), seed=8)
    target = start.between(Pose(4.0, 3.0, 0.0))  # world (4, 3) in the odometry frame
    assert robot.goto(target.x, target.y) is True
    assert not robot.bumper_pressed and robot.bumps == []
    odo = robot.odometry().pose
    assert math.hypot(odo.x - target.x, odo.y - target.y) <= 0.05
    # the truth carries the (small) dead-reckoning error of a 3.6 m trip
    assert robot.true_pose.distance_to(Pose(4.0, 3.0)) < 0.05 + 0.03 * 3.6
    assert 3.6 / 0.3 < robot.time < 30.0
    assert len(robot.scans()) == int(robot.time * 5 + 1e-9)


def test_goto_stops_on_contact_behind_a_wall():
    wall = ((3.0, 0.0, 3.1, 4.0),)
    robot = SimulatedRobot(box_world(width=6.0, height=4.0, walls=wall, start=Pose(1.0, 2.0, 0.0)))
    assert robot.goto(4.0, 0.5) is False
    assert robot.bumper_pressed
    (bump,) = robot.bumps
    assert bump.x == pytest.approx(3.0, abs=1e-3)
    assert robot.true_pose.x < 3.0 - 0.17 + 1e-3
    assert robot.time < 20.0


def test_goto_gives_up_at_the_timeout():
    robot = SimulatedRobot(box_world(width=6.0))
    assert robot.goto(4.0, 0.0, timeout=2.0) is False
    assert robot.time == pytest.approx(2.0)
    assert robot.true_pose.x == pytest.approx(1.6, abs=0.02)


# ---------------------------------------------------------------- determinism


def _script(robot: SimulatedRobot) -> tuple:
    rng = np.random.default_rng(123)
    for _ in range(120):
        if robot.drive(0.25, float(rng.uniform(-0.5, 0.5)), 0.3):
            robot.drive(-0.2, 0.0, 0.3)
            robot.drive(0.0, 1.5, float(rng.uniform(0.5, 2.0)))
    robot.goto(0.5, 0.5, timeout=20.0)
    scans = robot.scans()
    return (
        np.array([s.ranges for s in scans]),
        [s.stamp for s in scans],
        robot.odometry(),
        robot.bumps,
        robot.true_pose,
    )


def test_same_seed_same_everything():
    world = World.default()
    a = _script(SimulatedRobot(world, seed=11))
    b = _script(SimulatedRobot(world, seed=11))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]
    assert len(a[3]) > 0  # the script bumped into something
    c = _script(SimulatedRobot(world, seed=12))
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])
    assert a[2] != c[2]


def test_default_home_scan_sees_the_walls():
    world = World.default()
    robot = SimulatedRobot(world, seed=0)
    robot.drive(0.0, 0.0, 0.2)
    (scan,) = robot.scans()
    hits = scan.endpoints(robot.true_pose)
    assert len(hits) > 300
    i = np.floor((hits[:, 1] - world.origin[1]) / RES).astype(int)
    j = np.floor((hits[:, 0] - world.origin[0]) / RES).astype(int)
    # every hit lies on or next to a wall cell (noise is ~1-3 cm)
    near_wall = np.zeros(len(hits), bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            near_wall |= world.walls[i + di, j + dj]
    assert near_wall.mean() > 0.98
