"""Dreame map blobs: the map frame Dreame firmware uploads, as base64url text of a zlib stream,
or already decoded (research/vacuum_ecosystem.md sections 1.4 and 2.5).

Decoded layout (little-endian): a 27-byte header (map id i16, frame id i16, frame type i8 `I`/`P`,
robot x, y, angle i16, charger x, y, angle i16, pixel size i16 mm, width i16, height i16, left i16
mm, top i16 mm; positions are mm with y up, (0x7FFF, 0x7FFF) = unknown, angles degrees CCW from
+x), then width x height cell bytes (row 0 = lowest y), then a JSON object with the rest.

- Cells of the live map: `byte >> 2` in 1..61 is a room (segment) id; otherwise `byte & 3` is
  0 nothing, 1 floor, 2 wall, 3 carpet (drawn as floor). Cells of the saved map `rism`, a nested
  blob in the same encoding: bit 7 wall, bit 6 carpet, bits 0-5 room id.
- JSON: `tr` path string (`S`/`M`/`W` x,y start a new path, `L` dx,dy moves; `l2r` = 1 ends the last
  path at the robot; all are kind "path", as in the fixtures' Valetudo), `sa` active rooms,
  `seg_inf` room names (base64), materials, `cleanareaorder`, `vw` restrictions (`rect` no-go,
  `mop` no-mop, `line` walls; two corners each), `da`/`da2` zones being cleaned,
  `pointinfo.tpoint` go-to target, `ai_obstacle` camera obstacles, `suw` pending new map, and
  `rism` (applied when `ris` == 2 or `iscleanlog` is true).

The saved map is merged as Valetudo merges it: its rooms that the live map lacks, its floor or
walls if the live map has none at all, its restrictions, and the dock/robot when the live header
lacks them. The document's grid covers both rasters on the live map's 50 mm lattice; a cell takes
the live map's state where the live map has one. Where Valetudo draws a cell in two layers (live
floor under a saved room, a saved wall over a live room), the second one is kept in
`meta["valetudo_overlay"]` ((H, W) uint8: 0 none, 1..63 room id, 64 floor, 65 wall) so that
`valetudo_view` reproduces Valetudo's layers exactly.

World frame: `VendorFrame("dreame", 0.001, (0, 0))`: world metres = vendor mm / 1000.

Bad input raises CorruptMap naming the source and the byte offset or the JSON key: bad base64,
damaged or truncated zlib, short header, P-frames (deltas against an earlier frame), absurd pixel
size or dimensions, pixels past the end, JSON that does not parse, and JSON values that Valetudo
would turn into NaN or fail on. Values Valetudo ignores (a `pointinfo` list, a `vw.rect` that is
not a list) are ignored. Not imported: carpets, thresholds, ramps and curtains (counted in
`meta["not_imported"]`); delta (P) frames.

Bounds on what a small file can make us build (a few kB of zlib inflate to megabytes): a blob
inflating past MAX_INFLATED (24 MiB), a raster, or the live and saved rasters merged, of more than
MAX_CELLS (2048 x 2048) cells, a JSON part larger than MAX_JSON_BYTES (16 MiB), nested deeper
than MAX_JSON_DEPTH (32) or holding more than MAX_JSON_ITEMS (250 000) values, keys and escape
sequences are CorruptMap, checked before anything is built from them. A path string of more
than MAX_PATH_POINTS (2 million) points or MAX_PATHS (10 000) polylines keeps its points up to
the first one past either limit (in file order); the others are counted in
`meta["path_points_dropped"]`, and the path then does not end at the robot (`l2r`). Vendor
values kept in `meta` (`Room.meta["cleanOrder"]`, `Obstacle.meta["image"]`) are kept only when
they are a string, a bool, an int or a finite float: a list or an object there is dropped, so
that nothing nested reaches the store.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from maps.errors import CorruptMap, MapNotFound
from maps.formats.valetudo import ValetudoView, compass_degrees, js_round, native_view
from maps.geometry import Pose, wrap_angle
from maps.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    MapDocument,
    MapPath,
    Obstacle,
    Restrictions,
    Room,
    VendorFrame,
)

log = logging.getLogger(__name__)

HEADER = struct.Struct("<hhb11h")  # 27 bytes
FRAME_I, FRAME_P = 73, 80  # "I" full frame, "P" delta frame
UNKNOWN_XY = 0x7FFF  # header x = y = 32767: position not known
HALF = 32768  # vendor mm -> Valetudo: (mm + 32768) / 10 cm
CANVAS_CM = 6554  # Valetudo's Dreame canvas: round(65535 / 10) cm square
PIXEL_MM = (5, 1000)  # sane cell sizes (real maps: 50 mm)
MAX_MM = 1e9  # |coordinate| beyond this (1000 km) is damage
# What a few kilobytes of zlib may make us build. Real frames: a few hundred cells a side, a JSON
# part of a few kB nested 4 deep with well under a thousand values, paths of thousands of points
# in a handful of polylines.
MAX_CELLS = 2048 * 2048  # cells of one raster, and of the live and saved rasters merged
MAX_JSON_BYTES = 16 * 2**20  # the JSON part (a path string of 2 M points fits)
MAX_JSON_DEPTH = 32  # nested lists / objects
MAX_JSON_ITEMS = 250_000  # values, keys and escapes (openers, commas, colons, backslashes)
MAX_PATH_POINTS = 2_000_000  # path points kept per frame; the rest are counted, not read
MAX_PATHS = 10_000  # polylines kept per frame (each S, M or W starts one)
MAX_INFLATED = 24 * 2**20  # bytes: a frame of MAX_CELLS cells and MAX_JSON_BYTES of JSON fits
FLOOR, WALL = 64, 65  # cell codes beside room ids 1..63
FRAME = VendorFrame("dreame", unit=0.001, origin=(0.0, 0.0))
B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/_-]*={0,2}")
PATH_TOKEN = re.compile(r"([SMWL])(-?[0-9]+),(-?[0-9]+)")
JS_FLOAT = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")

# Room materials by `seg_inf[id].material` (1 is wood, vertical when `direction` is 90).
MATERIALS = {0: "generic", 2: "tile", 5: "carpet_high", 6: "carpet_low", 7: "carpet"}
HIDDEN_OBSTACLE = "200"  # a class id (as a string) Valetudo never shows
OBSTACLE_NAMESPACE = uuid.UUID("f90e13dc-3728-4267-bd90-43caa3f460e5")  # Valetudo's obstacle ids
# Camera classes (one id space for obstacles, furniture and rooms), named as Valetudo names them.
AI_CLASSES = {
    **dict.fromkeys(["0", "4", "32", "40", "131", "151", "164", "166"], "Unknown"),
    "1": "Bedside Table",
    "2": "Wall Air Conditioner",
    "3": "Chair",
    "5": "End Table",
    "6": "TV Monitor",
    "7": "TV Cabinet",
    "8": "Dining Table",
    "9": "Range Hood",
    "10": "Cupboard",
    "11": "Gas Water Heater",
    "12": "Toilet",
    "13": "Shower Head",
    "14": "Electric Water Heater",
    "15": "Refrigerator",
    "16": "Washer Dryer",
    "41": "Balcony",
    "42": "Bathroom",
    "43": "Bedroom",
    "44": "Corridor",
    "45": "Dining Room",
    "46": "Kitchen",
    "47": "Living Room",
    "128": "Pedestal",
    "129": "Bathroom Scale",
    "130": "Power Strip",
    "132": "Toy",
    "133": "Shoes",
    "134": "Sock",
    "135": "Feces",
    "136": "Trash Can",
    "137": "Fabric",
    "138": "Cable",
    "139": "Stain",
    "140": "Dock Entrance",
    "141": "Dock",
    "142": "Obstacle",
    "143": "Black Desk Leg",
    "144": "Roller",
    "145": "Sweeper",
    "146": "Cleaning Robot",
    "147": "Ambiguous Other",
    "148": "Carpet Segment",
    "149": "Ground",
    "150": "Carpet",
    "152": "Ceramic",
    "157": "Human",
    "158": "Pet",
    "159": "Furniture Leg",
    "160": "Furniture Leg",
    "161": "Wheel",
    "162": "Robot Cleaner",
    "163": "Cleaner",
    "165": "Bottle",
    "167": "Pet Bowl",
    "168": "Mirror",
    "169": "Door stop",
    "170": "Remote control",
    "171": "Flower pot",
    "173": "Stain need filter",
    "174": "Hand gesture unknown",
    "175": "Hand gesture stop",
    "201": "Bar Stool",
    "202": "Solid liquid",
    "203": "Human body",
    "204": "Human leg",
    "205": "Particles area",
    "206": "Stubborn stain",
    "207": "Pet house",
    "208": "Yoga mat",
}
NOT_IMPORTED = {  # JSON keys Valetudo draws that a MapDocument has no place for
    "carpet_info": "carpets",
    "carpet_polygon": "carpets",
    "vws": "thresholds and ramps",
    "ct": "curtains",
}


@dataclass(frozen=True, slots=True)
class _Part:
    """Which decoded blob an error is in: the live map or the saved map (`rism`) inside it."""

    source: str
    name: str  # "decoded map" or "saved map (rism, decoded)"

    def fail(self, offset: int, reason: str) -> CorruptMap:
        return CorruptMap(f"{self.source}: {self.name}, byte {offset}: {reason}")

    def bad_json(self, key: str, reason: str) -> CorruptMap:
        return CorruptMap(f"{self.source}: {self.name}, JSON part, {key}: {reason}")


@dataclass(slots=True)
class _Frame:
    """One decoded blob in vendor units (mm, degrees, cells), before merging."""

    header: tuple  # HEADER fields
    pixel_mm: int
    codes: np.ndarray  # (H, W) uint8: 0 nothing, 1..63 room id, FLOOR, WALL; row 0 = lowest y
    x0: int  # Valetudo canvas pixel of cell (0, 0)
    y0: int
    carpet_cells: int
    extra: dict  # the JSON part
    active: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    materials: dict[str, str] = field(default_factory=dict)
    clean_order: dict[str, object] = field(default_factory=dict)
    no_go: list[np.ndarray] = field(default_factory=list)  # (4, 2) mm
    no_mop: list[np.ndarray] = field(default_factory=list)
    walls: list[np.ndarray] = field(default_factory=list)  # (2, 2) mm
    zones: list[np.ndarray] = field(default_factory=list)
    paths: list[np.ndarray] = field(default_factory=list)  # (N, 2) mm
    path_points_dropped: int = 0  # points of `tr` past MAX_PATH_POINTS or MAX_PATHS
    go_to: tuple[float, float] | None = None  # mm
    obstacles: list[Obstacle] = field(default_factory=list)

    def position(self, at: int) -> tuple[int, int, int] | None:
        """x, y (mm), angle (deg) at header field `at` (3 robot, 6 charger); None if unknown."""
        x, y, angle = self.header[at : at + 3]
        return None if (x, y) == (UNKNOWN_XY, UNKNOWN_XY) else (x, y, angle)


# --- bytes -> decoded frame -----------------------------------------------------------------


def _header_ok(buf: bytes) -> bool:
    """A plausible decoded header: I/P frame, sane cell size, non-negative dimensions."""
    if len(buf) < HEADER.size:
        return False
    fields = HEADER.unpack_from(buf)
    pixel_mm, width, height = fields[9], fields[10], fields[11]
    return (
        fields[2] in (FRAME_I, FRAME_P)
        and PIXEL_MM[0] <= pixel_mm <= PIXEL_MM[1]
        and 0 <= width <= _max_cells(pixel_mm)
        and 0 <= height <= _max_cells(pixel_mm)
    )


def _max_cells(pixel_mm: int) -> int:
    """Cells of `pixel_mm` that fit the whole int16 mm range along one axis."""
    return 65536 // pixel_mm + 2


def sniff(data: bytes) -> bool:
    """True for base64url text that inflates to a plausible header, or a decoded frame (header,
    pixels, then the JSON part or nothing)."""
    if not _looks_like_text(data):
        if not _header_ok(bytes(data[: HEADER.size])):
            return False
        fields = HEADER.unpack_from(data)
        end = HEADER.size + fields[10] * fields[11]
        return end <= len(data) and bytes(data[end : end + 1]) in (b"", b"{")
    text = bytes(data[:1024]).strip()
    if len(text) < 8 or not B64_ALPHABET.fullmatch(text):
        return False
    text = text[: len(text) // 4 * 4]
    try:
        head = zlib.decompressobj().decompress(_b64decode(text), HEADER.size)
    except (binascii.Error, ValueError, zlib.error):
        return False
    return _header_ok(head)


def _looks_like_text(data: bytes) -> bool:
    """Mostly base64 characters at the start (a decoded header has zero bytes in it)."""
    head = bytes(data[:1024]).strip()
    if not head:
        return False
    others = len(head) - len(re.sub(rb"[^A-Za-z0-9+/_=-]", b"", head))
    return others <= len(head) // 20


def _b64decode(text: bytes) -> bytes:
    core = text.rstrip(b"=").translate(bytes.maketrans(b"-_", b"+/"))
    return base64.b64decode(core + b"=" * (-len(core) % 4), validate=True)


def _decode_text(data: bytes, where: str) -> bytes:
    """base64url text (either alphabet, optional padding, surrounding whitespace) -> bytes."""
    start = len(data) - len(data.lstrip())
    text = data.strip()
    bad = re.search(rb"[^A-Za-z0-9+/_=-]", text)
    if bad:
        at, byte = start + bad.start(), bad.group()[0]
        raise CorruptMap(f"{where}: byte {at} (0x{byte:02x}) is not base64url text")
    if not B64_ALPHABET.fullmatch(text):
        at = start + text.index(b"=")
        raise CorruptMap(f"{where}: base64 text has padding '=' inside it, at byte {at}")
    if len(text.rstrip(b"=")) % 4 == 1:
        raise CorruptMap(f"{where}: base64 text of {len(text)} characters is cut short")
    return _b64decode(text)


def _inflate(blob: bytes, what: str) -> bytes:
    """A zlib stream inflated, refusing more than MAX_INFLATED bytes and truncated streams."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise CorruptMap(f"{what}: zlib stream is damaged ({exc})") from exc
    if len(out) > MAX_INFLATED:
        raise CorruptMap(f"{what}: zlib inflates past {MAX_INFLATED // 2**20} MiB")
    if not inflater.eof:
        raise CorruptMap(
            f"{what}: zlib stream is truncated ({len(blob)} bytes read, {len(out)} inflated)"
        )
    return out


