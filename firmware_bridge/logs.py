"""Recorded CARMEN logs (CLF): stream scans and odometry out of plain, gzip, bzip2 or xz text.

One message per line, ``NAME fields... ipc_timestamp ipc_hostname logger_timestamp``. Read:
``FLASER`` (n beams over 180 deg from -90 deg, angle_i = -pi/2 + i*pi/n), ``ROBOTLASER1``
(angle_k = start_angle + k*resolution), ``ODOM`` and ``PARAM``; comments and every other message
(RLASER, TRUEPOS, VERTEX2, NMEA...) are skipped and counted as "other". Compression is told by
the magic bytes, not the file name; lines are streamed and decoded as latin-1, so no byte crashes
the reader.

Conventions and policies:
- Units are SI; each scan keeps its own ``ipc_timestamp`` as ``scan.stamp`` (seconds).
- Ranges at or beyond the sensor maximum (``max_range``, and the line's own max for ROBOTLASER1)
  are no-return (``inf``); ranges below ``min_range`` (0 is the SICK / LDS "no echo" code) are
  kept as "too close" and ignored by ``Scan.hit_mask``. NaN or negative ranges are dropped from the
  scan and counted as ``bad_beams``; the scan itself is kept. ``min_range`` defaults to 1 cm:
  below that a reading is an error code, not a distance (the benchmark logs never go under
  0.12 m, vacuum lidars have a blind zone of ~15 cm).
- Sensor mount: ``PARAM robot_frontlaser_offset d`` gives ``Scan.sensor = Pose(d, 0, 0)`` for the
  FLASER lines after it; for ROBOTLASER1 it is the laser pose seen from the robot pose.
- Time order: items come in file order, the order the robot delivered them. Some logs have
  scans whose stamp is earlier than the scan before (Intel: 631, up to 0.9 s); they are neither
  sorted nor dropped (each scan line carries its own odometry, so file order stays consistent),
  only counted as ``time_jumps`` with the largest in ``max_time_jump_s``.
- A malformed line is skipped and counted with its line number, never fatal. A file that is not
  a log at all, holds no scan, or whose compressed stream is cut or corrupt raises
  ``LogFormatError`` naming the file (and the last good line).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from firmware_bridge.errors import LogFormatError
from maps.geometry import Pose
from maps.scan import Odometry, Scan

log = logging.getLogger(__name__)

MAX_BEAMS = 10_000  # more beams on one line is a corrupt count, not a lidar
MAX_MALFORMED_KEPT = 20  # malformed lines remembered with their reason
SNIFF_LINES = 1_000  # message lines read before deciding a file is not a log at all

_COMPRESSED: tuple[tuple[bytes, Callable[..., IO[str]]], ...] = (
    (b"\x1f\x8b", gzip.open),
    (b"BZh", bz2.open),
    (b"\xfd7zXZ\x00", lzma.open),
)
_NOT_LOGS = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
# CARMEN / FLIRT messages that prove the file is a log but carry nothing we use.
_OTHER_MESSAGES = frozenset(
    "RLASER RAWLASER1 RAWLASER2 RAWLASER3 RAWLASER4 ROBOTLASER2 TRUEPOS SYNC VERTEX2 EDGE2 "
    "VERTEX EDGE ODOM2 SONAR BUMPER GPSNMEA NMEA-GGA NMEA-RMC POSITIONLASER IMU".split()
)


@dataclass(slots=True)
class LogScan:
    """One scan of a log with the robot's raw odometry pose at scan time and its 1-based line."""

    scan: Scan
    odometry: Odometry
    line: int


