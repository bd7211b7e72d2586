"""Room segmentation: hand-made plans, the default home, the ipa floor plans and our homes
against their ground truth, the Bormann et al. 2016 metric on hand-made cases, bad input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from firmware_bridge import worlds
from firmware_bridge.world import World
from maps.grid import OccupancyGrid
from maps.model import FREE_LOG_ODDS, OCCUPIED_LOG_ODDS
from navigation import NavigationError
from navigation.rooms import (
    NoFreeSpace,
    RoomConfig,
    Segmentation,
    draw_segmentation,
    score_segmentation,
    segment_rooms,
    truth_from_separators,
)

RES = 0.05
FLOORPLANS = SHARED_DATA / "floorplans"
HOMES = SHARED_DATA / "homes"
PLANS = ("Freiburg52_scan", "lab_c_scan", "lab_intel", "lab_ipa", "office_a", "office_d")


def cells(metres: float, res: float = RES) -> int:
    return int(round(metres / res))


def flat(rooms: list[tuple[float, float, float, float]], doors, res: float = RES) -> np.ndarray:
    """A plan from room rectangles (x0, y0, x1, y1 in m) with 0.1 m walls between them and door
    rectangles cut through the walls; 0.5 m of wall around."""
    xs = [r[2] for r in rooms]
    ys = [r[3] for r in rooms]
    free = np.zeros((cells(max(ys) + 1.0, res), cells(max(xs) + 1.0, res)), bool)
    for x0, y0, x1, y1 in (*rooms, *doors):
        free[
            cells(y0 + 0.5, res) : cells(y1 + 0.5, res), cells(x0 + 0.5, res) : cells(x1 + 0.5, res)
        ] = True
    return free


def three_rooms_and_a_hall(res: float = RES) -> np.ndarray:
    """A 1.2 m hall along the bottom, three rooms above it, each with a 0.9 m door."""
    rooms = [(0.0, 0.0, 9.0, 1.2), (0.0, 1.3, 3.0, 5.0), (3.1, 1.3, 6.0, 5.0), (6.1, 1.3, 9.0, 5.0)]
    doors = [(1.0, 1.2, 1.9, 1.3), (4.0, 1.2, 4.9, 1.3), (7.0, 1.2, 7.9, 1.3)]
    return flat(rooms, doors, res)


def assert_partition(seg: Segmentation, free: np.ndarray) -> None:
    """Every free cell in exactly one room, nothing else labelled, ids 1..N, rooms consistent."""
    assert seg.labels.dtype == np.int32 and seg.labels.shape == free.shape
    assert np.array_equal(seg.labels > 0, free)
    assert sorted(np.unique(seg.labels[free]).tolist()) == list(range(1, len(seg.rooms) + 1))
    assert [r.id for r in seg.rooms] == list(range(1, len(seg.rooms) + 1))
    total = sum(r.area for r in seg.rooms)
    assert total == pytest.approx(free.sum() * seg.resolution**2)
    for room in seg.rooms:
        for other in room.neighbours:
            assert room.id in seg.room(other).neighbours
            assert seg.doors_between(room.id, other)


# --------------------------------------------------------------------------------------------
# Hand-made plans


def test_hall_and_three_rooms_split_at_the_doors():
    free = three_rooms_and_a_hall()
    seg = segment_rooms(free, RES)
    assert_partition(seg, free)
    assert len(seg.rooms) == 4
    hall = seg.room(int(seg.labels[cells(1.1), cells(5.0)]))
    # the 0.1 m deep door cells go to either side
    assert hall.area == pytest.approx(9.0 * 1.2 + 3 * 0.9 * 0.05, abs=0.15)
    assert len(hall.neighbours) == 3
    for x_door in (1.45, 4.45, 7.45):
        room = seg.labels[cells(3.0), cells(x_door + 0.5)]
        assert room != hall.id
        (door,) = seg.doors_between(hall.id, int(room))
        # the doorway's middle is the middle of the 0.9 m gap, its width about the gap's
        assert door.centre[0] == pytest.approx(x_door + 0.5, abs=0.06)
        assert door.centre[1] == pytest.approx(1.75, abs=0.1)
        assert door.width == pytest.approx(0.9, abs=0.1)
    for room in seg.rooms:
        if room.id != hall.id:
            assert 2.9 * 3.7 <= room.area <= 3.0 * 3.7 + 0.09  # plus at most the door cells
            assert room.neighbours == (hall.id,)
            inside = seg.labels[cells(room.centre[1]), cells(room.centre[0])]
            assert inside == room.id


def test_the_split_does_not_depend_on_the_resolution():
    coarse = segment_rooms(three_rooms_and_a_hall(0.05), 0.05)
    fine = segment_rooms(three_rooms_and_a_hall(0.025), 0.025)
    assert len(coarse.rooms) == len(fine.rooms) == 4
    areas = sorted(r.area for r in coarse.rooms)
    assert sorted(r.area for r in fine.rooms) == pytest.approx(areas, rel=0.02)


def test_wide_openings_and_an_l_shaped_room_stay_one_room():
    # an L-shaped room: 6 x 2 m plus 2 x 4 m; no constriction anywhere
    free = np.zeros((140, 160), bool)
    free[10:50, 10:130] = True
    free[10:130, 10:50] = True
    seg = segment_rooms(free, RES)
    assert_partition(seg, free)
    assert len(seg.rooms) == 1 and seg.doors == []
    # two 4 x 4 m rooms joined by an opening 3.5 m wide: one room
    open_plan = flat([(0.0, 0.0, 4.0, 4.0), (4.1, 0.0, 8.1, 4.0)], [(4.0, 0.25, 4.1, 3.75)])
    assert len(segment_rooms(open_plan, RES).rooms) == 1


def test_furniture_does_not_split_a_room():
    free = three_rooms_and_a_hall()
    rng = np.random.default_rng(0)
    # table and chair legs (one cell each), a bin and a plant (0.3-0.5 m) in every room
    for x0 in (0.0, 3.1, 6.1):
        legs = rng.uniform((x0 + 0.9, 2.3), (x0 + 2.3, 4.2), size=(16, 2))
        for x, y in legs:
            free[cells(y + 0.5), cells(x + 0.5)] = False
        free[cells(4.5) : cells(4.8), cells(x0 + 0.7) : cells(x0 + 1.0)] = False  # bin
        free[cells(2.2) : cells(2.7), cells(x0 + 2.6) : cells(x0 + 3.1)] = False  # plant
    seg = segment_rooms(free, RES)
    assert_partition(seg, free)
    assert len(seg.rooms) == 4
    # ignoring no clutter at all, the legs cut the rooms into pieces
    shattered = segment_rooms(free, RES, config=RoomConfig(clutter_size=0.0))
    assert len(shattered.rooms) > 4


def test_small_leftovers_join_a_neighbour_and_specks_the_nearest_room():
    # a 1 m² closet off room 1 through a 0.6 m door: under min_room_area, it joins room 1
    rooms = [(0.0, 0.0, 9.0, 1.2), (0.0, 1.3, 3.0, 5.0), (3.1, 1.3, 6.0, 5.0), (6.1, 1.3, 9.0, 5.0)]
    doors = [(1.0, 1.2, 1.9, 1.3), (4.0, 1.2, 4.9, 1.3), (7.0, 1.2, 7.9, 1.3)]
    free = flat([*rooms, (0.2, 5.1, 1.2, 6.1)], [*doors, (0.4, 5.0, 1.0, 5.1)])
    speck = (cells(3.5), cells(3.55))  # a free cell inside the wall between rooms 1 and 2
    free[speck] = True
    seg = segment_rooms(free, RES)
    assert_partition(seg, free)
    assert len(seg.rooms) == 4
    room1, room2 = seg.labels[cells(3.5), cells(1.5)], seg.labels[cells(3.5), cells(5.0)]
    assert seg.labels[cells(6.1), cells(1.2)] == room1
    assert seg.labels[speck] in (room1, room2)
    # with a smaller minimum the closet is a room of its own
    small = segment_rooms(free, RES, config=RoomConfig(min_room_area=0.5))
    assert len(small.rooms) == 5


def test_separate_flats_are_separate_rooms_without_a_door():
    free = np.zeros((60, 150), bool)
    free[5:55, 5:70] = True
    free[5:55, 80:145] = True
    seg = segment_rooms(free, RES, origin=(10.0, -2.0))
    assert_partition(seg, free)
    assert len(seg.rooms) == 2 and seg.doors == []
    assert seg.adjacency == {1: (), 2: ()}
    # world coordinates use the origin: room 1 spans x 10.25-13.5, y -1.75..0.75
    assert seg.room(1).centroid == pytest.approx((10.0 + 37.5 * RES, -2.0 + 30 * RES))


def test_occupancy_grid_input_matches_the_mask():
    world = World.default()
    lo = np.where(world.free, FREE_LOG_ODDS, OCCUPIED_LOG_ODDS).astype(np.float32)
    lo[world.outside] = 0.0  # unknown
    grid = OccupancyGrid(lo, world.resolution, world.origin)
    from_grid = segment_rooms(grid)
    from_mask = segment_rooms(world.free, world.resolution, world.origin)
    assert np.array_equal(from_grid.labels, from_mask.labels)
    assert from_grid.origin == world.origin
    assert from_grid.rooms == from_mask.rooms


# --------------------------------------------------------------------------------------------
# The default home against its room rectangles


def default_home_truth(world: World) -> np.ndarray:
    truth = np.zeros(world.shape, np.int32)
    for k, rect in enumerate(worlds.ROOMS.values(), 1):
        truth[rect.cells(world.origin, world.resolution)] = k
    truth[~world.free] = 0
    return truth


def test_default_home_rooms_and_doors():
    world = World.default()
    seg = segment_rooms(world.free, world.resolution, world.origin)
    assert_partition(seg, world.free)
    truth = default_home_truth(world)
    score = score_segmentation(seg.labels, truth)
    # measured: precision 0.993, recall 0.962, 7 segments (the strip beside bed 1 is its own)
    assert score.precision >= 0.97
    assert score.recall >= 0.94
    assert 6 <= len(seg.rooms) <= 7
    # each named room lies mostly in one segment, and every door joins the two segments
    best = {}
    for k, name in enumerate(worlds.ROOMS, 1):
        ids, counts = np.unique(seg.labels[truth == k], return_counts=True)
        best[name] = int(ids[np.argmax(counts)])
        floor = (truth == k).sum()
        assert counts.max() / floor >= (0.75 if name == "bedroom 1" else 0.97), name
    assert len(set(best.values())) == 6
    for door_name, rect in worlds.DOORS.items():
        a, b = (best[name] for name in door_name.split(" - "))
        doors = seg.doors_between(a, b)
        assert len(doors) == 1, door_name
        mid = ((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2)
        assert math.dist(doors[0].centre, mid) <= 0.15, door_name
        assert doors[0].width == pytest.approx(max(rect.x1 - rect.x0, rect.y1 - rect.y0), abs=0.1)


def test_default_home_with_map_noise():
    # what a lidar map adds: isolated false obstacles and ragged wall faces
    world = World.default()
    rng = np.random.default_rng(0)
    free = world.free & (rng.random(world.shape) >= 0.005)
    face = free & (cv2.erode(free.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
    free &= ~(face & (rng.random(world.shape) < 0.1))
    seg = segment_rooms(free, world.resolution, world.origin)
    assert_partition(seg, free)
    score = score_segmentation(seg.labels, default_home_truth(world) * free)
    assert 6 <= len(seg.rooms) <= 8
    assert score.precision >= 0.97 and score.recall >= 0.9  # measured 0.992 / 0.963


def test_picture_of_the_default_home(tmp_path):
    world = World.default()
    seg = segment_rooms(world.free, world.resolution, world.origin)
    pic = draw_segmentation(
        seg, occupied=world.walls, truth=default_home_truth(world), caption=["x"]
    )
    path = tmp_path / "rooms.png"
    pic.save(path)
    img = cv2.imread(str(path))
    assert img.shape[0] > world.shape[0] and img.shape[1] >= world.shape[1]
    # touching rooms get different colours: sample each room well inside, away from its label
    colours = {}
    for room in seg.rooms:
        inner = cv2.erode((seg.labels == room.id).astype(np.uint8), np.ones((5, 5), np.uint8))
        i, j = np.nonzero(inner)
        xy = np.column_stack((j + 0.5, i + 0.5)) * RES + world.origin
        far = np.hypot(*(xy - room.centre).T) > 0.8
        px = pic.to_pixels(xy[far][:1])[0]
        colours[room.id] = tuple(pic.image[int(px[1]), int(px[0])].tolist())
    for room in seg.rooms:
        for other in room.neighbours:
            assert colours[room.id] != colours[other]


# --------------------------------------------------------------------------------------------
# The metric on hand-made cases


def test_score_of_a_perfect_split_is_one_and_ignores_label_values():
    truth = np.zeros((30, 60), np.int32)
    truth[:, :30], truth[:, 31:] = 1, 2
    labels = np.where(truth == 1, 7, np.where(truth == 2, 3, 0))
    s = score_segmentation(labels, truth)
    assert (s.precision, s.recall, s.precision_area, s.recall_area) == (1.0, 1.0, 1.0, 1.0)
    assert (s.segments, s.truth_rooms) == (2, 2)


def test_score_of_merged_and_split_rooms():
    truth = np.zeros((20, 80), np.int32)
    truth[:, :20], truth[:, 20:80] = 1, 2  # 400 and 1200 cells
    merged = np.ones_like(truth)  # one segment over both
    s = score_segmentation(merged, truth)
    assert s.recall == 1.0 and s.recall_area == 1.0
    assert s.precision == pytest.approx(1200 / 1600)
    # room 2 cut into 900 + 300 cells, room 1 right: recall of room 2 is 0.75
    split = truth.copy()
    split[:, 65:] = 3
    s = score_segmentation(split, truth)
    assert s.precision == 1.0 and s.precision_area == 1.0
    assert s.recall == pytest.approx((1.0 + 0.75) / 2)
    assert s.recall_area == pytest.approx((400 + 900) / 1600)
    # a segment straddling both rooms: 200 cells of room 1 and 100 of room 2
    straddle = truth.copy()
    straddle[:, 10:25] = 4
    s = score_segmentation(straddle, truth)
    assert s.precision == pytest.approx((1.0 + 1.0 + 200 / 300) / 3)
    # room 1: 200 of its 400 cells in either segment; room 2: 1100 of 1200 in segment 2
    assert s.recall == pytest.approx((200 / 400 + 1100 / 1200) / 2)
    assert s.precision_area == pytest.approx((200 + 1100 + 200) / 1600)


def test_score_drops_small_regions_on_both_sides():
    truth = np.zeros((20, 80), np.int32)
    truth[:, :40], truth[:, 40:] = 1, 2
    truth[0, :5] = 9  # 5 cells: dropped
    labels = truth.copy()
    labels[10, 10:20] = 5  # 10 cells: dropped
    s = score_segmentation(labels, truth)
    assert (s.segments, s.truth_rooms) == (2, 2)
    s = score_segmentation(labels, truth, drop_cells=0)
    assert (s.segments, s.truth_rooms) == (4, 3)


def test_truth_from_separators_connectivity():
    grey = np.full((20, 20), 255, np.uint8)
    # a 1-cell diagonal separator: blocks a 4-connected fill, not an 8-connected one
    for k in range(20):
        grey[k, k] = 0
    assert truth_from_separators(grey, 4).max() == 2
    assert truth_from_separators(grey, 8).max() == 1
    grey[:, 10] = 250  # not above 250: a separator
    assert truth_from_separators(np.full((3, 3), 250, np.uint8)).max() == 0


# --------------------------------------------------------------------------------------------
# Bad input


def test_no_free_space_is_a_clear_error():
    with pytest.raises(NoFreeSpace, match="no free cell"):
        segment_rooms(np.zeros((40, 50), bool), RES)
    assert issubclass(NoFreeSpace, NavigationError) and issubclass(NoFreeSpace, ValueError)
    unknown = OccupancyGrid(np.zeros((30, 30), np.float32), RES, (0.0, 0.0))
    with pytest.raises(NoFreeSpace):
        segment_rooms(unknown)


@pytest.mark.parametrize(
    ("free", "resolution", "error", "match"),
    [
        (np.zeros((0, 5), bool), RES, ValueError, "non-empty 2-D"),
        (np.ones((4, 4, 2), bool), RES, ValueError, "non-empty 2-D"),
        (np.ones((10, 10), np.float32), RES, TypeError, "bool free mask"),
        (np.full((10, 10), 255, np.uint8), RES, TypeError, "grey >= 250"),
        (np.ones((10, 10), bool), None, ValueError, "resolution"),
        (np.ones((10, 10), bool), -0.05, ValueError, "resolution"),
        (np.ones((10, 10), bool), float("nan"), ValueError, "resolution"),
    ],
)
def test_malformed_input_is_refused(free, resolution, error, match):
    with pytest.raises(error, match=match):
        segment_rooms(free, resolution)


def test_grid_with_another_resolution_is_refused():
    grid = OccupancyGrid(np.full((10, 10), -2.0, np.float32), RES, (0.0, 0.0))
    with pytest.raises(ValueError, match="differs"):
        segment_rooms(grid, 0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"door_ratio": 0.0},
        {"door_ratio": 1.5},
        {"min_room_area": -1.0},
        {"clutter_size": float("nan")},
    ],
)
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        RoomConfig(**kwargs)


def test_tiny_maps_and_one_room():
    for shape in ((1, 1), (1, 7), (3, 2)):
        free = np.ones(shape, bool)
        seg = segment_rooms(free, RES)
        assert_partition(seg, free)
        assert len(seg.rooms) == 1 and seg.doors == []
    ints = np.zeros((5, 5), np.int64)
    ints[1:4, 1:4] = 1
    assert len(segment_rooms(ints, RES).rooms) == 1
    room = np.zeros((80, 100), bool)
    room[5:75, 5:95] = True
    seg = segment_rooms(room, RES)
    assert len(seg.rooms) == 1 and seg.room(1).area == pytest.approx(70 * 90 * RES**2)
    with pytest.raises(KeyError, match="ids run from 1 to 1"):
        seg.room(2)


def test_score_refuses_mismatched_or_empty_input():
    a = np.ones((20, 20), np.int32)
    with pytest.raises(ValueError, match="same shape"):
        score_segmentation(a, np.ones((20, 21), np.int32))
    with pytest.raises(ValueError, match="integer"):
        score_segmentation(a.astype(float), a)
    with pytest.raises(ValueError, match="nothing to score"):
        score_segmentation(a, np.zeros_like(a))
    with pytest.raises(ValueError, match="connectivity"):
        truth_from_separators(np.zeros((3, 3), np.uint8), 6)


# --------------------------------------------------------------------------------------------
# Real plans (../shared/data)


def plan_truth(path, connectivity: int) -> np.ndarray:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return truth_from_separators(grey[::-1], connectivity)  # raster row 0 = bottom, as World


@pytest.fixture(scope="module")
def floorplan_scores():
    if not FLOORPLANS.is_dir():
        pytest.skip(f"floor plans not found in {FLOORPLANS} (../shared/data beside the repo)")
    scores = {}
    for name in PLANS:
        truth = plan_truth(FLOORPLANS / f"{name}_gt_segmentation.png", 8)
        for variant in ("", "_furnitures"):
            world = World.from_png(FLOORPLANS / f"{name}{variant}.png")
            seg = segment_rooms(world.free, world.resolution, world.origin)
            assert_partition(seg, world.free)
            scores[name + variant] = score_segmentation(seg.labels, truth)
    return scores


@pytest.mark.shared_data
@pytest.mark.parametrize("name", PLANS)
def test_floorplan_against_ground_truth(floorplan_scores, name):
    # measured (precision / recall): Freiburg52 0.940/0.998, lab_c 0.928/0.999, lab_intel
    # 0.926/0.976, lab_ipa 0.929/0.951, office_a 0.995/0.999, office_d 0.988/0.980
    s = floorplan_scores[name]
    assert s.precision >= 0.91 and s.recall >= 0.94, s


@pytest.mark.shared_data
def test_floorplans_mean_precision_and_recall(floorplan_scores):
    plain = [floorplan_scores[name] for name in PLANS]
    assert np.mean([s.precision for s in plain]) >= 0.945  # measured 0.951
    assert np.mean([s.recall for s in plain]) >= 0.975  # measured 0.984


@pytest.mark.shared_data
def test_furnished_floorplans_do_not_shatter(floorplan_scores):
    # measured recall 0.872-0.956 (mean 0.917), precision 0.926-0.995 (mean 0.963)
    furnished = [floorplan_scores[name + "_furnitures"] for name in PLANS]
    assert min(s.recall for s in furnished) >= 0.85
    assert np.mean([s.recall for s in furnished]) >= 0.90
    assert np.mean([s.precision for s in furnished]) >= 0.95
    for name in PLANS:  # at most a few more segments than rooms
        s = floorplan_scores[name + "_furnitures"]
        assert s.segments <= s.truth_rooms + 3, name


@pytest.mark.shared_data
def test_homes_against_their_door_heuristic():
    if not HOMES.is_dir():
        pytest.skip(f"homes not found in {HOMES} (../shared/data beside the repo)")
    scores = {"": [], "_furnished": []}
    for truth_path in sorted(HOMES.glob("home_*_rooms.png")):
        truth = plan_truth(truth_path, 4)
        base = truth_path.name.removesuffix("_rooms.png")
        for variant, found in scores.items():
            world = World.from_png(HOMES / f"{base}{variant}.png")
            found.append(score_segmentation(segment_rooms(world.free, RES).labels, truth))
    assert len(scores[""]) == 8
    # measured: plain 0.991 / 0.978, furnished 0.982 / 0.855 (mean precision / recall)
    assert np.mean([s.precision for s in scores[""]]) >= 0.97
    assert np.mean([s.recall for s in scores[""]]) >= 0.96
    assert np.mean([s.precision for s in scores["_furnished"]]) >= 0.96
    assert np.mean([s.recall for s in scores["_furnished"]]) >= 0.83