def _canvas_corner(left_mm: int, top_mm: int, ps: int, width: int = 1, height: int = 1):
    """Valetudo canvas pixel (x, y) of cell (0, 0), or None when the cells of a width x height
    raster do not land on consecutive pixels (Valetudo's float rounding, exotic cell sizes)."""
    col_offset = js_round((left_mm + HALF) / 10) / ps
    row_offset = js_round((top_mm + HALF) / 10) / ps
    cols = js_round(np.arange(max(width, 1), dtype=np.float64) + col_offset)
    rows = js_round(CANVAS_CM / ps - (np.arange(max(height, 1), dtype=np.float64) + row_offset))
    if np.any(np.diff(cols) != 1) or np.any(np.diff(rows) != -1):
        return None
    return int(cols[0]), int(rows[0])


def _frame(buf: bytes, part: _Part, saved: bool) -> _Frame | None:
    """Header, cell codes and JSON part of one decoded blob. A saved map that is not a full (I)
    frame gives None (Valetudo leaves it out); the live map must be one."""
    if len(buf) < HEADER.size:
        raise part.fail(len(buf), f"data ends inside the {HEADER.size}-byte header")
    fields = HEADER.unpack_from(buf)
    frame_type = fields[2]
    if frame_type != FRAME_I:
        if saved:
            return None
        if frame_type == FRAME_P:
            raise part.fail(4, "a P-frame (changes since an earlier frame) cannot be read alone")
        raise part.fail(4, f"frame type {frame_type} is neither 'I' (73) nor 'P' (80)")
    pixel_mm, width, height, left, top = fields[9:14]
    if not PIXEL_MM[0] <= pixel_mm <= PIXEL_MM[1]:
        raise part.fail(17, f"cell size {pixel_mm} mm is not in {PIXEL_MM[0]}..{PIXEL_MM[1]}")
    limit = _max_cells(pixel_mm)
    for at, name, value in ((19, "width", width), (21, "height", height)):
        if not 0 <= value <= limit:
            raise part.fail(at, f"{name} {value} cells is not in 0..{limit}")
    if width * height > MAX_CELLS:
        raise part.fail(
            19, f"{width} x {height} cells is more than any map holds ({MAX_CELLS:,} at most)"
        )
    end = HEADER.size + width * height
    if end > len(buf):
        raise part.fail(
            len(buf),
            f"pixels are cut: {width} x {height} cells need bytes {HEADER.size}..{end}, "
            f"the data has {len(buf)}",
        )
    ps = int(js_round(pixel_mm / 10))
    corner = _canvas_corner(left, top, ps, width, height)
    if corner is None:
        raise part.fail(17, f"cells of {pixel_mm} mm do not fall on whole Valetudo pixels")

    raw = np.frombuffer(buf, np.uint8, width * height, HEADER.size).reshape(height, width)
    if saved:
        room = raw & 63
        carpet = (raw & 64) != 0
        codes = np.where(raw >= 128, WALL, np.where(room > 0, room, np.where(carpet, FLOOR, 0)))
        carpet &= raw < 128
    else:
        room = raw >> 2
        kind = raw & 3
        in_room = (room > 0) & (room < 62)  # 62 and 63: newly found floor, drawn by kind
        codes = np.where(in_room, room, 0)
        codes[~in_room & ((kind == 1) | (kind == 3))] = FLOOR
        codes[~in_room & (kind == 2)] = WALL
        carpet = kind == 3
    frame = _Frame(
        fields,
        pixel_mm,
        codes.astype(np.uint8),
        *corner,
        int(np.count_nonzero(carpet)),
        _json_part(buf, end, part),
    )
    _read_json(frame, part)
    return frame


