"""Frontier exploration with live SLAM, world by world: how long, how far, how good the map.

Each world is explored from its start pose by a simulated robot (seed 1) until no reachable
frontier is left (budget 3600 s of robot time): the default home, then every furnished home of
../shared/data/homes with its lidar-invisible obstacles. Per world:
- sim_s: robot time; wall_s: wall time of the whole exploration here, of which slam_s in
  `Slam.add` (ms per scan: median, p95) and plan_s in map updates, costmaps, frontiers and A*;
- path_m (SLAM trajectory), path_true_m (the simulator's), end_pose_error_m (the final SLAM pose
  estimate against the truth), bumps (contacts the simulator recorded; invisible: on
  lidar-invisible obstacles), stop reason, frontiers left unreachable;
- map_iou (free cells), occupied_iou (1-cell tolerance), explored (share of the reachable floor
  the map shows free), free precision and recall: `navigation.exploration.map_iou` in the
  start frame, so SLAM drift counts against the map.
Writes `.benchmarks/exploration.json` and prints one line per world.

    pytest benchmarks/bench_exploration.py --benchmark-only -s
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from conftest import SHARED_DATA

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from navigation.exploration import ExplorationConfig, explore, map_iou

REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "exploration.json"
HOMES = SHARED_DATA / "homes"
SEED = 1


def _worlds() -> list[World]:
    worlds = [World.default()]
    if HOMES.is_dir():
        for plan in sorted(HOMES.glob("home_*_furnished.png")):
            hidden = plan.with_name(plan.name.replace("_furnished", "_invisible"))
            worlds.append(World.from_png(plan, hidden if hidden.exists() else None))
    return worlds


class _Recorder:
    """A SimulatedRobot that adds up the true distance driven (drive commands are <= 0.1 s)."""

    def __init__(self, sim: SimulatedRobot) -> None:
        self.sim = sim
        self.true_path = 0.0

    @property
    def time(self) -> float:
        return self.sim.time

    @property
    def bumper_pressed(self) -> bool:
        return self.sim.bumper_pressed

    def drive(self, v: float, w: float, dt: float) -> bool:
        before = self.sim.true_pose
        bumped = self.sim.drive(v, w, dt)
        after = self.sim.true_pose
        self.true_path += math.hypot(after.x - before.x, after.y - before.y)
        return bumped

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        return self.sim.goto(x, y, timeout=timeout)

    def scans(self):
        return self.sim.scans()

    def odometry(self):
        return self.sim.odometry()


def _row(world: World) -> dict:
    sim = SimulatedRobot(world, seed=SEED)
    robot = _Recorder(sim)
    started = time.perf_counter()
    result = explore(robot)
    wall = time.perf_counter() - started
    score = map_iou(result.grid, world)
    bumps = sim.bumps
    last = world.start.compose(result.pose)
    return {
        "area_m2": round(world.area_m2, 1),
        "stop": result.stop_reason,
        "sim_s": round(result.time_s, 1),
        "wall_s": round(wall, 2),
        "slam_s": round(float(result.slam_ms.sum()) / 1e3, 2),
        "slam_ms_median": round(float(np.median(result.slam_ms)), 2),
        "slam_ms_p95": round(float(np.quantile(result.slam_ms, 0.95)), 2),
        "slam_ms_mean": round(float(np.mean(result.slam_ms)), 2),
        "slam_ms_max": round(float(np.max(result.slam_ms)), 2),
        "realtime_factor": round(result.time_s / wall, 2),  # simulated s per wall s
        "plan_s": round(result.plan_wall_s, 2),
        "scans": result.scans,
        "path_m": round(result.path_m, 1),
        "path_true_m": round(robot.true_path, 1),
        "end_pose_error_m": round(
            math.hypot(last.x - sim.true_pose.x, last.y - sim.true_pose.y), 3
        ),
        "bumps": len(bumps),
        "bumps_invisible": sum(b.invisible for b in bumps),
        "bumps_mapped": sum(not b.invisible for b in bumps),  # into what the lidar sees
        "map_iou": round(score.free_iou, 4),
        "occupied_iou": round(score.occupied_iou, 4),
        "explored": round(score.explored, 4),
        "free_precision": round(score.free_precision, 4),
        "free_recall": round(score.free_recall, 4),
        "frontiers_unreachable": len(result.unreachable),
        "failed_attempts": result.failed_attempts,
        "loop_closures": result.slam.stats.loop_closures,
    }


def test_exploration_per_world(benchmark):
    # numba kernels loaded (or compiled) before anything is timed
    explore(SimulatedRobot(World.default(), seed=0), ExplorationConfig(time_budget=5.0))
    report: dict = {}

    def run() -> None:
        for world in _worlds():
            report[world.name] = _row(world)
            r = report[world.name]
            print(
                f"\n{world.name:26s} {r['area_m2']:6.1f} m2 {r['stop']:22s} "
                f"sim {r['sim_s']:6.1f} s wall {r['wall_s']:6.1f} s (slam {r['slam_s']:5.1f} s, "
                f"{r['slam_ms_median']:.1f}/{r['slam_ms_p95']:.1f} ms/scan; "
                f"plan {r['plan_s']:5.1f} s) path {r['path_m']:5.1f} m bumps {r['bumps']} "
                f"({r['bumps_invisible']} invisible) iou {r['map_iou']:.3f} "
                f"occ {r['occupied_iou']:.3f} explored {r['explored']:.3f}",
                end="",
            )

    benchmark.pedantic(run, rounds=1, iterations=1)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    benchmark.extra_info.update(report)
    print()