@dataclass(slots=True)
class LogSummary:
    """What a log holds and what was wrong with it; stamps in seconds, offsets in metres.

    `beams` maps the beam count declared on a scan line to the number of such scans;
    `first_stamp`/`last_stamp` are the earliest/latest scan stamps (None without scans);
    `laser_offset` is how far the first scan's lidar sits ahead of the robot centre, metres
    (negative: behind); the whole mounting pose is on each `Scan.sensor`.
    """

    path: str
    lines: int = 0
    scans: int = 0
    beams: dict[int, int] = field(default_factory=dict)
    odometry: int = 0
    params: dict[str, str] = field(default_factory=dict)
    first_stamp: float | None = None
    last_stamp: float | None = None
    time_jumps: int = 0  # scans stamped earlier than the scan before them in the file
    max_time_jump_s: float = 0.0
    malformed: int = 0
    malformed_lines: list[tuple[int, str]] = field(default_factory=list)  # first 20
    bad_beams: int = 0  # NaN or negative ranges dropped
    other_lines: int = 0  # comments and messages not read
    laser_offset: float = 0.0

    @property
    def duration_s(self) -> float:
        """Time spanned by the scans, seconds (0 without scans)."""
        if self.first_stamp is None or self.last_stamp is None:
            return 0.0
        return self.last_stamp - self.first_stamp

    def as_dict(self) -> dict:
        """Plain JSON-ready dict of every field plus `duration_s`."""
        out = asdict(self)
        out["beams"] = {str(n): count for n, count in self.beams.items()}
        out["malformed_lines"] = [{"line": n, "reason": r} for n, r in self.malformed_lines]
        out["duration_s"] = self.duration_s
        return out


