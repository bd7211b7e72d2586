"""Lidar byte streams: decode the serial output of vacuum LDS units into `Scan`s, and encode back.

Two wire formats (115200 8N1 on most units; the Dreame Z10's LDS runs at 230400 according to
alufers/dreame_mcu_protocol):

``"neato"``: Neato XV-11, Xiaomi LDS02RR, Roborock LDS. 22-byte packets, 90 a turn::

    0xFA, index 0xA0..0xF9 (packet i holds angles 4i..4i+3 deg), speed u16 LE (rpm x 64),
    4 x [u16 LE: distance mm in bits 0-13, bit 14 strength warning, bit 15 invalid; u16 LE
    strength], checksum u16 LE

  The checksum folds the first ten LE words: ``c = (c << 1) + word`` on 32 bits, then
  ``((c & 0x7FFF) + (c >> 15)) & 0x7FFF`` (kaiaai/LDS src/LDS_NEATO_XV11.cpp, isValidPacket).
  Invalid samples become inf (no return); samples with only the strength warning keep their
  distance (kaiaai drops them as bad data; the distance is what the sensor measured, so we
  leave the choice to the consumer). Angles are the
  index angles as sent, counter-clockwise, with no correction: the Neato's first sample is
  reported to sit about 10 deg off-axis (berndporr/neato-xv11-lidar) and kaiaai mirrors the
  angles for a clockwise unit; pass `angle_offset` for the mount.

``"delta2"``: 3irobotix Delta-2A/2B/2G/2D (Viomi V6 / CRL-200S class robots). Frames::

    0xAA, frame length u16 BE (bytes before the checksum), version 0x01, type 0x61,
    command (0xAD measurement, 0xAE health), parameter length u16 BE, parameters,
    checksum u16 BE (sum of every byte before it)

  Measurement parameters: speed u8 (x 0.05 rev/s, so x 3 rpm), zero-offset angle i16 BE (0.01
  deg; read by no driver we know, ignored here), start angle u16 BE (0.01 deg), then 3-byte
  samples (quality u8, distance u16 BE x 0.25 mm; 0 = no return). Sample k of n in a frame is
  at ``start + k * (360 / frames_per_turn) / n`` deg; a turn is 15 frames (start angles 0, 24,
  ... 336 deg) on the Delta-2G. Sources: NotBlackMagic/Delta-2G-LiDAR-Driver
  Software/LiDARConnection.py (field layout, 15 steps, scales) and kaiaai/LDS
  src/LDS_DELTA_2G.cpp/.h (frame length = bytes before the checksum, 16-bit checksum, sample
  angle spacing, at most 28 samples a frame on the 2G, 24 on the 2D). kaiaai's constants
  name 0xAE "RPM and measurement", against its own header comment and NotBlackMagic; we follow
  NotBlackMagic and the comment (0xAD carries the samples).

Decoding is vectorised with NumPy: start bytes are found with np.flatnonzero and every candidate
packet's checksum is checked at once; a short Python loop runs only where candidates overlap.
A candidate is accepted when its header is plausible and its checksum is right; the decoder
takes the first such candidate after the previous packet, so garbage anywhere (before, between
or inside packets) costs the packets it touches and nothing else.

Turns: a turn is complete when the angle slot (packet index, frame start angle) does not grow
from one packet to the next. The first turn is dropped when the stream starts in its middle;
a turn with missing packets keeps their beams as inf, unless less than `min_fill` of it arrived
(then it is dropped and counted). `Scan.stamp` follows the Scan contract: the time of the turn's
first beam. It is computed back from the stamp of the chunk that completed the turn (the chunk
stamp is taken as the arrival time of the chunk's last complete packet) through the packet
slots and the reported rpm, or from a running clock driven by the rpm when chunks carry no
stamp (the clock starts at 0 at slot 0 of the first turn). `Scan.duration` is the time from the
first beam to the last at the turn's mean rpm.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np

from firmware_bridge.errors import BridgeError
from maps.geometry import wrap_angle
from maps.scan import Scan

log = logging.getLogger(__name__)

FORMATS = ("neato", "delta2")

NEATO_START = 0xFA
NEATO_INDEX0 = 0xA0
NEATO_PACKETS = 90  # a turn
NEATO_PACKET_BYTES = 22
NEATO_MAX_MM = 0x3FFF  # 14-bit distance field
NEATO_INVALID = 0x8000
NEATO_WEAK = 0x4000

DELTA2_START = 0xAA
DELTA2_VERSION = 0x01
DELTA2_TYPE = 0x61
DELTA2_MEASUREMENT = 0xAD
DELTA2_HEALTH = 0xAE
DELTA2_HEADER_BYTES = 8  # start .. parameter length
DELTA2_FRAMES = 15  # a turn, Delta-2G
DELTA2_MAX_SAMPLES = 300  # a frame; real units send <= 28, more is a corrupt length
DELTA2_MAX_PARAMS = 5 + 3 * DELTA2_MAX_SAMPLES
DELTA2_UNITS_PER_M = 4000.0  # 0.25 mm

DETECT_LIMIT = 65_536  # bytes read by read_scans before giving up on finding a format
READ_CHUNK = 65_536  # a file read at once; a live port or socket returns what has arrived

# candidate status codes
_NOT_A_PACKET = 0  # wrong header: just a byte that looks like a start byte
_BAD_CHECKSUM = 1  # plausible header, checksum wrong
_VALID = 2
_UNDECIDED = 3  # not enough bytes yet

_NEATO_WEIGHTS = (1 << np.arange(9, -1, -1)).astype(np.int64)  # the fold of ten words


class LdsError(BridgeError):
    """A lidar byte source cannot be opened or read, or holds no known LDS format."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """How a format divides a turn: `slots` packets/frames of `span` degrees each."""

    name: str
    slots: int
    span: float  # degrees per slot
    rpm: float  # nominal rpm, used when a packet reports none
    range_max: float  # default metres


_LAYOUTS = {
    "neato": _Layout("neato", NEATO_PACKETS, 4.0, 300.0, 6.0),
    # 8 m: between the 5 m listed for the Delta-2A/2G (kaiaai/awesome-2d-lidars) and the 12 m
    # claimed for the 2D (codetiger/VacuumTiger); beyond it triangulation returns are noise.
    "delta2": _Layout("delta2", DELTA2_FRAMES, 360.0 / DELTA2_FRAMES, 315.0, 8.0),
}


# ---------------------------------------------------------------------------------- checksums
def _u16le(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return buf[pos].astype(np.int64) | (buf[pos + 1].astype(np.int64) << 8)


def _u16be(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (buf[pos].astype(np.int64) << 8) | buf[pos + 1].astype(np.int64)


def _neato_checksum(words: np.ndarray) -> np.ndarray:
    """(P, 10) int64 LE words -> (P,) checksums (the fold in the module docstring)."""
    chk32 = (words * _NEATO_WEIGHTS).sum(axis=1)  # < 2**26: no 32-bit overflow to emulate
    return ((chk32 & 0x7FFF) + (chk32 >> 15)) & 0x7FFF


# ---------------------------------------------------------------------------------- candidates
def _neato_candidates(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every 0xFA in `buf` with its status and packet length."""
    size = buf.size
    starts = np.flatnonzero(buf == NEATO_START)
    status = np.full(starts.size, _UNDECIDED, dtype=np.int8)
    lengths = np.full(starts.size, NEATO_PACKET_BYTES, dtype=np.int64)
    has_index = starts + 1 < size
    index = buf[np.minimum(starts + 1, size - 1)] if size else buf[:0]
    bad_header = has_index & ((index < NEATO_INDEX0) | (index >= NEATO_INDEX0 + NEATO_PACKETS))
    status[bad_header] = _NOT_A_PACKET
    full = ~bad_header & (starts + NEATO_PACKET_BYTES <= size)
    if full.any():
        p = starts[full]
        words = _u16le(buf, p[:, None] + 2 * np.arange(11))
        ok = _neato_checksum(words[:, :10]) == words[:, 10]
        status[full] = np.where(ok, _VALID, _BAD_CHECKSUM)
    return starts, status, lengths


