"""MiioRobot: a Roborock driven over miIO with python-miio, seen through the Robot protocol.

Commands go out through python-miio's `RoborockVacuum` (the miIO protocol: UDP port 54321,
AES with the device token); sensor data comes in over TCP from a rooted robot (or the fake
firmware), because a stock Roborock reports neither scans nor odometry over miIO
(vacuum_ecosystem.md 0.3, 5.1).

Frames and units. Our side is metres and radians; the robot's side is millimetres in its own
map frame. `RobotFrame` converts at this edge: built from a map imported from the robot
(`from_vendor`, the `VendorFrame` that maps.formats.roborock keeps) or calibrated from the dock
(`from_dock`: Home Assistant's goto docs put the Roborock dock near (25500, 25500) mm). The Robot
protocol gives `goto` targets in the odometry frame; the default frame (`from_dock()`, dock at
the odometry origin) is right for a robot that started on its dock. Zones and restrictions are
given in the same frame as the goto targets.

Driving (`drive`) uses remote control: `app_rc_start`, then `app_rc_move {omega, velocity,
duration, seqnum}` through `RoborockVacuum.manual_control(rotation_deg, velocity, duration_ms)`.
What the firmware does with them, as far as it is documented: `omega` is a turn rate in rad/s,
positive = left (counter-clockwise), `velocity` m/s, `duration` ms the command lasts
(marcelrv/XiaomiRobotVacuumProtocol docs/commands/remote-control.md, read from the app's code:
key pad +-1.05 rad/s, joystick up to 0.29 m/s, 1000-1500 ms; Valetudo's
RoborockHighResolutionManualControlCapability also sends omega in rad/s). python-miio accepts
rotation -180..180 deg and velocity -0.3..0.3 m/s and sends omega = round(radians(rotation), 1),
a 0.1 rad/s grid. So `drive(v, w, dt)`:
- clamps v to +-0.3 m/s and w to +-3.1 rad/s (python-miio's limits; logged once each), and the
  firmware may clamp further (the fake clamps to its SimConfig, as a real drive train would);
- splits dt into pieces of at most `max_piece` s (1 s, within the app's own 1-1.5 s commands);
- runs each piece as one or two moves at the two omegas of the 0.1 rad/s grid around w, their
  durations (whole ms) chosen so that the heading turned is w * dt: python-miio's rounding then
  costs no heading, only a mm-scale sideways offset;
- waits for the telemetry to report the end of each move (or, without telemetry, for its
  duration), and stops at the first piece that ends on the bumper.

Network faults. Every request carries a message id that stays the same on every resend, so a
robot that got the request but whose answer was lost does not run it again (the fake answers a
repeat from its reply cache; real Roborock firmware logs "look like a repeated msg" and ignores
it, python-miio#211, so there a lost answer ends in RobotTimeout although the command ran
once). python-miio's own retries change the id (+100) and so can run a command
twice: they are switched off (retry_count=0) and this module retries instead: `retries` resends
after `timeout` s each, with exponential backoff. `connect()` tells the cases apart within
`connect_timeout` (4 s): nothing answers the miIO hello -> RobotUnreachable; the hello is
answered but encrypted commands are not -> TokenRejected (a robot drops what it cannot decrypt).
Later silence is RobotTimeout; an error answer is FirmwareError (UnsupportedCommand for an
unknown method); a robot reporting an error code raises FirmwareError with its text
(`ERROR_TEXT`, python-miio 0.5.12 vacuumcontainers.py's table, codes 0-24).

Sensors (optional). `lidar_url` is a Neato/LDS byte stream (`tcp://HOST:PORT`, as ser2net
serves the LDS UART), decoded by `lds.LdsDecoder`. `telemetry_url` is a line stream of JSON
objects (the `TELEMETRY` note below), as a sensor bridge on a rooted robot would serve the MCU's
odometry and bumper. Without telemetry, `time` is the host clock, `odometry()` is dead reckoning
of the commanded moves, the bumper reads False and `drive` waits in real time.
"""

from __future__ import annotations

import json
import logging
import math
import random
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
from miio import DeviceError, DeviceException, RoborockVacuum

from firmware_bridge.errors import (
    BridgeError,
    FirmwareError,
    RobotTimeout,
    RobotUnreachable,
    SensorError,
    TokenRejected,
    UnsupportedCommand,
)
from firmware_bridge.lds import NEATO_PACKET_BYTES, LdsDecoder
from firmware_bridge.secrets import REDACTED, RedactingFilter, Token
from maps.geometry import Pose, wrap_angle
from maps.model import Restrictions, VendorFrame
from maps.scan import Odometry, Scan

log = logging.getLogger(__name__)

MIIO_PORT = 54321  # python-miio always sends here
HELLO = bytes.fromhex("21310020" + "ff" * 28)
DOCK_MM = (25500.0, 25500.0)  # where a Roborock's map puts its dock (Home Assistant docs)
MAX_VELOCITY = 0.3  # m/s, python-miio's manual_control limit
MAX_ROTATION_DEG = 180  # python-miio's manual_control limit
OMEGA_STEP = 0.1  # rad/s: python-miio rounds omega to one decimal
TURN_START = bytes((0xFA, 0xA0))  # a Neato turn's first packet: start byte, index 0
MAX_RESTRICTION_COORDS = 68  # Valetudo refuses more ("too many forbidden markers")
JOB_STATES = frozenset({1, 5, 6, 11, 15, 16, 17, 18})  # the firmware is busy with a job
MANUAL_STATES = frozenset({4, 7})

