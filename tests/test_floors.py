"""Which floor: relocalization over several stored floors, the per-version Localizer cache, and
refusals (identical floors, unusable maps) instead of guesses."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA
from numba import config as numba_config

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps import OccupancyGrid, Pose, wrap_angle
from maps.model import MapDocument
from maps.store import MapStore
from navigation.floors import FloorSearch, LocalizerCache, relocalize_floors
from navigation.localization import LOCALIZED, REFUSED, Localizer
from navigation.relocalize_bench import (
    RIGHT_ANGLE,
    RIGHT_DISTANCE,
    drop_poses,
    map_from_world,
    mirrored,
    run_floor_trials,
)

needs_jit = pytest.mark.skipif(
    numba_config.DISABLE_JIT, reason="relocalizes in simulated homes: minutes without the JIT"
)


@pytest.fixture(scope="module")
def building():
    """Three floors: the default home, its mirror image (every wall has a twin; the two
    mirror images are one floor turned round, so only one of them), and a furnished home of
    ../shared/data/homes mapped from its plain plan, else the two alone."""
    home = World.default()
    worlds = {"ground": home, "first": mirrored(home)}
    maps = {"ground": home, "first": worlds["first"]}
    homes = sorted((SHARED_DATA / "homes").glob("home_*_furnished.png"))
    if homes:
        plain = homes[0].with_name(homes[0].name.replace("_furnished", ""))
        worlds["second"] = World.from_png(
            homes[0], homes[0].with_name(plain.stem + "_invisible.png")
        )
        maps["second"] = World.from_png(plain)
    return worlds, {n: Localizer(map_from_world(maps[n])) for n in worlds}


def right_pose(pose: Pose, truth: Pose) -> bool:
    turn = abs(float(wrap_angle(pose.theta - truth.theta)))
    return pose.distance_to(truth) <= RIGHT_DISTANCE and turn <= RIGHT_ANGLE


def unknown_map() -> OccupancyGrid:
    return OccupancyGrid(np.zeros((100, 100), np.float32), 0.05, (0.0, 0.0))


def test_mirrored_world_is_the_mirror_image():
    home = World.default()
    lr, ud = mirrored(home), mirrored(home, upside_down=True)
    assert (lr.walls == home.walls[:, ::-1]).all() and (ud.walls == home.walls[::-1]).all()
    # the two mirror images are one floor turned by 180 degrees
    assert (ud.walls == lr.walls[::-1, ::-1]).all()
    for flipped in (lr, ud):
        i, j = flipped.cell_of(flipped.start.x, flipped.start.y)
        assert flipped.free[i, j]  # the dock stays on the floor


@needs_jit
@pytest.mark.parametrize("seed", range(3))
def test_finds_the_floor_and_the_pose(building, seed):
    worlds, localizers = building
    for k, (name, world) in enumerate(worlds.items()):
        start = drop_poses(world, 1, seed=10 * seed + k)[0]
        robot = SimulatedRobot(world, seed=seed, start=start)
        found = relocalize_floors(localizers, robot)
        assert found.status == LOCALIZED, found.reason
        assert found.floor == name
        assert right_pose(found.pose, robot.true_pose), (found.pose, robot.true_pose)
        assert set(found.floors) == set(worlds)
        assert found.elapsed_ms > 0 and found.scans_used >= 2


@needs_jit
def test_identical_floors_are_refused_not_guessed():
    home = World.default()
    grid = map_from_world(home)
    localizers = {"a": Localizer(grid), "b": Localizer(grid)}
    for seed in range(2):
        robot = SimulatedRobot(home, seed=seed, start=drop_poses(home, 1, seed=seed)[0])
        found = relocalize_floors(localizers, robot)
        assert found.status == REFUSED
        assert found.floor is None
        assert "ambiguous" in found.reason and "a and b" in found.reason


@needs_jit
def test_an_unusable_floor_only_leaves_the_race(building):
    worlds, localizers = building
    with_blank = {"attic": Localizer(unknown_map()), "ground": localizers["ground"]}
    robot = SimulatedRobot(worlds["ground"], seed=1, start=drop_poses(worlds["ground"], 1, 3)[0])
    found = relocalize_floors(with_blank, robot)
    assert found.status == LOCALIZED and found.floor == "ground"


def test_no_usable_floor_is_refused_with_each_reason():
    localizers = {"a": Localizer(unknown_map()), "b": Localizer(unknown_map())}
    robot = SimulatedRobot(World.default(), seed=0)
    found = relocalize_floors(localizers, robot)
    assert found.status == REFUSED and found.floor is None
    assert "a: the map is unknown everywhere" in found.reason
    assert "b: the map is unknown everywhere" in found.reason
    with pytest.raises(ValueError, match="no floors"):
        FloorSearch({}, None)


def test_localizer_cache_builds_once_per_version(tmp_path):
    home = World.default()
    doc = MapDocument(map_from_world(home))
    cache = LocalizerCache(size=2)
    with MapStore(tmp_path / "store.db") as store:
        store.create_floor("empty")  # a floor with no map yet is skipped
        v1 = store.save(doc, floor="ground")
        store.save(MapDocument(map_from_world(mirrored(home))), floor="first")
        first = cache.for_store(store)
        assert set(first) == {"ground", "first"} and cache.built == 2
        again = cache.for_store(store)
        assert again["ground"] is first["ground"] and cache.built == 2
        v2 = store.save(doc, floor="ground", note="a new version")
        assert v2.id != v1.id
        third = cache.for_store(store)
        assert third["ground"] is not first["ground"] and cache.built == 3
        assert third["first"] is first["first"]
        assert len(cache._cache) == 2  # at most `size` kept
    with pytest.raises(ValueError):
        LocalizerCache(size=0)


def test_maps_the_robot_built_are_its_own(tmp_path):
    """SLAM, lifelong and the mission's saves hold what the robot saw (own_map: weak fits
    refused); an imported vendor map does not."""
    doc = MapDocument(map_from_world(World.default()))
    cache = LocalizerCache()
    with MapStore(tmp_path / "store.db") as store:
        own = {s: store.save(doc, floor=s, source=s).id for s in ("slam", "lifelong", "edit")}
        imported = store.save(doc, floor="vendor", source="import").id
        assert all(cache.get(store, v).own_map for v in own.values())
        assert not cache.get(store, imported).own_map


@needs_jit
def test_run_floor_trials_reports(building):
    worlds, _ = building
    floors = {n: (w, w) for n, w in list(worlds.items())[:2]}
    report = run_floor_trials(floors, trials=3, seed=2)
    assert report["floors"] == list(floors)
    assert report["trials"] == 3
    assert report["right_floor"] + report["wrong_floor"] + report["refused"] == 3
    assert report["wrong_floor"] == 0 and report["wrong"] == 0
    for key in ("right", "median_ms", "p99_ms", "median_scans", "failures"):
        assert key in report
