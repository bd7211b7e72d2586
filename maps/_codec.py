"""How the store packs a MapDocument into its columns and back (private to maps.store).

Grid and rooms keep their exact bytes (zlib at a fast level, or raw when they do not compress);
everything else of the document is JSON in which arrays keep dtype and shape; a pose graph is a
bundle of plain arrays. Nothing here uses pickle, so a damaged or hostile store cannot run code.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from dataclasses import fields

import numpy as np

from maps.geometry import Pose
from maps.grid import GridConfig, OccupancyGrid
from maps.model import MapDocument, MapPath, Obstacle, Restrictions, Room, VendorFrame

ZLIB_LEVEL = 1

_RAW, _ZLIB = 0, 1
_PACK_HEAD = struct.Struct("<BQ")  # codec, unpacked length in bytes
_PROBES, _PROBE_BYTES = 8, 8192
_MAX_PART = 1 << 34  # bytes: refuse to unpack more than this, whatever a header claims


def pack(data) -> bytes:
    """Pack bytes: codec byte, length, then one zlib stream at a fast level, or the raw bytes.

    Noise-like data (a sample of evenly spaced 8 KiB pieces shrinks by less than 10 %) is stored
    raw without trying: zlib would spend 100+ ms on a 1000 x 1000 grid of it to save ~7 %.
    """
    view = memoryview(data).cast("B")
    n = view.nbytes
    squeeze = True
    if n > 4 * _PROBES * _PROBE_BYTES:
        step = (n - _PROBE_BYTES) // (_PROBES - 1)
        sample = sum(
            len(zlib.compress(view[k * step : k * step + _PROBE_BYTES], ZLIB_LEVEL))
            for k in range(_PROBES)
        )
        squeeze = sample < 0.9 * _PROBES * _PROBE_BYTES
    if squeeze:
        packed = zlib.compress(view, ZLIB_LEVEL)
        if len(packed) < n:
            return _PACK_HEAD.pack(_ZLIB, n) + packed
    return b"".join((_PACK_HEAD.pack(_RAW, n), view))


def unpack(blob, what: str, expected: int | None = None) -> bytes | memoryview:
    """The bytes `pack` packed; ValueError naming `what` when the blob does not hold them."""
    view = memoryview(blob).cast("B")
    if view.nbytes < _PACK_HEAD.size:
        raise ValueError(f"{what}: {view.nbytes} bytes, shorter than its header")
    codec, n = _PACK_HEAD.unpack_from(view)
    if (expected is not None and n != expected) or n > _MAX_PART:
        raise ValueError(f"{what}: holds {n} bytes, expected {expected}")
    body = view[_PACK_HEAD.size :]
    if codec == _RAW:
        if body.nbytes != n:
            raise ValueError(f"{what}: {body.nbytes} raw bytes, its header says {n}")
        return body
    if codec == _ZLIB:
        inflater = zlib.decompressobj()
        out = inflater.decompress(body, n)  # never more than the header's n bytes
        if len(out) != n or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise ValueError(f"{what}: the zlib stream does not hold exactly {n} bytes")
        return out
    raise ValueError(f"{what}: unknown codec {codec}")


def encode(doc: MapDocument, pose_graph: dict | None) -> dict:
    """The payload columns of a document: grid, rooms, document (JSON), pose_graph."""
    lo = np.ascontiguousarray(doc.grid.log_odds, dtype="<f4")
    if lo.ndim != 2:
        raise ValueError(f"log_odds must be 2-D, got shape {lo.shape}")
    rooms = None
    if doc.rooms is not None:
        raster = np.ascontiguousarray(doc.rooms, dtype=np.uint8)
        if raster.shape != lo.shape:
            raise ValueError(f"rooms raster {raster.shape} != grid {lo.shape}")
        rooms = pack(raster)
    text = json.dumps(_to_json(_document_parts(doc), "doc"), separators=(",", ":"))
    return {
        "grid": pack(lo),
        "rooms": rooms,
        "document": pack(text.encode()),
        "pose_graph": None if pose_graph is None else pack(bundle(pose_graph)),
    }


def _document_parts(doc: MapDocument) -> dict:
    """Everything of a document but the grid cells and the rooms raster, as plain values."""

    def pose(p: Pose | None):
        return None if p is None else (p.x, p.y, p.theta)

    cfg = doc.grid.config
    return {
        "grid_config": {f.name: getattr(cfg, f.name) for f in fields(cfg)},
        "room_info": [
            [key, {"id": r.id, "name": r.name, "active": r.active, "meta": r.meta}]
            for key, r in doc.room_info.items()
        ],
        "restrictions": {
            "no_go": list(doc.restrictions.no_go),
            "virtual_walls": list(doc.restrictions.virtual_walls),
            "no_mop": list(doc.restrictions.no_mop),
        },
        "obstacles": [
            {
                "x": o.x,
                "y": o.y,
                "label": o.label,
                "source": o.source,
                "count": o.count,
                "first_seen": o.first_seen,
                "last_seen": o.last_seen,
                "meta": o.meta,
            }
            for o in doc.obstacles
            if "memory_id" not in o.meta  # the store's own memory, appended again on load
        ],
        "dock": pose(doc.dock),
        "robot": pose(doc.robot),
        "paths": [{"kind": p.kind, "xy": np.asarray(p.xy)} for p in doc.paths],
        "go_to_target": doc.go_to_target,
        "active_zones": list(doc.active_zones),
        "frame": {"vendor": doc.frame.vendor, "unit": doc.frame.unit, "origin": doc.frame.origin},
        "meta": doc.meta,
    }


def decode(row: dict) -> MapDocument:
    """A MapDocument from a (verified) row; ValueError/KeyError/TypeError when it is not one."""
    h, w = row["height"], row["width"]
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        raise ValueError(f"bad grid shape ({h}, {w})")
    raw = unpack(row["grid"], "grid", expected=h * w * 4)
    lo = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(h, w)  # a writable copy
    rooms = None
    if row["rooms"] is not None:
        raster = unpack(row["rooms"], "rooms", expected=h * w)
        rooms = np.frombuffer(raster, dtype=np.uint8).reshape(h, w).copy()
    parts = _from_json(json.loads(bytes(unpack(row["document"], "document"))))
    known = {f.name for f in fields(GridConfig)}
    config = GridConfig(**{k: v for k, v in parts.get("grid_config", {}).items() if k in known})
    grid = OccupancyGrid(lo, row["resolution"], (row["origin_x"], row["origin_y"]), config)
    limits = parts.get("restrictions", {})
    frame = parts.get("frame", {})

    def pose(value) -> Pose | None:
        return None if value is None else Pose(*value)

    target = parts.get("go_to_target")
    return MapDocument(
        grid,
        rooms=rooms,
        room_info={key: Room(**room) for key, room in parts.get("room_info", [])},
        restrictions=Restrictions(
            no_go=list(limits.get("no_go", [])),
            virtual_walls=list(limits.get("virtual_walls", [])),
            no_mop=list(limits.get("no_mop", [])),
        ),
        obstacles=[Obstacle(**o) for o in parts.get("obstacles", [])],
        dock=pose(parts.get("dock")),
        robot=pose(parts.get("robot")),
        paths=[MapPath(p["kind"], p["xy"]) for p in parts.get("paths", [])],
        go_to_target=None if target is None else tuple(target),
        active_zones=list(parts.get("active_zones", [])),
        frame=VendorFrame(
            frame.get("vendor", "vacnav"),
            frame.get("unit", 1.0),
            tuple(frame.get("origin", (0.0, 0.0))),
        ),
        meta=parts.get("meta", {}),
    )


# JSON with tags for what JSON lacks: {"__ndarray__": [dtype, shape, base64]}, {"__tuple__": [..]},
# {"__bytes__": base64}, {"__items__": [[key, value], ...]} for dicts with non-str keys.
_TAGS = ("__ndarray__", "__tuple__", "__bytes__", "__items__")
_ARRAY_KINDS = "biufcSU"  # numbers, bools and fixed-size strings: nothing that needs pickle


def _to_json(value, where: str):
    """A JSON-able tree for `value`; TypeError naming `where` for what cannot be stored."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic):
        return _to_json(value.item(), where)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"cannot store {where}: a {value.dtype} array (use numbers or text)")
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"__ndarray__": [value.dtype.str, list(value.shape), data]}
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        plain = all(isinstance(k, str) for k in value) and not (
            len(value) == 1 and next(iter(value)) in _TAGS
        )
        if plain:
            return {k: _to_json(v, f"{where}.{k}") for k, v in value.items()}
        return {
            "__items__": [
                [_to_json(k, f"{where} key"), _to_json(v, f"{where}[{k!r}]")]
                for k, v in value.items()
            ]
        }
    raise TypeError(
        f"cannot store {where}: {type(value).__name__} (use JSON values, tuples, bytes or "
        f"numeric arrays)"
    )