# TELEMETRY: one JSON object per line (UTF-8, '\n'), "type" says which:
#   {"type": "hello", "t": s, "lds_rate": Hz, "range_min": m, "range_max": m, "lidar_offset": m,
#    "cmd_tags": bool}
#       first line on connect: the robot clock, the lidar's geometry, and whether odom lines
#       carry "cmd"/"done" tags
#   {"type": "odom", "t": s, "x": m, "y": m, "theta": rad, "v": m/s, "w": rad/s,
#    "bumper": bool, "state": int, "cmd": int, "done": bool}
#       dead-reckoned pose (odometry frame: Pose(0, 0, 0) where the robot started). "cmd" is the
#       miIO message id of the motion command the line reports (0: none) and "done" marks the
#       line at the end of that command's motion; a firmware job's done line also has
#       "outcome": "finished", "stopped" (app_stop, a new command) or "failed".
#   {"type": "scan", "t": s, "duration": s, "rev": int}
#       a lidar turn: the robot-clock time of its first beam; the k-th scan line after connect
#       belongs to the k-th whole turn decoded from the lidar stream.
# Lines without "cmd" (a bridge that cannot see the firmware's RPC) are handled by the robot
# clock: a move is over when the telemetry time reaches its end or the bumper fires.

ERROR_TEXT = {
    0: "no error",
    1: "laser distance sensor error",
    2: "collision sensor error",
    3: "wheels over a void (a cliff): move the robot",
    4: "cliff sensors need cleaning: move the robot",
    5: "main brush jammed: clean it",
    6: "side brush jammed: clean it",
    7: "main wheel stuck",
    8: "robot stuck: clear the area around it",
    9: "dust bin missing",
    10: "filter blocked: clean it",
    11: "stuck in a magnetic barrier",
    12: "battery low",
    13: "charging fault",
    14: "battery fault",
    15: "wall sensor dirty: wipe it",
    16: "robot tilted: place it on a flat surface",
    17: "side brush fault: reboot the robot",
    18: "suction fan fault",
    19: "dock has no power",
    21: "laser distance sensor blocked",
    22: "dock charging contacts dirty: clean them",
    23: "dock not reachable",
    24: "no-go zone or virtual wall in the way",
}

STATE_NAMES = {
    1: "starting",
    2: "charger disconnected",
    3: "idle",
    4: "remote control",
    5: "cleaning",
    6: "returning home",
    7: "manual mode",
    8: "charging",
    9: "charging problem",
    10: "paused",
    11: "spot cleaning",
    12: "error",
    13: "shutting down",
    14: "updating",
    15: "docking",
    16: "going to target",
    17: "zoned cleaning",
    18: "segment cleaning",
    22: "emptying the bin",
    23: "washing the mop",
    26: "going to wash the mop",
    100: "charging complete",
    101: "offline",
}


def error_text(code: int) -> str:
    """Readable text of a Roborock error code (python-miio 0.5.12's table, 0-24)."""
    text = ERROR_TEXT.get(int(code))
    return text if text is not None else f"error code {int(code)} (not in the known table 0-24)"


# ------------------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class RobotFrame:
    """Our frame (metres) -> the robot's map frame (its units, mm for Roborock).

    robot = offset + scale * R(rotation) @ ours; headings: robot = ours + rotation. Both frames
    have y up (maps.formats.roborock flips nothing either).
    """

    rotation: float = 0.0  # rad, robot axes relative to ours
    offset: tuple[float, float] = DOCK_MM  # robot position of our (0, 0)
    scale: float = 1000.0  # robot units per metre

    def __post_init__(self) -> None:
        values = (self.rotation, self.offset[0], self.offset[1], self.scale)
        if not all(math.isfinite(float(v)) for v in values) or not self.scale > 0:
            raise ValueError(f"RobotFrame needs finite values and scale > 0, got {self}")
        object.__setattr__(self, "offset", (float(self.offset[0]), float(self.offset[1])))

    @classmethod
    def from_dock(
        cls,
        dock: Pose | None = None,
        dock_mm: tuple[float, float] = DOCK_MM,
        dock_heading: float = 0.0,
    ) -> RobotFrame:
        """Calibrated from the dock: `dock` is its pose in our frame (Pose() for the odometry
        frame of a robot that started on it), `dock_mm` and `dock_heading` (rad) the same pose
        in the robot's frame."""
        dock = Pose() if dock is None else dock
        rotation = float(wrap_angle(dock_heading - dock.theta))
        c, s = math.cos(rotation), math.sin(rotation)
        ox = dock_mm[0] - 1000.0 * (c * dock.x - s * dock.y)
        oy = dock_mm[1] - 1000.0 * (s * dock.x + c * dock.y)
        return cls(rotation, (ox, oy), 1000.0)

    @classmethod
    def from_vendor(cls, frame: VendorFrame) -> RobotFrame:
        """The frame of a map imported from a Roborock (world = (vendor - origin) * unit)."""
        if frame.vendor != "roborock":
            raise ValueError(
                f"a {frame.vendor!r} map frame is not a Roborock's; use RobotFrame.from_dock "
                "with the dock's pose instead"
            )
        return cls(0.0, tuple(frame.origin), 1.0 / frame.unit)

    @classmethod
    def from_document(cls, doc) -> RobotFrame:
        """For a `MapDocument`: its vendor frame if imported from a Roborock, else its dock."""
        if doc.frame.vendor == "roborock":
            return cls.from_vendor(doc.frame)
        if doc.dock is None:
            raise ValueError(
                "the map was not imported from a Roborock and has no dock: no way to place "
                "the robot's frame; pass RobotFrame.from_dock(dock_pose)"
            )
        return cls.from_dock(doc.dock)

    def to_robot(self, xy) -> np.ndarray:
        """(..., 2) our metres -> robot units (floats)."""
        p = np.asarray(xy, np.float64)
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        x, y = p[..., 0], p[..., 1]
        out = np.stack((c * x - s * y, s * x + c * y), axis=-1) * self.scale
        return out + np.asarray(self.offset)

    def to_world(self, mm) -> np.ndarray:
        """(..., 2) robot units -> our metres."""
        p = (np.asarray(mm, np.float64) - np.asarray(self.offset)) / self.scale
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        x, y = p[..., 0], p[..., 1]
        return np.stack((c * x + s * y, -s * x + c * y), axis=-1)

    def axis_aligned(self, tolerance: float = math.radians(1.0)) -> bool:
        """True when the robot's axes are ours turned by a multiple of 90 degrees."""
        q = self.rotation / (math.pi / 2)
        return abs(q - round(q)) * (math.pi / 2) <= tolerance


