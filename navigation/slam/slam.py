"""Incremental occupancy-grid SLAM: feed (scan, odometry) one at a time, get poses and a map.

Front end: each scan that moved enough is matched against the older of two active submaps
(correlative search in a small window around the odometry prediction, then sub-cell
refinement), becomes a node of the pose graph and is fused into both active submaps.
Back end: finished submaps are searched for loop closures with branch and bound
(Cartographer's FastCorrelativeScanMatcher2D), accepted matches become robust edges between the
submap's anchor node and the new node, and the graph is optimised every few dozen nodes.
Every scan gets a pose: a scan that is not a node is placed relative to the last node by
odometry. Frames: odometry frame in, "map" frame out (the map frame is the front end's local
frame corrected by the optimised graph; it starts at the first scan's pose). SI units.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from maps.geometry import Pose, wrap_angle
from maps.grid import GridConfig, OccupancyGrid
from maps.scan import Scan
from navigation.slam.correlative import SearchWindow, match_branch_and_bound, match_window
from navigation.slam.matcher import RefineWeights, refine
from navigation.slam.posegraph import PoseGraph
from navigation.slam.submap import Submap

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlamConfig:
    """SLAM parameters: one set of defaults for every log and robot (SI units)."""

    grid: GridConfig = field(default_factory=GridConfig)
    max_range: float = 20.0  # m: hits farther away are not used (vacuum lidars reach 6 m)
    min_points: int = 20  # a scan with fewer usable hits is skipped (and counted)
    voxel: float = 0.05  # m: one matching point per voxel
    node_distance: float = 0.10  # m of motion (or node_angle) that makes a scan a node
    node_angle: float = math.radians(3.0)
    submap_nodes: int = 40  # nodes fused into a submap before it is finished
    local_window: SearchWindow = field(
        default_factory=lambda: SearchWindow(linear=0.15, angular=math.radians(8.0))
    )
    lost_window: SearchWindow = field(  # after an odometry jump: search wider
        default_factory=lambda: SearchWindow(linear=0.5, angular=math.radians(30.0))
    )
    local_retry_score: float = 0.35  # a front-end match scoring less is retried in lost_window
    odometry_jump: float = 0.5  # m (or 45 deg) between two scans: the odometry is not trusted
    local_weights: RefineWeights = field(  # pulls towards the odometry prediction
        default_factory=lambda: RefineWeights(occupied=1.0, translation=1.0, rotation=1.0)
    )
    match_weights: RefineWeights = field(  # pulls towards the correlative match
        default_factory=lambda: RefineWeights(occupied=1.0, translation=0.1, rotation=0.1)
    )
    local_margin: float = 0.02  # score by which the correlative match must beat the odometry
    loop_weights: RefineWeights = field(
        default_factory=lambda: RefineWeights(occupied=20.0, translation=10.0, rotation=1.0)
    )
    loop_window: SearchWindow = field(
        default_factory=lambda: SearchWindow(linear=4.0, angular=math.radians(30.0))
    )
    loop_min_score: float = 0.55
    loop_trust: tuple[float, float] = (0.3, math.radians(3.0))  # shift accepted on one match
    loop_agree: tuple[float, float] = (0.3, math.radians(3.0))  # pending shifts that agree
    loop_confirmations: int = 3  # agreeing matches that confirm a larger shift
    pending_nodes: int = 30  # how long a pending match waits for confirmation
    loop_max_chi2: float = 50.0  # a closure whose error exceeds this after optimising is dropped
    loop_every: int = 3  # search for loop closures on every n-th node
    loop_radius: float = 10.0  # m between a node and a submap centre to try a closure
    loop_candidates: int = 3  # nearest finished submaps tried per search
    recent_nodes: int = 60  # submaps holding any of the last n nodes are not loop candidates
    optimize_every: int = 50  # nodes between optimisations (when there are new closures)
    # m, rad per front-end edge: the chain is stiff next to loop closures, so a closure bends the
    # trajectory smoothly instead of locally, and a wrong one shows as a large error
    seq_sigma: tuple[float, float] = (0.003, math.radians(0.05))
    seq_robust: bool = True
    loop_sigma: tuple[float, float] = (0.05, math.radians(1.0))  # m, rad per loop closure
    match_grid_cache: int = 12  # correlative stacks kept in memory


@dataclass(slots=True)
class SlamStats:
    """What the run did, for the report."""

    scans: int = 0
    scans_used: int = 0  # matched and made nodes
    skipped_few_points: int = 0
    wide_matches: int = 0  # front-end matches that needed the wide window
    far_matches: int = 0  # front-end matches that overruled the odometry
    deskewed: int = 0  # scans corrected for the motion during their revolution
    odometry_jumps: int = 0
    nodes: int = 0
    submaps: int = 0
    loop_closures: int = 0
    loops_rejected: int = 0
    optimizations: int = 0
    optimize_s: float = 0.0
    loop_search_s: float = 0.0


@dataclass(slots=True, eq=False)
class _Closure:
    """A loop-closure match waiting to become an edge: node seen from the anchor, and the
    map-frame shift (dx, dy, dtheta) it implies for the node."""

    anchor: int
    node: int
    z: Pose
    shift: np.ndarray


@dataclass(slots=True)
class _Node:
    local: Pose  # front-end pose, local frame
    points: np.ndarray  # (M, 2) float32 robot-frame matching points
    scan: Scan


class Slam:
    """Incremental SLAM. `add(scan, odometry)` per scan; `trajectory()`, `map()` any time."""

    def __init__(self, config: SlamConfig | None = None) -> None:
        self.config = config or SlamConfig()
        self.stats = SlamStats()
        self.graph = PoseGraph()
        self.nodes: list[_Node] = []
        self.submaps: list[Submap] = []
        self._active: list[Submap] = []
        self._stamps: list[float] = []
        self._ref_node: list[int] = []  # per scan: node it is placed from (-1: none yet)
        self._rel: list[np.ndarray] = []  # per scan: pose relative to that node (3,)
        self._last_local: Pose | None = None  # local pose of the last matched scan
        self._last_odom: Pose | None = None  # odometry of the last matched scan
        self._prev_odom: Pose | None = None  # odometry of the previous scan (jump check)
        self._prev_stamp = 0.0
        self._grids: OrderedDict[int, None] = OrderedDict()
        self._new_loops = 0
        self._since_optimize = 0
        self._loop_edges: list[int] = []
        self._pending: list[_Closure] = []

    # ------------------------------------------------------------------ front end
    def add(self, scan: Scan, odometry: Pose) -> Pose:
        """Process one scan with the robot's odometry pose at scan time; returns its map pose."""
        cfg = self.config
        self.stats.scans += 1
        self._stamps.append(scan.stamp)
        jump = False
        if self._prev_odom is not None:
            step = self._prev_odom.between(odometry)
            if math.hypot(step.x, step.y) > cfg.odometry_jump or abs(step.theta) > math.pi / 4:
                jump = True
                self.stats.odometry_jumps += 1
        if scan.duration > 0 and self._prev_odom is not None and not jump:
            # motion during the revolution, from the odometry between the last two scans
            dt = scan.stamp - self._prev_stamp
            if 0 < dt <= 1.0:
                scan = scan.deskewed(step.x / dt, step.theta / dt)
                self.stats.deskewed += 1
        self._prev_odom = odometry
        self._prev_stamp = scan.stamp

        if self._last_local is None:
            predicted = Pose()
        elif jump:
            predicted = self._last_local  # the odometry is not trusted: assume no motion
        else:
            predicted = self._last_local.compose(self._last_odom.between(odometry))

        if self.nodes:
            last = self.nodes[-1].local
            moved = last.between(predicted)
            if (
                not jump
                and math.hypot(moved.x, moved.y) < cfg.node_distance
                and abs(moved.theta) < cfg.node_angle
            ):
                return self._place(len(self.nodes) - 1, last.between(predicted))

        points = self._matching_points(scan)
        if len(points) < cfg.min_points:
            self.stats.skipped_few_points += 1
            # the prediction becomes the reference, so an odometry jump at this scan is
            # absorbed here and not carried into the next prediction
            self._last_local, self._last_odom = predicted, odometry
            if self.nodes:
                return self._place(len(self.nodes) - 1, self.nodes[-1].local.between(predicted))
            return self._place(-1, predicted)

        local = self._match_local(points, predicted, jump)
        self._last_local, self._last_odom = local, odometry
        node = self._add_node(local, points, scan)
        self.stats.scans_used += 1
        return self._place(node, Pose())

    def _matching_points(self, scan: Scan) -> np.ndarray:
        """Robot-frame hit points within max_range, one per voxel, as (M, 2) float64."""
        cfg = self.config
        hit = scan.hit_mask & (scan.ranges <= cfg.max_range)
        r = scan.ranges[hit].astype(np.float64)
        a = scan.angles[hit].astype(np.float64)
        pts = scan.sensor.transform_points(np.column_stack((r * np.cos(a), r * np.sin(a))))
        if len(pts) == 0:
            return pts
        keys = np.floor(pts / cfg.voxel).astype(np.int64)
        _, first = np.unique(keys[:, 0] * 1_000_003 + keys[:, 1], return_index=True)
        return pts[np.sort(first)]

    def _match_local(self, points: np.ndarray, predicted: Pose, jump: bool) -> Pose:
        cfg = self.config
        if not self._active or len(self._active[0].nodes) < 3:
            return predicted
        target = self._active[0]
        window = cfg.lost_window if jump else cfg.local_window
        grid = target.match_grid(depth=1)
        coarse = match_window(points, grid, predicted, window)
        if coarse.score < cfg.local_retry_score and not jump:
            # a poor match: the odometry may have slipped further than the window; look wider
            wide = match_window(points, grid, predicted, cfg.lost_window)
            if wide.score > coarse.score + 0.05:
                self.stats.wide_matches += 1
                coarse = wide
        field = target.score_field()
        # two candidates: near the odometry (decides open directions such as a long corridor)
        # and at the correlative match (wins when the wheels slipped further than the prior
        # allows, if it fits clearly better)
        near, near_score = refine(points, field, predicted, cfg.local_weights, predicted)
        best, best_score = refine(points, field, coarse.pose, cfg.match_weights)
        if best_score > near_score + cfg.local_margin:
            self.stats.far_matches += 1
            return best
        return near

    def _add_node(self, local: Pose, points: np.ndarray, scan: Scan) -> int:
        cfg = self.config
        if self.nodes:
            prev = len(self.nodes) - 1
            global_prev = Pose.from_array(self.graph.pose(prev))
            node = self.graph.add_node(global_prev.compose(self.nodes[prev].local.between(local)))
            # robust: one front-end failure must not hold a loop closure off (the chain breaks
            # there instead of bending everywhere)
            self.graph.add_edge(
                prev,
                node,
                self.nodes[prev].local.between(local),
                _info(cfg.seq_sigma),
                robust=cfg.seq_robust,
            )
        else:
            node = self.graph.add_node(local)
        self.nodes.append(_Node(local, points.astype(np.float32), scan))
        self.stats.nodes = len(self.nodes)

        # submaps: two active ones overlap by half; the older one is matched against
        if not self._active:
            self._start_submap(node, local)
        for sub in self._active:
            sub.insert(node, local, scan)
        older = self._active[0]
        if len(self._active) == 1 and len(older.nodes) >= cfg.submap_nodes // 2:
            self._start_submap(node, local, insert_scan=scan)
        elif len(older.nodes) >= cfg.submap_nodes:
            older.finish()
            self._active.pop(0)
            self._start_submap(node, local, insert_scan=scan)

        if node % cfg.loop_every == 0:
            self._search_loops(node)
        self._since_optimize += 1
        if self._new_loops and self._since_optimize >= cfg.optimize_every:
            self.optimize()
        return node

    def _start_submap(self, node: int, local: Pose, insert_scan: Scan | None = None) -> None:
        sub = Submap.start(len(self.submaps), node, local, self.config.grid)
        if insert_scan is not None:
            sub.insert(node, local, insert_scan)
        self.submaps.append(sub)
        self._active.append(sub)
        self.stats.submaps = len(self.submaps)

    # ------------------------------------------------------------------ back end
    def _search_loops(self, node: int) -> None:
        cfg = self.config
        started = time.perf_counter()
        poses = self.graph.poses
        here = poses[node]
        candidates = []
        for sub in self.submaps:
            if not sub.finished or sub.nodes[-1] >= node - cfg.recent_nodes:
                continue
            anchor = Pose.from_array(poses[sub.anchor])
            centre = anchor.transform_points(
                sub.anchor_local.inverse().transform_points(sub.centre[None, :])
            )[0]
            dist = math.hypot(centre[0] - here[0], centre[1] - here[1])
            if dist <= cfg.loop_radius:
                candidates.append((dist, sub))
        candidates.sort(key=lambda c: c[0])
        points = self.nodes[node].points.astype(np.float64)
        g_node = Pose.from_array(here)
        for _, sub in candidates[: cfg.loop_candidates]:
            g_anchor = Pose.from_array(poses[sub.anchor])
            estimate = sub.anchor_local.compose(g_anchor.between(g_node))
            grid = self._match_grid(sub)
            found = match_branch_and_bound(
                points, grid, estimate, cfg.loop_window, cfg.loop_min_score
            )
            if found is None:
                continue
            refined, _ = refine(points, sub.score_field(), found.pose, cfg.loop_weights)
            if refined.distance_to(found.pose) > 2 * cfg.grid.resolution:
                continue  # the refinement slid away from the match: not a sharp optimum
            z = sub.anchor_local.between(refined)
            implied = g_anchor.compose(z)
            shift = np.array(
                [
                    implied.x - g_node.x,
                    implied.y - g_node.y,
                    wrap_angle(implied.theta - g_node.theta),
                ]
            )
            closure = _Closure(sub.anchor, node, z, shift)
            if (
                math.hypot(shift[0], shift[1]) <= cfg.loop_trust[0]
                and abs(shift[2]) <= cfg.loop_trust[1]
            ):
                self._add_loop(closure)
            else:
                self._pending.append(closure)
        if self._pending:
            self._confirm_pending(node)
        self.stats.loop_search_s += time.perf_counter() - started

    def _add_loop(self, closure: _Closure) -> None:
        edge = self.graph.add_edge(
            closure.anchor,
            closure.node,
            closure.z,
            _info(self.config.loop_sigma),
            robust=True,
            kind="loop",
        )
        self._loop_edges.append(edge)
        self.stats.loop_closures += 1
        self._new_loops += 1

    def _confirm_pending(self, node: int) -> None:
        """Accept closures that move the map far only when several agree on the same shift.

        A closure that implies a correction beyond `loop_trust` (the robot coming back after a
        long drift, or a look-alike place) waits; once `loop_confirmations` closures from at
        least two different nodes within `pending_nodes` agree on the correction to within
        `loop_agree` (m, rad), they are all accepted. A wrong match in a repetitive building
        rarely repeats with the same shift; a real revisit does.
        """
        cfg = self.config
        self._pending = [c for c in self._pending if c.node >= node - cfg.pending_nodes]
        if not self._pending:
            return
        newest = self._pending[-1]
        agree = [
            c
            for c in self._pending
            if math.hypot(*(c.shift[:2] - newest.shift[:2])) <= cfg.loop_agree[0]
            and abs(wrap_angle(c.shift[2] - newest.shift[2])) <= cfg.loop_agree[1]
        ]
        if len(agree) >= cfg.loop_confirmations and len({c.node for c in agree}) >= 2:
            for c in agree:
                self._add_loop(c)
            self._pending = [c for c in self._pending if c not in agree]
            self.optimize()

    def _match_grid(self, sub: Submap):
        """A finished submap's branch-and-bound stack, from a small LRU cache."""
        grids = self._grids
        if sub.index in grids:
            grids.move_to_end(sub.index)
        else:
            grids[sub.index] = None
            while len(grids) > self.config.match_grid_cache:
                old, _ = grids.popitem(last=False)
                self.submaps[old].drop_match_grids()
        return sub.match_grid()

    def optimize(self) -> None:
        """Optimise the pose graph now; loop closures that disagree badly are dropped."""
        started = time.perf_counter()
        self.graph.optimize()
        rejected = self._reject_loops()
        if rejected:
            self.stats.loops_rejected += rejected
            self.stats.loop_closures -= rejected
            self.graph.optimize()
        self.stats.optimizations += 1
        self.stats.optimize_s += time.perf_counter() - started
        self._new_loops = 0
        self._since_optimize = 0
        self._pending.clear()  # their shifts were measured against the old estimate

    def _reject_loops(self) -> int:
        """Remove loop closures that disagree with the optimised graph; returns how many."""
        if not self._loop_edges:
            return 0
        errors = self.graph.edge_errors()
        ids = np.asarray(self._loop_edges)
        bad = ids[errors[ids] > self.config.loop_max_chi2]
        for edge in bad:
            self.graph.remove_edge(int(edge))
        self._loop_edges = [e for e in self._loop_edges if e not in set(bad.tolist())]
        return len(bad)

    def finish(self) -> None:
        """Final optimisation after the last scan."""
        if self._loop_edges:
            self.optimize()

    # ------------------------------------------------------------------ results
    def _place(self, node: int, rel: Pose) -> Pose:
        self._ref_node.append(node)
        self._rel.append(rel.as_array())
        if node < 0:
            return rel
        return Pose.from_array(self.graph.pose(node)).compose(rel)

    def trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        """Stamps (N,) and map-frame poses (N, 3) of every scan added, in the order added."""
        ref = np.asarray(self._ref_node, dtype=np.int64)
        rel = np.asarray(self._rel, dtype=np.float64).reshape(-1, 3)
        out = rel.copy()
        has = ref >= 0
        if has.any():
            base = self.graph.poses[ref[has]]
            c, s = np.cos(base[:, 2]), np.sin(base[:, 2])
            r = rel[has]
            out[has, 0] = base[:, 0] + c * r[:, 0] - s * r[:, 1]
            out[has, 1] = base[:, 1] + s * r[:, 0] + c * r[:, 1]
            out[has, 2] = np.angle(np.exp(1j * (base[:, 2] + r[:, 2])))
        return np.asarray(self._stamps, dtype=np.float64), out

    @property
    def pose(self) -> Pose:
        """Map-frame pose of the last scan added."""
        _, poses = self.trajectory()
        return Pose.from_array(poses[-1]) if len(poses) else Pose()

    def map(self, config: GridConfig | None = None) -> OccupancyGrid:
        """A map-frame occupancy grid: every node's scan fused at its optimised pose."""
        grid_config = config or self.config.grid
        poses = self.graph.poses
        if not self.nodes:
            return OccupancyGrid.centred(0.0, 0.0, 4.0, grid_config)
        grid = OccupancyGrid.centred(poses[0, 0], poses[0, 1], 4.0, grid_config)
        for k, node in enumerate(self.nodes):
            grid.integrate(Pose.from_array(poses[k]), node.scan)
        return grid


def _info(sigma: tuple[float, float]) -> np.ndarray:
    """(3, 3) information matrix of independent x, y (sigma[0] m) and theta (sigma[1] rad)."""
    return np.diag([1 / sigma[0] ** 2, 1 / sigma[0] ** 2, 1 / sigma[1] ** 2])
