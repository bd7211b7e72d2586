"""Pictures of plans and maps: rasters in, an 8-bit BGR image out (row 0 at the top).

Inputs follow maps.grid (row i <-> y up), so rows are flipped here, at the edge, for the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maps.grid import OccupancyGrid

# BGR colours
FLOOR = (255, 255, 255)
WALL = (40, 40, 40)
OUTSIDE = (205, 205, 205)
INVISIBLE = (60, 120, 230)  # orange-ish: obstacles only the bumper finds
CLEANED = (245, 215, 170)  # light blue
PATH = (170, 90, 20)
BUMP = (30, 30, 220)
BUMP_INVISIBLE = (0, 140, 255)
START = (40, 170, 40)
STAR_MARKER = cv2.MARKER_STAR
ZONE_ALPHA = 0.45  # opacity of a zone's fill


@dataclass(slots=True)
class Picture:
    """An image of a raster, scaled up, that world-frame drawings can be put on."""

    image: np.ndarray  # (H*scale, W*scale, 3) uint8 BGR, row 0 at the top
    resolution: float  # m per raster cell
    origin: tuple[float, float]  # world xy of the corner of raster cell (0, 0)
    scale: int  # image pixels per raster cell
    rows: int  # raster rows drawn (a caption band below them does not move the drawing)

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) world xy (m) -> (N, 2) float image pixel coordinates (x right, y down)."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        px = (pts[:, 0] - self.origin[0]) / self.resolution * self.scale
        py = self.rows * self.scale - (pts[:, 1] - self.origin[1]) / self.resolution * self.scale
        return np.column_stack((px, py))

    def path(self, xy: np.ndarray, colour=PATH) -> None:
        """Draw a world-frame polyline."""
        if len(xy) < 2:
            return
        px = np.round(self.to_pixels(xy) * 16).astype(np.int32)
        cv2.polylines(self.image, [px.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA, 4)

    def markers(self, xy: np.ndarray, colour, marker=cv2.MARKER_TILTED_CROSS, size=9) -> None:
        """Draw a marker at each world point."""
        for x, y in self.to_pixels(xy):
            cv2.drawMarker(self.image, (int(round(x)), int(round(y))), colour, marker, size, 2)

    def caption(self, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
        """Add a white band under the picture with one (text, colour) per line."""
        line_h = 18
        band = np.full((line_h * len(lines) + 8, self.image.shape[1], 3), 255, np.uint8)
        for k, (text, colour) in enumerate(lines):
            cv2.putText(
                band,
                text,
                (6, line_h * (k + 1)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.42,
                colour,
                1,
                cv2.LINE_AA,
            )
        self.image = np.vstack((self.image, band))

    def fit_caption(self, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
        """`caption`, first widening the picture with white on the right so no line is cut."""
        need = 12 + max(
            (cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)[0][0] for t, _ in lines),
            default=0,
        )
        h, w = self.image.shape[:2]
        if need > w:
            pad = np.full((h, need - w, 3), 255, np.uint8)
            self.image = np.hstack((self.image, pad))
        self.caption(lines)

    def _fixed(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) world xy -> (N, 1, 2) int32 pixel coordinates with 4 fraction bits (shift=4)."""
        return np.round(self.to_pixels(xy) * 16).astype(np.int32).reshape(-1, 1, 2)

    def zones(self, polygons: list[np.ndarray], colour, fill: bool = True, alpha=ZONE_ALPHA):
        """Draw world-frame (K, 2) polygons: a translucent fill (opacity `alpha`) and an outline."""
        polys = [self._fixed(p) for p in polygons if len(p) >= 3]
        if not polys:
            return
        if fill:
            overlay = self.image.copy()
            cv2.fillPoly(overlay, polys, colour, cv2.LINE_AA, 4)
            cv2.addWeighted(overlay, alpha, self.image, 1.0 - alpha, 0.0, dst=self.image)
        cv2.polylines(self.image, polys, True, colour, 2, cv2.LINE_AA, 4)

    def line(self, segment: np.ndarray, colour, thickness: int = 3) -> None:
        """Draw a world-frame (2, 2) segment (or any (N, 2) polyline) `thickness` px wide."""
        if len(segment) >= 2:
            cv2.polylines(self.image, [self._fixed(segment)], False, colour, thickness, 16, 4)

    def pose(self, pose, colour, radius: int = 6) -> None:
        """A filled disc of `radius` px at a world pose, ringed in white, and its heading line."""
        ((x, y),) = self.to_pixels(np.array([[pose.x, pose.y]]))
        c = (int(round(x)), int(round(y)))
        cv2.circle(self.image, c, radius + 1, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.circle(self.image, c, radius, colour, -1, cv2.LINE_AA)
        c_, s_ = np.cos(pose.theta), np.sin(pose.theta)
        tip = (int(round(x + 2.0 * radius * c_)), int(round(y - 2.0 * radius * s_)))
        rim = (int(round(x + radius * c_)), int(round(y - radius * s_)))
        cv2.line(self.image, c, tip, colour, 3, cv2.LINE_AA)
        cv2.line(self.image, c, rim, (255, 255, 255), 2, cv2.LINE_AA)

    def label(self, text: str, xy, colour=(30, 30, 30), size: float = 0.45) -> None:
        """Centre `text` on a world point, dark on a white halo so it reads on any colour."""
        ((x, y),) = self.to_pixels(np.asarray(xy, np.float64).reshape(1, 2))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, 1)
        org = (int(round(x - tw / 2)), int(round(y + th / 2)))
        for thick, col in ((3, (255, 255, 255)), (1, colour)):
            cv2.putText(self.image, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, col, thick, 16)

    def save(self, path: str | Path) -> None:
        """Write the picture as PNG; raises OSError naming the file when it cannot."""
        path = Path(path)
        ok, buf = cv2.imencode(".png", self.image)
        if not ok:
            raise OSError(f"could not encode PNG for {path}")
        path.write_bytes(buf.tobytes())


