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


# ------------------------------------------------ twins of navigation._kernels (correlative)
def block_max_levels(values, depth, pad, fill):
    """Twin of navigation._kernels.block_max_levels: the max of each 2^k x 2^k block, read
    straight off a frame of `fill` wide enough for every block."""
    h, w = values.shape
    hp, wp = h + 2 * pad, w + 2 * pad
    big = np.full((hp + 2**depth, wp + 2**depth), fill, dtype=np.uint8)
    big[pad : pad + h, pad : pad + w] = values
    out = np.empty((depth, hp, wp), dtype=np.uint8)
    for k in range(depth):
        s = 2**k
        for i in range(hp):
            for j in range(wp):
                out[k, i, j] = big[i : i + s, j : j + s].max()
    return out


def rotated_cells(points, headings, tx, ty, resolution, shift):
    """Twin of navigation._kernels.rotated_cells, one point at a time."""
    out = np.empty((len(headings), len(points), 2), dtype=np.int32)
    for a, th in enumerate(headings):
        c, s = math.cos(th), math.sin(th)
        for p, (px, py) in enumerate(points):
            x = c * px - s * py + tx
            y = s * px + c * py + ty
            far = 2**30
            row = math.floor(min(max(y / resolution, -far), far)) + shift
            col = math.floor(min(max(x / resolution, -far), far)) + shift
            out[a, p] = min(max(row, -far), far), min(max(col, -far), far)
    return out


def window_scores(level, cells, bounds):
    """Twin of navigation._kernels.window_scores: every candidate summed on its own, with
    off-array indices clamped to the nearest edge cell."""
    hp, wp = level.shape
    ylo, yhi, xlo, xhi = (int(v) for v in bounds)
    out = np.zeros((cells.shape[0], yhi - ylo + 1, xhi - xlo + 1), dtype=np.int64)
    for a in range(cells.shape[0]):
        for y in range(ylo, yhi + 1):
            for x in range(xlo, xhi + 1):
                i = np.clip(cells[a, :, 0].astype(np.int64) + y, 0, hp - 1)
                j = np.clip(cells[a, :, 1].astype(np.int64) + x, 0, wp - 1)
                out[a, y - ylo, x - xlo] = int(level[i, j].astype(np.int64).sum())
    return out


