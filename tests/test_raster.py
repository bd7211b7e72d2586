"""maps.raster.cast_rays (numba DDA) against the slow marching twin in tests/reference.py."""

from __future__ import annotations

import numpy as np
import pytest
import reference

from maps import _kernels
from maps.raster import cast_rays


def random_case(seed: int):
    """A small random raster and random beams: origins mostly inside (some in blocked cells,
    some outside the raster), angles random plus the axis directions."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(4, 24, size=2))
    resolution = float(rng.choice([0.05, 0.1, 1.0]))
    blocked = rng.random((h, w)) < rng.uniform(0.05, 0.35)
    n = 40
    ox = rng.uniform(-0.2 * w, 1.2 * w, n) * resolution
    oy = rng.uniform(-0.2 * h, 1.2 * h, n) * resolution
    angles = rng.uniform(-np.pi, np.pi, n)
    angles[:8] = np.arange(8) * np.pi / 4  # axis-aligned and diagonal beams
    max_range = float(rng.uniform(0.3, 1.5) * max(h, w) * resolution)
    return blocked, ox, oy, angles, max_range, resolution


def assert_same_ranges(fast: np.ndarray, slow: np.ndarray, resolution: float) -> None:
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(slow))
    finite = np.isfinite(fast)
    # the twin lists the grid-line crossings exactly: the two agree to rounding
    np.testing.assert_allclose(fast[finite], slow[finite], rtol=0, atol=1e-9)


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(30))
def test_cast_rays_kernel_matches_reference(seed):
    blocked, ox, oy, angles, max_range, resolution = random_case(seed)
    fast = _kernels.cast_rays(blocked, ox, oy, angles, max_range, resolution)
    slow = reference.cast_rays(blocked, ox, oy, angles, max_range, resolution)
    assert fast.dtype == np.float64 and fast.shape == angles.shape
    assert_same_ranges(fast, slow, resolution)


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(4))
def test_cast_rays_wrapper_with_origin_matches_reference(seed):
    blocked, ox, oy, angles, max_range, resolution = random_case(100 + seed)
    origin = (-1.25, 3.5)
    fast = cast_rays(blocked, resolution, origin, ox + origin[0], oy + origin[1], angles, max_range)
    slow = reference.cast_rays(blocked, ox, oy, angles, max_range, resolution)
    assert_same_ranges(fast, slow, resolution)


@pytest.mark.kernel
def test_cast_rays_edge_cases():
    blocked = np.zeros((10, 10), bool)
    blocked[:, 7] = True  # a wall: the column x in [0.7, 0.8) at resolution 0.1
    blocked[2, 2] = True
    res = 0.1
    xs = np.array([0.15, 0.25, 0.15, 0.15, 0.15, -0.5, 0.15])
    ys = np.array([0.55, 0.25, 0.55, 0.55, 0.55, 0.5, 0.55])
    angles = np.array([0.0, 0.3, np.pi, np.pi / 2, 0.0, 0.0, 0.0])
    max_range = np.array([1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0.55])
    out = [
        cast_rays(
            blocked, res, (0.0, 0.0), xs[k : k + 1], ys[k : k + 1], angles[k : k + 1], max_range[k]
        )[0]
        for k in range(len(xs))
    ]
    assert out[0] == pytest.approx(0.55)  # straight to the wall
    assert out[1] == 0.0  # starts in a blocked cell
    assert np.isinf(out[2])  # leaves the raster on the left
    assert np.isinf(out[3])  # leaves the raster at the top
    assert np.isinf(out[4])  # the wall is beyond max_range
    assert np.isinf(out[5])  # the origin is outside the raster
    assert out[6] == pytest.approx(0.55)  # exactly at max_range still counts
