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
