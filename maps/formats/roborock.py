"""Roborock "RRMap" files: the map blob Roborock firmware uploads (gzip) and keeps on the robot.

Layout (little-endian; research/vacuum_ecosystem.md sections 1.4 and 2.2): a 20-byte file header
(`"rr"`, header length u16, data length u32, version major/minor u16, map index u32, map sequence
u32), then a chain of blocks, each `type u16 | header length u16 | data length u32 | rest of the
header | data`. Positions are millimetres in a 51 200 x 51 200 mm frame with y up; the occupancy
image is one byte per 50 mm cell of a 1024 x 1024 grid, rows stored bottom-up.

What we read, and into what:

- 2 image -> the grid (cells on the vendor's 50 mm lattice, row 0 = lowest y) and the room raster
  (`value >> 3` on "gen3" firmware, whose image header is 28 bytes instead of 24);
- 1 charger, 8 robot -> `dock`, `robot` poses (the angle, when the firmware gives one, is degrees
  counter-clockwise from +x; without it the robot heading comes from the last path segment, as
  Valetudo does);
- 3 path, 5 predicted go-to path -> `paths`; 7 go-to target; 6 zones being cleaned ->
  `active_zones`;
- 9 no-go, 12 no-mop (4 corners each), 10 virtual walls -> `restrictions`;
- 11 segments being cleaned -> `Room.active`; 24 segment materials -> `Room.meta["material"]`;
- 15 obstacles seen by the camera -> `obstacles`; 1024 SHA-1 digest -> `meta["digest_ok"]`.

Other block types the firmware is known to write (4 go-to path, 13/14/16 old and ignored
obstacles, 17 carpet, 18 mop path, 19-23, 25-34) are skipped and listed by name in
`meta["skipped_blocks"]`; types nobody has documented are skipped and counted in
`meta["unknown_blocks"]` (their ids in `meta["unknown_block_types"]`).

Bounds on what a small gzip can make us build: more than MAX_INFLATED (32 MiB) inflated, or a
zone, wall, area or obstacle block counting more than MAX_ENTRIES (10 000) entries is CorruptMap
(the image is at most 1024 x 1024 cells by the format). The path blocks keep MAX_PATH_POINTS
(2 million) points together, block 3 first; the points left out are counted in
`meta["path_points_dropped"]` (the robot heading still comes from the last two points stored).

World frame: `VendorFrame("roborock", 0.001, (25600, 25600))`, so world metres are
(mm - 25600) / 1000: the centre of the vendor grid is our origin, near where the dock usually is.
`valetudo_view` draws a document on the canvas Valetudo uses for Roborock robots, so that
`maps.formats.valetudo.export` reproduces Valetudo's own output for the same file.
"""

from __future__ import annotations

import hashlib
import logging
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maps.errors import CorruptMap, MapNotFound
from maps.formats.valetudo import ValetudoView, compass_degrees, js_round, native_view
from maps.geometry import Pose
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

GZIP_MAGIC = b"\x1f\x8b"
MAGIC = b"rr"
MAX_INFLATED = 32 * 2**20  # bytes; a real RRMap is a few MB at most (two 1024x1024 rasters)
# What a small file may make us build (the image is at most 1024 x 1024 cells by the format).
MAX_PATH_POINTS = 2_000_000  # points kept of the path blocks together; the rest are counted
MAX_ENTRIES = 10_000  # zones, walls, areas or obstacles in one block (real maps: dozens)
FILE_HEADER = struct.Struct("<2sHIHHII")  # magic, header len, data len, major, minor, index, seq
BLOCK_HEADER = struct.Struct("<HHI")  # type, header length, data length

GRID_PX = 1024  # the vendor grid is 1024 x 1024 cells ...
PIXEL_MM = 50  # ... of 50 mm
FRAME_MM = GRID_PX * PIXEL_MM  # 51 200 mm
CENTRE_MM = FRAME_MM / 2  # vendor position of our world origin
FRAME = VendorFrame("roborock", unit=0.001, origin=(CENTRE_MM, CENTRE_MM))
CANVAS_CM = FRAME_MM // 10  # Valetudo's canvas for Roborock: 5120 x 5120 cm, 5 cm pixels
PIXEL_CM = PIXEL_MM // 10