def _json_part(buf: bytes, at: int, part: _Part) -> dict:
    """The JSON object after the cells at byte `at`, its size, depth and values bounded first."""
    if at == len(buf):
        return {}
    size = len(buf) - at
    if size > MAX_JSON_BYTES:
        raise part.fail(
            at, f"JSON part of {size:,} bytes is larger than {MAX_JSON_BYTES // 2**20} MiB"
        )
    depth, deep_at, items = _json_shape(memoryview(buf)[at:])
    if depth > MAX_JSON_DEPTH:
        raise part.fail(
            at + deep_at,
            f"JSON part nests {depth} levels deep, more than {MAX_JSON_DEPTH}",
        )
    if items > MAX_JSON_ITEMS:
        raise part.fail(
            at,
            f"JSON part holds {items:,} values, keys and escapes, more than {MAX_JSON_ITEMS:,}",
        )
    text = buf[at:].decode("utf-8", "replace")
    try:
        extra = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise part.fail(at + exc.pos, f"JSON part does not parse ({exc.msg})") from exc
    except (ValueError, RecursionError) as exc:
        raise part.fail(at, f"JSON part does not parse ({exc})") from exc
    if not isinstance(extra, dict):
        raise part.fail(at, f"JSON part is a {type(extra).__name__}, not an object")
    return extra


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_SCAN_BYTES = 1 << 20  # JSON text scanned per numpy step


