"""SLAM accuracy on the public 2D-SLAM benchmark logs: `vacnav rebuild` then `vacnav eval`.

Writes `.benchmarks/slam_accuracy.json` and prints the table (translational error in m,
rotational in deg, wall time, peak RSS). Targets: Intel <= 0.040 m, fr079 <= 0.060 m,
Intel wall <= 180 s, peak RSS <= 500 MB. Needs ../shared/data/slam; skipped without it.
Each log runs in its own process so the peak RSS is that log's alone.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "slam"
REPORT = Path(__file__).resolve().parents[1] / ".benchmarks" / "slam_accuracy.json"


@pytest.mark.parametrize("name", ["fr079", "intel"])
def test_slam_accuracy(benchmark, tmp_path, name):
    log, relations = DATA / f"{name}.clf.bz2", DATA / f"{name}.relations"
    if not log.exists():
        pytest.skip(f"benchmark log not found at {log} (../shared/data beside the repo)")
    out, rebuild_json, eval_json = tmp_path / name, tmp_path / "r.json", tmp_path / "e.json"
    vacnav = [sys.executable, "-m", "navigation"]

    def rebuild() -> None:
        subprocess.run(
            [*vacnav, "rebuild", str(log), "--out", str(out), "--json", str(rebuild_json)],
            check=True,
            capture_output=True,
        )

    benchmark.pedantic(rebuild, rounds=1, iterations=1)
    subprocess.run(
        [*vacnav, "eval", str(out / "poses.txt"), str(relations), "--json", str(eval_json)],
        check=True,
        capture_output=True,
    )
    row = {**json.loads(rebuild_json.read_text()), **json.loads(eval_json.read_text())}
    REPORT.parent.mkdir(exist_ok=True)
    table = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    table[name] = row
    REPORT.write_text(json.dumps(table, indent=2) + "\n")
    print(
        f"\n{name}: {row['trans_abs_mean_m']:.4f} ± {row['trans_abs_std_m']:.4f} m, "
        f"{row['rot_abs_mean_deg']:.3f} ± {row['rot_abs_std_deg']:.3f} deg, "
        f"{row['wall_s']:.1f} s wall, {row['peak_rss_mb']:.0f} MB peak, "
        f"{row['loop_closures']} loop closures"
    )
    benchmark.extra_info.update(
        {
            k: row[k]
            for k in (
                "trans_abs_mean_m",
                "rot_abs_mean_deg",
                "wall_s",
                "peak_rss_mb",
                "loop_closures",
            )
        }
    )
