"""Coverage plans: planning time on the default home, coverage and path length on every world.

Worlds: the default home; every furnished home of ../shared/data/homes (`_furnished.png`); every
furnished floor plan of ../shared/data/floorplans (`_furnitures.png`). The stored map of a world
is navigation.relocalize_bench.map_from_world (walls occupied, outside unknown, the rest free:
obstacles only the bumper finds are not in it); rooms by navigation.rooms.segment_rooms; the
plan starts at the world's start pose.

Per world: coverage = share of navigation.coverage.reachable_floor swept by the plan's path
with the 0.25 m brush (swept_area), and of the plan's own floor (the part of it a 4-connected
A* can reach); path ratio = path length / (reachable floor area / 0.25 m), 1.0 being lanes that
clean the floor once with no turn; lengths by kind; rooms planned and skipped; seconds.

Targets (issue 6): plan time for the default home <= 1 s (goal <= 0.2 s); coverage >= 95 %
(goal 99 %); path ratio <= 1.4 (goal 1.15). Writes `.benchmarks/coverage_plan.json` and a
picture per world in `.benchmarks/coverage_plan/` (floor cleaned pale blue, edge passes green,
lanes blue, spots purple, transitions orange, rooms numbered in visiting order).

    pytest benchmarks/bench_coverage_plan.py --benchmark-only -s
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from firmware_bridge.world import World
from navigation.costmap import Costmap
from navigation.coverage import CoverageConfig, coverage_ratio, reachable_floor, swept_area
from navigation.coverage_plan import CoveragePlan, draw_coverage_plan, plan_coverage
from navigation.relocalize_bench import map_from_world
from navigation.rooms import segment_rooms

OUT = Path(__file__).resolve().parents[1] / ".benchmarks"
REPORT = OUT / "coverage_plan.json"
PICTURES = OUT / "coverage_plan"
HOMES = SHARED_DATA / "homes"
PLANS = SHARED_DATA / "floorplans"
WIDTH = CoverageConfig().clean_width


def prepare(world: World):
    grid = map_from_world(world)
    costmap = Costmap.from_map(grid)
    return costmap, segment_rooms(grid)


def measure(name: str, world: World, runs: int = 1) -> dict:
    costmap, seg = prepare(world)
    times = []
    plan: CoveragePlan | None = None
    for _ in range(runs):
        t0 = time.perf_counter()
        plan = plan_coverage(costmap, seg, world.start)
        times.append(time.perf_counter() - t0)
    assert plan is not None
    path = plan.path()
    res, origin = costmap.resolution, costmap.origin
    cleaned = swept_area(
        np.column_stack((path, np.zeros(len(path)))), costmap.shape, res, origin, WIDTH
    )
    free = ~(costmap.static | costmap.unknown | costmap.keepout)
    floor = reachable_floor(free, res, origin, world.start)
    area = float(np.count_nonzero(floor)) * res * res
    row = {
        "coverage": round(coverage_ratio(cleaned, floor), 4),
        "coverage_of_plan_floor": round(coverage_ratio(cleaned, plan.floor), 4),
        "path_ratio": round(plan.length / (area / WIDTH), 4),
        "path_m": round(plan.length, 1),
        "reachable_m2": round(area, 2),
        "edge_m": round(plan.length_of("edge"), 1),
        "lanes_m": round(plan.length_of("lanes"), 1),
        "spot_m": round(plan.length_of("spot"), 1),
        "transition_m": round(plan.length_of("transition"), 1),
        "segments": len(plan.segments),
        "waypoints": int(len(path)),
        "rooms": len(plan.order),
        "skipped": {str(k): v for k, v in plan.skipped.items()},
        "seconds": round(float(np.median(times)), 3),
        "cells": int(costmap.costs.size),
    }
    caption = [
        f"{name}: coverage {row['coverage']:.4f} of the reachable floor "
        f"({row['coverage_of_plan_floor']:.4f} of the plan's), path {row['path_m']} m = "
        f"{row['path_ratio']:.3f} x the floor / brush, {row['seconds']} s",
        f"edge {row['edge_m']} m (green), lanes {row['lanes_m']} m (blue), spots "
        f"{row['spot_m']} m (purple), transitions {row['transition_m']} m (orange); "
        f"order {' '.join(map(str, plan.order))}",
    ]
    draw_coverage_plan(plan, costmap, seg, cleaned=cleaned & floor, caption=caption).save(
        PICTURES / f"{name}.png"
    )
    return row


def test_coverage_plan_time_default_home(benchmark):
    """Plan time on the default home (numba A* warmed by a first plan)."""
    world = World.default()
    costmap, seg = prepare(world)
    plan_coverage(costmap, seg, world.start)
    plan = benchmark(plan_coverage, costmap, seg, world.start)
    assert plan.segments


@pytest.mark.shared_data
def test_coverage_plan_quality(benchmark):
    PICTURES.mkdir(parents=True, exist_ok=True)
    report: dict = {"default_home": {}, "homes": {}, "floorplans": {}}

    def run() -> None:
        report["default_home"] = measure("default_home", World.default(), runs=5)
        for path in sorted(HOMES.glob("home_*_furnished.png")) if HOMES.is_dir() else []:
            report["homes"][path.stem] = measure(path.stem, World.from_png(path))
        for path in sorted(PLANS.glob("*_furnitures.png")) if PLANS.is_dir() else []:
            report["floorplans"][path.stem] = measure(path.stem, World.from_png(path))

    benchmark.pedantic(run, rounds=1, iterations=1)
    summary = {}
    for group in ("homes", "floorplans"):
        rows = list(report[group].values())
        if rows:
            summary[group] = {
                "coverage_min": min(r["coverage"] for r in rows),
                "coverage_mean": round(float(np.mean([r["coverage"] for r in rows])), 4),
                "path_ratio_mean": round(float(np.mean([r["path_ratio"] for r in rows])), 4),
                "path_ratio_max": max(r["path_ratio"] for r in rows),
            }
    report["summary"] = summary
    OUT.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{'world':30s} {'cover':>6s} {'plan':>6s} {'ratio':>6s} {'path m':>7s} {'s':>6s}")
    rows = [("default_home", report["default_home"])]
    rows += list(report["homes"].items()) + list(report["floorplans"].items())
    for name, r in rows:
        print(
            f"{name:30s} {r['coverage']:6.4f} {r['coverage_of_plan_floor']:6.4f} "
            f"{r['path_ratio']:6.3f} {r['path_m']:7.1f} {r['seconds']:6.3f}"
        )
    for group, m in summary.items():
        print(f"{group}: {m}")
    r = report["default_home"]
    assert r["coverage"] >= 0.95 and r["path_ratio"] <= 1.4  # the first bars
    assert r["seconds"] <= 1.0
