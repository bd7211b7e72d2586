"""What changed between two versions of a map: cell states compared on the union of both extents.

Both documents must share a resolution and a cell lattice (origins a whole number of cells apart,
within 1e-6 m); cells are aligned by world position, and a cell outside one map counts as unknown
there. Each cell's state (unknown / free / occupied, `MapDocument.cell_states`) from A to B falls
into one kind of change:
- appeared:    free -> occupied (a new obstacle or wall)
- disappeared: occupied -> free
- explored:    unknown -> free or occupied
- lost:        free or occupied -> unknown
Room labels are compared too (cells whose label differs, 0 = no room).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from maps import render
from maps.errors import MapError
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument

KINDS = ("appeared", "disappeared", "explored", "lost")
NONE, APPEARED, DISAPPEARED, EXPLORED, LOST = 0, 1, 2, 3, 4
LATTICE_TOL = 1e-6  # m: how far the origins may sit off a common cell lattice
VENDOR_FRAMES = ("roborock", "dreame", "viomi")  # robots whose own frames we keep
MAX_CELLS = 1 << 26  # the union raster's size limit (two maps far apart would exceed it)
# BGR colours of the picture
KIND_COLOURS = {
    APPEARED: (0, 0, 230),  # red
    DISAPPEARED: (0, 170, 0),  # green
    EXPLORED: (230, 120, 0),  # blue
    LOST: (0, 190, 255),  # amber
}
GREY_UNKNOWN, GREY_FREE, GREY_OCCUPIED = 215, 248, 150  # the newer map, greyed


@dataclass(slots=True)
class MapDiff:
    """Change from map A to map B on their union raster (grid axes: row i <-> y up).

    `before`, `after`: (H, W) int8 UNKNOWN/FREE/OCCUPIED of A and B; `change`: (H, W) uint8 kind
    code (0 none, 1 appeared, 2 disappeared, 3 explored, 4 lost); `rooms_changed`: (H, W) bool,
    room label differs. `origin`: world xy (m) of the corner of union cell (0, 0).
    """

    resolution: float
    origin: tuple[float, float]
    before: np.ndarray
    after: np.ndarray
    change: np.ndarray
    rooms_changed: np.ndarray
    rooms_added: list[int]
    rooms_removed: list[int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.change.shape  # type: ignore[return-value]

    @property
    def counts(self) -> dict[str, int]:
        """Changed cells by kind."""
        per_code = np.bincount(self.change.ravel(), minlength=5)
        return {kind: int(per_code[code]) for code, kind in enumerate(KINDS, start=1)}

    @property
    def areas(self) -> dict[str, float]:
        """Changed area by kind, m2."""
        cell = self.resolution**2
        return {kind: n * cell for kind, n in self.counts.items()}

    @property
    def total_cells(self) -> int:
        return int(np.count_nonzero(self.change))

    @property
    def total_m2(self) -> float:
        return self.total_cells * self.resolution**2

    @property
    def room_label_cells(self) -> int:
        """Cells whose room label differs between A and B."""
        return int(np.count_nonzero(self.rooms_changed))

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """World (xmin, ymin, xmax, ymax), m, of the cells whose state or room label changed;
        None when nothing changed."""
        changed = (self.change != NONE) | self.rooms_changed
        if not changed.any():
            return None
        rows = np.flatnonzero(changed.any(axis=1))
        cols = np.flatnonzero(changed.any(axis=0))
        ox, oy = self.origin
        res = self.resolution
        return (
            ox + int(cols[0]) * res,
            oy + int(rows[0]) * res,
            ox + (int(cols[-1]) + 1) * res,
            oy + (int(rows[-1]) + 1) * res,
        )

    def as_dict(self) -> dict:
        """A flat JSON-ready report: `<kind>_cells` and `<kind>_m2` per kind, `changed_cells` and
        `changed_m2` in total, room label changes, `bbox_m` [xmin, ymin, xmax, ymax] or None."""
        h, w = self.shape
        bbox = self.bbox
        cell = self.resolution**2
        report: dict = {
            "resolution": self.resolution,
            "origin": [self.origin[0], self.origin[1]],
            "width": w,
            "height": h,
        }
        counts = self.counts
        report.update({f"{kind}_cells": counts[kind] for kind in KINDS})
        report.update({f"{kind}_m2": round(counts[kind] * cell, 6) for kind in KINDS})
        report.update(
            {
                "changed_cells": self.total_cells,
                "changed_m2": round(self.total_m2, 6),
                "room_label_cells": self.room_label_cells,
                "room_label_m2": round(self.room_label_cells * cell, 6),
                "rooms_added": self.rooms_added,
                "rooms_removed": self.rooms_removed,
                "bbox_m": None if bbox is None else [round(v, 6) for v in bbox],
            }
        )
        return report

    def picture(self, scale: int | None = None) -> render.Picture:
        """The newer map (B) in greys with appeared cells red, disappeared green, explored blue,
        lost amber, the changed area outlined, and a caption of the areas."""
        grey = np.full(self.shape, GREY_UNKNOWN, np.uint8)
        grey[self.after == FREE] = GREY_FREE
        grey[self.after == OCCUPIED] = GREY_OCCUPIED
        img = np.repeat(grey[..., None], 3, axis=2)
        for code, colour in KIND_COLOURS.items():
            img[self.change == code] = colour
        scale = render.auto_scale(self.shape) if scale is None else max(1, int(scale))
        pic = render.raster_picture(img, self.resolution, self.origin, scale)
        bbox = self.bbox
        if bbox is not None:  # outline the changed area, 3 px outside it
            x0, y0, x1, y1 = bbox
            (left, top), (right, bottom) = pic.to_pixels(np.array([[x0, y1], [x1, y0]]))
            corner0 = (int(round(left)) - 3, int(round(top)) - 3)
            corner1 = (int(round(right)) + 2, int(round(bottom)) + 2)
            cv2.rectangle(pic.image, corner0, corner1, (90, 90, 90), 1)
        a = self.areas
        pic.fit_caption(
            [
                (
                    f"appeared {a['appeared']:.2f} m2 (red), disappeared {a['disappeared']:.2f}"
                    f" m2 (green), explored {a['explored']:.2f} m2 (blue), lost"
                    f" {a['lost']:.2f} m2 (amber)",
                    render.TEXT,
                ),
                (
                    f"{self.total_cells} cells changed ({self.total_m2:.2f} m2), room labels"
                    f" changed on {self.room_label_cells} cells; {self.shape[1]} x"
                    f" {self.shape[0]} cells at {self.resolution * 100:.3g} cm",
                    render.TEXT,
                ),
            ]
        )
        return pic


def diff(a: MapDocument, b: MapDocument) -> MapDiff:
    """How map B differs from map A (A the older); see the module docstring.

    Raises MapError when the maps come from two robot families (their frames do not line up),
    when the resolutions differ, when the origins are not on one cell lattice,
    or when the union of the two extents would be unreasonably large.
    """
    robots = {a.frame.vendor, b.frame.vendor} & set(VENDOR_FRAMES)
    if len(robots) == 2:
        raise MapError(
            f"cannot compare a {a.frame.vendor} map with a {b.frame.vendor} map: each robot has"
            " its own frame, so their cells do not line up; diff two versions of one map"
        )
    res = a.grid.resolution
    if not math.isclose(res, b.grid.resolution, rel_tol=1e-9, abs_tol=1e-12):
        raise MapError(
            f"cannot compare maps of different resolution ({res} m vs {b.grid.resolution} m"
            " per cell); resample one first"
        )
    (ax, ay), (bx, by) = a.grid.origin, b.grid.origin
    kx, ky = round((bx - ax) / res), round((by - ay) / res)
    off_x, off_y = bx - (ax + kx * res), by - (ay + ky * res)
    if abs(off_x) > LATTICE_TOL or abs(off_y) > LATTICE_TOL:
        raise MapError(
            f"map origins are not on the same cell lattice: ({bx}, {by}) is ({off_x:.3g},"
            f" {off_y:.3g}) m off the {res} m cells of ({ax}, {ay})"
        )
    ha, wa = a.grid.shape
    hb, wb = b.grid.shape
    x0, y0 = min(0, kx), min(0, ky)
    x1, y1 = max(wa, kx + wb), max(ha, ky + hb)
    h, w = y1 - y0, x1 - x0
    if h * w > MAX_CELLS:
        raise MapError(f"the two maps lie too far apart to compare: their union is {w} x {h} cells")
    # a's cells sit at (-y0, -x0) in the union, b's at (ky - y0, kx - x0)
    place_a = (slice(-y0, -y0 + ha), slice(-x0, -x0 + wa))
    place_b = (slice(ky - y0, ky - y0 + hb), slice(kx - x0, kx - x0 + wb))
    before = np.full((h, w), UNKNOWN, np.int8)
    after = np.full((h, w), UNKNOWN, np.int8)
    before[place_a] = a.cell_states()
    after[place_b] = b.cell_states()

    change = np.zeros((h, w), np.uint8)
    change[(before == FREE) & (after == OCCUPIED)] = APPEARED
    change[(before == OCCUPIED) & (after == FREE)] = DISAPPEARED
    change[(before == UNKNOWN) & (after != UNKNOWN)] = EXPLORED
    change[(before != UNKNOWN) & (after == UNKNOWN)] = LOST

    rooms_a = np.zeros((h, w), np.uint8)
    rooms_b = np.zeros((h, w), np.uint8)
    if a.rooms is not None:
        rooms_a[place_a] = a.rooms
    if b.rooms is not None:
        rooms_b[place_b] = b.rooms
    ids_a = set(np.unique(rooms_a).tolist()) - {0}
    ids_b = set(np.unique(rooms_b).tolist()) - {0}
    return MapDiff(
        resolution=res,
        origin=(ax + x0 * res, ay + y0 * res),
        before=before,
        after=after,
        change=change,
        rooms_changed=rooms_a != rooms_b,
        rooms_added=sorted(ids_b - ids_a),
        rooms_removed=sorted(ids_a - ids_b),
    )