@dataclass(frozen=True, slots=True)
class RobotStatus:
    """What `get_status` says, in our units. `error` is readable text; `mode` is "zone",
    "segment" or "" (from in_cleaning)."""

    state: int
    state_name: str
    error_code: int
    error: str
    battery: int  # %
    fan_power: int
    clean_time: float  # s
    clean_area: float  # m2
    mode: str
    map_present: bool

    @property
    def busy(self) -> bool:
        """The firmware is running a job of its own (going somewhere, cleaning, docking)."""
        return self.state in JOB_STATES

    @property
    def ok(self) -> bool:
        return self.error_code == 0 and self.state != 12


def _status_from(data: dict) -> RobotStatus:
    """Our RobotStatus from a get_status dict (unknown or missing fields get neutral values)."""

    def num(key: str, default: float = 0) -> float:
        value = data.get(key, default)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return float(default)
        return value if math.isfinite(value) else float(default)

    state = int(num("state"))
    code = int(num("error_code"))
    mode = {2: "zone", 3: "segment"}.get(int(num("in_cleaning")), "")
    return RobotStatus(
        state=state,
        state_name=STATE_NAMES.get(state, f"state {state}"),
        error_code=code,
        error=error_text(code),
        battery=int(num("battery")),
        fan_power=int(num("fan_power")),
        clean_time=num("clean_time"),
        clean_area=num("clean_area") / 1e6,  # the firmware counts mm2
        mode=mode,
        map_present=bool(num("map_present")),
    )


# ------------------------------------------------------------------------------ python-miio
class _Vacuum(RoborockVacuum):
    """RoborockVacuum whose every `send` goes through MiioRobot's retry layer (same id on every
    resend). The token is kept out of its repr and attributes."""

    def __init__(
        self,
        host: str,
        token: Token,
        *,
        timeout: float,
        model: str,
        call: Callable[[str, object, dict | None], object],
    ) -> None:
        self.timeout = timeout  # Device.__init__ reads it for the socket timeout
        super().__init__(host, token.hex(), model=model)
        self.token = REDACTED
        self._call = call

    def send(self, command, parameters=None, retry_count=None, *, extra_parameters=None):
        return self._call(command, parameters, extra_parameters)

    def send_once(self, command, parameters, extra_parameters):
        """One attempt, python-miio's retries off (they would change the message id)."""
        return super().send(command, parameters, 0, extra_parameters=extra_parameters)

    def __repr__(self) -> str:
        return f"<RoborockVacuum {self.ip} (token {REDACTED})>"


# python-miio's loggers that can carry payloads or log a lost datagram at ERROR
_MIIO_LOGGERS = (
    "miio",
    "miio.miioprotocol",
    "miio.protocol",
    "miio.device",
    "miio.integrations.vacuum.roborock.vacuum",
)
_FILTER = RedactingFilter(demote=("Got error when receiving",))
for _name in _MIIO_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def _rotation_degrees(omega_steps: int) -> int:
    """The whole-degree rotation python-miio turns into omega = omega_steps * 0.1 rad/s."""
    target = round(omega_steps * OMEGA_STEP, 1)
    guess = round(math.degrees(omega_steps * OMEGA_STEP))
    for deg in (guess, guess - 1, guess + 1, guess - 2, guess + 2):
        if abs(deg) <= MAX_ROTATION_DEG and round(math.radians(deg), 1) == target:
            return deg
    raise ValueError(f"no whole-degree rotation gives omega {target} rad/s")


_MAX_OMEGA_STEPS = int(round(math.radians(MAX_ROTATION_DEG), 1) / OMEGA_STEP + 1e-9)  # 31
_DEGREES = {k: _rotation_degrees(k) for k in range(-_MAX_OMEGA_STEPS, _MAX_OMEGA_STEPS + 1)}
MAX_OMEGA = _MAX_OMEGA_STEPS * OMEGA_STEP  # rad/s


def plan_moves(w: float, dt: float, max_piece: float = 1.0, min_ms: int = 10) -> list[tuple]:
    """The remote-control moves that turn w * dt (rad) in dt (s) on python-miio's omega grid.

    Returns (rotation_deg, omega, duration_ms) tuples: each piece of at most `max_piece` s runs
    at the grid omegas just below and above w for durations that sum to the piece and turn
    w * piece; a part shorter than `min_ms` is folded into the other. |w| <= MAX_OMEGA.
    """
    total_ms = int(round(dt * 1000.0))
    piece_ms = max(int(round(max_piece * 1000.0)), min_ms)
    steps = w / OMEGA_STEP
    lo = math.floor(steps + 1e-9)
    frac = steps - lo
    moves: list[tuple] = []
    done = 0
    while done < total_ms:
        ms = min(piece_ms, total_ms - done)
        hi_ms = int(round(ms * frac))
        if lo + 1 > _MAX_OMEGA_STEPS:
            hi_ms = 0
        lo_ms = ms - hi_ms
        if hi_ms < min_ms:
            lo_ms, hi_ms = ms, 0
        elif lo_ms < min_ms:
            lo_ms, hi_ms = 0, ms
        for k, part in ((lo, lo_ms), (lo + 1, hi_ms)):
            if part > 0:
                moves.append((_DEGREES[k], round(k * OMEGA_STEP, 1), part))
        done += ms
    return moves