def _from_json(value):
    """The inverse of `_to_json`."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, body),) = value.items()
        if tag == "__ndarray__":
            dtype, shape, data = body
            return _array(np.dtype(dtype), shape, base64.b64decode(data))
        if tag == "__tuple__":
            return tuple(_from_json(v) for v in body)
        if tag == "__bytes__":
            return base64.b64decode(body)
        if tag == "__items__":
            return {_from_json(k): _from_json(v) for k, v in body}
    return {k: _from_json(v) for k, v in value.items()}


def _array(dtype: np.dtype, shape, data) -> np.ndarray:
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"array of dtype {dtype} is not stored by vacnav")
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) * dtype.itemsize != len(data):
        raise ValueError(f"array {dtype} {shape} does not match its {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


_BUNDLE_MAGIC = b"VNAB\x01"  # a dict of arrays: magic, u32 header length, JSON header, bytes


def bundle(arrays: dict[str, np.ndarray]) -> bytes:
    if not isinstance(arrays, dict):
        raise TypeError(f"pose_graph must be a dict of arrays, got {type(arrays).__name__}")
    header, chunks = [], []
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"pose_graph keys must be str, got {name!r}")
        a = np.asarray(value)
        if a.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"pose_graph[{name!r}]: cannot store a {a.dtype} array")
        header.append([name, a.dtype.str, list(a.shape)])
        chunks.append(a.tobytes())
    head = json.dumps(header).encode()
    return b"".join((_BUNDLE_MAGIC, struct.pack("<I", len(head)), head, *chunks))


def unbundle(data) -> dict[str, np.ndarray]:
    view = memoryview(data)
    start = len(_BUNDLE_MAGIC) + 4
    if bytes(view[: len(_BUNDLE_MAGIC)]) != _BUNDLE_MAGIC or view.nbytes < start:
        raise ValueError("not an array bundle")
    (n,) = struct.unpack_from("<I", view, len(_BUNDLE_MAGIC))
    header = json.loads(bytes(view[start : start + n]))
    offset = start + n
    arrays = {}
    for name, dtype, shape in header:
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        if offset + size > view.nbytes:
            raise ValueError(f"array {name!r} runs past the end of the bundle")
        arrays[name] = _array(dtype, shape, view[offset : offset + size])
        offset += size
    if offset != view.nbytes:
        raise ValueError(f"{view.nbytes - offset} bytes left over after the arrays")
    return arrays
