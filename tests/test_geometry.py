import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maps import Pose, wrap_angle

finite = st.floats(-50, 50, allow_nan=False)
angles = st.floats(-20, 20, allow_nan=False)
poses = st.builds(Pose, finite, finite, angles)


def close(a: Pose, b: Pose, tol: float = 1e-9) -> bool:
    return (
        abs(a.x - b.x) < tol and abs(a.y - b.y) < tol and abs(wrap_angle(a.theta - b.theta)) < tol
    )


def test_wrap_angle_range_and_pi_end():
    assert wrap_angle(math.pi) == pytest.approx(math.pi)
    assert wrap_angle(-math.pi) == pytest.approx(math.pi)
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    a = wrap_angle(np.linspace(-30, 30, 1001))
    assert a.min() > -math.pi and a.max() <= math.pi
    np.testing.assert_allclose(np.sin(a), np.sin(np.linspace(-30, 30, 1001)), atol=1e-12)


def test_compose_known_case():
    a = Pose(1.0, 2.0, math.pi / 2)
    b = Pose(1.0, 0.0, 0.0)
    c = a.compose(b)
    assert close(c, Pose(1.0, 3.0, math.pi / 2))


@given(poses, poses, poses)
def test_compose_is_associative(a, b, c):
    assert close(a.compose(b).compose(c), a.compose(b.compose(c)), 1e-6)


@given(poses)
def test_inverse_gives_identity(a):
    assert close(a.compose(a.inverse()), Pose(), 1e-9)
    assert close(a.inverse().compose(a), Pose(), 1e-9)


@given(poses, poses)
def test_between_recovers_relative_motion(a, b):
    assert close(a.compose(a.between(b)), b, 1e-6)


def test_transform_points_matches_compose():
    rng = np.random.default_rng(1)
    pose = Pose(0.5, -1.2, 2.3)
    pts = rng.normal(size=(20, 2))
    out = pose.transform_points(pts)
    for p, q in zip(pts, out, strict=True):
        expected = pose.compose(Pose(p[0], p[1], 0.0))
        assert q == pytest.approx([expected.x, expected.y])


def test_pose_rejects_non_finite_and_bad_shapes():
    with pytest.raises(ValueError, match="finite"):
        Pose(float("nan"), 0.0, 0.0)
    with pytest.raises(ValueError, match="N, 2"):
        Pose().transform_points(np.zeros((3, 3)))


def test_array_round_trip():
    p = Pose(1.0, 2.0, -3.0)
    assert Pose.from_array(p.as_array()) == p
