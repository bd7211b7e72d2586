"""Edge passes driven up to the walls: a planned polyline moved sideways, leg by leg, to a
given clearance from the wall cells, measured to the cells' edges and not in whole cells.

The costmap decides where the robot centre may stand cell by cell: a centre may stand where
its distance to the nearest wall cell's edge is at least the robot radius. At 0.05 m cells,
with a 0.18 m radius, the nearest such centres lie 0.225 m from the wall cell (the centres are
at 0.025, 0.075, ..., 0.175, 0.225 m), so an edge pass along the cell chain runs 4.5 cm
further out than the body needs, and with a 0.25 m brush under a 0.17 m body that strip of
floor along every wall is never cleaned.

Worse, a map cell is a wall when a hit fell in it, so the wall cell's free side lies anywhere
from 0 to a whole cell in front of the true face (about half a cell on average: in the default
home 57 % of the first free cells along the walls are walls or unknown in the rebuilt map).
The lidar sees the faces themselves: `WallHits` counts the hits of well-tracked scans in 1 cm
bins, and a wall cell holding such hits is stood for by them.

Each leg of the pass (a straight piece between two turns) is translated towards the wall
beside it by the largest amount, up to `max_shift`, that keeps every point of the leg at least
`clearance` from every wall cell and hit (exact point-to-square distances); the legs are then
joined again where the shifted lines meet. Joins and legs that would come closer than
`clearance` (the outside of a convex corner: a table's corner, a door jamb) are given back
their shift until none does. A leg with no wall beside it, or shorter than `min_leg`, keeps
its place.

That places the pass by the map and the tracked pose, each a few cm off. While the robot
drives it, `side_wall` fits the hits of one scan beside the robot (its own frame) with a
line: the gap to a straight wall to a few mm, which the mission steers by.

Coordinates: world metres; `walls` a (H, W) bool raster as maps.grid (row i <-> y, column
j <-> x, `origin` the world xy of cell (0, 0)'s corner).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.spatial import cKDTree

_SAMPLE = 0.01  # m between the points of a leg whose clearance is checked
_STEPS = 12  # shifts tried per leg on each side, from max_shift down to -max_shift
_BATCHES = 5  # ... in this many batches, each checked in one call
_ROUNDS = 40  # rounds of giving shifts back before the polyline is left as it was
_NEAREST = 16  # wall cells (by centre) among which the nearest square is sought


class WallHits:
    """Lidar hits in the map frame, counted in bins `cell` m wide: where the faces of the walls
    are, finer than the map's cells. A bin hit at least `min_count` times counts (one scan
    on a bad pose does not make a wall)."""

    def __init__(self, cell: float = 0.01, min_count: int = 2) -> None:
        self.cell = float(cell)
        self.min_count = int(min_count)
        self._keys = np.zeros(0, np.int64)
        self._counts = np.zeros(0, np.int64)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def add(self, xy) -> None:
        """Count the (N, 2) hit points (map frame, metres)."""
        pts = np.asarray(xy, np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0:
            return
        b = np.floor(pts / self.cell).astype(np.int64) + _BIAS
        self._pending.append((b[:, 0] << 32) | b[:, 1])
        self._n_pending += len(b)
        if self._n_pending > 100_000:
            self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self._keys, *self._pending])
        counts = np.concatenate([self._counts, *(np.ones(len(p), np.int64) for p in self._pending)])
        self._keys, inverse = np.unique(keys, return_inverse=True)
        self._counts = np.bincount(inverse.ravel(), weights=counts).astype(np.int64)
        self._pending, self._n_pending = [], 0

    def __len__(self) -> int:
        self._compact()
        return int(np.count_nonzero(self._counts >= self.min_count))

    def points(self, lo, hi) -> np.ndarray:
        """(M, 2) centres of the bins within [lo, hi] hit `min_count` times or more."""
        self._compact()
        keep = self._counts >= self.min_count
        keys = self._keys[keep]
        bx = (keys >> 32) - _BIAS
        by = (keys & 0xFFFFFFFF) - _BIAS
        b0 = np.floor(np.asarray(lo, np.float64) / self.cell).astype(np.int64)
        b1 = np.floor(np.asarray(hi, np.float64) / self.cell).astype(np.int64)
        inside = (bx >= b0[0]) & (bx <= b1[0]) & (by >= b0[1]) & (by <= b1[1])
        return np.column_stack(((bx[inside] + 0.5) * self.cell, (by[inside] + 0.5) * self.cell))


_BIAS = 1 << 30  # bins are stored as two non-negative 32-bit halves of one int64


class WallDistance:
    """Exact distance from points to the nearest wall: the wall cells (squares of side
    `resolution`) within `reach` of a bounding box of interest, except those holding wall
    `hits` (WallHits), whose hit points stand for them (the face the lidar saw)."""

    def __init__(
        self,
        walls,
        resolution: float,
        origin,
        lo,
        hi,
        reach: float,
        hits: WallHits | None = None,
        faces=None,
        soft=None,
        min_area: float = 0.1,
        small_margin: float = 0.02,
    ) -> None:
        walls = np.asarray(walls, bool)
        res = float(resolution)
        ox, oy = float(origin[0]), float(origin[1])
        h, w = walls.shape
        j0 = max(int(np.floor((lo[0] - reach - ox) / res)), 0)
        i0 = max(int(np.floor((lo[1] - reach - oy) / res)), 0)
        j1 = min(int(np.ceil((hi[0] + reach - ox) / res)) + 1, w)
        i1 = min(int(np.ceil((hi[1] + reach - oy) / res)) + 1, h)
        window = walls[i0:i1, j0:j1].copy() if i1 > i0 and j1 > j0 else np.zeros((0, 0), bool)
        # small things (a table leg, a bin): the hits on the sides seen so far say nothing of
        # the sides not seen yet, so they keep their cells; and a robot rounding one cuts in
        # (its pose is a cm or two off, it steers ahead): they keep `small_margin` more
        small = np.zeros_like(window)
        if window.size:
            _, labels, stats, _ = cv2.connectedComponentsWithStats(
                window.view(np.uint8), connectivity=8
            )
            tiny = stats[:, cv2.CC_STAT_AREA] * res * res < min_area
            tiny[0] = False
            small = tiny[labels]
        pts = np.zeros((0, 2))
        if hits is not None and window.size:
            pts = hits.points((ox + j0 * res, oy + i0 * res), (ox + j1 * res, oy + i1 * res))
            ci = np.floor((pts[:, 1] - oy) / res).astype(np.int64) - i0
            cj = np.floor((pts[:, 0] - ox) / res).astype(np.int64) - j0
            ok = (ci >= 0) & (ci < window.shape[0]) & (cj >= 0) & (cj < window.shape[1])
            held = np.zeros_like(window)
            held[ci[ok], cj[ok]] = True
            if faces is not None:
                held &= np.asarray(faces, bool)[i0:i1, j0:j1]
            held &= ~small
            if soft is not None:
                # unknown cells beside a face the lidar sees: unseen corners of that face
                near = cv2.dilate(held.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                window &= ~(near & np.asarray(soft, bool)[i0:i1, j0:j1])
            window &= ~held
        ii, jj = np.nonzero(window)
        squares = np.column_stack(
            (ox + (np.asarray(jj) + j0 + 0.5) * res, oy + (np.asarray(ii) + i0 + 0.5) * res)
        ).reshape(-1, 2)
        halves = res / 2 + np.where(small[ii, jj], small_margin, 0.0)
        # squares and hits (squares of side 0) in two trees: the nearest of each kind
        self.parts = [
            (c, cKDTree(c), h) for c, h in ((squares, halves), (pts, np.zeros(len(pts)))) if len(c)
        ]

    def _nearest(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) vector from each point to the nearest point of the nearest square or hit."""
        best = np.full(len(pts), np.inf)
        out = np.zeros_like(pts)
        for centres, tree, half in self.parts:
            k = min(_NEAREST, len(centres))
            _, idx = tree.query(pts, k=k)
            idx = np.asarray(idx).reshape(len(pts), k)
            c = centres[idx]
            h = half[idx][..., None]
            vec = c + np.clip(pts[:, None, :] - c, -h, h) - pts[:, None, :]
            d = np.hypot(vec[..., 0], vec[..., 1])
            m = np.argmin(d, axis=1)
            d = d[np.arange(len(pts)), m]
            better = d < best
            best[better] = d[better]
            out[better] = vec[np.arange(len(pts)), m][better]
        return out

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance (m) from each (N, 2) point to the nearest wall (inf: none)."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if not self.parts or len(pts) == 0:
            return np.full(len(pts), np.inf)
        vec = self._nearest(pts)
        return np.hypot(vec[:, 0], vec[:, 1])

    def towards(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) vector from each point to the nearest point of the nearest wall."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if not self.parts or len(pts) == 0:
            return np.zeros_like(pts)
        return self._nearest(pts)


