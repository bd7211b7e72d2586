"""Queries on boolean obstacle rasters (floor plans, thresholded grids): ray casting.

Same axes as maps.grid: row i <-> y, column j <-> x, `origin` = world xy of cell (0, 0)'s corner.
"""

from __future__ import annotations

import numpy as np


def cast_rays(
    blocked: np.ndarray,
    resolution: float,
    origin: tuple[float, float],
    xs: np.ndarray,
    ys: np.ndarray,
    angles: np.ndarray,
    max_range: float,
) -> np.ndarray:
    """Range (m) from each beam origin (xs[k], ys[k]) along world angle angles[k] to the first
    blocked cell; `inf` when none lies within `max_range` or the beam leaves the raster.

    `blocked` is (H, W) bool; xs, ys, angles are (N,) arrays (metres, radians). Returns (N,)
    float64.
    """
    grid = np.ascontiguousarray(blocked, dtype=np.bool_)
    if grid.ndim != 2:
        raise ValueError(f"blocked must be a 2-D bool raster, got shape {grid.shape}")
    a = np.ascontiguousarray(angles, dtype=np.float64).ravel()
    x = np.broadcast_to(np.asarray(xs, dtype=np.float64) - origin[0], a.shape)
    y = np.broadcast_to(np.asarray(ys, dtype=np.float64) - origin[1], a.shape)
    from maps import _kernels  # numba: loaded on first use, not by map I/O

    return _kernels.cast_rays(
        grid, np.ascontiguousarray(x), np.ascontiguousarray(y), a, float(max_range), resolution
    )
