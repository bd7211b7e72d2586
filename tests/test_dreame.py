"""Dreame map import: Valetudo's own output on the real fixtures, the world frame, the saved-map
(`rism`) merge, and bad input (from small Dreame maps assembled here, and from the real bytes)."""

from __future__ import annotations

import base64
import json
import math
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from valetudo_golden import assert_matches_valetudo

from maps._codec import encode as encode_for_store
from maps.errors import CorruptMap, MapNotFound
from maps.formats import detect, dreame, load_map
from maps.formats import parse as parse_any
from maps.formats.valetudo import decompress, export, js_round
from maps.model import FREE, OCCUPIED, UNKNOWN

GOLDEN = [
    "1c_1096_virtualwall_and_forbidden_zone",
    "d9_1058_no_segments",
    "d9_1058_with_custom_named_segments",
    "l10su_1058_goto_target",
    "x10plus_1104_with_obstacle",
    "z10_1056_virtual_restrictions",
]
UNKNOWN_XY = 0x7FFF

# --- small Dreame maps built here -------------------------------------------------------------


def frame(
    cells,
    extra: dict | str | bytes | None = None,
    *,
    kind: bytes = b"I",
    robot=(100, 200, 90),
    charger=(-300, 400, 180),
    pixel_mm: int = 50,
    left: int = -150,
    top: int = -100,
    width: int | None = None,
    height: int | None = None,
    map_id: int = 7,
) -> bytes:
    """A decoded frame: header, the cell bytes (row 0 = lowest y), the JSON part."""
    cells = np.asarray(cells, np.uint8)
    h, w = cells.shape
    head = struct.pack(
        "<hhc11h",
        map_id,
        3,
        kind,
        *robot,
        *charger,
        pixel_mm,
        w if width is None else width,
        h if height is None else height,
        left,
        top,
    )
    if extra is None:
        tail = b""
    elif isinstance(extra, bytes):
        tail = extra
    else:
        tail = (extra if isinstance(extra, str) else json.dumps(extra)).encode()
    return head + cells.tobytes() + tail


def encode(decoded: bytes) -> bytes:
    """What the robot uploads: base64url text (no padding) of the zlib stream."""
    return base64.urlsafe_b64encode(zlib.compress(decoded)).rstrip(b"=")


def px(room: int = 0, kind: int = 0) -> int:
    """A live-map cell byte: room id in the high 6 bits, kind (0 none 1 floor 2 wall 3 carpet)."""
    return room << 2 | kind


# Live map, rows bottom-up: floor, wall, room 5, nothing / carpet, new floor (62), wall (63),
# room 5 with kind "none" / nothing, nothing, room 7 with kind "wall", floor.
LIVE = [
    [px(0, 1), px(0, 2), px(5, 1), px(0, 0)],
    [px(0, 3), px(62, 1), px(63, 2), px(5, 0)],
    [px(0, 0), px(0, 0), px(7, 2), px(0, 1)],
]


def js_cm(x_mm: float, y_mm: float) -> tuple[int, int]:
    """Valetudo's cm of a vendor point (its CONVERT_TO_VALETUDO_COORDINATES)."""
    return int(js_round((x_mm + 32768) / 10)), 6554 - int(js_round((y_mm + 32768) / 10))


def naive_layers(decoded: bytes, saved: bool = False) -> dict[str, set]:
    """Valetudo's pixel loop, cell by cell, for a frame without a saved map: layer -> pixels."""
    fields = struct.unpack_from("<hhb11h", decoded)
    pixel_mm, w, h, left, top = fields[9:14]
    ps = int(js_round(pixel_mm / 10))
    left_cm, top_cm = int(js_round((left + 32768) / 10)), int(js_round((top + 32768) / 10))
    layers: dict[str, set] = {}
    for i in range(h):
        for j in range(w):
            x = int(js_round(j + left_cm / ps))
            y = int(js_round(6554 / ps - (i + top_cm / ps)))
            byte = decoded[27 + i * w + j]
            if saved:
                name = "wall" if byte >> 7 else f"segment{byte & 63}" if byte & 63 else None
                name = name or ("floor" if byte & 64 else None)
            elif 0 < byte >> 2 < 62:
                name = f"segment{byte >> 2}"
            else:
                name = {1: "floor", 2: "wall", 3: "floor"}.get(byte & 3)
            if name:
                layers.setdefault(name, set()).add((x, y))
    return layers


def exported_layers(doc) -> dict[str, set]:
    out = {}
    for layer in export(doc)["layers"]:
        key = layer["type"] + layer["metaData"].get("segmentId", "")
        out[key] = decompress(layer["compressedPixels"])
    return out


def entities(doc, kind: str) -> list[dict]:
    return [e for e in export(doc)["entities"] if e["type"] == kind]


# --- the live map --------------------------------------------------------------------------


def test_cells_rooms_and_grid_frame():
    doc = dreame.parse(encode(frame(LIVE)), "live.bin")
    expected = [
        [FREE, OCCUPIED, FREE, UNKNOWN],
        [FREE, FREE, OCCUPIED, FREE],
        [UNKNOWN, UNKNOWN, FREE, FREE],
    ]
    np.testing.assert_array_equal(doc.cell_states(), expected)
    np.testing.assert_array_equal(doc.rooms, [[0, 0, 5, 0], [0, 0, 0, 5], [0, 0, 7, 0]])
    assert doc.grid.resolution == pytest.approx(0.05)
    assert doc.grid.origin == pytest.approx((-0.150, -0.100))  # left, top in mm / 1000
    assert doc.frame.vendor == "dreame" and doc.frame.unit == 0.001
    assert doc.room_info[5].meta == {"source": "regular"} and doc.room_info[7].name == ""
    assert doc.meta["map_id"] == 7 and doc.meta["form"] == "base64+zlib"
    assert doc.meta["not_imported"] == {"carpets": 1}


