"""Vendor map import against Valetudo's decoded output, fixture by fixture, and parse time.

Target: every fixture of ../shared/data/vendor_maps with an expected .json equals it exactly
(layer pixel sets, robot, dock, restrictions, obstacles); the files without one import. Writes
`.benchmarks/vendor_import.json`: per fixture the pixel counts and positions we decode, whether each
equals the expected one, and the median parse time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from maps.formats import parse
from maps.formats.valetudo import decompress, export

REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "vendor_import.json"
VENDOR = SHARED_DATA / "vendor_maps"
POINTS = ("robot_position", "charger_location", "go_to_target", "obstacle")
ZONES = ("no_go_area", "no_mop_area", "virtual_wall", "active_zone")


def _figures(valetudo: dict) -> dict:
    layers = {}
    for layer in valetudo["layers"]:
        key = layer["type"] + (
            f" {layer['metaData']['segmentId']}" if layer["type"] == "segment" else ""
        )
        layers[key] = decompress(layer["compressedPixels"])
    entities: dict[str, list] = {}
    for e in valetudo["entities"]:
        if e["type"] in POINTS + ZONES:
            entities.setdefault(e["type"], []).append([e["points"], e.get("metaData", {})])
    return {"layers": layers, "entities": {k: sorted(v, key=str) for k, v in entities.items()}}


@pytest.mark.shared_data
def test_vendor_fixtures_against_valetudo(benchmark):
    if not VENDOR.is_dir():
        pytest.skip(f"vendor map files not found in {VENDOR}")
    files = sorted(VENDOR.glob("*/*.bin")) + sorted(VENDOR.glob("*/*.gz"))
    rows = {}

    def run() -> None:
        for path in files:
            data = path.read_bytes()
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                doc = parse(data, path.name)
                times.append(time.perf_counter() - t0)
            ours = _figures(export(doc))
            row = {
                "parse_ms": round(float(np.median(times)) * 1e3, 2),
                "pixels": {k: len(v) for k, v in ours["layers"].items()},
                "entities": {k: len(v) for k, v in ours["entities"].items()},
            }
            expected_path = path.with_suffix(".json")
            if expected_path.exists():
                want = _figures(json.loads(expected_path.read_text()))
                row["layers_equal"] = ours["layers"] == want["layers"]
                row["entities_equal"] = ours["entities"] == want["entities"]
            rows[f"{path.parent.name}/{path.name}"] = row

    benchmark.pedantic(run, rounds=1, iterations=1)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(rows, indent=2) + "\n")
    for name, row in rows.items():
        print(
            f"{name}: {row['pixels']} {row['entities']} {row['parse_ms']} ms "
            f"layers {row.get('layers_equal', '-')} entities {row.get('entities_equal', '-')}"
        )
    checked = [row for row in rows.values() if "layers_equal" in row]
    assert checked and all(r["layers_equal"] and r["entities_equal"] for r in checked)
