"""Lifelong map: integration cost per scan, and how well changed furniture is found.

- `test_integrate_per_scan`: `LifelongMap.integrate` on the default home (furniture added to
  the living room), scans from the simulator at their true poses; ms per scan.
- `test_changes_found_in_furnished_homes`: for every home of ../shared/data/homes, the stored
  map is the plain plan, the robot drives a tour through the furnished home (with its
  lidar-invisible obstacles); poses from the simulator's truth and, separately, from the
  Tracker started at the dock: the furniture must appear. Then the other way: the map made
  from the furnished home, the same tour through the plain plan: the furniture must vanish.
  Scored by `test_lifelong.score`: precision within 1 and 2 cells (0.05 / 0.10 m), area found
  farther than that, furniture blocks (>= 20 cells) observed on the tour (returns from it in 5
  scans; for the vanished case, beams across it in 5 scans) and found, share of the observed
  furniture cells found. The plain plan mapped and driven gives the false change area
  of an unchanged home. Same defaults everywhere.

Writes `.benchmarks/lifelong.json` (one entry per map); prints one line per map.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from test_lifelong import (
    LIVING_ROUTE,
    crossed_counts,
    drive,
    feeds_of,
    integrate_all,
    observed_hits,
    route,
    score,
    tour_waypoints,
)

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps.model import MapDocument
from navigation.lifelong import APPEARED, VANISHED, LifelongMap
from navigation.localization import Localizer, Tracker
from navigation.relocalize_bench import map_from_world

REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "lifelong.json"


def _write(name: str, row: dict) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    table = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    table[name] = row
    REPORT.write_text(json.dumps(table, indent=2) + "\n")


def test_integrate_per_scan(benchmark):
    feeds = feeds_of("box", tuple(LIVING_ROUTE), 1)
    integrate_all(feeds[:5])  # numba kernels loaded before timing

    def run() -> LifelongMap:
        return integrate_all(feeds)

    life = benchmark.pedantic(run, rounds=3, iterations=1)
    per_scan = benchmark.stats.stats.median / len(feeds) * 1e3
    start = time.perf_counter()
    changes = life.changes()
    changes_ms = (time.perf_counter() - start) * 1e3
    row = {
        "scans": len(feeds),
        "ms_per_scan": round(per_scan, 3),
        "changes_ms": round(changes_ms, 2),
        "grid": list(life.shape),
        "memory_bytes": life.memory_bytes,
        "note": changes.note(),
    }
    _write("default_home_integrate", row)
    print(f"\nintegrate: {per_scan:.2f} ms/scan, changes() {changes_ms:.1f} ms, {row}")
    benchmark.extra_info.update(row)
    assert changes.appeared


def _homes() -> list[Path]:
    if not SHARED_DATA.is_dir():
        return []
    return sorted((SHARED_DATA / "homes").glob("home_*_furnished.png"))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"no real data at {SHARED_DATA}")
@pytest.mark.parametrize("furnished", _homes(), ids=lambda p: p.name.removesuffix("_furnished.png"))
def test_changes_found_in_furnished_homes(benchmark, furnished):
    stem = str(furnished).removesuffix("_furnished.png")
    name = Path(stem).name
    invisible = f"{stem}_invisible.png"
    plan = World.from_png(f"{stem}.png", invisible)
    world = World.from_png(furnished, invisible)
    doc = MapDocument(map_from_world(plan))
    points = route(world, tour_waypoints(world))
    furniture = world.walls & ~plan.walls
    row: dict = {}

    def run() -> None:
        feeds = drive(SimulatedRobot(world, seed=1), points, max_steps=20000)
        hits = observed_hits(world, feeds)
        start = time.perf_counter()
        life = integrate_all(feeds, doc)
        row["scans"] = len(feeds)
        row["ms_per_scan"] = round((time.perf_counter() - start) / len(feeds) * 1e3, 3)
        row["appeared_truth_poses"] = _rounded(score(life.changes(), furniture, hits))
        row["appeared_truth_poses"]["note"] = life.changes().note()
        # the same feed with the Tracker's poses (started at the dock, its odometry origin)
        tracker = Tracker(Localizer(doc.grid), world.start)
        tracked = LifelongMap(doc)
        errors, lost = [], 0
        for f in feeds:
            step = tracker.update(f.scan, f.odometry)
            errors.append(step.pose.distance_to(f.truth))
            lost += step.lost
            if not step.lost and not step.reason:
                tracked.integrate(f.scan, step.pose, f.odometry)
        row["appeared_tracker_poses"] = _rounded(score(tracked.changes(), furniture, hits))
        row["appeared_tracker_poses"].update(
            note=tracked.changes().note(),
            median_error_m=round(float(np.median(errors)), 4),
            lost_scans=lost,
        )
        # the other way: the map from the furnished home, the furniture taken away
        removed = drive(SimulatedRobot(plan, seed=1), points, max_steps=20000)
        gone = integrate_all(removed, MapDocument(map_from_world(world)))
        seen = crossed_counts(plan, removed)
        row["vanished_truth_poses"] = _rounded(score(gone.changes(), furniture, seen, VANISHED))
        row["vanished_truth_poses"]["note"] = gone.changes().note()
        # the unchanged home, the same tour: any change found is false
        same = integrate_all(removed, doc)
        row["unchanged_false_m2"] = round(
            same.changes().area(APPEARED) + same.changes().area(VANISHED), 4
        )

    benchmark.pedantic(run, rounds=1, iterations=1)
    _write(name, row)
    t, k, v = (
        row[f"{kind}_poses"] for kind in ("appeared_truth", "appeared_tracker", "vanished_truth")
    )
    print(
        f"\n{name}: {row['scans']} scans, {row['ms_per_scan']} ms/scan; appeared (truth poses): "
        f"blocks {t['found']}/{t['observed']} observed of {t['blocks']}, precision "
        f"{t['precision_1']}/{t['precision_2']}, false {t['false_m2']} m2, faces "
        f"{t['face_recall']}; (tracker poses): blocks {k['found']}/{k['observed']}, precision "
        f"{k['precision_2']}, false {k['false_m2']} m2, {k['lost_scans']} scans lost; vanished: "
        f"blocks {v['found']}/{v['observed']}, precision {v['precision_2']}, false "
        f"{v['false_m2']} m2, {v['found_m2']} m2 found; unchanged: {row['unchanged_false_m2']} m2"
    )
    benchmark.extra_info.update({"scans": row["scans"], "ms_per_scan": row["ms_per_scan"]})
    assert row["scans"] > 0


def _rounded(values: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
