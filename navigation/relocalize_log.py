"""Relocalization trials on a recorded log: map it, then relocalize from random times of it.

The real-data counterpart of `navigation.relocalize_bench` (issue 5, part 6). A log (CARMEN,
e.g. the Intel Research Lab log) is first rebuilt into a map with SLAM as `vacnav rebuild`
does (`rebuild_log`); then each trial picks a random scan of the same log, starts a
relocalization on it with no prior (`Localizer.start`), and feeds the log's following scans
with their odometry until the localizer decides or a cap is reached. Unlike the simulator,
the robot moves as it did when the log was recorded: the trial cannot choose its moves and the
log does not stop for it.

Which scans are fed: the localizer wants a scan after each short move (its own driver,
`localization.relocalize`, turns and drives 0.25-1 m between scans). A logging robot scans
about ten times a second, so feeding every scan gives nearly the same view again and again
while the robot creeps; `step` and `turn` (default 0.1 m, 10 deg: the localizer's own
`min_travel` and half its `min_turn`) thin the log to the first scan after that much odometry
motion since the last scan fed. `step=0, turn=0` feeds every scan. Trials start at scans
with at least `horizon` seconds of log after them, and end refused when that much log passes
without a decision (or the log ends, in a log shorter than that); the localizer's own caps
(`max_scans`, ...) also end them.

Reference poses. The natural reference is the rebuild's own pose of each scan
(`Slam.trajectory`): the map's frame, and the poses the map was fused from. The corrected
poses of ../shared/data/slam/derived (FLIRT keyframes) are in another frame (their own origin
and heading), cover a subset of the scans, and carry FLIRT's own error (0.055 m mean on the
Intel relations, SOURCES.md) into a 0.10 m tolerance, so they are not used. The rebuild's poses
are not exact either: where the rebuild met the same place twice with some disagreement
(along a corridor, say), the fused map follows the majority and some scans' poses sit off it
(on Intel, the scan re-matched to the map near its rebuild pose moves by 0.1 m or more for
about 8 % of the scans; the benchmark's relations agree: those touching scans 960-1130, a
corridor pass where the rebuild is 0.15 m off its map, give it 0.076 m mean error against
0.032 m overall). `MapReference` gives a second reference, each rebuild pose re-matched
to the map by the localizer's local matcher (where tracking in this map would put the scan),
and `score_records` re-scores trials against it: an answer "wrong" against the rebuild's pose
but right against the map-matched one is where the map and the trajectory disagree, not a
wrong place.

Scoring is that of the simulator bench: right when the accepted pose is within 0.10 m and
3 deg of the reference pose of the scan at which the decision was made, wrong when accepted
outside that, refused when nothing is accepted. Times are the localizer's compute time to
its decision. Deterministic for a seed (but for the times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.logs import LogScan, LogSummary, read_log
from maps.geometry import Pose, wrap_angle
from maps.grid import OccupancyGrid
from maps.scan import Odometry, Scan
from navigation.localization import Localizer, LocalizerConfig, Result
from navigation.relocalize_bench import RIGHT_ANGLE, RIGHT_DISTANCE, summarize_trials

STEP = 0.1  # m of odometry travel between the scans fed ...
TURN = math.radians(10.0)  # ... or this much turning
HORIZON = 60.0  # s of log after the first scan before a trial is refused

Reference = np.ndarray | Sequence[Pose] | Callable[[int], Pose]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A log's scans in file order with the raw odometry at each: `odometry[k]` is the
    odometry-frame pose at `scans[k].stamp` with the speeds of the last ODOM message before it
    (zero when the log has none); `summary` is the reader's `LogSummary`."""

    scans: list[Scan]
    odometry: list[Odometry]
    summary: LogSummary

    def __len__(self) -> int:
        return len(self.scans)