def test_decoded_and_text_forms_give_the_same_map():
    decoded = frame(LIVE, {"tr": "S1,2L3,4"})
    a, b = dreame.parse(decoded), dreame.parse(encode(decoded) + b"\n")
    np.testing.assert_array_equal(a.grid.log_odds, b.grid.log_odds)
    assert a.meta["form"] == "decoded" and b.meta["form"] == "base64+zlib"
    assert export(a) == export(b)
    padded = base64.urlsafe_b64encode(zlib.compress(decoded))  # with "=" padding
    assert export(dreame.parse(padded)) == export(a)


def test_layers_land_where_valetudo_puts_each_pixel():
    decoded = frame(LIVE, left=-1153, top=2047)  # offsets that are not whole cells or cm
    assert exported_layers(dreame.parse(decoded)) == naive_layers(decoded)


def test_dock_and_robot_in_world_metres_and_radians():
    doc = dreame.parse(frame(LIVE, robot=(-269, 742, 30), charger=(627, 574, 222)))
    assert (doc.robot.x, doc.robot.y) == pytest.approx((-0.269, 0.742))
    assert doc.robot.theta == pytest.approx(math.radians(30))  # CCW from +x
    assert (doc.dock.x, doc.dock.y) == pytest.approx((0.627, 0.574))
    assert doc.dock.theta == pytest.approx(math.radians(222 - 360))  # wrapped to (-pi, pi]
    [charger] = entities(doc, "charger_location")
    assert charger["points"] == list(js_cm(627, 574)) == [3340, 3220]
    assert charger["metaData"] == {"angle": 228}  # Valetudo: (450 - angle) % 360
    assert entities(doc, "robot_position")[0]["metaData"] == {"angle": 60}


def test_unknown_positions_are_left_out():
    doc = dreame.parse(frame(LIVE, robot=(UNKNOWN_XY, UNKNOWN_XY, 0), charger=(UNKNOWN_XY, 5, 0)))
    assert doc.robot is None
    assert doc.dock is not None  # only both coordinates at 0x7FFF mean "unknown"


def test_angles_valetudo_converts_past_a_turn():
    # Valetudo's formula uses JavaScript's remainder: 900 degrees comes out as -90.
    doc = dreame.parse(frame(LIVE, robot=(0, 0, 900), charger=(0, 0, -100)))
    assert entities(doc, "robot_position")[0]["metaData"] == {"angle": -90}
    assert entities(doc, "charger_location")[0]["metaData"] == {"angle": 190}


def test_paths_split_at_every_start_and_end_at_the_robot():
    extra = {"tr": "S100,200L10,0L0,-20M-50,-50L5,5W7,7", "l2r": 1}
    doc = dreame.parse(frame(LIVE, extra, robot=(30, 40, 0)))
    assert [p.kind for p in doc.paths] == ["path"] * 3
    np.testing.assert_allclose(doc.paths[0].xy, [[0.1, 0.2], [0.11, 0.2], [0.11, 0.18]])
    np.testing.assert_allclose(doc.paths[1].xy, [[-0.05, -0.05], [-0.045, -0.045]])
    np.testing.assert_allclose(doc.paths[2].xy, [[0.007, 0.007], [0.03, 0.04]])  # + the robot
    first = entities(doc, "path")[0]["points"]
    assert first == [*js_cm(100, 200), *js_cm(110, 200), *js_cm(110, 180)]
    no_robot = dreame.parse(frame(LIVE, {"tr": "S1,1", "l2r": True}))  # l2r must be 1 exactly
    assert len(no_robot.paths[0].xy) == 1


def test_restrictions_zones_and_go_to_target():
    extra = {
        "vw": {"rect": [[300, -200, -100, 400]], "mop": [[0, 0, 50, 50]], "line": [[1, 2, 3, 4]]},
        "da2": {"areas": [[10, 20, 30, 40]]},
        "pointinfo": {"tpoint": [[-1338, -118, 0, 0]]},
    }
    doc = dreame.parse(frame(LIVE, extra))
    np.testing.assert_allclose(
        doc.restrictions.no_go[0], [[-0.1, 0.4], [0.3, 0.4], [0.3, -0.2], [-0.1, -0.2]]
    )
    np.testing.assert_allclose(doc.restrictions.virtual_walls[0], [[0.001, 0.002], [0.003, 0.004]])
    assert len(doc.restrictions.no_mop) == 1 and len(doc.active_zones) == 1
    assert doc.go_to_target == pytest.approx((-1.338, -0.118))
    [no_go] = entities(doc, "no_go_area")
    x0, y0 = js_cm(-100, 400)
    x1, y1 = js_cm(300, -200)
    assert no_go["points"] == [x0, y0, x1, y0, x1, y1, x0, y1]  # Valetudo's corner order
    assert entities(doc, "go_to_target")[0]["points"] == [3143, 3289]
    two = dreame.parse(frame(LIVE, {"pointinfo": {"tpoint": [[1, 2], [3, 4]]}}))
    assert two.go_to_target is None  # Valetudo shows a target only when there is exactly one


