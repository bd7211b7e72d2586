"""Relocalization trials on a recorded log (`navigation.relocalize_log`), on a log recorded in
the simulator: the default home driven bump-and-turn, each scan with the odometry of its time
and the true pose as the reference; also a CARMEN file read back, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import config as numba_config

from firmware_bridge.errors import LogFormatError
from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps import OccupancyGrid, Pose, wrap_angle
from maps.scan import Odometry, Scan
from navigation.baseline import BaselineConfig, run_bump_and_turn
from navigation.relocalize_bench import RIGHT_ANGLE, RIGHT_DISTANCE, map_from_world
from navigation.relocalize_log import (
    MapReference,
    load_log,
    rebuild_log,
    run_log_trials,
    score_records,
)

needs_jit = pytest.mark.skipif(
    numba_config.DISABLE_JIT, reason="relocalizes many times in a simulated home: slow without JIT"
)
KEYS = {"trials", "right", "wrong", "refused", "median_ms", "p99_ms", "median_scans"}


def record_log(world: World, seconds: float, seed: int):
    """Drive bump-and-turn for `seconds`; every scan with the odometry (pose interpolated to
    the scan's stamp, speeds over the scan's revolution) and the true pose at its stamp."""
    sim = SimulatedRobot(world, seed=seed)
    times, truth, odom = [sim.time], [sim.true_pose.as_array()], [sim.odometry().pose.as_array()]
    scans: list[Scan] = []
    odometry: list[Odometry] = []
    true_poses: list[np.ndarray] = []

    def at(t: float, poses: list[np.ndarray]) -> np.ndarray:
        k = min(max(int(np.searchsorted(times, t)), 1), len(times) - 1)
        t0, t1 = times[k - 1], times[k]
        f = 0.0 if t1 <= t0 else min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        a, b = poses[k - 1], poses[k]
        return np.array([*(a[:2] + f * (b[:2] - a[:2])), a[2] + f * wrap_angle(b[2] - a[2])])

    def observe() -> None:
        times.append(sim.time)
        truth.append(sim.true_pose.as_array())
        odom.append(sim.odometry().pose.as_array())
        for scan in sim.scans():
            scans.append(scan)
            p = Pose.from_array(at(scan.stamp, odom))
            d = p.between(Pose.from_array(at(scan.stamp + scan.duration, odom)))
            v, w = math.hypot(d.x, d.y) / scan.duration, d.theta / scan.duration
            odometry.append(Odometry(p, scan.stamp, math.copysign(v, d.x), w))
            true_poses.append(at(scan.stamp, truth))

    run_bump_and_turn(sim, BaselineConfig(duration=seconds), seed=seed, observe=observe)
    return scans, odometry, np.array(true_poses)


@pytest.fixture(scope="module")
def home_log():
    world = World.default()
    scans, odometry, truth = record_log(world, 90.0, seed=3)
    return world, map_from_world(world), scans, odometry, truth


# ------------------------------------------------------------------ quality
@needs_jit
def test_trials_on_a_simulated_log_are_right(home_log):
    _, grid, scans, odometry, truth = home_log
    report = run_log_trials(scans, odometry, truth, grid, trials=12, seed=1, horizon=20.0)
    assert KEYS <= report.keys()
    assert report["trials"] == 12 == report["right"] + report["wrong"] + report["refused"]
    assert report["wrong"] == 0, report["failures"]
    assert report["right"] >= 11, report["failures"]
    assert report["map_problem"] is None
    for r in report["records"]:
        assert r["start"] <= r["decided_at"] < len(scans)
        assert scans[r["start"]].stamp <= scans[-1].stamp - 20.0  # a horizon of log after it
        assert r["scans"] >= 1
        if r["outcome"] == "right":
            # scored against the true pose of the scan the decision was made at
            t = truth[r["decided_at"]]
            a = r["answer"]
            assert math.hypot(a[0] - t[0], a[1] - t[1]) <= RIGHT_DISTANCE
            assert abs(wrap_angle(a[2] - t[2])) <= RIGHT_ANGLE
    # the same records judged against the same poses count the same
    again = score_records(report["records"], [Pose.from_array(p) for p in truth], len(scans))
    assert again == {k: report[k] for k in ("right", "wrong", "refused")}


@needs_jit
def test_trials_are_deterministic_for_a_seed(home_log):
    _, grid, scans, odometry, truth = home_log

    def outcome(seed: int) -> list[tuple]:
        report = run_log_trials(scans, odometry, truth, grid, trials=3, seed=seed, horizon=20.0)
        return [
            (r["start"], r["decided_at"], r["outcome"], r.get("answer")) for r in report["records"]
        ]

    first = outcome(5)
    assert first == outcome(5)
    assert [r[0] for r in first] != [r[0] for r in outcome(6)]


@needs_jit
def test_a_wrong_reference_makes_wrong_answers(home_log):
    """The scoring is not a rubber stamp: shift the reference 0.3 m and every accepted answer
    is counted wrong."""
    _, grid, scans, odometry, truth = home_log
    shifted = truth + np.array([0.3, 0.0, 0.0])
    report = run_log_trials(scans, odometry, shifted, grid, trials=3, seed=1)
    assert report["right"] == 0
    assert report["wrong"] == 3 - report["refused"] >= 2


@needs_jit
def test_map_reference_moves_a_perturbed_pose_onto_the_map(home_log):
    _, grid, scans, odometry, truth = home_log
    off = truth + np.array([0.06, -0.05, math.radians(2.0)])
    ref = MapReference(grid, scans, off, odometry)
    ks = range(0, len(scans), 15)
    err = [math.hypot(ref(k).x - truth[k, 0], ref(k).y - truth[k, 1]) for k in ks]
    aerr = [abs(wrap_angle(ref(k).theta - truth[k, 2])) for k in ks]
    assert np.median(err) < 0.015 and max(err) < 0.04
    assert max(aerr) < math.radians(1.5)
    assert ref(15) is ref(15)  # cached
    with pytest.raises(ValueError, match="odometry"):
        MapReference(grid, scans, truth, odometry[:-1])
    unknown = OccupancyGrid(np.zeros((40, 40), np.float32), 0.05, (0.0, 0.0))
    with pytest.raises(ValueError, match="unknown everywhere"):
        MapReference(unknown, scans, truth)


@needs_jit
def test_every_scan_fed_and_the_log_ending_early(home_log):
    """A log of three scans ends before any decision: refused, with that reason."""
    _, grid, scans, odometry, truth = home_log
    report = run_log_trials(scans[:3], odometry[:3], truth[:3], grid, trials=2, seed=0, step=0)
    assert report["refused"] == 2 and report["right"] == report["wrong"] == 0
    assert all("the log ended before a decision" in f["reason"] for f in report["failures"])


def test_an_unusable_map_refuses_every_trial(home_log):
    _, _, scans, odometry, truth = home_log
    unknown = OccupancyGrid(np.zeros((40, 40), np.float32), 0.05, (0.0, 0.0))
    report = run_log_trials(scans, odometry, truth, unknown, trials=4, seed=0)
    assert report["refused"] == 4
    assert "unknown everywhere" in report["map_problem"]
    assert report["reasons"] == {"unusable map": 4}
    assert all("unusable map" in f["reason"] for f in report["failures"])


def test_odometry_as_poses_and_zero_trials(home_log):
    _, grid, scans, odometry, truth = home_log
    poses = [o.pose for o in odometry]
    report = run_log_trials(scans, poses, truth, grid, trials=0)
    assert report["trials"] == 0 == report["right"] == report["wrong"] == report["refused"]
    assert report["median_ms"] == 0.0 and report["failures"] == []


# ------------------------------------------------------------------ bad input
def test_bad_input_is_named(home_log):
    _, grid, scans, odometry, truth = home_log
    with pytest.raises(ValueError, match="no scans"):
        run_log_trials([], [], np.zeros((0, 3)), grid, trials=1)
    with pytest.raises(ValueError, match="odometry"):
        run_log_trials(scans, odometry[:-1], truth, grid, trials=1)
    with pytest.raises(ValueError, match="reference poses must be"):
        run_log_trials(scans, odometry, truth[:-1], grid, trials=1)
    bad = truth.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="reference pose 7 is not finite"):
        run_log_trials(scans, odometry, bad, grid, trials=1)
    with pytest.raises(ValueError, match="trials"):
        run_log_trials(scans, odometry, truth, grid, trials=-1)
    with pytest.raises(ValueError, match="step"):
        run_log_trials(scans, odometry, truth, grid, trials=1, step=-0.1)
    with pytest.raises(ValueError, match="horizon"):
        run_log_trials(scans, odometry, truth, grid, trials=1, horizon=math.nan)
    with pytest.raises(ValueError, match=r"scans\[1\]"):
        run_log_trials([scans[0], "scan"], odometry[:2], truth[:2], grid, trials=1)
    with pytest.raises(ValueError, match=r"odometry\[0\]"):
        run_log_trials(scans[:2], [(0, 0, 0), (0, 0, 0)], truth[:2], grid, trials=1)
    with pytest.raises(ValueError, match="no scans"):
        rebuild_log([], [])


# ------------------------------------------------------------------ logs
def test_load_log_reads_scans_with_the_odometry_speeds(tmp_path):
    ranges = " ".join(["2.0"] * 180)
    lines = [
        "ODOM 0.0 0.0 0.0 0.3 0.1 0 100.00 host 0.0",
        f"FLASER 180 {ranges} 0.0 0.0 0.0 0.0 0.0 0.0 100.05 host 0.05",
        "ODOM 0.1 0.0 0.05 0.2 -0.2 0 100.10 host 0.1",
        f"FLASER 180 {ranges} 0.1 0.0 0.05 0.1 0.0 0.05 100.15 host 0.15",
    ]
    path = tmp_path / "tiny.clf"
    path.write_text("\n".join(lines) + "\n")
    log = load_log(path)
    assert len(log) == 2 == log.summary.scans
    assert [s.stamp for s in log.scans] == [100.05, 100.15]
    assert (log.odometry[1].pose.x, log.odometry[1].pose.theta) == (0.1, 0.05)
    assert (log.odometry[0].v, log.odometry[0].w) == (0.3, 0.1)
    assert (log.odometry[1].v, log.odometry[1].w) == (0.2, -0.2)
    path.write_text("not a log\n" * 2000)
    with pytest.raises(LogFormatError, match="tiny.clf"):
        load_log(path)


@pytest.fixture(scope="module")
def rebuilt(home_log):
    """The simulated log rebuilt with SLAM, and trials in the rebuilt map against the
    rebuild's own poses: the benchmark's pipeline in small."""
    _, _, scans, odometry, truth = home_log
    grid, poses = rebuild_log(scans, odometry)
    report = run_log_trials(scans, odometry, poses, grid, trials=6, seed=2, own_map=True)
    return grid, poses, report


@needs_jit
def test_rebuild_then_relocalize_in_the_rebuilt_map(home_log, rebuilt):
    _, _, scans, _, truth = home_log
    grid, poses, report = rebuilt
    assert poses.shape == (len(scans), 3) and np.isfinite(poses).all()
    # the rebuild's frame is its first pose's: its path has the true path's shape
    for k in (len(scans) // 2, len(scans) - 1):
        rel_true = Pose.from_array(truth[0]).inverse().compose(Pose.from_array(truth[k]))
        rel_slam = Pose.from_array(poses[0]).inverse().compose(Pose.from_array(poses[k]))
        assert math.hypot(rel_true.x - rel_slam.x, rel_true.y - rel_slam.y) < 0.1
    assert report["trials"] == 6
    assert report["wrong"] == 0, report["failures"]


@needs_jit
def test_relocalization_in_a_rebuilt_map_is_right(rebuilt):
    _, _, report = rebuilt
    assert report["right"] >= 5, report["failures"]
