"""Numba kernels of the maps package. Private: use them through maps.grid and maps.raster.

Every kernel has a slow NumPy/Python twin in tests/reference.py that the tests compare it with.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def integrate_rays(log_odds, start_ij, end_ij, is_hit, l_free, l_occ, l_min, l_max):
    """Fuse one scan into `log_odds` (H, W) float32, in place.

    Each ray is traced with Bresenham from `start_ij` (2,) to `end_ij[k]` (N, 2) int64 (row, col).
    Cells along a ray get `l_free`; the end cell of a ray with `is_hit[k]` gets `l_occ` (the end
    cell of a no-return ray is free). Every cell changes at most once per scan and a hit wins over
    free, so a cell near the sensor crossed by many beams is not cleared many times over. Values
    are clamped to [l_min, l_max]; cells outside the grid are skipped. Returns (n_free, n_occ),
    the numbers of cells updated.
    """
    h, w = log_odds.shape
    mark = np.zeros((h, w), dtype=np.uint8)  # 0 untouched, 1 free, 2 occupied
    n = end_ij.shape[0]
    n_occ = 0
    for k in range(n):
        if is_hit[k]:
            i = end_ij[k, 0]
            j = end_ij[k, 1]
            if 0 <= i < h and 0 <= j < w and mark[i, j] != 2:
                mark[i, j] = 2
                n_occ += 1
    i0 = start_ij[0]
    j0 = start_ij[1]
    bound = 0  # a ray visits max(|di|, |dj|) + 1 cells: the free list never outgrows this
    for k in range(n):
        bound += max(abs(end_ij[k, 0] - i0), abs(end_ij[k, 1] - j0)) + 1
    free_i = np.empty(bound, dtype=np.int64)
    free_j = np.empty(bound, dtype=np.int64)
    n_free = 0
    for k in range(n):
        i1 = end_ij[k, 0]
        j1 = end_ij[k, 1]
        di = abs(i1 - i0)
        dj = abs(j1 - j0)
        si = 1 if i1 > i0 else -1
        sj = 1 if j1 > j0 else -1
        err = dj - di
        i = i0
        j = j0
        last = is_hit[k]
        while True:
            at_end = i == i1 and j == j1
            if at_end and last:
                break
            if 0 <= i < h and 0 <= j < w and mark[i, j] == 0:
                mark[i, j] = 1
                free_i[n_free] = i
                free_j[n_free] = j
                n_free += 1
            if at_end:
                break
            e2 = 2 * err
            if e2 > -di:
                err -= di
                j += sj
            if e2 < dj:
                err += dj
                i += si
    for k in range(n_free):
        i = free_i[k]
        j = free_j[k]
        v = log_odds[i, j] + l_free
        log_odds[i, j] = min(max(v, l_min), l_max)
    for k in range(n):
        if is_hit[k]:
            i = end_ij[k, 0]
            j = end_ij[k, 1]
            if 0 <= i < h and 0 <= j < w and mark[i, j] == 2:
                mark[i, j] = 3  # applied
                v = log_odds[i, j] + l_occ
                log_odds[i, j] = min(max(v, l_min), l_max)
    return n_free, n_occ


@njit(cache=True, nogil=True)
def cast_rays(blocked, ox, oy, angles, max_range, resolution):
    """Distance from each beam origin to the first blocked cell, by exact grid traversal.

    `blocked` (H, W) bool, row i <-> y, column j <-> x, cell (0, 0) has its corner at (0, 0).
    Beam k starts at (`ox[k]`, `oy[k]`) metres and goes along world angle `angles[k]`.
    Returns (N,) float64 metres; `inf` when nothing blocks the beam within `max_range`, or when
    it leaves the grid first. A beam that starts inside a blocked cell returns 0.
    Amanatides & Woo, "A fast voxel traversal algorithm for ray tracing", Eurographics 1987.
    """
    h, w = blocked.shape
    n = angles.shape[0]
    out = np.empty(n, dtype=np.float64)
    for k in range(n):
        x = ox[k] / resolution
        y = oy[k] / resolution
        dx = np.cos(angles[k])
        dy = np.sin(angles[k])
        j = int(np.floor(x))
        i = int(np.floor(y))
        limit = max_range / resolution
        step_j = 1 if dx > 0 else -1
        step_i = 1 if dy > 0 else -1
        if dx != 0.0:
            next_x = j + 1.0 if dx > 0 else float(j)
            t_max_x = (next_x - x) / dx
            t_delta_x = abs(1.0 / dx)
        else:
            t_max_x = np.inf
            t_delta_x = np.inf
        if dy != 0.0:
            next_y = i + 1.0 if dy > 0 else float(i)
            t_max_y = (next_y - y) / dy
            t_delta_y = abs(1.0 / dy)
        else:
            t_max_y = np.inf
            t_delta_y = np.inf
        t = 0.0
        result = np.inf
        while t <= limit:
            if i < 0 or i >= h or j < 0 or j >= w:
                break
            if blocked[i, j]:
                result = t * resolution
                break
            if t_max_x < t_max_y:
                t = t_max_x
                t_max_x += t_delta_x
                j += step_j
            else:
                t = t_max_y
                t_max_y += t_delta_y
                i += step_i
        if result > max_range:
            result = np.inf
        out[k] = result
    return out