def test_obstacles_as_valetudo_labels_them():
    extra = {
        "ai_obstacle": [
            ["482.258057", "-2830.150635", "128", "0.892723", "220", "/data/record/1.jpg", "2"],
            ["1", "2", "200", "0.5"],  # a class Valetudo hides
            [10, 20, 999, 0.5],
        ]
    }
    doc = dreame.parse(frame(LIVE, extra))
    first, unknown = doc.obstacles
    assert (first.x, first.y) == pytest.approx((0.482258057, -2.830150635))
    assert first.label == "Pedestal (89%)" and first.source == "vendor"
    # The id Valetudo gives this obstacle in the x10plus fixture (a UUID v5 of class and position).
    assert first.meta["id"] == "33911310-ff43-529c-862b-4765035ecd34"
    assert first.meta["image"] == "/data/record/1.jpg"
    assert unknown.label == "Unknown ID 999 (50%)" and "image" not in unknown.meta
    points = [e["points"] for e in entities(doc, "obstacle")]
    assert points == [[3325, 3560], list(js_cm(10, 20))]


def test_room_names_materials_order_and_active():
    name = base64.b64encode("Küche".encode()).decode()
    extra = {
        "sa": [[5, 1, 1]],
        "seg_inf": {"5": {"name": name, "material": 2}, "7": {"material": 1, "direction": 90}},
        "cleanareaorder": [{"7": 2}, {"5": 1}],
    }
    doc = dreame.parse(frame(LIVE, extra))
    five, seven = doc.room_info[5], doc.room_info[7]
    assert (five.name, five.active, five.meta) == (
        "Küche",
        True,
        {"source": "regular", "material": "tile", "cleanOrder": 1},
    )
    assert (seven.active, seven.meta["material"], seven.meta["cleanOrder"]) == (
        False,
        "wood_vertical",
        2,
    )
    layer = next(la for la in export(doc)["layers"] if la["metaData"].get("segmentId") == "5")
    assert layer["metaData"]["name"] == "Küche" and layer["metaData"]["active"] is True


def test_values_valetudo_ignores_are_ignored():
    extra = {"pointinfo": [], "vw": {"rect": {}}, "da2": {"areas": 5}, "sa": "x", "ris": 2}
    doc = dreame.parse(frame(LIVE, extra))
    assert doc.go_to_target is None and doc.restrictions.counts()["no_go"] == 0
    assert doc.room_info[5].active is False and not doc.meta["saved_map_applied"]
    assert dreame.parse(frame(LIVE, None)).paths == []  # no JSON part at all


# --- the saved map (rism) ------------------------------------------------------------------


def saved_px(room: int = 0, wall: bool = False, carpet: bool = False) -> int:
    return wall << 7 | carpet << 6 | room


def with_saved(live_cells, saved_cells, live_extra=None, saved_extra=None, **saved_header):
    """A live frame carrying `saved_cells` as its saved map, applied (ris 2)."""
    saved = frame(saved_cells, saved_extra or {}, **{"left": -200, "top": -150, **saved_header})
    extra = {"ris": 2, "rism": encode(saved).decode(), **(live_extra or {})}
    return frame(live_cells, extra, charger=(UNKNOWN_XY, UNKNOWN_XY, UNKNOWN_XY))


# Live: 2 x 3 cells of floor and wall, no rooms. Saved: 3 x 4 cells starting one cell further left
# and down: rooms 1 and 2 under the live floor, its own walls and a carpet.
S_LIVE = [[px(0, 1), px(0, 1), px(0, 2)], [px(0, 1), px(0, 2), px(0, 1)]]
S_SAVED = [
    [saved_px(wall=True), saved_px(1), saved_px(1), saved_px(carpet=True)],
    [saved_px(1), saved_px(1), saved_px(2), saved_px(2)],
    [saved_px(wall=True), saved_px(2), saved_px(2), saved_px(2, carpet=True)],
]


def test_saved_map_adds_rooms_under_the_live_floor_as_valetudo_draws_them():
    saved_extra = {
        "seg_inf": {"2": {"name": base64.b64encode(b"Bad").decode()}},
        "sa": [[1]],
        "vw": {"rect": [[0, 0, 100, 100]], "line": [[0, 0, 10, 10]]},
    }
    decoded = with_saved(S_LIVE, S_SAVED, {"sa": [[2]]}, saved_extra)
    doc = dreame.parse(decoded, "merge.bin")
    live = naive_layers(decoded)
    saved = naive_layers(frame(S_SAVED, left=-200, top=-150), saved=True)
    layers = exported_layers(doc)
    # The live map's floor and walls, the saved map's rooms; its walls and carpet floor are not
    # drawn because the live map has floor and walls of its own.
    assert layers == {
        "floor": live["floor"],
        "wall": live["wall"],
        "segment1": saved["segment1"],
        "segment2": saved["segment2"],
    }
    assert live["floor"] & saved["segment1"] and live["wall"] & saved["segment2"]  # overlaps
    assert "valetudo_overlay" in doc.meta and doc.meta["saved_map_applied"]
    assert doc.room_info[1].meta == {"source": "rism"} and doc.room_info[1].active  # saved sa
    assert doc.room_info[2].name == "Bad" and doc.room_info[2].active  # live sa
    assert doc.grid.shape == (3, 4)  # both rasters
    assert doc.grid.origin == pytest.approx((-0.2, -0.15))
    # A cell of live floor inside a saved room is floor of that room, a live wall stays a wall.
    assert doc.cell_states()[1, 1] == FREE and doc.rooms[1, 1] == 1
    assert doc.cell_states()[1, 3] == OCCUPIED and doc.rooms[1, 3] == 0
    # Its restrictions are added; the dock comes from it as the live header has none.
    assert doc.restrictions.counts() == {"no_go": 1, "virtual_walls": 1, "no_mop": 0}
    assert (doc.dock.x, doc.dock.y) == pytest.approx((-0.3, 0.4))


