"""Kidnap trials in the simulator: drop the robot at random poses, relocalize, score the answers.

The stored map is built from a map-source world (default: the trial world itself): its
lidar-visible obstacles become occupied cells, its outside unknown, the rest (including the
obstacles only the bumper finds) free, at the world's resolution (0.05 m for every PNG plan and
the default home). With the plain plan as map source and its furnished variant as the trial
world, the home has changed since the map was made. With `SLAM` as map source, the robot
first explores the trial world from its dock with SLAM running live (`navigation.exploration.
explore`, its defaults), and the map it rebuilt is the stored map: what a lost robot has after
`vacnav run`'s first phase, walls a cell off, clutter in it, parts perhaps unexplored. The robot
starts at random poses at least `CLEARANCE` m from anything solid, with a random heading, then
`navigation.localization.relocalize` drives it until it answers.

A trial is right when the accepted pose is within 0.10 m and 3 deg of the truth (in the map's
frame), wrong when it is accepted outside that, refused when nothing is accepted. Two counts
explain refusals the robot could not avoid: drops into a part of the world its body cannot
leave (furniture closing a door: inside, twin rooms of the map look alike), and drops where the
map holds no known floor (a part the exploration never reached). Times are the localizer's compute
time to its decision (not the simulated driving time, not the per-map build). Everything is
deterministic for a given seed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World, robot_room
from maps.geometry import Pose, wrap_angle
from maps.grid import OccupancyGrid
from maps.model import FREE, FREE_THRESH, OCCUPIED, UNKNOWN, MapDocument
from navigation.coverage import CoverageConfig
from navigation.localization import Localizer, LocalizerConfig, Result, relocalize

SLAM = "slam"  # map source: the map the robot rebuilds exploring the trial world
RIGHT_DISTANCE = 0.10  # m
RIGHT_ANGLE = math.radians(3.0)  # rad
CLEARANCE = 0.35  # m from the robot centre to anything solid at the drop


def map_from_world(world: World) -> OccupancyGrid:
    """The stored map of a world: walls occupied, outside unknown, everything else free."""
    states = np.full(world.shape, FREE, np.int8)
    states[world.outside] = UNKNOWN
    states[world.walls] = OCCUPIED
    return MapDocument.from_cells(states, world.resolution, world.origin).grid


def drop_poses(world: World, n: int, seed: int, clearance: float = CLEARANCE) -> list[Pose]:
    """n random poses on free floor at least `clearance` m from anything solid, random
    headings; deterministic for a seed. Raises ValueError if the world has no such floor."""
    ok = robot_room(world.free, world.resolution, 0.0) >= clearance
    rows, cols = np.nonzero(ok & world.free)
    if rows.size == 0:
        raise ValueError(f"world {world.name!r} has no floor {clearance} m from every obstacle")
    rng = np.random.default_rng(seed)
    picks = rng.integers(rows.size, size=n)
    jitter = rng.uniform(-0.5, 0.5, size=(n, 2))
    headings = rng.uniform(-math.pi, math.pi, size=n)
    ox, oy = world.origin
    res = world.resolution
    return [
        Pose(
            ox + (cols[k] + 0.5 + jitter[q, 0] * 0.9) * res,
            oy + (rows[k] + 0.5 + jitter[q, 1] * 0.9) * res,
            float(headings[q]),
        )
        for q, k in enumerate(picks.tolist())
    ]


def run_trials(
    world: World,
    map_from: World | OccupancyGrid | str | Path | None = None,
    trials: int = 100,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
    config: LocalizerConfig | None = None,
    frame: Pose | None = None,
) -> dict:
    """Kidnap `trials` simulated robots in `world` and relocalize each in the stored map.

    `map_from`: the map source, a World, a floor-plan PNG path, `SLAM` (the map rebuilt by
    exploring `world`, `slam_map`), or an OccupancyGrid used as it is (default: `world`
    itself). `frame`: the grid's origin pose in the world (default the identity; `SLAM` sets
    it). `progress(done, trials, trial)` is called after every trial with the trial's record.
    Returns {"trials", "right", "wrong", "refused", "median_ms", "p99_ms", "median_scans"} plus
    "build_ms" (the per-map cache), "refused_sealed" and "refused_unmapped" (see the module
    docstring), "failures" (the wrong and refused trials: truth, answer, reason) and "reasons"
    (refusal reasons counted by kind); with `SLAM`, "explore" (what the exploration did) and
    "right_on_map", "wrong_on_map": the answers judged against the truth re-matched to the
    rebuilt map (as `relocalize_log.MapReference` does on a log), which is a little off the
    world here and there.
    """
    if trials < 0:
        raise ValueError(f"trials must be >= 0, got {trials}")
    explored = None
    if isinstance(map_from, str) and map_from == SLAM:
        grid, frame, explored = slam_map(world, seed)
    else:
        grid = _map_grid(world, map_from)
    frame = frame or Pose()
    own = explored is not None  # the robot's own map holds the furniture
    _warm_up(Localizer(grid, config), world)  # numba loads (or compiles) here, untimed
    localizer = Localizer(grid, config, own_map=own)
    poses = drop_poses(world, trials, seed)
    home = world.reachable(CoverageConfig().robot_radius)
    known = grid.probability() < FREE_THRESH  # the map's known free floor
    to_map = frame.inverse()
    records = []
    for k, start in enumerate(poses):
        robot = SimulatedRobot(world, seed=seed * 100_003 + k, start=start)
        result = relocalize(localizer, robot)
        truth = to_map.compose(robot.true_pose)
        record = _judge(result, truth, start)
        record["sealed"] = not home[world.cell_of(start.x, start.y)]
        record["unmapped"] = not _on_known_floor(grid, known, truth)
        if explored is not None and result.localized:
            # a rebuilt map is a little off the world here and there (the truth is put in it by
            # the dock's pose alone): judge again against the truth re-matched to the map
            matched = _judge(result, _matched(localizer, robot, truth), start)
            record["outcome_on_map"] = matched["outcome"]
            record["error_on_map_m"] = matched["error_m"]
        records.append(record)
        if progress is not None:
            progress(k + 1, trials, record)
    report = summarize_trials(records, localizer)
    if explored is not None:
        report["explore"] = explored
        on_map = [r.get("outcome_on_map", r["outcome"]) for r in records]
        report["right_on_map"] = on_map.count("right")
        report["wrong_on_map"] = on_map.count("wrong")
    return report


def _matched(localizer: Localizer, robot: SimulatedRobot, truth: Pose) -> Pose:
    """Where a scan taken at the robot's place fits the map best near `truth` (map frame):
    the pose tracking in this map would hold (`Localizer.locate`, 0.3 m and 5 deg around)."""
    robot.drive(0.0, 0.0, 0.25)
    scans = robot.scans()
    if not scans:
        return truth
    return localizer.fit_near(scans[-1], truth, 0.3, math.radians(5.0))


def slam_map(world: World, seed: int = 0) -> tuple[OccupancyGrid, Pose, dict]:
    """Explore `world` from its start (the dock) with SLAM running live and the exploration's
    defaults: (the rebuilt grid, its frame's pose in the world: the start, a summary of the
    exploration: stop reason, robot time, bumps)."""
    from navigation.exploration import explore

    robot = SimulatedRobot(world, seed=seed)
    result = explore(robot)
    summary = {
        "stop": result.stop_reason,
        "time_s": round(result.time_s, 1),
        "bumps": len(result.bumps),
    }
    return result.grid, world.start, summary


def _on_known_floor(grid: OccupancyGrid, known: np.ndarray, pose: Pose) -> bool:
    """True when `known` (the grid's known free cells) holds the cell under `pose` (map
    frame)."""
    i, j = grid.world_to_cell(np.array([[pose.x, pose.y]]))[0]
    h, w = known.shape
    return bool(0 <= i < h and 0 <= j < w and known[i, j])


def _map_grid(world: World, map_from: World | OccupancyGrid | str | Path | None) -> OccupancyGrid:
    if map_from is None:
        return map_from_world(world)
    if isinstance(map_from, OccupancyGrid):
        return map_from
    if isinstance(map_from, World):
        return map_from_world(map_from)
    return map_from_world(World.from_png(map_from, resolution=world.resolution))


def _warm_up(localizer: Localizer, world: World) -> None:
    """Load (or compile) the numba kernels before anything is timed."""
    if localizer.problem is not None:
        return
    robot = SimulatedRobot(world, seed=0)
    robot.drive(0.0, 0.0, 0.25)
    for scan in robot.scans()[:1]:
        obs = localizer.observe(scan)
        if len(obs.points):
            localizer.search(obs)
            localizer.rematch(obs.points, robot.true_pose)


def _judge(result: Result, truth: Pose, start: Pose) -> dict:
    record = {
        "status": result.status,
        "ms": round(result.elapsed_ms, 3),
        "scans": result.scans_used,
        "start": [round(start.x, 3), round(start.y, 3), round(start.theta, 4)],
        "reason": result.reason,
    }
    if result.localized and result.pose is not None:
        err = math.hypot(result.pose.x - truth.x, result.pose.y - truth.y)
        aerr = abs(float(wrap_angle(result.pose.theta - truth.theta)))
        record["outcome"] = "right" if err <= RIGHT_DISTANCE and aerr <= RIGHT_ANGLE else "wrong"
        record["error_m"] = round(err, 4)
        record["error_deg"] = round(math.degrees(aerr), 3)
        record["answer"] = [round(result.pose.x, 3), round(result.pose.y, 3)]
        record["truth"] = [round(truth.x, 3), round(truth.y, 3), round(truth.theta, 4)]
    else:
        record["outcome"] = "refused"
    return record


def summarize_trials(records: list[dict], localizer: Localizer) -> dict:
    """The report of judged trials (see `run_trials`); refusal reasons counted by kind."""
    ms = np.array([r["ms"] for r in records], dtype=np.float64)
    scans = np.array([r["scans"] for r in records], dtype=np.float64)
    count = {k: sum(r["outcome"] == k for r in records) for k in ("right", "wrong", "refused")}
    reasons: dict[str, int] = {}
    for r in records:
        if r["outcome"] == "refused":
            kind = reason_kind(r["reason"])
            reasons[kind] = reasons.get(kind, 0) + 1
    refused = [r for r in records if r["outcome"] == "refused"]
    return {
        "trials": len(records),
        "right": count["right"],
        "wrong": count["wrong"],
        "refused": count["refused"],
        "median_ms": round(float(np.median(ms)), 2) if len(ms) else 0.0,
        "p99_ms": round(float(np.quantile(ms, 0.99)), 2) if len(ms) else 0.0,
        "median_scans": float(np.median(scans)) if len(scans) else 0.0,
        "build_ms": round(localizer.build_ms, 2),
        "map_problem": localizer.problem,
        "reasons": reasons,
        "refused_sealed": sum(bool(r.get("sealed")) for r in refused),
        "refused_unmapped": sum(bool(r.get("unmapped")) for r in refused),
        "failures": [r for r in records if r["outcome"] != "right"],
    }


# ---------------------------------------------------------------------------- floors
def mirrored(world: World, upside_down: bool = False, name: str | None = None) -> World:
    """The world flipped left to right (or top to bottom): the same rooms in the mirror image,
    another floor plan as far as the localizer is concerned, and a hard distractor (every wall
    has its twin)."""
    h, w = world.shape
    res, (ox, oy), s = world.resolution, world.origin, world.start
    if upside_down:
        flip = (slice(None, None, -1), slice(None))
        start = Pose(s.x, 2 * oy + h * res - s.y, -s.theta)
    else:
        flip = (slice(None), slice(None, None, -1))
        start = Pose(2 * ox + w * res - s.x, s.y, math.pi - s.theta)
    return World(
        name or f"{world.name} (mirrored)",
        world.walls[flip],
        world.invisible[flip],
        world.outside[flip],
        res,
        world.origin,
        start,
    )


def run_floor_trials(
    floors: dict[str, tuple[World, World | OccupancyGrid]],
    trials: int = 99,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
    config: LocalizerConfig | None = None,
) -> dict:
    """Kidnap trials over several stored floors: trial k drops the robot on floor k mod n
    (`floors[name]` = (the world it drives in, its stored map: a World or a grid)) and
    `navigation.floors.relocalize_floors` must find the floor and the pose.

    Returns {"floors", "trials", "right_floor", "wrong_floor", "refused", "right", "wrong",
    "median_ms", "p99_ms", "median_scans", "failures"}: right/wrong as in `run_trials`, counted
    only on the right floor (a pose on the wrong floor is wrong).
    """
    from navigation.floors import relocalize_floors

    if trials < 0:
        raise ValueError(f"trials must be >= 0, got {trials}")
    if not floors:
        raise ValueError("no floors given")
    names = list(floors)
    localizers = {n: Localizer(_map_grid(w, m), config) for n, (w, m) in floors.items()}
    for n, (w, _) in floors.items():
        _warm_up(localizers[n], w)
    per_floor = {
        n: drop_poses(floors[n][0], -(-trials // len(names)), seed + i) for i, n in enumerate(names)
    }
    records = []
    for k in range(trials):
        name = names[k % len(names)]
        world = floors[name][0]
        start = per_floor[name][k // len(names)]
        robot = SimulatedRobot(world, seed=seed * 100_003 + k, start=start)
        found = relocalize_floors(localizers, robot)
        record = _judge(
            found.result
            if found.localized
            else Result(found.status, reason=found.reason, scans_used=found.scans_used),
            robot.true_pose,
            start,
        )
        record["ms"] = round(found.elapsed_ms, 3)
        record["floor"], record["answer_floor"] = name, found.floor
        if found.localized and found.floor != name:
            record["outcome"] = "wrong"
        records.append(record)
        if progress is not None:
            progress(k + 1, trials, record)
    report = summarize_trials(records, next(iter(localizers.values())))
    decided = [r for r in records if r["answer_floor"] is not None]
    report.pop("build_ms"), report.pop("map_problem")
    return {
        "floors": names,
        "trials": report["trials"],
        "right_floor": sum(r["answer_floor"] == r["floor"] for r in decided),
        "wrong_floor": sum(r["answer_floor"] != r["floor"] for r in decided),
        **{k: v for k, v in report.items() if k != "trials"},
    }


def reason_kind(reason: str) -> str:
    """A refusal reason without its figures: its first clause, bracketed parts and numbers
    left out ("position loose: (1.2, 3.4) ..." -> "position loose")."""
    clause = re.sub(r"\([^)]*\)", " ", reason.split(":")[0])
    return " ".join(re.sub(r"-?\d+(\.\d+)?", " ", clause).split())
