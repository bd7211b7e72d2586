"""FakeFirmware: a Roborock on loopback that speaks the real miIO protocol, backed by
SimulatedRobot, with the sensor streams a rooted robot would serve.

miIO (vacuum_ecosystem.md 3.8, verified against python-miio 0.5.12): UDP port 54321 on a
127.x.x.x address only. A 32-byte hello gets the 32-byte answer with the device id and time; any
other datagram is parsed with python-miio's own codec (`miio.protocol.Message`, AES-128-CBC
keyed by the token, MD5 checksum) and answered the same way. A datagram that fails the checksum
(a wrong token) or does not parse gets no answer, as a real robot gives none.

Faults (seeded): each datagram in and each answer out is dropped with probability `drop`; an
answer is held back `delay_time` s with probability `delay`. A request whose id (with the same
method and parameters) is among the last 512 answered within a minute is answered again from
the reply cache and not run again; `executions` counts how often each request (id, method,
parameters) ran, so tests can prove nothing ran twice. (Real Roborock firmware ignores a
repeated id instead: "look like a repeated msg" in its log, python-miio#211.)

What it does, in the firmware's own frame (mm, y up; the dock at `dock_mm` facing
`dock_heading`, so our world maps to it through `RobotFrame.from_dock(world.start, ...)`):
- get_status: Roborock's field names; state 8 on the dock, 7 in remote control, 16 going to a
  target, 17 zoned, 18 segment cleaning, 6 returning, 3 idle, 12 error (with error_code).
- app_rc_start / app_rc_move / app_rc_end: remote control. A move runs the simulation for its
  duration at once (the simulation advances only by what is commanded): velocity and omega
  (rad/s, positive = left; see miio_robot's module docstring for the sources) are clamped to the
  SimConfig limits, as the drive train would; a seqnum not above the last one in the session is
  ignored. A move outside remote control is refused (error -3, as python-miio's own simulator
  signals a failed execution); a robot in error ignores moves.
- app_goto_target, app_zoned_clean, app_segment_clean, app_charge: jobs that run on a thread at
  `speed` simulated seconds per wall second. The firmware knows the floor plan's walls (not the
  obstacles below the lidar, which it bumps into) and the no-go zones and virtual walls from
  save_map; it plans with a breadth-first search over the cells the body fits in and steers by
  its own dead reckoning. Zones and segments are swept in lanes 0.25 m apart (the body is 0.34
  m), then the robot returns to the dock; a dock it cannot reach is error 23.
- app_stop; save_map (replaces all restrictions: [type, coords...] or a list of them, type 0
  no-go, 1 virtual wall, 2 no-mop); get_room_mapping; miIO.info; get_map_v1 -> ["retry"] (no
  cloud); anything else -> error -32601.

Sensors, on loopback TCP (ports chosen by the system unless given): `lidar_url` streams each
simulated turn as 90 Neato packets (`lds.encode_neato`, rpm = 60 * lds_rate); `telemetry_url`
streams JSON lines (miio_robot.TELEMETRY): a hello, an odom line after every step, tagged with
the miIO id of the command it reports, and a scan line (robot-clock stamp) per turn. Turns made
while nobody listens are dropped, as an unread UART drops them.

The server stops by itself after `idle_timeout` s without a datagram or a sensor client, and at
close() / the end of a `with` block.
"""

from __future__ import annotations

import datetime as dt
import heapq
import ipaddress
import json
import logging
import math
import random
import selectors
import socket
import struct
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass

import cv2
import numpy as np
from miio.protocol import Message

from firmware_bridge import worlds
from firmware_bridge.errors import BridgeError
from firmware_bridge.lds import encode_neato
from firmware_bridge.miio_robot import DOCK_MM, MIIO_PORT, MiioRobot, RobotFrame
from firmware_bridge.secrets import Token
from firmware_bridge.simulated import SimConfig, SimulatedRobot
from firmware_bridge.world import World
from maps.geometry import Pose, wrap_angle

log = logging.getLogger(__name__)

LANE_SPACING = 0.25  # m between cleaning lanes
JOB_STEP = 0.5  # simulated s per job step
TRAVEL_TRIES = 8  # plans per trip (each bump adds the obstacle to the map and replans)
REPLY_TTL = 60.0  # s a reply stays in the cache
REPLY_CACHE = 512
MAX_CLIENT_BUFFER = 32 << 20  # bytes queued for a sensor client before it is dropped
ERR_PARAMS = -10005  # "parameter error" (marcelrv/XiaomiRobotVacuumProtocol errors table)
ERR_EXEC = -3  # python-miio's simulator: execution failed

_Step = Generator[None, None, object]


@dataclass
class FakeStats:
    """What the server saw: datagrams in, answers out, faults injected."""

    received: int = 0
    hellos: int = 0
    undecodable: int = 0  # wrong token or garbage: not answered
    dropped_in: int = 0
    dropped_out: int = 0
    delayed: int = 0
    cache_hits: int = 0
    answered: int = 0
    stale_moves: int = 0  # app_rc_move with an old seqnum


class _Job:
    def __init__(self, kind: str, cmd: int, steps: _Step) -> None:
        self.kind = kind
        self.cmd = cmd
        self.steps = steps
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None


def _loopback(host: str) -> str:
    if host == "localhost":
        host = "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"FakeFirmware binds to a loopback IPv4 address (127.x.x.x) only; got {host!r}"
        ) from None
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(
            f"FakeFirmware binds to loopback only (127.x.x.x): {host} would expose a robot "
            "anyone on the network could drive"
        )
    return str(addr)


def free_loopback_host(first: int = 2, last: int = 254) -> str:
    """A 127.0.0.N whose UDP port 54321 is free now (for one more fake)."""
    for n in range(first, last + 1):
        host = f"127.0.0.{n}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, MIIO_PORT))
            except OSError:
                continue
            return host
    raise BridgeError(f"no free UDP port {MIIO_PORT} on 127.0.0.{first}..{last}")


