"""SLAM accuracy on ground-truth relations: the relations metric of Kümmerle et al. 2009.

"On measuring the accuracy of SLAM algorithms", Autonomous Robots 27(4): each relation
δ*_ij = (t_i, t_j, dx, dy, dθ) is the robot pose at t_j in the robot frame at t_i (m, rad). An
estimate gives δ_ij = x_i⁻¹ ⊕ x_j and the error E = (δ*)⁻¹ ⊕ δ (style "kummerle", the authors'
metricEvaluator) or E = δ ⊕ (δ*)⁻¹ (style "cartographer", its compute_relations_metrics);
reported as mean ± sample std (ddof=1) of |E_t| [m], |E_t|² [m²], |E_θ| [deg], E_θ² [deg²].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from maps.geometry import wrap_angle
from navigation.errors import EvaluationError

MATCHES = ("nearest", "interp")
STYLES = ("kummerle", "cartographer")


@dataclass(slots=True)
class Relations:
    """Ground-truth relations: stamps t1, t2 [s] and the pose at t2 in the robot frame at t1.

    All arrays are (M,) float64; dx, dy in metres, dtheta in radians wrapped to (-pi, pi].
    """

    t1: np.ndarray
    t2: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    dtheta: np.ndarray

    def __len__(self) -> int:
        return len(self.t1)


@dataclass(frozen=True, slots=True)
class RelationsMetric:
    """Relations metric of one estimate: means and sample stds (NaN for one relation)."""

    trans_abs_mean_m: float
    trans_abs_std_m: float
    trans_sq_mean_m2: float
    trans_sq_std_m2: float
    rot_abs_mean_deg: float
    rot_abs_std_deg: float
    rot_sq_mean_deg2: float
    rot_sq_std_deg2: float
    trans_max_m: float
    used: int  # relations whose two stamps matched an estimated pose
    skipped: int  # relations with a stamp farther than max_dt from the estimate
    match: str
    style: str
    max_dt: float  # s

    def as_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready dict of every field; NaN (std of a single relation) becomes None."""
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in asdict(self).items()
        }


def load_relations(path: str | Path) -> Relations:
    """Read a relations file, lines ``t1 t2 x y z roll pitch yaw`` (s, m, rad); z/roll/pitch unused.

    Raises `EvaluationError` naming the file (and line) when it is missing, holds no relation,
    or a line has not 8 finite numbers.
    """
    table = _read_table(path, 8, "t1 t2 x y z roll pitch yaw")
    return Relations(
        t1=table[:, 0].copy(),
        t2=table[:, 1].copy(),
        dx=table[:, 2].copy(),
        dy=table[:, 3].copy(),
        dtheta=np.asarray(wrap_angle(table[:, 7]), dtype=np.float64),
    )