def _samples(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(int(np.ceil(np.hypot(*(b - a)) / _SAMPLE)), 1)
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    return a + t * (b - a)


def _polyline_samples(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points every ~1 cm along a polyline, and the leg each belongs to."""
    chunks, legs = [], []
    for k in range(len(pts) - 1):
        s = _samples(pts[k], pts[k + 1])
        chunks.append(s)
        legs.append(np.full(len(s), k))
    return np.vstack(chunks), np.concatenate(legs)


def hug_walls(
    points,
    walls,
    resolution: float,
    origin,
    clearance: float,
    max_shift: float = 0.06,
    min_leg: float = 0.1,
    hits: WallHits | None = None,
    faces=None,
    soft=None,
    piece: float = 0.3,
    chord: float = 0.0,
) -> np.ndarray:
    """The (N, 2) polyline `points` (metres) with its legs moved sideways to `clearance` (m)
    from the walls beside them, by at most `max_shift` either way.

    walls: (H, W) bool raster of what the body must keep off (the costmap's lethal and
    unknown cells). hits: a WallHits; a cell of `faces` (default: any wall cell) that holds
    hits, in a blob of wall cells of at least 0.1 m2, is stood for by its hits, and so is a
    cell of `soft` (e.g. unknown) next to one. Legs longer than `piece` are cut first; legs
    shorter than `min_leg` stay. The result keeps `clearance` everywhere (and, with `chord`,
    at the middle of every chord that long: a robot steering that far ahead cuts corners up
    to the chord), or the polyline's own clearance where that is less. Returns an (M, 2)
    polyline; the given one, as it is, when nothing moves."""
    given = np.asarray(points, np.float64).reshape(-1, 2)
    if len(given) < 2 or max_shift <= 0:
        return given.copy()
    pts = _split(given, piece)
    lo, hi = pts.min(axis=0) - max_shift, pts.max(axis=0) + max_shift
    reach = clearance + max_shift + resolution
    dist = WallDistance(walls, resolution, origin, lo, hi, reach, hits, faces, soft)
    if not dist.parts:
        return given.copy()
    steps = pts[1:] - pts[:-1]
    lengths = np.hypot(steps[:, 0], steps[:, 1])
    shifts = np.zeros((len(steps), 2))
    for k in np.flatnonzero(lengths >= min_leg):
        shifts[k] = _leg_shift(pts[k], pts[k + 1], dist, clearance, max_shift)
    if not shifts.any():
        return given.copy()
    # the polyline's own clearance before any shift: never asked to be better than that
    base, base_a, base_b = _checks(pts, chord)
    floor = np.full(len(steps), np.inf)
    d = dist(base)
    np.minimum.at(floor, base_a, d)
    np.minimum.at(floor, base_b, d)
    need = np.minimum(floor, clearance) - 1e-4
    for _ in range(_ROUNDS):
        out, owner = _join(pts, steps, lengths, shifts)
        check, a, b = _checks(out, chord)
        d = dist(check)
        # a leg of the result lies along old legs (two at a bridge): judge it by their floor
        olds = np.concatenate((owner[a], owner[b]), axis=1)
        bad = d < need[olds].min(axis=1)
        if not bad.any():
            return out
        culprits = np.unique(olds[bad].ravel())
        moved = culprits[np.any(shifts[culprits] != 0.0, axis=1)]
        if len(moved) == 0:
            break  # nothing left to give back
        shifts[moved] *= 0.5
        shifts[moved[np.hypot(*shifts[moved].T) < 0.004]] = 0.0
    return given.copy()


def _checks(pts: np.ndarray, chord: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points whose clearance a polyline must keep, and the two legs each belongs to: every
    ~1 cm along it, and (`chord` > 0) the middle of each chord `chord` m long between two of
    those: a robot steering at a point that far ahead (pure pursuit) cuts the corners up to
    the chord."""
    samples, leg = _polyline_samples(pts)
    m = int(round(chord / _SAMPLE))
    if m < 2 or len(samples) <= m:
        return samples, leg, leg
    mid = (samples[:-m] + samples[m:]) / 2
    return (
        np.vstack((samples, mid)),
        np.concatenate((leg, leg[:-m])),
        np.concatenate((leg, leg[m:])),
    )


def _split(pts: np.ndarray, piece: float) -> np.ndarray:
    """The polyline with each leg longer than `piece` cut into equal pieces no longer than
    it: one cell jutting out of a wall then holds back only the piece beside it."""
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        n = max(int(np.ceil(np.hypot(*(b - a)) / piece)), 1) if piece > 0 else 1
        out.append(a + np.linspace(0.0, 1.0, n + 1)[1:, None] * (b - a))
    return np.vstack(out)


def _leg_shift(a, b, dist: WallDistance, clearance: float, max_shift: float) -> np.ndarray:
    """The translation (2,) of leg a-b towards the wall beside it: the largest amount from
    `max_shift` down to -`max_shift` (away from the wall: a leg that cuts a corner of a jagged
    wall) in steps of max_shift / `_STEPS` with every point of the moved leg `clearance` off
    the walls; none when no such amount exists."""
    u = (b - a) / np.hypot(*(b - a))
    left = np.array([-u[1], u[0]])
    s = _samples(a, b)
    vec = dist.towards(s)
    gap = np.hypot(vec[:, 0], vec[:, 1])
    # the wall is beside the leg where the way to it is more across the leg than along it
    beside = (gap > 1e-9) & (np.abs(vec @ u) < 0.5 * gap) & (gap < clearance + 2 * max_shift)
    if not beside.any():
        return np.zeros(2)
    side = float(np.sign(np.sum(vec[beside] @ left)))
    if side == 0.0:
        return np.zeros(2)
    n = side * left
    amounts = np.linspace(max_shift, -max_shift, 2 * _STEPS + 1)
    for batch in np.array_split(amounts, _BATCHES):  # a few calls: each has its overhead
        moved = s[None, :, :] + batch[:, None, None] * n
        fits = dist(moved.reshape(-1, 2)).reshape(len(batch), len(s)).min(axis=1)
        ok = np.flatnonzero(fits >= clearance - 1e-9)
        if len(ok):
            return batch[ok[0]] * n
    return np.zeros(2)


def _join(pts, steps, lengths, shifts) -> tuple[np.ndarray, np.ndarray]:
    """The polyline through the shifted legs, joined where consecutive shifted lines meet
    (within twice the larger shift of the original corner), else by both shifted ends.
    Returns it and, per leg of the result, the (old leg before, old leg after) it joins."""
    out = [pts[0] + shifts[0]]
    owner = []
    for k in range(1, len(pts) - 1):
        p0, p1 = pts[k] + shifts[k - 1], pts[k] + shifts[k]
        if np.allclose(shifts[k - 1], shifts[k]):
            out.append(p0)
            owner.append((k - 1, k - 1))
            continue
        u0 = steps[k - 1] / max(lengths[k - 1], 1e-12)
        u1 = steps[k] / max(lengths[k], 1e-12)
        cross = u0[0] * u1[1] - u0[1] * u1[0]
        meet = None
        if abs(cross) > 1e-6:
            r = p1 - p0
            t = (r[0] * u1[1] - r[1] * u1[0]) / cross
            q = p0 + t * u0
            limit = 2 * max(np.hypot(*shifts[k - 1]), np.hypot(*shifts[k]))
            if np.hypot(*(q - pts[k])) <= limit:
                meet = q
        if meet is not None:
            out.append(meet)
            owner.append((k - 1, k - 1))
        else:
            out += [p0, p1]
            owner += [(k - 1, k - 1), (k - 1, k)]
    out.append(pts[-1] + shifts[-1])
    owner.append((len(steps) - 1, len(steps) - 1))
    # owner[m] is for the result's leg m (out[m] to out[m + 1]): the leg that ends at a join
    # lies along the old leg before it; a bridge between two shifted ends belongs to both
    return np.asarray(out), np.asarray(owner, np.int64)


def side_wall(
    points,
    reach: float = 0.4,
    behind: float = 0.05,
    ahead: float = 0.3,
    min_points: int = 6,
    min_span: float = 0.12,
    max_rms: float = 0.012,
    max_slope: float = 0.35,
) -> tuple[float, float] | None:
    """The straight wall face beside a robot, from one scan's hits in the robot frame.

    points: (N, 2) hits (x ahead, y to the left, metres). On each side, the hits within `reach`
    of the centre line and from `behind` the centre to `ahead` of it are fitted with a line
    y = a + b x (least squares); a side counts when it has `min_points` hits spanning
    `min_span` along x, within `max_rms` of the line, and the line runs within `max_slope` of
    the heading. Returns (a, b) of the nearer such side, or None: no wall beside (open floor,
    a table leg, a corner, a wall across the way). Its distance from the centre is
    |a| / sqrt(1 + b^2), to a few mm from a dozen hits of 1-2 cm noise.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    near = (pts[:, 0] >= -behind) & (pts[:, 0] <= ahead) & (np.abs(pts[:, 1]) <= reach)
    best = None
    for sign in (1.0, -1.0):
        side = pts[near & (sign * pts[:, 1] > 0)]
        if len(side) < min_points or np.ptp(side[:, 0]) < min_span:
            continue
        b, a = np.polyfit(side[:, 0], side[:, 1], 1)
        if abs(b) > max_slope:
            continue
        resid = side[:, 1] - (a + b * side[:, 0])
        if np.sqrt(np.mean(resid**2)) > max_rms or np.sign(a) != sign:
            continue
        if best is None or abs(a) / math.hypot(1.0, b) < abs(best[0]) / math.hypot(1.0, best[1]):
            best = (float(a), float(b))
    return best