class _SensorServer:
    """The lidar and telemetry TCP streams: accepts clients, queues bytes, writes them out."""

    def __init__(
        self,
        host: str,
        lidar_port: int,
        telemetry_port: int,
        lock: threading.RLock,
        greet: Callable[[], list[bytes]],
    ) -> None:
        self._lock = lock
        self._greet = greet
        self._sel = selectors.DefaultSelector()
        self._listeners = []
        self.lidar: dict[socket.socket, bytearray] = {}
        self.telemetry: dict[socket.socket, bytearray] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.ports = []
        for kind, port in (("lidar", lidar_port), ("telemetry", telemetry_port)):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                srv.bind((host, port))
            except OSError as exc:
                srv.close()
                self.close()
                raise BridgeError(
                    f"cannot serve the {kind} stream on {host}:{port}: {exc.strerror or exc}"
                ) from None
            srv.listen(4)
            srv.setblocking(False)
            self._listeners.append(srv)
            self._sel.register(srv, selectors.EVENT_READ, kind)
            self.ports.append(srv.getsockname()[1])
        self.last_client = time.monotonic()

    @property
    def clients(self) -> int:
        return len(self.lidar) + len(self.telemetry)

    def send_lidar(self, data: bytes) -> None:
        for buf in self.lidar.values():
            buf += data
        self._wake()

    def send_line(self, line: dict) -> None:
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        for buf in self.telemetry.values():
            buf += data
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def run_once(self, timeout: float) -> None:
        for key, _ in self._sel.select(timeout):
            kind = key.data
            if kind == "wake":
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            elif key.fileobj in self._listeners:
                self._accept(key.fileobj, kind)
            else:  # a client sent something or hung up
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._drop(sock, "closed")
        self._flush()

    def _accept(self, srv: socket.socket, kind: str) -> None:
        try:
            conn, _ = srv.accept()
        except (BlockingIOError, OSError):
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:  # registered between two simulation steps: streams start aligned
            if kind == "lidar":
                self.lidar[conn] = bytearray()
            else:
                self.telemetry[conn] = bytearray(b"".join(self._greet()))
        self._sel.register(conn, selectors.EVENT_READ, kind)
        self.last_client = time.monotonic()
        log.debug("fake firmware: %s client connected", kind)

    def _flush(self) -> None:
        with self._lock:
            pending = [(s, b) for group in (self.lidar, self.telemetry) for s, b in group.items()]
        for sock, buf in pending:
            with self._lock:
                if not buf:
                    continue
                try:
                    sent = sock.send(buf)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    self._drop(sock, "write failed")
                    continue
                del buf[:sent]
                if len(buf) > MAX_CLIENT_BUFFER:
                    self._drop(sock, f"more than {MAX_CLIENT_BUFFER >> 20} MB unread")
        with self._lock:
            busy = any(self.lidar.values()) or any(self.telemetry.values())
        if busy:  # come back soon for the rest
            self._wake()
            time.sleep(0.001)

    def _drop(self, sock: socket.socket, why: str) -> None:
        with self._lock:
            self.lidar.pop(sock, None)
            self.telemetry.pop(sock, None)
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        self.last_client = time.monotonic()
        log.debug("fake firmware: sensor client dropped (%s)", why)

    def close(self) -> None:
        for sock in list(self.lidar) + list(self.telemetry):
            self._drop(sock, "server closing")
        for srv in self._listeners:
            srv.close()
        self._listeners.clear()
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()


