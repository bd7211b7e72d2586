"""Which floor is the robot on? Relocalization over every floor of the map store at once.

A home with several floors keeps one stored map per floor (`maps.store.MapStore`, issue 3/6).
After a restart the robot may be on any of them. `FloorSearch` runs one `Relocalization` per
floor on the same scans (each floor's own `Localizer`), and moves are chosen to tell apart the
best hypotheses of every floor together (`localization.drive_search`). The answer:

- one floor localizes and no other floor still has a hypothesis within `margin` of its score
  (one that fits the scans and does not see through walls): that floor and its pose;
- several floors localize (alike views, e.g. a corridor, in two homes): each is then tracked
  (`localization.Tracker`) over the next scans, the moves chosen to tell them apart; a floor
  whose tracking fits badly, or falls behind the best on the same scans (by `margin` over
  `confirm_scans` scans, by margin * sqrt(confirm_scans / m) over m), is out. One left:
  that floor. Still several after `max_scans`, as with identical floors or a map stored twice:
  "refused", ambiguous, never a guess between them;
- no floor localizes: "refused" with each floor's reason.

A floor whose search still runs while another has localized is followed until it either
decides or falls `margin` behind the winner; so the usual cost is one scan or two more than on
a single floor, and the compute time is the sum over the floors.

`LocalizerCache` keeps the per-map precomputation (`Localizer`, a few ms to a few hundred ms)
per stored version, keyed by the version's id and checksum: a new version of a floor (a
lifelong update, a rebuild) gets a new one, an unchanged floor is not rebuilt.

Use:
    localizers = LocalizerCache().for_store(store)       # {floor: Localizer}
    result = relocalize_floors(localizers, robot)        # FloorResult
    result.floor, result.result.pose
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from maps.geometry import Pose
from maps.scan import Odometry, Scan
from navigation.localization import (
    LOCALIZED,
    REFUSED,
    SEARCHING,
    DriveConfig,
    Localizer,
    LocalizerConfig,
    Relocalization,
    Result,
    Tracker,
    drive_search,
)


@dataclass(frozen=True, slots=True)
class FloorResult:
    """Where a multi-floor relocalization stands: `floor` (None unless localized), the
    deciding floor's `result` (status, pose, map_from_odom, reason ...) and every floor's last
    result in `floors`. `status`, `scans_used` and `elapsed_ms` mirror `result`'s, with the
    compute time summed over the floors."""

    status: str
    floor: str | None
    result: Result
    floors: Mapping[str, Result]
    reason: str = ""
    scans_used: int = 0
    elapsed_ms: float = 0.0

    @property
    def localized(self) -> bool:
        return self.status == LOCALIZED

    @property
    def pose(self) -> Pose | None:
        return self.result.pose


class FloorSearch:
    """Relocalization on several floors at once (see the module docstring)."""

    def __init__(
        self,
        localizers: Mapping[str, Localizer],
        scan: Scan,
        odometry: Odometry | Pose | None = None,
        margin: float | None = None,
    ) -> None:
        if not localizers:
            raise ValueError("no floors to search: the store holds no map")
        self.margin = (
            margin if margin is not None else next(iter(localizers.values())).config.margin
        )
        self.searches: dict[str, Relocalization] = {}
        self.dropped: dict[str, str] = {}  # floors no longer followed, and why
        self.trackers: dict[str, Tracker] = {}  # localized floors still in the race
        self.tracked: dict[str, list[float]] = {}  # their scores since they localized
        self.scans = 0  # scans fed
        self.elapsed_ms = 0.0
        t0 = time.perf_counter()
        for name, localizer in localizers.items():
            self.searches[name] = localizer.start(scan, odometry)
        self.elapsed_ms += (time.perf_counter() - t0) * 1e3
        self.result = self._decide()

    def update(self, scan: Scan, odometry: Odometry | Pose | None = None) -> FloorResult:
        """Feed one scan (and the odometry at it) to every floor still searching."""
        if self.result.status != SEARCHING:
            return self.result
        t0 = time.perf_counter()
        self.scans += 1
        for name, search in self.searches.items():
            if name in self.dropped:
                continue
            if search.result.status == SEARCHING:
                search.update(scan, odometry)
            elif name in self.trackers:
                step = self.trackers[name].update(scan, odometry)
                cfg = search.config
                if step.reason.startswith("too few hits"):
                    continue
                if step.score < cfg.accept_score or step.through > cfg.max_through_scan:
                    self.dropped[name] = (
                        f"tracking fits badly (score {step.score:.2f}, "
                        f"{100 * step.through:.0f} % of beams through walls)"
                    )
                else:
                    self.tracked[name].append(step.score)
        self.elapsed_ms += (time.perf_counter() - t0) * 1e3
        self.result = self._decide()
        return self.result

    def in_play(self, k: int = 4) -> list[tuple[Localizer, Pose]]:
        """The best k hypotheses over the floors still searching, best first."""
        ranked = []
        for name, search in self.searches.items():
            if name in self.dropped:
                continue
            tracker = self.trackers.get(name)
            if tracker is not None and tracker.last is not None:
                ranked.append((-1.0, search.localizer, tracker.last.pose))  # localized first
            elif search.result.status == SEARCHING:
                for t in search.tracks[:k]:
                    ranked.append((-t.recent(3), search.localizer, t.pose))
        ranked.sort(key=lambda r: r[0])
        return [(loc, pose) for _, loc, pose in ranked[:k]]

    # ------------------------------------------------------------------------------ decision
    def _decide(self) -> FloorResult:
        results = {name: s.result for name, s in self.searches.items()}
        for name, r in results.items():
            if r.status == LOCALIZED and name not in self.trackers and name not in self.dropped:
                assert r.map_from_odom is not None
                self.trackers[name] = Tracker(self.searches[name].localizer, r.map_from_odom)
                self.tracked[name] = [r.score]
        won = {n: results[n] for n in self.trackers if n not in self.dropped}
        running = [n for n, r in results.items() if r.status == SEARCHING and n not in self.dropped]
        if len(won) > 1:
            # on the same scans (the last m both tracked), a gap of `margin` over
            # `confirm_scans` scans, less over more: margin * sqrt(confirm_scans / m)
            lead = max(won, key=lambda n: self._mean(n, 3))
            for n in won:
                m = min(len(self.tracked[n]), len(self.tracked[lead]))
                need = self.margin * math.sqrt(self.searches[n].config.confirm_scans / m)
                if n != lead and self._mean(lead, m) - self._mean(n, m) > need:
                    self.dropped[n] = f"falls behind floor {lead}"
            won = {n: r for n, r in won.items() if n not in self.dropped}
        if len(won) > 1:
            names = " and ".join(sorted(won))
            some = next(iter(won.values()))
            if self.scans >= max(s.config.max_scans for s in self.searches.values()):
                return self._end(
                    REFUSED, None, some, f"ambiguous: floors {names} fit the scans alike"
                )
            return self._end(SEARCHING, None, some, f"floors {names} fit: telling them apart")
        if len(won) == 1:
            ((floor, winner),) = won.items()
            for name in running:
                rival = self._rival_score(name)
                if rival is None or rival < self._mean(floor) - self.margin:
                    self.dropped[name] = f"falls behind floor {floor}"
            if all(n in self.dropped for n in running):
                if floor in self.trackers and self.trackers[floor].last is not None:
                    last = self.trackers[floor]
                    winner = dataclasses.replace(
                        winner, pose=last.last.pose, map_from_odom=last.map_from_odom
                    )
                return self._end(LOCALIZED, floor, winner, f"floor {floor}: {winner.reason}")
            return self._end(SEARCHING, None, winner, f"floor {floor} fits; checking the others")
        if not running:
            why = "; ".join(f"{n}: {self.dropped.get(n) or r.reason}" for n, r in results.items())
            best = max(results.values(), key=lambda r: r.score)
            return self._end(REFUSED, None, best, f"no floor fits ({why})")
        best = max((results[n] for n in running), key=lambda r: r.score)
        return self._end(SEARCHING, None, best, best.reason)

    def _mean(self, name: str, last: int | None = None) -> float:
        """Mean score of a localized floor over its `last` scores (all since it localized)."""
        scores = self.tracked[name][-last:] if last else self.tracked[name]
        return sum(scores) / len(scores)

    def _rival_score(self, name: str) -> float | None:
        """The best still-credible hypothesis score of a floor still searching, or None."""
        search = self.searches[name]
        cfg = search.config
        credible = [
            t.recent(cfg.confirm_scans)
            for t in search.tracks
            if t.scores[-1] >= cfg.accept_score and t.through[-1] <= cfg.max_through_scan
        ]
        return max(credible) if credible else None

    def _end(self, status: str, floor: str | None, result: Result, reason: str) -> FloorResult:
        scans = max(r.result.scans_used for r in self.searches.values())
        return FloorResult(
            status,
            floor,
            dataclasses.replace(result, elapsed_ms=self.elapsed_ms),
            {n: s.result for n, s in self.searches.items()},
            reason,
            scans,
            self.elapsed_ms,
        )


def relocalize_floors(
    localizers: Mapping[str, Localizer],
    robot,
    drive: DriveConfig | None = None,
    *,
    on_scan: Callable[[FloorResult], None] | None = None,
) -> FloorResult:
    """Relocalize a `firmware_bridge.robot.Robot` on whichever floor it is, moving it to gather
    evidence as `localization.relocalize` does. A map that cannot be used (its Localizer's
    `problem`) only takes that floor out of the race; with no usable floor the answer is
    "refused" with each floor's reason."""
    usable = {n: loc for n, loc in localizers.items() if loc.problem is None}
    if not usable:
        why = "; ".join(f"{n}: {loc.problem}" for n, loc in localizers.items()) or "no floors"
        return FloorResult(REFUSED, None, Result(REFUSED, reason=why), {}, f"no usable map ({why})")
    out = drive_search(
        robot, lambda scan, odom: FloorSearch(usable, scan, odom), drive, on_scan=on_scan
    )
    if isinstance(out, Result):  # the robot gave no scan: the search never started
        return FloorResult(out.status, None, out, {}, out.reason)
    return out


