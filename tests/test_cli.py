import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from navigation.cli import cli


def run_main(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run `vacnav` as users do (main(): one-line errors, exit status)."""
    code = "from navigation.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_help_is_light():
    code = (
        "import sys; from navigation.cli import main; sys.argv = ['vacnav', '--help']; main(); "
        "heavy = [m for m in ('numpy', 'numba', 'cv2', 'miio', 'scipy') if m in sys.modules]; "
        "print('heavy:', ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("heavy:")
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "log"):
        assert command in result.output


def write_log(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def flaser(stamp, n=4, r=1.0):
    ranges = " ".join([str(r)] * n)
    return f"FLASER {n} {ranges} 0 0 0 0 0 0 {stamp} host {stamp}"


def test_log_info_reports_and_writes_json(tmp_path):
    log = write_log(
        tmp_path / "a.clf",
        [
            "# a comment",
            "ODOM 0 0 0 0 0 0 10.0 host 10.0",
            flaser(10.1),
            flaser(10.3),
            flaser(10.2),
            "FLASER 3 1 2",
            flaser(10.4),
        ],
    )
    report = tmp_path / "info.json"
    result = CliRunner().invoke(cli, ["log", "info", str(log), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "scans" in result.output and "malformed" in result.output
    data = json.loads(report.read_text())
    assert data["scans"] == 4
    assert data["time_jumps"] == 1
    assert data["malformed"] == 1
    assert "line 6" in result.output


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8])
def test_log_info_bad_file_is_one_line_and_exit_1(tmp_path, content):
    bad = tmp_path / "bad.clf"
    bad.write_bytes(content)
    result = run_main("log", "info", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "bad.clf" in result.stderr


def test_log_info_missing_file(tmp_path):
    result = run_main("log", "info", str(tmp_path / "nope.clf"))
    assert result.returncode == 1
    assert "nope.clf" in result.stderr and "Traceback" not in result.stderr


def test_run_default_home_writes_report_and_picture(tmp_path):
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli, ["run", "--duration", "240", "--out", str(tmp_path / "out"), "--json", str(report)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["robot"] == "sim" and data["world"]
    base = data["baseline"]
    assert set(base) >= {"coverage", "bumps", "bumps_invisible", "path_m", "time_s"}
    assert 0.02 < base["coverage"] < 1.0
    assert base["bumps"] >= 1
    assert 240 <= base["time_s"] < 241
    assert 10 < base["path_m"] < 240 * 0.3
    img = cv2.imread(str(tmp_path / "out" / "path.png"))
    assert img is not None and img.shape[0] > 100


def test_run_is_deterministic_for_a_seed(tmp_path):
    reports = []
    for k in range(2):
        path = tmp_path / f"r{k}.json"
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--duration",
                "60",
                "--seed",
                "3",
                "--out",
                str(tmp_path / f"o{k}"),
                "--json",
                str(path),
            ],
        )
        assert result.exit_code == 0, result.output
        reports.append(json.loads(path.read_text())["baseline"])
    assert reports[0] == reports[1]


def test_run_on_a_png_world_with_invisible_obstacles(tmp_path):
    plan = np.full((80, 120), 205, np.uint8)
    plan[5:75, 5:115] = 0
    plan[8:72, 8:112] = 255  # a 5.2 m x 3.2 m room
    hidden = np.full_like(plan, 255)
    hidden[30:50, 50:70] = 0  # a 1 m x 1 m low shelf in the middle
    cv2.imwrite(str(tmp_path / "room.png"), plan)
    cv2.imwrite(str(tmp_path / "room_inv.png"), hidden)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--world",
            str(tmp_path / "room.png"),
            "--invisible",
            str(tmp_path / "room_inv.png"),
            "--duration",
            "300",
            "--out",
            str(tmp_path / "o"),
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    base = json.loads(report.read_text())["baseline"]
    assert base["bumps_invisible"] >= 1
    assert base["coverage"] > 0.2


def test_run_rejects_a_png_that_is_not_a_plan(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image at all")
    result = run_main("run", "--world", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 1
    assert "x.png" in result.stderr and "Traceback" not in result.stderr