def load_log(path: str | Path) -> LogRecord:
    """Read a CARMEN log (plain, .gz, .bz2, .xz) into a `LogRecord`.

    Raises `firmware_bridge.errors.LogFormatError` naming the file when it is not a log, holds
    no scan, or is cut (see `firmware_bridge.logs`)."""
    reader = read_log(path)
    scans: list[Scan] = []
    odometry: list[Odometry] = []
    v = w = 0.0
    for item in reader:
        if isinstance(item, LogScan):
            o = item.odometry
            if o.v == 0.0 and o.w == 0.0:  # FLASER lines carry no speeds: the last ODOM's
                o = Odometry(o.pose, o.stamp, v, w)
            scans.append(item.scan)
            odometry.append(o)
        elif isinstance(item, Odometry):
            v, w = item.v, item.w
    return LogRecord(scans, odometry, reader.summary)


def rebuild_log(
    scans: Sequence[Scan],
    odometry: Sequence[Odometry | Pose],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[OccupancyGrid, np.ndarray]:
    """The map of a log and the map pose of each of its scans, as `vacnav rebuild` makes them:
    every scan into `navigation.slam.slam.Slam` in order, then (grid, (N, 3) x, y, theta).
    `progress(done, total)` is called every 500 scans. ValueError for an empty log or lengths
    that differ."""
    from navigation.slam.slam import Slam

    n = _check_log(scans, odometry)
    poses = _odometry_poses(odometry)
    slam = Slam()
    for k in range(n):
        slam.add(scans[k], poses[k])
        if progress is not None and (k + 1) % 500 == 0:
            progress(k + 1, n)
    slam.finish()
    _, trajectory = slam.trajectory()
    return slam.map(), trajectory


class MapReference:
    """Reference poses re-matched to the map (see the module docstring): `ref(k)` is
    `poses[k]` moved to where `scans[k]` fits `grid` best within `window` m and `angle` rad:
    the pose a `localization.Tracker` started at `poses[k]` would hold (`Localizer.locate`,
    the localizer's local matcher, with the default `LocalizerConfig` unless `config` is
    given). It says whether relocalization found the place tracking in this map would be at,
    free of the disagreements between the rebuild's trajectory and its fused map; it shares
    the local matcher's own bias (on a log of the simulated default home, from poses 8 cm and
    2 deg off the truth: 5 mm median, 3 cm and 1.3 deg at most). Scans are de-skewed with
    the speeds of `odometry[k]` when given (Odometry items). Computed on demand and cached; a
    scan with too few hits keeps its pose. ValueError when the map cannot be matched to."""

    def __init__(
        self,
        grid: OccupancyGrid,
        scans: Sequence[Scan],
        poses: Reference,
        odometry: Sequence[Odometry | Pose] | None = None,
        window: float = 0.3,
        angle: float = math.radians(5.0),
        config: LocalizerConfig | None = None,
    ) -> None:
        if odometry is not None and len(odometry) != len(scans):
            raise ValueError(f"{len(scans)} scans but {len(odometry)} odometry poses")
        self.scans = scans
        self.odometry = odometry
        self.window = float(window)
        self.angle = float(angle)
        self.localizer = Localizer(grid, config)
        if self.localizer.problem is not None:
            raise ValueError(f"cannot match to this map: {self.localizer.problem}")
        self._poses = _reference_fn(poses, len(scans))
        self._cache: dict[int, Pose] = {}

    def __call__(self, k: int) -> Pose:
        found = self._cache.get(k)
        if found is None:
            found = self._cache[k] = self._match(k)
        return found

    def _match(self, k: int) -> Pose:
        odom = self.odometry[k] if self.odometry is not None else None
        return self.localizer.fit_near(
            self.scans[k],
            self._poses(k),
            self.window,
            self.angle,
            odom if isinstance(odom, Odometry) else None,
        )


def run_log_trials(
    scans: Sequence[Scan],
    odometry: Sequence[Odometry | Pose],
    reference: Reference,
    grid: OccupancyGrid,
    trials: int = 200,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
    config: LocalizerConfig | None = None,
    *,
    step: float = STEP,
    turn: float = TURN,
    horizon: float = HORIZON,
    own_map: bool = False,
) -> dict:
    """Relocalize `trials` times in `grid` from random scans of a log, with no prior.

    `scans[k]` was taken at odometry pose `odometry[k]` (a Pose, or an Odometry that also
    carries the speeds) and its map pose is `reference[k]`: an (N, 3) x, y, theta array, N
    Poses, or a function of k (e.g. a `MapReference`). Each trial starts at a random scan
    (uniform over the scans with `horizon` s of log after them, or over all of them in a
    shorter log; deterministic for `seed`), then feeds the following scans thinned
    to one per `step` m or `turn` rad of odometry motion (0, 0: every scan) until the localizer
    decides, `horizon` s of log pass, or the log ends. `progress(done, trials, record)` is
    called after every trial. `own_map`: `grid` was rebuilt from this robot's scans (e.g. from
    this very log), as `Localizer` takes it.

    Returns {"trials", "right", "wrong", "refused", "median_ms", "p99_ms", "median_scans"} as
    the simulator bench does, plus "median_log_s" (log seconds from the first scan to the
    decision, decided trials), "build_ms", "map_problem", "reasons" (refusal reasons counted by
    kind), "failures" (the wrong and refused records) and "records" (every trial: start and
    decision scan, outcome, answer, reference, reason; `score_records` re-scores them).

    Raises ValueError (saying which) for an empty log, lengths that differ, reference poses
    that are not (N, 3) finite, trials < 0, or a negative or non-finite step, turn or horizon.
    """
    n = _check_log(scans, odometry)
    ref = _reference_fn(reference, n)
    if trials < 0:
        raise ValueError(f"trials must be >= 0, got {trials}")
    for name, value in (("step", step), ("turn", turn), ("horizon", horizon)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    odoms = [
        o if isinstance(o, Odometry) else Odometry(p, scans[k].stamp)
        for k, (o, p) in enumerate(zip(odometry, _odometry_poses(odometry), strict=True))
    ]
    localizer = Localizer(grid, config, own_map=own_map)
    if trials:
        _warm_up(localizer, scans[0])  # numba loads (or compiles) here, untimed
    # starts: scans with `horizon` s of log after them, so that only the localizer (or the
    # horizon) ends a trial; every scan when the log is shorter than that
    stamps = np.array([s.stamp for s in scans], dtype=np.float64)
    room = np.flatnonzero(stamps <= stamps.max() - horizon)
    room = room if len(room) else np.arange(n)
    starts = room[np.random.default_rng(seed).integers(len(room), size=trials)]
    records = []
    for q, k in enumerate(starts.tolist()):
        record = _trial(localizer, scans, odoms, k, step, turn, horizon)
        _score(record, ref(record["decided_at"]))
        records.append(record)
        if progress is not None:
            progress(q + 1, trials, record)
    return _report(records, localizer)


def score_records(records: Sequence[dict], reference: Reference, n: int) -> dict:
    """Counts {"right", "wrong", "refused"} of trial records (`run_log_trials`'s "records")
    judged against another reference of the same n-scan log (see `run_log_trials`)."""
    ref = _reference_fn(reference, n)
    count = {"right": 0, "wrong": 0, "refused": 0}
    for r in records:
        judged = dict(r)
        _score(judged, ref(r["decided_at"]))
        count[judged["outcome"]] += 1
    return count


# ---------------------------------------------------------------------------- one trial
def _trial(
    localizer: Localizer,
    scans: Sequence[Scan],
    odometry: list[Odometry],
    k: int,
    step: float,
    turn: float,
    horizon: float,
) -> dict:
    """One relocalization from scan k; its record, not yet scored."""
    search = localizer.start(scans[k], odometry[k])
    at = k  # the last scan fed
    last = odometry[k].pose
    t0 = scans[k].stamp
    ended = ""
    j = k
    while search.result.status == "searching":
        j += 1
        if j >= len(scans):
            ended = "the log ended before a decision"
            break
        if abs(scans[j].stamp - t0) > horizon:
            ended = f"no decision within {horizon:g} s of log"
            break
        d = last.between(odometry[j].pose)
        if math.hypot(d.x, d.y) < step and abs(d.theta) < turn:
            continue
        search.update(scans[j], odometry[j])
        at, last = j, odometry[j].pose
    result: Result = search.result
    record = {
        "status": result.status,
        "ms": round(result.elapsed_ms, 3),
        "scans": result.scans_used,
        "start": k,
        "decided_at": at,
        "log_s": round(abs(scans[at].stamp - t0), 3),
        "reason": f"{ended}: {result.reason}" if ended else result.reason,
    }
    if result.localized and result.pose is not None:
        p = result.pose
        record["answer"] = [round(p.x, 4), round(p.y, 4), round(p.theta, 5)]
    return record


def _score(record: dict, truth: Pose) -> None:
    """Set the record's outcome (and errors) against the reference pose `truth`."""
    record["reference"] = [round(truth.x, 4), round(truth.y, 4), round(truth.theta, 5)]
    answer = record.get("answer")
    if answer is None:
        record["outcome"] = "refused"
        return
    err = math.hypot(answer[0] - truth.x, answer[1] - truth.y)
    aerr = abs(float(wrap_angle(answer[2] - truth.theta)))
    record["outcome"] = "right" if err <= RIGHT_DISTANCE and aerr <= RIGHT_ANGLE else "wrong"
    record["error_m"] = round(err, 4)
    record["error_deg"] = round(math.degrees(aerr), 3)


def _report(records: list[dict], localizer: Localizer) -> dict:
    """The simulator trials' report (`relocalize_bench.summarize_trials`), plus the median log
    time to a decision and every trial's record."""
    decided = np.array([r["log_s"] for r in records if r["outcome"] != "refused"])
    report = summarize_trials(records, localizer)
    report["median_log_s"] = round(float(np.median(decided)), 2) if len(decided) else 0.0
    report["records"] = records
    return report


def _warm_up(localizer: Localizer, scan: Scan) -> None:
    """Load (or compile) the numba kernels before anything is timed."""
    if localizer.problem is not None:
        return
    obs = localizer.observe(scan)
    if len(obs.points):
        localizer.search(obs)
        localizer.rematch(obs.points, Pose())


# ---------------------------------------------------------------------------- input checks
def _check_log(scans: Sequence, odometry: Sequence) -> int:
    n = len(scans)
    if n == 0:
        raise ValueError("the log has no scans")
    if len(odometry) != n:
        raise ValueError(f"{n} scans but {len(odometry)} odometry poses")
    for k, s in enumerate(scans):
        if not isinstance(s, Scan):
            raise ValueError(f"scans[{k}] is a {type(s).__name__}, not a maps.Scan")
    return n


def _odometry_poses(odometry: Sequence[Odometry | Pose]) -> list[Pose]:
    out = []
    for k, o in enumerate(odometry):
        if isinstance(o, Odometry):
            o = o.pose
        if not isinstance(o, Pose):
            raise ValueError(
                f"odometry[{k}] is a {type(o).__name__}, not a maps.Odometry or maps.Pose"
            )
        if not all(math.isfinite(v) for v in (o.x, o.y, o.theta)):
            raise ValueError(f"odometry[{k}] is not finite: {o}")
        out.append(o)
    return out


def _reference_fn(reference: Reference, n: int) -> Callable[[int], Pose]:
    """A function of the scan index giving its reference Pose."""
    if callable(reference) and not isinstance(reference, np.ndarray):
        return reference
    if len(reference) and isinstance(reference[0], Pose):
        ref = np.array([p.as_array() for p in reference], dtype=np.float64)
    else:
        ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (n, 3):
        raise ValueError(f"reference poses must be ({n}, 3) x, y, theta, got {ref.shape}")
    bad = ~np.isfinite(ref).all(axis=1)
    if bad.any():
        raise ValueError(
            f"reference pose {int(np.argmax(bad))} is not finite ({int(bad.sum())} such poses)"
        )
    return lambda k: Pose.from_array(ref[k])
