"""Pictures of plans and maps: rasters in, an 8-bit BGR image out (row 0 at the top).

Inputs follow maps.grid (row i <-> y up), so rows are flipped here, at the edge, for the image.
"""

from __future__ import annotations

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


def draw_plan(
    walls: np.ndarray,
    outside: np.ndarray,
    invisible: np.ndarray | None = None,
    cleaned: np.ndarray | None = None,
    scale: int = 3,
) -> np.ndarray:
    """(H*scale, W*scale, 3) uint8 image of a plan: floor, walls, outside, optional layers."""
    h, w = walls.shape
    img = np.empty((h, w, 3), np.uint8)
    img[:] = FLOOR
    if cleaned is not None:
        img[cleaned] = CLEANED
    img[outside] = OUTSIDE
    img[walls] = WALL
    if invisible is not None:
        img[invisible] = INVISIBLE
    img = img[::-1]
    return cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)


def to_pixels(
    xy: np.ndarray,
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
    scale: int,
) -> np.ndarray:
    """(N, 2) world xy -> (N, 2) float pixel (x, y) in an image from draw_plan."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    px = (pts[:, 0] - origin[0]) / resolution * scale
    py = (shape[0] - (pts[:, 1] - origin[1]) / resolution) * scale
    return np.column_stack((px, py))


def draw_path(
    img: np.ndarray,
    xy: np.ndarray,
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
    scale: int,
    colour=PATH,
) -> None:
    """Draw a world-frame polyline onto `img` in place."""
    if len(xy) < 2:
        return
    px = np.round(to_pixels(xy, shape, resolution, origin, scale) * 16).astype(np.int32)
    cv2.polylines(img, [px.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA, 4)


def draw_markers(
    img: np.ndarray,
    xy: np.ndarray,
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
    scale: int,
    colour,
    marker=cv2.MARKER_TILTED_CROSS,
    size=9,
) -> None:
    """Draw a marker at each world point onto `img` in place."""
    for x, y in to_pixels(xy, shape, resolution, origin, scale):
        cv2.drawMarker(img, (int(round(x)), int(round(y))), colour, marker, size, 2)


def save_png(path: str | Path, img: np.ndarray) -> None:
    """Write an image as PNG; raises OSError naming the file when it cannot be written."""
    path = Path(path)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    path.write_bytes(buf.tobytes())


def draw_grid(grid: OccupancyGrid, scale: int = 2) -> np.ndarray:
    """(H*scale, W*scale, 3) uint8 picture of a grid: grey unknown, white free, dark hits."""
    prob = grid.probability()
    grey = np.full(prob.shape, 205, np.uint8)
    grey[prob < 0.4] = 255
    occupied = prob > 0.6
    grey[occupied] = np.clip(255 - (prob[occupied] * 255), 0, 120).astype(np.uint8)
    img = cv2.cvtColor(grey[::-1], cv2.COLOR_GRAY2BGR)
    h, w = prob.shape
    return cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
