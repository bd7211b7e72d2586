"""navigation.wall_hug: edge passes moved up to the walls, never closer than the clearance."""

from __future__ import annotations

import numpy as np
import pytest

from navigation.wall_hug import WallDistance, WallHits, hug_walls, side_wall

RES = 0.05


def brute_distance(points: np.ndarray, walls: np.ndarray, res: float = RES) -> np.ndarray:
    """Slow, obviously right: the distance from each point to every wall square, minimum."""
    ii, jj = np.nonzero(walls)
    lo = np.column_stack((jj * res, ii * res))
    hi = lo + res
    p = np.asarray(points, float)[:, None, :]
    gap = np.maximum(np.maximum(lo - p, p - hi), 0.0)
    return np.hypot(gap[..., 0], gap[..., 1]).min(axis=1)


def dense(poly: np.ndarray, step: float = 0.005) -> np.ndarray:
    out = []
    for a, b in zip(poly[:-1], poly[1:], strict=True):
        n = max(int(np.ceil(np.hypot(*(b - a)) / step)), 1)
        out.append(a + np.linspace(0, 1, n + 1)[:, None] * (b - a))
    return np.vstack(out)


@pytest.fixture
def room() -> np.ndarray:
    """A 3 x 2 m room (walls two cells thick) with a 0.5 m box (a cabinet) in the middle."""
    walls = np.zeros((40, 60), bool)
    walls[:2] = walls[-2:] = True
    walls[:, :2] = walls[:, -2:] = True
    walls[15:25, 25:35] = True  # x 1.25..1.75, y 0.75..1.25
    return walls


def test_distance_matches_brute_force(room):
    rng = np.random.default_rng(3)
    pts = rng.uniform([0, 0], [3, 2], size=(2000, 2))
    dist = WallDistance(room, RES, (0, 0), (0, 0), (3, 2), 1.0)
    np.testing.assert_allclose(dist(pts), brute_distance(pts, room), atol=1e-12)
    # the vector to the nearest wall point has that length
    vec = dist.towards(pts)
    np.testing.assert_allclose(np.hypot(*vec.T), brute_distance(pts, room), atol=1e-12)


def test_loop_along_the_walls_moves_out_to_the_clearance(room):
    c = 0.225  # where whole cells put the centres for a 0.18 m radius
    loop = np.array(
        [[0.1 + c, 0.1 + c], [2.9 - c, 0.1 + c], [2.9 - c, 1.9 - c], [0.1 + c, 1.9 - c]]
    )
    loop = np.vstack((loop, loop[:1]))
    out = hug_walls(loop, room, RES, (0, 0), clearance=0.18)
    d = brute_distance(dense(out), room)
    assert d.min() >= 0.18 - 1e-9
    # each leg now runs 0.18 m from its wall (it was 0.225 m)
    mids = (out[:-1] + out[1:]) / 2
    np.testing.assert_allclose(brute_distance(mids, room), 0.18, atol=1e-9)


def test_loop_around_a_box_keeps_the_clearance_at_convex_corners(room):
    c = 0.225
    box = np.array(
        [[1.25 - c, 0.75 - c], [1.75 + c, 0.75 - c], [1.75 + c, 1.25 + c], [1.25 - c, 1.25 + c]]
    )
    box = np.vstack((box, box[:1]))
    out = hug_walls(box, room, RES, (0, 0), clearance=0.18)
    d = brute_distance(dense(out), room)
    assert d.min() >= 0.18 - 1e-9
    # the middle of each side comes in to the clearance (the ends are held by the corners)
    for side in ([1.5, 0.75 - c], [1.75 + c, 1.0], [1.5, 1.25 + c], [1.25 - c, 1.0]):
        near = out[np.argmin(np.hypot(*(out - side).T))]
        assert brute_distance(near[None], room)[0] < 0.19


def test_a_leg_too_close_moves_out_and_one_held_in_stays(room):
    # a leg 0.12 m off the bottom wall moves out to the clearance
    line = np.array([[0.5, 0.22], [2.5, 0.22]])
    out = hug_walls(line, room, RES, (0, 0), clearance=0.18)
    np.testing.assert_allclose(out[:, 1], 0.28)
    # a leg 0.08 m off the wall would need more than max_shift: it stays
    line = np.array([[0.5, 0.18], [2.5, 0.18]])
    np.testing.assert_allclose(hug_walls(line, room, RES, (0, 0), clearance=0.18), line)


def test_no_walls_or_short_legs_leave_the_polyline():
    empty = np.zeros((20, 20), bool)
    line = np.array([[0.2, 0.2], [0.8, 0.2], [0.8, 0.8]])
    np.testing.assert_allclose(hug_walls(line, empty, RES, (0, 0), 0.18), line)
    walls = np.zeros((20, 20), bool)
    walls[0] = True
    short = np.array([[0.3, 0.3], [0.35, 0.3]])  # one leg under min_leg
    np.testing.assert_allclose(hug_walls(short, walls, RES, (0, 0), 0.18), short)
    one = np.array([[0.3, 0.3]])
    np.testing.assert_allclose(hug_walls(one, walls, RES, (0, 0), 0.18), one)