def _delta2_candidates(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every 0xAA in `buf` with its status and frame length (checksum included)."""
    size = buf.size
    starts = np.flatnonzero(buf == DELTA2_START)
    status = np.full(starts.size, _UNDECIDED, dtype=np.int8)
    lengths = np.zeros(starts.size, dtype=np.int64)
    has_header = starts + DELTA2_HEADER_BYTES <= size
    if not has_header.any():
        return starts, status, lengths
    h = starts[has_header]
    frame_len = _u16be(buf, h + 1)
    params = _u16be(buf, h + 6)
    command = buf[h + 5]
    measurement = (command == DELTA2_MEASUREMENT) & (params >= 5) & ((params - 5) % 3 == 0)
    health = (command == DELTA2_HEALTH) & (params >= 1)
    plausible = (
        (buf[h + 3] == DELTA2_VERSION)
        & (buf[h + 4] == DELTA2_TYPE)
        & (measurement | health)
        & (frame_len == params + DELTA2_HEADER_BYTES)
        & (params <= DELTA2_MAX_PARAMS)
    )
    sub = np.where(plausible, _UNDECIDED, _NOT_A_PACKET).astype(np.int8)
    total = frame_len + 2
    lengths[has_header] = np.where(plausible, total, 0)
    complete = plausible & (h + total <= size)
    if complete.any():
        c = h[complete]
        n = frame_len[complete]
        sums = np.zeros(size + 1, dtype=np.uint32)
        np.cumsum(buf, dtype=np.uint32, out=sums[1:])  # differences stay right mod 2**32
        got = (sums[c + n] - sums[c]) & 0xFFFF
        ok = got == _u16be(buf, c + n)
        sub[complete] = np.where(ok, _VALID, _BAD_CHECKSUM)
    status[has_header] = sub
    return starts, status, lengths


_CANDIDATES = {"neato": _neato_candidates, "delta2": _delta2_candidates}


def _select(
    starts: np.ndarray, status: np.ndarray, lengths: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Greedy choice of packets: from the stream start, take the first valid candidate, jump
    past it, repeat; stop at the first candidate that cannot be decided yet.

    Returns (chosen starts, their lengths, frontier): every byte before `frontier` is decided.
    """
    undecided = np.flatnonzero(status == _UNDECIDED)
    first_open = int(starts[undecided[0]]) if undecided.size else size
    valid = status == _VALID
    v, vl = starts[valid], lengths[valid]
    before = v < first_open
    v, vl = v[before], vl[before]
    if v.size == 0 or bool(np.all(v[1:] >= v[:-1] + vl[:-1])):
        cursor = int(v[-1] + vl[-1]) if v.size else 0
        if cursor <= first_open:
            return v, vl, first_open
        # the last packet covers the first undecided candidate: carry on past it
        chosen, chosen_len = v.tolist(), vl.tolist()
        k0 = int(np.searchsorted(starts, cursor))
    else:
        chosen, chosen_len, cursor, k0 = [], [], 0, 0
    frontier = size
    for p, st, ln in zip(
        starts[k0:].tolist(), status[k0:].tolist(), lengths[k0:].tolist(), strict=True
    ):
        if p < cursor:
            continue
        if st == _UNDECIDED:
            frontier = p
            break
        if st == _VALID:
            chosen.append(p)
            chosen_len.append(ln)
            cursor = p + ln
    return (
        np.asarray(chosen, dtype=np.int64),
        np.asarray(chosen_len, dtype=np.int64),
        max(frontier, cursor),
    )


# ---------------------------------------------------------------------------------- parsing
@dataclass(slots=True)
class _Packets:
    """Decoded packets of one chunk, in stream order; samples flattened in the same order."""

    slot: np.ndarray  # (P,) int64 slot in the turn
    rpm: np.ndarray  # (P,) float64 as reported (0 = none)
    count: np.ndarray  # (P,) int64 samples per packet
    ranges: np.ndarray  # (S,) float32 metres, inf = no return
    angles: np.ndarray  # (S,) float64 degrees in the sensor frame


def _parse_neato(buf: np.ndarray, p: np.ndarray) -> _Packets:
    slot = buf[p + 1].astype(np.int64) - NEATO_INDEX0
    rpm = _u16le(buf, p + 2) / 64.0
    raw = _u16le(buf, p[:, None] + 4 + 4 * np.arange(4)).ravel()
    mm = (raw & NEATO_MAX_MM).astype(np.float32)
    ranges = np.where(raw & NEATO_INVALID, np.float32(np.inf), mm / np.float32(1000.0))
    angles = (4 * slot[:, None] + np.arange(4)).ravel().astype(np.float64)
    count = np.full(p.size, 4, dtype=np.int64)
    return _Packets(slot, rpm, count, ranges.astype(np.float32), angles)


def _parse_delta2(buf: np.ndarray, p: np.ndarray, frames: int) -> _Packets:
    p = p[buf[p + 5] == DELTA2_MEASUREMENT]  # health frames carry no samples
    if p.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Packets(empty, empty.astype(np.float64), empty, np.zeros(0, np.float32), empty)
    rpm = buf[p + 8].astype(np.float64) * 3.0
    start = _u16be(buf, p + 11)
    count = (_u16be(buf, p + 6) - 5) // 3
    slot = np.rint(start * frames / 36000.0).astype(np.int64) % frames
    total = int(count.sum())
    frame_of = np.repeat(np.arange(p.size), count)
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    k = np.arange(total) - np.repeat(first, count)
    pos = p[frame_of] + DELTA2_HEADER_BYTES + 5 + 3 * k
    units = _u16be(buf, pos + 1)
    ranges = np.where(units == 0, np.inf, units / DELTA2_UNITS_PER_M).astype(np.float32)
    n = np.maximum(count[frame_of], 1)
    angles = start[frame_of] / 100.0 + k * (360.0 / frames) / n
    return _Packets(slot, rpm, count, ranges, angles)


# ---------------------------------------------------------------------------------- decoder
@dataclass(slots=True)
class _Turn:
    """The turn being assembled: chunks of packets in arrival order."""

    u0: int  # unwrapped slot count of the turn's slot 0
    first_slot: int
    slots: list[np.ndarray] = field(default_factory=list)
    rpm: list[np.ndarray] = field(default_factory=list)
    count: list[np.ndarray] = field(default_factory=list)
    ranges: list[np.ndarray] = field(default_factory=list)
    angles: list[np.ndarray] = field(default_factory=list)
    last_slot: int = -1
    packets: int = 0

    def add(self, pk: _Packets, a: int, b: int, sa: int, sb: int) -> None:
        self.slots.append(pk.slot[a:b])
        self.rpm.append(pk.rpm[a:b])
        self.count.append(pk.count[a:b])
        self.ranges.append(pk.ranges[sa:sb])
        self.angles.append(pk.angles[sa:sb])
        self.last_slot = int(pk.slot[b - 1])
        self.packets += b - a


class LdsDecoder:
    """Incremental decoder of one LDS byte stream into `Scan`s (one per turn).

    Parameters
    ----------
    fmt : "neato" or "delta2" (see the module docstring).
    range_min, range_max : metres, passed to every Scan; range_max defaults to 6 m for "neato"
        (Roborock / LDS02RR spec) and 8 m for "delta2".
    angle_offset : radians added to every beam angle (the sensor's zero in the sensor frame).
    frames_per_turn : frames in a Delta-2 turn (15; some variants send 16); "neato" is always 90.
    min_fill : a turn with less than this fraction of its packets is dropped, not emitted.

    Counters (never reset): `packets` accepted (health frames included, see `health_frames`),
    `checksum_errors` (candidates with a plausible header and a wrong checksum outside accepted
    packets), `resyncs` (runs of skipped bytes), `bytes_skipped`, `turns` (Scans returned),
    `turns_dropped` (partial first turn, or under `min_fill`), `bytes_fed`, `packet_bytes`.
    Always ``bytes_fed == packet_bytes + bytes_skipped + bytes_buffered``.
    """

    def __init__(
        self,
        fmt: str = "neato",
        *,
        range_min: float = 0.15,
        range_max: float | None = None,
        angle_offset: float = 0.0,
        frames_per_turn: int | None = None,
        min_fill: float = 0.5,
    ) -> None:
        if fmt not in _LAYOUTS:
            raise ValueError(f"unknown LDS format {fmt!r}; use one of {', '.join(FORMATS)}")
        layout = _LAYOUTS[fmt]
        if frames_per_turn is not None:
            if fmt == "neato" and frames_per_turn != NEATO_PACKETS:
                raise ValueError("a Neato turn is always 90 packets; leave frames_per_turn unset")
            if not 1 <= int(frames_per_turn) <= 360:
                raise ValueError(f"frames_per_turn must be in 1..360, got {frames_per_turn}")
            n = int(frames_per_turn)
            layout = _Layout(fmt, n, 360.0 / n, layout.rpm, layout.range_max)
        range_max = layout.range_max if range_max is None else float(range_max)
        if not (math.isfinite(range_min) and 0.0 <= range_min < range_max):
            raise ValueError(
                f"need 0 <= range_min < range_max (metres), got {range_min}, {range_max}"
            )
        if not math.isfinite(angle_offset):
            raise ValueError(f"angle_offset must be finite radians, got {angle_offset}")
        if not 0.0 <= min_fill <= 1.0:
            raise ValueError(f"min_fill is a fraction of a turn in [0, 1], got {min_fill}")
        self.fmt = fmt
        self.range_min = float(range_min)
        self.range_max = range_max
        self.angle_offset = float(angle_offset)
        self.min_fill = float(min_fill)
        self._layout = layout
        self._candidates = _CANDIDATES[fmt]
        self.packets = 0
        self.health_frames = 0
        self.checksum_errors = 0
        self.resyncs = 0
        self.bytes_skipped = 0
        self.turns = 0
        self.turns_dropped = 0
        self.bytes_fed = 0
        self.packet_bytes = 0
        self._pending = b""
        self._skipping = False  # the last decided byte was skipped (a resync run is open)
        self._slot: int | None = None  # slot of the last packet
        self._u = 0  # unwrapped slot count of the last packet
        self._t = 0.0  # time of the last packet's first beam, s
        self._turn: _Turn | None = None
        self._seen_start = False  # a turn boundary has been seen: later turns are whole

    @property
    def bytes_buffered(self) -> int:
        """Bytes kept for the next chunk (the start of a packet not complete yet)."""
        return len(self._pending)

    def feed(self, data: bytes, stamp: float | None = None) -> list[Scan]:
        """Decode a chunk of the stream; returns the Scans completed by it (oldest first).

        `stamp` (s) is when the chunk arrived; None runs the clock from the reported rpm.
        Never raises on bad bytes: they are skipped and counted.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"feed() takes bytes, got {type(data).__name__}")
        if stamp is not None and not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite seconds or None, got {stamp}")
        data = bytes(data)
        self.bytes_fed += len(data)
        buf = np.frombuffer(self._pending + data, dtype=np.uint8)
        starts, status, lengths = self._candidates(buf)
        chosen, chosen_len, frontier = _select(starts, status, lengths, buf.size)
        self._count_skips(starts, status, chosen, chosen_len, frontier)
        self._pending = buf[frontier:].tobytes()
        if chosen.size == 0:
            return []
        self.packets += int(chosen.size)
        self.packet_bytes += int(chosen_len.sum())
        if self.fmt == "neato":
            pk = _parse_neato(buf, chosen)
        else:
            self.health_frames += int(np.count_nonzero(buf[chosen + 5] == DELTA2_HEALTH))
            pk = _parse_delta2(buf, chosen, self._layout.slots)
        if pk.slot.size == 0:
            return []
        return self._assemble(pk, stamp)

    def flush(self) -> list[Scan]:
        """At the end of a stream: the turn in progress as a Scan, if it reached its last slot
        (and holds `min_fill` of its packets); [] otherwise. The decoder stays usable."""
        turn, self._turn = self._turn, None
        if turn is None or turn.last_slot != self._layout.slots - 1:
            if turn is not None:
                self.turns_dropped += 1
            return []
        scan = self._finish(turn, self._t, self._u)
        return [] if scan is None else [scan]

    # ---------------------------------------------------------------- internals
    def _count_skips(self, starts, status, chosen, chosen_len, frontier) -> None:
        ends = chosen + chosen_len
        gaps = chosen - np.concatenate(([0], ends[:-1]))
        tail = frontier - (int(ends[-1]) if ends.size else 0)
        runs = np.append(gaps, tail)
        skipped = int(runs.sum())
        self.bytes_skipped += skipped
        new_runs = int(np.count_nonzero(runs))
        if self._skipping and runs[0] > 0:
            new_runs -= 1  # the run that ended the previous chunk goes on
        self.resyncs += new_runs
        if chosen.size:
            self._skipping = tail > 0
        elif tail > 0:
            self._skipping = True
        bad = starts[(status == _BAD_CHECKSUM) & (starts < frontier)]
        if bad.size and chosen.size:
            j = np.searchsorted(chosen, bad, side="right") - 1
            inside = (j >= 0) & (bad < ends[np.maximum(j, 0)])
            bad = bad[~inside]  # a false start inside an accepted packet is no error
        self.checksum_errors += int(bad.size)

    def _assemble(self, pk: _Packets, stamp: float | None) -> list[Scan]:
        lay = self._layout
        slot = pk.slot
        rpm = np.where((pk.rpm > 0) & np.isfinite(pk.rpm), pk.rpm, lay.rpm)
        slot_dt = (lay.span / 360.0) * 60.0 / rpm
        prev = np.empty_like(slot)
        prev[1:] = slot[:-1]
        if self._slot is None:  # first packet ever: the clock is 0 at slot 0 of its turn
            prev[0] = slot[0] - 1
            self._t = float(slot[0] * slot_dt[0]) - float(slot_dt[0])
            self._u = int(slot[0]) - 1
        else:
            prev[0] = self._slot
        step = (slot - prev - 1) % lay.slots + 1  # slots from the previous packet, 1..n
        u = self._u + np.cumsum(step)
        t = self._t + np.cumsum(step * slot_dt)
        if stamp is not None:  # the last packet's last beam arrived at `stamp`
            t += stamp - slot_dt[-1] - t[-1]
        wraps = np.flatnonzero(slot <= prev)
        if self._turn is None:  # the first packet ever, or the first after a flush
            self._turn = _Turn(u0=int(u[0] - slot[0]), first_slot=int(slot[0]))
            wraps = wraps[wraps > 0]
        sample_at = np.concatenate(([0], np.cumsum(pk.count)))
        out: list[Scan] = []
        a = 0
        for k in wraps.tolist():
            if k > a:
                self._turn.add(pk, a, k, int(sample_at[a]), int(sample_at[k]))
            scan = self._finish(self._turn, float(t[k]), int(u[k]))
            if scan is not None:
                out.append(scan)
            self._seen_start = True  # every later turn starts at a boundary
            self._turn = _Turn(u0=int(u[k] - slot[k]), first_slot=int(slot[k]))
            a = k
        self._turn.add(pk, a, slot.size, int(sample_at[a]), int(sample_at[-1]))
        self._slot, self._u, self._t = int(slot[-1]), int(u[-1]), float(t[-1])
        return out

    def _finish(self, turn: _Turn, t_ref: float, u_ref: int) -> Scan | None:
        """The Scan of a finished turn, or None (dropped and counted)."""
        lay = self._layout
        if not self._seen_start and turn.first_slot != 0:
            self.turns_dropped += 1  # the stream started inside this turn
            return None
        if turn.packets < self.min_fill * lay.slots or turn.packets == 0:
            self.turns_dropped += 1
            return None
        slots = np.concatenate(turn.slots)
        count = np.concatenate(turn.count)
        ranges = np.concatenate(turn.ranges)
        angles = np.concatenate(turn.angles)
        if slots.size < lay.slots:  # missing packets: their beams become inf
            n_fill = int(np.sort(count)[count.size // 2])  # the usual packet size
            present = np.zeros(lay.slots, dtype=bool)
            present[slots] = True
            missing = np.flatnonzero(~present)
            fill_angles = (
                missing[:, None] * lay.span + np.arange(n_fill) * lay.span / n_fill
            ).ravel()
            key = np.concatenate((np.repeat(slots, count), np.repeat(missing, n_fill)))
            order = np.argsort(key, kind="stable")
            ranges = np.concatenate((ranges, np.full(fill_angles.size, np.inf, np.float32)))[order]
            angles = np.concatenate((angles, fill_angles))[order]
        rpm = np.concatenate(turn.rpm)
        rpm = rpm[(rpm > 0) & np.isfinite(rpm)]
        period = 60.0 / (float(rpm.mean()) if rpm.size else lay.rpm)
        n = ranges.size
        stamp = t_ref - (u_ref - turn.u0) * period * lay.span / 360.0
        rad = wrap_angle(np.deg2rad(angles) + self.angle_offset)
        self.turns += 1
        return Scan(
            ranges,
            np.asarray(rad, dtype=np.float32),
            stamp,
            self.range_min,
            self.range_max,
            duration=period * (n - 1) / n if n > 1 else 0.0,
        )


# ---------------------------------------------------------------------------------- encoders
def _resample(scan: Scan, angles: np.ndarray) -> np.ndarray:
    """Range of the scan beam nearest (circularly) to each of `angles` (rad), float64."""
    if len(scan) == 0:
        raise ValueError("cannot encode a scan with no beams")
    two_pi = 2.0 * np.pi
    a = np.mod(scan.angles.astype(np.float64), two_pi)
    order = np.argsort(a, kind="stable")
    sa = a[order]
    target = np.mod(angles, two_pi)
    hi = np.searchsorted(sa, target) % sa.size
    lo = (hi - 1) % sa.size
    d_hi = np.abs(np.mod(sa[hi] - target + np.pi, two_pi) - np.pi)
    d_lo = np.abs(np.mod(sa[lo] - target + np.pi, two_pi) - np.pi)
    nearest = np.where(d_lo <= d_hi, lo, hi)
    return scan.ranges.astype(np.float64)[order[nearest]]


def _synthetic_strength(r: np.ndarray, full: int) -> np.ndarray:
    """A made-up signal strength that falls with range (the Scan carries none)."""
    return np.clip(np.rint(full / (1.0 + np.nan_to_num(r, posinf=0.0))), 1, full).astype(np.int64)


def encode_neato(scan: Scan, rpm: float = 300.0) -> bytes:
    """One whole turn (90 packets, 1980 bytes) of Neato/LDS02RR packets for `scan`.

    Each degree takes the range of the beam nearest to it (sensor frame, 0 deg = index 0xA0).
    inf/NaN and ranges beyond the 14-bit field (16.383 m) are sent as invalid; ranges are
    rounded to the millimetre. Strength is synthetic.
    """
    rpm_word = round(float(rpm) * 64.0) if math.isfinite(rpm) else -1
    if not 0 < rpm_word <= 0xFFFF:
        raise ValueError(f"rpm must be in (0, 1023.98] for the u16 speed field, got {rpm}")
    r = _resample(scan, np.deg2rad(np.arange(360.0)))
    finite = np.isfinite(r)
    mm = np.rint(np.where(finite, r, 0.0) * 1000.0).astype(np.int64)
    valid = finite & (mm <= NEATO_MAX_MM)
    dist = np.where(valid, mm, NEATO_INVALID).reshape(NEATO_PACKETS, 4)
    strength = np.where(valid, _synthetic_strength(r, 4000), 0).reshape(NEATO_PACKETS, 4)
    words = np.empty((NEATO_PACKETS, 11), dtype=np.int64)
    words[:, 0] = NEATO_START | ((NEATO_INDEX0 + np.arange(NEATO_PACKETS)) << 8)
    words[:, 1] = rpm_word
    words[:, 2:10:2] = dist
    words[:, 3:10:2] = strength
    words[:, 10] = _neato_checksum(words[:, :10])
    out = np.empty((NEATO_PACKETS, NEATO_PACKET_BYTES), dtype=np.uint8)
    out[:, 0::2] = words & 0xFF
    out[:, 1::2] = words >> 8
    return out.tobytes()


def encode_delta2(
    scan: Scan,
    rpm: float = 315.0,
    *,
    samples_per_frame: int = 24,
    frames_per_turn: int = DELTA2_FRAMES,
) -> bytes:
    """One whole turn of 3irobotix Delta-2 measurement frames for `scan`.

    `frames_per_turn` frames (start angles 0, 360/n, ... deg) of `samples_per_frame` samples;
    each sample takes the range of the nearest beam (sensor frame). Ranges are rounded to 0.25
    mm; inf/NaN and ranges beyond 16.38 m are sent as 0 (no return), and a finite range that
    would round to 0 is sent as 1 (0.25 mm) so that it stays a reading. The speed byte holds
    rpm / 3. Quality is synthetic.
    """
    speed = round(float(rpm) / 3.0) if math.isfinite(rpm) else -1
    if not 1 <= speed <= 255:
        raise ValueError(f"rpm must be in [1.5, 766] for the speed byte (x3 rpm), got {rpm}")
    if not 1 <= samples_per_frame <= DELTA2_MAX_SAMPLES:
        raise ValueError(f"samples_per_frame must be in 1..{DELTA2_MAX_SAMPLES}")
    if not 1 <= frames_per_turn <= 360:
        raise ValueError(f"frames_per_turn must be in 1..360, got {frames_per_turn}")
    n, f = int(samples_per_frame), int(frames_per_turn)
    start = np.rint(np.arange(f) * 36000.0 / f).astype(np.int64)  # 0.01 deg
    deg = start[:, None] / 100.0 + np.arange(n) * (360.0 / f) / n
    r = _resample(scan, np.deg2rad(deg.ravel()))
    finite = np.isfinite(r)
    units = np.rint(np.where(finite, r, 0.0) * DELTA2_UNITS_PER_M).astype(np.int64)
    valid = finite & (units <= 0xFFFF)
    units = np.where(valid, np.maximum(units, 1), 0).reshape(f, n)
    quality = np.where(valid, _synthetic_strength(r, 255), 0).reshape(f, n)
    params = 5 + 3 * n
    frame = np.zeros((f, DELTA2_HEADER_BYTES + params + 2), dtype=np.int64)
    frame[:, 0] = DELTA2_START
    frame[:, 1], frame[:, 2] = divmod(DELTA2_HEADER_BYTES + params, 256)
    frame[:, 3] = DELTA2_VERSION
    frame[:, 4] = DELTA2_TYPE
    frame[:, 5] = DELTA2_MEASUREMENT
    frame[:, 6], frame[:, 7] = divmod(params, 256)
    frame[:, 8] = speed
    # 9, 10: zero-offset angle, 0
    frame[:, 11] = start >> 8
    frame[:, 12] = start & 0xFF
    body = frame[:, 13 : 13 + 3 * n]
    body[:, 0::3] = quality
    body[:, 1::3] = units >> 8
    body[:, 2::3] = units & 0xFF
    total = frame[:, :-2].sum(axis=1) & 0xFFFF
    frame[:, -2] = total >> 8
    frame[:, -1] = total & 0xFF
    return frame.astype(np.uint8).tobytes()


def detect_format(data: bytes) -> str:
    """Name the format of `data`: "neato" or "delta2", whichever has more packets that check out.

    Raises LdsError when `data` holds no valid packet of either format.
    """
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    found = {fmt: int(np.count_nonzero(_CANDIDATES[fmt](buf)[1] == _VALID)) for fmt in FORMATS}
    best = max(FORMATS, key=lambda fmt: found[fmt])
    if found[best] == 0:
        raise LdsError(
            f"no LDS data in {buf.size} bytes: no 22-byte 0xFA packet (Neato/Roborock LDS) "
            "and no 0xAA frame (3irobotix Delta-2) with a valid checksum"
        )
    return best


# ---------------------------------------------------------------------------------- sources
class ByteSource(Protocol):
    """What `read_scans` reads: `read(n)` returns 1..n bytes, or b"" at the end."""

    def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


class _Source:
    """Common part of the byte sources: a url for messages, a context manager."""

    url: str

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class FileSource(_Source):
    """A recorded byte stream in a file."""

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        try:
            self._file = open(path, "rb")  # closed by close()
        except FileNotFoundError:
            raise LdsError(f"{url}: no such file") from None
        except OSError as exc:
            raise LdsError(f"{url}: cannot open: {exc.strerror or exc}") from exc

    def read(self, n: int) -> bytes:
        return self._file.read(n)

    def close(self) -> None:
        self._file.close()


class TcpSource(_Source):
    """A TCP byte stream, as ser2net serves a serial port; `timeout` s without data is an
    error, the peer closing the connection is the end of the stream."""

    def __init__(self, url: str, host: str, port: int, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise LdsError(f"{url}: no answer within {timeout} s") from None
        except OSError as exc:
            raise LdsError(f"{url}: cannot connect: {exc.strerror or exc}") from exc

    def read(self, n: int) -> bytes:
        try:
            return self._sock.recv(n)
        except TimeoutError:
            raise LdsError(f"{self.url}: no data for {self.timeout} s") from None
        except OSError as exc:
            raise LdsError(f"{self.url}: connection lost: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self._sock.close()


class SerialSource(_Source):
    """A serial port through pyserial; `timeout` s without data is an error."""

    def __init__(self, url: str, device: str, baud: int, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        try:
            import serial  # lazy: pyserial is needed for serial ports only
        except ImportError:
            raise LdsError(
                f"{url}: reading a serial port needs pyserial (pip install pyserial)"
            ) from None
        try:
            self._port = serial.Serial(device, baudrate=baud, timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            message = " ".join(str(exc).split())
            raise LdsError(f"{url}: cannot open serial port: {message}") from exc

    def read(self, n: int) -> bytes:
        first = self._port.read(1)
        if not first:
            raise LdsError(f"{self.url}: no data for {self.timeout} s")
        more = min(n - 1, self._port.in_waiting)
        return first + (self._port.read(more) if more > 0 else b"")

    def close(self) -> None:
        self._port.close()


def open_source(url: str, *, timeout: float = 2.0) -> ByteSource:
    """Open a lidar byte stream.

    `url`: ``file:PATH`` or a plain path; ``tcp://HOST:PORT`` (ser2net and the like);
    ``serial:///dev/ttyUSB0?baud=115200`` (pyserial; baud defaults to 115200). `timeout`
    (s) bounds connecting and each read. Raises LdsError naming the url when it cannot be opened.
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be > 0 s, got {timeout}")
    url = os.fspath(url)
    if url.startswith("tcp://"):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise LdsError(f"{url}: expected tcp://HOST:PORT")
        return TcpSource(url, parts.hostname, port, timeout)
    if url.startswith("serial:"):
        parts = urlsplit(url)
        device = parts.path or parts.netloc
        if not device:
            raise LdsError(f"{url}: expected serial:///dev/ttyUSB0?baud=115200")
        query = parse_qs(parts.query)
        try:
            baud = int(query.get("baud", ["115200"])[0])
        except ValueError:
            raise LdsError(f"{url}: baud must be an integer") from None
        if baud <= 0:
            raise LdsError(f"{url}: baud must be positive")
        return SerialSource(url, device, baud, timeout)
    if url.startswith("file:"):
        path = url[len("file:") :]
        if path.startswith("//"):
            path = path[2:]
        return FileSource(url, path)
    if "://" in url:
        raise LdsError(f"{url}: unknown scheme; use file:, tcp:// or serial://")
    return FileSource(url, url)


def read_scans(
    url_or_source: str | os.PathLike | ByteSource,
    fmt: str | None = None,
    *,
    clock: Callable[[], float] | None = None,
    timeout: float = 2.0,
    **decoder_options,
) -> Iterator[Scan]:
    """Scans from a url (see `open_source`) or an open byte source, until it ends.

    `fmt` None detects the format from the first bytes (up to 64 KiB). `clock` stamps each
    chunk as it arrives (e.g. time.monotonic for a live sensor); None runs the clock from the
    reported rpm (recordings). Other keywords go to `LdsDecoder`. A source opened here is closed
    at the end; the last turn is returned if it reached its last slot.
    """
    own = isinstance(url_or_source, str | os.PathLike)
    source = open_source(url_or_source, timeout=timeout) if own else url_or_source
    name = getattr(source, "url", repr(source))
    try:
        head = b""
        if fmt is None:
            while True:
                data = source.read(READ_CHUNK)
                if data:
                    head += data
                    try:
                        fmt = detect_format(head)
                        break
                    except LdsError:
                        pass
                if not data or len(head) >= DETECT_LIMIT:
                    raise LdsError(
                        f"{name}: no Neato (0xFA) packet nor Delta-2 (0xAA) frame with a valid "
                        f"checksum in the first {len(head)} bytes"
                    )
        decoder = LdsDecoder(fmt, **decoder_options)
        started = time.perf_counter()
        data = head
        while True:
            if data:
                yield from decoder.feed(data, clock() if clock is not None else None)
            data = source.read(READ_CHUNK)
            if not data:
                break
        yield from decoder.flush()
        log.info(
            "%s: %s, %d turns (%d dropped), %d packets, %d checksum errors, %d resyncs, "
            "%d bytes skipped in %.1f s",
            name,
            fmt,
            decoder.turns,
            decoder.turns_dropped,
            decoder.packets,
            decoder.checksum_errors,
            decoder.resyncs,
            decoder.bytes_skipped,
            time.perf_counter() - started,
        )
    finally:
        if own:
            source.close()
