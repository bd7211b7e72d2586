"""SLAM on the simulated vacuum: the rebuilt trajectory must follow the simulator's truth."""

import math

import numpy as np
import pytest
from simfeed import drive_and_map

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps import Pose, Scan
from navigation.slam.matcher import RefineWeights, ScoreField, refine
from navigation.slam.slam import Slam


def align_rigid(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Best rigid 2-D alignment of est (N, 2) onto ref (Kabsch); returns est aligned."""
    ce, cr = est.mean(axis=0), ref.mean(axis=0)
    u, _, vt = np.linalg.svd((est - ce).T @ (ref - cr))
    d = np.sign(np.linalg.det(u @ vt))
    rot = (u @ np.diag([1.0, d]) @ vt).T
    return (est - ce) @ rot.T + cr


@pytest.fixture(scope="module")
def simulated_run():
    sim = SimulatedRobot(World.default(), seed=4)
    slam = Slam()
    truth, _ = drive_and_map(sim, slam, 240.0, seed=4)
    return slam, truth, sim


def test_slam_trajectory_follows_the_truth(simulated_run):
    slam, truth, sim = simulated_run
    _, poses = slam.trajectory()
    assert len(poses) == len(truth) == slam.stats.scans > 1000
    aligned = align_rigid(poses[:, :2], truth[:, :2])
    ate = np.sqrt(np.mean(np.sum((aligned - truth[:, :2]) ** 2, axis=1)))
    # dead reckoning for comparison: the odometry drifts by much more
    assert ate < 0.05, f"absolute trajectory error {ate:.3f} m"
    assert slam.stats.nodes > 50


def test_slam_map_shows_the_walls(simulated_run):
    slam, truth, sim = simulated_run
    grid = slam.map()
    prob = grid.probability()
    assert (prob > 0.65).sum() > 500 and (prob < 0.2).sum() > 5000


def test_refine_recovers_a_perturbed_pose():
    # a room 4.05 m x 3.05 m seen from inside; its walls run through cell centres, so the
    # rasterised map has no half-cell bias
    angles = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    c, s = np.cos(angles), np.sin(angles)
    with np.errstate(divide="ignore"):
        tx = np.where(c > 0, (2.025 - 0.3) / c, (-2.025 - 0.3) / c)
        ty = np.where(s > 0, (1.525 - 0.2) / s, (-1.525 - 0.2) / s)
    ranges = np.minimum(np.abs(tx), np.abs(ty)).astype(np.float32)
    scan = Scan(ranges, angles, 0.0, 0.1, 6.0)
    from maps import OccupancyGrid

    grid = OccupancyGrid.centred(0.0, 0.0, 6.0)
    truth = Pose(0.3, 0.2, 0.0)
    for _ in range(3):
        grid.integrate(truth, scan)
    field = ScoreField.from_probability(grid.probability(), grid.resolution, grid.origin)
    start = Pose(0.36, 0.16, math.radians(2.0))
    found, score = refine(scan.points(), field, start, RefineWeights(1.0, 0.1, 0.1))
    assert found.distance_to(truth) < 0.015
    assert abs(found.theta - truth.theta) < math.radians(0.3)
    _, start_score = refine(scan.points(), field, start, RefineWeights(iterations=0))
    assert score > start_score


def test_scans_with_too_few_points_are_skipped_and_counted():
    slam = Slam()
    angles = np.linspace(-1, 1, 10)
    for k in range(3):
        scan = Scan(np.full(10, 2.0, np.float32), angles, float(k))
        slam.add(scan, Pose(0.5 * k, 0.0, 0.0))
    assert slam.stats.skipped_few_points == 3
    stamps, poses = slam.trajectory()
    assert len(stamps) == 3 and np.isfinite(poses).all()
    assert poses[2, 0] == pytest.approx(1.0)  # placed by odometry


def test_an_odometry_jump_is_counted_and_does_not_teleport_the_robot():
    sim = SimulatedRobot(World.default(), seed=1)
    slam = Slam()
    poses = []
    for k in range(60):
        sim.drive(0.2, 0.1, 0.2)
        odom = sim.odometry().pose
        if k >= 30:
            odom = Pose(odom.x + 5.0, odom.y, odom.theta)  # the wheel counter jumped 5 m
        for scan in sim.scans():
            poses.append(slam.add(scan, odom))
    assert slam.stats.odometry_jumps == 1
    steps = [a.distance_to(b) for a, b in zip(poses[:-1], poses[1:], strict=True)]
    assert max(steps) < 0.5


def test_an_odometry_jump_on_a_skipped_scan_is_not_carried_forward():
    sim = SimulatedRobot(World.default(), seed=1)
    slam = Slam()
    poses, truth = [], []
    for k in range(60):
        sim.drive(0.2, 0.1, 0.2)
        odom = sim.odometry().pose
        if k >= 30:
            odom = Pose(odom.x + 2.0, odom.y, odom.theta)
        for scan in sim.scans():
            if k == 30:  # the scan at the jump has no usable beam
                scan = Scan(np.full(len(scan), np.inf, np.float32), scan.angles, scan.stamp)
            poses.append(slam.add(scan, odom))
            truth.append(sim.true_pose)
    assert slam.stats.odometry_jumps == 1 and slam.stats.skipped_few_points >= 1
    start_gap = truth[0].between(truth[-1])
    est_gap = poses[0].between(poses[-1])
    assert math.hypot(start_gap.x - est_gap.x, start_gap.y - est_gap.y) < 0.3


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(5))
def test_refine_pose_kernel_matches_reference(seed):
    import reference

    from navigation import _kernels

    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 0.9, size=(40, 50)).astype(np.float32)
    values = (values + np.roll(values, 1, 0) + np.roll(values, 1, 1)) / 3  # smoother
    frame = np.array([0.05, -1.0, -0.5, 0.1])
    points = rng.uniform(-1.0, 1.0, size=(60, 2))
    points[:5] *= 3.0  # some fall off the raster
    start = np.array([0.2, 0.4, 0.1])
    prior = start + rng.normal(0, 0.02, 3)
    w2 = np.array([1.0, 1.0, 1.0]) * rng.uniform(0.5, 4.0)
    fast = _kernels.refine_pose(values, frame, points, start, prior, w2, 15)
    slow = reference.refine_pose(values, frame, points, start, prior, w2, 15)
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-9)
