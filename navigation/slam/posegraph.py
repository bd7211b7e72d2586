"""SE(2) pose graph and its sparse Levenberg-Marquardt optimiser (the SLAM back end).

Method: SPA (Konolige et al., "Efficient Sparse Pose Adjustment for 2D Mapping", IROS 2010) with
g2o's EdgeSE2 error; H = J^T W J is assembled block-wise in numpy and solved with SuperLU.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.linalg import eigvalsh
from scipy.sparse.linalg import splu

from maps.geometry import Pose, wrap_angle

log = logging.getLogger(__name__)

HUBER_DELTA = 3.0  # whitened error sqrt(chi2) where Huber turns linear; ~97th pct of chi2(3 dof)


@dataclass(frozen=True, slots=True)
class OptimizeResult:
    """Outcome of `PoseGraph.optimize`; cost = sum of Huber(chi2) over active edges (unitless)."""

    iterations: int  # linearisations (outer Gauss-Newton / LM iterations)
    initial_cost: float
    final_cost: float
    converged: bool
    seconds: float  # wall time


def _as_pose(value: Pose | np.ndarray | tuple[float, float, float], what: str) -> np.ndarray:
    """(3,) float64 x [m], y [m], theta [rad] from a Pose or a 3-sequence."""
    if isinstance(value, Pose):
        return value.as_array()
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise ValueError(f"{what} must be a Pose or finite (x, y, theta), got {value!r}")
    return arr


def _as_information(value: np.ndarray | tuple[float, float]) -> np.ndarray:
    """(3, 3) information matrix from a matrix or from (w_xy, w_theta) weights."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == (2,):
        arr = np.diag([arr[0], arr[0], arr[1]])
    if arr.shape != (3, 3) or not np.isfinite(arr).all():
        raise ValueError(f"information must be a (3, 3) SPD matrix or (w_xy, w_theta), got {arr}")
    return arr


