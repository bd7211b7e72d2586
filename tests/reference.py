"""Slow, obviously-correct twins of the numba kernels (compare with them in the tests)."""

from __future__ import annotations

import math

import numpy as np


def bresenham(i0: int, j0: int, i1: int, j1: int) -> list[tuple[int, int]]:
    """Cells of the Bresenham line from (i0, j0) to (i1, j1), both ends included."""
    cells = []
    di, dj = abs(i1 - i0), abs(j1 - j0)
    si = 1 if i1 > i0 else -1
    sj = 1 if j1 > j0 else -1
    err = dj - di
    i, j = i0, j0
    while True:
        cells.append((i, j))
        if (i, j) == (i1, j1):
            return cells
        e2 = 2 * err
        if e2 > -di:
            err -= di
            j += sj
        if e2 < dj:
            err += dj
            i += si


def integrate_rays(log_odds, start_ij, end_ij, is_hit, l_free, l_occ, l_min, l_max):
    """Twin of maps._kernels.integrate_rays, with Python sets."""
    h, w = log_odds.shape
    inside = lambda c: 0 <= c[0] < h and 0 <= c[1] < w  # noqa: E731
    occ = {tuple(int(v) for v in end_ij[k]) for k in range(len(end_ij)) if is_hit[k]}
    occ = {c for c in occ if inside(c)}
    free = set()
    for k in range(len(end_ij)):
        line = bresenham(int(start_ij[0]), int(start_ij[1]), int(end_ij[k, 0]), int(end_ij[k, 1]))
        if is_hit[k]:
            line = line[:-1]
        free.update(c for c in line if inside(c) and c not in occ)
    for i, j in free:
        log_odds[i, j] = np.float32(min(max(log_odds[i, j] + np.float32(l_free), l_min), l_max))
    for i, j in occ:
        log_odds[i, j] = np.float32(min(max(log_odds[i, j] + np.float32(l_occ), l_min), l_max))
    return len(free), len(occ)


def cast_rays(blocked, ox, oy, angles, max_range, resolution):
    """Twin of maps._kernels.cast_rays: list every crossing of a grid line along the ray, sort
    them, and test the cell at the middle of each piece in order (exact, unlike fixed steps)."""
    h, w = blocked.shape
    out = np.full(len(angles), np.inf)
    for k, a in enumerate(angles):
        x, y = ox[k] / resolution, oy[k] / resolution
        dx, dy = math.cos(a), math.sin(a)
        limit = max_range / resolution
        ts = [0.0]
        for start, d, size in ((x, dx, w), (y, dy, h)):
            if d != 0.0:
                ts += [(line - start) / d for line in range(0, size + 1)]
        ts = sorted(t for t in ts if 0.0 <= t <= limit)
        ts.append(limit)
        for t0, t1 in zip(ts[:-1], ts[1:], strict=True):
            if t1 - t0 < 1e-12 and t0 != 0.0:
                continue
            mid = (t0 + t1) / 2 if t1 > t0 else t0
            i, j = math.floor(y + mid * dy), math.floor(x + mid * dx)
            if not (0 <= i < h and 0 <= j < w):
                break
            if blocked[i, j]:
                out[k] = t0 * resolution
                break
    return out
