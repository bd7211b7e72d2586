import numpy as np
import pytest

from maps import Pose, Scan


def make_scan(ranges, **kw):
    angles = np.linspace(0, 2 * np.pi, len(ranges), endpoint=False)
    return Scan(np.asarray(ranges, np.float32), angles, 1.5, **kw)


def test_hits_no_returns_and_too_close_are_kept_apart():
    scan = make_scan([1.0, np.inf, 0.05, 6.0, 7.5, 2.0], range_min=0.15, range_max=6.0)
    assert scan.hit_mask.tolist() == [True, False, False, False, False, True]
    # at or beyond range_max means "no return", never an obstacle
    assert scan.no_return_mask.tolist() == [False, True, False, True, True, False]
    assert scan.points().shape == (2, 2)


def test_endpoints_use_pose_and_sensor_offset():
    scan = Scan(
        np.array([1.0], np.float32), np.array([0.0], np.float32), 0.0, sensor=Pose(-0.04, 0.0, 0.0)
    )
    end = scan.endpoints(Pose(2.0, 1.0, np.pi / 2))
    np.testing.assert_allclose(end, [[2.0, 1.96]], atol=1e-6)


@pytest.mark.parametrize(
    "ranges, message",
    [([1.0, np.nan], "NaN"), ([1.0, -0.5], "negative")],
)
def test_bad_ranges_are_rejected_with_a_clear_message(ranges, message):
    with pytest.raises(ValueError, match=message):
        make_scan(ranges)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="expected"):
        Scan(np.ones(3, np.float32), np.zeros(4, np.float32), 0.0)


def box_range(x, y, direction, half_w=2.0, half_h=1.5):
    """Distance from (x, y) inside a box [-half_w, half_w] x [-half_h, half_h] along direction."""
    c, s = np.cos(direction), np.sin(direction)
    with np.errstate(divide="ignore"):
        tx = np.where(c > 0, (half_w - x) / c, (-half_w - x) / c)
        ty = np.where(s > 0, (half_h - y) / s, (-half_h - y) / s)
    return np.minimum(np.abs(tx), np.abs(ty))


def off_box(points, half_w=2.0, half_h=1.5):
    """Distance of each (N, 2) point from the box outline."""
    dx = np.abs(np.abs(points[:, 0]) - half_w)
    dy = np.abs(np.abs(points[:, 1]) - half_h)
    return np.minimum(dx, dy)


@pytest.mark.parametrize("v, w", [(0.0, 1.5), (0.3, 0.0), (0.25, -1.0)])
def test_deskew_undoes_the_motion_during_a_revolution(v, w):
    n, duration = 360, 0.2
    t = np.linspace(0.0, duration, n)
    angles = np.linspace(-np.pi, np.pi, n, endpoint=False)
    th = w * t
    if w == 0:
        x, y = v * t, 0 * t
    else:
        x, y = v * np.sin(th) / w, v * (1 - np.cos(th)) / w
    ranges = box_range(x, y, th + angles).astype(np.float32)
    scan = Scan(ranges, angles, 3.0, 0.1, 8.0, duration=duration)
    assert off_box(scan.points()).max() > 0.02  # taken as if instantaneous, the walls smear
    fixed = scan.deskewed(v, w)
    assert fixed.duration == 0.0 and fixed.stamp == scan.stamp
    assert off_box(fixed.points()).max() < 1e-4


def test_deskew_is_a_no_op_for_an_instant_scan():
    scan = make_scan([1.0, 2.0, 3.0])
    assert scan.deskewed(0.3, 1.0) is scan
