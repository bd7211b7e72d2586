"""Costmap: inflation values against Nav2's formula and a brute-force distance, incremental
updates against full rebuilds, restrictions, the obstacle memory, and bad input."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import pytest

from firmware_bridge.world import World
from maps.grid import OccupancyGrid
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument, Obstacle, Restrictions
from navigation.costmap import (
    INSCRIBED,
    LETHAL,
    Costmap,
    CostmapConfig,
    check_polygon,
    rasterize_restrictions,
)
from navigation.coverage import CoverageConfig
from navigation.relocalize_bench import map_from_world

RES = 0.05


def doc_of(states: np.ndarray, **kwargs) -> MapDocument:
    return MapDocument.from_cells(states, RES, (0.0, 0.0), **kwargs)


def random_states(rng: np.random.Generator, h: int, w: int, specks: float = 0.01) -> np.ndarray:
    """Rooms with wall blobs, unknown blobs and single-cell specks (that share of the cells)."""
    states = np.full((h, w), FREE, np.int8)
    for _ in range(rng.integers(2, 6)):
        i, j = rng.integers(0, h), rng.integers(0, w)
        a, b = rng.integers(1, 8, size=2)
        states[max(i - a, 0) : i + a, max(j - b, 0) : j + b] = OCCUPIED
    for _ in range(rng.integers(0, 3)):
        i, j = rng.integers(0, h), rng.integers(0, w)
        states[max(i - 4, 0) : i + 4, max(j - 6, 0) : j + 6] = UNKNOWN
    states[rng.random((h, w)) < specks] = OCCUPIED
    states[0, 0] = FREE  # never an all-blocked map
    return states


def brute_force_costs(
    lethal: np.ndarray, unknown: np.ndarray, config: CostmapConfig, res: float
) -> np.ndarray:
    """Costs from the definition: nearest source by exhaustive search, Nav2's formula on the
    edge distance, unknown kept as 255 (or 253 when the body would overlap a lethal cell)."""
    h, w = lethal.shape
    src = lethal | (unknown & config.unknown_is_obstacle)
    si, sj = np.nonzero(src)
    if config.unknown_is_obstacle:  # beyond the raster counts as unknown
        ring_i = np.r_[
            np.full(w + 2, -1), np.full(w + 2, h), np.arange(-1, h + 1), np.arange(-1, h + 1)
        ]
        ring_j = np.r_[
            np.arange(-1, w + 1), np.arange(-1, w + 1), np.full(h + 2, -1), np.full(h + 2, w)
        ]
        si, sj = np.r_[si, ring_i], np.r_[sj, ring_j]
    out = np.zeros((h, w), np.uint8)
    for i in range(h):
        for j in range(w):
            d2 = int(np.min((si - i) ** 2 + (sj - j) ** 2)) if si.size else 10**9
            edge = (math.sqrt(d2) - 0.5) * res
            if d2 == 0:
                cost = LETHAL
            elif edge < config.robot_radius:
                cost = INSCRIBED
            elif edge <= config.inflation_radius:
                x = 252.0 * math.exp(-config.cost_scaling_factor * (edge - config.robot_radius))
                cost = min(int(x), 252)
            else:
                cost = 0
            if lethal[i, j]:
                cost = LETHAL
            elif unknown[i, j] and (config.unknown_is_obstacle or cost < INSCRIBED):
                cost = 255
            out[i, j] = cost
    return out


# ------------------------------------------------------------------ inflation values
def test_inflation_values_around_one_obstacle_follow_nav2():
    states = np.full((61, 61), FREE, np.int8)  # beyond the raster (unknown) is 30 cells away
    states[30, 30] = OCCUPIED
    cfg = CostmapConfig(robot_radius=0.17, inflation_radius=0.55, cost_scaling_factor=10.0)
    cm = Costmap.from_map(doc_of(states), config=cfg)
    c = cm.costs
    assert c[30, 30] == LETHAL
    # edge distance (d - 0.5) * 0.05 < 0.17 m up to d = 3.8 cells: inscribed
    assert c[30, 33] == INSCRIBED and c[33, 32] == INSCRIBED  # d = 3, sqrt(13) = 3.61
    assert c[30, 34] == 239  # d = 4: edge 0.175 m, 252 exp(-10 * 0.005) = 239.7
    assert c[30, 36] == int(252 * math.exp(-10 * (0.275 - 0.17)))  # 88
    assert c[30, 41] == 7  # edge 0.525 m <= 0.55 m: 252 exp(-3.55) = 7.2
    assert c[30, 42] == 0  # edge 0.575 m > 0.55 m
    assert c[38, 38] == int(252 * math.exp(-10 * ((8 * math.sqrt(2) - 0.5) * RES - 0.17)))
    # the frame: beyond the raster is unknown, so border cells are inscribed
    assert c[0, 30] == INSCRIBED and c[30, 60] == INSCRIBED
    # symmetric about the obstacle
    np.testing.assert_array_equal(c, c[::-1, :])
    np.testing.assert_array_equal(c, c[:, ::-1])
    np.testing.assert_array_equal(c, c.T)


@pytest.mark.parametrize("unknown_is_obstacle", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_costs_equal_brute_force_definition(seed, unknown_is_obstacle):
    rng = np.random.default_rng(seed)
    states = random_states(rng, 30, 37)
    cfg = CostmapConfig(
        robot_radius=float(rng.uniform(0.0, 0.25)),
        inflation_radius=0.4,
        cost_scaling_factor=float(rng.uniform(2, 15)),
        unknown_is_obstacle=unknown_is_obstacle,
    )
    cm = Costmap.from_map(doc_of(states), config=cfg)
    expected = brute_force_costs(states == OCCUPIED, states == UNKNOWN, cfg, RES)
    np.testing.assert_array_equal(cm.costs, expected)


def test_enterable_cells_are_where_coverage_puts_the_robot_centre():
    """The planner's free space (cost <= 252) is navigation.coverage's: the body's edge clears
    every non-free cell by the robot radius."""
    world = World.default()
    cm = Costmap.from_map(map_from_world(world))
    free = ~(world.walls | world.outside)
    dist = cv2.distanceTransform(
        np.pad(free.astype(np.uint8), 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    )[1:-1, 1:-1]
    centre_ok = (dist - 0.5) * world.resolution >= CoverageConfig().robot_radius
    np.testing.assert_array_equal(cm.costs <= 252, centre_ok)
    assert cm.config.robot_radius == CoverageConfig().robot_radius


def test_occupancy_grid_thresholds_decide_the_layers():
    lo = np.zeros((10, 12), np.float32)  # unknown
    lo[:, :6] = -2.0  # free
    lo[5, 3] = 3.5  # occupied
    lo[2, 2] = 0.5  # p = 0.62: neither free nor occupied -> unknown
    cm = Costmap.from_map(OccupancyGrid(lo, RES, (1.0, -2.0)))
    assert cm.static.sum() == 1 and cm.static[5, 3]
    assert cm.unknown[2, 2] and cm.unknown[:, 6:].all()
    assert cm.costs[5, 3] == LETHAL and cm.costs[0, 11] == 255
    assert cm.origin == (1.0, -2.0)
    np.testing.assert_allclose(cm.cell_to_world([[0, 0]]), [[1.025, -1.975]])
    np.testing.assert_array_equal(cm.world_to_cell([[1.025, -1.975]]), [[0, 0]])


# ------------------------------------------------------------------ incremental updates
@pytest.mark.parametrize("seed", range(6))
def test_incremental_obstacles_equal_a_full_rebuild(seed):
    rng = np.random.default_rng(100 + seed)
    h, w = 60, 75
    states = random_states(rng, h, w, specks=0.01 if seed < 2 else 0.0)  # sparse: long reaches
    cfg = CostmapConfig(unknown_is_obstacle=bool(seed % 2))
    cm = Costmap.from_map(doc_of(states), config=cfg)
    added: list[Obstacle] = []
    for step in range(5):
        # single bumps and batches, some at the map edge
        batch = [
            Obstacle(
                float(rng.uniform(-0.02, w * RES)),
                float(rng.uniform(-0.02, h * RES)),
                source="bumper",
            )
            for _ in range(int(rng.integers(1, 4)))
        ]
        if step == 2:
            batch.append(Obstacle(w * RES - 0.01, 0.01, source="cliff"))
        before = cm.costs.copy()
        window = cm.add_obstacles(batch)
        added += batch
        # a costmap built in one go with all the obstacles so far
        full = Costmap.from_map(doc_of(states, obstacles=list(added)), config=cfg)
        np.testing.assert_array_equal(cm.costs, full.costs)
        np.testing.assert_array_equal(cm.obstacles, full.obstacles)
        if window is not None:
            outside = np.ones((h, w), bool)
            outside[window] = False
            np.testing.assert_array_equal(cm.costs[outside], before[outside])
    assert cm.obstacles.any()
    incremental = cm.costs.copy()
    cm.rebuild()
    np.testing.assert_array_equal(cm.costs, incremental)


def test_incremental_update_recomputes_only_a_window():
    world = World.default()
    cm = Costmap.from_map(map_from_world(world))
    window = cm.add_obstacles([(world.start.x + 1.0, world.start.y + 1.0)])
    assert window is not None
    rows, cols = window
    reach = math.ceil(cm.config.inflation_radius / RES + 0.5)
    assert rows.stop - rows.start <= 2 * reach + 3
    assert cols.stop - cols.start <= 2 * reach + 3
    # the same point again changes nothing
    assert cm.add_obstacles([(world.start.x + 1.0, world.start.y + 1.0)]) is None


def test_obstacle_marks_a_disc_and_its_own_cell():
    states = np.full((40, 40), FREE, np.int8)
    cm = Costmap.from_map(doc_of(states), config=CostmapConfig(obstacle_radius=0.1))
    cm.add_obstacles([Obstacle(1.0, 1.0)])  # a cell corner: cells 18..21 around it
    ii, jj = np.nonzero(cm.obstacles)
    centres = cm.cell_to_world(np.column_stack((ii, jj)))
    assert np.all(np.hypot(centres[:, 0] - 1.0, centres[:, 1] - 1.0) <= 0.1 + 1e-12)
    assert len(ii) == 12  # centres within 2 cells of a corner: 4 + 8
    cm2 = Costmap.from_map(doc_of(states), config=CostmapConfig(obstacle_radius=0.0))
    cm2.add_obstacles([(0.512, 0.733)])
    assert np.argwhere(cm2.obstacles).tolist() == [[14, 10]]


def test_obstacles_of_a_document_and_extra_ones_are_used():
    states = np.full((30, 30), FREE, np.int8)
    doc = doc_of(states, obstacles=[Obstacle(0.525, 0.525, source="bumper")])
    cm = Costmap.from_map(doc, obstacles=[Obstacle(1.025, 1.225, source="cliff")])
    assert cm.obstacles[10, 10] and cm.obstacles[24, 20]
    assert cm.costs[10, 10] == LETHAL and cm.costs[24, 20] == LETHAL


def test_obstacle_outside_the_map_is_skipped_and_logged(caplog):
    cm = Costmap.from_map(doc_of(np.full((20, 20), FREE, np.int8)))
    with caplog.at_level(logging.WARNING, logger="navigation.costmap"):
        assert cm.add_obstacles([(5.0, 5.0), (-0.3, 0.2)]) is None
    assert "2 obstacle point(s) outside" in caplog.text
    assert not cm.obstacles.any()


# ------------------------------------------------------------------ restrictions
def test_no_go_zone_is_lethal_and_the_body_keeps_out():
    states = np.full((60, 60), FREE, np.int8)
    zone = np.array([[1.0, 1.0], [2.0, 1.0], [2.0, 1.6], [1.0, 1.6]])
    cm = Costmap.from_map(doc_of(states, restrictions=Restrictions(no_go=[zone])))
    centres = cm.cell_to_world(np.argwhere(np.ones(cm.shape, bool)))
    inside = (
        (centres[:, 0] > 1.0)
        & (centres[:, 0] < 2.0)
        & (centres[:, 1] > 1.0)
        & (centres[:, 1] < 1.6)
    ).reshape(cm.shape)
    assert np.all(cm.costs[inside] == LETHAL)
    assert cm.keepout[inside].all()
    # every enterable cell centre is >= robot radius from the zone rectangle
    ok = (cm.costs <= 252).ravel()
    dx = np.maximum(np.maximum(1.0 - centres[:, 0], centres[:, 0] - 2.0), 0)
    dy = np.maximum(np.maximum(1.0 - centres[:, 1], centres[:, 1] - 1.6), 0)
    assert np.all(np.hypot(dx, dy)[ok] >= cm.config.robot_radius - RES / 2)
    # far from the zone nothing changed
    assert cm.costs[45, 12] == 0


def test_restrictions_argument_adds_to_the_document():
    states = np.full((40, 40), FREE, np.int8)
    wall = np.array([[0.0, 1.0], [2.0, 1.0]])
    doc = doc_of(states, restrictions=Restrictions(virtual_walls=[wall]))
    extra = Restrictions(no_go=[np.array([[1.5, 0.2], [1.8, 0.2], [1.8, 0.4]])])
    cm = Costmap.from_map(doc, restrictions=extra)
    assert cm.keepout[19:21, :].any(axis=0).all()  # the wall along y = 1.0, rows 19 | 20
    assert cm.keepout[5, 33]
    # no-mop zones do not restrict a vacuum
    mop = Restrictions(no_mop=[np.array([[0.2, 0.2], [0.6, 0.2], [0.6, 0.6]])])
    assert not Costmap.from_map(doc_of(states), restrictions=mop).keepout.any()


def test_diagonal_virtual_wall_has_no_diagonal_gap():
    # walls across the whole 3.5 x 2.5 m raster at awkward slopes
    walls = [np.array([[0.0, 0.0], [3.5, 2.5]]), np.array([[0.0, 2.5], [2.4, -0.1]])]
    for wall in walls:
        single = rasterize_restrictions(
            Restrictions(virtual_walls=[wall]), (50, 70), RES, (0.0, 0.0)
        )
        # 4-connected lines: an 8-connected flood of the other cells cannot cross them
        n, _ = cv2.connectedComponents((~single).astype(np.uint8), connectivity=8)
        assert n - 1 == 2, "an 8-connected flood crossed the wall"


def test_self_crossing_no_go_zone_is_refused_with_its_index():
    bow_tie = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    states = np.full((40, 40), FREE, np.int8)
    with pytest.raises(ValueError, match=r"no-go zone 1 crosses itself: edge 0 .* meets edge 2"):
        Costmap.from_map(doc_of(states, restrictions=Restrictions(no_go=[square, bow_tie])))


@pytest.mark.parametrize(
    "polygon, message",
    [
        ([[0, 0], [1, 0], [1, 1], [0.5, -0.5]], "crosses itself"),  # edges 0 and 2 cross
        ([[0, 0], [2, 0], [1, 0], [1, 1]], "fold back"),  # a spike back along an edge
        ([[0, 0], [1, 1], [2, 2]], "collinear"),
        ([[0, 0], [1, 1], [1, 1], [0, 0]], "at least 3 distinct"),
        ([[0, 0], [1, 0], [np.nan, 1]], "non-finite"),
        ([[0, 0, 0], [1, 0, 0], [1, 1, 0]], r"expected \(K, 2\)"),
        ("zone", r"expected \(K, 2\)"),
        ([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0]], "crosses itself"),  # touches edge 0
    ],
)
def test_bad_polygons_are_refused(polygon, message):
    with pytest.raises(ValueError, match=message):
        check_polygon(polygon, "no-go zone 0")


def test_good_polygons_pass_and_lose_a_closing_vertex():
    closed = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    assert check_polygon(closed).shape == (4, 2)
    concave = [[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]]
    assert check_polygon(concave).shape == (8, 2)


def test_bad_virtual_wall_is_refused():
    states = np.full((20, 20), FREE, np.int8)
    for wall, message in (
        (np.array([[0.0, 0.0]]), "virtual wall 0: expected"),
        (np.array([[0.0, 0.0], [np.inf, 1.0]]), "virtual wall 0: non-finite"),
    ):
        with pytest.raises(ValueError, match=message):
            Costmap.from_map(doc_of(states, restrictions=Restrictions(virtual_walls=[wall])))


# ------------------------------------------------------------------ bad maps
@pytest.mark.parametrize(
    "source",
    [np.zeros((10, 10)), "map.png", None, World.default],
    ids=["array", "str", "none", "world"],
)
def test_map_of_a_wrong_kind_is_refused(source):
    with pytest.raises(
        TypeError, match="expected a maps.grid.OccupancyGrid or a maps.model.MapDocument"
    ):
        Costmap.from_map(source() if callable(source) else source)


@pytest.mark.parametrize("fill", [OCCUPIED, UNKNOWN])
def test_map_without_free_space_is_refused(fill):
    with pytest.raises(ValueError, match="no free cell"):
        Costmap.from_map(doc_of(np.full((15, 20), fill, np.int8)))


def test_non_finite_grid_is_refused():
    lo = np.full((8, 8), -2.0, np.float32)
    lo[3, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite log-odds cells .first at row 3, column 4"):
        Costmap.from_map(OccupancyGrid(lo, RES, (0.0, 0.0)))


def test_bad_arguments_are_refused():
    doc = doc_of(np.full((10, 10), FREE, np.int8))
    with pytest.raises(TypeError, match="restrictions must be a maps.model.Restrictions"):
        Costmap.from_map(doc, restrictions=[np.zeros((3, 2))])
    cm = Costmap.from_map(doc)
    with pytest.raises(ValueError, match="obstacle position must be finite"):
        cm.add_obstacles([(np.nan, 0.0)])
    with pytest.raises(TypeError, match="expected a maps.model.Obstacle or an"):
        cm.add_obstacles([3.0])
    with pytest.raises(ValueError, match="inflation_radius .* must be >= robot_radius"):
        CostmapConfig(robot_radius=0.3, inflation_radius=0.2)
    with pytest.raises(ValueError, match="cost_scaling_factor must be a finite number"):
        CostmapConfig(cost_scaling_factor=-1.0)
    with pytest.raises(ValueError, match="same-size 2-D rasters"):
        Costmap(np.zeros((3, 3), bool), np.zeros((3, 4), bool), RES, (0.0, 0.0))
    with pytest.raises(ValueError, match="resolution must be"):
        Costmap(np.zeros((3, 3), bool), np.zeros((3, 3), bool), 0.0, (0.0, 0.0))


def test_describe_names_what_blocks_a_cell():
    states = np.full((40, 40), FREE, np.int8)
    states[0, :] = OCCUPIED
    states[30:, 30:] = UNKNOWN
    zone = np.array([[1.0, 0.5], [1.4, 0.5], [1.4, 0.9]])
    doc = doc_of(states, restrictions=Restrictions(no_go=[zone]))
    cm = Costmap.from_map(doc, obstacles=[Obstacle(0.325, 1.525)])
    assert "wall" in cm.describe(0, 5)
    assert "unknown" in cm.describe(35, 35)
    assert "no-go" in cm.describe(*cm.world_to_cell([[1.3, 0.6]])[0])
    assert "remembered obstacle" in cm.describe(30, 6)
    assert "robot radius" in cm.describe(2, 5)
    assert cm.describe(20, 15).startswith("free")
    assert "outside" in cm.describe(-1, 0)


# ------------------------------------------------------------------ tight passages
def door_states(width: int) -> np.ndarray:
    """Two 1.5 m rooms either side of a wall (columns 30-31) with a door `width` cells wide."""
    states = np.full((40, 62), FREE, np.int8)
    states[:, 30:32] = OCCUPIED
    states[15 : 15 + width, 30:32] = FREE
    return states


def test_a_tight_passage_is_enterable_down_to_its_radius_and_costs_the_most():
    """A 7-cell door (0.35 m): the centre line's edge distance is 0.175 m, under a 0.18 m
    robot radius (inscribed) and over the 0.17 m body. Allowed as tight, that line costs
    252 and nothing else changes; its neighbours (0.125 m) stay inscribed."""
    cm = Costmap.from_map(doc_of(door_states(7)), config=CostmapConfig(robot_radius=0.18))
    before = cm.costs.copy()
    assert (before[18, 30:32] == INSCRIBED).all()
    cells = np.zeros(cm.shape, bool)
    cells[15:22, 20:42] = True  # the door and a stretch either side of it
    cm.allow_tight(cells, 0.17)
    changed = cm.costs != before
    assert (cm.costs[changed] == 252).all()
    rows, cols = np.nonzero(changed)
    assert set(rows) == {18}  # the centre line only
    assert cm.costs[17, 30] == INSCRIBED and cm.costs[19, 30] == INSCRIBED
    # the rooms are joined now
    n, parts = cv2.connectedComponents((cm.costs <= 252).view(np.uint8), connectivity=4)
    assert parts[18, 10] == parts[18, 50] != 0
    # an obstacle marked later in the door closes it again, and a full rebuild agrees
    cm.add_obstacles([(1.55, 0.925)])
    assert (cm.costs[18, 30:32] >= INSCRIBED).all()
    incremental = cm.costs.copy()
    cm.rebuild()
    np.testing.assert_array_equal(cm.costs, incremental)
    # a 6-cell door leaves 0.125 m: not even the body fits
    narrow = Costmap.from_map(doc_of(door_states(6)), config=CostmapConfig(robot_radius=0.18))
    narrow.allow_tight(cells, 0.17)
    assert (narrow.costs[15:21, 30] == INSCRIBED).all()


@pytest.mark.parametrize("radius", [0.0, -0.1, 0.19, float("nan"), "0.17"])
def test_a_tight_radius_outside_the_robot_radius_is_refused(radius):
    cm = Costmap.from_map(doc_of(door_states(7)), config=CostmapConfig(robot_radius=0.18))
    with pytest.raises(ValueError, match="tight passage's radius"):
        cm.allow_tight(np.zeros(cm.shape, bool), radius)
    with pytest.raises(ValueError, match="tight passages"):
        cm.allow_tight(np.zeros((3, 3), bool), 0.17)