# store sources of maps built from the robot's own scans (Localizer's own_map): its SLAM, the
# lifelong updates, and the mission's saves of them
OWN_SOURCES = frozenset({"slam", "lifelong", "edit"})


class LocalizerCache:
    """Localizers of stored map versions, built once per version (id and checksum), at most
    `size` kept (least recently used dropped)."""

    def __init__(self, config: LocalizerConfig | None = None, size: int = 8) -> None:
        if size < 1:
            raise ValueError(f"LocalizerCache size must be >= 1, got {size}")
        self.config = config
        self.size = size
        self._cache: OrderedDict[tuple[int, str], Localizer] = OrderedDict()
        self.built = 0  # Localizers built so far (the rest were served from the cache)

    def get(self, store, version_id: int) -> Localizer:
        """The Localizer of stored version `version_id` of `store` (a maps.store.MapStore)."""
        info = store.info(version_id)
        key = (info.id, info.checksum)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        doc = store.load(version_id, memory=False)
        localizer = Localizer(doc.grid, self.config, own_map=info.source in OWN_SOURCES)
        self.built += 1
        self._cache[key] = localizer
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return localizer

    def for_store(self, store) -> dict[str, Localizer]:
        """{floor name: Localizer of the version the floor serves} for every floor with a map."""
        out = {}
        for floor in store.floors():
            if floor.current is None:
                continue
            out[floor.name] = self.get(store, floor.current)
        return out