class LogReader:
    """Iterate a CARMEN log's `LogScan` and `Odometry` items in file order.

    `summary` is rebuilt on each iteration and is complete when the iteration ends. The file is
    checked on construction (exists, is not an image/archive), read on iteration.

    Parameters
    ----------
    max_range : metres; readings at or beyond it are no-return (the SICK logs use 81.83/81.91).
    min_range : metres; readings below it (0 = no echo) are "too close" and never hits.
    """

    def __init__(self, path: str | Path, *, max_range: float = 80.0, min_range: float = 0.01):
        if not (0.0 <= min_range < max_range):
            raise ValueError(
                f"need 0 <= min_range < max_range (metres), got {min_range}, {max_range}"
            )
        self.path = Path(path)
        self.max_range = float(max_range)
        self.min_range = float(min_range)
        self._open = _opener(self.path)
        self.summary = LogSummary(path=str(self.path))
        self._front_offset = Pose()
        self._angles: dict[tuple[float, float, int], np.ndarray] = {}
        self._previous_stamp: float | None = None

    def __iter__(self) -> Iterator[LogScan | Odometry]:
        self.summary = summary = LogSummary(path=str(self.path))
        self._front_offset = Pose()
        self._previous_stamp = None
        parsers = {
            "FLASER": self._flaser,
            "ROBOTLASER1": self._robotlaser,
            "ODOM": self._odom,
            "PARAM": self._param,
        }
        known = False
        unknown = 0  # message lines of unknown type before a known one
        first_unknown = (0, "")
        lineno = 0
        try:
            with self._open() as stream:
                for lineno, text in enumerate(stream, 1):
                    fields = text.split()
                    if not fields:
                        continue
                    name = fields[0]
                    parse = parsers.get(name)
                    if parse is None:
                        summary.other_lines += 1
                        if known or name.startswith("#"):
                            continue
                        if name in _OTHER_MESSAGES:
                            known = True
                            continue
                        if "\x00" in text:
                            raise LogFormatError(
                                f"{self.path}: line {lineno}: binary data, not a CARMEN log"
                            )
                        unknown += 1
                        if unknown == 1:
                            first_unknown = (lineno, text[:40])
                        if unknown >= SNIFF_LINES:
                            raise LogFormatError(
                                f"{self.path}: not a CARMEN log: none of the first {unknown} "
                                "message lines is a known message (line %d starts %r)"
                                % first_unknown
                            )
                        continue
                    known = True
                    try:
                        item = parse(fields, lineno)
                    except IndexError:
                        self._malformed(lineno, f"{name}: too few fields ({len(fields)})")
                        continue
                    except ValueError as exc:
                        self._malformed(lineno, f"{name}: {exc}")
                        continue
                    if item is not None:
                        yield item
        except _STREAM_ERRORS as exc:
            raise LogFormatError(
                f"{self.path}: stream cut or corrupt after line {lineno} (the last good "
                f"line): {exc}"
            ) from exc
        summary.lines = lineno
        if summary.scans == 0:
            raise LogFormatError(
                f"{self.path}: no scans (no FLASER or ROBOTLASER1 line in {lineno} lines)"
            )
        log.info(
            "read %s: %d scans, %d odometry, %d malformed lines, %d backward time jumps",
            self.path, summary.scans, summary.odometry, summary.malformed, summary.time_jumps,
        )  # fmt: skip

    # -- messages ---------------------------------------------------------------------------
    def _flaser(self, fields: list[str], lineno: int) -> LogScan:
        # FLASER n r_1..r_n x y theta odom_x odom_y odom_theta ipc host logger
        n = _beam_count(fields[1])
        if len(fields) != n + 11:
            raise ValueError(f"{n} beams need {n + 11} fields, got {len(fields)}")
        angles = self._beam_angles(-0.5 * math.pi, math.pi / n, n)
        pose = Pose(float(fields[n + 5]), float(fields[n + 6]), float(fields[n + 7]))
        stamp = _stamp(fields[n + 8])
        odom = Odometry(pose, stamp)  # FLASER carries no velocities
        ranges = _ranges(fields[2 : 2 + n])
        return self._scan(ranges, angles, stamp, self.max_range, self._front_offset, odom, lineno)

    def _robotlaser(self, fields: list[str], lineno: int) -> LogScan:
        # ROBOTLASER1 type start fov res max accuracy remission_mode n r.. m rem.. laser_xyt
        #   robot_xyt tv rv fwd_safety side_safety turn_axis ipc host logger
        start, resolution, line_max = float(fields[2]), float(fields[4]), float(fields[5])
        if not (math.isfinite(start) and math.isfinite(resolution)):
            raise ValueError(f"non-finite start angle {start} or resolution {resolution}")
        n = _beam_count(fields[8])
        m = int(fields[9 + n])
        if m < 0 or len(fields) != n + m + 24:
            raise ValueError(f"{n} beams and {m} remissions need {n + m + 24} fields")
        t = 10 + n + m
        laser = Pose(float(fields[t]), float(fields[t + 1]), float(fields[t + 2]))
        robot = Pose(float(fields[t + 3]), float(fields[t + 4]), float(fields[t + 5]))
        v, w = float(fields[t + 6]), float(fields[t + 7])
        stamp = _stamp(fields[t + 11])
        ranges = _ranges(fields[9 : 9 + n])
        # The line's own maximum wins when it is tighter (FLIRT: 50 m, readings of 81.83 m).
        range_max = self.max_range
        if math.isfinite(line_max) and self.min_range < line_max < range_max:
            range_max = line_max
        angles = self._beam_angles(start, resolution, n)
        odom = Odometry(robot, stamp, v, w)
        # Poses are printed with 6 decimals: round the mount so float noise does not read 1e-16 m.
        mount = robot.between(laser)
        sensor = Pose(round(mount.x, 6), round(mount.y, 6), round(mount.theta, 6))
        return self._scan(ranges, angles, stamp, range_max, sensor, odom, lineno)

    def _odom(self, fields: list[str], lineno: int) -> Odometry:
        # ODOM x y theta tv rv accel ipc host logger (accel absent in some old logs)
        if len(fields) < 9:
            raise ValueError(f"needs at least 9 fields, got {len(fields)}")
        pose = Pose(float(fields[1]), float(fields[2]), float(fields[3]))
        item = Odometry(pose, _stamp(fields[-3]), float(fields[4]), float(fields[5]))
        self.summary.odometry += 1
        return item

    def _param(self, fields: list[str], lineno: int) -> None:
        if len(fields) < 3:
            raise ValueError(f"needs a name and a value, got {len(fields)} fields")
        name, value = fields[1], fields[2]
        if name == "robot_frontlaser_offset":
            self._front_offset = Pose(float(value), 0.0, 0.0)
        self.summary.params[name] = value

    # -- helpers ----------------------------------------------------------------------------
    def _scan(
        self,
        ranges: np.ndarray,
        angles: np.ndarray,
        stamp: float,
        range_max: float,
        sensor: Pose,
        odom: Odometry,
        lineno: int,
    ) -> LogScan:
        summary = self.summary
        n = len(ranges)
        valid = ranges >= 0.0  # False for NaN as well
        if not valid.all():
            summary.bad_beams += n - int(valid.sum())
            ranges, angles = ranges[valid], angles[valid]
        scan = Scan(ranges, angles, stamp, self.min_range, range_max, sensor)

        summary.scans += 1
        summary.beams[n] = summary.beams.get(n, 0) + 1
        if summary.first_stamp is None or stamp < summary.first_stamp:
            summary.first_stamp = stamp
        if summary.last_stamp is None or stamp > summary.last_stamp:
            summary.last_stamp = stamp
        if summary.scans == 1:
            summary.laser_offset = sensor.x
        previous, self._previous_stamp = self._previous_stamp, stamp
        if previous is not None and stamp < previous:
            summary.time_jumps += 1
            summary.max_time_jump_s = max(summary.max_time_jump_s, previous - stamp)
        return LogScan(scan, odom, lineno)

    def _beam_angles(self, start: float, step: float, n: int) -> np.ndarray:
        """(n,) float32 read-only beam angles in the sensor frame, radians, cached."""
        key = (start, step, n)
        angles = self._angles.get(key)
        if angles is None:
            angles = (start + step * np.arange(n)).astype(np.float32)
            angles.flags.writeable = False
            self._angles[key] = angles
        return angles

    def _malformed(self, lineno: int, reason: str) -> None:
        summary = self.summary
        summary.malformed += 1
        if len(summary.malformed_lines) < MAX_MALFORMED_KEPT:
            summary.malformed_lines.append((lineno, reason))
        log.debug("%s:%d: skipped malformed line: %s", self.path, lineno, reason)