def test_saved_map_fills_layers_the_live_map_lacks_and_names_live_rooms():
    live = [[px(1, 0), px(1, 0), px(0, 0)], [px(1, 0), px(3, 0), px(3, 0)]]  # rooms, no walls
    saved = [
        [saved_px(wall=True)] * 4,
        [saved_px(wall=True), saved_px(1), saved_px(1), saved_px(wall=True)],
        [saved_px(4), saved_px(1), saved_px(3), saved_px(3, carpet=True)],
    ]
    name = base64.b64encode(b"Flur").decode()
    decoded = with_saved(live, saved, saved_extra={"seg_inf": {"1": {"name": name}}})
    doc = dreame.parse(decoded)
    layers = exported_layers(doc)
    s = naive_layers(frame(saved, left=-200, top=-150), saved=True)
    assert layers["wall"] == s["wall"] and layers["segment4"] == s["segment4"]
    assert layers["segment1"] == naive_layers(decoded)["segment1"]  # the live map's room 1
    assert doc.room_info[1].name == "Flur" and doc.room_info[1].meta == {"source": "regular"}
    assert doc.room_info[4].meta == {"source": "rism"}
    assert "floor" not in layers  # the saved carpet cell lies in room 3: no floor layer


@pytest.mark.parametrize(
    ("live_extra", "applied"),
    [({"ris": 1}, False), ({"ris": 1, "iscleanlog": True}, True), ({"ris": "2"}, False)],
)
def test_saved_map_applied_only_when_valetudo_applies_it(live_extra, applied):
    doc = dreame.parse(with_saved(S_LIVE, S_SAVED, live_extra))
    assert doc.meta["saved_map_applied"] is applied
    assert (1 in doc.room_info) is applied


def test_saved_map_with_nothing_drawn_is_left_out_whole():
    empty = [[0] * 4] * 3
    doc = dreame.parse(with_saved(S_LIVE, empty))
    assert not doc.meta["saved_map_applied"] and doc.dock is None  # not even its dock


def test_saved_p_frame_is_left_out():
    saved = frame(S_SAVED, {}, kind=b"P")
    doc = dreame.parse(frame(S_LIVE, {"ris": 2, "rism": encode(saved).decode()}))
    assert not doc.meta["saved_map_applied"] and doc.room_info == {}


# --- sniff and dispatch --------------------------------------------------------------------


def test_sniff_and_dispatch(tmp_path):
    decoded = frame(LIVE, {"tr": "S1,1"})
    assert dreame.sniff(decoded) and dreame.sniff(encode(decoded))
    assert dreame.sniff(frame(LIVE))  # no JSON part
    assert not dreame.sniff(b"") and not dreame.sniff(b"rr\x14\x00" + bytes(40))
    assert not dreame.sniff(decoded[:-20] + b"]")  # pixels cut, something else after them
    assert not dreame.sniff(base64.urlsafe_b64encode(zlib.compress(b"hello world" * 9)))
    assert not dreame.sniff(bytes(range(256)))
    assert detect(encode(decoded)) == "dreame"
    path = tmp_path / "map.b64"
    path.write_bytes(encode(decoded))
    doc = load_map(path)
    assert doc.frame.vendor == "dreame" and doc.meta["source"] == "map.b64"
    assert export(parse_any(decoded)) == export(doc)
    with pytest.raises(MapNotFound):
        dreame.load(tmp_path / "missing.bin")


# --- bad input built here ------------------------------------------------------------------

GOOD = frame(LIVE, {"tr": "S1,1L2,2"})
TEXT = encode(GOOD)
PACKED = zlib.compress(GOOD)


def patched(offset: int, fmt: str, value) -> bytes:
    out = bytearray(GOOD)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


