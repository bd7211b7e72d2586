import numpy as np
import pytest
import reference

from maps import GridConfig, OccupancyGrid, Pose, Scan, _kernels


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(6))
def test_integrate_rays_matches_reference(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 60, size=2)
    base = rng.uniform(-1, 1, size=(h, w)).astype(np.float32)
    start = np.array([rng.integers(0, h), rng.integers(0, w)], dtype=np.int64)
    n = int(rng.integers(1, 80))
    # some ends fall outside the grid on purpose
    ends = np.column_stack(
        (rng.integers(-5, h + 5, size=n), rng.integers(-5, w + 5, size=n))
    ).astype(np.int64)
    hit = rng.random(n) < 0.7
    args = (np.float32(-0.4), np.float32(0.85), np.float32(-2.0), np.float32(3.5))
    fast, slow = base.copy(), base.copy()
    counts_fast = _kernels.integrate_rays(fast, start, ends, hit, *args)
    counts_slow = reference.integrate_rays(slow, start, ends, hit, *args)
    np.testing.assert_array_equal(fast, slow)
    assert tuple(counts_fast) == counts_slow


@pytest.mark.kernel
def test_integrate_rays_clamps_and_updates_each_cell_once():
    lo = np.zeros((3, 30), np.float32)
    start = np.array([1, 0])
    ends = np.array([[1, 20]] * 50)  # 50 identical beams: one update, not 50
    _kernels.integrate_rays(lo, start, ends, np.ones(50, bool), -0.4, 0.85, -2.0, 3.5)
    assert lo[1, 5] == pytest.approx(-0.4)
    assert lo[1, 20] == pytest.approx(0.85)
    for _ in range(20):
        _kernels.integrate_rays(lo, start, ends, np.ones(50, bool), -0.4, 0.85, -2.0, 3.5)
    assert lo[1, 5] == pytest.approx(-2.0)
    assert lo[1, 20] == pytest.approx(3.5)


def ring_scan(radius=2.0, n=360, **kw):
    angles = np.linspace(-np.pi, np.pi, n, endpoint=False)
    return Scan(np.full(n, radius, np.float32), angles, 0.0, 0.15, 6.0, **kw)


def test_world_cell_round_trip():
    grid = OccupancyGrid.empty(4.0, 3.0, origin=(-1.0, 2.0))
    assert grid.shape == (60, 80)
    ij = grid.world_to_cell(np.array([[-1.0, 2.0], [-0.951, 2.049], [2.99, 4.99]]))
    assert ij.tolist() == [[0, 0], [0, 0], [59, 79]]
    centres = grid.cell_to_world(ij)
    np.testing.assert_allclose(grid.world_to_cell(centres), ij)
    assert grid.in_bounds(np.array([[0, 0], [60, 0], [-1, 3]])).tolist() == [True, False, False]


def test_integrate_marks_hits_occupied_and_inside_free():
    grid = OccupancyGrid.centred(0.0, 0.0, 8.0)
    grid.integrate(Pose(0.1, -0.2, 0.3), ring_scan(2.0))
    prob = grid.probability()
    # the wall ring at 2 m is occupied, the inside free, beyond it unknown
    for ang in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        wall = grid.world_to_cell(np.array([[0.1 + 2.0 * np.cos(ang), -0.2 + 2.0 * np.sin(ang)]]))
        i, j = wall[0]
        assert prob[i - 1 : i + 2, j - 1 : j + 2].max() > 0.6
        inside = grid.world_to_cell(np.array([[0.1 + np.cos(ang), -0.2 + np.sin(ang)]]))[0]
        assert prob[inside[0], inside[1]] < 0.45
        outside = grid.world_to_cell(np.array([[0.1 + 3.0 * np.cos(ang), -0.2 + 3 * np.sin(ang)]]))
        assert prob[outside[0, 0], outside[0, 1]] == pytest.approx(0.5)


def test_no_return_beams_clear_up_to_the_cap_and_never_mark_occupied():
    cfg = GridConfig(no_return_cap=1.5)
    grid = OccupancyGrid.centred(0.0, 0.0, 10.0, config=cfg)
    scan = Scan(np.full(90, np.inf, np.float32), np.linspace(0, np.pi / 2, 90), 0.0, 0.15, 6.0)
    n_free, n_occ = grid.integrate(Pose(), scan)
    assert n_occ == 0 and n_free > 0
    assert (grid.log_odds <= 0).all()
    assert (
        grid.log_odds[
            grid.world_to_cell(np.array([[1.0, 1.0]]))[0].tolist()[0],
            grid.world_to_cell(np.array([[1.0, 1.0]]))[0].tolist()[1],
        ]
        < 0
    )
    far = grid.world_to_cell(np.array([[1.4, 1.4]]))[0]  # 1.98 m away: beyond the cap
    assert grid.log_odds[far[0], far[1]] == 0


def test_grid_grows_when_a_scan_reaches_past_the_edge_and_keeps_old_cells():
    grid = OccupancyGrid.centred(0.0, 0.0, 2.0)
    grid.integrate(Pose(), ring_scan(0.5))
    before = grid.probability()
    old_origin, old_shape = grid.origin, grid.shape
    marked = grid.cell_to_world(np.argwhere(before > 0.6))
    grid.integrate(Pose(0.0, 0.0, 0.0), ring_scan(4.0, n=36))
    assert grid.shape[0] > old_shape[0] and grid.shape[1] > old_shape[1]
    assert grid.origin[0] < old_origin[0] and grid.origin[1] < old_origin[1]
    # cells keep their world positions: the old hits are still occupied where they were
    ij = grid.world_to_cell(marked)
    assert (grid.probability()[ij[:, 0], ij[:, 1]] > 0.6).mean() > 0.9
    xmin, ymin, xmax, ymax = grid.bounds
    assert xmin <= -4.0 and ymin <= -4.0 and xmax >= 4.0 and ymax >= 4.0
    # the origin stays on the cell lattice of the first grid
    shift = (np.array(grid.origin) - np.array(old_origin)) / grid.resolution
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-9)


def test_grid_config_rejects_nonsense():
    with pytest.raises(ValueError, match="resolution"):
        GridConfig(resolution=0.0)
    with pytest.raises(ValueError, match="l_free"):
        GridConfig(l_free=0.3)
    with pytest.raises(ValueError, match="2-D"):
        OccupancyGrid(np.zeros(5), 0.05, (0, 0))