def _grow(arr: np.ndarray, need: int) -> np.ndarray:
    """`arr`, or a copy with room for at least `need` rows (capacity doubles: amortised O(1))."""
    if need <= len(arr):
        return arr
    out = np.zeros((max(need, 2 * len(arr)), *arr.shape[1:]), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def _residuals(
    poses: np.ndarray, ij: np.ndarray, z: np.ndarray, *, jacobians: bool = False
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Edge errors e = z^-1 (x_i^-1 x_j) as (M, 3), and de/dx_i, de/dx_j as (M, 3, 3) if asked."""
    pi, pj = poses[ij[:, 0]], poses[ij[:, 1]]
    ci, si = np.cos(pi[:, 2]), np.sin(pi[:, 2])
    dx, dy = pj[:, 0] - pi[:, 0], pj[:, 1] - pi[:, 1]
    hx, hy = ci * dx + si * dy, -si * dx + ci * dy  # x_j in the frame of x_i
    cz, sz = np.cos(z[:, 2]), np.sin(z[:, 2])
    ux, uy = hx - z[:, 0], hy - z[:, 1]
    e = np.empty((len(ij), 3))
    e[:, 0] = cz * ux + sz * uy
    e[:, 1] = -sz * ux + cz * uy
    e[:, 2] = wrap_angle(pj[:, 2] - pi[:, 2] - z[:, 2])
    if not jacobians:
        return e, None, None
    c, s = np.cos(pi[:, 2] + z[:, 2]), np.sin(pi[:, 2] + z[:, 2])  # R(theta_i + theta_z)^T
    b = np.zeros((len(ij), 3, 3))
    b[:, 0, 0], b[:, 0, 1], b[:, 1, 0], b[:, 1, 1], b[:, 2, 2] = c, s, -s, c, 1.0
    a = -b
    a[:, 0, 2] = cz * hy - sz * hx  # R_z^T dR_i^T/dtheta (t_j - t_i)
    a[:, 1, 2] = -sz * hy - cz * hx
    return e, a, b


def _huber(chi2: np.ndarray, robust: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber cost rho(chi2) and IRLS weight rho'(chi2) per edge; non-robust edges stay quadratic."""
    outer = robust & (chi2 > delta * delta)
    root = np.sqrt(chi2[outer])
    cost, weight = chi2.copy(), np.ones_like(chi2)
    cost[outer] = 2.0 * delta * root - delta * delta
    weight[outer] = delta / root
    return cost, weight


class PoseGraph:
    """Poses x, y [m], theta [rad] (world frame) linked by relative-pose measurements.

    Edge (i, j) measures pose j in the frame of pose i with a 3x3 information matrix (inverse
    covariance, units 1/m^2 and 1/rad^2). Edges live in numpy arrays grown by doubling, so a graph
    that grows during SLAM is cheap to extend and to re-optimise. Removed edges keep their id.
    """

    def __init__(self) -> None:
        self._n = self._m = 0  # nodes and edge ids in use; the arrays keep spare rows
        self._poses, self._fixed = np.zeros((16, 3)), np.zeros(16, bool)
        self._ij, self._kind = np.zeros((16, 2), int), np.zeros(16, int)
        self._z, self._info = np.zeros((16, 3)), np.zeros((16, 3, 3))
        self._robust, self._active = np.zeros(16, bool), np.zeros(16, bool)
        self._kinds: list[str] = []  # label of kind code k

    @property
    def num_nodes(self) -> int:
        """Number of nodes added."""
        return self._n

    def pose(self, i: int) -> np.ndarray:
        """(3,) float64 current estimate of node i (a copy)."""
        if not 0 <= i < self._n:
            raise IndexError(f"node {i} does not exist ({self._n} nodes)")
        return self._poses[i].copy()

    @property
    def poses(self) -> np.ndarray:
        """(N, 3) float64 copy of the current estimate: x [m], y [m], theta [rad]."""
        return self._poses[: self._n].copy()

    @property
    def active(self) -> np.ndarray:
        """(M,) bool copy: False for removed edges."""
        return self._active[: self._m].copy()

    def add_node(self, pose: Pose | np.ndarray | tuple[float, float, float]) -> int:
        """Append a node at `pose` (world frame) and return its id (0, 1, ...)."""
        value = _as_pose(pose, "pose")
        self._poses, self._fixed = _grow(self._poses, self._n + 1), _grow(self._fixed, self._n + 1)
        self._poses[self._n] = value
        self._poses[self._n, 2] = wrap_angle(value[2])
        self._n += 1
        return self._n - 1

    def add_edge(
        self,
        i: int,
        j: int,
        measurement: Pose | np.ndarray | tuple[float, float, float],
        information: np.ndarray | tuple[float, float],
        *,
        robust: bool = False,
        kind: str = "odometry",
    ) -> int:
        """Add the constraint "node j seen from node i is `measurement`" and return the edge id.

        `information` is a (3, 3) SPD matrix over (x [m], y [m], theta [rad]) or the diagonal
        weights (w_xy [1/m^2], w_theta [1/rad^2]). `robust=True` puts a Huber loss on the edge
        (use it for loop closures); `kind` is a free label counted by `edge_counts`.
        """
        z, info = _as_pose(measurement, "measurement"), _as_information(information)
        if not (0 <= i < self._n and 0 <= j < self._n) or i == j:
            raise ValueError(f"edge ({i}, {j}) needs two different node ids in 0..{self._n - 1}")
        if np.abs(info - info.T).max() > 1e-9 * np.abs(info).max() or eigvalsh(info)[0] <= 0:
            raise ValueError(
                f"information must be symmetric positive definite, got {info.tolist()}"
            )
        if kind not in self._kinds:
            self._kinds.append(kind)
        k = self._m
        for name in ("_ij", "_kind", "_z", "_info", "_robust", "_active"):
            setattr(self, name, _grow(getattr(self, name), k + 1))
        self._ij[k], self._z[k], self._info[k] = (i, j), z, info
        self._z[k, 2], self._robust[k], self._active[k] = wrap_angle(z[2]), robust, True
        self._kind[k] = self._kinds.index(kind)
        self._m += 1
        return k

    def remove_edge(self, edge_id: int) -> None:
        """Drop an edge (e.g. a rejected loop closure) from optimisation; its id stays reserved."""
        if not 0 <= edge_id < self._m:
            raise ValueError(f"edge id {edge_id} is not in 0..{self._m - 1}")
        self._active[edge_id] = False

    def fix(self, i: int) -> None:
        """Hold node `i` constant (node 0 is held by default while no node is fixed)."""
        if not 0 <= i < self._n:
            raise ValueError(f"node id {i} is not in 0..{self._n - 1}")
        self._fixed[i] = True

    def set_poses(self, poses: np.ndarray) -> None:
        """Replace the estimate with (N, 3) x [m], y [m], theta [rad]."""
        arr = np.asarray(poses, dtype=np.float64)
        if arr.shape != (self._n, 3) or not np.isfinite(arr).all():
            raise ValueError(f"expected finite ({self._n}, 3) poses, got shape {arr.shape}")
        self._poses[: self._n] = arr
        self._poses[: self._n, 2] = wrap_angle(arr[:, 2])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The active graph as plain arrays (for the map store): poses (N, 3), fixed (N,),
        ij (M, 2), z (M, 3), info (M, 3, 3), robust (M,), kind (M,) codes into kinds (K,)."""
        keep = self._active[: self._m]
        return {
            "poses": self.poses,
            "fixed": self._fixed[: self._n].copy(),
            "ij": self._ij[: self._m][keep].copy(),
            "z": self._z[: self._m][keep].copy(),
            "info": self._info[: self._m][keep].copy(),
            "robust": self._robust[: self._m][keep].copy(),
            "kind": self._kind[: self._m][keep].copy(),
            "kinds": np.array(self._kinds, dtype=str),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PoseGraph:
        """A graph rebuilt from `to_arrays` output, ready to be extended and optimised."""
        graph = cls()
        try:
            kinds = [str(k) for k in arrays["kinds"]]
            for pose in np.asarray(arrays["poses"], np.float64).reshape(-1, 3):
                graph.add_node(pose)
            for i in np.flatnonzero(np.asarray(arrays["fixed"], bool)):
                graph.fix(int(i))
            for (i, j), z, info, robust, kind in zip(
                np.asarray(arrays["ij"], np.int64).reshape(-1, 2),
                np.asarray(arrays["z"], np.float64).reshape(-1, 3),
                np.asarray(arrays["info"], np.float64).reshape(-1, 3, 3),
                np.asarray(arrays["robust"], bool),
                np.asarray(arrays["kind"], np.int64),
                strict=True,
            ):
                graph.add_edge(int(i), int(j), z, info, robust=bool(robust), kind=kinds[kind])
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"not a stored pose graph: {exc}") from None
        return graph

    def edge_counts(self) -> dict[str, int]:
        """Number of active edges per kind, e.g. {"odometry": 1227, "loop": 256}."""
        counts = np.bincount(self._kind[: self._m][self._active[: self._m]])
        return {k: int(c) for k, c in zip(self._kinds, counts, strict=False) if c}

    def edge_errors(self) -> np.ndarray:
        """(M,) whitened squared error e^T Omega e (chi2, 3 dof) of every edge id, removed too."""
        m = self._m
        e, _, _ = _residuals(self._poses[: self._n], self._ij[:m], self._z[:m])
        return np.einsum("mi,mij,mj->m", e, self._info[:m], e)

    def optimize(
        self,
        *,
        max_iterations: int = 20,
        tolerance: float = 1e-6,
        huber_delta: float = HUBER_DELTA,
    ) -> OptimizeResult:
        """Minimise the summed (robust) chi2 over all active edges, updating `poses` in place.

        Gauss-Newton first, allowed to climb for up to 3 steps while far-off headings settle (the
        Intel data set needs this); if that does not beat the best cost, Levenberg-Marquardt with
        Marquardt scaling takes over from the best estimate. Robust edges use Huber on the
        whitened error via IRLS weights: Huber is convex, so it keeps the basin of convergence
        while capping a false closure's pull at `huber_delta` sigmas; `edge_errors` then flags it.
        Stops when the relative cost decrease or the largest step is below `tolerance`.
        """
        t0 = time.perf_counter()
        act = np.flatnonzero(self._active[: self._m])
        ij, z, info, robust = self._ij[act], self._z[act], self._info[act], self._robust[act]
        fixed = self._fixed[: self._n].copy()
        fixed[:1] |= not fixed.any()
        var, nvar = _ordering(ij, fixed), 3 * int((~fixed).sum())
        keep, slots, indices, indptr, gidx, gkeep = _layout(ij, var, nvar)
        dslots = slots[len(slots) - nvar :]

        def evaluate(poses: np.ndarray) -> tuple[float, np.ndarray]:
            e, _, _ = _residuals(poses, ij, z)
            rho, w = _huber(np.einsum("mi,mij,mj->m", e, info, e), robust, huber_delta)
            return float(rho.sum()), w

        def linearise(poses: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            e, a, b = _residuals(poses, ij, z, jacobians=True)
            wi = info * w[:, None, None]
            at_w, bt_w = a.transpose(0, 2, 1) @ wi, b.transpose(0, 2, 1) @ wi
            hij = at_w @ b
            blocks = np.stack((at_w @ a, hij, hij.transpose(0, 2, 1), bt_w @ b), axis=1)
            vals = np.concatenate((blocks.ravel()[keep], np.zeros(nvar)))
            h = np.bincount(slots, weights=vals, minlength=len(indices))  # CSC data of H
            grad = np.concatenate((at_w @ e[:, :, None], bt_w @ e[:, :, None]), axis=1)
            return h, np.bincount(gidx, weights=grad.ravel()[gkeep], minlength=nvar)

        x = self._poses[: self._n].copy()
        cost, weight = evaluate(x)
        best, initial, iterations = (cost, x, weight), cost, 0
        converged, gauss_newton, stalls, lam, nu = not nvar or not len(act), True, 0, 0.0, 2.0
        while not converged and iterations < max_iterations:
            iterations += 1
            h, g = linearise(x, weight)
            diag = h[dslots]
            unused = (diag <= 0.0).astype(float)  # a node without edges: keep it where it is
            for _ in range(30):  # LM: raise lambda until the step lowers the cost
                damped = h.copy()
                damped[dslots] += lam * diag + unused
                step = _solve(sp.csc_matrix((damped, indices, indptr), shape=(nvar, nvar)), -g)
                trial = x.copy()
                trial[~fixed] += step.reshape(-1, 3)[var[~fixed]]
                trial[:, 2] = wrap_angle(trial[:, 2])
                new_cost, new_weight = evaluate(trial) if np.isfinite(step).all() else (np.inf, 0)
                small = np.abs(step).max() <= tolerance * (1.0 + np.abs(x).max())
                gain = best[0] - new_cost
                converged = small or 0.0 < gain <= tolerance * best[0]
                if gain > 0.0:
                    best = (new_cost, trial, new_weight)
                if gauss_newton:
                    stalls = 0 if gain > 0.0 else stalls + 1
                    x, cost, weight = trial, new_cost, new_weight
                    if stalls == 3 or not np.isfinite(new_cost):
                        (cost, x, weight), gauss_newton, lam = best, False, 1e-4
                    break
                # elementwise, not np.dot: a threaded BLAS dot wakes OpenBLAS workers that then
                # spin and slow every later factorisation ~2x on a busy 2-core machine (measured)
                predicted = float(np.sum((lam * diag * step - g) * step))
                if gain > 0.0:
                    rho = gain / max(predicted, 1e-300)
                    lam, nu = lam * max(1 / 3, 1 - (2 * rho - 1) ** 3), 2.0
                    cost, x, weight = best
                    break
                lam, nu = lam * nu, nu * 2.0
                if predicted <= tolerance * cost or converged:  # no decrease left: a minimum
                    converged = True
                    break
            log.debug("iteration %d: chi2 %.6g, lambda %.3g", iterations, best[0], lam)
        self._poses[: self._n] = best[1]
        return OptimizeResult(
            iterations, initial, best[0], bool(converged), time.perf_counter() - t0
        )


def _ordering(ij: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Node -> variable block (-1 if fixed), minimum-degree ordered on the node graph."""
    n, free = len(fixed), np.flatnonzero(~fixed)
    adj = sp.coo_matrix((np.ones(len(ij)), (ij[:, 0], ij[:, 1])), shape=(n, n)).tocsr()
    adj = adj + adj.T
    lap = (sp.diags(np.asarray(adj.sum(axis=1)).ravel() + 1.0) - adj).tocsc()  # SPD
    var = np.full(n, -1)
    if len(free):
        lap = lap[free][:, free].tocsc()
        var[free] = splu(lap, "MMD_AT_PLUS_A", 0.0, options={"SymmetricMode": True}).perm_c
    return var


def _solve(h: sp.csc_matrix, rhs: np.ndarray) -> np.ndarray:
    """Solve the SPD system h x = rhs by SuperLU in the given order; NaNs if h is singular."""
    try:  # relax=panel=1: 1.3-3x faster than SuperLU's defaults on pose graphs (measured)
        lu = splu(h, "NATURAL", 0.0, 1, 1, options={"SymmetricMode": True})
    except RuntimeError:  # exactly singular: e.g. an unanchored component during Gauss-Newton
        return np.full_like(rhs, np.nan)
    return lu.solve(rhs)


def _layout(ij: np.ndarray, var: np.ndarray, nvar: int) -> tuple[np.ndarray, ...]:
    """CSC pattern of H (blocks ii, ij, ji, jj + diagonal) and where block/gradient terms go.

    Returns the free-block mask, CSC slots (last `nvar`: diagonal), indices, indptr, and the
    gradient indices with their free mask.
    """
    vi, vj = var[ij[:, 0]], var[ij[:, 1]]
    pairs = np.stack((vi, vi, vi, vj, vj, vi, vj, vj), 1).reshape(-1, 4, 2)
    k = np.arange(3)
    r = np.broadcast_to(3 * pairs[:, :, 0, None, None] + k[:, None], (len(ij), 4, 3, 3)).ravel()
    c = np.broadcast_to(3 * pairs[:, :, 1, None, None] + k, (len(ij), 4, 3, 3)).ravel()
    keep = np.repeat((pairs >= 0).all(axis=2).ravel(), 9)
    key = np.concatenate((c[keep] * nvar + r[keep], np.arange(nvar) * (nvar + 1)))
    unique, slots = np.unique(key, return_inverse=True)
    indptr = np.searchsorted(unique, np.arange(nvar + 1) * nvar)
    gv = np.stack((vi, vj), 1)[:, :, None]
    gkeep = np.repeat((gv >= 0).ravel(), 3)
    return keep, slots, unique % nvar, indptr, (3 * gv + k).ravel()[gkeep], gkeep


def load_g2o(path: str | Path, *, robust_loops: bool = False) -> PoseGraph:
    """Read a 2-D g2o file (VERTEX_SE2 and EDGE_SE2 lines; other lines are ignored).

    Edges between consecutive vertex ids get kind "odometry", the rest "loop" (Huber if
    `robust_loops`). Raises ValueError naming `file:line` for any malformed line.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read g2o file ({exc.strerror})") from exc
    vertices: dict[int, tuple[int, list[float]]] = {}
    edges: list[tuple[int, list[float]]] = []
    sizes = {"VERTEX_SE2": 5, "EDGE_SE2": 12}
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0] not in sizes:
            continue
        where, need = f"{path}:{lineno}", sizes[fields[0]]
        if len(fields) < need:
            raise ValueError(f"{where}: {fields[0]} needs {need - 1} values, got {len(fields) - 1}")
        try:
            values = [float(v) for v in fields[1:need]]
        except ValueError:
            raise ValueError(f"{where}: non-numeric field in {line.strip()!r}") from None
        if fields[0] == "EDGE_SE2":
            edges.append((lineno, values))
        elif int(values[0]) in vertices:
            raise ValueError(f"{where}: duplicate vertex id {int(values[0])}")
        else:
            vertices[int(values[0])] = (lineno, values[1:])
    graph, index = PoseGraph(), {}
    for vid, (lineno, pose) in vertices.items():
        try:
            index[vid] = graph.add_node(pose)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
    for lineno, (a, b, dx, dy, dt, i11, i12, i13, i22, i23, i33) in edges:
        odometry = int(b) == int(a) + 1
        try:
            if int(a) not in index or int(b) not in index:
                raise ValueError(f"edge to unknown vertex {b if int(a) in index else a:.0f}")
            info = [[i11, i12, i13], [i12, i22, i23], [i13, i23, i33]]
            kind = "odometry" if odometry else "loop"
            robust = robust_loops and not odometry
            graph.add_edge(
                index[int(a)], index[int(b)], (dx, dy, dt), info, robust=robust, kind=kind
            )
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
    return graph