def _scaled(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img[::-1], (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)


def draw_plan(
    walls: np.ndarray,
    outside: np.ndarray,
    resolution: float,
    origin: tuple[float, float],
    invisible: np.ndarray | None = None,
    cleaned: np.ndarray | None = None,
    scale: int = 3,
) -> Picture:
    """A picture of a floor plan: floor, walls, outside, and the optional layers."""
    img = np.empty((*walls.shape, 3), np.uint8)
    img[:] = FLOOR
    if cleaned is not None:
        img[cleaned] = CLEANED
    img[outside] = OUTSIDE
    img[walls] = WALL
    if invisible is not None:
        img[invisible] = INVISIBLE
    return Picture(_scaled(img, scale), resolution, origin, scale, walls.shape[0])


def draw_grid(grid: OccupancyGrid, scale: int = 2) -> Picture:
    """A picture of an occupancy grid: grey unknown, white free, dark occupied."""
    prob = grid.probability()
    grey = np.full(prob.shape, 205, np.uint8)
    grey[prob < 0.4] = 255
    occupied = prob > 0.6
    grey[occupied] = np.clip(255 - (prob[occupied] * 255), 0, 120).astype(np.uint8)
    img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    return Picture(_scaled(img, scale), grid.resolution, grid.origin, scale, prob.shape[0])


# --------------------------------------------------------------------------------------------
# A whole MapDocument

UNKNOWN_GREY = (205, 205, 205)
FREE_WHITE = (255, 255, 255)
WALL_DARK = (40, 40, 40)
# Pale room colours (BGR), picked by room id; none is red or grey, so zones and walls stand out.
ROOM_PALETTE = (
    (186, 223, 255),  # peach
    (190, 250, 255),  # pale yellow
    (205, 250, 190),  # mint
    (255, 225, 190),  # baby blue
    (255, 200, 215),  # lavender
    (240, 245, 190),  # aqua
    (250, 210, 235),  # lilac
    (190, 250, 225),  # pale lime
    (200, 230, 240),  # sand
    (225, 235, 200),  # pale teal
    (245, 230, 210),  # ice
    (170, 215, 255),  # apricot
)
NO_GO = (0, 0, 230)  # red
NO_MOP = (255, 80, 0)  # blue
VIRTUAL_WALL = (0, 0, 200)
ACTIVE_ZONE = (0, 150, 0)
PREDICTED_PATH = (200, 160, 110)
GO_TO = (200, 0, 200)
DOCK = (40, 170, 40)
ROBOT = (160, 60, 20)
OBSTACLE_BUMPER = (0, 140, 255)  # orange: found by the bumper (or the cliff sensor)
OBSTACLE_VENDOR = (150, 30, 150)  # purple: reported by the robot's camera / vendor map
TEXT = (30, 30, 30)
DOCK_RADIUS = 0.12  # m, drawn size of the dock marker
ROBOT_RADIUS = 0.17  # m, a typical robot vacuum


def auto_scale(shape: tuple[int, int], target: int = 900, largest: int = 8) -> int:
    """Image pixels per cell so that the longer side is about `target` px: small maps are
    enlarged (at most `largest` times), big ones drawn 1:1."""
    return int(max(1, min(largest, target // max(1, max(shape)))))


def raster_picture(
    colours: np.ndarray, resolution: float, origin: tuple[float, float], scale: int
) -> Picture:
    """A Picture of an (H, W, 3) uint8 BGR raster in grid axes (row 0 = lowest y)."""
    return Picture(_scaled(colours, scale), resolution, origin, scale, colours.shape[0])


def room_colour(room_id: int) -> tuple[int, int, int]:
    """The palette colour of a room id (the palette cycles)."""
    return ROOM_PALETTE[(int(room_id) - 1) % len(ROOM_PALETTE)]


def draw_document(doc, scale: int | None = None, caption: bool = True) -> Picture:
    """A picture of a MapDocument: grid, rooms, zones, walls, paths, obstacles, dock, robot.

    Unknown grey, free white, walls dark, rooms in pale palette colours with their name or id at
    the room's centre; no-go zones red and no-mop zones blue (translucent fill and outline),
    virtual walls thick red lines, active zones green outlines, paths thin lines, obstacles as
    orange crosses (bumper, cliff) or purple diamonds (vendor), the dock a green disc, the robot
    a blue disc with a heading line. `scale` is image pixels per cell (None = auto_scale); with
    `caption` a band below gives size, resolution and areas.
    """
    from maps.model import FREE, OCCUPIED

    states = doc.cell_states()
    res = doc.grid.resolution
    scale = auto_scale(states.shape) if scale is None else max(1, int(scale))
    img = np.empty((*states.shape, 3), np.uint8)
    img[:] = UNKNOWN_GREY
    img[states == FREE] = FREE_WHITE
    if doc.rooms is not None:
        floor = (doc.rooms > 0) & (states != OCCUPIED)
        ids = doc.rooms[floor]
        palette = np.array(ROOM_PALETTE, np.uint8)
        img[floor] = palette[(ids.astype(np.int64) - 1) % len(ROOM_PALETTE)]
    img[states == OCCUPIED] = WALL_DARK
    pic = raster_picture(img, res, doc.grid.origin, scale)

    px_per_m = scale / res
    restrictions = doc.restrictions
    pic.zones(restrictions.no_mop, NO_MOP)
    pic.zones(restrictions.no_go, NO_GO)
    pic.zones(doc.active_zones, ACTIVE_ZONE, fill=False)
    for wall in restrictions.virtual_walls:
        pic.line(wall, VIRTUAL_WALL, max(3, int(round(0.04 * px_per_m))))
    for path in doc.paths:
        pic.path(path.xy, PATH if path.kind == "path" else PREDICTED_PATH)
    size = max(9, int(round(0.15 * px_per_m)))
    bumper = [(o.x, o.y) for o in doc.obstacles if o.source in ("bumper", "cliff")]
    vendor = [(o.x, o.y) for o in doc.obstacles if o.source not in ("bumper", "cliff")]
    if bumper:
        pic.markers(np.array(bumper), OBSTACLE_BUMPER, cv2.MARKER_TILTED_CROSS, size)
    if vendor:
        pic.markers(np.array(vendor), OBSTACLE_VENDOR, cv2.MARKER_DIAMOND, size)
    if doc.go_to_target is not None:
        pic.markers(np.array([doc.go_to_target]), GO_TO, cv2.MARKER_CROSS, size)
    if doc.dock is not None:
        pic.pose(doc.dock, DOCK, max(5, int(round(DOCK_RADIUS * px_per_m))))
    if doc.robot is not None:
        pic.pose(doc.robot, ROBOT, max(5, int(round(ROBOT_RADIUS * px_per_m))))
    if doc.rooms is not None:
        _room_labels(pic, doc)
    if caption:
        pic.fit_caption(_document_caption(doc))
    return pic


def _room_labels(pic: Picture, doc) -> None:
    """Each room's name (or #id) at its centroid, or at its cell nearest the centroid when the
    centroid falls outside the room (an L-shaped room)."""
    rooms = doc.rooms
    for rid in np.unique(rooms[rooms > 0]).tolist():
        ii, jj = np.nonzero(rooms == rid)
        ci, cj = ii.mean(), jj.mean()
        if rooms[int(ci), int(cj)] != rid:
            k = int(np.argmin((ii - ci) ** 2 + (jj - cj) ** 2))
            ci, cj = ii[k], jj[k]
        xy = doc.grid.cell_to_world(np.array([[ci, cj]]))
        info = doc.room_info.get(rid)
        name = info.name if info is not None and info.name else ""
        pic.label(f"{name} #{rid}" if name else f"#{rid}", xy[0])


def _document_caption(doc) -> list[tuple[str, tuple[int, int, int]]]:
    s = doc.summary()
    res = s["resolution"]
    lines = [
        (
            f"{s['width']} x {s['height']} cells, {res * 100:.3g} cm/cell "
            f"({s['width'] * res:.1f} x {s['height'] * res:.1f} m)",
            TEXT,
        ),
        (
            f"free {s['free_m2']:.1f} m2, walls {s['occupied_m2']:.1f} m2, "
            f"unknown {s['unknown_m2']:.1f} m2, "
            f"{len(s['rooms'])} rooms {sum(r['area_m2'] for r in s['rooms']):.1f} m2",
            TEXT,
        ),
    ]
    r = s["restrictions"]
    if any(r.values()) or doc.obstacles:
        bumps = sum(1 for o in doc.obstacles if o.source in ("bumper", "cliff"))
        lines.append(
            (
                f"no-go {r['no_go']} (red), no-mop {r['no_mop']} (blue), "
                f"virtual walls {r['virtual_walls']}, obstacles {len(doc.obstacles)} "
                f"({bumps} bumper)",
                TEXT,
            )
        )
    return lines