# ---------------------------------------------------------------------------------- sensors
def _tcp_address(url: str, what: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise SensorError(f"{what} {url!r}: expected tcp://HOST:PORT")
    return parts.hostname, port


class _SensorLink:
    """Reads the lidar byte stream and the telemetry line stream on one background thread."""

    MAX_LINE = 1 << 16
    MAX_SCANS = 3000  # kept until scans() drains them (10 min at 5 Hz), like SimulatedRobot

    def __init__(
        self, lidar_url: str | None, telemetry_url: str | None, connect_timeout: float
    ) -> None:
        self.lidar_url = lidar_url
        self.telemetry_url = telemetry_url
        self._cond = threading.Condition()
        self._sel = selectors.DefaultSelector()
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self.error: str | None = None
        self.hello: dict | None = None
        self.odom: dict | None = None
        self.lines = 0
        self.bad_lines = 0
        self.lost_turns = 0
        self._done: dict[int, dict] = {}
        self._stamps: deque[dict] = deque()
        self._turns: deque[Scan | None] = deque()
        self._ready: deque[Scan] = deque(maxlen=self.MAX_SCANS)
        self._decoder = LdsDecoder("neato") if lidar_url else None
        self._tail = b""
        self._partial = b""
        try:
            # lidar first: the fake starts each client's stream at the next whole turn, and the
            # telemetry hello, waited for below, comes after the lidar client is registered
            if lidar_url:
                self._open(lidar_url, "lidar", connect_timeout)
            if telemetry_url:
                self._open(telemetry_url, "telemetry", connect_timeout)
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, name="miio-sensors", daemon=True)
        self._thread.start()
        if telemetry_url and not self.wait(lambda: self.hello is not None, connect_timeout):
            self.close()
            raise SensorError(
                f"telemetry {telemetry_url}: connected, but no hello line within "
                f"{connect_timeout:.1f} s: {self.error or 'the stream is silent'}"
            )

    def _open(self, url: str, kind: str, timeout: float) -> None:
        host, port = _tcp_address(url, kind)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise SensorError(
                f"{kind} stream {url}: cannot connect: {exc.strerror or exc}"
            ) from None
        sock.setblocking(False)
        self._socks.append(sock)
        self._sel.register(sock, selectors.EVENT_READ, kind)

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        for sock in self._socks:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._socks.clear()
        self._sel.close()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until predicate() holds (checked under the lock), at most `timeout` s."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate() or self.error is not None, timeout) and (
                predicate()
            )

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                events = self._sel.select(timeout=0.1)
            except (OSError, ValueError):
                break
            for key, _ in events:
                kind = key.data
                try:
                    data = key.fileobj.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._fail(f"{kind} stream: {exc.strerror or exc}")
                    return
                if not data:
                    self._fail(f"{kind} stream closed by the robot")
                    return
                if kind == "lidar":
                    self._on_lidar(data)
                else:
                    self._on_telemetry(data)

    def _fail(self, message: str) -> None:
        with self._cond:
            self.error = message
            self._cond.notify_all()
        log.warning("sensor link: %s", message)

    def _on_lidar(self, data: bytes) -> None:
        decoder = self._decoder
        assert decoder is not None
        items: list[Scan | None] = []
        # Fed turn by turn (split before each 0xFA 0xA0, the first packet of a turn), each
        # feed ends at most one turn, so a turn the decoder drops (corrupt, too few packets)
        # keeps its place: it still had its scan line, and later turns must meet their own.
        cuts = [k for k in _find_all(data, TURN_START) if k > 0]
        for lo, hi in zip([0, *cuts], [*cuts, len(data)], strict=True):
            dropped = decoder.turns_dropped
            scans = decoder.feed(data[lo:hi])
            items += [None] * (decoder.turns_dropped - dropped) + scans
        self._tail = (self._tail + data)[-NEATO_PACKET_BYTES:]
        # A turn is complete only when the next one starts; a stream that pauses after the
        # last packet of a turn (the fake: nothing moves between commands) is flushed here.
        if (
            decoder.bytes_buffered == 0
            and len(self._tail) == NEATO_PACKET_BYTES
            and self._tail[0] == 0xFA
            and self._tail[1] == 0xF9
        ):
            dropped = decoder.turns_dropped
            scans = decoder.flush()
            items += [None] * (decoder.turns_dropped - dropped) + scans
        if items:
            with self._cond:
                self._turns.extend(items)
                self._pair()
                self._cond.notify_all()

    def _on_telemetry(self, data: bytes) -> None:
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        if len(self._partial) > self.MAX_LINE:
            self._partial = b""
            self.bad_lines += 1
        with self._cond:
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    self.bad_lines += 1
                    continue
                if not isinstance(line, dict):
                    self.bad_lines += 1
                    continue
                self.lines += 1
                kind = line.get("type")
                if kind == "odom" and _finite_fields(line, "t", "x", "y", "theta"):
                    self.odom = line
                    cmd = line.get("cmd")
                    if line.get("done") and isinstance(cmd, int) and cmd > 0:
                        self._done[cmd] = line
                        if len(self._done) > 256:
                            self._done.pop(next(iter(self._done)))
                elif kind == "scan" and _finite_fields(line, "t"):
                    self._stamps.append(line)
                    self._pair()
                elif kind == "hello" and _finite_fields(line, "t"):
                    self.hello = line
                else:
                    self.bad_lines += 1
            self._cond.notify_all()

    def _pair(self) -> None:
        """Turns decoded from the lidar, matched in order with the scan lines (robot clock)."""
        hello = self.hello or {}
        while self._turns and (self._stamps or not self.telemetry_url):
            turn = self._turns.popleft()
            stamp = self._stamps.popleft() if self._stamps else None
            if turn is None:
                self.lost_turns += 1
                continue
            if stamp is None:
                self._ready.append(turn)
                continue
            duration = stamp.get("duration", turn.duration)
            rmin = hello.get("range_min", turn.range_min)
            rmax = hello.get("range_max", turn.range_max)
            offset = hello.get("lidar_offset", 0.0)
            try:
                scan = Scan(
                    turn.ranges,
                    turn.angles,
                    float(stamp["t"]),
                    float(rmin),
                    float(rmax),
                    Pose(float(offset), 0.0, 0.0),
                    float(duration),
                )
            except (TypeError, ValueError):
                self.bad_lines += 1
                continue
            self._ready.append(scan)

    # ------------------------------------------------------------------ consumers
    @property
    def tagged(self) -> bool:
        """The telemetry tags odometry lines with the command they report (see TELEMETRY)."""
        return bool((self.hello or {}).get("cmd_tags"))

    def done_line(self, cmd: int) -> dict | None:
        return self._done.get(cmd)

    def take_scans(self, settle: float = 0.2) -> list[Scan]:
        """The paired scans so far; waits up to `settle` s for turns the telemetry announced
        but whose bytes are still on their way."""
        if self.lidar_url and self.telemetry_url:
            self.wait(lambda: not self._stamps, settle)
        with self._cond:
            out = list(self._ready)
            self._ready.clear()
        return out