class FakeFirmware:
    """A miIO Roborock on loopback backed by a SimulatedRobot (module docstring).

    Parameters
    ----------
    world : the simulator world; the robot starts at `start` (default the dock, world.start).
    host : 127.x.x.x (anything else is refused), or "auto" for a free 127.0.0.N.
    token : the device token (Token, 32 hex characters or 16 bytes).
    seed : seeds the simulation and the faults. drop : share of datagrams lost (each way).
    delay : share of answers held back `delay_time` s.
    sim_config : SimConfig of the simulated robot.
    dock_mm, dock_heading : the dock's pose in the firmware's frame (mm, rad).
    speed : simulated seconds per wall second for firmware jobs (go-to, cleaning, docking).
    segments : segment id -> (x0, y0, x1, y1) world metres, the firmware's rooms (default:
        the default home's rooms, ids 16...; otherwise the whole floor as segment 16).
    idle_timeout : s without a datagram or sensor client after which the server stops itself.
    """

    def __init__(
        self,
        world: World,
        *,
        host: str = "127.0.0.1",
        token: Token | str | bytes,
        seed: int = 0,
        drop: float = 0.0,
        delay: float = 0.0,
        sim_config: SimConfig | None = None,
        start: Pose | None = None,
        delay_time: float = 0.5,
        dock_mm: tuple[float, float] = DOCK_MM,
        dock_heading: float = 0.0,
        speed: float = 50.0,
        segments: dict[int, tuple[float, float, float, float]] | None = None,
        lidar_port: int = 0,
        telemetry_port: int = 0,
        idle_timeout: float | None = 120.0,
        model: str = "roborock.vacuum.s5",
    ) -> None:
        self.host = free_loopback_host() if host == "auto" else _loopback(host)
        for name, value in (("drop", drop), ("delay", delay)):
            if not (0.0 <= float(value) < 1.0):
                raise ValueError(f"{name} is a share of datagrams in [0, 1), got {value}")
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be > 0 simulated s per wall s, got {speed}")
        if not (math.isfinite(delay_time) and delay_time >= 0):
            raise ValueError(f"delay_time must be >= 0 s, got {delay_time}")
        self._token = Token.coerce(token, "the fake firmware's token")
        self.world = world
        self.start_pose = world.start if start is None else start
        self.sim = SimulatedRobot(world, seed=seed, config=sim_config, start=start)
        self.config = cfg = self.sim.config
        self.drop = float(drop)
        self.delay = float(delay)
        self.delay_time = float(delay_time)
        self.speed = float(speed)
        self.model = model
        self.idle_timeout = idle_timeout
        self.frame = RobotFrame.from_dock(world.start, dock_mm, dock_heading)  # world -> mm
        self.dock_mm = (float(dock_mm[0]), float(dock_mm[1]))
        self.dock_heading = float(dock_heading)
        self._rng = random.Random(seed)
        self._did = (0x0A000000 + (seed & 0xFFFFFF)).to_bytes(4, "big")
        self.stats = FakeStats()
        # (message id, method, params) -> times it ran; ids wrap at 9999, so one id may name
        # several requests over a long session
        self.executions: Counter[tuple[int, str, str]] = Counter()
        self.calls: list[tuple[int, str]] = []  # (message id, method) in the order run
        self._cache: OrderedDict[tuple, tuple[float, dict]] = OrderedDict()
        self._delayed: list[tuple[float, int, bytes, tuple]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # firmware state
        self._state = 8 if start is None else 3
        self._error = 0
        self._in_cleaning = 0
        self._msg_seq = 0
        self._rc_seq = 0
        self._job: _Job | None = None
        self._clean_time = 0.0
        self._restrictions: list[list[int]] = []
        self._rev = 0
        # the firmware's map: cells the body centre may occupy (walls and outside, not the
        # obstacles below the lidar), and what it has swept
        res = world.resolution
        r_cells = int(math.ceil(self.config.radius / res))
        self._disc = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * r_cells + 1, 2 * r_cells + 1)
        )
        self._static = cv2.dilate((world.walls | world.outside).astype(np.uint8), self._disc) > 0
        self._blocked = self._static.copy()
        self._cleaned = np.zeros(world.shape, np.uint8)
        self._marks = np.zeros(world.shape, np.uint8)  # obstacles found by the bumper
        self._segments = self._default_segments() if segments is None else dict(segments)
        # sockets
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._udp.bind((self.host, MIIO_PORT))
        except OSError as exc:
            self._udp.close()
            raise BridgeError(
                f"cannot bind UDP {self.host}:{MIIO_PORT} ({exc.strerror or exc}): another "
                "fake or miIO service uses it; pick another 127.0.0.x (host='auto')"
            ) from None
        try:
            self._sensors = _SensorServer(
                self.host, lidar_port, telemetry_port, self._lock, self._greeting
            )
        except BaseException:
            self._udp.close()
            raise
        # compile the simulator's kernels now, not inside the first command's answer time
        warm = SimulatedRobot(world, config=cfg, start=start)
        warm.drive(0.0, 0.0, 1.0 / cfg.lds_rate)
        for scan in warm.scans():
            encode_neato(scan, 60.0 * cfg.lds_rate)
        self.lidar_url = f"tcp://{self.host}:{self._sensors.ports[0]}"
        self.telemetry_url = f"tcp://{self.host}:{self._sensors.ports[1]}"
        self._last_activity = time.monotonic()

    def __repr__(self) -> str:
        return f"FakeFirmware({self.host}, world={self.world.name!r}, state={self._state})"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeFirmware:
        """Serve on background threads (daemon); returns self."""
        if self._threads:
            return self
        for target, name in ((self._serve_udp, "fake-miio"), (self._serve_sensors, "fake-sensors")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "fake firmware on %s:%d (lidar %s, telemetry %s)",
            self.host,
            MIIO_PORT,
            self.lidar_url,
            self.telemetry_url,
        )
        return self

    def __enter__(self) -> FakeFirmware:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def close(self) -> None:
        """Stop serving and release the ports."""
        self._stop.set()
        with self._lock:
            if self._job is not None:
                self._job.cancel.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        job = self._job
        if job is not None and job.thread is not None:
            job.thread.join(timeout=2.0)
        self._udp.close()
        self._sensors.close()

    def connect(self, **options) -> MiioRobot:
        """A MiioRobot wired to this fake: its streams, the frame of the simulated robot's
        odometry (start pose -> dock), and loopback timings: answers take about 1 ms, so a
        resend after 0.02 s (a late answer is harmless: the resend is answered from the cache),
        up to 30 resends with backoff capped at 0.1 s (about 3 s of patience in all)."""
        dock = self.start_pose.inverse().compose(self.world.start)  # the dock, odometry frame
        settings = {
            "lidar_url": self.lidar_url,
            "telemetry_url": self.telemetry_url,
            "frame": RobotFrame.from_dock(dock, self.dock_mm, self.dock_heading),
            "timeout": 0.02,
            "retries": 30,
            "backoff": 0.005,
            "max_backoff": 0.1,
            "move_margin": 2.0,
            "poll_interval": 0.02,
            "model": self.model,
        }
        settings.update(options)
        return MiioRobot(self.host, self._token, **settings)

    # ------------------------------------------------------------------ test hooks
    def runs(self, msg_id: int) -> int:
        """How many times requests with this message id ran."""
        return sum(n for (i, _, _), n in self.executions.items() if i == msg_id)

    @property
    def state(self) -> int:
        return self._state

    @property
    def error_code(self) -> int:
        return self._error

    @property
    def restrictions(self) -> list[list[int]]:
        """The no-go zones and virtual walls last saved, as save_map items (mm)."""
        with self._lock:
            return [list(item) for item in self._restrictions]

    def inject_error(self, code: int) -> None:
        """Put the robot in error `code` (state 12), as a sensor fault would; app_stop clears."""
        with self._lock:
            self._cancel_job()
            self._error = int(code)
            self._state = 12
            self._emit(0, False)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait (wall s) until no firmware job runs."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = self._job
            if job is None or job.thread is None or not job.thread.is_alive():
                return True
            time.sleep(0.01)
        return False

    # ------------------------------------------------------------------ miIO server
    def _serve_udp(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, data, addr = heapq.heappop(self._delayed)
                    self._sendto(data, addr)
                wait = 0.05
                if self._delayed:
                    wait = max(0.0, min(wait, self._delayed[0][0] - now))
                self._udp.settimeout(wait if wait > 0 else 0.0001)
                try:
                    data, addr = self._udp.recvfrom(65536)
                except TimeoutError:
                    data = None
                except OSError:
                    if self._stop.is_set():
                        return
                    continue
                if data is None:
                    if self._idle_for() > (self.idle_timeout or math.inf):
                        log.info("fake firmware on %s: idle, stopping", self.host)
                        self._stop.set()
                    continue
                self._last_activity = time.monotonic()
                self._datagram(data, addr)
        except Exception:  # a bug here must not hang a test silently
            log.exception("fake firmware UDP loop failed")
            self._stop.set()

    def _idle_for(self) -> float:
        if self._sensors.clients:
            return 0.0
        return time.monotonic() - max(self._last_activity, self._sensors.last_client)

    def _serve_sensors(self) -> None:
        try:
            while not self._stop.is_set():
                self._sensors.run_once(0.05)
        except Exception:
            if not self._stop.is_set():
                log.exception("fake firmware sensor loop failed")

    def _datagram(self, data: bytes, addr: tuple) -> None:
        self.stats.received += 1
        if self.drop and self._rng.random() < self.drop:
            self.stats.dropped_in += 1
            return
        if len(data) == 32 and data[:4] == b"\x21\x31\x00\x20":
            self.stats.hellos += 1
            header = struct.pack(">HHI4sI", 0x2131, 32, 0, self._did, int(time.time()))
            self._reply(header + b"\xff" * 16, addr)
            return
        try:
            msg = Message.parse(data, token=self._token.value)
            request = msg.data.value
        except Exception:  # checksum (wrong token), framing or decryption: stay silent
            self.stats.undecodable += 1
            return
        if not isinstance(request, dict) or "method" not in request or "id" not in request:
            self.stats.undecodable += 1
            return
        msg_id = request["id"]
        method = request["method"]
        params = request.get("params", [])
        try:
            key = (msg_id, method, json.dumps(params, sort_keys=True))
        except (TypeError, ValueError):
            key = (msg_id, method, repr(params))
        now = time.monotonic()
        while self._cache and next(iter(self._cache.values()))[0] < now - REPLY_TTL:
            self._cache.popitem(last=False)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            payload = cached[1]
        else:
            with self._lock:
                self.executions[key] += 1
                self.calls.append((msg_id, method))
                payload = self._dispatch(msg_id, method, params)
            self._cache[key] = (now, payload)
            while len(self._cache) > REPLY_CACHE:
                self._cache.popitem(last=False)
        reply = Message.build(
            {
                "data": {"value": payload},
                "header": {
                    "value": {
                        "length": 0,
                        "unknown": 0,
                        "device_id": self._did,
                        "ts": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    }
                },
                "checksum": 0,
            },
            token=self._token.value,
        )
        self._reply(reply, addr)

    def _reply(self, data: bytes, addr: tuple) -> None:
        if self.drop and self._rng.random() < self.drop:
            self.stats.dropped_out += 1
            return
        if self.delay and self._rng.random() < self.delay:
            self.stats.delayed += 1
            due = time.monotonic() + self.delay_time
            heapq.heappush(self._delayed, (due, self.stats.delayed, data, addr))
            return
        self._sendto(data, addr)

    def _sendto(self, data: bytes, addr: tuple) -> None:
        try:
            self._udp.sendto(data, addr)
            self.stats.answered += 1
        except OSError:
            pass

    # ------------------------------------------------------------------ commands
    def _dispatch(self, msg_id: int, method: str, params) -> dict:
        handler = self._handlers().get(method)
        if handler is None:
            return {"id": msg_id, "error": {"code": -32601, "message": "Method not found"}}
        try:
            result = handler(msg_id, params)
        except _Refused as exc:
            return {"id": msg_id, "error": {"code": exc.code, "message": str(exc)}}
        return {"id": msg_id, "result": result}

    def _handlers(self) -> dict[str, Callable]:
        return {
            "miIO.info": self._info,
            "get_status": self._get_status,
            "get_map_v1": lambda i, p: ["retry"],
            "get_room_mapping": lambda i, p: [[sid, str(sid)] for sid in sorted(self._segments)],
            "app_rc_start": self._rc_start,
            "app_rc_move": self._rc_move,
            "app_rc_end": self._rc_end,
            "app_stop": self._app_stop,
            "app_goto_target": self._goto_target,
            "app_zoned_clean": self._zoned_clean,
            "app_segment_clean": self._segment_clean,
            "app_charge": self._charge,
            "save_map": self._save_map,
        }

    def _info(self, msg_id, params) -> dict:
        mac = ":".join(f"{b:02X}" for b in b"\x02\x00" + self._did)
        return {
            "hw_ver": "Linux",
            "fw_ver": "3.5.8_fake",
            "ap": {"ssid": "vacnav-fake", "bssid": mac, "rssi": -40},
            "netif": {"localIp": self.host, "mask": "255.0.0.0", "gw": self.host},
            "model": self.model,
            "mac": mac,
            "token": "0" * 32,  # modern firmware reveals no token (the real one stays here)
            "life": int(self.sim.time // 60),
        }

    def _get_status(self, msg_id, params) -> list[dict]:
        self._msg_seq += 1
        cell = self.world.resolution**2
        return [
            {
                "msg_ver": 2,
                "msg_seq": self._msg_seq,
                "state": self._state,
                "battery": max(5, 100 - int(self.sim.time // 90)),  # ~150 min on a charge
                "clean_time": int(self._clean_time),
                "clean_area": int(round(float(self._cleaned.sum()) * cell * 1e6)),
                "error_code": self._error,
                "map_present": 1,
                "in_cleaning": self._in_cleaning,
                "in_returning": int(self._state == 6),
                "in_fresh_state": 1,
                "lab_status": 1,
                "water_box_status": 0,
                "fan_power": 102,
                "dnd_enabled": 0,
                "map_status": 3,
                "lock_status": 0,
            }
        ]

    def _rc_start(self, msg_id, params) -> list[str]:
        if self._error:
            raise _Refused(ERR_EXEC, f"robot in error {self._error}: clear it first")
        self._cancel_job()
        self._state = 7
        self._in_cleaning = 0
        self._rc_seq = 0
        return ["ok"]

    def _rc_end(self, msg_id, params) -> list[str]:
        if self._state == 7:
            self._state = 3
        return ["ok"]

    def _rc_move(self, msg_id, params) -> list[str]:
        move = params[0] if isinstance(params, list) and params else params
        if isinstance(move, list) and move:  # the legacy nested form [[{...}]]
            move = move[0]
        if not isinstance(move, dict):
            raise _Refused(ERR_PARAMS, "app_rc_move takes [{omega, velocity, duration, seqnum}]")
        try:
            omega = float(move.get("omega", 0.0))
            velocity = float(move.get("velocity", 0.0))
            duration = float(move.get("duration", 1500)) / 1000.0
            seqnum = int(move.get("seqnum", self._rc_seq + 1))
        except (TypeError, ValueError):
            raise _Refused(ERR_PARAMS, "app_rc_move: numbers expected") from None
        if not all(math.isfinite(x) for x in (omega, velocity, duration)) or duration < 0:
            raise _Refused(ERR_PARAMS, "app_rc_move: finite omega, velocity, duration >= 0")
        if self._state == 12:
            return ["ok"]  # a robot in error does not move (and says nothing more)
        if self._state != 7:
            raise _Refused(ERR_EXEC, "not in remote control: send app_rc_start first")
        if seqnum <= self._rc_seq:
            self.stats.stale_moves += 1
            return ["ok"]
        self._rc_seq = seqnum
        cfg = self.config
        velocity = max(-cfg.max_v, min(cfg.max_v, velocity))
        omega = max(-cfg.max_w, min(cfg.max_w, omega))
        self.sim.drive(velocity, omega, duration)
        self._emit(msg_id, True)
        return ["ok"]

    def _app_stop(self, msg_id, params) -> list[str]:
        self._cancel_job()
        self._error = 0
        self._in_cleaning = 0
        self._state = 3
        self._emit(msg_id, True, "finished")
        return ["ok"]

    def _goto_target(self, msg_id, params) -> list[str]:
        xy = self._mm_points(params, 2, "app_goto_target takes [x_mm, y_mm]")
        goal = self.frame.to_world(xy[0])
        self._start_job("goto", msg_id, 16, 0, self._goto_steps(goal))
        return ["ok"]

    def _zoned_clean(self, msg_id, params) -> list[str]:
        if not isinstance(params, list) or not params:
            raise _Refused(ERR_PARAMS, "app_zoned_clean takes [[x1, y1, x2, y2, repeats], ...]")
        rects = []
        for zone in params:
            if not (isinstance(zone, list) and len(zone) == 5):
                raise _Refused(ERR_PARAMS, "a zone is [x1, y1, x2, y2, repeats] (mm)")
            mm = self._mm_points(zone[:4], 4, "zone corners must be numbers (mm)")
            repeats = zone[4]
            if not isinstance(repeats, int) or not 1 <= repeats <= 3:
                raise _Refused(ERR_PARAMS, "zone repeats must be 1..3")
            corners = self.frame.to_world(
                [
                    (mm[0, 0], mm[0, 1]),
                    (mm[1, 0], mm[0, 1]),
                    (mm[1, 0], mm[1, 1]),
                    (mm[0, 0], mm[1, 1]),
                ]
            )
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            rects.extend([(lo[0], lo[1], hi[0], hi[1])] * repeats)
        self._start_job("zone", msg_id, 17, 2, self._clean_steps(rects))
        return ["ok"]

    def _segment_clean(self, msg_id, params) -> list[str]:
        if not isinstance(params, list) or not params:
            raise _Refused(ERR_PARAMS, "app_segment_clean takes [segment ids]")
        unknown = [s for s in params if s not in self._segments]
        if unknown:
            raise _Refused(ERR_PARAMS, f"unknown segments {unknown}")
        rects = [self._segments[s] for s in params]
        self._start_job("segment", msg_id, 18, 3, self._clean_steps(rects))
        return ["ok"]

    def _charge(self, msg_id, params) -> list[str]:
        self._start_job("dock", msg_id, 6, 0, self._dock_steps())
        return ["ok"]

    def _save_map(self, msg_id, params) -> list[str]:
        if not isinstance(params, list):
            raise _Refused(ERR_PARAMS, "save_map takes [type, coords...] or a list of them")
        items = params if params and isinstance(params[0], list) else ([params] if params else [])
        sizes = {0: 8, 1: 4, 2: 8}
        clean = []
        for item in items:
            if not (isinstance(item, list) and item and item[0] in sizes):
                raise _Refused(ERR_PARAMS, "a restriction starts with its type: 0, 1 or 2")
            if len(item) != 1 + sizes[item[0]] or not all(
                isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
                for c in item[1:]
            ):
                raise _Refused(ERR_PARAMS, f"type {item[0]} takes {sizes[item[0]]} coordinates")
            clean.append([int(item[0]), *(int(round(c)) for c in item[1:])])
        self._restrictions = clean
        self._rebuild_blocked()
        return ["ok"]

    def _mm_points(self, values, count: int, message: str) -> np.ndarray:
        if not (isinstance(values, list) and len(values) == count):
            raise _Refused(ERR_PARAMS, message)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise _Refused(ERR_PARAMS, message)
        arr = np.asarray(values, np.float64).reshape(-1, 2)
        if not np.isfinite(arr).all():
            raise _Refused(ERR_PARAMS, message)
        return arr

    # ------------------------------------------------------------------ telemetry
    def _greeting(self) -> list[bytes]:
        cfg = self.config
        lines = [
            {
                "type": "hello",
                "t": self.sim.time,
                "lds_rate": cfg.lds_rate,
                "range_min": cfg.range_min,
                "range_max": cfg.range_max,
                "lidar_offset": cfg.lidar_offset,
                "cmd_tags": True,
            },
            self._odom_line(0, False),
        ]
        return [(json.dumps(x, separators=(",", ":")) + "\n").encode() for x in lines]

    def _odom_line(self, cmd: int, done: bool, outcome: str | None = None) -> dict:
        odom = self.sim.odometry()
        line = {
            "type": "odom",
            "t": odom.stamp,
            "x": odom.pose.x,
            "y": odom.pose.y,
            "theta": odom.pose.theta,
            "v": odom.v,
            "w": odom.w,
            "bumper": self.sim.bumper_pressed,
            "state": self._state,
            "cmd": cmd,
            "done": done,
        }
        if outcome is not None:
            line["outcome"] = outcome
        return line

    def _emit(self, cmd: int, done: bool, outcome: str | None = None) -> None:
        """Send the turns made since the last call and an odom line (lock held)."""
        sensors = self._sensors
        rpm = 60.0 * self.config.lds_rate
        for scan in self.sim.scans():
            if sensors.lidar:
                sensors.send_lidar(encode_neato(scan, rpm))
            if sensors.telemetry:
                line = {"type": "scan", "t": scan.stamp, "duration": scan.duration}
                line["rev"] = self._rev
                sensors.send_line(line)
            self._rev += 1
        if sensors.telemetry:
            sensors.send_line(self._odom_line(cmd, done, outcome))

    # ------------------------------------------------------------------ jobs
    def _start_job(self, kind: str, cmd: int, state: int, in_cleaning: int, steps: _Step) -> None:
        self._cancel_job()
        self._error = 0
        self._state = state
        self._in_cleaning = in_cleaning
        job = _Job(kind, cmd, steps)
        self._job = job
        job.thread = threading.Thread(target=self._run_job, args=(job,), name=f"fake-{kind}")
        job.thread.daemon = True
        job.thread.start()

    def _cancel_job(self) -> None:
        job = self._job
        if job is not None:
            job.cancel.set()
            self._job = None

    def _run_job(self, job: _Job) -> None:
        outcome = "failed"
        pause = JOB_STEP / self.speed
        try:
            while True:
                with self._lock:
                    if job.cancel.is_set() or self._stop.is_set():
                        outcome = "stopped"
                        break
                    try:
                        next(job.steps)
                    except StopIteration as end:
                        outcome = "finished" if end.value is not False else "failed"
                        break
                    self._emit(job.cmd, False)
                time.sleep(pause)
        except Exception:
            log.exception("fake firmware job %s failed", job.kind)
        finally:
            with self._lock:
                if self._job is job:
                    self._job = None
                    self._in_cleaning = 0
                    if job.kind == "dock" or (job.kind in ("zone", "segment")):
                        if outcome == "finished":
                            self._state = 8
                        else:
                            self._state, self._error = 12, 23  # the dock was not reached
                    elif self._state != 12:
                        self._state = 3
                self._emit(job.cmd, True, outcome)

    def _estimate(self) -> Pose:
        """Where the firmware believes it is (world frame). A Roborock localizes with its own
        lidar SLAM to within a few cm; the fake takes the simulator's true pose for that."""
        return self.sim.true_pose

    def _drive_to(self, x: float, y: float) -> _Step:
        """Steer straight to world (x, y): turn in place when the bearing is off, else drive
        with a proportional heading correction (SimulatedRobot.goto's rule, on the firmware's
        own localization). False on a bump or when no progress is made."""
        cfg = self.config
        best, stalled = math.inf, 0
        while True:
            elapsed = 0.0
            while elapsed < JOB_STEP - 1e-9:
                pose = self._estimate()
                dist = math.hypot(x - pose.x, y - pose.y)
                if dist <= cfg.goal_tolerance:
                    yield
                    return True
                err = float(wrap_angle(math.atan2(y - pose.y, x - pose.x) - pose.theta))
                if abs(err) > cfg.align_tolerance:
                    turn = min(abs(err) / cfg.max_w, JOB_STEP - elapsed)
                    self.sim.drive(0.0, math.copysign(cfg.max_w, err), turn)
                    elapsed += turn
                    continue
                step = min(cfg.control_dt, JOB_STEP - elapsed)
                v = min(cfg.max_v, dist / step)
                w = max(-cfg.max_w, min(cfg.max_w, 0.5 * err / step))
                if self.sim.drive(v, w, step):
                    self._mark_bump()
                    yield
                    return False
                elapsed += step
            yield
            pose = self._estimate()
            left = math.hypot(x - pose.x, y - pose.y)
            stalled = stalled + 1 if left > best - 0.01 else 0
            best = min(best, left)
            if stalled >= 6:
                return False

    def _mark_bump(self) -> None:
        """Put what the bumper hit into the firmware's map (ahead of the body, a real firmware
        keeps such obstacles too), so that the next plan goes around it."""
        pose = self._estimate()
        reach = self.config.radius + 0.03
        res = self.world.resolution
        ox, oy = self.world.origin
        cx = (pose.x + reach * math.cos(pose.theta) - ox) / res
        cy = (pose.y + reach * math.sin(pose.theta) - oy) / res
        cv2.circle(self._marks, (int(cx), int(cy)), max(1, int(round(0.08 / res))), 1, -1)
        self._rebuild_blocked()

    def _travel(self, x: float, y: float) -> _Step:
        """Go to world (x, y) on a planned path; after a bump, back off and replan around what
        it hit (at most `TRAVEL_TRIES` plans)."""
        for _ in range(TRAVEL_TRIES):
            est = self._estimate()
            path = self._plan((est.x, est.y), (x, y))
            if path is None:
                return False
            ok = True
            for wx, wy in path:
                ok = yield from self._drive_to(wx, wy)
                if not ok:
                    break
            if ok:
                return True
            if self.sim.bumper_pressed:
                self.sim.drive(-0.1, 0.0, 0.5)  # back off the obstacle
                yield
        return False

    def _goto_steps(self, goal: np.ndarray) -> _Step:
        return (yield from self._travel(float(goal[0]), float(goal[1])))

    def _dock_steps(self) -> _Step:
        dock = self.world.start
        if not (yield from self._travel(dock.x, dock.y)):
            return False
        err = float(wrap_angle(dock.theta - self._estimate().theta))
        if abs(err) > 1e-3:
            w = math.copysign(self.config.max_w, err)
            self.sim.drive(0.0, w, abs(err) / self.config.max_w)
            yield
        return True

    def _clean_steps(self, rects: list[tuple[float, float, float, float]]) -> _Step:
        """Sweep each rectangle (world metres) in lanes, then return to the dock."""
        for rect in rects:
            for a, b in self._lanes(rect):
                if not (yield from self._travel(*a)):
                    continue
                t0, p0 = self.sim.time, self._estimate()
                yield from self._drive_to(*b)
                p1 = self._estimate()
                self._sweep(p0, p1)
                self._clean_time += self.sim.time - t0
        self._state = 6
        return (yield from self._dock_steps())

    def _lanes(self, rect) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """Free runs of lanes across a rectangle, boustrophedon order (world metres)."""
        x0, y0, x1, y1 = (float(c) for c in rect)
        res = self.world.resolution
        ox, oy = self.world.origin
        horizontal = (x1 - x0) >= (y1 - y0)
        across = (y0, y1) if horizontal else (x0, x1)
        n = max(1, int((across[1] - across[0]) // LANE_SPACING))
        first = across[0] + 0.5 * ((across[1] - across[0]) - (n - 1) * LANE_SPACING)
        out = []
        for k in range(n):
            c = first + k * LANE_SPACING
            if horizontal:
                i = int(math.floor((c - oy) / res))
                j0, j1 = int(math.floor((x0 - ox) / res)), int(math.ceil((x1 - ox) / res))
                line = self._line_cells(i, j0, j1, row=True)
            else:
                j = int(math.floor((c - ox) / res))
                i0, i1 = int(math.floor((y0 - oy) / res)), int(math.ceil((y1 - oy) / res))
                line = self._line_cells(j, i0, i1, row=False)
            runs = []
            for a, b in line:  # cell index runs along the lane
                if (b - a) * res < 0.1:
                    continue
                pa, pb = (a + 0.5) * res, (b - 0.5) * res
                if horizontal:
                    runs.append(((ox + pa, c), (ox + pb, c)))
                else:
                    runs.append(((c, oy + pa), (c, oy + pb)))
            if k % 2:
                runs = [(b, a) for a, b in reversed(runs)]
            out.extend(runs)
        return out

    def _line_cells(self, fixed: int, lo: int, hi: int, *, row: bool) -> list[tuple[int, int]]:
        h, w = self._blocked.shape
        if not 0 <= fixed < (h if row else w):
            return []
        lo, hi = max(lo, 0), min(hi, w if row else h)
        if hi <= lo:
            return []
        free = ~(self._blocked[fixed, lo:hi] if row else self._blocked[lo:hi, fixed])
        edges = np.flatnonzero(np.diff(np.concatenate(([0], free.astype(np.int8), [0]))))
        return [(lo + int(a), lo + int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]

    def _sweep(self, p0: Pose, p1: Pose) -> None:
        """Mark the floor swept between two poses (the brush is as wide as a lane)."""
        res = self.world.resolution
        ox, oy = self.world.origin
        a = (int((p0.x - ox) / res), int((p0.y - oy) / res))
        b = (int((p1.x - ox) / res), int((p1.y - oy) / res))
        cv2.line(self._cleaned, a, b, 1, thickness=max(1, int(round(LANE_SPACING / res))))
        self._cleaned &= (~(self.world.walls | self.world.outside)).astype(np.uint8)

    def _rebuild_blocked(self) -> None:
        """The firmware's map with the restrictions (no-go zones and virtual walls) drawn in."""
        res = self.world.resolution
        ox, oy = self.world.origin
        extra = np.zeros(self.world.shape, np.uint8)
        for item in self._restrictions:
            kind, coords = item[0], np.asarray(item[1:], np.float64).reshape(-1, 2)
            world = self.frame.to_world(coords)
            cells = np.round((world - (ox, oy)) / res).astype(np.int32)
            if kind == 0:
                cv2.fillPoly(extra, [cells], 1)
            elif kind == 1:
                cv2.line(extra, tuple(map(int, cells[0])), tuple(map(int, cells[1])), 1, 2)
        grown = cv2.dilate(extra | self._marks, self._disc) > 0
        self._blocked = self._static | grown

    def _plan(self, start: tuple[float, float], goal: tuple[float, float]) -> list | None:
        """Waypoints (world metres) from start to goal over free cells (8-connected BFS,
        then line-of-sight shortcuts); None if there is no way."""
        res = self.world.resolution
        ox, oy = self.world.origin
        blocked = self._blocked
        h, w = blocked.shape

        def cell(p):
            return int(math.floor((p[1] - oy) / res)), int(math.floor((p[0] - ox) / res))

        s = _nearest_free(blocked, cell(start), 6)
        g = _nearest_free(blocked, cell(goal), 8)
        if s is None or g is None:
            return None
        parent = np.full(h * w, -1, np.int64)
        si, gi = s[0] * w + s[1], g[0] * w + g[1]
        parent[si] = si
        queue = deque([si])
        flat = blocked.ravel()
        steps = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
        while queue:
            cur = queue.popleft()
            if cur == gi:
                break
            i, j = divmod(cur, w)
            for di, dj in steps:
                ni, nj = i + di, j + dj
                if 0 <= ni < h and 0 <= nj < w:
                    nxt = ni * w + nj
                    if parent[nxt] < 0 and not flat[nxt]:
                        if di and dj and (flat[i * w + nj] or flat[ni * w + j]):
                            continue  # no corner cutting
                        parent[nxt] = cur
                        queue.append(nxt)
        if parent[gi] < 0:
            return None
        chain = [gi]
        while chain[-1] != si:
            chain.append(int(parent[chain[-1]]))
        chain.reverse()
        pts = [((c % w + 0.5) * res + ox, (c // w + 0.5) * res + oy) for c in chain]
        pts[-1] = goal if not _blocked_at(blocked, cell(goal)) else pts[-1]
        out, k = [], 0
        while k < len(pts) - 1:
            far = len(pts) - 1
            while far > k + 1 and not self._visible(pts[k], pts[far]):
                far -= 1
            out.append(pts[far])
            k = far
        return out

    def _visible(self, a, b) -> bool:
        res = self.world.resolution
        ox, oy = self.world.origin
        n = max(2, int(math.hypot(b[0] - a[0], b[1] - a[1]) / (0.5 * res)) + 1)
        xs = np.linspace(a[0], b[0], n)
        ys = np.linspace(a[1], b[1], n)
        i = np.floor((ys - oy) / res).astype(int)
        j = np.floor((xs - ox) / res).astype(int)
        h, w = self._blocked.shape
        if (i < 0).any() or (j < 0).any() or (i >= h).any() or (j >= w).any():
            return False
        return not self._blocked[i, j].any()

    def _default_segments(self) -> dict[int, tuple[float, float, float, float]]:
        if self.world.name == worlds.NAME:
            return {16 + k: (r.x0, r.y0, r.x1, r.y1) for k, r in enumerate(worlds.ROOMS.values())}
        free = self.world.free
        rows, cols = np.nonzero(free)
        res = self.world.resolution
        ox, oy = self.world.origin
        return {
            16: (
                ox + cols.min() * res,
                oy + rows.min() * res,
                ox + (cols.max() + 1) * res,
                oy + (rows.max() + 1) * res,
            )
        }


class _Refused(Exception):
    """A command the fake firmware answers with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _blocked_at(blocked: np.ndarray, cell: tuple[int, int]) -> bool:
    i, j = cell
    h, w = blocked.shape
    return not (0 <= i < h and 0 <= j < w) or bool(blocked[i, j])


def _nearest_free(blocked: np.ndarray, cell: tuple[int, int], reach: int):
    """The free cell nearest to `cell` within `reach` cells, or None."""
    if not _blocked_at(blocked, cell):
        return cell
    i, j = cell
    h, w = blocked.shape
    best, best_d = None, math.inf
    for di in range(-reach, reach + 1):
        for dj in range(-reach, reach + 1):
            ni, nj = i + di, j + dj
            if 0 <= ni < h and 0 <= nj < w and not blocked[ni, nj]:
                d = di * di + dj * dj
                if d < best_d:
                    best, best_d = (ni, nj), d
    return best


class MiioSim:
    """A Robot that is a MiioRobot driving its own FakeFirmware over real miIO and TCP, with the
    simulator's truth beside it for scoring (`true_pose`, `bumps`, `sim`).

    The constructor takes SimulatedRobot's arguments (world, seed, config, start), so a mission
    that builds SimulatedRobots can build these instead; `drop`/`delay` inject network faults.
    The fake gets a free 127.0.0.x and a fresh token. Close it (or use `with`) to free both.
    """

    def __init__(
        self,
        world: World,
        *,
        seed: int = 0,
        config: SimConfig | None = None,
        start: Pose | None = None,
        drop: float = 0.0,
        delay: float = 0.0,
        host: str = "auto",
        speed: float = 200.0,
        **robot_options,
    ) -> None:
        self.fake = FakeFirmware(
            world,
            host=host,
            token=Token.generate(),
            seed=seed,
            drop=drop,
            delay=delay,
            sim_config=config,
            start=start,
            speed=speed,
            idle_timeout=None,
        ).start()
        try:
            self.robot = self.fake.connect(**robot_options)
        except BaseException:
            self.fake.close()
            raise

    def __repr__(self) -> str:
        return f"MiioSim({self.robot!r})"

    def __enter__(self) -> MiioSim:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.robot.close()
        finally:
            self.fake.close()

    # the Robot protocol, through miIO
    @property
    def time(self) -> float:
        return self.robot.time

    @property
    def bumper_pressed(self) -> bool:
        return self.robot.bumper_pressed

    def drive(self, v: float, w: float, dt: float) -> bool:
        return self.robot.drive(v, w, dt)

    def goto(self, x: float, y: float, *, timeout: float = 60.0) -> bool:
        return self.robot.goto(x, y, timeout=timeout)

    def scans(self) -> list:
        return self.robot.scans()

    def odometry(self):
        return self.robot.odometry()

    # the simulator's truth, for scoring only
    @property
    def sim(self) -> SimulatedRobot:
        return self.fake.sim

    @property
    def true_pose(self) -> Pose:
        return self.fake.sim.true_pose

    @property
    def bumps(self) -> list:
        return self.fake.sim.bumps

    @property
    def config(self) -> SimConfig:
        return self.fake.config
