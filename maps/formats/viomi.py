"""Viomi / 3irobotix CRL-200S map files (Viomi V6/V7/SE, Mijia STYJ02YM and kin).

The file is a zlib stream. Inside (little-endian): a u16 bit-field of the sections present at
offset 0, the map id (u32) at offset 4, then the sections one after another, each starting with
that same map id. Like Valetudo's parser, sections are found by searching for the map id: the
k-th occurrence starts the section of the k-th set flag bit (lowest bit first). A map id of 0
marks a temporary map (first run, no rooms yet); its sections are walked by their lengths.

Sections read here (offsets from the section start):
  0x0002 image: two u32 flags @4 and @8 (1, 1), height u32 @12, width u32 @16, min x, min y,
         max x, max y and resolution float32 @20..36 (metres), then height * width bytes,
         rows of `width` bytes, row 0 = lowest y:
         0 nothing, 1 floor, 255 wall, other = room id, values >= 60 a room being cleaned
         (id = value - 50).
  0x0004 path: count u32 @8, then per point a mode byte and x, y float32.
  0x0008 charger: x, y, angle float32 @4.  0x0080 robot: x, y, angle float32 @9.
  0x0010 restrictions and 0x0020 active zones: count u32 @8, then 92-byte entries whose
         bytes 12..44 are four x, y float32 corners; a restriction with p0 == p1 and
         p2 == p3 is a virtual wall from p0 to p2.
  0x0040 go-to target: x, y float32 @8 (1100, 1100 = none).
  0x1000 room names: map name (u8 length + bytes), 4 bytes, count u32, then per room
         id u8, name (u8 length + bytes), 1 byte, label x, y float32.

Frame: metres, x right, y up, angles in radians counter-clockwise from +x, the image centred
on the charger's map origin (bounds -20..20 m on every file seen). That is our world frame, so
`VendorFrame("viomi")` is the identity and points keep their exact float32 values. The
grid is the image cropped to its known pixels, cell-aligned with the vendor pixels.

`meta` keeps what Valetudo's view of the map needs: `vendor_map_id`, `temporary_map`,
`viomi_image` (the raw float32 header: width, height, min_x, min_y, resolution) and
`vendor_angles` ({entity: [theta, angle as reported]}: Valetudo shows `(angle + 180) % 360`
of the reported number, which Pose would have wrapped).

Where we differ from Valetudo on purpose: a charger, robot or go-to target at the firmware's
"unknown" position (1100, 1100) is left out (Valetudo draws it 1 km away); the go-to target
is read (Valetudo skips that section); an image with no known pixel and a room count above
256 raise CorruptMap (Valetudo returns no map / loops on); NaN and infinite floats are
refused. The robot's heading is the reported one (Valetudo's view shows the heading of the
last path step instead, and so does `valetudo_view`).

Bounds on what a small file can make us build: more than MAX_INFLATED (32 MiB) inflated, an
image of more than MAX_CELLS (2048 x 2048) pixels, or more than MAX_ENTRIES (10 000) restrictions
or zones in a section is CorruptMap. A path of more than MAX_PATH_POINTS (2 million) points keeps
the first ones and counts the others in `meta["path_points_dropped"]` (a temporary map's robot
still stands at the last point stored; `valetudo_view` takes its heading from the kept path).
Resolution (0.005..1 m per pixel) and image bounds (|v| <= 1e5 m) are checked, so the grid's
origin is finite and within about 1e5 m.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np

from maps.errors import CorruptMap, MapNotFound
from maps.formats.valetudo import ValetudoView, js_round
from maps.geometry import Pose
from maps.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    MapDocument,
    MapPath,
    Restrictions,
    Room,
    VendorFrame,
)

MAX_INFLATED = 32 * 2**20  # bytes; an 800x800 map inflates to ~640 kB
# What a small file may make us build (real maps: 800 x 800 pixels, paths of thousands of points).
MAX_CELLS = 2048 * 2048  # image pixels
MAX_PATH_POINTS = 2_000_000  # path points kept; the rest are counted, not read
MAX_ENTRIES = 10_000  # restrictions or zones in one section (real maps: a few)
MAX_COORD = 1.0e5  # m; any position farther from the map origin is corruption
RESOLUTION_RANGE = (0.005, 1.0)  # m per pixel accepted (every file seen: 0.05)
UNKNOWN_POSITION = 1100.0  # firmware marker for "no such point" (charger, robot, go-to)

ROBOT_STATUS = 0x0001
IMAGE = 0x0002
PATH = 0x0004
CHARGER = 0x0008
RESTRICTIONS = 0x0010
ACTIVE_ZONES = 0x0020
GO_TO_TARGET = 0x0040
ROBOT = 0x0080
ROOM_NAMES = 0x1000

IMAGE_HEADER = 40  # bytes before the pixels
STATUS_BYTES = 48  # the robot-status section of a temporary map, header included
ENTRY_BYTES = 92  # one restriction / zone entry: 12 header, 4 float32 corners, 48 more
ACTIVE_OFFSET = 50  # pixel value of a room being cleaned = room id + 50

# Valetudo's canvas for these robots: 40 m x 40 m centred on the vendor origin, in cm.
VALETUDO_HALF_M = 20.0
VALETUDO_EXTENT_CM = 4000

_NAMES = {
    IMAGE: "image",
    PATH: "path",
    CHARGER: "charger",
    RESTRICTIONS: "restrictions",
    ACTIVE_ZONES: "active zones",
    GO_TO_TARGET: "go-to target",
    ROBOT: "robot position",
    ROOM_NAMES: "room names",
}


class _Section:
    """Bounds-checked little-endian reads inside one section of the inflated buffer."""

    def __init__(self, buf: bytes, kind: int, start: int, end: int, source: str):
        self.buf, self.kind, self.start, self.end, self.source = buf, kind, start, end, source

    def __len__(self) -> int:
        return self.end - self.start

    def fail(self, offset: int, reason: str) -> CorruptMap:
        name = _NAMES.get(self.kind, f"0x{self.kind:04x}")
        at = self.start + offset
        return CorruptMap(f"{self.source}: inflated offset {at}: {name} section: {reason}")

    def need(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or offset + size > len(self):
            raise self.fail(
                offset,
                f"{what} needs bytes {offset}..{offset + size} of a {len(self)}-byte section",
            )

    def u8(self, offset: int, what: str) -> int:
        self.need(offset, 1, what)
        return self.buf[self.start + offset]

    def u32(self, offset: int, what: str) -> int:
        self.need(offset, 4, what)
        return struct.unpack_from("<I", self.buf, self.start + offset)[0]

    def f32(self, offset: int, what: str) -> float:
        self.need(offset, 4, what)
        return struct.unpack_from("<f", self.buf, self.start + offset)[0]

    def coord(self, offset: int, what: str) -> float:
        """A float32 position component in metres, finite and within MAX_COORD."""
        value = self.f32(offset, what)
        if not (math.isfinite(value) and abs(value) <= MAX_COORD):
            raise self.fail(offset, f"{what} is {value!r} m")
        return value

    def angle(self, offset: int, what: str) -> float:
        value = self.f32(offset, what)
        if not math.isfinite(value):
            raise self.fail(offset, f"{what} is {value!r}")
        return value


def sniff(data: bytes) -> bool:
    """True if `data` looks like a Viomi/3irobotix map: a zlib stream whose first inflated bytes
    hold the section bit-field (image and robot status set) and the map id again where the
    second section begins."""
    try:
        head = bytes(data[:4096])
        if len(head) < 2 or head[0] & 0x0F != 8 or (head[0] << 8 | head[1]) % 31:
            return False
        start = zlib.decompressobj().decompress(head, STATUS_BYTES + 16)
    except (zlib.error, TypeError, ValueError):
        return False
    if len(start) < STATUS_BYTES + 4:
        return False
    flags = struct.unpack_from("<H", start)[0]
    map_id = start[4:8]
    return flags & (IMAGE | ROBOT_STATUS) == IMAGE | ROBOT_STATUS and (
        start[STATUS_BYTES : STATUS_BYTES + 4] == map_id
    )


def load(path: str | Path) -> MapDocument:
    """A Viomi map file (zlib, as the robot uploads it)."""
    path = Path(path)
    if not path.is_file():
        raise MapNotFound(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_INFLATED:
        raise CorruptMap(f"{path}: {size:,} bytes is far larger than any Viomi map")
    return parse(path.read_bytes(), str(path))


def _inflate(data: bytes, source: str) -> bytes:
    if not data:
        raise CorruptMap(f"{source}: empty input")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise CorruptMap(f"{source}: not a valid zlib stream: {exc}") from None
    if len(out) > MAX_INFLATED:
        raise CorruptMap(f"{source}: inflates to more than {MAX_INFLATED:,} bytes")
    if not inflater.eof:
        raise CorruptMap(f"{source}: zlib stream truncated after {len(out):,} inflated bytes")
    return out


def _present(flags: int) -> list[int]:
    """The section flags set in the u16 bit-field, lowest first (the order of the sections)."""
    return [1 << bit for bit in range(16) if flags >> bit & 1]


def _index_by_map_id(buf: bytes, kinds: list[int]) -> dict[int, tuple[int, int]]:
    """Sections of a saved map: the k-th occurrence of the map id starts the k-th section,
    which runs to the next occurrence (or the end)."""
    map_id = buf[4:8]
    starts: list[int] = []
    pos = 0
    while len(starts) <= len(kinds):  # one past the last section ends it
        found = buf.find(map_id, pos)
        if found < 0:
            break
        starts.append(found)
        pos = found + 4
    ends = starts[1:] + [len(buf)]
    return {kind: (s, e) for kind, s, e in zip(kinds, starts, ends, strict=False)}


def _index_by_length(buf: bytes, kinds: list[int], source: str) -> dict[int, tuple[int, int]]:
    """Sections of a temporary map (id 0): status, image and path at their known lengths."""
    sections: dict[int, tuple[int, int]] = {}
    pos = 0
    for kind in kinds:
        if kind == ROBOT_STATUS:
            length = STATUS_BYTES
        elif kind in (IMAGE, PATH):
            head = _Section(buf, kind, min(pos, len(buf)), len(buf), source)
            if kind == IMAGE:
                length = IMAGE_HEADER + head.u32(12, "height") * head.u32(16, "width")
            else:
                length = 12 + 9 * head.u32(8, "point count")
        else:
            continue  # the other sections of a temporary map have no known length
        if kind != IMAGE or length > IMAGE_HEADER:
            sections[kind] = (pos, min(pos + length, len(buf)))
        pos += length
    return sections


def _image(sec: _Section) -> dict:
    """Decode the image section: pixels (H, W) uint8 with row 0 = lowest y, and its header."""
    height, width = sec.u32(12, "height"), sec.u32(16, "width")
    names = ("min_x", "min_y", "max_x", "max_y", "resolution")
    header = {name: sec.f32(20 + 4 * k, name) for k, name in enumerate(names)}
    pixels = len(sec) - IMAGE_HEADER
    if height * width != pixels:
        raise sec.fail(12, f"{height} x {width} pixels announced, {pixels} bytes follow")
    if height == 0 or width == 0:
        raise sec.fail(12, f"empty image ({height} x {width})")
    if pixels > MAX_CELLS:
        raise sec.fail(
            12, f"{height} x {width} pixels is more than any map holds ({MAX_CELLS:,} at most)"
        )
    for k, name in enumerate(names[:4]):
        if not (math.isfinite(header[name]) and abs(header[name]) <= MAX_COORD):
            raise sec.fail(20 + 4 * k, f"image bound {name} is {header[name]!r} m")
    res = header["resolution"]
    if not (math.isfinite(res) and RESOLUTION_RANGE[0] <= res <= RESOLUTION_RANGE[1]):
        raise sec.fail(36, f"resolution {res!r} m per pixel")
    image = np.frombuffer(sec.buf, np.uint8, pixels, sec.start + IMAGE_HEADER)
    return dict(header, pixels=image.reshape(height, width), width=width, height=height)


def _check_coords(
    sec: _Section, xy: np.ndarray, first: int, step: int, what: str, index0: int = 0
) -> None:
    """Raise on the first (x, y) row of `xy` that is not finite or lies past MAX_COORD;
    row k (item index0 + k) was read at section offset first + k * step."""
    ok = np.isfinite(xy) & (np.abs(xy) <= MAX_COORD)
    bad = ~ok.all(axis=tuple(range(1, xy.ndim)))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise sec.fail(first + step * k, f"{what} {index0 + k} is {xy[k].tolist()} m")


_PATH_POINT = np.dtype([("mode", "u1"), ("x", "<f4"), ("y", "<f4")])


def _path(sec: _Section) -> tuple[np.ndarray, np.ndarray, int]:
    """((N, 2) float64 path points in metres (exact float32 values), the last two points of
    the whole path (fewer for a shorter one), the number of points past MAX_PATH_POINTS)."""
    count = sec.u32(8, "point count")
    sec.need(12, 9 * count, f"{count} path points")
    kept = min(count, MAX_PATH_POINTS)
    xy = _path_points(sec, 0, kept)
    end = xy[-2:] if kept == count else _path_points(sec, max(count - 2, 0), min(count, 2))
    return xy, end, count - kept


def _path_points(sec: _Section, first: int, n: int) -> np.ndarray:
    """(n, 2) float64 path points `first` .. first + n - 1, checked."""
    at = 12 + 9 * first
    points = np.frombuffer(sec.buf, _PATH_POINT, n, sec.start + at)
    xy = np.empty((n, 2), np.float64)
    with np.errstate(invalid="ignore"):  # a signalling NaN warns on the cast
        xy[:, 0], xy[:, 1] = points["x"], points["y"]
    _check_coords(sec, xy, at, 9, "path point", first)
    return xy


def _pose(sec: _Section, offset: int) -> tuple[float, float, float] | None:
    """(x m, y m, angle rad) at `offset`, or None for the firmware's 'unknown' marker."""
    x, y = sec.coord(offset, "x"), sec.coord(offset + 4, "y")
    angle = sec.angle(offset + 8, "angle")
    if x == UNKNOWN_POSITION or y == UNKNOWN_POSITION:
        return None
    return x, y, angle


