"""Lifelong map: changes found while localized in a stored map, saved as new versions.

Scenarios in the simulator: the stored map is built from a world's plan (`map_from_world`), the
robot drives a route through a changed copy of that world, and its scans are fed with the map
pose of their time (the simulator's truth, or the Tracker's), as a localized robot would.
"""

from __future__ import annotations

import functools
import heapq
import math
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from numba import config as numba_config

from firmware_bridge import worlds
from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps.diff import diff
from maps.errors import MapError, MapNotFound
from maps.geometry import Pose, wrap_angle
from maps.grid import GridConfig, OccupancyGrid
from maps.model import MapDocument
from maps.scan import Odometry, Scan
from maps.store import MapStore
from navigation.cli import cli
from navigation.lifelong import (
    APPEARED,
    VANISHED,
    LifelongConfig,
    LifelongError,
    LifelongMap,
    StaleMap,
    cap_pose_graph,
)
from navigation.localization import Localizer, Tracker
from navigation.relocalize_bench import map_from_world
from navigation.slam.posegraph import PoseGraph

# ---------------------------------------------------------------------------- driving helpers
ROUTE_CLEARANCE = 0.3  # m from the robot centre to anything solid along planned routes


@dataclass(slots=True)
class Feed:
    """One scan as a localized robot delivers it: the scan, the true map pose at its stamp, the
    odometry (pose and speeds) at its stamp."""

    scan: Scan
    truth: Pose
    odometry: Odometry