BLOCK_NAMES = {
    1: "charger",
    2: "image",
    3: "path",
    4: "goto_path",
    5: "goto_predicted_path",
    6: "cleaned_zones",
    7: "goto_target",
    8: "robot_position",
    9: "no_go_areas",
    10: "virtual_walls",
    11: "cleaned_segments",
    12: "no_mop_areas",
    13: "obstacles_old",
    14: "ignored_obstacles_old",
    15: "obstacles",
    16: "ignored_obstacles",
    17: "carpet_map",
    18: "mop_path",
    19: "no_carpet_areas",
    20: "smart_zone_path_type",
    21: "smart_zones",
    22: "custom_carpet",
    23: "no_vac_areas",
    24: "segment_materials",
    25: "furniture",
    26: "dock_type",
    27: "enemies",
    28: "door_sill_no_go_areas",
    29: "stuck_points",
    30: "cliff_no_go_areas",
    31: "smart_door_sill",
    32: "material_directions",
    33: "date",
    34: "nonce",
    1024: "digest",
}
USED_BLOCKS = frozenset({1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15, 24, 1024})

# Camera obstacle classes, named as Valetudo labels them.
OBSTACLE_NAMES = {
    0: "Cable",
    1: "Feces",
    2: "Shoe",
    3: "Pedestal",
    4: "Pedestal",
    5: "Power Strip",
    9: "Bathroom Scale",
    10: "Fabric",
    18: "Obstacle",
    25: "Dustpan",
    26: "Furniture",
    27: "Furniture",
    34: "Fabric",
    42: "Obstacle",
    48: "Cable",
    49: "Cat",
    50: "Dog",
    51: "Fabric",
}
# Floor materials by the code of block 24, one byte per segment id (the codes Valetudo sends with
# set_segment_ground_material; a room with another code gets no material).
MATERIALS = {0: "generic", 3: "wood", 4: "tile"}


@dataclass(frozen=True, slots=True)
class _Block:
    type: int
    offset: int  # byte offset of the block in the (inflated) RRMap
    head: bytes  # the whole block header, the 8 common bytes included
    data: memoryview  # the payload


class _Reader:
    """Bounds-checked reads that fail as CorruptMap naming the source and the byte offset."""

    def __init__(self, source: str, inflated: bool) -> None:
        self.source = source
        self.where = "byte" if not inflated else "byte (of the inflated RRMap)"

    def fail(self, offset: int, reason: str) -> CorruptMap:
        return CorruptMap(f"{self.source}: {reason} at {self.where} {offset}")

    def head_u32(self, block: _Block, at: int, what: str) -> int:
        if len(block.head) < at + 4:
            raise self.fail(block.offset, f"{_name(block.type)} block header too short for {what}")
        return struct.unpack_from("<I", block.head, at)[0]

    def need(self, block: _Block, nbytes: int, what: str) -> None:
        if len(block.data) < nbytes:
            raise self.fail(
                block.offset + len(block.head),
                f"{_name(block.type)} block holds {len(block.data)} bytes, {what} needs {nbytes}",
            )


def _name(block_type: int) -> str:
    return BLOCK_NAMES.get(block_type, f"type-{block_type}")


# --- bytes -> RRMap ------------------------------------------------------------------------


def sniff(data: bytes) -> bool:
    """True if `data` looks like an RRMap: raw `"rr"`, or gzip whose content starts with it."""
    if data[:2] == MAGIC:
        return True
    if data[:2] != GZIP_MAGIC:
        return False
    try:
        head = zlib.decompressobj(wbits=31).decompress(data[:4096], len(MAGIC))
    except zlib.error:
        return False
    return head == MAGIC