def _json_shape(raw) -> tuple[int, int, int]:
    """(deepest nesting, offset where it first passes MAX_JSON_DEPTH, items) of JSON text,
    found on the bytes without parsing: for valid JSON exact, and for any text a bound on what
    `json.loads` builds before it stops. Items are what costs `json.loads` a Python object:
    values and keys (counted by the openers `[ {`, commas and colons outside strings) and escape
    sequences (a string with escapes is built from one piece per escape). Works in steps of
    1 MiB with numpy, so memory stays small whatever the text.
    """
    arr = np.frombuffer(raw, np.uint8)
    depth = deepest = items = 0
    deep_at, in_string = -1, 0
    run, escaping = 0, False  # the backslash run the last step ended in; its last one escapes
    for start in range(0, len(arr), _SCAN_BYTES):
        chunk = arr[start : start + _SCAN_BYTES]
        # A backslash at an even place of its run escapes the byte after it.
        slash = chunk == 0x5C
        index = np.arange(len(chunk), dtype=np.int32)
        plain_before = np.maximum.accumulate(np.where(slash, np.int32(-1 - run), index))
        escapes = slash & ((index - plain_before) % 2 == 1)
        escaped = np.empty_like(escapes)
        escaped[0], escaped[1:] = escaping, escapes[:-1]
        run = int(index[-1] - plain_before[-1]) if slash[-1] else 0
        escaping = bool(escapes[-1])
        items += int(np.count_nonzero(escapes))

        quotes = (chunk == 0x22) & ~escaped
        outside = ((np.cumsum(quotes, dtype=np.int32) + in_string) & 1) == 0
        in_string = (in_string + int(np.count_nonzero(quotes))) & 1
        opens = outside & ((chunk == 0x5B) | (chunk == 0x7B))
        closes = outside & ((chunk == 0x5D) | (chunk == 0x7D))
        level = np.cumsum(opens.astype(np.int32) - closes, dtype=np.int32) + depth
        top = int(level.max())
        if top > MAX_JSON_DEPTH and deep_at < 0:
            deep_at = start + int(np.argmax(level > MAX_JSON_DEPTH))
        deepest, depth = max(deepest, top), int(level[-1])
        separators = outside & ((chunk == 0x2C) | (chunk == 0x3A))
        items += int(np.count_nonzero(opens)) + int(np.count_nonzero(separators))
    return deepest, deep_at, items


# --- JSON values as JavaScript sees them ---------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truthy(value) -> bool:
    """JavaScript truthiness of a JSON value ([] and {} are true, 0, "" and null are not)."""
    return isinstance(value, list | dict) or bool(value)


def _js_str(value) -> str:
    """String(value) as JavaScript writes it for JSON values.

    A list is joined with commas, nested lists flattened the same way and null items empty
    (Array.prototype.join); walked with a stack, so any nesting is safe.
    """
    if not isinstance(value, list):
        return _js_scalar_str(value)
    out: list[str] = []
    stack = [iter(value)]
    first = [True]  # per open list: no item written yet
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            first.pop()
            continue
        if not first[-1]:
            out.append(",")
        first[-1] = False
        if isinstance(item, list):
            stack.append(iter(item))
            first.append(True)
        elif item is not None:
            out.append(_js_scalar_str(item))
    return "".join(out)


_END = object()


def _js_scalar_str(value) -> str:
    """String(value) for a JSON value that is not a list."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _js_number(value)
    return "[object Object]"


def _scalar(value) -> str | bool | int | float | None:
    """`value` when it may go into `meta` (a string, bool, int or finite float), else None."""
    if isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None


def _js_number(value: float) -> str:
    """Number.prototype.toString(): shortest digits, exponent only below 1e-6 or from 1e21."""
    if isinstance(value, int):
        if abs(value) < 10**21:
            return str(value)
        value = _float(value)
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_t, exponent = Decimal(repr(abs(float(value)))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_t))
    k, n = len(digits), len(digits_t) + exponent  # value = 0.digits * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def _float(value: int | float) -> float:
    """A JSON number as a double, as JavaScript reads it (huge integers become infinite)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _parse_float(value) -> float:
    """parseFloat(String(value)): the longest number at the start, NaN when there is none."""
    if _is_number(value):
        return _float(value)
    match = JS_FLOAT.match(_js_str(value).lstrip())
    if match is None:
        return math.nan
    text = match.group()
    return float(text.replace("Infinity", "inf"))


def _numbers(value, count: int, part: _Part, key: str) -> list[float]:
    """The first `count` entries of a JSON list of vendor coordinates (mm), checked."""
    if not isinstance(value, list) or len(value) < count:
        raise part.bad_json(key, f"expected a list of {count} numbers, got {_short(value)}")
    out = value[:count]
    for v in out:
        if not _is_number(v) or not abs(v) <= MAX_MM:
            raise part.bad_json(key, f"{_short(v)} is not a coordinate in mm")
    return [float(v) for v in out]


def _short(value) -> str:
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):  # not reached: the JSON part's depth is bounded
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _b64_text(value: str) -> str:
    """Buffer.from(value, "base64").toString("utf8"): lenient about alphabet and padding."""
    core = re.sub(r"[^A-Za-z0-9+/_-]", "", value.split("=", 1)[0]).encode("ascii")
    core = core[: len(core) - (len(core) % 4 == 1)]
    return _b64decode(core).decode("utf-8", "replace")


# --- JSON part -> frame fields (vendor units) ----------------------------------------------