BAD = [
    ("empty", b"", "empty input"),
    ("blank", b" \n\t", "empty input"),
    ("bad base64 char", TEXT[:10] + b"*" + TEXT[11:], "byte 10 (0x2a) is not base64url text"),
    ("padding inside", TEXT[:8] + b"=" + TEXT[8:], "padding '=' inside it, at byte 8"),
    ("base64 cut", TEXT[: len(TEXT) - len(TEXT) % 4 - 3], "cut short"),
    ("zlib truncated", base64.urlsafe_b64encode(PACKED[:-9]), "zlib stream is truncated"),
    ("zlib damaged", base64.urlsafe_b64encode(PACKED[:20] + b"\xff" * 8 + PACKED[28:]), "zlib"),
    ("short header", GOOD[:20], "data ends inside the 27-byte header"),
    ("short header, text", encode(GOOD[:20]), "data ends inside the 27-byte header"),
    ("pixels cut", GOOD[:33], "pixels are cut: 4 x 3 cells need bytes 27..39, the data has 33"),
    ("pixels cut, text", encode(GOOD[:33]), "pixels are cut"),
    ("absurd width", patched(19, "<h", 30000), "byte 19: width 30000 cells is not in 0..1312"),
    ("negative height", patched(21, "<h", -3), "byte 21: height -3 cells"),
    ("cell size 0", patched(17, "<h", 0), "byte 17: cell size 0 mm"),
    ("p-frame", patched(4, "<c", b"P"), "byte 4: a P-frame"),
    ("frame type", patched(4, "<c", b"Q"), "frame type 81"),
    ("broken json", frame(LIVE, '{"tr": "S1,1",'), "byte 53: JSON part does not parse"),
    ("json array", frame(LIVE, "[1, 2]"), "JSON part is a list, not an object"),
    ("json nan", frame(LIVE, '{"tr": NaN}'), "JSON part does not parse"),
    ("json too deep", frame(LIVE, "[" * 100000), "byte 71: JSON part nests 100000 levels deep"),
    ("json whitespace", frame(LIVE, "  "), "JSON part does not parse"),
    ("path L first", frame(LIVE, {"tr": "L1,1S2,2"}), "tr: path moves (L) before any start"),
    ("path number", frame(LIVE, {"tr": "S1,1L" + "9" * 40 + ",1"}), "tr: path number"),
    ("path type", frame(LIVE, {"tr": [1, 2]}), "tr: path is [1, 2], not a string"),
    ("rect", frame(LIVE, {"vw": {"rect": [[1, 2, 3]]}}), "vw.rect[0]: expected a list of 4"),
    ("rect text", frame(LIVE, {"vw": {"mop": [[1, 2, 3, "4"]]}}), 'vw.mop[0]: "4" is not'),
    ("go-to", frame(LIVE, {"pointinfo": {"tpoint": [[1e300, 2]]}}), "pointinfo.tpoint[0]"),
    ("obstacle", frame(LIVE, {"ai_obstacle": [["x", "1", "128", "0.5"]]}), "ai_obstacle[0]"),
    ("active", frame(LIVE, {"sa": [5]}), "sa[0]: 5 has no room id first"),
    ("seg_inf null", frame(LIVE, {"seg_inf": {"5": None}}), "seg_inf.5: is null"),
    ("rism text", frame(LIVE, {"ris": 2, "rism": "!!"}), "saved map (rism): byte 0 (0x21)"),
    ("rism zlib", frame(LIVE, {"ris": 2, "rism": "eF4"}), "saved map (rism): zlib"),
    (
        "rism pixels",
        frame(LIVE, {"ris": 2, "rism": encode(frame(S_SAVED)[:30]).decode()}),
        "saved map (rism, decoded), byte 30: pixels are cut",
    ),
    (
        "rism cell size",
        frame(LIVE, {"ris": 2, "rism": encode(frame(S_SAVED, {}, pixel_mm=40)).decode()}),
        "saved map (rism, decoded), byte 17: cells of 40 mm, the live map's are 50",
    ),
    (
        "rism json",
        frame(LIVE, {"ris": 2, "rism": encode(frame(S_SAVED, "{")).decode()}),
        "saved map (rism, decoded), byte 40: JSON part does not parse",
    ),
]