def load_poses(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``poses.txt`` (lines ``timestamp x y theta``; s, m, m, rad; ``#`` comments).

    Returns stamps (N,) and poses (N, 3) float64 in file order (stamps need not be sorted).
    Raises `EvaluationError` naming the file (and line) on a missing/empty file or a bad line.
    """
    table = _read_table(path, 4, "timestamp x y theta")
    return table[:, 0].copy(), table[:, 1:].copy()


def evaluate(
    stamps: np.ndarray,
    poses: np.ndarray,
    relations: Relations,
    *,
    max_dt: float = 0.1,
    match: str = "nearest",
    style: str = "kummerle",
) -> RelationsMetric:
    """Score an estimated trajectory (stamps (N,) s, poses (N, 3) m, m, rad) on `relations`.

    `match="nearest"` takes the pose with the nearest stamp, `"interp"` interpolates linearly
    between the two bracketing poses (heading on the wrapped difference); a relation is skipped
    when a needed pose is more than `max_dt` seconds away. Raises `EvaluationError` when no
    relation can be used.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if stamps.ndim != 1 or poses.shape != (len(stamps), 3) or len(stamps) == 0:
        raise ValueError(
            f"expected stamps (N,) and poses (N, 3) with N >= 1, got {stamps.shape} and "
            f"{poses.shape}; pass the arrays load_poses returns"
        )
    if not (np.isfinite(stamps).all() and np.isfinite(poses).all()):
        raise ValueError("stamps and poses must be finite (no NaN or inf)")
    if not (math.isfinite(max_dt) and max_dt >= 0.0):
        raise ValueError(f"max_dt must be a finite number of seconds >= 0, got {max_dt}")
    if match not in MATCHES:
        raise ValueError(f"match must be one of {MATCHES}, got {match!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")

    order = np.argsort(stamps, kind="stable")  # Intel: 631 scans stamped out of order
    stamps, poses = stamps[order], poses[order]
    lookup = _nearest if match == "nearest" else _interpolate
    pose_i, ok_i = lookup(stamps, poses, relations.t1, max_dt)
    pose_j, ok_j = lookup(stamps, poses, relations.t2, max_dt)
    ok = ok_i & ok_j
    used = int(ok.sum())
    if used == 0:
        raise EvaluationError(
            f"no relation matched a pose within {max_dt} s ({len(relations)} relations, "
            f"poses stamped {stamps[0]:.3f} .. {stamps[-1]:.3f} s): are the stamps the log's "
            "ipc timestamps?"
        )
    trans, rot = _errors(pose_i[ok], pose_j[ok], relations, ok, style)
    rot_deg = np.degrees(rot)
    return RelationsMetric(
        *_mean_std(trans),
        *_mean_std(trans**2),
        *_mean_std(rot_deg),
        *_mean_std(rot_deg**2),
        trans_max_m=float(trans.max()),
        used=used,
        skipped=len(relations) - used,
        match=match,
        style=style,
        max_dt=float(max_dt),
    )


def format_table(metric: RelationsMetric) -> str:
    """A small aligned text table of the metric: mean ± sample std per line, with units."""
    m = metric
    rows = [
        ("translational", f"{m.trans_abs_mean_m:.4f}", f"{m.trans_abs_std_m:.4f}", "m"),
        ("translational²", f"{m.trans_sq_mean_m2:.4f}", f"{m.trans_sq_std_m2:.4f}", "m²"),
        ("rotational", f"{m.rot_abs_mean_deg:.3f}", f"{m.rot_abs_std_deg:.3f}", "deg"),
        ("rotational²", f"{m.rot_sq_mean_deg2:.3f}", f"{m.rot_sq_std_deg2:.3f}", "deg²"),
        ("max translational", f"{m.trans_max_m:.4f}", "", "m"),
    ]
    w0, w1, w2 = (max(len(row[k]) for row in rows) for k in range(3))
    lines = [
        f"relations metric ({m.style} style, {m.match} pose within {m.max_dt:g} s): "
        f"{m.used} of {m.used + m.skipped} relations used"
    ]
    for name, mean, std, unit in rows:
        spread = f" ± {std:<{w2}}" if std else " " * (w2 + 3)
        lines.append(f"  {name:<{w0}}  {mean:>{w1}}{spread}  {unit}")
    return "\n".join(lines)


def _read_table(path: str | Path, fields: int, layout: str) -> np.ndarray:
    """(M, fields) float64 rows of a whitespace text file; `#` starts a comment."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != fields:
            raise EvaluationError(
                f"{path}: line {lineno}: expected {fields} fields ({layout}), got {len(words)}"
            )
        try:
            row = [float(word) for word in words]
        except ValueError:
            raise EvaluationError(
                f"{path}: line {lineno}: not a number in {line.strip()[:60]!r}"
            ) from None
        if not all(math.isfinite(value) for value in row):
            raise EvaluationError(f"{path}: line {lineno}: non-finite value in {line.strip()!r}")
        rows.append(row)
    if not rows:
        raise EvaluationError(f"{path}: empty: no line of {layout}")
    return np.array(rows, dtype=np.float64)


def _nearest(
    stamps: np.ndarray, poses: np.ndarray, t: np.ndarray, max_dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poses (M, 3) with the nearest sorted stamp to each t, and whether it is within max_dt."""
    hi = np.minimum(np.searchsorted(stamps, t), len(stamps) - 1)  # stamps[hi] >= t unless last
    lo = np.maximum(hi - 1, 0)
    pick = np.where(np.abs(stamps[hi] - t) < np.abs(t - stamps[lo]), hi, lo)
    return poses[pick], np.abs(stamps[pick] - t) <= max_dt


def _interpolate(
    stamps: np.ndarray, poses: np.ndarray, t: np.ndarray, max_dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poses (M, 3) linearly interpolated at t between bracketing poses both within max_dt."""
    n = len(stamps)
    lo = np.clip(np.searchsorted(stamps, t, side="right") - 1, 0, n - 1)  # stamps[lo] <= t
    hi = np.minimum(lo + 1, n - 1)
    exact = stamps[lo] == t
    near = (t - stamps[lo] <= max_dt) & (stamps[hi] - t <= max_dt)
    ok = exact | ((stamps[lo] <= t) & (t < stamps[hi]) & near)
    span = stamps[hi] - stamps[lo]
    w = np.where(ok & ~exact, (t - stamps[lo]) / np.where(span > 0, span, 1.0), 0.0)
    a, b = poses[lo], poses[hi]
    out = a + w[:, None] * (b - a)
    out[:, 2] = wrap_angle(a[:, 2] + w * wrap_angle(b[:, 2] - a[:, 2]))
    return out, ok


def _errors(
    pose_i: np.ndarray, pose_j: np.ndarray, relations: Relations, ok: np.ndarray, style: str
) -> tuple[np.ndarray, np.ndarray]:
    """Translational [m] and absolute rotational [rad] error of each relation, (K,) each."""
    c, s = np.cos(pose_i[:, 2]), np.sin(pose_i[:, 2])
    wx, wy = pose_j[:, 0] - pose_i[:, 0], pose_j[:, 1] - pose_i[:, 1]
    tx, ty = c * wx + s * wy, -s * wx + c * wy  # δ = x_i⁻¹ ⊕ x_j
    ex, ey, eth = relations.dx[ok], relations.dy[ok], relations.dtheta[ok]  # δ*
    rot = wrap_angle(pose_j[:, 2] - pose_i[:, 2] - eth)
    if style == "kummerle":
        # (δ*)⁻¹ ⊕ δ = (R(-θ*)(t - t*), θ - θ*): the norm is |t - t*|.
        trans = np.hypot(tx - ex, ty - ey)
    else:
        # δ ⊕ (δ*)⁻¹ = (t - R(θ - θ*) t*, θ - θ*).
        cr, sr = np.cos(rot), np.sin(rot)
        trans = np.hypot(tx - (cr * ex - sr * ey), ty - (sr * ex + cr * ey))
    return trans, np.abs(np.asarray(rot, dtype=np.float64))


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for a single value)."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std