def _inflate(data: bytes, source: str) -> bytes:
    """The gzip member inflated, refusing more than MAX_INFLATED bytes (gzip bombs)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise CorruptMap(f"{source}: gzip stream is damaged ({exc})") from exc
    if len(out) > MAX_INFLATED:
        raise CorruptMap(
            f"{source}: gzip inflates past {MAX_INFLATED // 2**20} MiB, far more than any RRMap"
        )
    if not inflater.eof:
        raise CorruptMap(
            f"{source}: gzip stream is truncated ({len(data)} bytes read, {len(out)} inflated)"
        )
    return out


def _blocks(rr: bytes, rd: _Reader) -> tuple[dict, list[_Block]]:
    """File header fields and the block chain, every length checked against the bytes."""
    if len(rr) < FILE_HEADER.size:
        raise rd.fail(len(rr), f"file ends inside the {FILE_HEADER.size}-byte RRMap header")
    magic, hlen, dlen, major, minor, index, seq = FILE_HEADER.unpack_from(rr)
    if magic != MAGIC:
        raise rd.fail(0, f"not an RRMap (magic {magic!r}, expected {MAGIC!r})")
    if not FILE_HEADER.size <= hlen <= len(rr):
        raise rd.fail(2, f"file header length {hlen} is not in {FILE_HEADER.size}..{len(rr)}")
    end = hlen + dlen
    if end > len(rr):
        raise rd.fail(
            len(rr), f"file is truncated: the header promises {end} bytes, there are {len(rr)}"
        )
    header = {
        "map_index": index,
        "map_sequence": seq,
        "version": (major, minor),
        "trailing_bytes": len(rr) - end,
    }
    blocks: list[_Block] = []
    view = memoryview(rr)
    at = hlen
    while at < end:
        if at + BLOCK_HEADER.size > end:
            raise rd.fail(at, f"data ends inside a block header ({end - at} bytes left)")
        btype, bh, bd = BLOCK_HEADER.unpack_from(rr, at)
        if bh < BLOCK_HEADER.size:
            raise rd.fail(at, f"{_name(btype)} block header length {bh} is below 8")
        if at + bh + bd > end:
            raise rd.fail(
                at,
                f"{_name(btype)} block of {bh} + {bd} bytes runs past the end of the data "
                f"({end - at} bytes left)",
            )
        blocks.append(_Block(btype, at, bytes(view[at : at + bh]), view[at + bh : at + bh + bd]))
        at += bh + bd
    return header, blocks


# --- block readers (vendor units: mm, degrees, cells) ---------------------------------------


def _position(block: _Block, rd: _Reader) -> tuple[int, int, int | None]:
    """x, y (mm) and the firmware angle (degrees, CCW from +x) when the block carries one."""
    rd.need(block, 8, "a position")
    x, y = struct.unpack_from("<II", block.data)
    angle = struct.unpack_from("<i", block.data, 8)[0] if len(block.data) >= 12 else None
    return x, y, angle


def _image(block: _Block, rd: _Reader) -> tuple[np.ndarray, np.ndarray | None, int, int, bool]:
    """States (H, W) int8, segment ids (H, W) uint8 or None, top and left (cells), gen3.

    Row 0 is the lowest y, as the firmware stores it.
    """
    if len(block.head) == 24:
        gen3, at = False, 8
    elif len(block.head) == 28:
        gen3, at = True, 12  # gen3 puts a segment count before the same four fields
    else:
        raise rd.fail(block.offset, f"image header of {len(block.head)} bytes (known: 24, 28)")
    top, left, height, width = struct.unpack_from("<iiii", block.head, at)
    # The vendor grid is 1024 x 1024 cells; anything else is damage, caught before allocating.
    if not (0 < height <= GRID_PX and 0 < width <= GRID_PX):
        raise rd.fail(block.offset + at + 8, f"image of {width} x {height} cells (max 1024)")
    if not (0 <= top <= GRID_PX - height and 0 <= left <= GRID_PX - width):
        raise rd.fail(
            block.offset + at,
            f"image at top {top}, left {left} ({width} x {height}) leaves the 1024-cell grid",
        )
    if len(block.data) != height * width:
        raise rd.fail(
            block.offset,
            f"image of {width} x {height} cells carries {len(block.data)} bytes",
        )
    raw = np.frombuffer(block.data, np.uint8).reshape(height, width)
    kind = raw & 7
    states = np.full(raw.shape, UNKNOWN, np.int8)
    states[kind == 1] = OCCUPIED
    floor = kind > 1
    states[floor] = FREE
    rooms = None
    if gen3:
        ids = np.where(floor, raw >> 3, 0).astype(np.uint8)
        rooms = ids if ids.any() else None
    return states, rooms, top, left, gen3


def _path(block: _Block, first: int = 0, limit: int = MAX_PATH_POINTS) -> tuple[np.ndarray, int]:
    """((N, 2) uint16 mm: up to `limit` x, y pairs of a path block from pair `first`, the number
    of pairs the block holds). The data rules the count (the header's count is not needed)."""
    total = len(block.data) // 4
    first = max(0, min(first, total))
    n = min(total - first, limit)
    pairs = np.frombuffer(block.data[first * 4 : (first + n) * 4], "<u2").reshape(n, 2)
    return pairs, total


def _structures(block: _Block, rd: _Reader, ncoords: int) -> list[np.ndarray]:
    """Zones, walls or areas: `count` (header) records of `ncoords` u16; list of (k, 2) mm."""
    count = rd.head_u32(block, 8, "the structure count")
    _check_count(block, rd, count)
    size = ncoords * 2
    rd.need(block, count * size, f"{count} records of {size} bytes")
    flat = np.frombuffer(block.data[: count * size], "<u2").astype(np.int64)
    return list(flat.reshape(count, ncoords // 2, 2))


def _check_count(block: _Block, rd: _Reader, count: int) -> None:
    if count > MAX_ENTRIES:
        raise rd.fail(
            block.offset + 8,
            f"{_name(block.type)} block counts {count:,} entries, more than {MAX_ENTRIES:,}",
        )


def _segment_ids(block: _Block, rd: _Reader) -> set[int]:
    count = rd.head_u32(block, 8, "the segment count")
    rd.need(block, count, f"{count} segment ids")
    return set(block.data[:count].tobytes())


def _obstacles(block: _Block, rd: _Reader) -> list[Obstacle]:
    """Camera obstacles: x, y (mm), class, confidence (1/100 %), [+ a photo name]."""
    count = rd.head_u32(block, 8, "the obstacle count")
    if count == 0:
        return []
    _check_count(block, rd, count)
    size, rest = divmod(len(block.data), count)
    if size < 8 or rest:
        raise rd.fail(
            block.offset, f"{count} obstacles do not divide a {len(block.data)}-byte block"
        )
    out = []
    for k in range(count):
        at = k * size
        x, y, cls, conf = struct.unpack_from("<HHHH", block.data, at)
        label = f"{OBSTACLE_NAMES.get(cls, f'Unknown ID {cls}')} ({int(js_round(conf / 100))}%)"
        meta = {"vendor_class": cls, "confidence": conf / 10000}
        if size >= 28:  # newer firmware names the photo it took
            photo = block.data[at + 12 : at + 28].tobytes().split(b"\0", 1)[0]
            if photo:
                meta["photo"] = photo.decode("ascii", "replace")
        wx, wy = FRAME.to_world((x, y))
        out.append(Obstacle(float(wx), float(wy), label=label, source="vendor", meta=meta))
    return out


# --- RRMap -> MapDocument ------------------------------------------------------------------


def _room_info(rooms: np.ndarray, blocks: dict[int, _Block], rd: _Reader) -> dict[int, Room]:
    """A Room per segment id on the raster: active when block 11 lists it, material from 24."""
    active = _segment_ids(blocks[11], rd) if 11 in blocks else set()
    materials = bytes(blocks[24].data) if 24 in blocks else b""
    info = {}
    for rid in np.unique(rooms[rooms > 0]).tolist():
        code = materials[rid] if rid < len(materials) else None
        meta = {"material": MATERIALS[code]} if code in MATERIALS else {}
        info[rid] = Room(rid, active=rid in active, meta=meta)
    return info


def _path_heading(path_mm: np.ndarray) -> float | None:
    """Heading (rad) of the last path segment, computed as Valetudo does on its cm canvas."""
    if len(path_mm) < 2:
        return None
    (x0, y0), (x1, y1) = _valetudo_cm(path_mm[-2:])
    canvas_deg = int(js_round(math.degrees(math.atan2(y1 - y0, x1 - x0))))
    return math.radians(-canvas_deg)  # the canvas y axis points down


def _pose(x: int, y: int, theta: float) -> Pose:
    wx, wy = FRAME.to_world((x, y))
    return Pose(float(wx), float(wy), theta)


def parse(data: bytes, source: str = "<bytes>") -> MapDocument:
    """An RRMap (raw or gzip) as a MapDocument; CorruptMap (naming `source`) when it is bad."""
    data = bytes(data)
    if not data:
        raise CorruptMap(f"{source}: empty input, not an RRMap")
    inflated = data[:2] == GZIP_MAGIC
    rr = _inflate(data, source) if inflated else data
    rd = _Reader(source, inflated)
    header, chain = _blocks(rr, rd)

    blocks: dict[int, _Block] = {}  # the last block of a type wins, as in Valetudo
    skipped: dict[str, int] = {}
    unknown: list[int] = []
    for block in chain:
        if block.type in USED_BLOCKS:
            blocks[block.type] = block
        elif block.type in BLOCK_NAMES:
            skipped[BLOCK_NAMES[block.type]] = skipped.get(BLOCK_NAMES[block.type], 0) + 1
        else:
            unknown.append(block.type)
    if unknown:
        log.info("%s: skipped %d block(s) of unknown type %s", source, len(unknown), unknown)

    if 2 not in blocks:
        raise rd.fail(len(rr), "no occupancy image (block 2) in the RRMap")
    states, rooms, top, left, gen3 = _image(blocks[2], rd)
    origin = tuple(FRAME.to_world((left * PIXEL_MM, top * PIXEL_MM)).tolist())

    room_info = _room_info(rooms, blocks, rd) if rooms is not None else {}
    # Paths keep MAX_PATH_POINTS points of both blocks together, block 3 first.
    paths: list[MapPath] = []
    budget, dropped = MAX_PATH_POINTS, 0
    for btype, kind in ((3, "path"), (5, "predicted_path")):
        if btype in blocks:
            mm, total = _path(blocks[btype], limit=budget)
            budget, dropped = budget - len(mm), dropped + total - len(mm)
            if len(mm):
                paths.append(MapPath(kind, FRAME.to_world(mm)))
    path_end = _path(blocks[3], first=len(blocks[3].data) // 4 - 2)[0] if 3 in blocks else None

    meta = {
        "vendor": "roborock",
        "vendor_map_id": header["map_index"] & 0xFFFF,  # Valetudo reads a u16 there
        "map_index": header["map_index"],
        "map_sequence": header["map_sequence"],
        "format_version": "{}.{}".format(*header["version"]),
        "image_header": "gen3" if gen3 else "old",
        "unknown_blocks": len(unknown),
        "unknown_block_types": sorted(set(unknown)),
        "skipped_blocks": skipped,
    }
    if header["trailing_bytes"]:
        meta["trailing_bytes"] = header["trailing_bytes"]
    if dropped:
        meta["path_points_dropped"] = dropped
        log.warning(
            "%s: paths hold more than %d points; the last %d are left out",
            source,
            MAX_PATH_POINTS,
            dropped,
        )

    dock = robot = None
    if 1 in blocks:
        x, y, angle = _position(blocks[1], rd)
        dock = _pose(x, y, math.radians(angle) if angle is not None else 0.0)
    if 8 in blocks:
        x, y, angle = _position(blocks[8], rd)
        if angle is not None:
            theta, meta["robot_angle_source"] = math.radians(angle), "firmware"
        elif path_end is not None and len(path_end) >= 2:
            theta, meta["robot_angle_source"] = _path_heading(path_end), "path"
        else:
            theta, meta["robot_angle_source"] = 0.0, "none"
        robot = _pose(x, y, theta)

    go_to = None
    if 7 in blocks:
        rd.need(blocks[7], 4, "a go-to target")
        gx, gy = FRAME.to_world(struct.unpack_from("<HH", blocks[7].data)).tolist()
        go_to = (gx, gy)

    def shapes(btype: int, ncoords: int) -> list[np.ndarray]:
        """(k, 2) world polygons or segments of a structure block; [] when it is absent."""
        if btype not in blocks:
            return []
        return [FRAME.to_world(mm) for mm in _structures(blocks[btype], rd, ncoords)]

    restrictions = Restrictions(
        no_go=shapes(9, 8), virtual_walls=shapes(10, 4), no_mop=shapes(12, 8)
    )
    # Zones come as two corners; the polygon goes round them in Valetudo's order.
    zones = [
        np.array([(x0, y0), (x0, y1), (x1, y1), (x1, y0)]) for (x0, y0), (x1, y1) in shapes(6, 4)
    ]
    obstacles = _obstacles(blocks[15], rd) if 15 in blocks else []

    if 1024 in blocks:
        digest = blocks[1024]
        start = digest.offset + len(digest.head)
        meta["digest_ok"] = hashlib.sha1(rr[:start]).digest() == bytes(digest.data[:20])
        if not meta["digest_ok"]:
            log.warning("%s: RRMap SHA-1 digest does not match its content", source)

    return MapDocument.from_cells(
        states,
        PIXEL_MM * FRAME.unit,
        origin,
        rooms=rooms,
        room_info=room_info,
        restrictions=restrictions,
        obstacles=obstacles,
        dock=dock,
        robot=robot,
        paths=paths,
        go_to_target=go_to,
        active_zones=zones,
        frame=FRAME,
        meta=meta,
    )


def load(path: str | Path) -> MapDocument:
    """An RRMap file (raw or gzip); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MapNotFound(f"{path}: no such file")
    if path.stat().st_size > MAX_INFLATED:
        raise CorruptMap(f"{path.name}: {path.stat().st_size:,} bytes is larger than any RRMap")
    doc = parse(path.read_bytes(), path.name)
    doc.meta["source"] = path.name
    return doc


# --- Valetudo's view of a Roborock map -------------------------------------------------------


def _valetudo_cm(mm: np.ndarray) -> np.ndarray:
    """(N, 2) vendor mm -> Valetudo cm: x / 10 and (51200 - y) / 10, rounded like Math.round."""
    mm = np.asarray(mm, np.float64).reshape(-1, 2)
    return np.stack([js_round(mm[:, 0] / 10), js_round((FRAME_MM - mm[:, 1]) / 10)], 1)


def _valetudo_angle(theta: float, entity_type: str) -> int | None:
    # Valetudo gives the robot a heading and the charger none.
    return None if entity_type == "charger_location" else compass_degrees(theta)


def valetudo_view(doc: MapDocument) -> ValetudoView:
    """The 5120 x 5120 cm, 5 cm/pixel canvas Valetudo draws Roborock maps on.

    Cell (i, j) of a grid on the vendor's 50 mm lattice is canvas pixel (left + j, 1023 - top - i);
    points go back to whole vendor mm (vendor values are integers, so this undoes float noise),
    then through Valetudo's formulas. A grid moved off that lattice gets the native view.
    """
    frame = doc.frame
    res_mm = doc.grid.resolution / frame.unit
    corner = frame.to_vendor(doc.grid.origin) / PIXEL_MM
    cells = np.rint(corner)
    if abs(res_mm - PIXEL_MM) > 1e-6 or np.abs(corner - cells).max() > 1e-6:
        return native_view(doc)
    left, top = int(cells[0]), int(cells[1])

    def to_cm(xy: np.ndarray) -> np.ndarray:
        return _valetudo_cm(np.rint(frame.to_vendor(np.asarray(xy, np.float64).reshape(-1, 2))))

    return ValetudoView(
        size=(CANVAS_CM, CANVAS_CM),
        pixel_size=PIXEL_CM,
        x0=left,
        y0=GRID_PX - 1 - top,
        to_cm=to_cm,
        angle=_valetudo_angle,
    )
