"""Roborock RRMap import: Valetudo's own output on the real fixtures, the world frame, and bad input
(from a small RRMap assembled here with struct, and from the real bytes)."""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from valetudo_golden import assert_matches_valetudo

from maps.errors import CorruptMap, MapNotFound
from maps.formats import load_map, roborock
from maps.formats.valetudo import decompress, export
from maps.grid import OccupancyGrid
from maps.model import FREE, OCCUPIED, UNKNOWN

GOLDEN = [
    "S5_FW1886_with_goto_target",
    "S5_FW2008_with_segments",
    "S6_FW2652_with_active_segment_and_no_mop_zone",
    "S8_FW1286_with_obstacles",
]
RRMAP_GZ = ["marcelrv_roboroommap-with-objects", "marcelrv_roboroommap_55512646_6"]


# --- a small RRMap built here --------------------------------------------------------------


def block(btype: int, extra: bytes = b"", data: bytes = b"") -> bytes:
    """One block: type, header length, data length, the rest of the header, the data."""
    return struct.pack("<HHI", btype, 8 + len(extra), len(data)) + extra + data


def rrmap(*blocks: bytes, map_index: int = 7, digest: bool = True) -> bytes:
    """The file header, the blocks and (like the firmware) a SHA-1 digest block at the end."""
    body = b"".join(blocks)
    size = len(body) + (28 if digest else 0)
    out = struct.pack("<2sHIHHII", b"rr", 20, size, 1, 1, map_index, 3) + body
    if digest:
        head = struct.pack("<HHI", 1024, 8, 20)
        out += head + hashlib.sha1(out + head).digest()
    return out


def image(cells: np.ndarray, top: int, left: int, gen3: bool = True) -> bytes:
    """Image block of `cells` (rows bottom-up, as stored) at cell (top, left) of the 1024 grid."""
    h, w = cells.shape
    extra = (struct.pack("<I", 2) if gen3 else b"") + struct.pack("<iiii", top, left, h, w)
    return block(2, extra, np.ascontiguousarray(cells, np.uint8).tobytes())


def count_block(btype: int, count: int, data: bytes) -> bytes:
    return block(btype, struct.pack("<I", count), data)