def _structures(sec: _Section, walls_allowed: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(virtual walls as (2, 2), polygons as (4, 2)) in metres."""
    count = sec.u32(8, "entry count")
    if not count:
        return [], []
    if count > MAX_ENTRIES:
        raise sec.fail(8, f"{count:,} entries, more than {MAX_ENTRIES:,}")
    # the last entry's 48 trailing bytes may be missing (Valetudo never reads them)
    sec.need(12, ENTRY_BYTES * (count - 1) + 44, f"{count} entries")
    raw = np.ndarray((count, 4, 2), "<f4", sec.buf, sec.start + 24, (ENTRY_BYTES, 8, 4))
    with np.errstate(invalid="ignore"):
        corners = raw.astype(np.float64)
    _check_coords(sec, corners, 24, ENTRY_BYTES, "entry")
    p0, p1, p2, p3 = (corners[:, c] for c in range(4))
    is_wall = (p0 == p1).all(1) & (p2 == p3).all(1) & walls_allowed
    walls = [c[[0, 2]] for c in corners[is_wall]]
    return walls, list(corners[~is_wall])


def _room_names(sec: _Section) -> dict[int, str]:
    """{room id: name}; names are UTF-8 (bad bytes replaced)."""
    offset = 4
    offset += 1 + sec.u8(offset, "map name length") + 4  # the map name and a u32 we ignore
    count = sec.u32(offset, "room count")
    if count > 256:  # ids are one byte; a larger count is a damaged field, not a house
        raise sec.fail(offset, f"room count {count}")
    offset += 4
    names: dict[int, str] = {}
    for k in range(count):
        room_id = sec.u8(offset, f"room {k} id")
        length = sec.u8(offset + 1, f"room {k} name length")
        sec.need(offset + 2, length, f"room {k} name")
        raw = sec.buf[sec.start + offset + 2 : sec.start + offset + 2 + length]
        names[room_id] = raw.decode("utf-8", errors="replace")
        offset += 2 + length + 1 + 8  # an unknown byte, then the label position
    return names


def _decimal(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.05, not 0.0500000007)."""
    return float(str(np.float32(value)))


def _cells(image: dict, temporary: bool, source: str):
    """(states, resolution m, origin m, rooms raster or None, ids of rooms being cleaned) of the
    image cropped to its known pixels; grid row 0 = image row 0 = lowest y."""
    pixels = image["pixels"]
    known = pixels != 0
    rows, cols = np.flatnonzero(known.any(1)), np.flatnonzero(known.any(0))
    if len(rows) == 0:
        raise CorruptMap(f"{source}: image has no floor or wall pixels (empty map)")
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = pixels[r0:r1, c0:c1]
    in_room = (crop > 1) & (crop != 255)
    states = np.full(crop.shape, UNKNOWN, np.int8)
    states[crop == 255] = OCCUPIED
    states[(crop == 1) | in_room] = FREE
    res = _decimal(image["resolution"])
    # rounded to a nanometre so that -20 + 257 * 0.05 reads -7.15, not -7.149999999999999
    origin = (
        round(_decimal(image["min_x"]) + c0 * res, 9),
        round(_decimal(image["min_y"]) + r0 * res, 9),
    )
    if temporary or not in_room.any():  # a temporary map's rooms are plain floor
        return states, res, origin, None, set()
    ids = np.where(crop >= 60, crop - ACTIVE_OFFSET, crop)
    rooms = np.where(in_room, ids, 0).astype(np.uint8)
    active = set((crop[in_room & (crop >= 60)] - ACTIVE_OFFSET).tolist())
    return states, res, origin, rooms, active


def parse(data: bytes, source: str = "<bytes>") -> MapDocument:
    """A MapDocument from the bytes of a Viomi/3irobotix map file (zlib, as uploaded).

    Raises CorruptMap (naming `source` and the inflated byte offset) on anything it cannot
    decode. See the module docstring for the layout and the frame.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptMap(f"{source}: expected bytes, got {type(data).__name__}")
    buf = _inflate(bytes(data), source)
    if len(buf) < 8:
        raise CorruptMap(f"{source}: inflated offset 0: {len(buf)} bytes, a header needs 8")
    flags = struct.unpack_from("<H", buf)[0]
    if not flags & IMAGE:
        raise CorruptMap(f"{source}: inflated offset 0: flags 0x{flags:04x} list no image section")
    if not flags & ROBOT_STATUS:
        raise CorruptMap(
            f"{source}: inflated offset 0: flags 0x{flags:04x} lack the status section"
        )
    map_id = struct.unpack_from("<I", buf, 4)[0]
    kinds = _present(flags)
    temporary = map_id == 0
    if temporary:
        index = _index_by_length(buf, kinds, source)
    else:
        index = _index_by_map_id(buf, kinds)

    def section(kind: int) -> _Section | None:
        if kind not in index:
            return None
        return _Section(buf, kind, *index[kind], source)

    sec = section(IMAGE)
    if sec is None:
        raise CorruptMap(f"{source}: inflated offset 8: the image section is missing")
    image = _image(sec)
    states, resolution, origin, rooms, active = _cells(image, temporary, source)

    path, path_end, dropped = np.zeros((0, 2)), np.zeros((0, 2)), 0
    if (sec := section(PATH)) is not None:
        path, path_end, dropped = _path(sec)
    charger = _pose(sec, 4) if (sec := section(CHARGER)) is not None else None
    robot = _pose(sec, 9) if (sec := section(ROBOT)) is not None else None
    restrictions = Restrictions()
    if (sec := section(RESTRICTIONS)) is not None:
        restrictions.virtual_walls, restrictions.no_go = _structures(sec, walls_allowed=True)
    active_zones = []
    if (sec := section(ACTIVE_ZONES)) is not None:
        active_zones = _structures(sec, walls_allowed=False)[1]
    go_to = None
    if (sec := section(GO_TO_TARGET)) is not None:
        x, y = sec.coord(8, "x"), sec.coord(12, "y")
        if x != UNKNOWN_POSITION and y != UNKNOWN_POSITION:
            go_to = (x, y)
    names = _room_names(sec) if (sec := section(ROOM_NAMES)) is not None else {}

    # Valetudo's angles: the reported one, shown as (angle + 180) % 360; a temporary map has
    # no robot section, so the robot stands at the end of its path.
    vendor_angles: dict[str, list] = {}
    dock = None
    if charger is not None:
        dock = Pose(*charger)
        vendor_angles["charger_location"] = [dock.theta, charger[2]]
    robot_pose = None
    if robot is not None:
        robot_pose = Pose(*robot)
        vendor_angles["robot_position"] = [robot_pose.theta, robot[2]]
    elif temporary and len(path_end):
        dx, dy = (path_end[-1] - path_end[-2]) if len(path_end) >= 2 else (0.0, 0.0)
        robot_pose = Pose(float(path_end[-1, 0]), float(path_end[-1, 1]), math.atan2(dy, dx))
        vendor_angles["robot_position"] = [robot_pose.theta, None]

    room_ids = set() if rooms is None else set(np.unique(rooms).tolist()) - {0}
    room_ids |= {rid for rid in names if rid != 0}
    room_info = {rid: Room(rid, names.get(rid, ""), rid in active) for rid in sorted(room_ids)}
    meta = {
        "vendor": "viomi",
        "vendor_map_id": map_id,
        "temporary_map": temporary,
        "viomi_image": {k: image[k] for k in ("width", "height", "min_x", "min_y", "resolution")},
        "vendor_angles": vendor_angles,
    }
    if dropped:
        meta["path_points_dropped"] = dropped
    return MapDocument.from_cells(
        states,
        resolution,
        origin,
        rooms=rooms,
        room_info=room_info,
        restrictions=restrictions,
        dock=dock,
        robot=robot_pose,
        paths=[MapPath("path", path)] if len(path) else [],
        go_to_target=go_to,
        active_zones=active_zones,
        frame=VendorFrame("viomi", unit=1.0, origin=(0.0, 0.0)),
        meta=meta,
    )


def _js_mod(value: float, modulus: float) -> float | int:
    """JavaScript's % (the sign of the dividend); integral results as int, as JSON shows them."""
    out = math.fmod(value, modulus)
    return int(out) if out.is_integer() else out


def valetudo_view(doc: MapDocument) -> ValetudoView:
    """The canvas Valetudo draws a Viomi map on: 4000 x 4000 cm, 5 cm pixels, the image's own
    pixel grid; points at ceil((20 m + v) * 100) cm, y flipped."""
    img = {"width": 800, "height": 800, "min_x": -20.0, "min_y": -20.0, "resolution": 0.05}
    img.update(doc.meta.get("viomi_image", {}))
    res = _decimal(img["resolution"])
    pixel_size = int(js_round(img["resolution"] * 100))
    ox, oy = doc.grid.origin
    col0 = int(js_round((ox - _decimal(img["min_x"])) / res))
    row0 = int(js_round((oy - _decimal(img["min_y"])) / res))

    def to_cm(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        cm = np.ceil((VALETUDO_HALF_M + xy) * 100.0).astype(np.int64)
        cm[:, 1] = VALETUDO_EXTENT_CM - cm[:, 1]
        return cm

    path = next((p.xy for p in doc.paths if p.kind == "path" and len(p.xy) >= 2), None)
    path_angle = None
    if path is not None:
        (x1, y1), (x2, y2) = to_cm(path[-2:]).tolist()
        degrees = math.atan2(y2 - y1, x2 - x1) * 180 / math.pi
        path_angle = _js_mod(int(js_round(degrees)) + 90, 360)

    def angle(theta: float, kind: str) -> float | int | None:
        if kind == "robot_position" and path_angle is not None:
            return path_angle
        raw = theta  # within (-pi, pi] the reported angle is theta itself
        stored = doc.meta.get("vendor_angles", {}).get(kind)
        if stored is not None and stored[0] == theta:
            raw = stored[1]
            if raw is None:  # no angle reported: Valetudo shows 0
                return 0
        return _js_mod(raw + 180.0, 360.0)

    return ValetudoView(
        size=(img["height"] * pixel_size, img["width"] * pixel_size),
        pixel_size=pixel_size,
        x0=col0,
        y0=img["height"] - 1 - row0,
        to_cm=to_cm,
        angle=angle,
    )
