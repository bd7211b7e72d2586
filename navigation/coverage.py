"""Floor coverage: which floor a robot can reach, and how much of it a driven path cleaned.

Rasters follow maps.grid: row i <-> y, column j <-> x, `origin` = world xy of cell (0, 0)'s
corner. Lengths in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from maps.geometry import Pose


@dataclass(frozen=True, slots=True)
class CoverageConfig:
    """What counts as cleaned: a brush `clean_width` wide under a round robot of `robot_radius`."""

    clean_width: float = 0.25  # m, the main brush / suction inlet
    robot_radius: float = 0.17  # m


def reachable_floor(
    free: np.ndarray,
    resolution: float,
    origin: tuple[float, float],
    start: Pose,
    config: CoverageConfig | None = None,
) -> np.ndarray:
    """(H, W) bool: the floor a robot starting at `start` can put its brush over.

    The robot centre can stand where the nearest non-free cell is at least `robot_radius` away
    (counted to the cell's edge); of those places, only the region connected to `start` counts
    (4-connected: two cells that touch only at a corner leave no gap a round body can pass).
    The floor is that region widened by half the cleaning width, within the free cells. This is
    the denominator of the coverage ratio: a perfect coverage path reaches 100 % of it.
    """
    config = config or CoverageConfig()
    free_u8 = np.ascontiguousarray(free, dtype=np.uint8)
    # distance (cells) from each free cell centre to the nearest non-free cell centre
    dist = cv2.distanceTransform(free_u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    centre_ok = (dist - 0.5) * resolution >= config.robot_radius
    n, labels = cv2.connectedComponents(centre_ok.astype(np.uint8), connectivity=4)
    i = int(np.floor((start.y - origin[1]) / resolution))
    j = int(np.floor((start.x - origin[0]) / resolution))
    h, w = free.shape
    if not (0 <= i < h and 0 <= j < w) or labels[i, j] == 0:
        # the start touches an obstacle: take the component nearest to it
        ys, xs = np.nonzero(labels)
        if ys.size == 0:
            return np.zeros_like(free, dtype=bool)
        k = int(np.argmin((ys - i) ** 2 + (xs - j) ** 2))
        i, j = int(ys[k]), int(xs[k])
    region = labels == labels[i, j]
    half = config.clean_width / 2 / resolution
    # widen the centre region by the brush half-width: distance from the region <= half
    outside_region = (~region).astype(np.uint8)
    dist_to_region = cv2.distanceTransform(outside_region, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (dist_to_region <= half) & free.astype(bool)


def swept_area(
    trajectory: np.ndarray,
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
    width: float,
) -> np.ndarray:
    """(H, W) bool: the cells a brush `width` metres wide passed over along the (N, 3) path."""
    canvas = np.zeros(shape, dtype=np.uint8)
    traj = np.asarray(trajectory, dtype=np.float64).reshape(-1, 3)
    if traj.shape[0] == 0:
        return canvas.astype(bool)
    shift = 4  # sub-pixel drawing: coordinates in 1/16 of a cell
    scale = 1 << shift
    # cell (i, j) is centred at pixel (x = j, y = i); world x -> column, world y -> row
    cols = ((traj[:, 0] - origin[0]) / resolution - 0.5) * scale
    rows = ((traj[:, 1] - origin[1]) / resolution - 0.5) * scale
    pts = np.round(np.column_stack((cols, rows))).astype(np.int32)
    # the centre line, then every cell whose centre lies within half the width of it
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, 1, 1, cv2.LINE_8, shift)
    cv2.circle(canvas, (int(pts[0, 0]), int(pts[0, 1])), 0, 1, -1, cv2.LINE_8, shift)
    dist = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= width / 2 / resolution


def body_cells(
    points: np.ndarray,
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
    radius: float,
) -> np.ndarray:
    """(H, W) bool: the cells a round body of `radius` m centred at any of the (N, 2) points
    overlaps (the nearest point of the cell's square within `radius` of the centre)."""
    out = np.zeros(shape, dtype=bool)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0:
        return out
    r = math.ceil(radius / resolution) + 1
    off = np.arange(-r, r + 1)
    # the cell of each point, and a window of cells around it
    ci = np.floor((pts[:, 1] - origin[1]) / resolution).astype(np.int64)
    cj = np.floor((pts[:, 0] - origin[0]) / resolution).astype(np.int64)
    ii = ci[:, None, None] + off[None, :, None]
    jj = cj[:, None, None] + off[None, None, :]
    # distance from the centre to the nearest point of each cell's square
    dy = np.abs(origin[1] + (ii + 0.5) * resolution - pts[:, 1, None, None]) - resolution / 2
    dx = np.abs(origin[0] + (jj + 0.5) * resolution - pts[:, 0, None, None]) - resolution / 2
    near = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0)) < radius
    ii, jj = np.broadcast_arrays(ii, jj)
    inside = near & (ii >= 0) & (ii < shape[0]) & (jj >= 0) & (jj < shape[1])
    out[ii[inside], jj[inside]] = True
    return out


def coverage_ratio(cleaned: np.ndarray, floor: np.ndarray) -> float:
    """Share of the `floor` cells (bool raster) that are `cleaned`; 0 for an empty floor."""
    total = int(np.count_nonzero(floor))
    if total == 0:
        return 0.0
    return float(np.count_nonzero(cleaned & floor)) / total