def route(world: World, waypoints: list[tuple[float, float]], step: float = 0.1) -> list:
    """World xy points (m) of a shortest route through `waypoints` in order, on cells of
    `step` m at least ROUTE_CLEARANCE from anything solid (A*, 8-connected); every ~0.3 m."""
    f = max(1, round(step / world.resolution))
    solid = world.solid
    h, w = solid.shape
    free = np.pad(~solid, 1, constant_values=False).astype(np.uint8)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    ok = (dist - 0.5) * world.resolution >= ROUTE_CLEARANCE
    hc, wc = h // f, w // f
    ok = ok[: hc * f, : wc * f].reshape(hc, f, wc, f).any(axis=(1, 3))
    ox, oy = world.origin
    res = world.resolution * f

    def cell(x: float, y: float) -> tuple[int, int]:
        i, j = int((y - oy) // res), int((x - ox) // res)
        if not (0 <= i < hc and 0 <= j < wc and ok[i, j]):
            # the nearest cell with clearance
            ii, jj = np.nonzero(ok)
            k = int(np.argmin((ii - i) ** 2 + (jj - j) ** 2))
            i, j = int(ii[k]), int(jj[k])
        return i, j

    points: list[tuple[float, float]] = []
    cells = [cell(x, y) for x, y in waypoints]
    for a, b in zip(cells[:-1], cells[1:], strict=True):
        path = _astar(ok, a, b)
        if path is None:
            raise ValueError(f"no route with {ROUTE_CLEARANCE} m clearance from {a} to {b}")
        points.extend((ox + (j + 0.5) * res, oy + (i + 0.5) * res) for i, j in path)
    thin = [points[0]]
    for p in points[1:]:
        if math.hypot(p[0] - thin[-1][0], p[1] - thin[-1][1]) >= 0.3:
            thin.append(p)
    thin.append(points[-1])
    return thin


def _astar(ok: np.ndarray, a: tuple[int, int], b: tuple[int, int]):
    h, w = ok.shape
    moves = [(di, dj, math.hypot(di, dj)) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]
    best = {a: 0.0}
    came: dict = {}
    heap = [(0.0, a)]
    while heap:
        _, c = heapq.heappop(heap)
        if c == b:
            path = [c]
            while c in came:
                c = came[c]
                path.append(c)
            return path[::-1]
        g = best[c]
        for di, dj, cost in moves:
            n = (c[0] + di, c[1] + dj)
            if 0 <= n[0] < h and 0 <= n[1] < w and ok[n] and g + cost < best.get(n, math.inf):
                best[n] = g + cost
                came[n] = c
                heapq.heappush(heap, (g + cost + math.hypot(n[0] - b[0], n[1] - b[1]), n))
    return None


def drive(robot: SimulatedRobot, points: list, max_steps: int = 5000) -> list[Feed]:
    """Follow the route `points` (world xy) steering by the true pose, in 0.2 s steps (one
    lidar revolution each); every scan with the true pose and the odometry of its stamp.

    The scans of a step that ended in contact are left out (that motion is not one arc, so the
    interpolated poses would be off); the robot then stands still until the next revolution
    starts. A waypoint not reached after 40 steps of no progress, or where the bumper fired, is
    dropped."""
    times = [robot.time]
    truth = [robot.true_pose.as_array()]
    odom = [robot.odometry().pose.as_array()]
    feeds: list[Feed] = []

    def record() -> None:
        times.append(robot.time)
        truth.append(robot.true_pose.as_array())
        odom.append(robot.odometry().pose.as_array())

    def step(v: float, w: float) -> None:
        bumped = robot.drive(v, w, 0.2)
        record()
        speeds = robot.odometry()
        scans = robot.scans()
        if bumped:  # the motion in this step is not one arc: its poses are not exact
            late = -robot.time % 0.2  # stand still until revolutions and steps line up again
            if late > 1e-6:
                robot.drive(0.0, 0.0, late)
                record()
            robot.scans()
            return
        for scan in scans:
            at_scan = Odometry(_at(times, odom, scan.stamp), scan.stamp, speeds.v, speeds.w)
            feeds.append(Feed(scan, _at(times, truth, scan.stamp), at_scan))

    target = 0
    best, stalled = math.inf, 0  # closest approach to the target so far, steps since
    for _ in range(max_steps):
        if target >= len(points):
            break
        p = robot.true_pose
        tx, ty = points[target]
        gap = math.hypot(tx - p.x, ty - p.y)
        if gap < best - 0.05:
            best, stalled = gap, 0
        stalled += 1
        if gap < 0.15 or stalled > 40 or robot.bumper_pressed:  # reached, or give it up
            target += 1
            best, stalled = math.inf, 0
            if robot.bumper_pressed:
                step(-0.1, 0.0)
            continue
        err = float(wrap_angle(math.atan2(ty - p.y, tx - p.x) - p.theta))
        if abs(err) > 0.35:
            step(0.0, float(np.clip(2.0 * err, -1.0, 1.0)))
        else:
            step(0.25, float(np.clip(1.5 * err, -1.0, 1.0)))
    return feeds


def _at(times: list[float], series: list[np.ndarray], t: float) -> Pose:
    k = min(max(int(np.searchsorted(times, t)), 1), len(times) - 1)
    t0, t1 = times[k - 1], times[k]
    f = 0.0 if t1 <= t0 else min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    a, b = series[k - 1], series[k]
    return Pose(
        a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * wrap_angle(b[2] - a[2])
    )


def changed_world(world: World, add=(), remove=()) -> World:
    """A copy of `world` with rectangles (x0, y0, x1, y1), m, made solid (`add`) or floor."""
    walls = world.walls.copy()
    for rects, value in ((add, True), (remove, False)):
        for x0, y0, x1, y1 in rects:
            i0, j0 = world.cell_of(x0 + 1e-9, y0 + 1e-9)
            i1, j1 = world.cell_of(x1 - 1e-9, y1 - 1e-9)
            walls[i0 : i1 + 1, j0 : j1 + 1] = value
    return World(world.name + "*", walls, world.invisible.copy(), world.outside.copy(),
                 world.resolution, world.origin, world.start)  # fmt: skip


def tour_waypoints(world: World, spacing: float = 2.5) -> list[tuple[float, float]]:
    """Waypoints that take a robot from `world.start` through the whole reachable floor:
    floor cells at least ROUTE_CLEARANCE m from anything solid, about `spacing` m apart
    (farthest-point sampling), visited nearest first."""
    solid = np.pad(world.solid, 1, constant_values=True)
    dist = cv2.distanceTransform((~solid).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    roomy = (dist[1:-1, 1:-1] - 0.5) * world.resolution >= ROUTE_CLEARANCE
    n, labels = cv2.connectedComponents(roomy.astype(np.uint8), connectivity=8)
    si, sj = world.cell_of(world.start.x, world.start.y)
    ii, jj = np.nonzero(roomy)
    # the region the start reaches (the start itself may sit closer to a wall than that)
    k0 = int(np.argmin((ii - si) ** 2 + (jj - sj) ** 2))
    keep = labels[ii, jj] == labels[ii[k0], jj[k0]]
    ii, jj = ii[keep], jj[keep]
    xy = np.column_stack(
        (
            world.origin[0] + (jj + 0.5) * world.resolution,
            world.origin[1] + (ii + 0.5) * world.resolution,
        )
    )
    chosen = [np.array([world.start.x, world.start.y])]
    d = np.hypot(*(xy - chosen[0]).T)
    while d.max() > spacing:
        k = int(np.argmax(d))
        chosen.append(xy[k])
        d = np.minimum(d, np.hypot(*(xy - xy[k]).T))
    order = [0]
    left = set(range(1, len(chosen)))
    while left:
        last = chosen[order[-1]]
        k = min(left, key=lambda q: float(np.hypot(*(chosen[q] - last))))
        order.append(k)
        left.remove(k)
    return [(float(chosen[k][0]), float(chosen[k][1])) for k in order]


# ---------------------------------------------------------------------------- scenarios
needs_jit = pytest.mark.skipif(
    numba_config.DISABLE_JIT,
    reason="drives the simulator for hundreds of scans: minutes without the JIT",
)
LIVING_ROUTE = [(4.5, 0.3), (4.5, 1.3), (3.5, 3.8), (1.0, 3.9), (3.0, 1.2), (5.0, 3.0)]
KITCHEN_ROUTE = [(4.5, 0.3), (4.5, 1.3), (6.0, 3.0), (8.0, 1.5), (9.5, 4.3), (7.2, 4.4)]
BOX = (2.8, 2.8, 3.4, 3.3)  # m: a 0.6 m x 0.5 m piece of furniture put in the living room


@functools.cache
def plain_home() -> World:
    return World.default()


@functools.cache
def stored_doc() -> MapDocument:
    """The stored map: the default home's plan as it was (map_from_world)."""
    return MapDocument(map_from_world(plain_home()))


@functools.cache
def home_with(change: str) -> World:
    plain = plain_home()
    if change == "box":
        return changed_world(plain, add=[BOX])
    if change == "door":  # the kitchen - hall door closed
        d = worlds.DOORS["kitchen - hall"]
        return changed_world(plain, add=[(d.x0, d.y0, d.x1, d.y1)])
    if change == "armchair moved":  # from the wall by the dock into the room, where BOX is
        a = worlds.FURNITURE["armchair"]
        return changed_world(plain, add=[BOX], remove=[(a.x0, a.y0, a.x1, a.y1)])
    if change == "sofa gone":
        s = worlds.FURNITURE["sofa"]
        return changed_world(plain, remove=[(s.x0, s.y0, s.x1, s.y1)])
    assert change == "none"
    return plain


@functools.cache
def feeds_of(change: str, waypoints: tuple, seed: int) -> tuple[Feed, ...]:
    world = home_with(change)
    return tuple(drive(SimulatedRobot(world, seed=seed), route(world, list(waypoints))))


def integrate_all(feeds, doc: MapDocument | None = None, **kwargs) -> LifelongMap:
    life = LifelongMap(stored_doc() if doc is None else doc, **kwargs)
    for f in feeds:
        life.integrate(f.scan, f.truth, f.odometry)
    return life


def truth_change(change: str) -> np.ndarray:
    """(H, W) bool: the cells whose lidar-visible state the change flipped."""
    return home_with(change).walls != plain_home().walls


def near(mask: np.ndarray, cells: int = 1) -> np.ndarray:
    k = 2 * cells + 1
    return cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


@needs_jit
def test_furniture_put_in_the_room_is_found_where_it_is():
    life = integrate_all(feeds_of("box", tuple(LIVING_ROUTE), 1))
    changes = life.changes()
    assert life.scans_used > 200 and life.scans_skipped == 0
    assert len(changes.appeared) == 1 and not changes.vanished, changes.note()
    found = changes.mask(APPEARED)
    real = truth_change("box")
    # every cell found lies within one cell of the new furniture; most of it is found
    precision = np.count_nonzero(found & near(real)) / np.count_nonzero(found)
    recall = np.count_nonzero(found & real) / np.count_nonzero(real)
    assert precision >= 0.95 and recall >= 0.8, (precision, recall)
    region = changes.appeared[0]
    assert region.scans >= 5 and region.views >= 3
    assert abs(region.centroid[0] - 3.1) < 0.1 and abs(region.centroid[1] - 3.05) < 0.1


@needs_jit
def test_the_same_drive_in_the_unchanged_home_finds_nothing():
    for seed in (1, 2):
        life = integrate_all(feeds_of("none", tuple(LIVING_ROUTE), seed))
        changes = life.changes()
        assert not changes, changes.note()
        assert changes.area(APPEARED) == 0.0 and changes.area(VANISHED) == 0.0


@needs_jit
def test_with_poses_from_the_tracker():
    """The poses a localized robot has: Tracker, started at the dock (its odometry origin)."""
    doc = stored_doc()
    localizer = Localizer(doc.grid)
    for change, expect in (("box", 1), ("none", 0)):
        world = home_with(change)
        tracker = Tracker(localizer, world.start)
        life = LifelongMap(doc)
        errors = []
        for f in feeds_of(change, tuple(LIVING_ROUTE), 3):
            step = tracker.update(f.scan, f.odometry)
            errors.append(step.pose.distance_to(f.truth))
            if not step.lost and not step.reason:
                life.integrate(f.scan, step.pose, f.odometry)
        assert not tracker.lost and float(np.median(errors)) < 0.03
        changes = life.changes()
        assert len(changes.regions) == expect, changes.note()
        if expect:
            found = changes.mask(APPEARED)
            assert np.count_nonzero(found & near(truth_change(change))) >= 0.9 * found.sum()


@needs_jit
def test_a_closed_door_is_found():
    life = integrate_all(feeds_of("door", tuple(KITCHEN_ROUTE), 1))
    changes = life.changes()
    assert len(changes.appeared) == 1 and not changes.vanished, changes.note()
    found = changes.mask(APPEARED)
    door = truth_change("door")
    assert np.count_nonzero(found & ~near(door)) == 0
    # the face the robot saw, across the whole doorway (jamb to jamb, within a cell)
    cols = np.flatnonzero(found.any(axis=0))
    door_cols = np.flatnonzero(door.any(axis=0))
    assert cols.min() <= door_cols.min() + 1 and cols.max() >= door_cols.max() - 1
    # the same drive with the door open: nothing
    assert not integrate_all(feeds_of("none", tuple(KITCHEN_ROUTE), 1)).changes()


@needs_jit
def test_furniture_taken_away_is_found_vanished():
    life = integrate_all(feeds_of("sofa gone", tuple(LIVING_ROUTE), 1))
    changes = life.changes()
    assert len(changes.vanished) == 1 and not changes.appeared, changes.note()
    found = changes.mask(VANISHED)
    sofa = truth_change("sofa gone")
    assert np.count_nonzero(found & ~sofa) == 0  # only cells of the sofa
    assert np.count_nonzero(found) >= 0.8 * np.count_nonzero(sofa)


@needs_jit
def test_moved_furniture_is_found_where_it_went_and_gone_where_it_was():
    life = integrate_all(feeds_of("armchair moved", tuple(LIVING_ROUTE), 1))
    changes = life.changes()
    assert len(changes.appeared) == 1 and len(changes.vanished) == 1, changes.note()
    plain, moved = plain_home().walls, home_with("armchair moved").walls
    for kind, real in ((APPEARED, moved & ~plain), (VANISHED, plain & ~moved)):
        found = changes.mask(kind)
        assert np.count_nonzero(found & ~near(real)) == 0, kind
        assert np.count_nonzero(found & real) >= 0.8 * np.count_nonzero(real), kind


def with_person(feed: Feed, xy: tuple[float, float] | None, radius: float = 0.15) -> Feed:
    """The feed's scan with a person (a disc of `radius` m at world `xy`) in it."""
    if xy is None:
        return feed
    scan = feed.scan
    s = scan.origin(feed.truth)
    a = scan.angles.astype(np.float64) + s.theta
    dx, dy = xy[0] - s.x, xy[1] - s.y
    along = dx * np.cos(a) + dy * np.sin(a)
    across2 = dx * dx + dy * dy - along**2
    inside = (along > 0) & (across2 < radius**2)
    r = np.where(inside, along - np.sqrt(np.maximum(radius**2 - across2, 0.0)), np.inf)
    ranges = np.minimum(scan.ranges.astype(np.float64), r).astype(np.float32)
    person = Scan(ranges, scan.angles, scan.stamp, scan.range_min, scan.range_max,
                  scan.sensor, scan.duration)  # fmt: skip
    return Feed(person, feed.truth, feed.odometry)


@needs_jit
def test_a_person_walking_by_and_standing_a_while_is_no_change():
    feeds = feeds_of("none", tuple(LIVING_ROUTE), 1)
    t0 = feeds[40].scan.stamp
    a, b = np.array([3.6, 0.6]), np.array([3.6, 4.4])

    def person(t: float):  # walks at 0.4 m/s, stands 4 s half-way, walks on, then is gone
        d = 0.4 * (t - t0)
        half = 0.5 * float(np.hypot(*(b - a)))
        d = d if d < half else half if d < half + 1.6 else d - 1.6
        if d < 0 or d > 2 * half:
            return None
        return tuple(a + (b - a) * d / (2 * half))

    life = integrate_all([with_person(f, person(f.scan.stamp)) for f in feeds])
    assert life.scans_skipped == 0
    assert not life.changes(), life.changes().note()


@needs_jit
def test_one_scan_at_a_wrong_pose_changes_nothing():
    feeds = feeds_of("none", tuple(LIVING_ROUTE), 1)
    life = integrate_all(feeds)
    wrong = feeds[100].truth.compose(Pose(0.4, -0.3, 0.5))
    for _ in range(10):  # even fed ten times: one viewpoint, and mostly refused
        result = life.integrate(feeds[100].scan, wrong, feeds[100].odometry)
    assert not life.changes(), life.changes().note()
    # a pose far off puts beams through walls: the scan is refused, with the reason
    worse = feeds[100].truth.compose(Pose(0.0, 0.0, 2.0))
    result = life.integrate(feeds[100].scan, worse)
    assert not result.used and "beyond stored walls" in result.reason


# ---------------------------------------------------------------------------- saving in the store
def chain_graph(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A SLAM-like pose graph: n nodes on a loop, odometry edges and a few loop closures."""
    rng = np.random.default_rng(seed)
    graph = PoseGraph()
    angle = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    poses = np.column_stack((4 + 2 * np.cos(angle), 3 + 2 * np.sin(angle), angle + math.pi / 2))
    for p in poses:
        graph.add_node(p)
    graph.fix(0)
    for i in range(n - 1):
        z = Pose.from_array(poses[i]).between(Pose.from_array(poses[i + 1])).as_array()
        graph.add_edge(i, i + 1, z + rng.normal(0, [0.01, 0.01, 0.005]), (400.0, 1000.0))
    for i in range(0, n - 20, 25):
        j = i + 20
        z = Pose.from_array(poses[i]).between(Pose.from_array(poses[j])).as_array()
        graph.add_edge(i, j, z, (100.0, 300.0), robust=True, kind="loop")
    return graph.to_arrays()


@pytest.fixture
def store(tmp_path):
    """A store with the default home's plan as version 1 of floor "default", with a graph."""
    with MapStore(tmp_path / "store.db") as opened:
        opened.save(stored_doc(), "default", "slam", "the plan", pose_graph=chain_graph(300))
        yield opened


@needs_jit
def test_a_real_change_is_saved_once_and_maps_diff_shows_it(store):
    life = LifelongMap.from_store(store, "default")
    assert life.base_version == 1 and life.floor == "default"
    for f in feeds_of("box", tuple(LIVING_ROUTE), 1):
        life.integrate(f.scan, f.truth, f.odometry)
    info = life.save_if_changed(store)
    assert info is not None and info.parent == 1 and info.source == "lifelong"
    assert info.note.startswith("lifelong: 1 region appeared (0.3") and "0 vanished" in info.note
    assert [v.id for v in store.versions("default")] == [info.id, 1]
    assert store.floors()[0].current == info.id
    # the pose graph goes with it, the same graph (under the cap)
    carried, original = store.pose_graph(info.id), store.pose_graph(1)
    assert set(carried) == set(original)
    for key in original:
        np.testing.assert_array_equal(carried[key], original[key])
    # maps.diff between the parent and the new version shows the furniture, nothing else
    result = diff(store.load(1), store.load(info.id))
    assert result.counts["disappeared"] == result.counts["explored"] == 0
    appeared = result.change == 1  # union raster == the grid here (same extent)
    real = truth_change("box")
    assert np.count_nonzero(appeared & ~near(real)) == 0
    assert np.count_nonzero(appeared & real) >= 0.8 * np.count_nonzero(real)
    saved = store.load(info.id)
    assert saved.meta["lifelong"]["base"] == 1 and saved.meta["lifelong"]["appeared"] == 1
    # the working copy now stands on the new version: the same drive finds nothing more
    assert life.base_version == info.id and not life.changes()
    for f in feeds_of("box", tuple(LIVING_ROUTE), 2):
        life.integrate(f.scan, f.truth, f.odometry)
    assert life.save_if_changed(store) is None
    assert len(store.versions("default")) == 2


@needs_jit
def test_vacnav_maps_diff_shows_the_saved_change(store):
    life = LifelongMap.from_store(store)
    for f in feeds_of("door", tuple(KITCHEN_ROUTE), 1):
        life.integrate(f.scan, f.truth, f.odometry)
    info = life.save_if_changed(store)
    assert info is not None
    path = str(store.path)
    result = CliRunner().invoke(cli, ["maps", "diff", "1", str(info.id), "--store", path])
    assert result.exit_code == 0, result.output
    rows = dict(line.split(None, 1) for line in result.output.splitlines() if line.strip())
    assert float(rows["appeared_m2"]) == pytest.approx(life_area(store, info.id), abs=1e-6)
    assert float(rows["appeared_m2"]) > 0.03 and float(rows["disappeared_m2"]) == 0.0
    history = CliRunner().invoke(cli, ["maps", "history", "default", "--store", path]).output
    assert "lifelong: 1 region appeared" in history


def life_area(store: MapStore, vid: int) -> float:
    return store.load(vid).meta["lifelong"]["appeared_m2"]


@needs_jit
def test_nothing_is_written_when_nothing_changed(store):
    life = LifelongMap.from_store(store)
    for f in feeds_of("none", tuple(LIVING_ROUTE), 1):
        life.integrate(f.scan, f.truth, f.odometry)
    assert life.save_if_changed(store) is None
    assert [v.id for v in store.versions("default")] == [1]


@needs_jit
def test_a_floor_that_moved_on_is_not_overwritten(store):
    life = LifelongMap.from_store(store)
    for f in feeds_of("box", tuple(LIVING_ROUTE), 1):
        life.integrate(f.scan, f.truth, f.odometry)
    other = store.save(stored_doc(), "default", "edit", "someone else's edit")
    with pytest.raises(StaleMap, match=f"current version is v{other.id}.*built on v1"):
        life.save_if_changed(store)
    assert [v.id for v in store.versions("default")] == [other.id, 1]
    assert life.changes()  # the evidence is still there
    # a working copy that was never stored cannot be saved either
    loose = integrate_all(feeds_of("box", tuple(LIVING_ROUTE), 1))
    with pytest.raises(LifelongError, match="not made from a stored version"):
        loose.save_if_changed(store)
    # nor one saved to another floor than its base version's
    life2 = LifelongMap.from_store(store)
    for f in feeds_of("box", tuple(LIVING_ROUTE), 1):
        life2.integrate(f.scan, f.truth, f.odometry)
    with pytest.raises(LifelongError, match="belongs to floor 'default', not 'upstairs'"):
        life2.save_if_changed(store, "upstairs")
    assert len(store.versions("default")) == 2 and "upstairs" not in {
        f.name for f in store.floors()
    }


@needs_jit
def test_many_runs_stay_bounded(store):
    """30 runs, the furniture there on odd runs and gone on even ones: each run saves one
    version, and the working copy, the pose graph and the number of versions stay bounded."""
    config = LifelongConfig(max_graph_nodes=120)
    runs = {
        "box": feeds_of("box", tuple(LIVING_ROUTE), 1)[::4],
        "none": feeds_of("none", tuple(LIVING_ROUTE), 1)[::4],
    }
    first = store.load(1).cell_states()
    box = truth_change("box")
    life = LifelongMap.from_store(store, config=config)
    sizes, graphs, counts = set(), [], []
    for run in range(30):
        change = "box" if run % 2 == 0 else "none"
        for f in runs[change]:
            life.integrate(f.scan, f.truth, f.odometry)
        info = life.save_if_changed(store, keep_versions=4)
        assert info is not None, f"run {run}: {life.changes().note()}"
        expected = "1 region appeared" if change == "box" else "0 regions appeared"
        assert expected in info.note, (run, info.note)
        states = store.load(info.id).cell_states()
        flipped = states != first
        if change == "box":  # the furniture is in the map, and nothing else changed
            assert np.count_nonzero(flipped & box) >= 0.8 * np.count_nonzero(box)
            assert np.count_nonzero(flipped & ~near(box)) == 0
        else:  # back to the plan, give or take a few cells at the furniture's edge
            assert np.count_nonzero(flipped) * 0.05**2 <= 0.02, (run, np.count_nonzero(flipped))
        sizes.add(life.memory_bytes)
        graphs.append(PoseGraph.from_arrays(store.pose_graph(info.id)).num_nodes)
        counts.append(len(store.versions("default")))
    assert len(sizes) == 1 and sizes.pop() <= 10 * np.prod(life.shape)  # bytes per cell
    assert max(graphs) <= 120 and graphs[-1] == graphs[0]
    assert max(counts) <= 4 and counts[-1] == 4


# ---------------------------------------------------------------------------- bad input
def still_feed() -> Feed:
    """One scan of the plain home taken standing at the dock, with its true pose."""
    robot = SimulatedRobot(plain_home(), seed=0)
    robot.drive(0.0, 0.0, 0.2)
    return Feed(robot.scans()[0], robot.true_pose, robot.odometry())


def test_bad_scans_and_poses_are_skipped_with_the_reason(store):
    life = LifelongMap.from_store(store)
    feed = still_feed()
    scan = feed.scan
    # NaN ranges: a Scan refuses them; one changed afterwards loses those beams only
    with pytest.raises(ValueError, match="NaN"):
        Scan(np.full(360, np.nan, np.float32), scan.angles, 0.0)
    damaged = Scan(scan.ranges.copy(), scan.angles, scan.stamp, scan.range_min, scan.range_max)
    damaged.ranges[::7] = np.nan
    result = life.integrate(damaged, feed.truth)
    assert result.used and result.dropped == len(scan.ranges[::7])
    damaged.ranges[:] = np.nan
    result = life.integrate(damaged, feed.truth)
    assert not result.used and "no valid beam" in result.reason and result.dropped == 360
    # no return at all, or a handful of returns
    empty = Scan(np.full(360, np.inf, np.float32), scan.angles, 0.0, 0.15, 6.0)
    result = life.integrate(empty, feed.truth)
    assert not result.used and "only 0 valid returns" in result.reason
    few = Scan(np.where(np.arange(360) < 10, 1.0, np.inf).astype(np.float32), scan.angles, 0.0)
    assert "only 10 valid returns" in life.integrate(few, feed.truth).reason
    # poses off the map, or outside the home (unknown in the map)
    result = life.integrate(scan, Pose(40.0, -3.0, 0.0))
    assert not result.used and "off the map" in result.reason
    result = life.integrate(scan, Pose(-0.5, -0.5, 0.0))
    assert not result.used and "unknown space" in result.reason
    with pytest.raises(ValueError, match="finite"):
        Pose(float("nan"), 0.0, 0.0)
    with pytest.raises(TypeError, match="maps.Scan"):
        life.integrate(scan.ranges, feed.truth)
    with pytest.raises(TypeError, match="maps.Pose"):
        life.integrate(scan, (1.0, 2.0, 0.0))
    with pytest.raises(TypeError, match="odometry"):
        life.integrate(scan, feed.truth, (0.1, 0.0))
    # absurd ranges from a sensor without a range limit are ignored, not traced for hours
    wild = Scan(np.where(np.arange(360) % 2, 1e9, scan.ranges).astype(np.float32), scan.angles, 0)
    start = time.perf_counter()
    result = life.integrate(wild, feed.truth)
    assert result.used and time.perf_counter() - start < 5.0
    # speeds that are not numbers: the scan cannot be de-skewed
    moving = Scan(scan.ranges, scan.angles, 0.0, 0.15, 6.0, duration=0.2)
    result = life.integrate(moving, feed.truth, Odometry(Pose(), 0.0, float("nan"), 0.0))
    assert not result.used and "not finite" in result.reason
    assert life.integrate(moving, feed.truth, Pose()).used  # a Pose: no motion to undo
    assert life.scans_used == 3 and life.scans_skipped == 6
    with pytest.raises(ValueError, match="keep_versions"):
        life.save_if_changed(store, keep_versions=0)
    assert life.save_if_changed(store) is None and len(store.versions("default")) == 1


def test_maps_that_cannot_be_used_are_refused(store):
    plan = stored_doc()
    coarse = MapDocument(OccupancyGrid(plan.grid.log_odds[::2, ::2].copy(), 0.1, plan.grid.origin))
    with pytest.raises(ValueError, match="resolution 0.1 m differs from the expected 0.05 m"):
        LifelongMap(coarse, expected_resolution=0.05)
    huge = MapDocument(OccupancyGrid(plan.grid.log_odds, 0.5, plan.grid.origin))
    with pytest.raises(ValueError, match="outside"):
        LifelongMap(huge)
    with pytest.raises(ValueError, match="unknown everywhere"):
        LifelongMap(MapDocument(OccupancyGrid(np.zeros((50, 50), np.float32), 0.05, (0, 0))))
    broken = MapDocument(OccupancyGrid(plan.grid.log_odds.copy(), 0.05, plan.grid.origin))
    broken.grid.log_odds[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LifelongMap(broken)
    with pytest.raises(TypeError, match="MapDocument"):
        LifelongMap(plan.grid)
    with pytest.raises(ValueError, match="min_views"):
        LifelongConfig(min_scans=2, min_views=3)
    with pytest.raises(ValueError, match="min_scans must be at most 127"):
        LifelongConfig(min_scans=200)
    with pytest.raises(ValueError, match="through_offset must be > 0"):
        LifelongConfig(through_offset=float("nan"))


@needs_jit
def test_a_working_copy_that_does_not_match_its_version_is_not_saved(store):
    plan = stored_doc()
    coarse = MapDocument(OccupancyGrid(plan.grid.log_odds[::2, ::2].copy(), 0.1, plan.grid.origin))
    life = LifelongMap(coarse, base_version=1, floor="default")
    for f in feeds_of("box", tuple(LIVING_ROUTE), 1):
        life.integrate(f.scan, f.truth, f.odometry)
    assert life.changes()  # it found the furniture in its own coarse map ...
    with pytest.raises(LifelongError, match="does not match v1.*resolution 0.1 m vs 0.05 m"):
        life.save_if_changed(store)
    assert len(store.versions("default")) == 1  # ... and wrote nothing


@needs_jit
def test_seen_from_one_place_is_no_change():
    """An obstacle in front of a robot that stands still: many scans, one viewpoint."""
    feeds = feeds_of("none", tuple(LIVING_ROUTE), 1)
    still = [with_person(feeds[0], (4.5, 1.2))] * 40
    life = integrate_all(still)
    assert life.scans_used == 40 and not life.changes()
    # the same obstacle seen along the drive is a new obstacle
    life = integrate_all([with_person(f, (3.6, 2.5)) for f in feeds])
    assert [r.kind for r in life.changes().regions] == [APPEARED]


# ---------------------------------------------------------------------------- pose graph cap
def test_the_pose_graph_is_capped_and_stays_usable():
    arrays = chain_graph(300)
    assert cap_pose_graph(arrays, 300) is not arrays
    assert cap_pose_graph(arrays, 300)["poses"] is arrays["poses"]  # within the cap: as it is
    capped = cap_pose_graph(arrays, 60)
    graph = PoseGraph.from_arrays(capped)
    assert graph.num_nodes <= 60 and capped["fixed"][0]
    kept = np.isin(arrays["poses"][:, 0], capped["poses"][:, 0])
    assert kept[0] and kept[-1]
    # optimising the capped graph from disturbed poses brings it back to the stored estimate
    rng = np.random.default_rng(1)
    noisy = capped["poses"] + rng.normal(0, [0.05, 0.05, 0.02], capped["poses"].shape)
    noisy[0] = capped["poses"][0]
    graph.set_poses(noisy)
    graph.optimize()
    err = np.hypot(*(graph.poses[:, :2] - capped["poses"][:, :2]).T)
    assert err.max() < 0.01, err.max()
    assert cap_pose_graph(capped, 60)["poses"] is capped["poses"]  # a second cap: unchanged
    with pytest.raises(ValueError, match="not a stored pose graph"):
        cap_pose_graph({"poses": np.zeros((3, 3))}, 2)
    broken = dict(arrays, ij=arrays["ij"] + 1000)
    with pytest.raises(ValueError, match="names a node or kind it lacks"):
        cap_pose_graph(broken, 60)


# ---------------------------------------------------------------------------- MapStore.prune
def small_doc(k: int) -> MapDocument:
    states = np.zeros((20, 20), np.int8)
    states[k % 20, :] = 1
    return MapDocument.from_cells(states, 0.05, (0.0, 0.0))


def test_prune_keeps_the_newest_the_current_and_its_parent(tmp_path):
    with MapStore(tmp_path / "p.db") as store:
        ids = [store.save(small_doc(k), "default", "slam").id for k in range(8)]
        up = store.save(small_doc(0), "upstairs", "slam").id
        store.set_current("default", ids[2])  # the current one is an old one
        removed = store.prune("default", 3)
        assert removed == [ids[0], ids[3], ids[4]]
        left = [v.id for v in store.versions("default")]
        assert left == [ids[7], ids[6], ids[5], ids[2], ids[1]]
        assert store.load(floor="default").grid.log_odds[2, 0] > 0  # still version ids[2]
        assert [v.id for v in store.versions("upstairs")] == [up]  # other floors untouched
        assert store.prune("default", 10) == [] and store.check(full=True) == []
        with pytest.raises(ValueError, match="keep"):
            store.prune("default", 0)
        with pytest.raises(MapNotFound):
            store.prune("cellar", 2)
    with MapStore(tmp_path / "p.db", readonly=True) as store, pytest.raises(MapError, match="read"):
        store.prune("default", 1)


def test_prune_is_one_transaction(tmp_path):
    """A delete that fails half-way (an SQLite trigger refuses one) leaves every version."""
    path = tmp_path / "p.db"
    with MapStore(path) as store:
        ids = [store.save(small_doc(k), "default", "slam").id for k in range(6)]
    raw = sqlite3.connect(path)
    raw.execute(
        f"CREATE TRIGGER refuse BEFORE DELETE ON versions WHEN old.id = {ids[2]} "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    raw.commit()
    raw.close()
    with MapStore(path) as store:
        with pytest.raises(MapError, match="refused"):
            store.prune("default", 1)
        assert [v.id for v in store.versions("default")] == ids[::-1]
        store._con.execute("DROP TRIGGER refuse")
        assert store.prune("default", 1) == ids[:4]


def test_prune_killed_at_random_moments_loses_nothing(tmp_path):
    """Writers that save and prune in a loop, SIGKILLed at random: the store stays intact and
    the current version loads."""
    path = tmp_path / "k.db"
    child = (
        "import sys, numpy as np\n"
        "from maps.model import MapDocument\n"
        "from maps.store import MapStore\n"
        "k = 0\n"
        "with MapStore(sys.argv[1]) as s:\n"
        "    while True:\n"
        "        st = np.zeros((400, 400), np.int8); st[k % 400] = 1; k += 1\n"
        "        s.save(MapDocument.from_cells(st, 0.05, (0, 0)), 'default', 'slam')\n"
        "        print('pruned', s.prune('default', 2), flush=True)\n"
    )
    rng = np.random.default_rng(3)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", child, str(path)], stdout=subprocess.PIPE)
        proc.stdout.readline()  # one save and prune done: the loop is running
        time.sleep(float(rng.uniform(0.0, 0.15)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        with MapStore(path) as store:
            assert store.check(full=True) == []
            current = store.floors()[0].current
            store.load(current)
            assert len(store.versions("default")) <= 3


# ---------------------------------------------------------------------------- real plans
def observed_hits(world: World, feeds) -> np.ndarray:
    """(H, W) int: in how many scans a return (within 4 m) ended in each cell, at true poses."""
    counts = np.zeros(world.shape, np.int32)
    h, w = world.shape
    for f in feeds:
        pts = f.scan.endpoints(f.truth)
        close = np.hypot(*(pts - [f.truth.x, f.truth.y]).T) <= 4.0
        i = np.floor((pts[close, 1] - world.origin[1]) / world.resolution).astype(np.int64)
        j = np.floor((pts[close, 0] - world.origin[0]) / world.resolution).astype(np.int64)
        ok = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        counts.flat[np.unique(i[ok] * w + j[ok])] += 1
    return counts


def crossed_counts(world: World, feeds, reach: float = 4.0) -> np.ndarray:
    """(H, W) int: in how many scans a beam crossed each cell within `reach` m of the sensor,
    at true poses (the cells a scan saw through)."""
    config = GridConfig(world.resolution, -1.0, 1e-6, -1e9, 1e9, 0.0, world.resolution)
    grid = OccupancyGrid(np.zeros(world.shape, np.float32), world.resolution, world.origin, config)
    for f in feeds:
        r = np.minimum(f.scan.ranges, reach).astype(np.float32)
        scan = Scan(np.where(f.scan.hit_mask, r, np.inf), f.scan.angles, 0.0, sensor=f.scan.sensor)
        grid.integrate(f.truth, scan)
    h, w = world.shape
    return np.rint(-grid.log_odds[:h, :w]).astype(np.int32)  # the grid never grows here


def score(changes, real: np.ndarray, hits: np.ndarray, kind: str = APPEARED, min_block=20) -> dict:
    """How the regions of `kind` match the real change `real` ((H, W) bool cells).

    `hits`: in how many scans each cell got a return (`observed_hits` of the world that has the
    furniture). precision_1 / precision_2: share of the cells found within 1 / 2 cells of a real
    change; false_m2: area found farther than 2 cells (0.05 m cells); blocks: real changes of
    at least `min_block` cells (one-cell table legs are left out of the recall); observed: of
    those, the ones with returns in at least 5 scans; found: observed blocks a region touches
    (within a cell); face_recall: share of the observed cells of the blocks found (within a
    cell)."""
    found = changes.mask(kind)
    n_found = max(1, int(np.count_nonzero(found)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(real.astype(np.uint8), connectivity=8)
    blocks = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_block]
    observed = [k for k in blocks if hits[near(labels == k)].max(initial=0) >= 5]
    hit_blocks = [k for k in observed if (found & near(labels == k)).any()]
    faces = real & (hits >= 5) & np.isin(labels, blocks)
    other = VANISHED if kind == APPEARED else APPEARED
    return {
        "precision_1": np.count_nonzero(found & near(real, 1)) / n_found,
        "precision_2": np.count_nonzero(found & near(real, 2)) / n_found,
        "false_m2": np.count_nonzero(found & ~near(real, 2)) * 0.05**2,
        "found_m2": changes.area(kind),
        "other_kind_m2": changes.area(other),
        "blocks": len(blocks),
        "observed": len(observed),
        "found": len(hit_blocks),
        "face_recall": np.count_nonzero(near(found) & faces) / max(1, np.count_nonzero(faces)),
    }


@needs_jit
def test_furniture_of_a_furnished_home_is_found(shared_data):
    """Map from the plain plan, the robot through the furnished home (its invisible obstacles
    too); then the same route through the plain plan: nothing."""
    stem = shared_data / "homes" / "home_5a5ec7bd"
    plan = World.from_png(f"{stem}.png")
    world = World.from_png(f"{stem}_furnished.png", f"{stem}_invisible.png")
    doc = MapDocument(map_from_world(plan))
    points = route(world, tour_waypoints(world))
    feeds = drive(SimulatedRobot(world, seed=1), points)
    life = integrate_all(feeds, doc)
    hits = observed_hits(world, feeds)
    result = score(life.changes(), world.walls & ~plan.walls, hits)
    assert result["observed"] >= 2 and result["found"] == result["observed"], result
    assert result["precision_2"] >= 0.95 and result["false_m2"] <= 0.05, result
    assert result["face_recall"] >= 0.6 and result["other_kind_m2"] == 0.0, result
    same = integrate_all(drive(SimulatedRobot(plan, seed=1), points), doc)
    assert not same.changes(), same.changes().note()
