"""Valetudo-style JSON export (`ValetudoMap`, version 2) of a MapDocument.

Valetudo's conventions (research/vacuum_ecosystem.md section 1.3): integer centimetres, origin at
the top-left of a canvas, y growing downwards; layers hold pixel coordinates compressed per row as
`[x_start, y, count, ...]`; entity points are cm. A map imported from a robot is drawn on the
canvas Valetudo itself would use for that robot (its vendor module supplies the view), so the
export of a recovered map matches what Valetudo shows for the same file.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maps.model import FREE, OCCUPIED, MapDocument


@dataclass(frozen=True)
class ValetudoView:
    """Where a document's cells and points land on a Valetudo canvas.

    Grid cell (i, j) is canvas pixel (x0 + j, y0 - i). `to_cm` maps (N, 2) world metres to
    integer cm; `angle(theta, entity_type)` gives the metaData angle in degrees or None.
    `extra_pixels()`, when set, gives (H, W) bool masks of cells that Valetudo also draws in a
    second layer, keyed ("floor", 0), ("wall", 0) or ("segment", room id): some vendor parsers
    overlay two rasters (Dreame's live map and its saved map), so one pixel can sit in two layers.
    """

    size: tuple[int, int]  # canvas size, cm
    pixel_size: int  # cm per pixel
    x0: int
    y0: int
    to_cm: Callable[[np.ndarray], np.ndarray]
    angle: Callable[[float, str], float | None]
    extra_pixels: Callable[[], dict[tuple[str, int], np.ndarray]] | None = None


def js_round(x):
    """Math.round of JavaScript: halves go up (towards +inf), unlike Python's round."""
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)


def compass_degrees(theta: float, entity_type: str = "") -> int:
    """World heading (rad, CCW from +x, y up) as Valetudo's angle: degrees clockwise from up."""
    return int(js_round(math.degrees(-theta) + 90.0)) % 360