def _find_all(data: bytes, needle: bytes) -> list[int]:
    out, k = [], data.find(needle)
    while k >= 0:
        out.append(k)
        k = data.find(needle, k + 1)
    return out


def _finite_fields(line: dict, *keys: str) -> bool:
    for key in keys:
        value = line.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value):
            return False
    return True


# --------------------------------------------------------------------------------- the robot
class MiioRobot:
    """A Roborock over miIO (python-miio), implementing the Robot protocol (module docstring).

    Parameters
    ----------
    host : the robot's address; token : 32 hex characters, 16 bytes or a `secrets.Token`.
    lidar_url, telemetry_url : ``tcp://HOST:PORT`` sensor streams of a rooted robot (optional).
    frame : our frame -> the robot's map frame (default `RobotFrame.from_dock()`).
    timeout : s to wait for each answer; retries : resends of an unanswered request (same id);
    backoff : s before the first resend, doubling each time up to `max_backoff`.
    connect_timeout : s for `connect()` to decide unreachable / wrong token.
    move_margin : s beyond a move's duration to wait for the telemetry to report its end.
    poll_interval : s between status polls while the firmware runs a job.
    model : passed to python-miio (no miIO.info round trip, which some firmware answers with
        the token in it).
    """

    def __init__(
        self,
        host: str,
        token: Token | str | bytes,
        *,
        lidar_url: str | None = None,
        telemetry_url: str | None = None,
        frame: RobotFrame | None = None,
        timeout: float = 1.0,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 1.0,
        connect_timeout: float = 4.0,
        move_margin: float = 2.0,
        poll_interval: float = 0.5,
        max_piece: float = 1.0,
        model: str = "roborock.vacuum.s5",
        connect: bool = True,
    ) -> None:
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("poll_interval", poll_interval),
            ("max_piece", max_piece),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0 s (or m), got {value}")
        if not all(math.isfinite(x) and x >= 0 for x in (backoff, max_backoff, move_margin)):
            raise ValueError("backoff, max_backoff and move_margin must be finite and >= 0")
        if int(retries) < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if not isinstance(host, str) or not host.strip():
            raise ValueError("host must be the robot's address (a non-empty string)")
        self.host = host.strip()
        self._token = Token.coerce(token, "the token passed to MiioRobot")
        _FILTER.add(self._token)
        self.lidar_url = lidar_url
        self.telemetry_url = telemetry_url
        self.frame = frame or RobotFrame.from_dock()
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.connect_timeout = float(connect_timeout)
        self.move_margin = float(move_margin)
        self.poll_interval = float(poll_interval)
        self.max_piece = float(max_piece)
        self.model = model
        self._lock = threading.RLock()
        self._rng = random.Random()
        # ids: a random start, as devices remember recent ids across sessions (python-miio#813)
        self._next = self._rng.randrange(1000, 9000)
        self.last_id = 0
        self._vac = _Vacuum(
            self.host, self._token, timeout=self.timeout, model=model, call=self._call
        )
        self._manual = False
        self._link: _SensorLink | None = None
        self._warned: set[str] = set()
        self._t0 = time.monotonic()
        self._dr = np.zeros(3)  # dead reckoning of commanded moves (no telemetry)
        self._dr_vw = (0.0, 0.0)
        self.attempts = 0  # requests sent, resends included
        self.resends = 0
        self._closed = False
        if connect:
            self.connect()

    def __repr__(self) -> str:
        return (
            f"MiioRobot(host={self.host!r}, token={REDACTED}, lidar={self.lidar_url!r}, "
            f"telemetry={self.telemetry_url!r})"
        )

    def __enter__(self) -> MiioRobot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Check the robot answers (hello) and accepts the token (get_status), then open the
        sensor streams. Raises RobotUnreachable, TokenRejected or SensorError within about
        `connect_timeout` s (plus the sensor connect)."""
        start = time.monotonic()
        hello_time = min(self.timeout, 0.5, self.connect_timeout / 4)
        if not self._probe(tries=3, each=hello_time):
            raise RobotUnreachable(
                f"no miIO device answers at {self.host}:{MIIO_PORT} "
                f"({time.monotonic() - start:.1f} s): is the robot on, and the address right?"
            )
        left = self.connect_timeout - (time.monotonic() - start)
        try:
            self._call("get_status", None, None, budget=max(left, self.timeout))
        except RobotTimeout as exc:
            raise TokenRejected(
                f"the robot at {self.host} answers the miIO handshake but ignored every "
                f"encrypted request for {time.monotonic() - start:.1f} s: the token is most "
                "likely wrong (a robot drops what it cannot decrypt)"
            ) from exc.__cause__
        log.info("miIO robot at %s answers (%.2f s)", self.host, time.monotonic() - start)
        if self.lidar_url or self.telemetry_url:
            self._link = _SensorLink(
                self.lidar_url, self.telemetry_url, max(self.connect_timeout, 1.0)
            )

    def close(self) -> None:
        """Leave remote control if we entered it, and close the sensor streams."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._manual:
                self._manual = False
                self._vac.manual_stop()
        except BridgeError as exc:
            log.info("leaving remote control at close: %s", exc)
        finally:
            if self._link is not None:
                self._link.close()
                self._link = None
            _FILTER.remove(self._token)

    def _probe(self, tries: int, each: float) -> bool:
        """True if something answers the miIO hello (32-byte 0x2131 packet) within tries*each s."""
        try:
            infos = socket.getaddrinfo(self.host, MIIO_PORT, socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            raise RobotUnreachable(f"cannot resolve {self.host!r}: {exc.strerror or exc}") from None
        address = infos[0][4]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(tries):
                try:
                    sock.sendto(HELLO, address)
                except OSError as exc:
                    raise RobotUnreachable(
                        f"cannot send to {self.host}:{MIIO_PORT}: {exc.strerror or exc}"
                    ) from None
                end = time.monotonic() + each
                while (left := end - time.monotonic()) > 0:
                    sock.settimeout(left)
                    try:
                        data, _ = sock.recvfrom(1024)
                    except TimeoutError:
                        break
                    except OSError:  # e.g. ICMP port unreachable on loopback
                        break
                    if len(data) >= 32 and data[:2] == b"\x21\x31":
                        return True
        return False

    def _call(
        self,
        command: str,
        parameters: object,
        extra_parameters: dict | None,
        *,
        budget: float | None = None,
    ) -> object:
        """Send one request with a fixed message id; resend it on silence (backoff). `budget`
        bounds the whole exchange in s (connect), else `retries` bounds the resends."""
        with self._lock:
            if self._closed:
                raise BridgeError(f"{self!r} is closed")
            msg_id = self._next
            self._next = self._next + 1 if self._next < 9998 else 1
            self.last_id = msg_id
            extra = dict(extra_parameters or {})
            extra["id"] = msg_id
            start = time.monotonic()
            attempt = 0
            cause: Exception | None = None
            while True:
                attempt += 1
                self.attempts += 1
                try:
                    result = self._vac.send_once(command, parameters, extra)
                except DeviceError as exc:
                    raise _firmware_error(command, exc) from None
                except DeviceException as exc:
                    text = str(exc)
                    if "checksum" in text.lower():
                        raise TokenRejected(
                            f"the answer from {self.host} to {command} fails the checksum: "
                            "the token is wrong, or another device has that address"
                        ) from None
                    if "recover" in text.lower():  # -30001/-9999: busy, try a new id
                        msg_id = self._next
                        self._next = self._next + 1 if self._next < 9998 else 1
                        self.last_id = msg_id
                        extra["id"] = msg_id
                    cause = exc
                else:
                    return result
                elapsed = time.monotonic() - start
                pause = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                pause *= 0.75 + 0.5 * self._rng.random()
                if budget is not None:
                    if elapsed + pause + self.timeout > budget:
                        break
                elif attempt > self.retries:
                    break
                self.resends += 1
                log.debug("%s id %d: no answer (attempt %d), resending", command, msg_id, attempt)
                time.sleep(pause)
            raise RobotTimeout(
                f"{command} got no answer from {self.host} after {attempt} attempts over "
                f"{time.monotonic() - start:.1f} s (message id {msg_id}); it may or may not "
                "have run"
            ) from cause

    # ------------------------------------------------------------------ Robot protocol
    @property
    def time(self) -> float:
        """Robot clock (s): the telemetry's, else seconds since this object was made."""
        odom = self._link.odom if self._link is not None else None
        if odom is not None:
            return float(odom["t"])
        if self._link is not None and self._link.hello is not None:
            return float(self._link.hello["t"])
        return time.monotonic() - self._t0

    @property
    def bumper_pressed(self) -> bool:
        odom = self._link.odom if self._link is not None else None
        return bool(odom.get("bumper", False)) if odom is not None else False

    def odometry(self) -> Odometry:
        """The dead-reckoned pose: the telemetry's, else the commanded moves integrated."""
        odom = self._link.odom if self._link is not None else None
        if odom is not None:
            pose = Pose(float(odom["x"]), float(odom["y"]), float(odom["theta"]))
            v = odom.get("v", 0.0)
            w = odom.get("w", 0.0)
            return Odometry(pose, float(odom["t"]), float(v), float(w))
        x, y, th = self._dr
        return Odometry(Pose(float(x), float(y), float(th)), self.time, *self._dr_vw)

    def scans(self) -> list[Scan]:
        """The lidar turns decoded since the last call, oldest first ([] without a lidar)."""
        if self._link is None or not self._link.lidar_url:
            return []
        self._check_link()
        return self._link.take_scans()

    def drive(self, v: float, w: float, dt: float) -> bool:
        """Drive at v m/s and w rad/s for dt s by remote control; True if the bumper fired.

        Clamped to python-miio's limits (+-0.3 m/s, +-3.1 rad/s; logged once), split into
        moves of at most `max_piece` s on the 0.1 rad/s omega grid (module docstring)."""
        v, w, dt = float(v), float(w), float(dt)
        if not (math.isfinite(v) and math.isfinite(w) and math.isfinite(dt)):
            raise ValueError(f"v, w, dt must be finite, got {v}, {w}, {dt}")
        if dt < 0:
            raise ValueError(f"dt must be >= 0 s, got {dt}")
        v = self._clamp("velocity", v, MAX_VELOCITY, "m/s")
        w = self._clamp("turn rate", w, MAX_OMEGA, "rad/s")
        moves = plan_moves(w, dt, self.max_piece)
        if not moves:
            return False
        self._enter_manual()
        bumped = False
        for degrees, omega, ms in moves:
            try:
                self._vac.manual_control(degrees, v, ms)
            except FirmwareError:
                # the firmware may leave remote control by itself (a button, a timeout):
                # enter it again once, then let the error through
                status = self.status()
                if not status.ok or status.state in MANUAL_STATES:
                    raise
                log.info(
                    "robot at %s left remote control (%s); entering it again",
                    self.host,
                    status.state_name,
                )
                self._manual = False
                self._enter_manual()
                self._vac.manual_control(degrees, v, ms)
            bumped = self._wait_move(self.last_id, v, omega, ms / 1000.0)
            if bumped:
                break
        return bumped

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        """Go to (x, y) (our frame, m: the odometry frame for a robot that started on its dock)
        with the firmware's own planner (app_goto_target); stops the robot after `timeout` robot
        seconds. True if the firmware reports the go-to done.

        The firmware steers by its own localization, not by our odometry: where the odometry
        has drifted, it ends off the target by that drift (the Robot protocol's "reached" is
        then the firmware's word)."""
        x, y, timeout = float(x), float(y), float(timeout)
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(timeout)):
            raise ValueError(f"x, y, timeout must be finite, got {x}, {y}, {timeout}")
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 s, got {timeout}")
        mx, my = (int(round(c)) for c in self.frame.to_robot((x, y)))
        self._leave_manual()
        self._vac.goto(mx, my)
        if self._wait_job(self.last_id, timeout):
            return True
        if self.status().busy:
            self.stop()
        return False

    # ------------------------------------------------------------------ firmware jobs
    def status(self) -> RobotStatus:
        """The robot's status (get_status) in our units."""
        with self._lock:
            self._check_closed()
            raw = self._vac.send("get_status")
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            return _status_from(raw[0])
        if isinstance(raw, dict):
            return _status_from(raw)
        raise FirmwareError(
            f"get_status from {self.host}: unexpected answer shape {type(raw).__name__}",
            method="get_status",
        )

    def stop(self) -> None:
        """Stop whatever the robot does (app_stop); leaves remote control first."""
        self._leave_manual()
        self._vac.stop()

    def home(self, *, wait: bool = False, timeout: float = 600.0) -> bool:
        """Send the robot to its dock (app_charge); with `wait`, until it docks (True) or the
        timeout (robot seconds) passes (False, the robot is stopped)."""
        self._leave_manual()
        self._vac.home()
        return self._wait_job(self.last_id, timeout) if wait else True

    def zone_clean(
        self,
        zones: Iterable[Sequence[float]],
        *,
        repeats: int = 1,
        wait: bool = False,
        timeout: float = 3600.0,
    ) -> bool:
        """Clean rectangles (x0, y0, x1, y1), our frame, m, `repeats` times (1-3, as the app
        allows) with the firmware's zoned cleaning. A frame turned by other than a multiple of
        90 deg sends each zone's bounding box in the robot's frame (logged)."""
        if not 1 <= int(repeats) <= 3:
            raise ValueError(f"repeats must be 1, 2 or 3, got {repeats}")
        payload = []
        for zone in zones:
            x0, y0, x1, y1 = (float(c) for c in zone)
            if not all(math.isfinite(c) for c in (x0, y0, x1, y1)):
                raise ValueError(f"zone {zone} must be finite metres")
            if x0 == x1 or y0 == y1:
                raise ValueError(f"zone {zone} has no area")
            corners = self.frame.to_robot([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            payload.append([*map(int, np.round(lo)), *map(int, np.round(hi)), int(repeats)])
        if not payload:
            raise ValueError("zone_clean needs at least one zone")
        if not self.frame.axis_aligned():
            self._warn_once(
                "zone-rotated",
                "the robot's frame is turned %.1f deg from ours: zones are sent as their "
                "bounding boxes in the robot's frame",
                math.degrees(self.frame.rotation),
            )
        self._leave_manual()
        self._vac.zoned_clean(payload)
        return self._wait_job(self.last_id, timeout) if wait else True

    def segment_clean(
        self, segments: Iterable[int], *, wait: bool = False, timeout: float = 3600.0
    ) -> bool:
        """Clean the firmware's rooms (segment ids, get_room_mapping) with app_segment_clean."""
        ids = [int(s) for s in segments]
        if not ids or any(s < 1 for s in ids):
            raise ValueError(f"segment ids must be positive integers, got {ids}")
        self._leave_manual()
        self._vac.segment_clean(ids)
        return self._wait_job(self.last_id, timeout) if wait else True

    def room_mapping(self) -> list[tuple[int, str]]:
        """The firmware's (segment id, room id) pairs (get_room_mapping)."""
        raw = self._vac.get_room_mapping()
        out = []
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, list | tuple) and len(item) >= 2:
                out.append((int(item[0]), str(item[1])))
        return out

    def set_restrictions(
        self,
        restrictions: Restrictions | None = None,
        *,
        no_go: Iterable = (),
        virtual_walls: Iterable = (),
        no_mop: Iterable = (),
    ) -> None:
        """Replace every no-go zone, no-mop zone and virtual wall on the robot (save_map; each
        save replaces all, python-miio#480). Zones are polygons (K, 2), walls segments (2, 2),
        our frame, metres; a zone without exactly 4 corners is sent as its smallest enclosing
        rectangle. At most 68 coordinates in all (Valetudo's limit for Roborock)."""
        no_go, walls, no_mop = list(no_go), list(virtual_walls), list(no_mop)
        if restrictions is not None:
            no_go += list(restrictions.no_go)
            walls += list(restrictions.virtual_walls)
            no_mop += list(restrictions.no_mop)
        payload: list[list[int]] = []
        for kind, shapes in ((1, walls), (0, no_go), (2, no_mop)):
            for shape in shapes:
                pts = np.asarray(shape, np.float64)
                if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
                    raise ValueError(f"restriction {shape!r}: expected finite (K, 2) metres")
                if kind == 1:
                    if pts.shape[0] != 2:
                        raise ValueError(f"a virtual wall has 2 end points, got {pts.shape[0]}")
                elif pts.shape[0] != 4:
                    pts = _enclosing_rectangle(pts)
                mm = np.round(self.frame.to_robot(pts)).astype(np.int64)
                payload.append([kind, *mm.ravel().tolist()])
        coords = sum(len(item) - 1 for item in payload)
        if coords > MAX_RESTRICTION_COORDS:
            raise ValueError(
                f"{len(payload)} restrictions need {coords} coordinates; a Roborock takes at "
                f"most {MAX_RESTRICTION_COORDS} (drop or merge some)"
            )
        self._leave_manual()
        answer = self._vac.send("save_map", payload)
        if not (isinstance(answer, list) and answer and answer[0] == "ok"):
            raise FirmwareError(
                f"save_map on {self.host} answered {answer!r}, not ['ok']", method="save_map"
            )

    def command(self, method: str, params: object = None) -> object:
        """Any miIO method through the retry layer (same id on every resend); the raw answer."""
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a non-empty miIO method name")
        return self._vac.send(method, params)

    def fetch_map(self) -> object:
        """What get_map_v1 answers: a cloud object name, or ["retry"] without the cloud."""
        return self._vac.map()

    def wait_until_idle(self, timeout: float = 600.0) -> RobotStatus:
        """Poll the status until the firmware runs no job (or raise RobotTimeout after
        `timeout` wall seconds); raises FirmwareError if the robot reports an error."""
        end = time.monotonic() + timeout
        while True:
            status = self.status()
            if not status.ok:
                raise _robot_error(self.host, status)
            if not status.busy:
                return status
            if time.monotonic() > end:
                raise RobotTimeout(
                    f"robot at {self.host} still {status.state_name} after {timeout} s"
                )
            time.sleep(self.poll_interval)

    # ------------------------------------------------------------------ internals
    def _check_closed(self) -> None:
        if self._closed:
            raise BridgeError(f"{self!r} is closed")

    def _check_link(self) -> None:
        if self._link is not None and self._link.error is not None:
            raise SensorError(f"robot at {self.host}: {self._link.error}")

    def _clamp(self, what: str, value: float, limit: float, unit: str) -> float:
        if abs(value) <= limit:
            return value
        self._warn_once(
            what,
            "%s %.3f %s is beyond python-miio's limit: clamped to %.2f %s",
            what,
            value,
            unit,
            math.copysign(limit, value),
            unit,
        )
        return math.copysign(limit, value)

    def _warn_once(self, key: str, message: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _enter_manual(self) -> None:
        if self._manual:
            return
        try:
            self._vac.manual_start()
        except FirmwareError as exc:
            status = self.status()
            if not status.ok:
                raise _robot_error(self.host, status, "cannot enter remote control") from exc
            raise
        self._manual = True
        # the firmware takes a moment to switch (python-miio's manual_control_once polls too)
        end = time.monotonic() + 5.0
        while True:
            status = self.status()
            if status.state in MANUAL_STATES:
                return
            if not status.ok:
                self._manual = False
                raise _robot_error(self.host, status, "cannot enter remote control")
            if time.monotonic() > end:
                self._manual = False
                raise FirmwareError(
                    f"robot at {self.host} did not enter remote control within 5 s "
                    f"(still {status.state_name})",
                    method="app_rc_start",
                )
            time.sleep(min(self.poll_interval, 0.2))

    def _leave_manual(self) -> None:
        if self._manual:
            self._manual = False
            self._vac.manual_stop()

    def _wait_move(self, cmd: int, v: float, omega: float, duration: float) -> bool:
        """Wait for the end of a remote-control move; True if it ended on the bumper."""
        link = self._link
        if link is None or link.telemetry_url is None:
            time.sleep(duration)  # the robot moves in real time; nothing tells us more
            self._dead_reckon(v, omega, duration)
            return False
        self._check_link()
        t0 = self.time

        def over() -> bool:
            if link.tagged:
                return link.done_line(cmd) is not None
            odom = link.odom
            if odom is None:
                return False
            t = float(odom["t"])
            return t >= t0 + duration - 1e-3 or (bool(odom.get("bumper")) and t > t0)

        if not link.wait(over, duration + self.move_margin):
            self._check_link()
            status = self.status()
            if not status.ok:
                raise _robot_error(self.host, status, "did not move")
            raise SensorError(
                f"telemetry {link.telemetry_url} did not report the end of a {duration:.3f} s "
                f"move within {duration + self.move_margin:.1f} s (robot {status.state_name})"
            )
        line = link.done_line(cmd) or link.odom or {}
        return bool(line.get("bumper", False))

    def _dead_reckon(self, v: float, w: float, dt: float) -> None:
        x, y, th = self._dr
        if abs(w) < 1e-9:
            x += v * dt * math.cos(th)
            y += v * dt * math.sin(th)
        else:
            x += v / w * (math.sin(th + w * dt) - math.sin(th))
            y -= v / w * (math.cos(th + w * dt) - math.cos(th))
        self._dr[:] = (x, y, th + w * dt)
        self._dr_vw = (v, w)

    def _wait_job(self, cmd: int, timeout: float) -> bool:
        """Wait for a firmware job (go-to, zone, segment, dock) to end. True if it finished
        within `timeout` robot seconds; FirmwareError if the robot reports an error.

        With tagged telemetry the job's "done" line ends the wait (its "outcome" must be
        "finished"); otherwise the first status poll that shows no job does."""
        link = self._link
        tagged = link is not None and link.tagged
        t0 = self.time
        wall_end = time.monotonic() + timeout + 30.0  # a guard if the robot clock stalls
        while True:
            if tagged:
                self._check_link()
                if link.wait(lambda: link.done_line(cmd) is not None, self.poll_interval):
                    status = self.status()
                    if not status.ok:
                        raise _robot_error(self.host, status)
                    return link.done_line(cmd).get("outcome", "finished") == "finished"
            else:
                time.sleep(self.poll_interval)
            status = self.status()
            if not status.ok:
                raise _robot_error(self.host, status)
            if not tagged and not status.busy:
                return True
            if self.time - t0 > timeout or time.monotonic() > wall_end:
                return False


def _robot_error(host: str, status: RobotStatus, doing: str = "") -> FirmwareError:
    what = f"robot at {host}{' ' + doing if doing else ''}"
    return FirmwareError(
        f"{what}: {status.error} (error {status.error_code}, {status.state_name})",
        code=status.error_code,
    )


def _firmware_error(command: str, exc: DeviceError) -> FirmwareError:
    """Our error for a JSON-RPC error answer."""
    info = exc.args[0] if exc.args else {}
    code = info.get("code") if isinstance(info, dict) else None
    message = info.get("message", "") if isinstance(info, dict) else str(info)
    if code == -32601:
        return UnsupportedCommand(
            f"the firmware does not know {command} ({message or 'method not found'})",
            code=code,
            method=command,
        )
    return FirmwareError(
        f"the firmware refused {command}: {message or 'no message'} (code {code})",
        code=code if isinstance(code, int) else None,
        method=command,
    )


def _enclosing_rectangle(pts: np.ndarray) -> np.ndarray:
    """The 4 corners of the smallest rectangle around a polygon (rotating calipers, cv2)."""
    import cv2

    if pts.shape[0] < 3:
        raise ValueError(f"a zone needs at least 3 corners, got {pts.shape[0]}")
    rect = cv2.minAreaRect(pts.astype(np.float32))
    return cv2.boxPoints(rect).astype(np.float64)
