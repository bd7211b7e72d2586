"""SLAM live on the simulated vacuum in the built-in home: time per scan and trajectory error.

Targets: median time per scan <= 10 ms (goal 3 ms); absolute trajectory error against the
simulator's true poses <= 0.05 m (goal 0.02 m). Writes `.benchmarks/slam_sim.json`.
"""

import json
import time
from pathlib import Path

import numpy as np

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from navigation.baseline import BaselineConfig, run_bump_and_turn
from navigation.slam.slam import Slam

REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "slam_sim.json"


def absolute_trajectory_error(est: np.ndarray, ref: np.ndarray) -> float:
    """RMS position error (m) after the best rigid alignment of est onto ref (Kabsch)."""
    ce, cr = est.mean(axis=0), ref.mean(axis=0)
    u, _, vt = np.linalg.svd((est - ce).T @ (ref - cr))
    d = np.sign(np.linalg.det(u @ vt))
    rot = (u @ np.diag([1.0, d]) @ vt).T
    aligned = (est - ce) @ rot.T + cr
    return float(np.sqrt(np.mean(np.sum((aligned - ref) ** 2, axis=1))))


def test_slam_live_on_simulated_home(benchmark):
    results = {}

    def run() -> None:
        sim = SimulatedRobot(World.default(), seed=7)
        slam = Slam()
        truth, times = [], []

        def observe() -> None:
            for scan in sim.scans():
                odom = sim.odometry().pose
                start = time.perf_counter()
                slam.add(scan, odom)
                times.append(time.perf_counter() - start)
                truth.append(sim.true_pose.as_array())

        run_bump_and_turn(sim, BaselineConfig(duration=600.0), seed=7, observe=observe)
        slam.finish()
        _, poses = slam.trajectory()
        truth_xy = np.array(truth)[:, :2]
        results.update(
            scans=len(times),
            median_ms_per_scan=round(float(np.median(times)) * 1e3, 3),
            p95_ms_per_scan=round(float(np.quantile(times, 0.95)) * 1e3, 3),
            ate_m=round(absolute_trajectory_error(poses[:, :2], truth_xy), 4),
            loop_closures=slam.stats.loop_closures,
        )

    run()  # JIT warm-up and the figures
    benchmark.pedantic(run, rounds=1, iterations=1)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    print("\n", results)
    benchmark.extra_info.update(results)