def _read_json(frame: _Frame, part: _Part) -> None:
    extra = frame.extra
    sa = extra.get("sa")
    if isinstance(sa, list):
        for k, entry in enumerate(sa):
            first = entry[0] if isinstance(entry, list | str) and len(entry) else None
            if first is None:
                raise part.bad_json(f"sa[{k}]", f"{_short(entry)} has no room id first")
            frame.active.add(_js_str(first))
    _read_rooms(frame, part)

    vw = extra.get("vw")
    if isinstance(vw, dict):
        for key, out in (("rect", frame.no_go), ("mop", frame.no_mop)):
            if isinstance(vw.get(key), list):
                out += [_rect(a, part, f"vw.{key}[{k}]") for k, a in enumerate(vw[key])]
        if isinstance(vw.get("line"), list):
            for k, a in enumerate(vw["line"]):
                x1, y1, x2, y2 = _numbers(a, 4, part, f"vw.line[{k}]")
                frame.walls.append(np.array([(x1, y1), (x2, y2)]))
    if isinstance(extra.get("da"), list):
        frame.zones.append(_rect(extra["da"], part, "da"))
    da2 = extra.get("da2")
    if isinstance(da2, dict) and isinstance(da2.get("areas"), list):
        frame.zones += [_rect(a, part, f"da2.areas[{k}]") for k, a in enumerate(da2["areas"])]

    if _truthy(extra.get("tr")):
        frame.paths, frame.path_points_dropped = _paths(extra["tr"], part)
    info = extra.get("pointinfo")
    if isinstance(info, dict) and isinstance(info.get("tpoint"), list) and len(info["tpoint"]) == 1:
        x, y = _numbers(info["tpoint"][0], 2, part, "pointinfo.tpoint[0]")
        frame.go_to = (x, y)
    obstacles = extra.get("ai_obstacle")
    if isinstance(obstacles, list):
        frame.obstacles = [o for k, a in enumerate(obstacles) if (o := _obstacle(a, part, k))]
    elif isinstance(obstacles, str) and obstacles:
        raise part.bad_json("ai_obstacle", "is a string, not a list")


def _read_rooms(frame: _Frame, part: _Part) -> None:
    """Names (base64 UTF-8), materials and cleaning order from `seg_inf`, keyed by room id."""
    seg_inf = frame.extra.get("seg_inf")
    if isinstance(seg_inf, dict):
        entries = list(seg_inf.items())
    elif isinstance(seg_inf, list):
        entries = [(str(k), v) for k, v in enumerate(seg_inf)]
    else:
        return
    order = frame.extra.get("cleanareaorder")
    for key, entry in entries:
        if entry is None:
            raise part.bad_json(f"seg_inf.{key}", "is null")
        if not isinstance(entry, dict):
            continue
        if _truthy(entry.get("name")):
            frame.names[key] = _b64_text(_js_str(entry["name"]))
        if isinstance(order, list):
            found = next((e for e in order if isinstance(e, dict) and key in e), None)
            if found is not None and _scalar(found[key]) is not None:
                frame.clean_order[key] = found[key]
        if "material" in entry:
            code = entry["material"]
            if _is_number(code) and code == 1:
                vertical = _is_number(entry.get("direction")) and entry["direction"] == 90
                frame.materials[key] = "wood_vertical" if vertical else "wood_horizontal"
            elif _is_number(code) and code in MATERIALS:
                frame.materials[key] = MATERIALS[code]


def _rect(value, part: _Part, key: str) -> np.ndarray:
    """Two corners (mm) -> (4, 2) mm rectangle, in the corner order Valetudo draws."""
    x1, y1, x2, y2 = _numbers(value, 4, part, key)
    (xa, xb), (ya, yb) = sorted((x1, x2)), sorted((y1, y2))
    return np.array([(xa, yb), (xb, yb), (xb, ya), (xa, ya)])


_PATH_OPS = np.frombuffer(b"SMWL", np.uint8)
_NUMBER_START = np.frombuffer(b"-0123456789", np.uint8)
_LOOK = 12  # digits read per path number: one past the 11 characters a number may have
_PATH_STEP = 1 << 18  # characters of a path string searched per numpy step


def _paths(trace, part: _Part) -> tuple[list[np.ndarray], int]:
    """The `tr` path string -> one (N, 2) mm polyline per start (S, M or W) operator, and the
    number of points left out past MAX_PATH_POINTS points or MAX_PATHS polylines.

    The points are what PATH_TOKEN.finditer finds (text between them is skipped), found and
    read with numpy, a step of the string at a time: no Python object per point. Only the kept
    points are checked (numbers of at most 11 characters, a start first, inside MAX_MM).
    """
    if not isinstance(trace, str):
        raise part.bad_json("tr", f"path is {_short(trace)}, not a string")
    n = len(trace)
    # One byte per character (others become "?"), so byte offsets are character offsets; zero
    # bytes after the end let every number be read _LOOK digits far.
    raw = trace.encode("ascii", "replace") + bytes(2 * _LOOK + 4)
    text = np.frombuffer(raw, np.uint8)
    found: list[tuple[np.ndarray, ...]] = []
    kept = total = polylines = 0
    full = False  # a limit was reached: no token after it is kept
    for start in range(0, n, _PATH_STEP):
        step = text[start : min(n, start + _PATH_STEP)]
        at = start + np.flatnonzero(np.isin(step, _PATH_OPS))
        at = at[np.isin(text[at + 1], _NUMBER_START)]
        pos, x, y, too_long = _path_tokens(text, raw, at)
        total += len(pos)
        if full or not len(pos):
            continue
        begun = polylines + np.cumsum(text[pos] != ord("L"))  # polylines up to each token
        take = min(len(pos), MAX_PATH_POINTS - kept, int(np.searchsorted(begun, MAX_PATHS + 1)))
        full = take < len(pos)
        if take:
            found.append((pos[:take], x[:take], y[:take], too_long[:take]))
            kept, polylines = kept + take, int(begun[take - 1])
    if not found:
        return [], 0
    pos, x, y, too_long = (np.concatenate(arrays) for arrays in zip(*found, strict=True))
    del found
    is_start = text[pos] != ord("L")
    bad = np.flatnonzero(too_long)
    first_bad = int(bad[0]) if len(bad) else len(pos)
    if first_bad == 0:
        raise part.bad_json("tr", f"path number at character {pos[0]} is too long")
    if not is_start[0]:
        raise part.bad_json("tr", "path moves (L) before any start (S, M or W)")

    # A start sets the position, a move adds to it: cumulative sums, restarted at each start.
    xy = np.stack([x, y], 1)
    del x, y
    starts = np.flatnonzero(is_start)
    at_start = xy[starts]
    np.cumsum(xy, axis=0, out=xy)
    base = xy[starts] - at_start  # sum of everything before each start
    xy -= np.repeat(base, np.diff(np.append(starts, len(xy))), axis=0)
    outside = np.flatnonzero(np.abs(xy).max(axis=1) > MAX_MM)
    if len(outside) and outside[0] < first_bad:
        raise part.bad_json("tr", f"path leaves the map at character {pos[outside[0]]}")
    if first_bad < len(pos):
        raise part.bad_json("tr", f"path number at character {pos[first_bad]} is too long")
    return np.split(xy.astype(np.float64), starts[1:]), total - kept