def branch_and_bound(levels, width, flat, bounds, min_sum):
    """Twin of navigation._kernels.branch_and_bound without the bound: score every candidate on
    level 0 and keep the best by (sum, then smallest key). Returns (a, iy, ix, sum); a = -1 when
    no sum reaches min_sum. (The kernel also returns a count of scored candidates.)"""
    level = levels[0].reshape(-1, width)
    cells = np.stack((flat // width, flat % width), axis=-1)
    sums = window_scores(level, cells, bounds)
    centre = (sums.shape[0] - 1) // 2
    best = None
    for a in range(sums.shape[0]):
        for y in range(sums.shape[1]):
            for x in range(sums.shape[2]):
                total = int(sums[a, y, x])
                if total < min_sum:
                    continue
                iy, ix = y + int(bounds[0]), x + int(bounds[2])
                da = a - centre
                key = (abs(da), abs(iy) + abs(ix), int(da > 0), iy, ix)
                if best is None or (-total, key) < (-best[0], best[1]):
                    best = (total, key, a, iy, ix)
    if best is None:
        return -1, 0, 0, 0
    return best[2], best[3], best[4], best[0]


def _refine_terms(values, frame, points, x, prior, w2):
    """Twin of navigation._kernels._refine_terms, vectorised: (cost, mean, hess, grad)."""
    res, ox, oy, floor = frame
    h, w = values.shape
    c, s = np.cos(x[2]), np.sin(x[2])
    px, py = points[:, 0], points[:, 1]
    u = (c * px - s * py + x[0] - ox) / res - 0.5
    v = (s * px + c * py + x[1] - oy) / res - 0.5
    j0, i0 = np.floor(u).astype(int), np.floor(v).astype(int)
    inside = (j0 >= 0) & (j0 < w - 1) & (i0 >= 0) & (i0 < h - 1)
    jc, ic = np.where(inside, j0, 0), np.where(inside, i0, 0)
    fu, fv = u - j0, v - i0
    v00, v01 = values[ic, jc].astype(float), values[ic, jc + 1].astype(float)
    v10, v11 = values[ic + 1, jc].astype(float), values[ic + 1, jc + 1].astype(float)
    val = (1 - fv) * ((1 - fu) * v00 + fu * v01) + fv * ((1 - fu) * v10 + fu * v11)
    gx = ((1 - fv) * (v01 - v00) + fv * (v11 - v10)) / res
    gy = ((1 - fu) * (v10 - v00) + fu * (v11 - v01)) / res
    val, gx, gy = np.where(inside, val, floor), np.where(inside, gx, 0), np.where(inside, gy, 0)
    r = 1.0 - val
    jac = -np.column_stack((gx, gy, gx * (-s * px - c * py) + gy * (c * px - s * py)))
    wo2 = w2[0] / len(points)
    d = np.array([x[0] - prior[0], x[1] - prior[1], x[2] - prior[2]])
    prior_w = np.array([w2[1], w2[1], w2[2]])
    hess = wo2 * jac.T @ jac + np.diag(prior_w)
    grad = wo2 * jac.T @ r + prior_w * d
    cost = wo2 * float(r @ r) + float(prior_w @ (d * d))
    return cost, float(val.mean()), hess, grad


def refine_pose(values, frame, points, start, prior, w2, iterations):
    """Twin of navigation._kernels.refine_pose (the same Levenberg-Marquardt steps)."""
    x = np.array(start, dtype=float)
    cost, mean, hess, grad = _refine_terms(values, frame, points, x, prior, w2)
    lam = 1e-3
    for _ in range(iterations):
        improved = False
        step = np.zeros(3)
        for _attempt in range(6):
            damped = hess + lam * np.diag(np.diag(hess))
            if not abs(np.linalg.det(damped)) > 1e-300:
                lam *= 10
                continue
            step = -np.linalg.solve(damped, grad)
            step[2] = min(max(step[2], -0.2), 0.2)
            trial = _refine_terms(values, frame, points, x + step, prior, w2)
            if trial[0] < cost:
                x = x + step
                cost, mean, hess, grad = trial
                lam = max(lam / 10, 1e-7)
                improved = True
                break
            lam *= 10
        if not improved or (max(abs(step[0]), abs(step[1])) < 1e-5 and abs(step[2]) < 1e-6):
            break
    return np.array([x[0], x[1], x[2], mean])


def branch_and_bound_top_bins(
    levels, width, flat, bounds, allowed, min_sum, slack, k, bin_a, bin_y, bin_x
):
    """Twin of navigation._kernels.branch_and_bound_top_bins without the bound: score every
    allowed candidate (level 0 of `allowed`) on level 0, keep the best of each bin, drop the
    bins below max(min_sum, best sum - slack), rank the rest. Returns ((k, 4) rows
    (a, iy, ix, sum), n_found)."""
    level = levels[0].reshape(-1, width)
    cells = np.stack((flat // width, flat % width), axis=-1)
    sums = window_scores(level, cells, bounds)
    ylo, xlo = int(bounds[0]), int(bounds[2])
    centre = (sums.shape[0] - 1) // 2
    best = {}
    for a in range(sums.shape[0]):
        for y in range(sums.shape[1]):
            for x in range(sums.shape[2]):
                total = int(sums[a, y, x])
                if total < min_sum or not allowed[0][y * sums.shape[2] + x]:
                    continue
                iy, ix = y + ylo, x + xlo
                da = a - centre
                rank = (-total, (abs(da), abs(iy) + abs(ix), int(da > 0), iy, ix))
                b = (a // bin_a, y // bin_y, x // bin_x)
                if b not in best or rank < best[b][0]:
                    best[b] = (rank, (a, iy, ix, total))
    top = max((row[3] for _, row in best.values()), default=0)
    ranked = sorted(v for v in best.values() if v[1][3] >= top - slack)[: max(k, 0)]
    out = np.zeros((max(k, 0), 4), dtype=np.int64)
    for i, (_, row) in enumerate(ranked):
        out[i] = row
    return out, len(ranked)


# ------------------------------------------------------------------ grid planning
_STEPS8 = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def astar_grid(costs, straight, diagonal, start, goal):
    """Twin of navigation._kernels.astar_grid, plainly: g and parents in dicts, the open list a
    dict of stacks keyed by f (smallest f first, among equal f the entry pushed last), a cell
    pushed again when its g improves and skipped once closed. Neighbours in the kernel's order:
    the four sides, then the diagonals, each diagonal only with both cells beside it
    enterable. Returns (path (N,) int64, cost or -1, expansions)."""
    import heapq

    h_rows, w_cols = costs.shape
    enter = [int(v) >= 0 for v in straight]
    hs = min(int(straight[c]) for c in range(256) if enter[c])
    hd = min(int(diagonal[c]) for c in range(256) if enter[c])
    gi, gj = divmod(int(goal), w_cols)

    def h(i, j):
        di, dj = abs(i - gi), abs(j - gj)
        return hs * (max(di, dj) - min(di, dj)) + hd * min(di, dj)

    def ok(i, j):
        return 0 <= i < h_rows and 0 <= j < w_cols and enter[int(costs[i, j])]

    si, sj = divmod(int(start), w_cols)
    if not ok(si, sj) or not ok(gi, gj):
        return np.empty(0, np.int64), -1, 0
    g = {(si, sj): 0}
    parent = {(si, sj): None}
    closed = set()
    stacks = {h(si, sj): [(si, sj)]}
    keys = [h(si, sj)]
    expansions = 0
    while keys:
        f = keys[0]
        cell = stacks[f].pop()
        if not stacks[f]:
            del stacks[f]
            heapq.heappop(keys)
        if cell in closed:
            continue
        closed.add(cell)
        expansions += 1
        if cell == (gi, gj):
            path = []
            while cell is not None:
                path.append(cell[0] * w_cols + cell[1])
                cell = parent[cell]
            return np.array(path[::-1], np.int64), g[(gi, gj)], expansions
        i, j = cell
        for di, dj in _STEPS8:
            ni, nj = i + di, j + dj
            if not ok(ni, nj) or (ni, nj) in closed:
                continue
            if di and dj:
                if not (ok(i + di, j) and ok(i, j + dj)):
                    continue
                step = int(diagonal[int(costs[ni, nj])])
            else:
                step = int(straight[int(costs[ni, nj])])
            ng = g[cell] + step
            if ng < g.get((ni, nj), ng + 1):
                g[(ni, nj)] = ng
                parent[(ni, nj)] = cell
                fv = ng + h(ni, nj)
                if fv not in stacks:
                    stacks[fv] = []
                    heapq.heappush(keys, fv)
                stacks[fv].append((ni, nj))
    return np.empty(0, np.int64), -1, expansions


def segment_cells(i0, j0, i1, j1):
    """The cells whose closed squares the segment between the centres of (i0, j0) and (i1, j1)
    meets, by a separating-axis test in doubled integer coordinates (exact)."""
    x0, y0, x1, y1 = 2 * j0 + 1, 2 * i0 + 1, 2 * j1 + 1, 2 * i1 + 1
    cells = []
    for i in range(min(i0, i1), max(i0, i1) + 1):
        for j in range(min(j0, j1), max(j0, j1) + 1):
            # the cell's corners on one strict side of the segment's line: no contact
            sides = [
                (x1 - x0) * (cy - y0) - (y1 - y0) * (cx - x0)
                for cx in (2 * j, 2 * j + 2)
                for cy in (2 * i, 2 * i + 2)
            ]
            if all(s > 0 for s in sides) or all(s < 0 for s in sides):
                continue
            cells.append((i, j))
    return cells


def segment_clear(costs, rank, i0, j0, i1, j1, limit):
    """Twin of navigation._kernels.segment_clear: every touched cell inside the grid with
    rank <= limit."""
    h_rows, w_cols = costs.shape
    for i, j in segment_cells(i0, j0, i1, j1):
        if not (0 <= i < h_rows and 0 <= j < w_cols) or rank[costs[i, j]] > limit:
            return False
    return True


def shortcut_path(costs, rank, cells, limit):
    """Twin of navigation._kernels.shortcut_path: candidates are the path's turns and its end;
    from each kept cell extend over the candidates in order while the segment is clear at
    max(limit, worst rank of the path cells replaced), else keep the next cell."""
    n = len(cells)
    if n == 0:
        return np.empty(0, np.int64)
    steps = [tuple(np.subtract(cells[k + 1], cells[k])) for k in range(n - 1)]
    cand = [k for k in range(1, n - 1) if steps[k - 1] != steps[k]] + [n - 1]
    keep = [0]
    a = 0
    while a < n - 1:
        best = a + 1
        for k in (k for k in cand if k > a + 1):
            worst = max(int(rank[costs[cells[m][0], cells[m][1]]]) for m in range(a, k + 1))
            ci, cj = cells[a]
            if not segment_clear(costs, rank, ci, cj, cells[k][0], cells[k][1], max(limit, worst)):
                break
            best = k
        keep.append(best)
        a = best
    return np.array(keep, np.int64)
