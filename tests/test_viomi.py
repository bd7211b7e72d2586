"""Viomi / 3irobotix map import: Valetudo's golden output, the world frame, and bad input.

Most tests build a small Viomi map themselves (`build`); the golden and real-byte tests read the
fixtures from ../shared/data/vendor_maps/viomi_3irobotix.
"""

from __future__ import annotations

import json
import math
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from valetudo_golden import assert_matches_valetudo

from maps.errors import CorruptMap, MapNotFound
from maps.formats import viomi
from maps.formats.valetudo import decompress, export
from maps.model import FREE, OCCUPIED, UNKNOWN

FIXTURES = (
    "viomi_v6_41_virtual_restrictions_and_active_zones",
    "viomi_v7_47_cleaned_segment_ids",
)
MAP_ID = 0x13DEBC9A
NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------ a synthetic map, built here


def _f(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _entry(corners) -> bytes:
    return bytes(12) + _f(*np.ravel(corners)) + bytes(48)


def build(
    image: np.ndarray,
    *,
    map_id: int = MAP_ID,
    bounds=(-1.0, -0.75, 1.0, 0.75),
    resolution: float = 0.05,
    path=None,
    charger=None,
    robot=None,
    no_go=(),
    walls=(),
    zones=(),
    go_to=None,
    names=None,
    inflated: bool = False,
) -> bytes:
    """A Viomi map file: `image` is (H, W) uint8 with row 0 = lowest y; sections as given."""
    mid = struct.pack("<I", map_id)
    h, w = image.shape
    sections = {
        0x0001: mid + bytes(40),
        0x0002: mid + struct.pack("<IIII", 1, 1, h, w) + _f(*bounds, resolution) + image.tobytes(),
    }
    if path is not None:
        points = b"".join(bytes([1]) + _f(x, y) for x, y in path)
        sections[0x0004] = mid + struct.pack("<II", 0, len(path)) + points
    if charger is not None:
        sections[0x0008] = mid + _f(*charger)
    if no_go or walls:
        entries = [_entry(c) for c in no_go] + [_entry([a, a, b, b]) for a, b in walls]
        sections[0x0010] = mid + struct.pack("<II", 0, len(entries)) + b"".join(entries)
    if zones:
        sections[0x0020] = mid + struct.pack("<II", 0, len(zones)) + b"".join(map(_entry, zones))
    if go_to is not None:
        sections[0x0040] = mid + bytes(4) + _f(*go_to) + bytes(4)
    if robot is not None:
        sections[0x0080] = mid + bytes(5) + _f(*robot)
    if names is not None:
        rooms = b"".join(
            bytes([rid, len(name.encode())]) + name.encode() + bytes(1) + _f(0.0, 0.0)
            for rid, name in names.items()
        )
        head = bytes([4]) + b"Map1" + struct.pack("<II", 1, len(names))
        sections[0x1000] = mid + head + rooms + bytes(6)
    flags = sum(sections)
    body = struct.pack("<HH", flags, 0) + b"".join(sections[k] for k in sorted(sections))
    return body if inflated else zlib.compress(body)


def small_image() -> np.ndarray:
    """(30, 40): a walled box; room 10 on the left, room 11 (being cleaned) on the right."""
    img = np.zeros((30, 40), np.uint8)
    img[5:20, 8:30] = 255
    img[6:19, 9:18] = 10
    img[6:19, 18:25] = 60 + 1  # room 11, active
    img[6:19, 25:29] = 1
    return img


def small_map(**kw) -> bytes:
    args = dict(
        path=[(-0.4, -0.1), (-0.2, -0.1), (-0.2, 0.1)],
        charger=(0.3, -0.35, 1.25),
        robot=(-0.2, 0.1, 0.5),
        no_go=[[(-0.5, -0.2), (-0.3, -0.2), (-0.3, 0.0), (-0.5, 0.0)]],
        walls=[((0.0, -0.2), (0.0, 0.2))],
        zones=[[(0.1, -0.1), (0.1, 0.1), (0.3, 0.1), (0.3, -0.1)]],
        go_to=(0.25, 0.05),
        names={10: "kitchen", 11: "hall"},
    )
    args.update(kw)
    return build(small_image(), **args)


def f32(value: float) -> float:
    return float(np.float32(value))


def cm(x: float, y: float) -> list[int]:
    """Valetudo's cm for a float32 point: ceil((20 m + v) * 100), y flipped on 4000 cm."""
    return [math.ceil((20 + f32(x)) * 100), 4000 - math.ceil((20 + f32(y)) * 100)]


# ------------------------------------------------------------------------------- synthetic maps


def test_sniff():
    assert viomi.sniff(small_map())
    assert viomi.sniff(build(small_image(), map_id=0))
    assert not viomi.sniff(b"")
    assert not viomi.sniff(b"rr\x14\x00" + bytes(60))
    assert not viomi.sniff(zlib.compress(b"hello world" * 10))
    assert not viomi.sniff(small_map()[:10])
    assert not viomi.sniff(build(small_image(), inflated=True))


def test_cells_rooms_and_frame():
    doc = viomi.parse(small_map(), "small.bin")
    img = small_image()
    # cropped to the known pixels: rows 5..19, columns 8..29 of the image
    assert doc.grid.shape == (15, 22)
    assert doc.grid.resolution == 0.05
    assert doc.grid.origin == pytest.approx((-1.0 + 8 * 0.05, -0.75 + 5 * 0.05), abs=1e-12)
    states = doc.cell_states()
    crop = img[5:20, 8:30]
    assert np.array_equal(states == OCCUPIED, crop == 255)
    assert np.array_equal(states == FREE, (crop != 0) & (crop != 255))
    assert np.array_equal(doc.rooms, np.where(crop == 61, 11, np.where(crop == 10, 10, 0)))
    assert {k: (r.name, r.active) for k, r in doc.room_info.items()} == {
        10: ("kitchen", False),
        11: ("hall", True),
    }
    # image row r covers world y in [min_y + r * res, ...): row 0 is the lowest y
    for r, c in [(5, 8), (6, 9), (12, 20), (18, 28), (19, 29)]:
        x, y = -1.0 + (c + 0.5) * 0.05, -0.75 + (r + 0.5) * 0.05
        i, j = doc.grid.world_to_cell([x, y])[0]
        assert (i, j) == (r - 5, c - 8)
    assert doc.frame.vendor == "viomi" and doc.frame.unit == 1.0 and doc.frame.origin == (0, 0)
    assert doc.meta["vendor"] == "viomi" and doc.meta["vendor_map_id"] == MAP_ID


def test_entities_in_world_metres():
    doc = viomi.parse(small_map(), "small.bin")
    assert (doc.dock.x, doc.dock.y, doc.dock.theta) == (f32(0.3), f32(-0.35), f32(1.25))
    assert (doc.robot.x, doc.robot.y, doc.robot.theta) == (f32(-0.2), f32(0.1), f32(0.5))
    assert len(doc.paths) == 1 and doc.paths[0].kind == "path"
    np.testing.assert_array_equal(
        doc.paths[0].xy, np.float32([(-0.4, -0.1), (-0.2, -0.1), (-0.2, 0.1)]).astype(float)
    )
    (wall,) = doc.restrictions.virtual_walls
    np.testing.assert_array_equal(wall, np.float32([(0.0, -0.2), (0.0, 0.2)]))
    (area,) = doc.restrictions.no_go
    np.testing.assert_array_equal(area[2], np.float32((-0.3, 0.0)))
    (zone,) = doc.active_zones
    np.testing.assert_array_equal(zone[2], np.float32((0.3, 0.1)))
    assert doc.go_to_target == (f32(0.25), f32(0.05))


def test_unknown_positions_are_dropped():
    doc = viomi.parse(small_map(go_to=(1100.0, 1100.0), charger=(1100.0, 1100.0, 0.0)))
    assert doc.go_to_target is None and doc.dock is None


def test_valetudo_view_of_a_synthetic_map():
    doc = viomi.parse(small_map(), "small.bin")
    out = export(doc)
    assert out["size"] == {"x": 150, "y": 200} and out["pixelSize"] == 5  # 40 x 30 px canvas
    wall = next(layer for layer in out["layers"] if layer["type"] == "wall")
    img = small_image()
    rows, cols = np.nonzero(img == 255)
    assert decompress(wall["compressedPixels"]) == set(zip(cols, 29 - rows, strict=True))
    segments = {layer["metaData"]["segmentId"]: layer["metaData"] for layer in out["layers"][2:]}
    assert segments["11"] == {"segmentId": "11", "active": True, "name": "hall", "area": 91 * 25}
    by_type = {e["type"]: e for e in out["entities"]}
    # Valetudo: cm = ceil((20 m + v) * 100), y flipped on 4000 cm; the float32 value counts
    assert by_type["charger_location"]["points"] == cm(0.3, -0.35)
    assert cm(0.3, 0.0)[0] == 2031  # float32(0.3) is a hair above 0.3
    assert by_type["charger_location"]["metaData"] == {"angle": f32(1.25) + 180}
    # the robot's angle comes from the last path step: straight up is 0
    assert by_type["robot_position"]["metaData"] == {"angle": 0}
    assert by_type["virtual_wall"]["points"] == cm(0.0, -0.2) + cm(0.0, 0.2)


def test_robot_angle_without_a_path_is_the_reported_one():
    doc = viomi.parse(small_map(path=None, robot=(0.0, 0.0, -3.0)))
    robot = next(e for e in export(doc)["entities"] if e["type"] == "robot_position")
    assert robot["metaData"] == {"angle": f32(-3.0) + 180}
    # an angle outside (-pi, pi] is kept as reported (JS %, sign of the dividend)
    doc = viomi.parse(small_map(path=None, robot=(0.0, 0.0, -200.0)))
    robot = next(e for e in export(doc)["entities"] if e["type"] == "robot_position")
    assert robot["metaData"] == {"angle": -20}
    assert doc.robot.theta == pytest.approx(math.remainder(-200.0, 2 * math.pi))


def test_temporary_map_walks_sections_by_length():
    path = [(-0.4, -0.1), (-0.2, -0.1)]
    doc = viomi.parse(build(small_image(), map_id=0, path=path), "temp.bin")
    assert doc.meta["vendor_map_id"] == 0 and doc.meta["temporary_map"]
    assert doc.rooms is None and not doc.room_info  # rooms are plain floor on a temporary map
    assert int((doc.cell_states() == FREE).sum()) == int(((small_image() % 255) > 0).sum())
    # no robot section: the robot stands at the end of its path, heading along it
    assert (doc.robot.x, doc.robot.y) == (f32(-0.2), f32(-0.1))
    assert doc.robot.theta == pytest.approx(0.0, abs=1e-6)
    robot = next(e for e in export(doc)["entities"] if e["type"] == "robot_position")
    assert robot["metaData"] == {"angle": 90}
    one = viomi.parse(build(small_image(), map_id=0, path=path[:1]), "temp.bin")
    robot = next(e for e in export(one)["entities"] if e["type"] == "robot_position")
    assert robot["metaData"] == {"angle": 0}


def test_load(tmp_path):
    (tmp_path / "map.bin").write_bytes(small_map())
    assert viomi.load(tmp_path / "map.bin").grid.shape == (15, 22)
    with pytest.raises(MapNotFound):
        viomi.load(tmp_path / "missing.bin")


# ------------------------------------------------------------------------------- bad input


def corrupt(data: bytes, *match: str) -> str:
    with pytest.raises(CorruptMap) as info:
        viomi.parse(data, "bad.bin")
    message = str(info.value)
    assert "bad.bin" in message
    for text in match:
        assert text in message, message
    return message


def test_empty_and_not_zlib():
    corrupt(b"", "empty")
    corrupt(b"\x00" * 20, "zlib")
    corrupt(zlib.compress(b"\x03\x00"), "8")


def test_truncated_zlib():
    data = small_map()
    for cut in (1, 2, len(data) // 2, len(data) - 1):
        corrupt(data[:cut], "zlib")


def test_missing_image_section():
    body = bytearray(small_map(inflated=True))
    body[0] &= ~0x02  # the flag gone
    corrupt(zlib.compress(bytes(body)), "no image")
    # the flag set, but the map id never repeated: no section can be found
    only_header = struct.pack("<HHI", 0x0003, 0, MAP_ID) + bytes(40)
    corrupt(zlib.compress(only_header), "image section is missing")


def test_dimensions_past_the_end():
    body = build(small_image(), inflated=True)  # the image is the last section
    corrupt(zlib.compress(body[:-7]), "offset 60", "1193 bytes follow")
    grown = bytearray(body)
    struct.pack_into("<I", grown, 48 + 12, 31)  # one more row than there are bytes
    corrupt(zlib.compress(bytes(grown)), "offset 60", "31 x 40")


@pytest.mark.parametrize("dims", [(0xFFFFFFFF, 0xFFFFFFFF), (0, 40), (0x10000, 0x10000)])
def test_absurd_dimensions(dims):
    body = bytearray(build(small_image(), inflated=True))
    struct.pack_into("<II", body, 48 + 12, *dims)
    corrupt(zlib.compress(bytes(body)), "image")


def test_absurd_dimensions_of_a_temporary_map():
    body = bytearray(build(small_image(), map_id=0, inflated=True))
    struct.pack_into("<II", body, 48 + 12, 0xFFFFFFFF, 0xFFFFFFFF)
    corrupt(zlib.compress(bytes(body)), "image")


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize(
    "where",
    ["charger", "robot", "path", "no_go", "zones", "go_to", "resolution", "bounds", "angle"],
)
def test_non_finite_floats(where, bad):
    kw = {
        "charger": {"charger": (bad, 0.0, 0.0)},
        "robot": {"robot": (0.0, bad, 0.0)},
        "path": {"path": [(0.0, 0.0), (bad, 0.0)]},
        "no_go": {"no_go": [[(0.0, 0.0), (0.1, 0.0), (0.1, bad), (0.0, 0.1)]]},
        "zones": {"zones": [[(0.0, 0.0), (0.1, 0.0), (0.1, 0.1), (bad, 0.1)]]},
        "go_to": {"go_to": (bad, 0.0)},
        "resolution": {"resolution": bad},
        "bounds": {"bounds": (bad, -0.75, 1.0, 0.75)},
        "angle": {"charger": (0.0, 0.0, bad)},
    }[where]
    corrupt(small_map(**kw), "offset")


def test_absurd_floats():
    corrupt(small_map(resolution=0.0), "resolution")
    corrupt(small_map(resolution=-0.05), "resolution")
    corrupt(small_map(charger=(3.0e30, 0.0, 0.0)), "x is")


def test_short_sections():
    body = small_map(inflated=True)
    path = 48 + 40 + 30 * 40  # status, image, then the path
    charger = body.index(struct.pack("<I", MAP_ID), path + 4)
    corrupt(zlib.compress(body[: charger + 10]), f"offset {charger + 8}", "charger")
    many = bytearray(build(small_image(), path=[(0.0, 0.0)], inflated=True))
    struct.pack_into("<I", many, 48 + 40 + 30 * 40 + 8, 0xFFFFFFFF)  # path point count
    corrupt(zlib.compress(bytes(many)), "path points")
    names = small_map(inflated=True)
    count = names.index(b"Map1") + 4 + 4  # after the map name and its u32
    rooms = bytearray(names)
    struct.pack_into("<I", rooms, count, 100_000)
    corrupt(zlib.compress(bytes(rooms)), f"offset {count}", "room count")
    rooms = names[: count + 4 + 2 + 3]  # the first name cut short
    corrupt(zlib.compress(rooms), "room 0 name")


def test_empty_image():
    corrupt(build(np.zeros((30, 40), np.uint8)), "empty map")


def test_inflated_size_is_capped(monkeypatch):
    monkeypatch.setattr(viomi, "MAX_INFLATED", 1000)
    corrupt(small_map(), "more than 1,000 bytes")


def test_random_mutations_give_a_map_or_corrupt_map():
    rng = np.random.default_rng(0)
    body = small_map(inflated=True)
    for _ in range(300):
        data = bytearray(body)
        for at in rng.integers(0, len(data), rng.integers(1, 4)):
            data[at] = rng.integers(0, 256)
        if rng.random() < 0.3:
            del data[rng.integers(0, len(data)) :]
        try:
            viomi.parse(zlib.compress(bytes(data)), "fuzz.bin")
        except CorruptMap as exc:
            assert "fuzz.bin" in str(exc)


# ---------------------------------------------------------- what a small file may make us build

PEAK_LIMIT = 200 * 2**20  # bytes traced by tracemalloc while one bomb is parsed


def peak_of(data: bytes):
    """(document or the CorruptMap raised, peak bytes numpy and Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        try:
            result = viomi.parse(data, "bomb.bin")
        except CorruptMap as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def with_path(count: int, tail=(), map_id: int = MAP_ID) -> bytes:
    """A map whose path holds `count` points: (0.5, 0.25), then the points of `tail`."""
    body = build(small_image(), map_id=map_id, path=[(0.0, 0.0)], inflated=True)
    path_at = 48 + 40 + 30 * 40  # status, image, then the path (the last section)
    points = (bytes([1]) + _f(0.5, 0.25)) * (count - len(tail))
    points += b"".join(bytes([1]) + _f(x, y) for x, y in tail)
    head = struct.pack("<I", map_id) + struct.pack("<II", 0, count)
    return zlib.compress(body[:path_at] + head + points, 9)


@pytest.mark.parametrize("side", [8000, 2049])
def test_huge_image_is_refused_and_memory_stays_small(side):
    error, peak = peak_of(build(np.ones((side, side), np.uint8)))  # 62 kB for 8000 x 8000
    assert isinstance(error, CorruptMap) and str(error).startswith("bomb.bin: ")
    assert peak < PEAK_LIMIT
    if side == 2049:
        assert "2049 x 2049 pixels is more than any map holds" in str(error)
    doc, peak = peak_of(build(np.ones((2048, 2048), np.uint8), bounds=(-50, -50, 52.4, 52.4)))
    assert doc.grid.shape == (2048, 2048) and peak < PEAK_LIMIT


def test_long_path_keeps_the_first_points_and_memory_stays_small():
    doc, peak = peak_of(with_path(3_000_000))  # 53 kB
    assert [len(p.xy) for p in doc.paths] == [2_000_000]
    assert doc.meta["path_points_dropped"] == 1_000_000
    assert peak < PEAK_LIMIT


def test_cut_path_of_a_temporary_map_puts_the_robot_at_its_true_end(monkeypatch):
    monkeypatch.setattr(viomi, "MAX_PATH_POINTS", 2)
    doc = viomi.parse(with_path(5, tail=[(1.0, 1.0), (1.0, 2.0)], map_id=0))
    assert len(doc.paths[0].xy) == 2 and doc.meta["path_points_dropped"] == 3
    assert (doc.robot.x, doc.robot.y, doc.robot.theta) == pytest.approx((1.0, 2.0, math.pi / 2))
    bad_end = with_path(5, tail=[(1.0, NAN)], map_id=0)
    corrupt(bad_end, "path point 4 is")  # the points read for the robot are checked too


def test_millions_of_entries_are_refused_and_memory_stays_small():
    body = build(small_image(), inflated=True)
    flags = struct.unpack_from("<H", body)[0] | 0x0010  # add a restrictions section at the end
    count = 300_000
    entries = struct.pack("<I", MAP_ID) + struct.pack("<II", 0, count) + bytes(92 * count)
    error, peak = peak_of(zlib.compress(struct.pack("<H", flags) + body[2:] + entries, 9))
    assert isinstance(error, CorruptMap)
    assert "restrictions section: 300,000 entries, more than 10,000" in str(error)
    assert peak < PEAK_LIMIT


def test_resolution_and_bounds_from_the_file_are_bounded():
    for resolution in (1e30, 1e-30, 0.004, 1.5):
        corrupt(small_map(resolution=resolution), "offset", "resolution")
    for bounds in ((-3.0e30, -0.75, 1.0, 0.75), (-1.0, -0.75, 1.0, 2.0e5)):
        corrupt(small_map(bounds=bounds), "offset", "image bound")
    doc = viomi.parse(small_map(resolution=1.0, bounds=(-1.0e5, -1.0e5, 1.0e5, 1.0e5)))
    assert all(abs(v) <= 1.0e5 + 40 for v in doc.grid.origin)
    assert doc.summary()["width"] == doc.grid.shape[1]


# ------------------------------------------------------------------------------- real files


@pytest.fixture
def viomi_dir(shared_data: Path) -> Path:
    return shared_data / "vendor_maps" / "viomi_3irobotix"


@pytest.mark.shared_data
@pytest.mark.parametrize("name", FIXTURES)
def test_matches_valetudo(viomi_dir, name):
    data = (viomi_dir / f"{name}.bin").read_bytes()
    assert viomi.sniff(data)
    assert_matches_valetudo(viomi.parse(data, name), viomi_dir / f"{name}.json")


@pytest.mark.shared_data
@pytest.mark.parametrize("name", FIXTURES)
def test_real_map_in_the_world_frame(viomi_dir, name):
    """Valetudo's pixels and points, taken back to metres by its own convention
    (x = cm / 100 - 20, y = 20 - cm / 100), land on the matching cells of our grid."""
    doc = viomi.parse((viomi_dir / f"{name}.bin").read_bytes(), name)
    expected = json.loads((viomi_dir / f"{name}.json").read_text())
    states = doc.cell_states()
    total = 0
    for layer in expected["layers"]:
        px = np.array(sorted(decompress(layer["compressedPixels"])), np.float64)
        xy = np.stack([(px[:, 0] * 5 + 2.5) / 100 - 20, 20 - (px[:, 1] * 5 + 2.5) / 100], 1)
        ij = doc.grid.world_to_cell(xy)
        assert doc.grid.in_bounds(ij).all()
        want = OCCUPIED if layer["type"] == "wall" else FREE
        assert (states[ij[:, 0], ij[:, 1]] == want).all()
        rid = int(layer["metaData"].get("segmentId", 0))
        assert (doc.rooms[ij[:, 0], ij[:, 1]] == rid).all()
        total += len(px)
    assert int((states != UNKNOWN).sum()) == total

    points = {e["type"]: e["points"] for e in expected["entities"] if e["type"] != "path"}
    for kind, pose in (("charger_location", doc.dock), ("robot_position", doc.robot)):
        x_cm, y_cm = points[kind]
        assert 0 <= (x_cm / 100 - 20) - pose.x < 0.01  # Valetudo rounds up to the next cm
        assert 0 <= (20 - y_cm / 100) - pose.y < 0.01
    # the dock stands on its wall facing into the room: free floor ahead, none behind
    for dist, free in ((0.3, True), (-0.3, False)):
        x = doc.dock.x + dist * math.cos(doc.dock.theta)
        y = doc.dock.y + dist * math.sin(doc.dock.theta)
        i, j = doc.grid.world_to_cell([x, y])[0]
        assert (states[i, j] == FREE) == free
    assert doc.robot.theta == pytest.approx(-2.2559 if "v6" in name else -1.2702, abs=1e-4)
    # every path point lies on known map
    ij = doc.grid.world_to_cell(doc.paths[0].xy)
    assert (states[ij[:, 0], ij[:, 1]] != UNKNOWN).all()


@pytest.mark.shared_data
@pytest.mark.parametrize("name", FIXTURES)
def test_real_bytes_corrupted(viomi_dir, name):
    raw = (viomi_dir / f"{name}.bin").read_bytes()
    body = zlib.decompress(raw)
    corrupt(raw[: len(raw) // 2], "zlib")
    corrupt(raw[:-4], "zlib")  # the Adler-32 trailer gone
    image = body.index(body[4:8], 8)
    wrong = bytearray(body)
    struct.pack_into("<I", wrong, image + 12, 801)  # height past the section's end
    corrupt(zlib.compress(bytes(wrong)), f"offset {image + 12}", "801 x 800")
    huge = bytearray(body)
    struct.pack_into("<II", huge, image + 12, 0xFFFFFFFF, 0xFFFFFFFF)
    corrupt(zlib.compress(bytes(huge)), "image")
    nan = bytearray(body)
    struct.pack_into("<f", nan, image + 36, NAN)
    corrupt(zlib.compress(bytes(nan)), f"offset {image + 36}", "resolution")
    charger = body.index(body[4:8], body.index(body[4:8], image + 4) + 4)
    for offset, value in ((4, INF), (8, NAN), (12, NAN)):
        bad = bytearray(body)
        struct.pack_into("<f", bad, charger + offset, value)
        corrupt(zlib.compress(bytes(bad)), f"offset {charger + offset}", "charger")
    no_image = bytearray(body)
    no_image[0] &= ~0x02
    corrupt(zlib.compress(bytes(no_image)), "no image")
    corrupt(zlib.compress(body[: image + 1000]), "pixels")