def test_random_maps_keep_the_clearance():
    """Random blobs, random polylines through the free space: whatever comes out keeps
    min(clearance, the input's own clearance) everywhere, and never strays past max_shift."""
    rng = np.random.default_rng(11)
    moved = 0
    for _ in range(40):
        walls = np.zeros((40, 40), bool)
        walls[:2] = walls[-2:] = True
        walls[:, :2] = walls[:, -2:] = True
        for _ in range(rng.integers(1, 5)):
            i, j = rng.integers(4, 34, size=2)
            h, w = rng.integers(1, 6, size=2)
            walls[i : i + h, j : j + w] = True
        pts = rng.uniform(0.3, 1.7, size=(rng.integers(2, 8), 2))
        before = brute_distance(dense(pts), walls).min()
        out = hug_walls(pts, walls, RES, (0, 0), clearance=0.18, max_shift=0.06)
        after = brute_distance(dense(out), walls).min()
        assert after >= min(0.18, before) - 1e-6
        # every output point lies within max_shift (twice at a join) of the input polyline
        seg_d = _to_polyline(out, pts)
        assert seg_d.max() <= 2 * 0.06 + 1e-9
        moved += not np.array_equal(out, pts)
    assert moved > 5


def _to_polyline(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b = poly[:-1], poly[1:]
    ab = b - a
    t = np.clip(
        np.einsum("qkd,kd->qk", q[:, None, :] - a[None], ab) / np.maximum((ab**2).sum(1), 1e-18),
        0,
        1,
    )
    near = a[None] + t[..., None] * ab[None]
    return np.hypot(*(q[:, None, :] - near).transpose(2, 0, 1)).min(axis=1)


def test_wall_hits_count_bins_and_ignore_single_hits():
    hits = WallHits(cell=0.01, min_count=2)
    hits.add([[0.105, 0.205], [0.105, 0.2049], [0.5, 0.5], [np.nan, 1.0]])
    hits.add([[-0.3, -0.7], [-0.3, -0.7]])
    pts = hits.points((-1, -1), (1, 1))
    np.testing.assert_allclose(np.sort(pts, axis=0), [[-0.295, -0.695], [0.105, 0.205]])
    assert len(hits) == 2
    assert len(hits.points((0, 0), (1, 1))) == 1
    # many scans: compaction keeps the counts
    for _ in range(30):
        hits.add(np.full((5000, 2), 0.5))
    assert len(hits) == 3


def _jagged_room():
    """A room whose bottom wall's face is at y = 0.1 but whose map marks, every other cell,
    the free cell in front of it too (as hits that fall on a cell border do)."""
    walls = np.zeros((40, 60), bool)
    walls[:2] = walls[-2:] = True
    walls[:, :2] = walls[:, -2:] = True
    walls[2, 4:56:2] = True  # jags: the face looks 5 cm nearer there
    return walls


def test_hits_place_the_face_the_cells_hide():
    walls = _jagged_room()
    line = np.array([[0.6, 0.375], [2.4, 0.375]])  # 0.225 m from the jags' edge (y = 0.15)
    by_cells = hug_walls(line, walls, RES, (0, 0), clearance=0.18)
    np.testing.assert_allclose(by_cells[:, 1], 0.33)  # 0.18 m from the jags' edge
    hits = WallHits()
    face = np.column_stack((np.arange(0.0, 3.0, 0.01), np.full(300, 0.1 + 0.004)))
    hits.add(face)
    hits.add(face)
    out = hug_walls(line, walls, RES, (0, 0), clearance=0.18, hits=hits, max_shift=0.12)
    d = WallDistance(walls, RES, (0, 0), (0, 0), (3, 2), 1.0, hits)(dense(out))
    assert d.min() >= 0.18 - 1e-9
    # the face is at y = 0.1 (hits 4 mm above it): the line comes down to ~0.285
    assert out[:, 1].max() < 0.3


def test_small_things_keep_their_cells_whatever_the_hits():
    walls = np.zeros((40, 60), bool)
    walls[:2] = True
    walls[20, 30] = True  # a table leg: x 1.5..1.55, y 1.0..1.05
    hits = WallHits()
    leg_top = np.array([[1.525, 1.049]] * 3)  # seen from above only
    hits.add(leg_top)
    dist = WallDistance(walls, RES, (0, 0), (0, 0), (3, 2), 1.0, hits)
    below = np.array([[1.525, 0.8]])
    # to the leg's lower edge, not to the hits, less the 2 cm kept off small things
    np.testing.assert_allclose(dist(below), 0.18)
    # a wall's cell holding hits is stood for by them
    walls[2, 10] = True  # a jag on the wall (y 0.1..0.15)
    hits.add([[0.525, 0.095]] * 3)
    near = WallDistance(walls, RES, (0, 0), (0, 0), (3, 2), 1.0, hits)
    np.testing.assert_allclose(near([[0.525, 0.4]]), 0.25)  # the jag counts: no hit in it
    hits.add([[0.525, 0.12]] * 3)
    near = WallDistance(walls, RES, (0, 0), (0, 0), (3, 2), 1.0, hits)
    np.testing.assert_allclose(near([[0.525, 0.4]]), 0.275)  # its hit (bin centre y 0.125)


def test_unknown_cells_beside_a_seen_face_give_way_only_with_soft():
    walls = np.zeros((40, 60), bool)
    walls[:2] = True
    unknown = np.zeros_like(walls)
    unknown[2, 20] = True  # an unseen cell in front of the face
    hits = WallHits()
    hits.add([[1.025, 0.095]] * 2)
    both = walls | unknown
    hard = WallDistance(both, RES, (0, 0), (0, 0), (3, 2), 1.0, hits)
    soft = WallDistance(both, RES, (0, 0), (0, 0), (3, 2), 1.0, hits, soft=unknown)
    marks = WallDistance(both, RES, (0, 0), (0, 0), (3, 2), 1.0, hits, faces=~walls)
    q = np.array([[1.025, 0.4]])
    np.testing.assert_allclose(hard(q), 0.25)
    np.testing.assert_allclose(marks(q), 0.25)  # cells that are not faces keep their squares
    # the unknown cell gives way to the hit's face; the wall cells beside the hit stay
    np.testing.assert_allclose(soft(q), np.hypot(0.025, 0.3))


def test_chords_keep_a_pursuit_cut_corner_clear(room):
    """Round a box's corner with legs cut at 45 deg: a robot steering 0.15 m ahead cuts the
    turns inside; with `chord` the chords' middles keep the clearance too."""
    c = 0.225
    corner = np.array([1.75 + c, 0.75 - c])  # below right of the box
    path = np.array(
        [
            corner + [-0.5, 0.0],
            corner + [-0.05, 0.0],
            corner + [0.0, 0.05],
            corner + [0.0, 0.5],
        ]
    )
    out = hug_walls(path, room, RES, (0, 0), clearance=0.18, chord=0.15)
    samples = dense(out, 0.01)
    m = 15
    mids = (samples[:-m] + samples[m:]) / 2
    before = brute_distance((dense(path, 0.01)[:-m] + dense(path, 0.01)[m:]) / 2, room).min()
    assert brute_distance(mids, room).min() >= min(0.18, before) - 1e-6


def _beside(y0: float, slope: float, xs, rng, noise: float = 0.01) -> np.ndarray:
    """Hits on the line y = y0 + slope * x (robot frame), each moved along its beam from the
    centre by range noise of `noise` m (sigma)."""
    xs = np.asarray(xs, np.float64)
    pts = np.column_stack((xs, y0 + slope * xs))
    r = np.hypot(pts[:, 0], pts[:, 1])[:, None]
    return pts * (1.0 + rng.normal(0.0, noise, (len(pts), 1)) / r)


def test_side_wall_gives_the_gap_to_a_few_mm_from_noisy_hits():
    """Twenty hits of 1 cm range noise on a wall 0.2 m to the left, turned 5 deg: the line
    says how far its face is, far closer than any single hit or map cell does."""
    rng = np.random.default_rng(2)
    errors = []
    for _ in range(50):
        slope = np.tan(np.radians(5))
        wall = side_wall(_beside(0.2, slope, np.linspace(-0.05, 0.3, 20), rng))
        assert wall is not None
        a, b = wall
        errors.append(abs(a) / np.hypot(1.0, b) - 0.2 / np.hypot(1.0, slope))
    assert np.median(np.abs(errors)) < 0.003 and np.percentile(np.abs(errors), 95) < 0.006
    # a wall on each side: the nearer one; on the right, a is negative
    both = np.vstack(
        (
            _beside(0.35, 0.0, np.linspace(0.0, 0.3, 15), rng),
            _beside(-0.19, 0.0, np.linspace(0.0, 0.3, 15), rng),
        )
    )
    a, _ = side_wall(both)
    assert a == pytest.approx(-0.19, abs=0.01)


def test_side_wall_sees_no_wall_in_a_leg_a_corner_or_a_wall_across():
    rng = np.random.default_rng(3)
    # a table leg beside the robot: a few hits, 4 cm along
    leg = np.column_stack((rng.uniform(0.05, 0.09, 8), rng.uniform(0.22, 0.24, 8)))
    assert side_wall(leg) is None
    # an inside corner: the wall beside, then one across the way ahead
    corner = np.vstack(
        (
            _beside(0.2, 0.0, np.linspace(-0.05, 0.15, 10), rng),
            np.column_stack((np.full(10, 0.2), np.linspace(0.0, 0.2, 10))),
        )
    )
    assert side_wall(corner) is None
    # a wall straight across, and nothing at all
    assert side_wall(np.column_stack((np.full(12, 0.25), np.linspace(-0.3, 0.3, 12)))) is None
    assert side_wall(np.zeros((0, 2))) is None
    # a wall beside but out of reach
    assert side_wall(_beside(0.45, 0.0, np.linspace(0.0, 0.3, 20), rng)) is None
