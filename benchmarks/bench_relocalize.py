"""Kidnap trials (global relocalization from no prior) in the simulator.

Runs `navigation.relocalize_bench.run_trials` on the default home (the map is the home itself)
and, when ../shared/data is present, on every home of ../shared/data/homes (the robot in the
`_furnished.png` world with its `_invisible.png` obstacles, the map from the plain plan) and
every plan of ../shared/data/floorplans (mapped from the empty plan, driven in its
`_furnitures_trashbins` variant): the home changed since the map was made. Same defaults on
every map.

The `slam:` cases do the same in the map the robot rebuilt exploring the world from its dock
(`--map-from slam`): the default home and every furnished home, the plans
too with RELOCALIZE_SLAM_PLANS=1 (their exploration takes minutes each).

Targets (issue 5): right >= 95 % (goal 99 %), wrong <= 1 % (goal 0), median time to a decision
on the default home <= 300 ms (goal 100 ms). Times are the localizer's compute time, the numba
kernels loaded before timing. Writes `.benchmarks/relocalize.json`; prints one line per map.
Environment: RELOCALIZE_TRIALS (default 100 on the default home and the homes, 50 on the
floor plans, which are office floors of 300-1500 m2; 99 floor trials), RELOCALIZE_PLAN_TRIALS
(the floor plans alone), RELOCALIZE_SEED (default 0).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from firmware_bridge.world import World
from navigation.relocalize_bench import SLAM, run_trials

REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "relocalize.json"
TRIALS = int(os.environ.get("RELOCALIZE_TRIALS", "0")) or None
PLAN_TRIALS = int(os.environ.get("RELOCALIZE_PLAN_TRIALS", "0")) or None
SEED = int(os.environ.get("RELOCALIZE_SEED", "0"))
SLAM_PLANS = os.environ.get("RELOCALIZE_SLAM_PLANS", "") == "1"


def cases() -> list[tuple[str, str | None, str | None, str | None, int]]:
    """(name, world PNG, invisible PNG, map PNG, trials); PNGs None for the default home."""
    out: list[tuple[str, str | None, str | None, str | None, int]] = [
        ("default", None, None, None, TRIALS or 100)
    ]
    homes = SHARED_DATA / "homes"
    for plan in sorted(homes.glob("home_*_furnished.png")):
        stem = plan.name.removesuffix("_furnished.png")
        invisible = homes / f"{stem}_invisible.png"
        out.append(
            (
                stem,
                str(plan),
                str(invisible) if invisible.exists() else None,
                str(homes / f"{stem}.png"),
                TRIALS or 100,
            )
        )
    plans = SHARED_DATA / "floorplans"
    for world in sorted(plans.glob("*_furnitures_trashbins.png")):
        stem = world.name.removesuffix("_furnitures_trashbins.png")
        out.append(
            (stem, str(world), None, str(plans / f"{stem}.png"), PLAN_TRIALS or TRIALS or 50)
        )
    return out


def _record(name: str, report: dict, wall: float) -> dict:
    row = {k: report[k] for k in ("trials", "right", "wrong", "refused", "median_ms", "p99_ms")}
    row["median_scans"] = report["median_scans"]
    row["right_pct"] = round(100.0 * report["right"] / max(1, report["trials"]), 1)
    row["wrong_pct"] = round(100.0 * report["wrong"] / max(1, report["trials"]), 1)
    row["build_ms"] = report["build_ms"]
    row["wall_s"] = round(wall, 1)
    row["reasons"] = report["reasons"]
    row["refused_sealed"] = report["refused_sealed"]
    row["refused_unmapped"] = report["refused_unmapped"]
    row["wrong_trials"] = [f for f in report["failures"] if f["outcome"] == "wrong"]
    if "explore" in report:
        row["explore"] = report["explore"]
        row["right_on_map"] = report["right_on_map"]
        row["wrong_on_map"] = report["wrong_on_map"]
    return row


def slam_cases() -> list[tuple[str, str | None, str | None, str | None, int]]:
    """The worlds of `cases()` with the map rebuilt by exploring each (plans only with
    RELOCALIZE_SLAM_PLANS=1)."""
    out = []
    for name, world_png, invisible, _, trials in cases():
        if SLAM_PLANS or world_png is None or name.startswith("home_"):
            out.append((f"slam:{name}", world_png, invisible, SLAM, trials))
    return out


def all_cases() -> list[tuple[str, str | None, str | None, str | None, int]]:
    """Every case; without ../shared/data, the default home mapped from itself and rebuilt."""
    if SHARED_DATA.is_dir():
        return cases() + slam_cases()
    return cases()[:1] + slam_cases()[:1]


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c[0])
def test_relocalize_kidnap_trials(benchmark, case):
    name, world_png, invisible, map_from, trials = case
    world = World.default() if world_png is None else World.from_png(world_png, invisible)
    results: dict = {}

    def run() -> None:
        start = time.perf_counter()
        report = run_trials(world, map_from, trials=trials, seed=SEED)
        results.update(_record(name, report, time.perf_counter() - start))

    benchmark.pedantic(run, rounds=1, iterations=1)
    REPORT.parent.mkdir(exist_ok=True)
    table = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    table[name] = results
    REPORT.write_text(json.dumps(table, indent=2) + "\n")
    print(
        f"\n{name}: {results['right']}/{results['trials']} right, {results['wrong']} wrong, "
        f"{results['refused']} refused ({results['refused_sealed']} sealed off, "
        f"{results['refused_unmapped']} off the map); median {results['median_ms']} ms, p99 "
        f"{results['p99_ms']} ms, median {results['median_scans']} scans; {results['reasons']}"
        + (
            f"; against the truth re-matched to the map: {results['right_on_map']} right, "
            f"{results['wrong_on_map']} wrong; explored: {results['explore']}"
            if "explore" in results
            else ""
        )
    )
    benchmark.extra_info.update({k: v for k, v in results.items() if k != "wrong_trials"})
    assert results["trials"] == trials


def floor_set() -> dict:
    """Three stored floors: the default home and the first two furnished homes of
    ../shared/data/homes (mapped from their plain plans); without the data, the default home
    and its mirror image (two floors)."""
    from navigation.relocalize_bench import mirrored

    home = World.default()
    floors: dict = {"default": (home, home)}
    homes = sorted((SHARED_DATA / "homes").glob("home_*_furnished.png"))[:2]
    for plan in homes:
        stem = plan.name.removesuffix("_furnished.png")
        invisible = plan.with_name(f"{stem}_invisible.png")
        world = World.from_png(plan, invisible if invisible.exists() else None)
        floors[stem] = (world, World.from_png(plan.with_name(f"{stem}.png")))
    if not homes:
        floors["mirrored"] = (mirrored(home), mirrored(home))
    return floors


def test_relocalize_right_floor(benchmark):
    """Target (issue 5): the right floor among 3 stored floors >= 98 % (goal 100 %)."""
    from navigation.relocalize_bench import run_floor_trials

    floors = floor_set()
    trials = TRIALS or 99
    results: dict = {}

    def run() -> None:
        start = time.perf_counter()
        report = run_floor_trials(floors, trials=trials, seed=SEED)
        results.update(report)
        results["right_floor_pct"] = round(100.0 * report["right_floor"] / max(1, trials), 1)
        results["wall_s"] = round(time.perf_counter() - start, 1)

    benchmark.pedantic(run, rounds=1, iterations=1)
    REPORT.parent.mkdir(exist_ok=True)
    table = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    table["floors"] = results
    REPORT.write_text(json.dumps(table, indent=2, default=str) + "\n")
    print(
        f"\nfloors {results['floors']}: right floor {results['right_floor']}/{trials}, wrong "
        f"floor {results['wrong_floor']}, refused {results['refused']}; right pose "
        f"{results['right']}, median {results['median_ms']} ms; {results['reasons']}"
    )
    benchmark.extra_info.update({k: v for k, v in results.items() if k != "failures"})
    assert results["trials"] == trials