def native_view(doc: MapDocument) -> ValetudoView:
    """The canvas of a map we built: exactly the grid, 1 px per cell."""
    grid = doc.grid
    h, w = grid.shape
    res_cm = grid.resolution * 100.0
    ox, oy = grid.origin
    top = oy + h * grid.resolution

    def to_cm(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return np.stack([js_round((xy[:, 0] - ox) * 100.0), js_round((top - xy[:, 1]) * 100.0)], 1)

    return ValetudoView(
        size=(int(round(w * res_cm)), int(round(h * res_cm))),
        pixel_size=max(1, int(round(res_cm))),
        x0=0,
        y0=h - 1,
        to_cm=to_cm,
        angle=compass_degrees,
    )


def view_for(doc: MapDocument) -> ValetudoView:
    """The vendor's own view for an imported map, else the native one."""
    vendor = doc.frame.vendor
    if vendor in ("roborock", "dreame", "viomi"):
        module = importlib.import_module(f"maps.formats.{vendor}")
        return module.valetudo_view(doc)
    return native_view(doc)


def compress(xs: np.ndarray, ys: np.ndarray) -> list[int]:
    """Row-major run-length code `[x_start, y, count, ...]` of a pixel set."""
    if len(xs) == 0:
        return []
    order = np.lexsort((xs, ys))
    xs, ys = xs[order], ys[order]
    breaks = np.flatnonzero((np.diff(ys) != 0) | (np.diff(xs) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    counts = np.diff(np.concatenate([starts, [len(xs)]]))
    return np.stack([xs[starts], ys[starts], counts], 1).ravel().tolist()


def decompress(pixels: list[int]) -> set[tuple[int, int]]:
    """The pixel set of a compressed layer (for tests and for reading exports back)."""
    out: set[tuple[int, int]] = set()
    for k in range(0, len(pixels) - 2, 3):
        x, y, n = pixels[k : k + 3]
        out.update((x + d, y) for d in range(n))
    return out


def _dimensions(xs: np.ndarray, ys: np.ndarray) -> dict:
    def axis(v: np.ndarray) -> dict:
        lo, hi = int(v.min()), int(v.max())
        return {
            "min": lo,
            "max": hi,
            "mid": int(js_round((lo + hi) / 2)),
            "avg": int(js_round(v.sum() / len(v))),
        }

    return {"x": axis(xs), "y": axis(ys), "pixelCount": int(len(xs))}


def _layer(kind: str, mask: np.ndarray, view: ValetudoView, meta: dict) -> dict | None:
    ii, jj = np.nonzero(mask)
    if len(ii) == 0:
        return None
    xs = (view.x0 + jj).astype(np.int64)
    ys = (view.y0 - ii).astype(np.int64)
    meta = dict(meta, area=int(len(xs)) * view.pixel_size**2)
    return {
        "__class": "MapLayer",
        "metaData": meta,
        "type": kind,
        "pixels": [],
        "dimensions": _dimensions(xs, ys),
        "compressedPixels": compress(xs, ys),
    }


def _entity(cls: str, kind: str, points: np.ndarray, view: ValetudoView, meta=None) -> dict:
    cm = view.to_cm(np.asarray(points, np.float64).reshape(-1, 2))
    return {
        "__class": cls,
        "metaData": meta or {},
        "points": cm.ravel().tolist(),
        "type": kind,
    }


def export(doc: MapDocument) -> dict:
    """The document as a ValetudoMap dict."""
    view = view_for(doc)
    states = doc.cell_states()
    rooms = doc.rooms if doc.rooms is not None else np.zeros(states.shape, np.uint8)
    floor = states == FREE
    extra = view.extra_pixels() if view.extra_pixels is not None else {}

    def mask(kind: str, rid: int, own: np.ndarray) -> np.ndarray:
        return own | extra[kind, rid] if (kind, rid) in extra else own

    layers = [
        _layer("floor", mask("floor", 0, floor & (rooms == 0)), view, {}),
        _layer("wall", mask("wall", 0, states == OCCUPIED), view, {}),
    ]
    extra_ids = {rid for kind, rid in extra if kind == "segment"}
    for rid in sorted((set(np.unique(rooms[floor]).tolist()) | extra_ids) - {0}):
        room = doc.room_info.get(rid)
        meta = {"segmentId": str(rid), "active": bool(room and room.active)}
        if room is not None:
            if room.name:
                meta["name"] = room.name
            meta.update(room.meta)
        layers.append(_layer("segment", mask("segment", rid, floor & (rooms == rid)), view, meta))
    layers = [layer for layer in layers if layer is not None]

    entities = []
    for path in doc.paths:
        if len(path.xy):
            entities.append(_entity("PathMapEntity", path.kind, path.xy, view))
    for pose, kind in ((doc.dock, "charger_location"), (doc.robot, "robot_position")):
        if pose is not None:
            angle = view.angle(pose.theta, kind)
            meta = {} if angle is None else {"angle": angle}
            entities.append(_entity("PointMapEntity", kind, [pose.x, pose.y], view, meta))
    if doc.go_to_target is not None:
        entities.append(_entity("PointMapEntity", "go_to_target", doc.go_to_target, view))
    for ob in doc.obstacles:
        meta = {"label": ob.label} if ob.label else {}
        meta.update({k: v for k, v in ob.meta.items() if k in ("id", "image")})
        entities.append(_entity("PointMapEntity", "obstacle", [ob.x, ob.y], view, meta))
    r = doc.restrictions
    for polys, kind in ((r.no_go, "no_go_area"), (r.no_mop, "no_mop_area")):
        entities += [_entity("PolygonMapEntity", kind, p, view) for p in polys]
    entities += [_entity("LineMapEntity", "virtual_wall", w, view) for w in r.virtual_walls]
    entities += [_entity("PolygonMapEntity", "active_zone", z, view) for z in doc.active_zones]

    meta = {"version": 2, "totalLayerArea": sum(layer["metaData"]["area"] for layer in layers)}
    if "vendor_map_id" in doc.meta:
        meta["vendorMapId"] = doc.meta["vendor_map_id"]
    return {
        "__class": "ValetudoMap",
        "metaData": meta,
        "size": {"x": view.size[0], "y": view.size[1]},
        "pixelSize": view.pixel_size,
        "layers": layers,
        "entities": entities,
    }


def save(doc: MapDocument, path: str | Path) -> Path:
    """Write the export as JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(export(doc), separators=(",", ":")))
    return path
