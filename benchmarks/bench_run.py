"""The whole story, `vacnav run`, on every world: the default home, every home of
../shared/data/homes (`_furnished.png` with its `_invisible.png` obstacles) and every plan of
../shared/data/floorplans (`_furnitures.png`, offices and labs of 250-1400 m2).

Each world runs the `vacnav run` command as users do (a subprocess, `--json`): explore and
rebuild the map, save it, reboot at a seeded random pose, relocalize, clean room by room; then
bump-and-turn for the same robot time. Same defaults on every world.

Targets (issue 6): coverage of the reachable floor >= 95 % on the default home and the homes
(goal 99 %), >= 90 % on the floor plans (goal 98 %); bumps into mapped obstacles 0; repeat
bumps on a lidar-invisible obstacle <= 1 each (goal 0); cleaning path / (reachable area /
0.25 m) <= 1.4 (goal 1.15); `vacnav run` with no arguments <= 120 s wall (goal 30 s); vacnav
beats the baseline (coverage higher, bumps lower). Writes `.benchmarks/run.json` (one entry per
world and seed: the report's "vacnav" and "baseline" parts, the wall times and which targets
are met); prints one line per world and seed. Environment: RUN_SEED (default 0) or RUN_SEEDS
(comma-separated seeds, each a whole run of every world), RUN_WORLDS (comma-separated
substrings of the world names to run; default all).

One seed is one sample: a single extra bump changes the rest of a run, and at aa8a313 the
default home gave 86.3 / 85.7 / 80.0 % coverage at seeds 0 / 1 / 2, home_604846b5 86.3 /
85.3 / 73.7 % and home_51891573 62.3 / 64.6 / 59.3 %; with the bump marks carved (19f7744),
86.1 / 86.6 / 80.1 %, 86.6 / 86.5 / 86.4 % and 72.9 / 64.5 / 59.2 %; with the far parts of
rooms opened and the contacts kept, home_51891573 gives 75.9 / 77.2 / 76.0 % and
home_00922f91 78.1 / 85.3 / 60.0 % (76.1 / 71.3 / 46.6 % before). The same code gives other
figures on a machine with other library versions (one bump changes the rest of a run): on the
2026-12 machine, 76.3 % mean over the default home and the eight homes at seeds 0-2; with the
edge passes steered by the lidar, the ways the exploring body swept kept open and the bump
marks that shut the exploration out of the home forgotten, 84.6 %. Compare changes over
several seeds, on one machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA

REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "run.json"
SEEDS = [int(x) for x in os.environ.get("RUN_SEEDS", os.environ.get("RUN_SEED", "0")).split(",")]
ONLY = [w for w in os.environ.get("RUN_WORLDS", "").split(",") if w]


def cases() -> list[tuple[str, str | None, str | None, float]]:
    """(name, world PNG, invisible PNG, coverage target); PNGs None for the default home."""
    out: list[tuple[str, str | None, str | None, float]] = [("default", None, None, 0.95)]
    if SHARED_DATA.is_dir():
        homes = SHARED_DATA / "homes"
        for plan in sorted(homes.glob("home_*_furnished.png")):
            invisible = plan.with_name(plan.name.replace("_furnished.png", "_invisible.png"))
            out.append((plan.stem, str(plan), str(invisible) if invisible.exists() else None, 0.95))
        for plan in sorted((SHARED_DATA / "floorplans").glob("*_furnitures.png")):
            out.append((plan.stem, str(plan), None, 0.90))
    return [c for c in out if not ONLY or any(o in c[0] for o in ONLY)]


def _vacnav() -> list[str]:
    exe = Path(sys.executable).parent / "vacnav"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "navigation"]


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("case", cases(), ids=lambda c: c[0])
def test_vacnav_run_story(benchmark, case, seed, tmp_path):
    world, world_png, invisible, coverage_target = case
    name = world if SEEDS == [0] else f"{world} seed {seed}"
    args = ["run", "--seed", str(seed), "--out", str(tmp_path / "out")]
    if world_png is not None:
        args += ["--world", world_png]
    if invisible is not None:
        args += ["--invisible", invisible]
    report_path = tmp_path / "report.json"
    results: dict = {}

    def run() -> None:
        start = time.perf_counter()
        done = subprocess.run(
            [*_vacnav(), *args, "--json", str(report_path)], capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]
        results.update(_record(json.loads(report_path.read_text()), wall, coverage_target))

    benchmark.pedantic(run, rounds=1, iterations=1)
    REPORT.parent.mkdir(exist_ok=True)
    table = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    table[name] = results
    REPORT.write_text(json.dumps(table, indent=2) + "\n")
    nav, base = results["vacnav"], results["baseline"]
    print(
        f"\n{name}: coverage {100 * nav['coverage']:.1f} % (baseline "
        f"{100 * base['coverage']:.1f} %), bumps {nav['bumps']} (baseline {base['bumps']}), "
        f"mapped {nav['bumps_mapped']}, repeat {nav['repeat_bumps']} (max "
        f"{nav['max_repeat_bumps']}), path ratio {nav['path_ratio']}, relocalized "
        f"{nav['relocalized']}, {nav['time_s']:.0f} s robot time, {results['wall_s']:.0f} s wall; "
        f"targets met: {', '.join(k for k, v in results['targets'].items() if v) or 'none'}"
    )
    benchmark.extra_info.update({"coverage": nav["coverage"], "wall_s": results["wall_s"]})


def _record(report: dict, wall: float, coverage_target: float) -> dict:
    nav, base = report["vacnav"], report["baseline"]
    targets = {
        "coverage": nav["coverage"] >= coverage_target,
        "no_mapped_bumps": nav["bumps_mapped"] == 0,
        "repeat_bumps_at_most_1_each": nav["max_repeat_bumps"] <= 1,
        "path_ratio_at_most_1.4": nav["path_ratio"] is not None and nav["path_ratio"] <= 1.4,
        "beats_baseline": nav["coverage"] > base["coverage"] and nav["bumps"] < base["bumps"],
    }
    return {
        "floor_m2": report["floor_m2"],
        "coverage_target": coverage_target,
        "vacnav": nav,
        "baseline": base,
        "wall_s": round(wall, 1),
        "phase_wall_s": report["phase_wall_s"],
        "targets": targets,
    }