def read_log(path: str | Path, *, max_range: float = 80.0, min_range: float = 0.01) -> LogReader:
    """Open a CARMEN log (plain, .gz, .bz2, .xz) for streaming; ranges in metres.

    Raises `LogFormatError` at once if the file is missing or is an image/archive, and while
    iterating if it turns out not to be a log, holds no scan, or its compression is corrupt.
    """
    return LogReader(path, max_range=max_range, min_range=min_range)


def summarize(path: str | Path, *, max_range: float = 80.0) -> LogSummary:
    """Read a whole log and return its `LogSummary` (for `vacnav log info` and JSON reports)."""
    reader = read_log(path, max_range=max_range)
    for _ in reader:
        pass
    return reader.summary


def _opener(path: Path) -> Callable[[], IO[str]]:
    """Check the file and return a function that opens it as latin-1 text, by its magic bytes."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(16)
    except FileNotFoundError as exc:
        raise LogFormatError(f"{path}: no such log file") from exc
    except OSError as exc:
        raise LogFormatError(f"{path}: cannot read the log: {exc.strerror or exc}") from exc
    for magic, what in _NOT_LOGS:
        if head.startswith(magic):
            raise LogFormatError(f"{path}: is {what}, not a CARMEN log")
    for magic, open_compressed in _COMPRESSED:
        if head.startswith(magic):
            return lambda: open_compressed(path, "rt", encoding="latin-1")
    return lambda: open(path, encoding="latin-1")


def _ranges(texts: list[str]) -> np.ndarray:
    """(n,) float32 metres; a value too large for float32 becomes inf (no return), quietly."""
    with np.errstate(over="ignore"):
        return np.array(texts, dtype=np.float32)


def _beam_count(text: str) -> int:
    n = int(text)
    if not 0 < n <= MAX_BEAMS:
        raise ValueError(f"absurd beam count {n} (expected 1..{MAX_BEAMS})")
    return n


def _stamp(text: str) -> float:
    stamp = float(text)
    if not math.isfinite(stamp):
        raise ValueError(f"non-finite timestamp {text!r}")
    return stamp
