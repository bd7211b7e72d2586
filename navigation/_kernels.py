"""Numba kernels of the navigation package. Private: use them through navigation.slam
(scan matching), navigation.localization (whole-map search) and navigation.planner (A*, line of
sight).

Every kernel has a slow NumPy/Python twin in tests/reference.py that the tests compare it with.

Correlative scan matching works on integer score grids (uint8, see correlative.SCALE) so that
candidate scores are exact integer sums: the branch and bound then returns bit for bit the answer
of the exhaustive search, ties included. A candidate is (a, iy, ix): rotation a of the scan, shifted
by iy rows and ix columns. Among equal sums the winner is the one with the smallest key
(|a - c|, |iy| + |ix|, a > c, iy, ix), c = (A - 1) // 2 the middle rotation: the candidate closest
to the initial pose, first in heading, then in cells.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_FAR = 1 << 30  # cells: rotated_cells clamps indices to +-_FAR so that they fit int32


@njit(cache=True, nogil=True)
def block_max_levels(values, depth, pad, fill):
    """Cartographer's PrecomputationGrid2D stack for a (H, W) uint8 score grid.

    Returns (depth, H + 2 pad, W + 2 pad) uint8: level 0 is `values` framed by `pad` cells of
    `fill` on every side; level k holds at [i, j] the max of level 0 over the 2^k x 2^k block
    [i, i + 2^k) x [j, j + 2^k), cells past the array counting as `fill`. Built by doubling:
    level k+1 is the max of level k at offsets 0 and 2^k, along x then along y. With
    pad >= 2^(depth-1) and fill <= every value, the outer ring of every level is `fill`, and so is
    every cell of a wider frame of `fill` added later: `window_scores` clamps off-array lookups
    onto the ring, `branch_and_bound`'s caller widens the frame so that none happen.
    """
    h, w = values.shape
    hp = h + 2 * pad
    wp = w + 2 * pad
    out = np.full((depth, hp, wp), fill, dtype=np.uint8)
    out[0, pad : pad + h, pad : pad + w] = values
    rows = np.empty((hp, wp), dtype=np.uint8)
    for k in range(1, depth):
        s = 1 << (k - 1)
        prev = out[k - 1]
        for i in range(hp):
            for j in range(wp):
                v = prev[i, j]
                u = prev[i, j + s] if j + s < wp else fill
                rows[i, j] = v if v >= u else u
        cur = out[k]
        for i in range(hp):
            if i + s < hp:
                for j in range(wp):
                    v = rows[i, j]
                    u = rows[i + s, j]
                    cur[i, j] = v if v >= u else u
            else:
                for j in range(wp):
                    v = rows[i, j]
                    cur[i, j] = v if v >= fill else fill
    return out


@njit(cache=True, nogil=True)
def rotated_cells(points, headings, tx, ty, resolution, shift):
    """Cells of the (N, 2) robot-frame points rotated by each of the (A,) `headings` (rad) and
    moved by (tx, ty) metres, in a grid of `resolution` m whose cell (0, 0) has its corner at the
    origin; `shift` is added to both indices (the padding of the level stack).

    Returns (A, N, 2) int32 (row, col) = (floor(y / res), floor(x / res)) + shift, each index
    clamped to [-2^30, 2^30] (a point 2^30 cells off the grid is as off as any farther one).
    """
    n = points.shape[0]
    na = headings.shape[0]
    out = np.empty((na, n, 2), dtype=np.int32)
    for a in range(na):
        c = math.cos(headings[a])
        s = math.sin(headings[a])
        for p in range(n):
            px = points[p, 0]
            py = points[p, 1]
            x = c * px - s * py + tx
            y = s * px + c * py + ty
            # clamp before the cast: a float beyond int64 has no defined integer
            row = math.floor(min(max(y / resolution, -_FAR), _FAR)) + shift
            col = math.floor(min(max(x / resolution, -_FAR), _FAR)) + shift
            out[a, p, 0] = min(max(row, -_FAR), _FAR)
            out[a, p, 1] = min(max(col, -_FAR), _FAR)
    return out


@njit(cache=True, nogil=True)
def window_scores(level, cells, bounds):
    """Exhaustive correlative search: the score sum of every candidate in the window.

    `level` (Hp, Wp) uint8 score grid, `cells` (A, N, 2) int32 from `rotated_cells`, `bounds`
    (4,) int64 = (ylo, yhi, xlo, xhi), inclusive cell offsets. Returns (A, yhi-ylo+1, xhi-xlo+1)
    int64: out[a, y, x] = sum over points of level[row + ylo + y, col + xlo + x], an off-array
    index clamped to the nearest edge cell. Per point the window is a contiguous slice of a grid
    row, added at once (the slide).
    """
    hp, wp = level.shape
    na = cells.shape[0]
    n = cells.shape[1]
    ylo, yhi, xlo, xhi = bounds[0], bounds[1], bounds[2], bounds[3]
    ny = yhi - ylo + 1
    nx = xhi - xlo + 1
    out = np.zeros((na, ny, nx), dtype=np.int64)
    acc = np.zeros((ny, nx), dtype=np.int32)  # <= N * 255: no overflow below 8 M points
    for a in range(na):
        acc[:] = 0
        for p in range(n):
            r0 = cells[a, p, 0] + ylo
            c0 = cells[a, p, 1] + xlo
            for y in range(ny):
                r = min(max(r0 + y, 0), hp - 1)
                if c0 >= 0 and c0 + nx <= wp:
                    row = level[r, c0 : c0 + nx]
                    for x in range(nx):
                        acc[y, x] += row[x]
                else:
                    for x in range(nx):
                        acc[y, x] += level[r, min(max(c0 + x, 0), wp - 1)]
        out[a] = acc
    return out


@njit(cache=True, nogil=True, inline="always")
def _level_sum(level, flat, a, offset, need, vmax):
    """Score sum of rotation a at flat `offset` on one flattened level, or -1 as soon as the
    points left cannot lift it to `need` even at `vmax` each. No bounds checks: see the caller."""
    n = flat.shape[1]
    total = np.int64(0)  # (a Python int would stay uint8 without the JIT)
    p = 0
    while p < n:
        end = min(p + 32, n)
        for q in range(p, end):
            total += level[flat[a, q] + offset]
        p = end
        if total + (n - p) * vmax < need:
            return -1
    return total


@njit(cache=True, nogil=True, inline="always")
def _gap(lo, hi):
    """Smallest |v| for v in [lo, hi]."""
    if lo > 0:
        return lo
    if hi < 0:
        return -hi
    return 0


@njit(cache=True, nogil=True)
def branch_and_bound(levels, width, flat, bounds, min_sum):
    """Best candidate of the window by exact branch and bound over the max-filtered stack.

    Cartographer FastCorrelativeScanMatcher2D::BranchAndBound (Hess et al., ICRA 2016), as an
    explicit-stack depth-first search that expands the best child first. `levels` (D, Hp * Wp)
    uint8 is the stack of `block_max_levels` with each level flattened, `width` = Wp, `flat`
    (A, N) int32 the points' flat cells row * Wp + col (`rotated_cells`), `bounds` (4,) int64
    (ylo, yhi, xlo, xhi) inclusive offsets. A node (a, oy, ox) on level k stands for the offsets
    [oy, oy + 2^k) x [ox, ox + 2^k) (clipped to the bounds); its level-k sum bounds the level-0
    sum of all of them from above. The caller guarantees that every point stays inside the
    array at every offset in the bounds (lookups are not checked, for speed).

    Returns (a, iy, ix, sum, n_scored): the candidate with the largest level-0 sum >= `min_sum`
    (ties: smallest key, see the module docstring), or a = -1 when none reaches `min_sum`;
    n_scored counts the candidates scored on any level.
    """
    depth = levels.shape[0]
    na = flat.shape[0]
    centre = (na - 1) // 2
    ylo, yhi, xlo, xhi = bounds[0], bounds[1], bounds[2], bounds[3]
    top_level = depth - 1
    step = 1 << top_level
    nry = (yhi - ylo) // step + 1
    nrx = (xhi - xlo) // step + 1
    n_roots = na * nry * nrx
    cap = n_roots + 4 * depth + 8
    st_a = np.empty(cap, dtype=np.int64)
    st_y = np.empty(cap, dtype=np.int64)
    st_x = np.empty(cap, dtype=np.int64)
    st_k = np.empty(cap, dtype=np.int64)
    st_b = np.empty(cap, dtype=np.int64)

    vmax = np.int64(levels[top_level].max())  # the largest cell value of any level
    root_b = np.empty(n_roots, dtype=np.int64)
    coarse = levels[top_level]
    r = 0
    for a in range(na):
        for ty in range(nry):
            for tx in range(nrx):
                offset = (ylo + ty * step) * width + xlo + tx * step
                root_b[r] = _level_sum(coarse, flat, a, offset, min_sum, vmax)
                r += 1
    n_scored = n_roots
    # push the roots worst first, so the best is on top of the stack
    order = np.argsort(root_b, kind="mergesort")
    top = 0
    per_a = nry * nrx
    for q in range(n_roots):
        r = order[q]
        a = r // per_a
        rem = r - a * per_a
        st_a[top] = a
        st_y[top] = ylo + (rem // nrx) * step
        st_x[top] = xlo + (rem % nrx) * step
        st_k[top] = top_level
        st_b[top] = root_b[r]
        top += 1

    big = np.int64(1) << 62
    best_sum = np.int64(min_sum)
    best_key = (big, big, big, big, big)
    best_a = -1
    best_y = 0
    best_x = 0
    ch_y = np.empty(4, dtype=np.int64)
    ch_x = np.empty(4, dtype=np.int64)
    ch_b = np.empty(4, dtype=np.int64)
    while top > 0:
        top -= 1
        a = st_a[top]
        oy = st_y[top]
        ox = st_x[top]
        k = st_k[top]
        b = st_b[top]
        if b < best_sum:
            continue
        w = np.int64(1) << k
        da = a - centre
        key = (
            abs(da),
            _gap(oy, oy + w - 1) + _gap(ox, ox + w - 1),
            np.int64(1 if da > 0 else 0),
            oy,
            ox,
        )  # a lower bound of the key of every candidate under this node
        if b == best_sum and key >= best_key:
            continue
        if k == 0:
            best_sum = b
            best_key = key
            best_a = a
            best_y = oy
            best_x = ox
            continue
        # split into up to four children on the next finer level, score them, push best last
        h = w >> 1
        level = levels[k - 1]
        nc = 0
        for cy in range(2):
            y = oy + cy * h
            if y > yhi:
                continue
            for cx in range(2):
                x = ox + cx * h
                if x > xhi:
                    continue
                n_scored += 1
                b = _level_sum(level, flat, a, y * width + x, best_sum, vmax)
                if b < best_sum:  # includes -1: cut short, cannot reach the best
                    continue
                ch_y[nc] = y
                ch_x[nc] = x
                ch_b[nc] = b
                nc += 1
        # insertion sort, ascending by bound
        for i in range(1, nc):
            j = i
            while j > 0 and ch_b[j - 1] > ch_b[j]:
                ch_b[j - 1], ch_b[j] = ch_b[j], ch_b[j - 1]
                ch_y[j - 1], ch_y[j] = ch_y[j], ch_y[j - 1]
                ch_x[j - 1], ch_x[j] = ch_x[j], ch_x[j - 1]
                j -= 1
        for i in range(nc):
            st_a[top] = a
            st_y[top] = ch_y[i]
            st_x[top] = ch_x[i]
            st_k[top] = k - 1
            st_b[top] = ch_b[i]
            top += 1
    return best_a, best_y, best_x, best_sum if best_a >= 0 else np.int64(0), n_scored


@njit(cache=True, nogil=True)
def _refine_terms(values, frame, points, x, prior, w2, hess, grad):
    """Cost of pose `x` (3,) for the sub-cell matcher; fills the normal equations `hess` (3, 3)
    and `grad` (3,) in place. `frame` = (resolution, origin x, origin y, floor score);
    `w2` = squared weights (occupied, translation, rotation). Returns (cost, mean score)."""
    res, ox, oy, floor = frame[0], frame[1], frame[2], frame[3]
    h, w = values.shape
    c, s = np.cos(x[2]), np.sin(x[2])
    n = points.shape[0]
    wo2 = w2[0] / n
    hess[:, :] = 0.0
    grad[:] = 0.0
    sq = 0.0
    total = 0.0
    for k in range(n):
        px = points[k, 0]
        py = points[k, 1]
        u = (c * px - s * py + x[0] - ox) / res - 0.5
        v = (s * px + c * py + x[1] - oy) / res - 0.5
        j0 = int(np.floor(u))
        i0 = int(np.floor(v))
        val = floor
        gx = 0.0
        gy = 0.0
        if 0 <= j0 < w - 1 and 0 <= i0 < h - 1:
            fu = u - j0
            fv = v - i0
            v00 = values[i0, j0]
            v01 = values[i0, j0 + 1]
            v10 = values[i0 + 1, j0]
            v11 = values[i0 + 1, j0 + 1]
            val = (1 - fv) * ((1 - fu) * v00 + fu * v01) + fv * ((1 - fu) * v10 + fu * v11)
            gx = ((1 - fv) * (v01 - v00) + fv * (v11 - v10)) / res
            gy = ((1 - fu) * (v10 - v00) + fu * (v11 - v01)) / res
        r = 1.0 - val
        # residual r = 1 - M(T p): its gradient is -grad M . dTp/dx
        j0_ = -gx
        j1_ = -gy
        j2_ = -(gx * (-s * px - c * py) + gy * (c * px - s * py))
        jac = (j0_, j1_, j2_)
        for a in range(3):
            grad[a] += wo2 * jac[a] * r
            for b in range(3):
                hess[a, b] += wo2 * jac[a] * jac[b]
        sq += r * r
        total += val
    d0 = x[0] - prior[0]
    d1 = x[1] - prior[1]
    d2 = x[2] - prior[2]
    hess[0, 0] += w2[1]
    hess[1, 1] += w2[1]
    hess[2, 2] += w2[2]
    grad[0] += w2[1] * d0
    grad[1] += w2[1] * d1
    grad[2] += w2[2] * d2
    cost = wo2 * sq + w2[1] * (d0 * d0 + d1 * d1) + w2[2] * d2 * d2
    return cost, total / n


@njit(cache=True, nogil=True)
def refine_pose(values, frame, points, start, prior, w2, iterations):
    """Levenberg-Marquardt on the smooth score raster `values` (see _refine_terms) from pose
    `start` (3,) with a prior at `prior` (3,). Returns (4,): x, y, theta, mean point score."""
    x = start.copy()
    hess = np.zeros((3, 3))
    grad = np.zeros(3)
    trial_hess = np.zeros((3, 3))
    trial_grad = np.zeros(3)
    cost, mean = _refine_terms(values, frame, points, x, prior, w2, hess, grad)
    lam = 1e-3
    for _ in range(iterations):
        improved = False
        step = np.zeros(3)
        for _attempt in range(6):
            damped = hess.copy()
            for d in range(3):
                damped[d, d] += lam * hess[d, d]
            if not abs(np.linalg.det(damped)) > 1e-300:
                lam *= 10
                continue
            step = -np.linalg.solve(damped, grad)
            step[2] = min(max(step[2], -0.2), 0.2)
            candidate = x + step
            new_cost, new_mean = _refine_terms(
                values, frame, points, candidate, prior, w2, trial_hess, trial_grad
            )
            if new_cost < cost:
                x = candidate
                cost = new_cost
                mean = new_mean
                hess[:, :] = trial_hess
                grad[:] = trial_grad
                lam = max(lam / 10, 1e-7)
                improved = True
                break
            lam *= 10
        if not improved or (max(abs(step[0]), abs(step[1])) < 1e-5 and abs(step[2]) < 1e-6):
            break
    out = np.empty(4)
    out[:3] = x
    out[3] = mean
    return out


@njit(cache=True, nogil=True, inline="always")
def _bin_better(s, k0, k1, k2, k3, k4, t_s, t_k0, t_k1, t_k2, t_k3, t_k4):
    """True when candidate (s, key) ranks before (t_s, t_key): larger sum, then smaller key."""
    if s != t_s:
        return s > t_s
    return (k0, k1, k2, k3, k4) < (t_k0, t_k1, t_k2, t_k3, t_k4)


@njit(cache=True, nogil=True)
def branch_and_bound_top_bins(
    levels, width, flat, bounds, allowed, min_sum, slack, k, bin_a, bin_y, bin_x
):
    """The best candidate of each of the `k` best bins of the window, by exact branch and bound.

    Same search space and arguments as `branch_and_bound`, whose single best answer this
    generalises, with a mask of the offsets allowed: `allowed` (D, ny * nx) uint8, level k
    nonzero at [(iy - ylo) * nx + (ix - xlo)] when some offset of the block [iy, iy + 2^k) x
    [ix, ix + 2^k) is allowed (`block_max_levels` of the level-0 mask with pad 0), ny and nx the
    window's rows and columns. Only allowed candidates count; a node whose block holds none is
    pruned. The candidates (a, iy, ix) are grouped into bins (a // bin_a, (iy - ylo) // bin_y,
    (ix - xlo) // bin_x); the answer is, for the `k` bins whose best candidates rank first, that
    best candidate. Candidates rank by larger sum, then smaller key (|a - c|, |iy| + |ix|, a > c,
    iy, ix) with c = (A - 1) // 2, as in `branch_and_bound`; only sums >= max(`min_sum`, best sum
    - `slack`) count (`slack` >= 0, a huge value for none). A node is pruned when its bound is
    below that floor (the best so far less slack) or cannot beat the k-th bin held so far: the
    best and the bins only get better as the search goes on, so the answer is exactly the
    exhaustive one (ties included).

    Returns (out, n_found, n_scored): out (k, 4) int64 rows (a, iy, ix, sum) in rank order, of
    which the first n_found are filled (fewer than k bins may reach min_sum); n_scored counts
    the candidates scored on any level.
    """
    depth = levels.shape[0]
    na = flat.shape[0]
    centre = (na - 1) // 2
    ylo, yhi, xlo, xhi = bounds[0], bounds[1], bounds[2], bounds[3]
    top_level = depth - 1
    step = 1 << top_level
    nry = (yhi - ylo) // step + 1
    nrx = (xhi - xlo) // step + 1
    n_roots = na * nry * nrx
    cap = n_roots + 4 * depth + 8
    st_a = np.empty(cap, dtype=np.int64)
    st_y = np.empty(cap, dtype=np.int64)
    st_x = np.empty(cap, dtype=np.int64)
    st_k = np.empty(cap, dtype=np.int64)
    st_b = np.empty(cap, dtype=np.int64)

    vmax = np.int64(levels[top_level].max())
    root_b = np.empty(n_roots, dtype=np.int64)
    coarse = levels[top_level]
    r = 0
    nx = xhi - xlo + 1
    top_allowed = allowed[top_level]
    for a in range(na):
        for ty in range(nry):
            for tx in range(nrx):
                if top_allowed[ty * step * nx + tx * step] == 0:
                    root_b[r] = -1
                else:
                    offset = (ylo + ty * step) * width + xlo + tx * step
                    root_b[r] = _level_sum(coarse, flat, a, offset, min_sum, vmax)
                r += 1
    n_scored = n_roots
    order = np.argsort(root_b, kind="mergesort")
    top = 0
    per_a = nry * nrx
    for q in range(n_roots):
        r = order[q]
        if root_b[r] < 0:
            continue
        a = r // per_a
        rem = r - a * per_a
        st_a[top] = a
        st_y[top] = ylo + (rem // nrx) * step
        st_x[top] = xlo + (rem % nrx) * step
        st_k[top] = top_level
        st_b[top] = root_b[r]
        top += 1

    big = np.int64(1) << 62
    kk = max(k, 1)
    # the bins held: best candidate (a, iy, ix), its sum and key, and the bin's id
    h_a = np.zeros(kk, dtype=np.int64)
    h_y = np.zeros(kk, dtype=np.int64)
    h_x = np.zeros(kk, dtype=np.int64)
    h_s = np.zeros(kk, dtype=np.int64)
    h_key = np.zeros((kk, 5), dtype=np.int64)
    h_bin = np.zeros((kk, 3), dtype=np.int64)
    n_held = 0
    worst = 0  # index of the held bin that ranks last
    thr = np.int64(min_sum)  # the k-th bin's sum (min_sum until k bins are held) ...
    thr_key = (big, big, big, big, big)  # ... and key: a candidate must rank before them
    floor = np.int64(min_sum)  # and reach max(min_sum, best sum so far - slack)
    best = np.int64(-1)
    ch_y = np.empty(4, dtype=np.int64)
    ch_x = np.empty(4, dtype=np.int64)
    ch_b = np.empty(4, dtype=np.int64)
    while top > 0:
        top -= 1
        a = st_a[top]
        oy = st_y[top]
        ox = st_x[top]
        lv = st_k[top]
        b = st_b[top]
        if b < thr or b < floor or k <= 0:
            continue
        w = np.int64(1) << lv
        da = a - centre
        key = (
            abs(da),
            _gap(oy, oy + w - 1) + _gap(ox, ox + w - 1),
            np.int64(1 if da > 0 else 0),
            oy,
            ox,
        )  # a lower bound of the key of every candidate under this node
        if b == thr and key >= thr_key:
            continue
        if lv == 0:
            if b > best:
                best = b
                floor = max(floor, best - slack)
            ba = a // bin_a
            by = (oy - ylo) // bin_y
            bx = (ox - xlo) // bin_x
            slot = -1
            for i in range(n_held):
                if h_bin[i, 0] == ba and h_bin[i, 1] == by and h_bin[i, 2] == bx:
                    slot = i
                    break
            if slot >= 0:
                hk = h_key[slot]
                if not _bin_better(
                    b, key[0], key[1], key[2], key[3], key[4],
                    h_s[slot], hk[0], hk[1], hk[2], hk[3], hk[4],
                ):  # fmt: skip
                    continue
            elif n_held < kk:
                slot = n_held
                n_held += 1
            else:
                slot = worst  # b and key beat the worst bin (checked above)
            h_a[slot] = a
            h_y[slot] = oy
            h_x[slot] = ox
            h_s[slot] = b
            h_key[slot, 0] = key[0]
            h_key[slot, 1] = key[1]
            h_key[slot, 2] = key[2]
            h_key[slot, 3] = key[3]
            h_key[slot, 4] = key[4]
            h_bin[slot, 0] = ba
            h_bin[slot, 1] = by
            h_bin[slot, 2] = bx
            if n_held == kk:
                worst = 0
                for i in range(1, n_held):
                    wk = h_key[worst]
                    ik = h_key[i]
                    if _bin_better(
                        h_s[worst], wk[0], wk[1], wk[2], wk[3], wk[4],
                        h_s[i], ik[0], ik[1], ik[2], ik[3], ik[4],
                    ):  # fmt: skip
                        worst = i
                wk = h_key[worst]
                thr = h_s[worst]
                thr_key = (wk[0], wk[1], wk[2], wk[3], wk[4])
            continue
        h = w >> 1
        level = levels[lv - 1]
        nc = 0
        for cy in range(2):
            y = oy + cy * h
            if y > yhi:
                continue
            for cx in range(2):
                x = ox + cx * h
                if x > xhi or allowed[lv - 1][(y - ylo) * nx + x - xlo] == 0:
                    continue
                n_scored += 1
                need = max(thr, floor)
                b = _level_sum(level, flat, a, y * width + x, need, vmax)
                if b < need:
                    continue
                ch_y[nc] = y
                ch_x[nc] = x
                ch_b[nc] = b
                nc += 1
        for i in range(1, nc):
            j = i
            while j > 0 and ch_b[j - 1] > ch_b[j]:
                ch_b[j - 1], ch_b[j] = ch_b[j], ch_b[j - 1]
                ch_y[j - 1], ch_y[j] = ch_y[j], ch_y[j - 1]
                ch_x[j - 1], ch_x[j] = ch_x[j], ch_x[j - 1]
                j -= 1
        for i in range(nc):
            st_a[top] = a
            st_y[top] = ch_y[i]
            st_x[top] = ch_x[i]
            st_k[top] = lv - 1
            st_b[top] = ch_b[i]
            top += 1

    # drop the bins that fell below the final floor, then rank the rest
    m = 0
    for i in range(n_held):
        if h_s[i] >= floor:
            h_a[m] = h_a[i]
            h_y[m] = h_y[i]
            h_x[m] = h_x[i]
            h_s[m] = h_s[i]
            h_key[m] = h_key[i]
            m += 1
    n_held = m
    out = np.zeros((max(k, 0), 4), dtype=np.int64)
    # rank the held bins (insertion sort on (sum desc, key asc); k is small)
    idx = np.arange(n_held)
    for i in range(1, n_held):
        j = i
        while j > 0:
            p = idx[j - 1]
            q = idx[j]
            pk = h_key[p]
            qk = h_key[q]
            if _bin_better(
                h_s[q], qk[0], qk[1], qk[2], qk[3], qk[4],
                h_s[p], pk[0], pk[1], pk[2], pk[3], pk[4],
            ):  # fmt: skip
                idx[j - 1] = q
                idx[j] = p
                j -= 1
            else:
                break
    for i in range(n_held):
        s = idx[i]
        out[i, 0] = h_a[s]
        out[i, 1] = h_y[s]
        out[i, 2] = h_x[s]
        out[i, 3] = h_s[s]
    return out, n_held, n_scored


# ------------------------------------------------------------ grid planning (navigation.planner)
@njit(cache=True, nogil=True)
def astar_grid(costs, straight, diagonal, start, goal, work):
    """Cost-aware 8-connected A* from cell `start` to cell `goal` (flat indices i * W + j).

    `costs` (H, W) uint8 costmap. `straight`, `diagonal` (256,) int64: the integer cost of a
    step onto a cell of each cost value, straight or diagonal, -1 where a cell may not be
    entered (navigation.planner scales Smac 2D's traversal cost to integers, so sums are exact).
    A diagonal step also needs both cells beside it enterable (no corner cutting).

    The heuristic is the octile distance weighted by the cheapest straight and diagonal step,
    so it is admissible and consistent, f never decreases along the search, and the open list
    can be a ring of buckets by f (Dial's bucket queue): a step changes f by at most the
    costliest step plus the cheapest diagonal one. Each bucket is a stack: among equal f the
    entry pushed last comes first (a depth-first tie break). An improved cell is pushed again;
    its older entry is skipped when it comes up (lazy deletion).

    `work` (g, parent, mark, entries): arrays kept between calls on the same grid size so that
    the search touches no fresh memory: g (H*W,) int64, parent (H*W,) int32, mark (H*W + 1,)
    int32 all zero at first, entries (K, 2) int64 any K >= 1. They are overwritten; mark[-1]
    counts the calls (cell c is open when mark[c] is that count, closed at count + 1).

    Returns (path, cost, expansions, entries): path (N,) int64 flat cells start to goal (empty
    when the goal cannot be reached), cost the sum of the step costs (-1 when unreachable),
    expansions the number of cells closed, entries the entries array to keep (it may have grown).
    """
    g, parent, mark, entries = work
    h_rows, w_cols = costs.shape
    n = h_rows * w_cols
    flat = costs.ravel()
    hs = np.int64(1) << 62
    hd = np.int64(1) << 62
    top = np.int64(0)
    for c in range(256):
        if straight[c] >= 0:
            hs = min(hs, straight[c])
            hd = min(hd, diagonal[c])
            top = max(top, straight[c], diagonal[c])
    empty = np.empty(0, dtype=np.int64)
    if straight[flat[start]] < 0 or straight[flat[goal]] < 0:
        return empty, np.int64(-1), 0, entries
    # a fresh pair of marks for this call; start over when they would overflow
    gen = mark[n] + 2
    if gen >= 2**31 - 2:
        mark[:] = 0
        gen = 2
    mark[n] = gen
    closed = gen + 1
    ring = 1
    while ring <= top + hd + 1:
        ring *= 2
    bucket_mask = ring - 1
    head = np.full(ring, -1, dtype=np.int64)
    cap = entries.shape[0]
    gi = goal // w_cols
    gj = goal - gi * w_cols
    si = start // w_cols
    di = abs(si - gi)
    dj = abs(start - si * w_cols - gj)
    lo = min(di, dj)
    cur = hs * (max(di, dj) - lo) + hd * lo
    g[start] = 0
    mark[start] = gen
    entries[0, 0] = start
    entries[0, 1] = -1
    head[cur & bucket_mask] = 0
    n_entries = 1
    size = 1
    expansions = 0
    found = False
    while True:
        full = False
        while size > 0:
            if n_entries + 8 > cap:
                full = True  # room for one more expansion's pushes: grow first
                break
            while head[cur & bucket_mask] < 0:
                cur += 1
            e = head[cur & bucket_mask]
            head[cur & bucket_mask] = entries[e, 1]
            size -= 1
            node = entries[e, 0]
            if mark[node] == closed:
                continue  # a stale entry: the cell was closed at a lower f
            mark[node] = closed
            expansions += 1
            if node == goal:
                found = True
                break
            i = node // w_cols
            j = node - i * w_cols
            g_node = g[node]
            # the four sides first: a diagonal step needs both cells beside it enterable
            ok_s = i > 0 and straight[flat[node - w_cols]] >= 0
            ok_n = i < h_rows - 1 and straight[flat[node + w_cols]] >= 0
            ok_w = j > 0 and straight[flat[node - 1]] >= 0
            ok_e = j < w_cols - 1 and straight[flat[node + 1]] >= 0
            for d in range(8):
                if d == 0:
                    if not ok_s:
                        continue
                    nb = node - w_cols
                elif d == 1:
                    if not ok_n:
                        continue
                    nb = node + w_cols
                elif d == 2:
                    if not ok_w:
                        continue
                    nb = node - 1
                elif d == 3:
                    if not ok_e:
                        continue
                    nb = node + 1
                elif d == 4:
                    if not (ok_s and ok_w):
                        continue
                    nb = node - w_cols - 1
                elif d == 5:
                    if not (ok_s and ok_e):
                        continue
                    nb = node - w_cols + 1
                elif d == 6:
                    if not (ok_n and ok_w):
                        continue
                    nb = node + w_cols - 1
                else:
                    if not (ok_n and ok_e):
                        continue
                    nb = node + w_cols + 1
                m = mark[nb]
                if m == closed:
                    continue
                cv = flat[nb]
                step = diagonal[cv] if d >= 4 else straight[cv]
                if step < 0:
                    continue
                ng = g_node + step
                if m == gen and ng >= g[nb]:
                    continue
                g[nb] = ng
                parent[nb] = node
                mark[nb] = gen
                ni = nb // w_cols
                di = abs(ni - gi)
                dj = abs(nb - ni * w_cols - gj)
                lo = min(di, dj)
                b = (ng + hs * (max(di, dj) - lo) + hd * lo) & bucket_mask
                entries[n_entries, 0] = nb
                entries[n_entries, 1] = head[b]
                head[b] = n_entries
                n_entries += 1
                size += 1
        if not full:
            break
        cap *= 2
        grown = np.empty((cap, 2), dtype=np.int64)
        grown[:n_entries] = entries[:n_entries]
        entries = grown
    if not found:
        return empty, np.int64(-1), expansions, entries
    length = 1
    node = goal
    while node != start:
        node = parent[node]
        length += 1
    path = np.empty(length, dtype=np.int64)
    node = goal
    for k in range(length - 1, -1, -1):
        path[k] = node
        node = parent[node]
    return path, g[goal], expansions, entries


@njit(cache=True, nogil=True)
def segment_clear(costs, rank, i0, j0, i1, j1, limit):
    """True when every cell that the segment between the centres of cells (i0, j0) and (i1, j1)
    touches has `rank[costs[i, j]] <= limit`.

    A cell is touched when the segment meets its closed square, so a segment through a corner
    touches all four cells around it (a supercover line). The walk is exact: it runs on doubled
    integer coordinates, where cell centres are odd and cell edges even, and compares the
    crossings by cross-multiplication. Cells outside the grid never pass. `rank` (256,) int64.
    """
    h_rows, w_cols = costs.shape
    x = 2 * j0 + 1
    y = 2 * i0 + 1
    dx = 2 * (j1 - j0)
    dy = 2 * (i1 - i0)
    sx = 1 if dx > 0 else -1
    sy = 1 if dy > 0 else -1
    adx = abs(dx)
    ady = abs(dy)
    i = i0
    j = j0
    while True:
        if i < 0 or i >= h_rows or j < 0 or j >= w_cols or rank[costs[i, j]] > limit:
            return False
        if i == i1 and j == j1:
            return True
        # distance (doubled units) to the next column and row edge along each axis
        bx = 2 * (j + 1) if sx > 0 else 2 * j
        by = 2 * (i + 1) if sy > 0 else 2 * i
        nx = abs(bx - x)
        ny = abs(by - y)
        if adx == 0:
            i += sy
        elif ady == 0:
            j += sx
        else:
            # crossing times nx / adx and ny / ady, compared without division
            lhs = nx * ady
            rhs = ny * adx
            if lhs < rhs:
                j += sx
            elif rhs < lhs:
                i += sy
            else:
                # through a corner: the two cells beside it are touched too
                for ci, cj in ((i, j + sx), (i + sy, j)):
                    if ci < 0 or ci >= h_rows or cj < 0 or cj >= w_cols:
                        return False
                    if rank[costs[ci, cj]] > limit:
                        return False
                i += sy
                j += sx


@njit(cache=True, nogil=True)
def shortcut_path(costs, rank, cells, limit):
    """Line-of-sight shortcuts of a cell path: the indices of the cells to keep.

    `cells` (N, 2) int64 rows (i, j), consecutive cells 8-adjacent; `rank` (256,) int64 as in
    `segment_clear`. The candidates are the turns of the path (cells where the step direction
    changes) and its last cell. From each kept cell a, the next kept cell is the last candidate
    k such that the segments from a to every candidate up to k are clear at max(`limit`, the
    highest rank of the path cells a..k they replace), or a + 1 when the first one is not: a
    shortcut never touches a cell costlier than the threshold unless the path it replaces
    already did. Returns (M,) int64 indices into `cells`, first 0, last N - 1.
    """
    n = cells.shape[0]
    keep = np.empty(max(n, 1), dtype=np.int64)
    if n == 0:
        return keep[:0]
    # candidates: the turns, then the end
    cand = np.empty(n, dtype=np.int64)
    n_cand = 0
    for k in range(1, n - 1):
        if (
            cells[k, 0] - cells[k - 1, 0] != cells[k + 1, 0] - cells[k, 0]
            or cells[k, 1] - cells[k - 1, 1] != cells[k + 1, 1] - cells[k, 1]
        ):
            cand[n_cand] = k
            n_cand += 1
    cand[n_cand] = n - 1
    n_cand += 1
    keep[0] = 0
    m = 1
    a = 0
    c = 0  # first candidate after a
    while a < n - 1:
        while cand[c] <= a + 1 and cand[c] < n - 1:
            c += 1
        worst = max(
            rank[costs[cells[a, 0], cells[a, 1]]], rank[costs[cells[a + 1, 0], cells[a + 1, 1]]]
        )
        best = a + 1
        scanned = a + 1
        q = c
        while q < n_cand and cand[q] > a + 1:
            k = cand[q]
            while scanned < k:
                scanned += 1
                worst = max(worst, rank[costs[cells[scanned, 0], cells[scanned, 1]]])
            if not segment_clear(
                costs, rank, cells[a, 0], cells[a, 1], cells[k, 0], cells[k, 1], max(limit, worst)
            ):
                break
            best = k
            q += 1
        keep[m] = best
        m += 1
        a = best
    return keep[:m]
