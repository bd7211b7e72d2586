"""SimulatedRobot: a seeded, deterministic lidar vacuum in a World.

What is simulated, and how (SI units; world frame x right, y up, theta CCW in (-pi, pi]):
- body: a disc of `radius` on a differential drive (unicycle kinematics), integrated exactly
  (constant-velocity arcs) in `physics_dt` steps. The body collides with walls, lidar-invisible
  obstacles, outside cells and the raster border. Collision is exact against the 0.05 m squares:
  a distance transform of the obstacle raster, computed once, rules out most steps; near
  obstacles the squares around the body are tested one by one. On contact the motion stops just
  before the overlap (the contact time is found by bisection) and the command ends.
- bumper: pressed when a command was stopped by contact. Each new contact event is recorded as a
  `Bump` at the touched point; pushing again at the same spot (within `bump_separation`) without
  first backing away is the same event, as a real bumper stays pressed.
- LDS: `beams` beams per revolution at `lds_rate`, taken while moving. Beam k is measured at
  `stamp + k / (beams * lds_rate)` from the pose at that moment (poses interpolated between
  physics steps) at sensor angle 2 pi k / beams (CCW, 0 = ahead), like a real spinning lidar that
  does no de-skew. `Scan.stamp` is the revolution's start. Ranges get Gaussian noise
  (`range_noise + range_noise_frac * r`), `dropout` of the beams return nothing (inf), ranges
  beyond `range_max` are inf, ranges below `range_min` are reported as they are (Scan ignores
  them). The lidar sees `walls` and `outside` only: invisible obstacles are below its plane.
- odometry: dead reckoning in its own frame, which starts at Pose(0, 0, 0) at the start pose.
  Distance from the wheels with a per-robot scale error and noise growing with distance; heading
  from a gyro with a per-robot scale error (wheel slip in turns), a constant bias (drift) while
  the robot moves, and noise. On contact the wheels keep turning for `bump_reaction` s before the
  firmware stops them: the odometry advances although the body does not move.
Everything random comes from `np.random.default_rng(seed)`: the same seed and the same commands
give the same scans, odometry and bumps.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from firmware_bridge.world import World
from maps.geometry import Pose, wrap_angle
from maps.raster import cast_rays
from maps.scan import Odometry, Scan

log = logging.getLogger(__name__)

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Simulated vacuum parameters (SI units); defaults are those of a Roborock-class robot."""

    # body and drive
    radius: float = 0.17  # m, round body
    max_v: float = 0.3  # m/s, |forward speed| limit
    max_w: float = 1.8  # rad/s, |turn rate| limit
    physics_dt: float = 0.01  # s per integration step
    # LDS
    lds_rate: float = 5.0  # Hz, revolutions per second
    beams: int = 360  # per revolution
    range_min: float = 0.15  # m
    range_max: float = 6.0  # m
    range_noise: float = 0.01  # m, noise sigma at zero range ...
    range_noise_frac: float = 0.005  # ... plus this fraction of the range
    dropout: float = 0.015  # probability that a beam returns nothing
    lidar_offset: float = 0.0  # m, lidar ahead of the body centre (robot frame x)
    # odometry
    wheel_scale_error: float = 0.01  # sigma of the per-robot distance scale error
    turn_scale_error: float = 0.01  # sigma of the per-robot heading scale error (slip in turns)
    distance_noise: float = 0.005  # m per sqrt(m driven)
    turn_noise: float = 0.01  # rad per sqrt(rad turned)
    heading_noise: float = 0.005  # rad per sqrt(m driven)
    gyro_drift: float = math.radians(1.0) / 60.0  # rad/s, largest gyro bias (drawn per robot)
    bump_reaction: float = 0.1  # s the wheels keep turning (slipping) after contact
    bump_slip_heading: float = math.radians(1.0)  # rad, sigma of the heading slip on contact
    # bumper
    bump_separation: float = 0.1  # m: a contact this far from the last one is a new bump
    release_gap: float = 0.01  # m: backing this far from the contact releases the bumper
    # goto
    control_dt: float = 0.05  # s per control step of goto
    goal_tolerance: float = 0.01  # m: goto aims this close
    reach_tolerance: float = 0.05  # m: goto reports success this close
    align_tolerance: float = 0.15  # rad: goto turns in place above this bearing error
    max_buffered_scans: int = 3000  # scans kept until scans() drains them (10 min at 5 Hz)

    def __post_init__(self) -> None:
        positive = (
            "radius max_v max_w physics_dt lds_rate range_max control_dt goal_tolerance "
            "reach_tolerance align_tolerance"
        )
        for name in positive.split():
            if not getattr(self, name) > 0:
                raise ValueError(f"SimConfig.{name} must be > 0, got {getattr(self, name)}")
        non_negative = (
            "range_min range_noise range_noise_frac wheel_scale_error turn_scale_error "
            "distance_noise turn_noise heading_noise gyro_drift bump_reaction bump_slip_heading "
            "bump_separation release_gap"
        )
        for name in non_negative.split():
            if not getattr(self, name) >= 0:
                raise ValueError(f"SimConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.range_min < self.range_max:
            raise ValueError(f"need range_min < range_max, got {self.range_min}, {self.range_max}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"SimConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.beams < 1 or self.max_buffered_scans < 1:
            raise ValueError("SimConfig.beams and max_buffered_scans must be >= 1")
        if abs(self.lidar_offset) >= self.radius:
            raise ValueError("SimConfig.lidar_offset must lie inside the body (|offset| < radius)")


@dataclass(frozen=True, slots=True)
class Bump:
    """A contact event: world xy (m) of the touched obstacle point, time (s), and whether the
    obstacle is one the lidar cannot see (simulation ground truth)."""

    x: float
    y: float
    stamp: float
    invisible: bool


class SimulatedRobot:
    """A simulated lidar vacuum in `world` (see the module docstring for the models).

    `start` defaults to `world.start`; it must leave room for the body. The odometry frame starts
    at Pose(0, 0, 0) at the start pose; `goto` targets are in that odometry frame.
    """

    def __init__(
        self,
        world: World,
        *,
        seed: int = 0,
        config: SimConfig | None = None,
        start: Pose | None = None,
    ) -> None:
        self.world = world
        self.config = cfg = config or SimConfig()
        start = world.start if start is None else start
        rng = np.random.default_rng(seed)
        self._rng_odom, self._rng_lidar = rng.spawn(2)
        # per-robot calibration errors, fixed for the robot's life
        self._dist_scale = 1.0 + float(np.clip(rng.normal(0.0, 1.0), -2, 2)) * cfg.wheel_scale_error
        self._turn_scale = 1.0 + float(np.clip(rng.normal(0.0, 1.0), -2, 2)) * cfg.turn_scale_error
        sign = 1.0 if rng.random() < 0.5 else -1.0
        self._gyro_bias = sign * float(rng.uniform(0.5, 1.0)) * cfg.gyro_drift

        # collision rasters, padded by one solid cell so that the raster border is a wall
        res = world.resolution
        self._res = res
        self._solid = np.pad(world.solid, 1, constant_values=True)
        self._hidden = np.pad(world.invisible, 1, constant_values=False)
        self._pad_origin = (world.origin[0] - res, world.origin[1] - res)
        dist = cv2.distanceTransform(
            (~self._solid).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        # lower bound of the clearance of any point in a cell: its centre's distance to the
        # nearest solid centre, less half a diagonal on each side
        self._clearance = dist.astype(np.float64) * res - res * _SQRT2
        self._lidar_blocked = np.ascontiguousarray(world.walls | world.outside)

        # lidar geometry
        k = np.arange(cfg.beams)
        self._beam_angles = wrap_angle(2.0 * np.pi * k / cfg.beams)
        self._angles32 = self._beam_angles.astype(np.float32)
        self._angles32.flags.writeable = False
        self._beam_offsets = k / (cfg.beams * cfg.lds_rate)
        self._sensor = Pose(cfg.lidar_offset, 0.0, 0.0)

        # state
        self._x, self._y, self._th = start.x, start.y, start.theta  # truth; th unwrapped
        if self._collides(self._x, self._y):
            raise ValueError(
                f"start pose ({start.x:.3f}, {start.y:.3f}) leaves no room for the "
                f"{cfg.radius} m body in world {world.name!r}"
            )
        self._t = 0.0
        self._odom = np.zeros(3)  # x, y, theta (unwrapped) in the odometry frame
        self._odom_v = 0.0
        self._odom_w = 0.0
        self._hist = np.array([[0.0], [self._x], [self._y], [self._th]])  # t, x, y, th
        self._rev = 0  # index of the lidar revolution in progress
        self._scans: deque[Scan] = deque(maxlen=cfg.max_buffered_scans)
        self._dropped_scans = 0
        self._bumps: list[Bump] = []
        self._pressed = False
        self._contact: tuple[float, float] | None = None  # where the bumper is pressed now

    # ------------------------------------------------------------------ what the robot reports
    @property
    def time(self) -> float:
        """Simulated seconds since the start."""
        return self._t

    @property
    def true_pose(self) -> Pose:
        """Ground-truth pose in the world frame (simulation only)."""
        return Pose(self._x, self._y, self._th)

    @property
    def bumper_pressed(self) -> bool:
        """True when the last command (drive or goto) was stopped by contact."""
        return self._pressed

    @property
    def bumps(self) -> list[Bump]:
        """Every contact event so far, oldest first (a copy)."""
        return list(self._bumps)

    def scans(self) -> list[Scan]:
        """The LDS revolutions completed since the last call, oldest first (drains the buffer).

        At most `config.max_buffered_scans` are kept; older ones are dropped, as a real driver
        drops what nobody reads.
        """
        out = list(self._scans)
        self._scans.clear()
        return out

    def odometry(self) -> Odometry:
        """The dead-reckoned pose now, in the odometry frame (Pose(0, 0, 0) at the start), with
        the speeds measured over the last command (m/s, rad/s)."""
        x, y, th = self._odom
        return Odometry(Pose(float(x), float(y), float(th)), self._t, self._odom_v, self._odom_w)

    # ------------------------------------------------------------------ commands
    def drive(self, v: float, w: float, dt: float) -> bool:
        """Drive at `v` m/s and `w` rad/s (clamped to the limits) for `dt` seconds.

        Motion stops at contact and the command ends there (time advances to the contact plus
        the bumper reaction time). Returns True if the bumper was pressed.
        """
        v, w, dt = _finite(v=v, w=w, dt=dt)
        if dt < 0:
            raise ValueError(f"dt must be >= 0 s, got {dt}")
        self._pressed = self._move(v, w, dt)
        return self._pressed

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        """Go to (x, y) in the odometry frame: turn towards it, then drive straight.

        The robot steers by its own dead reckoning (it has no map), so the true end point carries
        the odometry error. Stops on contact or after `timeout` seconds; returns True if the
        odometry pose ends within `config.reach_tolerance` of the target.
        """
        x, y, timeout = _finite(x=x, y=y, timeout=timeout)
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 s, got {timeout}")
        cfg = self.config
        end = self._t + timeout
        bumped = False
        while end - self._t > 1e-9:
            ox, oy, oth = self._odom
            dist = math.hypot(x - ox, y - oy)
            if dist <= cfg.goal_tolerance:
                break
            err = float(wrap_angle(math.atan2(y - oy, x - ox) - oth))
            if abs(err) > cfg.align_tolerance:
                # turn in place towards the target (a disc turning in place never bumps)
                turn = min(abs(err) / cfg.max_w, end - self._t)
                self._move(0.0, math.copysign(cfg.max_w, err), turn)
                continue
            step = min(cfg.control_dt, end - self._t)
            v = min(cfg.max_v, dist / step)
            w = float(np.clip(0.5 * err / step, -cfg.max_w, cfg.max_w))
            if self._move(v, w, step):
                bumped = True
                break
        self._pressed = bumped
        ox, oy, _ = self._odom
        return math.hypot(x - ox, y - oy) <= cfg.reach_tolerance

    # ------------------------------------------------------------------ physics
    def _move(self, v: float, w: float, dt: float) -> bool:
        """Run (v, w) for dt seconds of physics; returns True on contact."""
        cfg = self.config
        v = float(np.clip(v, -cfg.max_v, cfg.max_v))
        w = float(np.clip(w, -cfg.max_w, cfg.max_w))
        if dt <= 0.0:
            return False
        n = max(1, math.ceil(dt / cfg.physics_dt - 1e-9))
        tau = np.arange(1, n + 1, dtype=np.float64) * cfg.physics_dt
        tau[-1] = dt
        xs, ys, ths = self._arc(tau, v, w)
        hit = self._first_collision(xs, ys) if v != 0.0 else None
        if hit is not None:
            lo = float(tau[hit - 1]) if hit > 0 else 0.0
            hi = float(tau[hit])
            for _ in range(14):  # the step is <= a few mm: this finds contact to well under 1 um
                mid = 0.5 * (lo + hi)
                xm, ym, _ = self._arc(np.array([mid]), v, w)
                if self._collides(float(xm[0]), float(ym[0])):
                    hi = mid
                else:
                    lo = mid
            tau = tau[:hit]
            if lo > (tau[-1] if tau.size else 0.0) + 1e-12:
                tau = np.append(tau, lo)
            xs, ys, ths = self._arc(tau, v, w)

        if tau.size:
            steps = np.diff(tau, prepend=0.0)
            self._dead_reckon(v * steps, w * steps, steps)
            self._x, self._y, self._th = float(xs[-1]), float(ys[-1]), float(ths[-1])
            self._record(self._t + tau, xs, ys, ths)
            self._t += float(tau[-1])

        if hit is not None:
            self._bump(v)
        elif self._contact is not None:
            cx, cy = self._contact
            if math.hypot(cx - self._x, cy - self._y) > cfg.radius + cfg.release_gap:
                self._contact = None
        self._run_lidar()
        return hit is not None

    def _arc(self, tau: np.ndarray, v: float, w: float) -> tuple[np.ndarray, ...]:
        """Poses after driving (v, w) for each of the times `tau` from the current pose (exact
        unicycle arcs: chord length v t sinc(w t / 2) along the mean heading)."""
        half = 0.5 * w * tau
        chord = v * tau * np.sinc(half / np.pi)
        mean = self._th + half
        return self._x + chord * np.cos(mean), self._y + chord * np.sin(mean), self._th + 2 * half

    def _first_collision(self, xs: np.ndarray, ys: np.ndarray) -> int | None:
        """Index of the first body position that overlaps an obstacle, or None."""
        res = self._res
        h, w = self._solid.shape
        j = np.floor((xs - self._pad_origin[0]) / res).astype(np.int64)
        i = np.floor((ys - self._pad_origin[1]) / res).astype(np.int64)
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        lower = np.full(xs.shape, -np.inf)
        lower[inside] = self._clearance[i[inside], j[inside]]
        for k in np.flatnonzero(lower <= self.config.radius):
            if self._collides(float(xs[k]), float(ys[k])):
                return int(k)
        return None

    def _near(self, x: float, y: float, reach: float):
        """Solid cells whose square lies within `reach` of (x, y): (distance, nearest point x,
        nearest point y, row, col) arrays (padded raster indices), or None when there are none."""
        res = self._res
        ox, oy = self._pad_origin
        h, w = self._solid.shape
        j0 = max(math.floor((x - reach - ox) / res), 0)
        j1 = min(math.floor((x + reach - ox) / res), w - 1)
        i0 = max(math.floor((y - reach - oy) / res), 0)
        i1 = min(math.floor((y + reach - oy) / res), h - 1)
        if j0 > j1 or i0 > i1:
            return None
        ii, jj = np.nonzero(self._solid[i0 : i1 + 1, j0 : j1 + 1])
        if ii.size == 0:
            return None
        ii += i0
        jj += j0
        left = ox + jj * res
        bottom = oy + ii * res
        px = np.clip(x, left, left + res)
        py = np.clip(y, bottom, bottom + res)
        d = np.hypot(px - x, py - y)
        keep = d <= reach
        return d[keep], px[keep], py[keep], ii[keep], jj[keep]

    def _collides(self, x: float, y: float) -> bool:
        """True if the body disc centred at (x, y) overlaps a solid cell or leaves the raster."""
        res = self._res
        r = self.config.radius
        h, w = self._solid.shape
        j = math.floor((x - self._pad_origin[0]) / res)
        i = math.floor((y - self._pad_origin[1]) / res)
        if not (0 <= i < h and 0 <= j < w):
            return True
        if self._clearance[i, j] > r:
            return False
        near = self._near(x, y, r)
        return near is not None and bool((near[0] < r).any())

    def _bump(self, v: float) -> None:
        """Contact at the current pose: record a new bump, let the wheels slip, end the command."""
        cfg = self.config
        heading = self._th if v > 0 else self._th + math.pi
        cx, cy, hidden = self._contact_point(math.cos(heading), math.sin(heading))
        last = self._contact
        if last is None or math.hypot(cx - last[0], cy - last[1]) > cfg.bump_separation:
            self._bumps.append(Bump(cx, cy, self._t, hidden))
            log.debug(
                "bump at (%.2f, %.2f), t=%.2f s%s",
                cx,
                cy,
                self._t,
                " (lidar-invisible)" if hidden else "",
            )
        self._contact = (cx, cy)
        # the firmware stops the wheels `bump_reaction` s later: they slip against the obstacle
        if cfg.bump_reaction > 0:
            frac = float(self._rng_odom.uniform(0.3, 1.0))
            slip = np.array([v * cfg.bump_reaction * frac])
            self._dead_reckon(slip, np.zeros(1), np.array([cfg.bump_reaction]))
            self._odom[2] += float(self._rng_odom.normal(0.0, cfg.bump_slip_heading))
            self._t += cfg.bump_reaction
            still = [np.array([c]) for c in (self._t, self._x, self._y, self._th)]
            self._record(*still)
        self._odom_v = 0.0
        self._odom_w = 0.0

    def _contact_point(self, dx: float, dy: float) -> tuple[float, float, bool]:
        """The touched obstacle point (world xy) and whether it is lidar-invisible: among the
        squares touching the body, the one most in the direction of motion (dx, dy)."""
        r = self.config.radius
        near = self._near(self._x, self._y, r + 0.005)
        if near is None:  # cannot happen after a bisected contact; stay safe anyway
            near = self._near(self._x, self._y, r + 2 * self._res)
            if near is None:
                return self._x + dx * r, self._y + dy * r, False
        d, px, py, ii, jj = near
        touching = d <= d.min() + 0.002
        facing = ((px - self._x) * dx + (py - self._y) * dy) / np.maximum(d, 1e-9)
        k = int(np.argmax(np.where(touching, facing, -np.inf)))
        return float(px[k]), float(py[k]), bool(self._hidden[ii[k], jj[k]])

    def _dead_reckon(self, dist: np.ndarray, turn: np.ndarray, dt: np.ndarray) -> None:
        """Integrate the odometry over steps of true travel `dist` (m) and turn `turn` (rad)."""
        cfg = self.config
        z = self._rng_odom.standard_normal((2, dist.size))
        d_m = dist * self._dist_scale + z[0] * cfg.distance_noise * np.sqrt(np.abs(dist))
        sigma_t = np.sqrt(cfg.turn_noise**2 * np.abs(turn) + cfg.heading_noise**2 * np.abs(dist))
        t_m = turn * self._turn_scale + z[1] * sigma_t
        if np.any(dist != 0) or np.any(turn != 0):
            # the gyro drifts while the robot moves; a still robot re-zeroes it
            t_m = t_m + self._gyro_bias * dt
        th = self._odom[2] + np.cumsum(t_m)
        mid = th - 0.5 * t_m
        self._odom[0] += float(np.sum(d_m * np.cos(mid)))
        self._odom[1] += float(np.sum(d_m * np.sin(mid)))
        self._odom[2] = float(th[-1])
        span = float(dt.sum())
        if span > 0:  # speeds measured over the command, as encoders count over a window
            self._odom_v = float(d_m.sum()) / span
            self._odom_w = float(t_m.sum()) / span

    # ------------------------------------------------------------------ lidar
    def _record(self, t: np.ndarray, xs: np.ndarray, ys: np.ndarray, ths: np.ndarray) -> None:
        """Append true poses to the history the lidar interpolates (times strictly increasing)."""
        keep = t > self._hist[0, -1]
        if keep.all():
            block = np.vstack((t, xs, ys, ths))
        else:
            block = np.vstack((t[keep], xs[keep], ys[keep], ths[keep]))
        self._hist = np.concatenate((self._hist, block), axis=1)

    def _run_lidar(self) -> None:
        """Produce every revolution that has completed by now."""
        period = 1.0 / self.config.lds_rate
        while (self._rev + 1) * period <= self._t + 1e-9:
            if len(self._scans) == self._scans.maxlen:
                self._dropped_scans += 1
                if self._dropped_scans == 1:
                    log.info(
                        "scan buffer full (%d): dropping the oldest scans; call scans()",
                        self._scans.maxlen,
                    )
            self._scans.append(self._revolution(self._rev * period))
            self._rev += 1
        # keep the history from the last pose at or before the revolution in progress
        first = int(np.searchsorted(self._hist[0], self._rev * period, side="right")) - 1
        if first > 0:
            self._hist = self._hist[:, first:]

    def _revolution(self, t0: float) -> Scan:
        """One LDS revolution starting at t0; the history must cover [t0, t0 + period]."""
        cfg = self.config
        t, hx, hy, hth = self._hist
        times = t0 + self._beam_offsets
        th = np.interp(times, t, hth)
        x = np.interp(times, t, hx)
        y = np.interp(times, t, hy)
        if cfg.lidar_offset:
            x = x + cfg.lidar_offset * np.cos(th)
            y = y + cfg.lidar_offset * np.sin(th)
        r = cast_rays(
            self._lidar_blocked,
            self._res,
            self.world.origin,
            x,
            y,
            th + self._beam_angles,
            cfg.range_max,
        )
        rng = self._rng_lidar
        sigma = cfg.range_noise + cfg.range_noise_frac * np.where(np.isfinite(r), r, 0.0)
        r = np.maximum(r + rng.standard_normal(r.size) * sigma, 0.0)
        r[rng.random(r.size) < cfg.dropout] = np.inf
        duration = float(self._beam_offsets[-1])  # the last beam's delay after the first
        return Scan(
            r.astype(np.float32),
            self._angles32,
            t0,
            cfg.range_min,
            cfg.range_max,
            self._sensor,
            duration,
        )


def _finite(**values: float) -> tuple[float, ...]:
    out = []
    for name, value in values.items():
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        out.append(value)
    return tuple(out)
