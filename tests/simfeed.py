"""Drive the simulated vacuum and feed SLAM as a robot driver would: each scan with the
odometry of its own time (interpolated between drive commands), and the truth at that time."""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.simulated import SimulatedRobot
from maps import Pose
from navigation.baseline import BaselineConfig, run_bump_and_turn
from navigation.exploration import odometry_at
from navigation.slam.slam import Slam

_interp = odometry_at  # the odometry at a scan's time, as the mission interpolates it


def drive_and_map(
    sim: SimulatedRobot, slam: Slam, duration: float, seed: int, step: float = 0.02
) -> tuple[np.ndarray, list[float]]:
    """Bump-and-turn for `duration` s, every scan into `slam`. Returns the true pose at each
    scan's stamp (N, 3) and the wall time of each `slam.add` call (s)."""
    times, truth, odom = [sim.time], [sim.true_pose.as_array()], [sim.odometry().pose.as_array()]
    true_at_scan, cost = [], []

    def observe() -> None:
        times.append(sim.time)
        truth.append(sim.true_pose.as_array())
        odom.append(sim.odometry().pose.as_array())
        for scan in sim.scans():
            odometry = Pose.from_array(_interp(times, odom, scan.stamp))
            start = time.perf_counter()
            slam.add(scan, odometry)
            cost.append(time.perf_counter() - start)
            true_at_scan.append(_interp(times, truth, scan.stamp))

    run_bump_and_turn(sim, BaselineConfig(duration=duration, step=step), seed=seed, observe=observe)
    slam.finish()
    return np.array(true_at_scan), cost