def u16(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


def mm_to_world(x: float, y: float) -> tuple[float, float]:
    return (x - 25600) / 1000, (y - 25600) / 1000


def world_points(flat: tuple[int, ...]) -> list[tuple[float, float]]:
    """x0, y0, x1, y1, ... in mm -> [(x, y), ...] in world metres."""
    return [mm_to_world(flat[k], flat[k + 1]) for k in range(0, len(flat), 2)]


def valetudo_cm(x: int, y: int) -> list[int]:
    """Valetudo's conversion, written out: Math.round(x / 10), Math.round((51200 - y) / 10)."""
    return [math.floor(x / 10 + 0.5), math.floor((51200 - y) / 10 + 0.5)]


ROOM2, ROOM3 = (2 << 3) | 7, (3 << 3) | 7
CELLS = np.array(  # row 0 is the lowest y, as the firmware stores it
    [
        [0, 1, 1, 1, 0],
        [1, ROOM2, ROOM2, 7, 1],
        [1, ROOM3, ROOM3, 0x08, 1],  # 0x08: room bits on a "none" cell -> unknown
        [0, 1, 1, 1, 0],
    ],
    np.uint8,
)
TOP, LEFT = 510, 500
DOCK = (25612, 25254, 90)  # mm, mm, degrees
ROBOT = (25655, 25545, -2)
PATH = [(25600, 25500), (25625, 25515), (25655, 25545)]
NO_GO = (25000, 25000, 25200, 25000, 25200, 25200, 25000, 25200)
NO_MOP = (26000, 26000, 26100, 26000, 26100, 26100, 26000, 26100)
WALL = (25100, 25300, 25100, 25800)
ZONE = (25500, 25400, 25700, 25650)
GOTO = (25615, 25555)
OBSTACLE = (25700, 25300, 48, 8449)  # x, y, class (Cable), confidence 84.49 %


def materials() -> bytes:
    codes = bytearray(32)
    codes[2] = 4  # room 2 tiled, room 3 left at 0 = generic
    return bytes(codes)


def synthetic(**overrides) -> bytes:
    parts = {
        "image": image(CELLS, TOP, LEFT),
        "dock": block(1, data=struct.pack("<IIi", *DOCK)),
        "robot": block(8, data=struct.pack("<IIi", *ROBOT)),
        "path": block(3, struct.pack("<III", len(PATH), 4, 0), u16(*sum(PATH, ()))),
        "goto": block(7, data=u16(*GOTO)),
        "zones": count_block(6, 1, u16(*ZONE)),
        "no_go": count_block(9, 1, u16(*NO_GO)),
        "walls": count_block(10, 1, u16(*WALL)),
        "active": count_block(11, 1, bytes([3])),
        "no_mop": count_block(12, 1, u16(*NO_MOP)),
        "obstacles": count_block(15, 1, u16(*OBSTACLE)),
        "carpet": block(17, data=bytes(CELLS.size)),
        "unknown": block(777, struct.pack("<I", 5), b"\x01\x02\x03"),
        "materials": block(24, data=materials()),
    }
    parts.update(overrides)
    return rrmap(*(p for p in parts.values() if p is not None))


def test_synthetic_grid_rooms_and_meta():
    doc = roborock.parse(synthetic(), "tiny.rrmap")
    states = doc.cell_states()
    kind = CELLS & 7
    want = np.where(kind == 0, UNKNOWN, np.where(kind == 1, OCCUPIED, FREE))
    np.testing.assert_array_equal(states, want)
    assert doc.grid.resolution == pytest.approx(0.05)
    np.testing.assert_allclose(doc.grid.origin, mm_to_world(LEFT * 50, TOP * 50), atol=1e-12)
    np.testing.assert_array_equal(doc.rooms, np.where(kind > 1, CELLS >> 3, 0))
    assert sorted(doc.room_info) == [2, 3]
    assert doc.room_info[2].active is False and doc.room_info[2].meta == {"material": "tile"}
    assert doc.room_info[3].active is True and doc.room_info[3].meta == {"material": "generic"}
    assert doc.room_areas() == pytest.approx({2: 2 * 0.0025, 3: 2 * 0.0025})
    assert doc.frame == roborock.FRAME
    assert doc.meta["vendor"] == "roborock"
    assert doc.meta["vendor_map_id"] == 7
    assert doc.meta["format_version"] == "1.1"
    assert doc.meta["image_header"] == "gen3"
    assert doc.meta["unknown_blocks"] == 1 and doc.meta["unknown_block_types"] == [777]
    assert doc.meta["skipped_blocks"] == {"carpet_map": 1}
    assert doc.meta["digest_ok"] is True


def test_synthetic_entities_in_world_metres():
    doc = roborock.parse(synthetic(), "tiny.rrmap")
    assert (doc.dock.x, doc.dock.y) == pytest.approx(mm_to_world(*DOCK[:2]))
    assert doc.dock.theta == pytest.approx(math.radians(DOCK[2]))
    assert (doc.robot.x, doc.robot.y) == pytest.approx(mm_to_world(*ROBOT[:2]))
    assert doc.robot.theta == pytest.approx(math.radians(ROBOT[2]))
    assert doc.meta["robot_angle_source"] == "firmware"
    assert doc.go_to_target == pytest.approx(mm_to_world(*GOTO))
    (path,) = doc.paths
    assert path.kind == "path"
    np.testing.assert_allclose(path.xy, [mm_to_world(*p) for p in PATH])
    r = doc.restrictions
    assert r.counts() == {"no_go": 1, "virtual_walls": 1, "no_mop": 1}
    np.testing.assert_allclose(r.no_go[0], world_points(NO_GO))
    np.testing.assert_allclose(r.no_mop[0], world_points(NO_MOP))
    np.testing.assert_allclose(r.virtual_walls[0], world_points(WALL))
    x0, y0, x1, y1 = ZONE
    (zone,) = doc.active_zones
    np.testing.assert_allclose(
        zone, [mm_to_world(*p) for p in ((x0, y0), (x0, y1), (x1, y1), (x1, y0))]
    )
    (ob,) = doc.obstacles
    assert (ob.x, ob.y) == pytest.approx(mm_to_world(*OBSTACLE[:2]))
    assert ob.label == "Cable (84%)" and ob.source == "vendor"


def test_synthetic_export_uses_valetudo_formulas():
    out = export(roborock.parse(synthetic(), "tiny.rrmap"))
    assert out["size"] == {"x": 5120, "y": 5120} and out["pixelSize"] == 5
    assert out["metaData"]["vendorMapId"] == 7
    layers = {(la["type"], la["metaData"].get("segmentId")): la for la in out["layers"]}
    # stored row r of the image is canvas row 1023 - top - r; column c is canvas column left + c
    walls = {(LEFT + c, 1023 - TOP - r) for r, c in np.argwhere((CELLS & 7) == 1).tolist()}
    assert decompress(layers[("wall", None)]["compressedPixels"]) == walls
    assert decompress(layers[("floor", None)]["compressedPixels"]) == {(LEFT + 3, 1023 - TOP - 1)}
    assert layers[("segment", "2")]["metaData"] == {
        "segmentId": "2",
        "active": False,
        "material": "tile",
        "area": 50,
    }
    assert layers[("segment", "3")]["metaData"]["active"] is True
    entities = {e["type"]: e for e in out["entities"]}
    assert entities["charger_location"]["points"] == valetudo_cm(*DOCK[:2])
    assert entities["charger_location"]["metaData"] == {}
    assert entities["robot_position"]["points"] == valetudo_cm(*ROBOT[:2])
    assert entities["robot_position"]["metaData"] == {"angle": (-ROBOT[2] + 450) % 360}
    assert entities["go_to_target"]["points"] == valetudo_cm(*GOTO)
    assert entities["path"]["points"] == sum((valetudo_cm(*p) for p in PATH), [])
    assert entities["obstacle"]["metaData"] == {"label": "Cable (84%)"}
    x0, y0, x1, y1 = ZONE
    zone = valetudo_cm(x0, y0) + valetudo_cm(x0, y1) + valetudo_cm(x1, y1) + valetudo_cm(x1, y0)
    assert entities["active_zone"]["points"] == zone


def test_robot_heading_from_the_path_without_firmware_angle():
    # old firmware: no angle in the position block; the last path step goes up (+y)
    robot = block(8, data=struct.pack("<II", 25600, 25700))
    path = block(3, struct.pack("<III", 2, 4, 0), u16(25600, 25500, 25600, 25700))
    doc = roborock.parse(synthetic(robot=robot, path=path), "old.rrmap")
    assert doc.meta["robot_angle_source"] == "path"
    assert doc.robot.theta == pytest.approx(math.pi / 2)
    entities = {e["type"]: e for e in export(doc)["entities"]}
    assert entities["robot_position"]["metaData"] == {"angle": 0}  # north


def test_old_image_header_has_no_rooms():
    cells = np.where(CELLS > 1, 0xFF, CELLS).astype(np.uint8)  # old firmware: 0xFF = floor
    doc = roborock.parse(synthetic(image=image(cells, TOP, LEFT, gen3=False)), "old.rrmap")
    assert doc.rooms is None and doc.room_info == {}
    assert doc.meta["image_header"] == "old"
    assert np.count_nonzero(doc.cell_states() == FREE) == np.count_nonzero((cells & 7) > 1)


def test_gzip_and_raw_give_the_same_map_and_sniff_both():
    raw = synthetic()
    packed = gzip.compress(raw)
    assert roborock.sniff(raw) and roborock.sniff(packed)
    assert not roborock.sniff(b"") and not roborock.sniff(b"P5\n") and not roborock.sniff(b"\x1f")
    assert not roborock.sniff(gzip.compress(b"xx not a map"))
    a, b = roborock.parse(raw), roborock.parse(packed)
    np.testing.assert_array_equal(a.grid.log_odds, b.grid.log_odds)
    assert export(a) == export(b)


def test_load_names_the_file(tmp_path):
    path = tmp_path / "map.rrmap"
    path.write_bytes(gzip.compress(synthetic()))
    assert roborock.load(path).meta["source"] == "map.rrmap"
    path.write_bytes(b"rr" + b"\0" * 6)
    with pytest.raises(CorruptMap, match="map.rrmap"):
        roborock.load(path)
    with pytest.raises(MapNotFound):
        roborock.load(tmp_path / "missing.rrmap")


def test_generic_loader_recognises_rrmap(tmp_path):
    path = tmp_path / "cloud_map"
    path.write_bytes(gzip.compress(synthetic()))
    doc = load_map(path)
    assert doc.frame.vendor == "roborock" and doc.meta["source"] == "cloud_map"


def test_view_is_valetudos_canvas_and_falls_back_off_the_lattice():
    doc = roborock.parse(synthetic())
    view = roborock.valetudo_view(doc)
    assert (view.size, view.pixel_size, view.x0, view.y0) == ((5120, 5120), 5, LEFT, 1023 - TOP)
    doc.grid = OccupancyGrid(doc.grid.log_odds, 0.1, doc.grid.origin)  # resampled elsewhere
    assert roborock.valetudo_view(doc).size == (50, 40)  # the native view of a 5 x 4 grid


# --- bad input, synthetic ------------------------------------------------------------------


def corrupt(data: bytes, *patterns: str) -> str:
    with pytest.raises(CorruptMap) as info:
        roborock.parse(data, "bad.rrmap")
    message = str(info.value)
    assert "bad.rrmap" in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_empty_and_wrong_magic():
    corrupt(b"", "empty")
    corrupt(b"xx" + synthetic()[2:], "magic")
    corrupt(b"rr\x14\x00", "header")


def test_truncated_gzip_and_gzip_bomb():
    packed = gzip.compress(synthetic())
    corrupt(packed[: len(packed) // 2], "truncated")
    corrupt(packed[:12], "gzip")
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunks = [bomb.compress(b"rr" + bytes(2**20 - 2))]
    chunks += [bomb.compress(bytes(2**20)) for _ in range(roborock.MAX_INFLATED // 2**20)]
    corrupt(b"".join(chunks) + bomb.flush(), "MiB")


def test_truncated_file_and_block_past_the_end():
    data = synthetic()
    corrupt(data[:-5], "truncated")
    # the header promises fewer bytes than the chain needs: the last block runs past the data
    short = bytearray(data)
    struct.pack_into("<I", short, 4, len(data) - 20 - 5)
    corrupt(bytes(short), "past the end", "at byte")
    # a block's own length runs past the end: the message gives the block's offset
    dock_at = 20 + len(image(CELLS, TOP, LEFT))
    grown = bytearray(data)
    struct.pack_into("<I", grown, dock_at + 4, 0xFFFFFFF0)
    corrupt(bytes(grown), "charger", f"at byte {dock_at}")


def test_block_header_too_short_cannot_loop():
    corrupt(rrmap(image(CELLS, TOP, LEFT), struct.pack("<HHI", 99, 0, 0)), "below 8")


def test_absurd_or_inconsistent_image():
    for h, w in ((100_000, 100_000), (-3, 5), (0, 5), (2000, 1)):
        extra = struct.pack("<I", 0) + struct.pack("<iiii", 0, 0, h, w)
        corrupt(synthetic(image=block(2, extra, bytes(20))), "image")
    corrupt(synthetic(image=image(CELLS, 1022, LEFT)), "leaves the 1024-cell grid")
    too_few = block(2, struct.pack("<Iiiii", 0, TOP, LEFT, 4, 6), CELLS.tobytes())
    corrupt(synthetic(image=too_few), "carries 20 bytes")
    odd_header = block(2, struct.pack("<hiiii", 0, TOP, LEFT, 4, 5), CELLS.tobytes())
    corrupt(synthetic(image=odd_header), "image header of 26 bytes")
    corrupt(synthetic(image=None), "no occupancy image")


def test_counts_past_the_data():
    corrupt(synthetic(no_go=count_block(9, 2, u16(*NO_GO))), "no_go_areas", "2 records")
    corrupt(synthetic(active=count_block(11, 9, b"\x03")), "cleaned_segments")
    corrupt(synthetic(obstacles=count_block(15, 3, u16(*OBSTACLE))), "3 obstacles")
    corrupt(synthetic(no_go=block(9, b"", u16(*NO_GO))), "too short")
    corrupt(synthetic(dock=block(1, data=b"\x01\x02\x03")), "charger", "needs 8")


def test_digest_mismatch_is_reported_not_fatal():
    data = bytearray(synthetic())
    data[-1] ^= 0xFF
    doc = roborock.parse(bytes(data), "tiny.rrmap")
    assert doc.meta["digest_ok"] is False


# --- what a small file may make us build ----------------------------------------------------

PEAK_LIMIT = 200 * 2**20  # bytes traced by tracemalloc while one bomb is parsed


def peak_of(data: bytes):
    """(document or the CorruptMap raised, peak bytes numpy and Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        try:
            result = roborock.parse(data, "bomb.rrmap")
        except CorruptMap as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def path_block(btype: int, points: int, tail: tuple[int, ...] = ()) -> bytes:
    """A path block of `points` x, y pairs: zeros, then the pairs in `tail`."""
    data = bytes(4 * (points - len(tail) // 2)) + u16(*tail)
    return block(btype, struct.pack("<II", points, 0), data)


def test_path_of_15_million_points_is_refused_and_memory_stays_small():
    data = gzip.compress(rrmap(image(CELLS, TOP, LEFT), path_block(3, 15_000_000)), 9)  # 58 kB
    error, peak = peak_of(data)
    assert isinstance(error, CorruptMap) and "bomb.rrmap: gzip inflates past 32 MiB" in str(error)
    assert peak < PEAK_LIMIT


def test_long_paths_keep_the_first_points_and_memory_stays_small():
    blocks = (image(CELLS, TOP, LEFT), path_block(3, 3_000_000), path_block(5, 3))
    doc, peak = peak_of(gzip.compress(rrmap(*blocks), 9))  # 12 kB
    assert [(p.kind, len(p.xy)) for p in doc.paths] == [("path", 2_000_000)]
    assert doc.meta["path_points_dropped"] == 1_000_003
    assert peak < PEAK_LIMIT


def test_cut_path_keeps_both_blocks_in_order_and_the_heading_of_its_true_end(monkeypatch):
    monkeypatch.setattr(roborock, "MAX_PATH_POINTS", 4)
    robot = block(8, data=struct.pack("<II", 25600, 25700))  # no firmware angle
    path = path_block(3, 3, (25000, 25000, 25600, 25500, 25600, 25700))  # ends going up
    predicted = path_block(5, 2, (25600, 25700, 25700, 25700))
    doc = roborock.parse(synthetic(robot=robot, path=path, predicted=predicted))
    assert [(p.kind, len(p.xy)) for p in doc.paths] == [("path", 3), ("predicted_path", 1)]
    assert doc.meta["path_points_dropped"] == 1
    monkeypatch.setattr(roborock, "MAX_PATH_POINTS", 1)
    doc = roborock.parse(synthetic(robot=robot, path=path, predicted=predicted))
    assert [len(p.xy) for p in doc.paths] == [1] and doc.meta["path_points_dropped"] == 4
    assert doc.meta["robot_angle_source"] == "path"
    assert doc.robot.theta == pytest.approx(math.pi / 2)  # from the last two points stored


@pytest.mark.parametrize(
    ("btype", "size", "name"),
    [
        (15, 8, "obstacles"),
        (9, 16, "no_go_areas"),
        (10, 8, "virtual_walls"),
        (6, 8, "cleaned_zones"),
    ],
)
def test_millions_of_entries_are_refused_and_memory_stays_small(btype, size, name):
    count = 2_000_000
    data = gzip.compress(
        rrmap(image(CELLS, TOP, LEFT), count_block(btype, count, bytes(size * count)))
    )
    error, peak = peak_of(data)
    assert isinstance(error, CorruptMap), error
    assert f"{name} block counts 2,000,000 entries, more than 10,000" in str(error)
    assert peak < PEAK_LIMIT
    ok = count_block(btype, roborock.MAX_ENTRIES, bytes(size * roborock.MAX_ENTRIES))
    roborock.parse(rrmap(image(CELLS, TOP, LEFT), ok))


# --- the real files ------------------------------------------------------------------------


def roborock_dir(shared_data):
    return shared_data / "vendor_maps" / "roborock"


def inner(path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def chain(rr: bytes) -> dict[int, tuple[int, int, int]]:
    """type -> (offset, header length, data length) of each block, read independently here."""
    out, at = {}, 20
    while at < len(rr):
        btype, bh, bd = struct.unpack_from("<HHI", rr, at)
        out[btype] = (at, bh, bd)
        at += bh + bd
    return out


@pytest.mark.shared_data
@pytest.mark.parametrize("name", GOLDEN)
def test_matches_valetudo(shared_data, name):
    folder = roborock_dir(shared_data)
    doc = roborock.parse((folder / f"{name}.bin").read_bytes(), f"{name}.bin")
    assert_matches_valetudo(doc, folder / f"{name}.json")
    assert doc.meta["digest_ok"] is True
    assert doc.meta["unknown_blocks"] == 0


@pytest.mark.shared_data
def test_world_frame_on_real_bytes(shared_data):
    path = roborock_dir(shared_data) / "S5_FW1886_with_goto_target.bin"
    rr = path.read_bytes()
    blocks = chain(rr)
    at, bh, _ = blocks[1]
    dock_mm = struct.unpack_from("<II", rr, at + bh)
    at, bh, _ = blocks[2]
    top, left, height, width = struct.unpack_from("<iiii", rr, at + 8)
    doc = roborock.load(path)
    assert (doc.dock.x, doc.dock.y) == pytest.approx(mm_to_world(*dock_mm), abs=1e-12)
    assert doc.grid.shape == (height, width)
    np.testing.assert_allclose(doc.grid.origin, mm_to_world(left * 50, top * 50), atol=1e-12)
    # the world <-> vendor frame round trip is exact to the mm
    np.testing.assert_allclose(doc.frame.to_vendor((doc.dock.x, doc.dock.y)), dock_mm, atol=1e-9)
    # no firmware angle on this S5: the heading comes from the path (Valetudo says 227 deg)
    assert doc.meta["robot_angle_source"] == "path"
    assert doc.robot.theta == pytest.approx(math.radians(-137))


@pytest.mark.shared_data
def test_firmware_angle_on_real_bytes(shared_data):
    doc = roborock.load(roborock_dir(shared_data) / "S8_FW1286_with_obstacles.bin")
    assert doc.meta["robot_angle_source"] == "firmware"
    assert doc.robot.theta == pytest.approx(math.radians(-2))  # the firmware's int32 is -2
    assert {o.label for o in doc.obstacles} == {"Obstacle (77%)", "Cable (84%)"}
    assert doc.meta["skipped_blocks"]["carpet_map"] == 1


@pytest.mark.shared_data
@pytest.mark.parametrize("name", RRMAP_GZ)
def test_cloud_rrmaps_import_plausibly(shared_data, name):
    path = roborock_dir(shared_data) / f"{name}.rrmap.gz"
    assert roborock.sniff(path.read_bytes())
    doc = roborock.load(path)
    summary = doc.summary()
    assert 20 <= summary["free_m2"] <= 200  # a flat
    assert 2 <= summary["occupied_m2"] <= summary["free_m2"]
    assert doc.meta["digest_ok"] is True and doc.meta["unknown_blocks"] == 0
    states = doc.cell_states()
    free_i, free_j = np.nonzero(states == FREE)
    for pose in (doc.dock, doc.robot):
        cell = doc.grid.world_to_cell([pose.x, pose.y])
        assert doc.grid.in_bounds(cell).all()
        i, j = cell[0]
        nearest = np.hypot(free_i - i, free_j - j).min() * doc.grid.resolution
        assert nearest <= 0.1  # the dock and the robot stand on (or against) mapped floor
    if name == "marcelrv_roboroommap-with-objects":
        assert doc.restrictions.counts()["virtual_walls"] == 9
        (shoe,) = doc.obstacles
        assert shoe.label == "Shoe (94%)" and shoe.meta["photo"] == "0017Q80vVl5VD5Gf"
        assert sorted(doc.room_info) == [1, 16, 17]
    # the export holds up too
    out = export(doc)
    assert out["metaData"]["vendorMapId"] == doc.meta["vendor_map_id"]
    assert sum(la["metaData"]["area"] for la in out["layers"]) == out["metaData"]["totalLayerArea"]


@pytest.mark.shared_data
def test_real_bytes_bad_input(shared_data):
    folder = roborock_dir(shared_data)
    rr = (folder / "S5_FW2008_with_segments.bin").read_bytes()
    blocks = chain(rr)
    image_at = blocks[2][0]
    for cut in (0, 10, 19, 30, image_at + 100, len(rr) - 10):
        corrupt(rr[:cut])
    corrupt(b"RR" + rr[2:], "magic")
    grown = bytearray(rr)
    struct.pack_into("<I", grown, image_at + 4, 0xFFFFFFFF)
    corrupt(bytes(grown), "image", f"at byte {image_at}")
    wide = bytearray(rr)
    struct.pack_into("<ii", wide, image_at + 12 + 8, 100_000, 100_000)  # height, width
    corrupt(bytes(wide), "100000 x 100000")
    packed = (folder / "S8_FW1286_with_obstacles.bin").read_bytes()
    corrupt(packed[: len(packed) - 100], "truncated")
    corrupt(packed[:-4], "gzip")


@pytest.mark.shared_data
def test_unknown_block_in_real_bytes_is_skipped_and_counted(shared_data):
    folder = roborock_dir(shared_data)
    name = "S6_FW2652_with_active_segment_and_no_mop_zone"
    rr = bytearray((folder / f"{name}.bin").read_bytes())
    digest_at = chain(bytes(rr))[1024][0]
    extra = block(4242, struct.pack("<I", 1), b"who knows") + block(4243, data=bytes(7))
    rr[digest_at:digest_at] = extra
    struct.pack_into("<I", rr, 4, len(rr) - 20)
    doc = roborock.parse(bytes(rr), f"{name}.bin")
    assert doc.meta["unknown_blocks"] == 2 and doc.meta["unknown_block_types"] == [4242, 4243]
    assert doc.meta["digest_ok"] is False  # the digest covers the bytes we changed
    assert_matches_valetudo(doc, folder / f"{name}.json")
