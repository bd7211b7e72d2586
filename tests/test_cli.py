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


def write_simulated_log(path, seconds=60.0, seed=2):
    """A ROBOTLASER1 log of the simulated vacuum driving bump-and-turn in the built-in home."""
    from firmware_bridge.simulated import SimulatedRobot
    from firmware_bridge.world import World
    from navigation.baseline import BaselineConfig, run_bump_and_turn

    sim = SimulatedRobot(World.default(), seed=seed)
    lines = []

    def observe() -> None:
        for scan in sim.scans():
            odom = sim.odometry().pose
            order = np.argsort(scan.angles)
            ranges = np.where(np.isfinite(scan.ranges), scan.ranges, 6.0)[order]
            n = len(ranges)
            values = " ".join(f"{r:.3f}" for r in ranges)
            pose = f"{odom.x:.6f} {odom.y:.6f} {odom.theta:.6f}"
            lines.append(
                f"ROBOTLASER1 0 {scan.angles[order][0]:.6f} {2 * np.pi:.6f} {np.radians(1):.8f} "
                f"6.0 0.01 0 {n} {values} 0 {pose} {pose} 0 0 0.5 0.5 0 "
                f"{scan.stamp:.6f} sim {scan.stamp:.6f}"
            )

    run_bump_and_turn(sim, BaselineConfig(duration=seconds), seed=seed, observe=observe)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def test_rebuild_writes_poses_map_and_report(tmp_path):
    log = tmp_path / "sim.log"
    n = write_simulated_log(log)
    with open(log, "a") as fh:
        fh.write("ROBOTLASER1 0 -3.14 6.28 0.0174\n")  # a log cut off mid-line
    out = tmp_path / "out"
    report_path = tmp_path / "report.json"
    store = tmp_path / "store.db"
    result = CliRunner().invoke(
        cli,
        ["rebuild", str(log), "--out", str(out), "--json", str(report_path), "--store", str(store)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    for key in (
        "log",
        "scans",
        "scans_used",
        "nodes",
        "loop_closures",
        "wall_s",
        "realtime_factor",
        "peak_rss_mb",
    ):
        assert key in report
    assert report["scans"] == n and report["malformed_lines"] == 1
    poses = np.loadtxt(out / "poses.txt")
    assert poses.shape == (n, 4)
    stamps = [float(line.split()[-1]) for line in log.read_text().splitlines()[:n]]
    np.testing.assert_allclose(poses[:, 0], stamps, atol=1e-6)  # each scan's own stamp
    assert (out / "map.yaml").read_text().startswith("image: map.pgm")
    from maps.formats.ros import load_pgm

    pgm = load_pgm(out / "map.pgm")
    assert set(np.unique(pgm)) <= {0, 205, 254} and (pgm == 0).sum() > 200
    assert cv2.imread(str(out / "map.png")) is not None

    # the map went into the store too, with the pose graph that can extend it later
    from maps.store import MapStore
    from navigation.slam.posegraph import PoseGraph

    assert report["store"]["version"] == 1
    with MapStore(store) as opened:
        info = opened.info(1)
        assert info.source == "slam" and info.has_pose_graph
        doc = opened.load(1)
        graph = PoseGraph.from_arrays(opened.pose_graph(1))
    assert graph.num_nodes == report["nodes"] and len(doc.paths[0].xy) == report["nodes"]
    assert np.count_nonzero(doc.cell_states() == 1) > 200


def test_rebuild_of_a_corrupt_log_is_one_line(tmp_path):
    bad = tmp_path / "cut.clf.bz2"
    bad.write_bytes(b"BZh91AY&SY" + bytes(range(200)))
    result = run_main("rebuild", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cut.clf.bz2" in result.stderr


def test_eval_scores_a_trajectory_and_writes_json(tmp_path):
    poses = tmp_path / "poses.txt"
    poses.write_text("# t x y theta\n1.0 0 0 0\n2.0 1.0 0 0\n3.0 1.0 1.0 1.5707963\n")
    relations = tmp_path / "r.relations"
    relations.write_text("1.0 2.0 1.1 0 0 0 0 0\n2.0 3.0 0 1.0 0 0 0 1.5707963\n")
    report = tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["eval", str(poses), str(relations), "--json", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["used"] == 2 and data["skipped"] == 0
    assert data["trans_abs_mean_m"] == pytest.approx(0.05, abs=1e-6)


def test_eval_with_swapped_files_is_one_line(tmp_path):
    poses = tmp_path / "poses.txt"
    poses.write_text("1.0 0 0 0\n")
    relations = tmp_path / "r.relations"
    relations.write_text("1.0 2.0 1.1 0 0 0 0 0\n")
    result = run_main("eval", str(relations), str(poses))
    assert result.returncode == 1 and "r.relations: line 1" in result.stderr


def test_run_on_a_plan_without_walls_is_one_line(tmp_path):
    plan = tmp_path / "white.png"
    cv2.imwrite(str(plan), np.full((60, 60), 255, np.uint8))
    result = run_main("run", "--world", str(plan), "--duration", "5", "--out", str(tmp_path / "o"))
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr


def test_bench_relocalize_in_the_map_the_robot_rebuilt(tmp_path):
    plan = np.full((80, 120), 205, np.uint8)
    plan[5:75, 5:115] = 0
    plan[8:72, 8:112] = 255  # a 5.2 m x 3.2 m room ...
    plan[8:30, 80:112] = 0  # ... with a cupboard in one corner
    cv2.imwrite(str(tmp_path / "room.png"), plan)
    report = tmp_path / "r.json"
    args = ["bench", "relocalize", "--world", str(tmp_path / "room.png"), "--map-from", "slam"]
    result = CliRunner().invoke(cli, [*args, "--trials", "2", "--json", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["map_from"] == "slam" and data["trials"] == 2 and data["wrong"] == 0
    assert data["explore"]["stop"] == "no reachable frontier"
    assert data["right"] >= 1, data["failures"]
