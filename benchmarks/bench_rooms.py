"""Room segmentation against ground truth, plan by plan, and its time.

Target (issue 6): precision and recall >= 0.85 (goal 0.95), Bormann et al. 2016's metric, mean
over the 6 ipa floor plans of ../shared/data/floorplans (plain plans, as the paper's main table).
Also scored: the same plans with furniture, our homes (../shared/data/homes) against their
door-heuristic `_rooms.png`, plain and furnished, and the default home against its room
rectangles. Writes `.benchmarks/rooms.json` (per plan: precision, recall, their area-weighted
variants, segments vs ground-truth rooms, doorways, median seconds of 3 runs) and a picture per
plan in `.benchmarks/rooms/` (ground-truth separators in red, doorway middles as diamonds).

    pytest benchmarks/bench_rooms.py --benchmark-only -s
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from firmware_bridge import worlds
from firmware_bridge.world import World
from navigation.rooms import (
    draw_segmentation,
    score_segmentation,
    segment_rooms,
    truth_from_separators,
)

OUT = Path(__file__).resolve().parents[1] / ".benchmarks"
REPORT = OUT / "rooms.json"
PICTURES = OUT / "rooms"
FLOORPLANS = SHARED_DATA / "floorplans"
HOMES = SHARED_DATA / "homes"
PLANS = ("Freiburg52_scan", "lab_c_scan", "lab_intel", "lab_ipa", "office_a", "office_d")
FIELDS = ("precision", "recall", "precision_area", "recall_area")


def _truth(path: Path, connectivity: int) -> np.ndarray:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return truth_from_separators(grey[::-1], connectivity)  # raster row 0 = bottom, as World


def _row(name: str, world: World, truth: np.ndarray) -> dict:
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        seg = segment_rooms(world.free, world.resolution, world.origin)
        times.append(time.perf_counter() - t0)
    score = score_segmentation(seg.labels, truth)
    row = {field: round(getattr(score, field), 4) for field in FIELDS}
    row |= {
        "segments": score.segments,
        "truth_rooms": score.truth_rooms,
        "rooms": len(seg.rooms),
        "doors": len(seg.doors),
        "seconds": round(float(np.median(times)), 3),
        "cells": int(world.free.size),
    }
    caption = [
        f"{name}: precision {score.precision:.3f}, recall {score.recall:.3f} "
        f"({score.segments} segments, {score.truth_rooms} rooms in the ground truth)",
        "red: ground-truth separators; diamonds: doorway middles",
    ]
    draw_segmentation(seg, occupied=world.walls, truth=truth, caption=caption).save(
        PICTURES / f"{name}.png"
    )
    return row


def _mean(rows: list[dict]) -> dict:
    return {field: round(float(np.mean([r[field] for r in rows])), 4) for field in FIELDS}


@pytest.mark.shared_data
def test_room_segmentation_against_ground_truth(benchmark):
    if not FLOORPLANS.is_dir():
        pytest.skip(f"floor plans not found in {FLOORPLANS}")
    PICTURES.mkdir(parents=True, exist_ok=True)
    report: dict = {"floorplans": {}, "homes": {}}

    def run() -> None:
        for variant in ("", "_furnitures"):
            for name in PLANS:
                truth = _truth(FLOORPLANS / f"{name}_gt_segmentation.png", 8)
                world = World.from_png(FLOORPLANS / f"{name}{variant}.png")
                report["floorplans"][name + variant] = _row(name + variant, world, truth)
        if HOMES.is_dir():
            for truth_path in sorted(HOMES.glob("home_*_rooms.png")):
                base = truth_path.name.removesuffix("_rooms.png")
                truth = _truth(truth_path, 4)
                for variant in ("", "_furnished"):
                    world = World.from_png(HOMES / f"{base}{variant}.png")
                    report["homes"][base + variant] = _row(base + variant, world, truth)
        world = World.default()
        truth = np.zeros(world.shape, np.int32)
        for k, rect in enumerate(worlds.ROOMS.values(), 1):
            truth[rect.cells(world.origin, world.resolution)] = k
        truth[~world.free] = 0
        report["default_home"] = _row("default_home", world, truth)

    benchmark.pedantic(run, rounds=1, iterations=1)
    plans = report["floorplans"]
    homes = report["homes"]
    report["mean"] = {
        "floorplans": _mean([plans[n] for n in PLANS]),
        "floorplans_furnitures": _mean([plans[n + "_furnitures"] for n in PLANS]),
    }
    if homes:
        report["mean"]["homes"] = _mean([r for n, r in homes.items() if "_furnished" not in n])
        report["mean"]["homes_furnished"] = _mean(
            [r for n, r in homes.items() if "_furnished" in n]
        )
    OUT.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")

    def line(name: str, r: dict) -> str:
        figures = " ".join(f"{r[field]:6.3f}" for field in FIELDS)
        return f"{name:28s} {figures}"

    print(f"\n{'plan':28s}   prec    rec prec_a  rec_a  seg/gt doors     s")
    for group in ("floorplans", "homes"):
        for name, r in report[group].items():
            counts = f"{r['segments']:3d}/{r['truth_rooms']:<3d}"
            print(f"{line(name, r)} {counts} {r['doors']:5d} {r['seconds']:6.3f}")
    r = report["default_home"]
    print(f"{line('default_home', r)} {r['segments']:3d}/{r['truth_rooms']:<3d}")
    for name, m in report["mean"].items():
        print(line(f"mean {name}", m))
    mean = report["mean"]["floorplans"]
    assert mean["precision"] >= 0.85 and mean["recall"] >= 0.85  # the first bar