def _path_number(text: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`-?[0-9]+` at each offset of `at`: (value, characters with the sign, digits) as int64
    arrays; the digits are counted up to _LOOK (0: no number there)."""
    negative = text[at] == ord("-")
    first = at + negative
    value = np.zeros(len(at), np.int64)
    digits = np.zeros(len(at), np.int64)
    running = np.ones(len(at), bool)
    for k in range(_LOOK):
        code = text[first + k].astype(np.int64) - ord("0")
        running &= (code >= 0) & (code <= 9)
        value = np.where(running, value * 10 + code, value)
        digits += running
    return np.where(negative, -value, value), digits + negative, digits


def _path_tokens(text: np.ndarray, raw: bytes, at: np.ndarray):
    """The path tokens starting at the operator offsets `at` (ascending) of `text` (the bytes
    of `raw`): their offsets, x and y (int64), and whether a number is longer than 11
    characters."""
    x, x_chars, x_digits = _path_number(text, at + 1)
    comma = at + 1 + x_chars
    runs_on = x_digits >= _LOOK  # a first number longer than read: find where its digits end
    if runs_on.any():
        digits_at = at + 1 + x_chars - x_digits
        comma[runs_on] = _digit_run_ends(text, raw, digits_at[runs_on])
    y, y_chars, y_digits = _path_number(text, comma + 1)
    token = (x_digits > 0) & (text[comma] == ord(",")) & (y_digits > 0)
    too_long = token & ((x_chars > 11) | (y_chars > 11))
    keep = np.flatnonzero(token)
    return at[keep], x[keep], y[keep], too_long[keep]


_NON_DIGIT = re.compile(rb"[^0-9]")


def _digit_run_ends(text: np.ndarray, raw: bytes, starts: np.ndarray) -> np.ndarray:
    """The offset of the first non-digit at or after each offset of `starts` (ascending).

    Searched within starts[0] .. starts[-1]; runs still going there are one and the same run,
    whose end one regex search finds (`raw` ends in non-digits)."""
    lo, hi = int(starts[0]), int(starts[-1]) + 1
    window = text[lo:hi]
    others = lo + np.flatnonzero((window < ord("0")) | (window > ord("9")))
    k = np.searchsorted(others, starts)
    past = k == len(others)
    ends = np.where(past, 0, others[np.minimum(k, len(others) - 1)] if len(others) else 0)
    if past.any():
        ends[past] = _NON_DIGIT.search(raw, hi).start()
    return ends


def _obstacle(entry, part: _Part, k: int) -> Obstacle | None:
    """[x, y, class, confidence, ?, image, ...] (strings or numbers) -> Obstacle, None if hidden."""
    key = f"ai_obstacle[{k}]"
    if not isinstance(entry, list) or len(entry) < 4:
        raise part.bad_json(key, f"expected [x, y, class, confidence, ...], got {_short(entry)}")
    x, y, conf = _parse_float(entry[0]), _parse_float(entry[1]), _parse_float(entry[3])
    if not (abs(x) <= MAX_MM and abs(y) <= MAX_MM and abs(conf) <= 1e6):
        raise part.bad_json(key, f"position or confidence of {_short(entry)} is not a number")
    cls = entry[2]
    if cls == HIDDEN_OBSTACLE:
        return None
    name = AI_CLASSES.get(_js_str(cls), f"Unknown ID {_js_str(cls)}")
    meta = {
        "id": str(uuid.uuid5(OBSTACLE_NAMESPACE, "_".join(_js_str(v) for v in (cls, *entry[:2])))),
        "vendor_class": _js_str(cls),
        "confidence": conf,
    }
    if len(entry) > 5 and _scalar(entry[5]) is not None:
        meta["image"] = entry[5]
    wx, wy = FRAME.to_world((x, y)).tolist()
    label = f"{name} ({int(js_round(conf * 100))}%)"
    return Obstacle(wx, wy, label=label, source="vendor", meta=meta)


# --- frames -> MapDocument -----------------------------------------------------------------


def _decode(data: bytes, source: str) -> tuple[bytes, str]:
    """The decoded frame and the form it came in ("decoded" or "base64+zlib")."""
    if not _looks_like_text(data):
        return data, "decoded"
    blob = _decode_text(data, f"{source}: base64 text")
    return _inflate(blob, f"{source}: base64 text"), "base64+zlib"


def _saved_map(live: _Frame, part: _Part) -> _Frame | None:
    """The nested saved map when Valetudo applies it (`ris` 2 or `iscleanlog` true)."""
    extra = live.extra
    ris, rism = extra.get("ris"), extra.get("rism")
    if not _truthy(rism) or not ((_is_number(ris) and ris == 2) or extra.get("iscleanlog") is True):
        return None
    where = f"{part.source}: saved map (rism)"
    if not isinstance(rism, str):
        raise part.bad_json("rism", f"saved map is {_short(rism)}, not base64 text")
    blob = _decode_text(rism.encode("utf-8"), where)
    inner = _Part(part.source, "saved map (rism, decoded)")
    saved = _frame(_inflate(blob, where), inner, True)
    if saved is not None and saved.pixel_mm != live.pixel_mm:
        raise inner.fail(17, f"cells of {saved.pixel_mm} mm, the live map's are {live.pixel_mm}")
    return saved


def _union(live: _Frame, saved: _Frame | None, part: _Part) -> tuple[int, int, int, int]:
    """Canvas x of union column 0, canvas y of union row 0, width and height: the live and saved
    rasters together, cut to the canvas (Valetudo drops pixels off it)."""
    ps = int(js_round(live.pixel_mm / 10))
    frames = [f for f in (live, saved) if f is not None and f.codes.size]
    if not frames:
        raise part.fail(19, "the map has no cells (width or height 0)")
    limit = -(-CANVAS_CM // ps)  # canvas pixels are 0 <= x, y < 6554 / ps
    x_lo = max(0, min(f.x0 for f in frames))
    x_hi = min(limit - 1, max(f.x0 + f.codes.shape[1] - 1 for f in frames))
    y_lo = max(0, min(f.y0 - f.codes.shape[0] + 1 for f in frames))
    y_hi = min(limit - 1, max(f.y0 for f in frames))
    width, height = x_hi - x_lo + 1, y_hi - y_lo + 1
    if width <= 0 or height <= 0:
        raise part.fail(23, "the whole image lies outside the vendor frame")
    described = sum(f.codes.size for f in frames)
    if width * height > min(4 * described + 65536, MAX_CELLS):
        raise part.fail(
            23, f"live and saved map lie far apart ({width} x {height} cells to hold both)"
        )
    return x_lo, y_hi, width, height


def _paste(codes: np.ndarray, frame: _Frame, x_lo: int, y_hi: int) -> None:
    """Copy frame.codes into the union raster `codes` (row 0 = canvas y_hi), cut to it."""
    h, w = frame.codes.shape
    r0, c0 = y_hi - frame.y0, frame.x0 - x_lo
    i0, i1 = max(0, -r0), min(h, codes.shape[0] - r0)
    j0, j1 = max(0, -c0), min(w, codes.shape[1] - c0)
    if i0 < i1 and j0 < j1:
        codes[r0 + i0 : r0 + i1, c0 + j0 : c0 + j1] = frame.codes[i0:i1, j0:j1]


def _room_ids(codes: np.ndarray) -> set[int]:
    ids = np.unique(codes)
    return set(ids[(ids > 0) & (ids < FLOOR)].tolist())


def _pose(position: tuple[int, int, int]) -> Pose:
    x, y, angle = position
    wx, wy = FRAME.to_world((x, y)).tolist()
    return Pose(wx, wy, math.radians(angle))


@dataclass(slots=True)
class _Cells:
    """The live and saved rasters merged on one grid (row 0 = lowest y), vendor frame."""

    states: np.ndarray  # (H, W) int8 UNKNOWN / FREE / OCCUPIED
    rooms: np.ndarray  # (H, W) uint8 room id of free cells, 0 = none
    overlay: np.ndarray  # (H, W) uint8 second layer Valetudo draws a cell in (module docstring)
    origin_mm: tuple[int, int]  # vendor mm of the corner of cell (0, 0)
    room_info: dict[int, Room]
    saved_applied: bool


def _merge(live: _Frame, saved: _Frame | None, part: _Part) -> _Cells:
    """Valetudo's layers of both rasters as one state and room per cell, plus the overlay."""
    x_lo, y_hi, width, height = _union(live, saved, part)
    lcodes = np.zeros((height, width), np.uint8)
    _paste(lcodes, live, x_lo, y_hi)
    live_ids = _room_ids(lcodes)
    scodes = np.zeros_like(lcodes)
    if saved is not None:
        _paste(scodes, saved, x_lo, y_hi)
    saved_ids = _room_ids(scodes)
    if scodes.any():  # Valetudo drops a saved map with nothing on the canvas whole
        # Its floor, walls and rooms only where the live map has none of that layer.
        drop = np.isin(scodes, list(live_ids))
        drop |= (scodes == FLOOR) & bool((lcodes == FLOOR).any())
        drop |= (scodes == WALL) & bool((lcodes == WALL).any())
        scodes[drop] = 0
    else:
        saved, saved_ids = None, set()

    # One state and room per cell: the live map's where it has one, else the saved map's; the
    # second layer of a cell both draw goes to the overlay.
    first = np.where(lcodes != 0, lcodes, scodes)
    second = np.where(lcodes != 0, scodes, 0)
    states = np.full(first.shape, UNKNOWN, np.int8)
    states[(first > 0) & (first != WALL)] = FREE
    states[first == WALL] = OCCUPIED
    rooms = np.where(first < FLOOR, first, np.where((first == FLOOR) & (second < FLOOR), second, 0))
    implied = np.where(first == WALL, WALL, np.where(rooms > 0, rooms, FLOOR))
    overlay = np.where(second != 0, np.where(lcodes == implied, second, lcodes), 0)

    # Union cell (0, 0) sits whole cells away from the live map's cell (0, 0).
    left, top, mm = live.header[12], live.header[13], live.pixel_mm
    origin_mm = (left - (live.x0 - x_lo) * mm, top - (y_hi - live.y0) * mm)
    if _canvas_corner(*origin_mm, int(js_round(mm / 10))) != (x_lo, y_hi):
        raise part.fail(23, "the saved map cannot be placed on the live map's cell lattice")
    return _Cells(
        states,
        rooms.astype(np.uint8),
        overlay.astype(np.uint8),
        origin_mm,
        _room_info(live, saved, live_ids, saved_ids, _room_ids(scodes)),
        saved is not None,
    )


def parse(data: bytes, source: str = "<bytes>") -> MapDocument:
    """A Dreame map (base64url text of zlib, or decoded) as a MapDocument; CorruptMap when bad."""
    data = bytes(data)
    if not data.strip():
        raise CorruptMap(f"{source}: empty input, not a Dreame map")
    buf, form = _decode(data, source)
    part = _Part(source, "decoded map")
    live = _frame(buf, part, False)
    assert live is not None  # the live map is a full frame or an error
    saved = _saved_map(live, part)
    cells = _merge(live, saved, part)
    saved = saved if cells.saved_applied else None
    frames = [live] + ([saved] if saved else [])

    meta: dict = {
        "vendor": "dreame",
        "form": form,
        "map_id": live.header[0],
        "frame_id": live.header[1],
        "pixel_mm": live.pixel_mm,
        "saved_map_applied": saved is not None,
        "angles_deg": {},
    }
    if saved is not None:
        meta["saved_map_id"] = saved.header[0]
    if cells.overlay.any():
        meta["valetudo_overlay"] = cells.overlay
    skipped = {what: 1 for key, what in NOT_IMPORTED.items() if _truthy(live.extra.get(key))}
    if carpets := sum(f.carpet_cells for f in frames):
        skipped["carpets"] = skipped.get("carpets", 0) + carpets
    if skipped:
        meta["not_imported"] = skipped
        log.debug("%s: not imported (no place in a MapDocument): %s", source, skipped)
    if any(_is_number(f.extra.get("suw")) and f.extra["suw"] > 0 for f in frames):
        meta["pending_map_change"] = True

    poses = {}
    for at, kind in ((3, "robot_position"), (6, "charger_location")):
        position = live.position(at) or (saved.position(at) if saved else None)
        if position is not None:
            poses[kind] = _pose(position)
            meta["angles_deg"][kind] = position[2]

    paths = [MapPath("path", FRAME.to_world(p)) for p in live.paths]
    if live.path_points_dropped:
        meta["path_points_dropped"] = live.path_points_dropped
        log.warning(
            "%s: path longer than %d points or %d polylines; its last %d points are left out",
            source,
            MAX_PATH_POINTS,
            MAX_PATHS,
            live.path_points_dropped,
        )
    elif paths and live.extra.get("l2r") == 1 and _is_number(live.extra["l2r"]):
        end = FRAME.to_world(live.header[3:5])[None]  # the robot, even when unknown
        paths[-1] = MapPath("path", np.concatenate([paths[-1].xy, end]))
    restrictions = Restrictions(
        no_go=[FRAME.to_world(a) for f in frames for a in f.no_go],
        virtual_walls=[FRAME.to_world(a) for f in frames for a in f.walls],
        no_mop=[FRAME.to_world(a) for f in frames for a in f.no_mop],
    )
    go_to = tuple(FRAME.to_world(live.go_to).tolist()) if live.go_to else None
    return MapDocument.from_cells(
        cells.states,
        live.pixel_mm * FRAME.unit,
        tuple(FRAME.to_world(cells.origin_mm).tolist()),
        rooms=cells.rooms if cells.room_info else None,
        room_info=cells.room_info,
        restrictions=restrictions,
        obstacles=live.obstacles,
        dock=poses.get("charger_location"),
        robot=poses.get("robot_position"),
        paths=paths,
        go_to_target=go_to,
        active_zones=[FRAME.to_world(z) for z in live.zones],
        frame=FRAME,
        meta=meta,
    )


def _room_info(
    live: _Frame, saved: _Frame | None, live_ids: set, saved_ids: set, added: set
) -> dict[int, Room]:
    """A Room per room layer Valetudo draws: the live map's, then the saved map's it adds.

    The saved map names a live room (and gives its cleaning order, and its material when the live
    map has none) when it has cells of that room too.
    """
    info = {}
    for rid in sorted(live_ids):
        key, meta = str(rid), {"source": "regular"}
        name = live.names.get(key, "")
        material = live.materials.get(key)
        order = live.clean_order.get(key)
        if saved is not None and rid in saved_ids:
            name = saved.names.get(key) or name
            material = material or saved.materials.get(key)
            order = saved.clean_order.get(key) if _truthy(saved.clean_order.get(key)) else order
        if _truthy(order):
            meta["cleanOrder"] = order
        if material:
            meta["material"] = material
        info[rid] = Room(rid, name, key in live.active, meta)
    for rid in sorted(added):
        key, meta = str(rid), {"source": "rism"}
        if _truthy(saved.clean_order.get(key)):
            meta["cleanOrder"] = saved.clean_order[key]
        if saved.materials.get(key):
            meta["material"] = saved.materials[key]
        active = key in saved.active or key in live.active
        info[rid] = Room(rid, saved.names.get(key, ""), active, meta)
    return info


def load(path: str | Path) -> MapDocument:
    """A Dreame map file (base64url text or decoded); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MapNotFound(f"{path}: no such file")
    if path.stat().st_size > MAX_INFLATED:
        size = path.stat().st_size
        raise CorruptMap(f"{path.name}: {size:,} bytes is larger than any Dreame map")
    doc = parse(path.read_bytes(), path.name)
    doc.meta["source"] = path.name
    return doc


# --- Valetudo's view of a Dreame map ---------------------------------------------------------


def _valetudo_cm(mm: np.ndarray) -> np.ndarray:
    """(N, 2) vendor mm -> Valetudo cm: (x + 32768) / 10 and 6554 - (y + 32768) / 10, rounded
    like Math.round each."""
    mm = np.asarray(mm, np.float64).reshape(-1, 2)
    return np.stack(
        [js_round((mm[:, 0] + HALF) / 10), CANVAS_CM - js_round((mm[:, 1] + HALF) / 10)], 1
    )


def _js_angle(angle: int) -> int:
    """Valetudo's conversion of a Dreame angle (deg CCW from +x) to its compass degrees, with
    JavaScript's remainder (negative for angles past 810)."""
    return int(math.fmod((180 - angle if angle < 180 else 540 - angle) + 270, 360))


def valetudo_view(doc: MapDocument) -> ValetudoView:
    """The 6554 x 6554 cm canvas Valetudo draws Dreame maps on, pixel size = cell size / 10.

    Cells of a grid on whole vendor mm land where Valetudo puts the vendor's pixels; points go
    back to vendor mm (rounded to 1e-6 mm to undo float noise) and through Valetudo's formulas.
    A grid moved off whole mm, or onto cells Valetudo cannot place, gets the native view.
    """
    frame = doc.frame
    res_mm = doc.grid.resolution / frame.unit
    corner = frame.to_vendor(doc.grid.origin)
    whole = np.rint(np.append(corner, res_mm))
    if np.abs(whole - np.append(corner, res_mm)).max() > 1e-6 or not 5 <= whole[2] <= 1000:
        return native_view(doc)
    ps = int(js_round(whole[2] / 10))
    placed = _canvas_corner(int(whole[0]), int(whole[1]), ps)
    if placed is None:
        return native_view(doc)
    angles = doc.meta.get("angles_deg", {})
    poses = {"robot_position": doc.robot, "charger_location": doc.dock}
    overlay = doc.meta.get("valetudo_overlay")
    if not isinstance(overlay, np.ndarray) or overlay.shape != doc.grid.shape:
        overlay = None

    def to_cm(xy: np.ndarray) -> np.ndarray:
        mm = frame.to_vendor(np.asarray(xy, np.float64).reshape(-1, 2))
        return _valetudo_cm(np.round(mm, 6))

    def angle(theta: float, kind: str) -> int | None:
        raw, pose = angles.get(kind), poses.get(kind)
        # The firmware's own angle while the pose still holds it (exact for any int16 value).
        if raw is not None and pose is not None and pose.theta == theta:
            if abs(wrap_angle(math.radians(raw)) - theta) < 1e-9:
                return _js_angle(raw)
        return compass_degrees(theta)

    def extra_pixels() -> dict[tuple[str, int], np.ndarray]:
        out = {("floor", 0): overlay == FLOOR, ("wall", 0): overlay == WALL}
        for rid in _room_ids(overlay):
            out["segment", rid] = overlay == rid
        return out

    return ValetudoView(
        size=(CANVAS_CM, CANVAS_CM),
        pixel_size=ps,
        x0=placed[0],
        y0=placed[1],
        to_cm=to_cm,
        angle=angle,
        extra_pixels=extra_pixels if overlay is not None else None,
    )
