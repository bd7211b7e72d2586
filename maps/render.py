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
