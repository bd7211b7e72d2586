"""`vacnav maps ...` and `vacnav inspect` as users run them: real files in, store, exports out."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maps import Pose
from maps.formats import ros
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument, Restrictions, Room
from navigation.cli import cli

INSPECT_KEYS = {
    "width",
    "height",
    "resolution",
    "free_m2",
    "occupied_m2",
    "unknown_m2",
    "rooms",
    "dock",
    "robot",
    "restrictions",
    "obstacles",
}


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def run_main(*args: str, env=None) -> subprocess.CompletedProcess:
    code = "from navigation.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env
    )


def two_room_doc(door_open: bool = True) -> MapDocument:
    """A 4 m x 3 m flat: two rooms split by a wall with a door, a no-go zone, a dock."""
    states = np.full((60, 80), UNKNOWN, np.int8)
    states[2:58, 2:78] = FREE
    states[2:58, [2, 77]] = OCCUPIED
    states[[2, 57], 2:78] = OCCUPIED
    states[2:58, 40] = OCCUPIED
    if door_open:
        states[25:35, 40] = FREE
    rooms = np.zeros(states.shape, np.uint8)
    rooms[3:57, 3:40] = 1
    rooms[3:57, 41:77] = 2
    rooms[states != FREE] = 0
    return MapDocument.from_cells(
        states,
        0.05,
        (-1.0, -0.5),
        rooms=rooms,
        room_info={1: Room(1, "kitchen"), 2: Room(2, "hall")},
        restrictions=Restrictions(no_go=[np.array([[0.5, 0.5], [1.0, 0.5], [1.0, 1.0]])]),
        dock=Pose(-0.8, 0.0, 0.0),
    )


@pytest.fixture(autouse=True)
def default_store(tmp_path, monkeypatch):
    """Never the user's own store: the default location points into the test's folder."""
    monkeypatch.setenv("VACNAV_STORE", str(tmp_path / "default.db"))


@pytest.fixture
def store(tmp_path):
    return str(tmp_path / "store.db")


@pytest.fixture
def ros_map(tmp_path):
    doc = two_room_doc()
    ros.save(doc, tmp_path / "flat")
    return tmp_path / "flat.yaml"


def test_import_list_show_history_export_round_trip(tmp_path, store, ros_map):
    out = invoke("maps", "import", str(ros_map), "--floor", "ground", "--store", store).output
    assert "version 1" in out and "ground" in out
    invoke("maps", "--store", store, "import", str(ros_map), "--floor", "ground")
    listing = invoke("maps", "list", "--store", store).output
    assert "ground" in listing and "v2" in listing
    history = invoke("maps", "history", "ground", "--store", store).output
    assert "v2 *" in history and "v1" in history
    report = tmp_path / "show.json"
    invoke("maps", "show", "1", "--store", store, "--json", str(report))
    shown = json.loads(report.read_text())
    assert INSPECT_KEYS <= shown.keys() and shown["id"] == 1

    stem = tmp_path / "export" / "back"
    invoke("maps", "export", "ground", "--format", "ros", "--out", str(stem), "--store", store)
    back = ros.load(stem.with_suffix(".yaml"))
    np.testing.assert_array_equal(back.cell_states(), two_room_doc().cell_states())
    assert back.grid.origin == pytest.approx((-1.0, -0.5))

    invoke(
        "maps", "export", "1", "--format", "valetudo", "--out", str(tmp_path / "v.json"),
        "--store", store,
    )  # fmt: skip
    valetudo = json.loads((tmp_path / "v.json").read_text())
    # ROS maps carry no rooms
    assert {layer["type"] for layer in valetudo["layers"]} == {"wall", "floor"}
    png = tmp_path / "m.png"
    invoke("maps", "export", "1", "--format", "png", "--out", str(png), "--store", store)
    assert cv2.imread(str(png)) is not None


def test_inspect_file_and_store_entry_json(tmp_path, store, ros_map):
    report = tmp_path / "inspect.json"
    png = tmp_path / "inspect.png"
    invoke("inspect", str(ros_map), "--json", str(report), "--png", str(png))
    data = json.loads(report.read_text())
    assert INSPECT_KEYS <= data.keys()
    doc = two_room_doc()
    states = doc.cell_states()
    assert data["free_m2"] == pytest.approx(np.count_nonzero(states == FREE) * 0.0025)
    assert data["occupied_m2"] == pytest.approx(np.count_nonzero(states == OCCUPIED) * 0.0025)
    assert data["width"] == 80 and data["height"] == 60
    assert cv2.imread(str(png)) is not None
    invoke("maps", "import", str(ros_map), "--store", store)
    invoke("inspect", "default", "--store", store, "--json", str(report))
    assert json.loads(report.read_text())["free_m2"] == pytest.approx(data["free_m2"])


def test_diff_reports_the_closed_door(tmp_path, store):
    for name, door in (("open", True), ("closed", False)):
        ros.save(two_room_doc(door), tmp_path / name)
        invoke("maps", "import", str(tmp_path / f"{name}.yaml"), "--store", store)
    report, png = tmp_path / "diff.json", tmp_path / "diff.png"
    invoke("maps", "diff", "1", "2", "--store", store, "--json", str(report), "--png", str(png))
    data = json.loads(report.read_text())
    assert data["appeared_cells"] == 10
    assert data["changed_m2"] == pytest.approx(10 * 0.0025)
    assert cv2.imread(str(png)) is not None


def test_vendor_files_import_and_inspect(tmp_path, store, shared_data):
    vendor = shared_data / "vendor_maps"
    for path in sorted(vendor.glob("*/*.bin")) + sorted(vendor.glob("*/*.gz")):
        report = tmp_path / f"{path.name}.json"
        invoke("inspect", str(path), "--json", str(report))
        data = json.loads(report.read_text())
        assert data["free_m2"] > 1.0, path.name
        invoke("maps", "import", str(path), "--floor", path.parent.name, "--store", store)
    listing = invoke("maps", "list", "--store", store).output
    for floor in ("roborock", "dreame", "viomi_3irobotix"):
        assert floor in listing


def test_errors_are_one_line_with_the_reason(tmp_path, store):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    result = run_main("inspect", str(junk))
    assert result.returncode == 1
    assert "junk.bin" in result.stderr and "Traceback" not in result.stderr
    result = run_main("maps", "show", "42", "--store", store)
    assert result.returncode == 1 and "42" in result.stderr
    notstore = tmp_path / "notstore.db"
    notstore.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    result = run_main("maps", "list", "--store", str(notstore))
    assert result.returncode == 1 and "not a vacnav map store" in result.stderr
    assert notstore.read_bytes().startswith(b"\x89PNG")  # untouched


def test_bad_floor_names_are_refused_before_any_work(tmp_path, store, ros_map):
    for floor in ("12", " x", "a\tb"):
        result = run_main("maps", "import", str(ros_map), "--floor", floor, "--store", store)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "floor" in result.stderr
    assert not (tmp_path / "store.db").exists()  # nothing written


def test_export_default_names_stay_here_and_png_means_png(tmp_path, store, ros_map, monkeypatch):
    invoke("maps", "import", str(ros_map), "--floor", "a/../../b", "--store", store)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    invoke("maps", "export", "1", "--format", "png", "--store", store)
    invoke("maps", "export", "1", "--format", "ros", "--mode", "scale", "--store", store)
    invoke("maps", "export", "1", "--format", "valetudo", "--store", store)
    names = sorted(p.name for p in work.iterdir())
    assert names == ["a_b-v1-ros.png", "a_b-v1-ros.yaml", "a_b-v1.json", "a_b-v1.png"]
    result = CliRunner().invoke(
        cli, ["maps", "export", "1", "--format", "png", "--out", "x.jpg", "--store", store]
    )
    assert result.exit_code != 0 and "PNG" in result.output


def test_diff_refuses_maps_of_two_robot_families(tmp_path, store):
    from maps.model import VendorFrame
    from maps.store import MapStore

    with MapStore(store) as opened:
        for vendor in ("roborock", "dreame"):
            doc = two_room_doc()
            doc.frame = VendorFrame(vendor, 0.001, (0.0, 0.0))
            opened.save(doc, floor=vendor, source="import")
    result = run_main("maps", "diff", "roborock", "dreame", "--store", store)
    assert result.returncode == 1 and "frame" in result.stderr and "Traceback" not in result.stderr
