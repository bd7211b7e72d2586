"""MiioRobot (python-miio underneath) against the fake firmware, the token rules, and frames.

Every test of this module uses its own 127.0.0.3x address (port 54321 is fixed by the protocol).
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import socket
import threading
import time

import numpy as np
import pytest

from firmware_bridge.errors import BridgeError
from firmware_bridge.fake_firmware import FakeFirmware
from firmware_bridge.lds import encode_neato
from firmware_bridge.miio_robot import (
    DOCK_MM,
    ERROR_TEXT,
    MAX_OMEGA,
    FirmwareError,
    MiioRobot,
    RobotFrame,
    RobotUnreachable,
    TokenRejected,
    UnsupportedCommand,
    _SensorLink,
    error_text,
    plan_moves,
)
from firmware_bridge.robot import Robot
from firmware_bridge.secrets import (
    REDACTED,
    Token,
    TokenError,
    read_token_file,
    redact,
    resolve_token,
)
from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps.formats.roborock import FRAME as ROBOROCK_FRAME
from maps.geometry import Pose, wrap_angle
from maps.model import Restrictions

COMMANDS = [
    (0.2, 0.0, 1.0),
    (0.0, 1.0, 0.8),
    (0.25, 0.33, 1.5),
    (0.15, -0.47, 1.2),
    (0.3, 0.0, 0.7),
]


@pytest.fixture(scope="module")
def world() -> World:
    return World.default()


@pytest.fixture
def token() -> Token:
    return Token.generate()


# ------------------------------------------------------------------------------ driving
def test_drive_moves_the_robot_as_the_simulator_would(world, token):
    with FakeFirmware(world, host="127.0.0.31", token=token, seed=5) as fake:
        with fake.connect() as robot:
            assert isinstance(robot, Robot)
            ref = SimulatedRobot(world, seed=5)
            got, want = [], []
            for v, w, dt in COMMANDS:
                assert robot.drive(v, w, dt) is False
                ref.drive(v, w, dt)
                got += robot.scans()
                want += ref.scans()
            truth, expected = fake.sim.true_pose, ref.true_pose
            assert math.hypot(truth.x - expected.x, truth.y - expected.y) < 0.03
            assert abs(wrap_angle(truth.theta - expected.theta)) < math.radians(2)
            assert robot.time == pytest.approx(ref.time, abs=1e-9)
            # odometry is what the simulated robot reports, to the last bit of the JSON float
            odom = robot.odometry()
            assert odom.pose == fake.sim.odometry().pose and odom.stamp == fake.sim.time
            assert odom.pose.distance_to(ref.odometry().pose) < 0.03
            # every lidar turn arrives, decodes, and carries the robot-clock stamp
            # (the first 1 s is straight, where both robots take the same path: the ranges are
            # the reference's to the millimetre of the wire format; in turns, python-miio's
            # omega grid bends the path a little, so the beams see slightly other points)
            assert len(got) == len(want) == 26
            for k, (a, b) in enumerate(zip(got, want, strict=True)):
                assert a.stamp == pytest.approx(b.stamp) and a.duration == pytest.approx(b.duration)
                assert (a.range_min, a.range_max) == (b.range_min, b.range_max)
                both = np.isfinite(a.ranges) & np.isfinite(b.ranges)
                assert both.mean() > 0.9
                error = np.abs(a.ranges[both] - b.ranges[both])
                if k < 5:
                    assert error.max() <= 0.0006
                else:
                    assert np.median(error) < 0.05
            assert robot.scans() == []


def test_drive_stops_on_the_bumper(world, token):
    with FakeFirmware(world, host="127.0.0.31", token=token) as fake:
        with fake.connect() as robot:
            # the dock faces the wall to the hall, 4.5 m ahead (the door is beside that line)
            bumped = robot.drive(0.3, 0.0, 30.0)
            assert bumped is True and robot.bumper_pressed
            assert robot.time < 25  # the remaining moves were not sent
            assert fake.sim.bumps and fake.sim.bumps[-1].stamp <= robot.time
            assert robot.drive(-0.2, 0.0, 0.5) is False and not robot.bumper_pressed


def test_drive_clamps_to_python_miio_limits_and_says_so(world, token, caplog):
    with FakeFirmware(world, host="127.0.0.31", token=token) as fake:
        with fake.connect() as robot, caplog.at_level(logging.WARNING):
            robot.drive(0.8, 0.0, 1.0)
            robot.drive(0.8, 0.0, 1.0)
            assert fake.sim.true_pose.distance_to(world.start) == pytest.approx(0.6, abs=0.02)
            robot.drive(0.0, 5.0, 0.5)
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 2
            assert "velocity 0.800 m/s" in warnings[0] and "clamped to 0.30" in warnings[0]
            assert "turn rate 5.000 rad/s" in warnings[1]
            with pytest.raises(ValueError, match="finite"):
                robot.drive(float("nan"), 0.0, 1.0)
            with pytest.raises(ValueError, match="dt"):
                robot.drive(0.1, 0.0, -1.0)


@pytest.mark.parametrize("w", [0.0, 0.05, 0.25, -0.47, 1.0, 1.83, -3.1, 0.999])
@pytest.mark.parametrize("dt", [0.01, 0.05, 0.5, 1.0, 2.37])
def test_plan_moves_turns_the_asked_angle_on_the_omega_grid(w, dt):
    moves = plan_moves(w, dt, max_piece=1.0)
    total = sum(ms for _, _, ms in moves)
    assert total == round(dt * 1000)
    turned = sum(omega * ms for _, omega, ms in moves) / 1000
    assert turned == pytest.approx(w * dt, abs=0.1 * 0.010 + 1e-9)  # one 10 ms part at most
    for degrees, omega, ms in moves:
        assert round(math.radians(degrees), 1) == omega  # what python-miio will send
        assert abs(degrees) <= 180 and 0 < ms <= 1000
        assert omega == pytest.approx(round(omega / 0.1) * 0.1)
    assert MAX_OMEGA == pytest.approx(3.1)


def test_goto_converts_to_the_robots_frame(world, token):
    dock_mm, heading = (25300.0, 25800.0), math.pi / 2
    with FakeFirmware(
        world, host="127.0.0.32", token=token, dock_mm=dock_mm, dock_heading=heading, speed=200
    ) as fake:
        with fake.connect() as robot:
            assert robot.frame.rotation == pytest.approx(heading)
            assert robot.goto(1.2, -0.4) is True  # odometry frame: ahead and to the right
            want = world.start.compose(Pose(1.2, -0.4, 0.0))
            got = fake.sim.true_pose
            assert math.hypot(got.x - want.x, got.y - want.y) < 0.06
            assert robot.status().state_name == "idle"
            with pytest.raises(ValueError):
                robot.goto(float("inf"), 0.0)


def test_goto_timeout_stops_the_robot(world, token):
    with FakeFirmware(world, host="127.0.0.32", token=token, speed=20) as fake:
        with fake.connect() as robot:
            assert robot.goto(3.0, 3.0, timeout=2.0) is False
            assert robot.status().state == 3
            t = fake.sim.time
            time.sleep(0.1)
            assert fake.sim.time == t and t < 10


def test_zone_segment_home_and_restrictions(world, token):
    with FakeFirmware(world, host="127.0.0.33", token=token, speed=400) as fake:
        with fake.connect() as robot:
            assert robot.room_mapping()[0] == (16, "16")
            # 1 m x 0.8 m in front of the dock (odometry frame: x ahead, y left)
            assert robot.zone_clean([(0.6, -0.5, 1.4, 0.5)], wait=True) is True
            status = robot.status()
            assert status.state_name == "charging" and 0.7 < status.clean_area < 1.6
            assert fake.sim.true_pose.distance_to(world.start) < 0.1
            walls = [np.array([(0.5, -1.0), (0.5, 1.0)])]
            pentagon = np.array([(2.0, 0.0), (2.5, 0.3), (2.4, 0.8), (1.9, 0.9), (1.7, 0.4)])
            robot.set_restrictions(Restrictions(no_go=[pentagon], virtual_walls=walls))
            saved = fake.restrictions
            assert [item[0] for item in saved] == [1, 0]
            mm = robot.frame.to_robot(walls[0])
            assert saved[0][1:] == np.round(mm).astype(int).ravel().tolist()
            corners = robot.frame.to_world(np.reshape(saved[1][1:], (4, 2)))
            for p in pentagon:  # the enclosing rectangle holds the whole pentagon
                assert _inside(corners, p)
            with pytest.raises(ValueError, match="68"):
                robot.set_restrictions(no_go=[pentagon[:4]] * 9)
            robot.set_restrictions()
            assert fake.restrictions == []
            assert robot.fetch_map() == ["retry"]
            assert robot.segment_clean([16], wait=False) is True
            assert robot.status().mode == "segment"
            robot.stop()
            assert robot.status().state_name == "idle"
            robot.drive(0.3, 0.0, 1.0)
            assert robot.home(wait=True) is True
            assert robot.status().state == 8


def _inside(corners: np.ndarray, p: np.ndarray, tol: float = 0.002) -> bool:
    """p inside the convex quadrilateral, give or take `tol` m (corners are whole mm)."""
    side = []
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        e, d = b - a, p - a
        side.append((e[0] * d[1] - e[1] * d[0]) / np.hypot(*e))  # signed distance to the edge
    return all(s >= -tol for s in side) or all(s <= tol for s in side)


# ------------------------------------------------------------------------------ faults
def test_commands_complete_with_a_fifth_of_the_datagrams_lost(world, token):
    with FakeFirmware(
        world, host="127.0.0.34", token=token, drop=0.2, delay=0.05, seed=11, speed=400
    ) as fake:
        with fake.connect() as robot:
            for k in range(30):
                robot.drive(0.2, 0.4 if k % 3 else -0.6, 0.5)
                robot.scans()
            assert robot.goto(0.3, 0.2) is True
            robot.set_restrictions(virtual_walls=[np.array([(3.0, -1.0), (3.0, 1.0)])])
            assert robot.zone_clean([(0.5, -0.4, 1.0, 0.4)], wait=True) is True
            assert robot.status().state == 8
            robot.stop()
        stats = fake.stats
        assert stats.dropped_in > 10 and stats.dropped_out > 10
        assert stats.cache_hits > 3  # answers lost on the way back, resent with the same id
        assert max(fake.executions.values()) == 1  # nothing ran twice
        assert len(fake.executions) == len(fake.calls)
        assert stats.stale_moves == 0


def test_wrong_token_is_a_clear_error_without_the_token(world, token, caplog):
    wrong = Token.generate()
    with FakeFirmware(world, host="127.0.0.35", token=token) as fake:
        caplog.set_level(logging.DEBUG)
        start = time.monotonic()
        with pytest.raises(TokenRejected) as err:
            MiioRobot(fake.host, wrong.hex())
        elapsed = time.monotonic() - start
        assert elapsed < 10  # the target is 5 s; timings are not asserted tightly
        text = str(err.value)
        assert "token is most likely wrong" in text and fake.host in text
        chain = [text, repr(err.value)]
        cause = err.value.__cause__
        while cause is not None:
            chain.append(str(cause))
            cause = cause.__cause__
        # a working session at DEBUG, where python-miio logs every payload
        with fake.connect(connect=True) as robot:
            robot.drive(0.1, 0.0, 0.2)
            robot.status()
            chain.append(repr(robot))
            chain.append(repr(robot._vac))
            assert REDACTED in repr(robot)
        chain.append(caplog.text)
        chain += [r.getMessage() for r in caplog.records]
        assert any("miio" in r.name for r in caplog.records)  # python-miio did log
        for secret in (wrong, token):
            for form in (secret.hex(), secret.hex().upper(), repr(secret.value)[2:-1]):
                assert all(form not in s for s in chain)


def test_unreachable_robot_is_a_clear_error(token):
    start = time.monotonic()
    with pytest.raises(RobotUnreachable, match="127.0.0.36"):
        MiioRobot("127.0.0.36", token)
    assert time.monotonic() - start < 10
    with pytest.raises(RobotUnreachable, match="resolve"):
        MiioRobot("no-such-robot.invalid", token)


def test_firmware_errors_are_readable(world, token):
    with FakeFirmware(world, host="127.0.0.37", token=token) as fake:
        with fake.connect() as robot:
            with pytest.raises(UnsupportedCommand, match="app_dance"):
                robot.command("app_dance")
            with pytest.raises(FirmwareError, match="refused app_segment_clean"):
                robot.segment_clean([99])
            fake.inject_error(21)
            status = robot.status()
            assert not status.ok and status.error == "laser distance sensor blocked"
            with pytest.raises(FirmwareError, match="laser distance sensor blocked") as err:
                robot.drive(0.2, 0.0, 0.5)
            assert err.value.code == 21
            robot.stop()  # clears the error
            assert robot.status().ok
            robot.drive(0.2, 0.0, 0.5)
            fake.inject_error(8)  # stuck in the middle of remote control: moves are ignored
            with pytest.raises(FirmwareError, match="robot stuck"):
                robot.drive(0.2, 0.0, 0.2)
    assert set(ERROR_TEXT) == set(range(25)) - {20}
    assert all(error_text(code) for code in range(25))
    assert "not in the known table" in error_text(42)


def test_without_sensor_streams_the_robot_dead_reckons(world, token):
    with FakeFirmware(world, host="127.0.0.38", token=token) as fake:
        with MiioRobot(fake.host, token, timeout=0.2, poll_interval=0.05) as robot:
            assert robot.scans() == [] and robot.bumper_pressed is False
            start = time.monotonic()
            robot.drive(0.2, 0.0, 0.3)
            robot.drive(0.0, 1.0, 0.2)
            assert time.monotonic() - start >= 0.5  # a real robot moves in real time
            odom = robot.odometry().pose
            assert odom.x == pytest.approx(0.06) and odom.theta == pytest.approx(0.2)
            assert fake.sim.odometry().pose.distance_to(Pose(0.06, 0.0, 0.2)) < 0.01
        with pytest.raises(BridgeError, match="closed"):
            robot.status()


def test_remote_control_is_entered_again_when_the_firmware_left_it(world, token):
    with FakeFirmware(world, host="127.0.0.38", token=token) as fake:
        with fake.connect() as robot:
            robot.drive(0.2, 0.0, 0.5)
            robot.command("app_rc_end")  # as a button on the robot would
            assert robot.status().state == 3
            robot.drive(0.2, 0.0, 0.5)
            assert robot.status().state == 7 and fake.sim.time == pytest.approx(1.0)


def test_sensor_link_keeps_stamps_in_step_past_a_lost_turn(world):
    """A bridge serves three turns and their scan lines; the middle turn is cut to 10 of its
    90 packets on the wire, so the decoder drops it: the third turn keeps its own stamp."""
    sim = SimulatedRobot(world, seed=1)
    sim.drive(0.1, 0.0, 0.6)
    turns = sim.scans()
    assert len(turns) == 3
    wire = [encode_neato(t, 300.0) for t in turns]
    wire[1] = wire[1][: 10 * 22]
    lidar_srv = socket.create_server(("127.0.0.38", 0))
    tele_srv = socket.create_server(("127.0.0.38", 0))
    served = []

    def serve():
        lidar, _ = lidar_srv.accept()
        tele, _ = tele_srv.accept()
        hello = {"type": "hello", "t": 0.0, "range_min": 0.15, "range_max": 6.0}
        lines = [hello] + [
            {"type": "scan", "t": t.stamp + 100.0, "duration": t.duration, "rev": k}
            for k, t in enumerate(turns)
        ]
        tele.sendall(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
        lidar.sendall(b"".join(wire))
        served.extend([lidar, tele])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = "tcp://127.0.0.38:{}"
    link = _SensorLink(
        url.format(lidar_srv.getsockname()[1]), url.format(tele_srv.getsockname()[1]), 2.0
    )
    try:
        thread.join(2.0)
        assert link.wait(lambda: link.lost_turns == 1 and len(link._ready) == 2, 2.0)
        got = link.take_scans()
        assert [s.stamp for s in got] == pytest.approx([100.0, 100.4])
        for scan, turn in zip(got, (turns[0], turns[2]), strict=True):
            both = np.isfinite(scan.ranges) & np.isfinite(turn.ranges)
            assert np.abs(scan.ranges[both] - turn.ranges[both]).max() <= 0.0006
    finally:
        link.close()
        for sock in [*served, lidar_srv, tele_srv]:
            sock.close()


# ------------------------------------------------------------------------------ frames
def test_robot_frame_round_trips():
    frame = RobotFrame.from_dock(Pose(1.0, 2.0, 0.3), (25300, 25800), 1.2)
    pts = np.array([[0.0, 0.0], [1.0, 2.0], [-3.5, 4.25]])
    assert np.allclose(frame.to_world(frame.to_robot(pts)), pts)
    assert np.allclose(frame.to_robot((1.0, 2.0)), (25300, 25800))
    ahead = Pose(1.0, 2.0, 0.3).compose(Pose(0.5, 0.0, 0.0))
    assert np.allclose(
        frame.to_robot((ahead.x, ahead.y)),
        (25300 + 500 * math.cos(1.2), 25800 + 500 * math.sin(1.2)),
    )
    assert np.allclose(RobotFrame.from_dock().to_robot((0.0, 0.0)), DOCK_MM)
    # a map imported from a Roborock: the frame is the importer's
    vendor = RobotFrame.from_vendor(ROBOROCK_FRAME)
    mm = np.array([[25600.0, 25600.0], [30000.0, 21000.0]])
    assert np.allclose(vendor.to_robot(ROBOROCK_FRAME.to_world(mm)), mm)
    assert vendor.axis_aligned() and not frame.axis_aligned()
    with pytest.raises(ValueError, match="dreame"):
        RobotFrame.from_vendor(type(ROBOROCK_FRAME)("dreame", 0.001, (0.0, 0.0)))


# ------------------------------------------------------------------------------ secrets
def test_token_sources_and_their_errors(tmp_path, caplog):
    good = Token.generate()
    assert resolve_token(good.hex()) == good
    assert resolve_token(None, env={"VACNAV_TOKEN": f"  {good.hex().upper()}\n"}) == good
    path = tmp_path / "token"
    path.write_text(good.hex() + "\n")
    os.chmod(path, 0o600)
    with caplog.at_level(logging.WARNING):
        assert resolve_token(None, env={}, path=path) == good
    assert not caplog.records
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert read_token_file(path) == good
    assert len(caplog.records) == 1 and "chmod 600" in caplog.records[0].getMessage()
    assert "group and others" in caplog.records[0].getMessage()
    assert good.hex() not in caplog.text
    # the argument wins over the environment, the environment over the file
    other = Token.generate()
    assert resolve_token(other.hex(), env={"VACNAV_TOKEN": good.hex()}) == other
    assert resolve_token(None, env={"VACNAV_TOKEN": other.hex()}, path=path) == other

    bad = good.hex()[:31]
    for value, message in (
        (bad, "31 hex characters"),
        (good.hex()[:30] + "zz", "other than 0-9"),
        ("", "empty"),
    ):
        with pytest.raises(TokenError, match=message) as err:
            resolve_token(value)
        assert value not in str(err.value) or not value
    with pytest.raises(TokenError, match=r"\$VACNAV_TOKEN") as err:
        resolve_token(None, env={"VACNAV_TOKEN": bad})
    assert bad not in str(err.value)
    path.write_text("hello world")
    with pytest.raises(TokenError, match="token file") as err:
        read_token_file(path)
    assert "hello" not in str(err.value)
    with pytest.raises(TokenError, match="does not exist"):
        read_token_file(tmp_path / "missing")
    with pytest.raises(TokenError, match="no miIO token"):
        resolve_token(None, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})


def test_token_never_shows(monkeypatch):
    token = Token.generate()
    for text in (repr(token), str(token), f"{token}", f"{token!r}", f"{token:>40}"):
        assert token.hex() not in text and REDACTED in text
    with pytest.raises(TypeError):
        pickle.dumps(token)
    line = f"key {token.hex().upper()} and {token.value!r} and {token.hex()}"
    clean = redact(line, token)
    assert token.hex() not in clean.lower() and clean.count(REDACTED) == 3
    assert redact("id 0123456789abcdef0123456789ABCDEF end") == f"id {REDACTED} end"
    assert redact("md5 0123456789abcdef0123456789abcdef00 stays").endswith("00 stays")
    robot_repr = repr(MiioRobot("127.0.0.39", token, connect=False))
    assert token.hex() not in robot_repr and REDACTED in robot_repr