@pytest.mark.parametrize(("data", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_corrupt_map_naming_file_and_place(data, message):
    with pytest.raises(CorruptMap) as err:
        dreame.parse(data, "bad.bin")
    assert str(err.value).startswith("bad.bin: ")
    assert message in str(err.value)


def test_a_bomb_is_refused_before_it_inflates():
    bomb = base64.urlsafe_b64encode(zlib.compress(GOOD[:27] + bytes(dreame.MAX_INFLATED + 10)))
    with pytest.raises(CorruptMap, match=f"inflates past {dreame.MAX_INFLATED // 2**20} MiB"):
        dreame.parse(bomb, "bomb.bin")


def test_odd_but_valid_json_values():
    huge = dreame.parse(frame(LIVE, {"sa": [[10**400]], "tr": "S0,0", "suw": 5}))
    assert huge.meta["pending_map_change"] is True and not any(
        r.active for r in huge.room_info.values()
    )
    assert dreame._js_number(1e21) == "1e+21" and dreame._js_number(1e-7) == "1e-7"
    assert dreame._js_number(0.000001) == "0.000001" and dreame._js_number(128.0) == "128"
    assert dreame._parse_float(" 3.5e2x") == 350.0 and math.isnan(dreame._parse_float("x"))


# --- nesting, sizes and bombs: what a small file may make us build ----------------------------

PEAK_LIMIT = 200 * 2**20  # bytes traced by tracemalloc while one bomb is parsed


def peak_of(parse, data: bytes):
    """(document or the CorruptMap raised, peak bytes numpy and Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        try:
            result = parse(data, "bomb.bin")
        except CorruptMap as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def deep(n: int, inner: str = "1") -> str:
    return "[" * n + inner + "]" * n


@pytest.mark.parametrize(
    "extra",
    [
        '{"sa": [' + deep(700) + "]}",
        '{"ai_obstacle": [[1, 2, ' + deep(700, "") + ", 0.5]]}",
        '{"seg_inf": {"1": {"name": ' + deep(700, '"QQ"') + "}}}",
        '{"seg_inf": {"1": {}}, "cleanareaorder": [{"1": ' + deep(700, "") + "}]}",
        '{"ai_obstacle": [[1, 2, "3", 0.5, 0, ' + deep(900, "") + "]]}",
    ],
    ids=["sa", "obstacle class", "room name", "clean order", "obstacle image"],
)
def test_deep_json_is_a_corrupt_map_naming_depth_and_source(extra):
    with pytest.raises(CorruptMap, match=r"^deep\.bin: decoded map, byte \d+: JSON part nests "):
        dreame.parse(encode(frame(LIVE, extra)), "deep.bin")


def test_json_depth_up_to_the_limit_parses_and_strings_do_not_count():
    limit = dreame.MAX_JSON_DEPTH
    ok = '{"x": ' + deep(limit - 1) + "}"  # the object itself is one level
    assert dreame.parse(frame(LIVE, ok)).grid.shape == (3, 4)
    with pytest.raises(CorruptMap, match=f"nests {limit + 1} levels deep, more than {limit}"):
        dreame.parse(frame(LIVE, '{"x": ' + deep(limit) + "}"))
    # Brackets inside strings, escaped quotes and backslashes do not nest anything.
    text = json.dumps({"a": "[" * 99 + '\\"' + "{" * 99, "b": "\\", "tr": "S1,1"})
    assert len(dreame.parse(frame(LIVE, text)).paths) == 1


def naive_json_shape(text: bytes) -> tuple[int, int, int]:
    """The slow twin of dreame._json_shape: a byte-by-byte state machine."""
    depth = deepest = items = 0
    deep_at, in_string, escaped = -1, False, False
    for k, byte in enumerate(text):
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped, items = True, items + 1
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            depth, items = depth + 1, items + 1
            if depth > dreame.MAX_JSON_DEPTH and deep_at < 0:
                deep_at = k
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
        elif char in ",:":
            items += 1
    return deepest, deep_at, items


@pytest.mark.parametrize(("step", "cases"), [(1, 60), (2, 100), (3, 100), (1 << 20, 300)])
def test_json_shape_matches_its_slow_twin(monkeypatch, step, cases):
    monkeypatch.setattr(dreame, "_SCAN_BYTES", step)  # runs of backslashes across steps
    rng = np.random.default_rng(step)
    pieces = ['"', "\\", "\\\\", '\\"', "[", "]", "{", "}", ",", ":", "a", "1", " "]
    for _ in range(cases):
        value: object = "".join(rng.choice(pieces, rng.integers(0, 12)))
        for _ in range(rng.integers(0, 40)):
            value = (
                [value, {"k": "".join(rng.choice(pieces, 3))}] if rng.random() < 0.7 else [value]
            )
        text = json.dumps({"v": value}).encode()
        assert dreame._json_shape(text) == naive_json_shape(text), text


def test_json_part_size_and_item_count_are_bounded(monkeypatch):
    many = '{"x": [' + ",".join(["[]"] * (dreame.MAX_JSON_ITEMS + 1)) + "]}"
    with pytest.raises(CorruptMap, match=r"byte 39: JSON part holds 500,004 values, keys and esc"):
        dreame.parse(frame(LIVE, many), "many.bin")
    # At the limit: one object, two keys (colons), a comma and the escaped backslashes.
    escapes = json.dumps({"x": "\\" * (dreame.MAX_JSON_ITEMS - 4), "tr": "S1,1"})
    assert len(dreame.parse(frame(LIVE, escapes)).paths) == 1
    with pytest.raises(CorruptMap, match="250,001 values, keys and escapes, more than 250,000"):
        dreame.parse(frame(LIVE, escapes.replace("S1,1", "S1,1\\\\")))
    monkeypatch.setattr(dreame, "MAX_JSON_BYTES", 100)
    text = json.dumps({"tr": "S1,1" + "L1,1" * 30})
    with pytest.raises(CorruptMap, match=f"byte 39: JSON part of {len(text)} bytes is larger"):
        dreame.parse(frame(LIVE, text), "big.bin")


def test_meta_keeps_only_scalars_from_the_vendor_json():
    extra = (
        '{"ai_obstacle": [[1, 2, "3", 0.5, 0, [[["img"]]]], [1, 2, "3", 0.5, 0, "/data/a.jpg"]],'
        ' "seg_inf": {"5": {}, "7": {}}, "cleanareaorder": [{"5": [[[1]]]}, {"7": 1e400}]}'
    )
    doc = dreame.parse(frame(LIVE, extra))
    assert "image" not in doc.obstacles[0].meta and doc.obstacles[1].meta["image"] == "/data/a.jpg"
    assert "cleanOrder" not in doc.room_info[5].meta and "cleanOrder" not in doc.room_info[7].meta
    for room in doc.room_info.values():
        assert all(isinstance(v, str | bool | int | float) for v in room.meta.values())
    encode_for_store(doc, None)  # what MapStore.save writes: must not recurse or fail


def test_js_str_is_javascripts_string_of_any_nesting():
    assert dreame._js_str([1, [2, [3, None]], []]) == "1,2,3,,"
    assert dreame._js_str([None, [None], "a", True, 1.5, {}]) == ",,a,true,1.5,[object Object]"
    assert dreame._js_str([[[]]]) == "" and dreame._js_str(None) == "null"
    nested: list = ["x"]
    for _ in range(100_000):
        nested = [nested]
    assert dreame._js_str(nested) == "x"  # no recursion


def naive_paths(trace: str) -> list[np.ndarray]:
    """The slow twin of dreame._paths: one regex match and Python list per point."""
    paths: list[list[tuple[int, int]]] = []
    x = y = 0
    for match in dreame.PATH_TOKEN.finditer(trace):
        op, dx, dy = match.groups()
        if len(dx) > 11 or len(dy) > 11:
            raise CorruptMap(f"path number at character {match.start()} is too long")
        if op == "L":
            if not paths:
                raise CorruptMap("path moves (L) before any start (S, M or W)")
            x, y = x + int(dx), y + int(dy)
        else:
            x, y = int(dx), int(dy)
            paths.append([])
        if abs(x) > dreame.MAX_MM or abs(y) > dreame.MAX_MM:
            raise CorruptMap(f"path leaves the map at character {match.start()}")
        paths[-1].append((x, y))
    return [np.array(p, np.float64) for p in paths]


PIECES = ["S", "M", "W", "L", "-", ",", "0", "7", "12", "99999999", "123456789012", "x", "é"]
PIECES += [" ", "L5,5", "S1,1", "L-3,-4", "L999999999,0", "M-99999999999,1", "L" + "9" * 40 + ","]


@pytest.mark.parametrize(("step", "cases"), [(7, 300), (1 << 18, 3000)])
def test_path_parser_matches_its_slow_twin(monkeypatch, step, cases):
    monkeypatch.setattr(dreame, "_PATH_STEP", step)  # small: tokens across step boundaries
    rng = np.random.default_rng(step)
    part = dreame._Part("t.bin", "decoded map")
    for _ in range(cases):
        trace = "".join(rng.choice(PIECES, rng.integers(0, 30)))
        trace = ("S1,2" if rng.random() < 0.5 else "") + trace
        try:
            expected, expected_error = naive_paths(trace), None
        except CorruptMap as exc:
            expected, expected_error = None, str(exc)
        try:
            (got, dropped), error = dreame._paths(trace, part), None
        except CorruptMap as exc:
            got, error = None, str(exc).removeprefix("t.bin: decoded map, JSON part, tr: ")
        assert error == expected_error, trace
        if expected is not None:
            assert dropped == 0 and len(got) == len(expected), trace
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)


def test_long_paths_keep_the_first_points_and_count_the_rest(monkeypatch):
    monkeypatch.setattr(dreame, "MAX_PATH_POINTS", 5)
    extra = {"tr": "S0,0L1,0L1,0M9,9L1,1L1,1L1,1", "l2r": 1}
    doc = dreame.parse(frame(LIVE, extra, robot=(30, 40, 0)))
    assert [len(p.xy) for p in doc.paths] == [3, 2]  # no robot point: the path was cut
    np.testing.assert_allclose(doc.paths[1].xy, [[0.009, 0.009], [0.01, 0.01]])
    assert doc.meta["path_points_dropped"] == 2
    # Points left out are not checked (this one would leave the map).
    assert dreame.parse(frame(LIVE, {"tr": "S0,0" * 5 + "L9999999999,0"})).paths
    monkeypatch.setattr(dreame, "MAX_PATH_POINTS", 100)
    monkeypatch.setattr(dreame, "MAX_PATHS", 2)
    doc = dreame.parse(frame(LIVE, {"tr": "S0,0L1,1M5,5S7,7L1,1"}))
    assert [len(p.xy) for p in doc.paths] == [2, 1] and doc.meta["path_points_dropped"] == 2
    assert "path_points_dropped" not in dreame.parse(frame(LIVE, {"tr": "S0,0"})).meta


def bomb(width: int, height: int, pixel_mm: int = 50, extra: bytes = b"", fill: bytes = b"\0"):
    """A frame as the robot uploads it, whatever its size: header, cells, JSON."""
    head = struct.pack("<hhb11h", 1, 1, 73, 0, 0, 0, 0, 0, 0, pixel_mm, width, height, -50, -50)
    return encode(head + fill * (width * height) + extra)


def test_huge_raster_is_refused_and_memory_stays_small():
    data = bomb(8000, 8000, 5, fill=b"\x05")  # 83 kB of text, 64 MB of cells
    error, peak = peak_of(dreame.parse, data)
    assert isinstance(error, CorruptMap) and str(error).startswith("bomb.bin: ")
    assert peak < PEAK_LIMIT
    at_limit = frame(np.zeros((1, 1), np.uint8), width=2049, height=2048, pixel_mm=5)
    with pytest.raises(CorruptMap, match="byte 19: 2049 x 2048 cells is more than any map holds"):
        dreame.parse(at_limit + bytes(2049 * 2048))
    doc, peak = peak_of(dreame.parse, bomb(2048, 2048, 5, fill=b"\x05"))
    assert doc.grid.shape == (2048, 2048) and peak < PEAK_LIMIT


def test_huge_path_string_is_refused_and_memory_stays_small():
    data = bomb(10, 10, extra=b'{"tr":"M0,0' + b"L1,1" * 15_000_000 + b'"}')  # 78 kB
    error, peak = peak_of(dreame.parse, data)
    assert isinstance(error, CorruptMap) and "bomb.bin" in str(error)
    assert peak < PEAK_LIMIT


@pytest.mark.parametrize(
    ("token", "kept", "dropped"),
    [(b"L1,1", [2_000_000], 1_000_001), (b"S1,1", [1] * 10_000, 2_990_001)],
    ids=["points", "polylines"],
)
def test_long_path_string_is_cut_and_memory_stays_small(token, kept, dropped):
    data = bomb(10, 10, extra=b'{"tr":"M0,0' + token * 3_000_000 + b'"}')  # 16 kB
    doc, peak = peak_of(dreame.parse, data)
    assert [len(p.xy) for p in doc.paths] == kept
    assert doc.meta["path_points_dropped"] == dropped
    assert peak < PEAK_LIMIT


@pytest.mark.parametrize(
    "extra",
    [b'{"x":[' + b"[]," * 5_000_000 + b"[]]}", b'{"x":"' + b'\\"' * 7_000_000 + b'"}'],
    ids=["values", "escapes"],
)
def test_json_with_millions_of_items_is_refused_and_memory_stays_small(extra):
    error, peak = peak_of(dreame.parse, bomb(10, 10, extra=extra))  # 20 kB
    assert isinstance(error, CorruptMap) and "values, keys and escapes, more than" in str(error)
    assert peak < PEAK_LIMIT


# --- the real fixtures ---------------------------------------------------------------------


def fixture(shared_data, name: str):
    return shared_data / "vendor_maps" / "dreame" / name


def unpack(raw: bytes) -> bytes:
    """The decoded frame of a stored fixture (base64url text of zlib, or already decoded)."""
    try:
        text = raw.strip().decode("ascii")
        return zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (UnicodeDecodeError, ValueError, zlib.error):
        return raw


@pytest.mark.shared_data
@pytest.mark.parametrize("name", GOLDEN)
def test_matches_valetudo_output(shared_data, name):
    doc = dreame.load(fixture(shared_data, f"{name}.bin"))
    assert_matches_valetudo(doc, fixture(shared_data, f"{name}.json"))
    assert doc.meta["vendor"] == "dreame" and "vendor_map_id" not in doc.meta


@pytest.mark.shared_data
@pytest.mark.parametrize("name", GOLDEN)
def test_world_frame_is_vendor_mm_over_1000(shared_data, name):
    decoded = unpack(fixture(shared_data, f"{name}.bin").read_bytes())
    fields = struct.unpack_from("<hhb11h", decoded)
    extra = json.loads(decoded[27 + fields[10] * fields[11] :])
    saved = None
    if "rism" in extra:
        saved = struct.unpack_from("<hhb11h", unpack(extra["rism"].encode()))
    doc = dreame.load(fixture(shared_data, f"{name}.bin"))
    for pose, at in ((doc.robot, 3), (doc.dock, 6)):
        source = fields if fields[at : at + 2] != (UNKNOWN_XY, UNKNOWN_XY) else saved
        x, y, angle = source[at : at + 3]
        assert (pose.x, pose.y) == pytest.approx((x / 1000, y / 1000), abs=1e-12)
        assert math.cos(pose.theta) == pytest.approx(math.cos(math.radians(angle)))
        assert math.sin(pose.theta) == pytest.approx(math.sin(math.radians(angle)))
    # Live cell (i, j) of the header's raster is the grid cell holding its centre.
    pixel_mm, w, h, left, top = fields[9:14]
    i, j = h // 2, w // 2
    centre = ((left + (j + 0.5) * pixel_mm) / 1000, (top + (i + 0.5) * pixel_mm) / 1000)
    [(gi, gj)] = doc.grid.world_to_cell(centre)
    byte = decoded[27 + i * w + j]
    state = doc.cell_states()[gi, gj]
    if 0 < byte >> 2 < 62:
        assert state == FREE and doc.rooms[gi, gj] == byte >> 2
    elif byte & 3 == 2:
        assert state == OCCUPIED


@pytest.mark.shared_data
def test_saved_map_fixture_keeps_both_layers_through_the_store(shared_data, tmp_path):
    from maps.store import MapStore

    name = "1c_1096_virtualwall_and_forbidden_zone"
    doc = dreame.load(fixture(shared_data, f"{name}.bin"))
    assert doc.meta["saved_map_applied"] and "valetudo_overlay" in doc.meta
    with MapStore(tmp_path / "store.db") as store:
        store.save(doc, floor="default", source="import")
        again = store.load()
    assert_matches_valetudo(again, fixture(shared_data, f"{name}.json"))


@pytest.mark.shared_data
def test_other_vendors_are_not_dreame(shared_data):
    others = [
        *(shared_data / "vendor_maps").glob("roborock/*"),
        *(shared_data / "vendor_maps").glob("viomi*/*"),
    ]
    assert others
    for path in others:
        if path.suffix != ".json":
            assert not dreame.sniff(path.read_bytes()), path.name


def real_bad_cases(shared_data) -> list[tuple[str, bytes, str]]:
    text = fixture(shared_data, "z10_1056_virtual_restrictions.bin").read_bytes().strip()
    decoded = unpack(text)
    w, h = struct.unpack_from("<hh", decoded, 19)
    end = 27 + w * h
    extra = json.loads(decoded[end:])
    saved = unpack(extra["rism"].encode())
    cut_saved = dict(extra, rism=encode(saved[: len(saved) // 2]).decode())
    raw = fixture(shared_data, "d9_1058_no_segments.bin").read_bytes()
    wide = bytearray(decoded)
    struct.pack_into("<h", wide, 19, 32000)
    return [
        ("text cut", text[: len(text) // 2], "zlib stream is truncated"),
        ("text char", text[:100] + b"!" + text[101:], "byte 100 (0x21) is not base64url text"),
        ("pixels cut", encode(decoded[: end - 100]), f"pixels are cut: {w} x {h} cells"),
        ("absurd width", encode(bytes(wide)), "width 32000 cells is not in 0..1312"),
        ("json cut", encode(decoded[:-40]), "JSON part does not parse"),
        ("saved cut", encode(decoded[:end] + json.dumps(cut_saved).encode()), "saved map (rism"),
        ("raw header cut", raw[:20], "data ends inside the 27-byte header"),
        ("raw pixels cut", raw[:5000], "pixels are cut"),
        ("raw json cut", raw[:-10], "JSON part does not parse"),
    ]


@pytest.mark.shared_data
def test_real_bytes_damaged_give_corrupt_map(shared_data):
    for label, data, message in real_bad_cases(shared_data):
        with pytest.raises(CorruptMap) as err:
            dreame.parse(data, "z10.bin")
        assert str(err.value).startswith("z10.bin: ") and message in str(err.value), label
