"""FakeFirmware against the unmodified python-miio client (RoborockVacuum) over real UDP/AES.

Every test of this module uses its own 127.0.0.2x address (port 54321 is fixed by the protocol).
"""

from __future__ import annotations

import json
import math
import socket
import time

import numpy as np
import pytest
from miio import DeviceError, DeviceException, RoborockVacuum

from firmware_bridge.errors import BridgeError
from firmware_bridge.fake_firmware import FakeFirmware
from firmware_bridge.lds import LdsDecoder
from firmware_bridge.miio_robot import DOCK_MM
from firmware_bridge.secrets import Token
from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps.geometry import Pose

MODEL = "roborock.vacuum.s5"


class FastVacuum(RoborockVacuum):
    """python-miio's client with a loopback-sized socket timeout (Device reads these)."""

    timeout = 0.5
    retry_count = 2


@pytest.fixture(scope="module")
def world() -> World:
    return World.default()


@pytest.fixture
def token() -> Token:
    return Token.generate()


def client(host: str, token: Token) -> RoborockVacuum:
    return FastVacuum(host, token.hex(), model=MODEL)


def wait_for(predicate, timeout: float = 20.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# ------------------------------------------------------------------------------ the server
def test_binds_loopback_only(world, token):
    for host in ("0.0.0.0", "192.168.1.50", "10.0.0.1", "::1", "robot.local", ""):
        with pytest.raises(ValueError, match="loopback"):
            FakeFirmware(world, host=host, token=token)


def test_bad_fault_shares_refused(world, token):
    with pytest.raises(ValueError, match="drop"):
        FakeFirmware(world, host="127.0.0.21", token=token, drop=1.0)
    with pytest.raises(ValueError, match="delay"):
        FakeFirmware(world, host="127.0.0.21", token=token, delay=-0.1)


def test_port_in_use_is_a_clear_error(world, token):
    with FakeFirmware(world, host="127.0.0.21", token=token):
        with pytest.raises(BridgeError, match="127.0.0.21:54321"):
            FakeFirmware(world, host="127.0.0.21", token=token)


def test_stops_by_itself_when_idle(world, token):
    fake = FakeFirmware(world, host="127.0.0.21", token=token, idle_timeout=0.3).start()
    try:
        assert fake.running
        assert wait_for(lambda: not fake.running, timeout=5.0)
    finally:
        fake.close()
    # the address is free again
    FakeFirmware(world, host="127.0.0.21", token=token).close()


# ------------------------------------------------------------------------------ commands
def test_status_info_map_and_unknown_method(world, token):
    with FakeFirmware(world, host="127.0.0.22", token=token) as fake:
        vac = client(fake.host, token)
        status = vac.status()
        assert status.state_code == 8 and status.state == "Charging"
        assert status.battery == 100 and status.error_code == 0 and status.error == "No error"
        info = FastVacuum(fake.host, token.hex()).info()  # no model: asks miIO.info
        assert info.model == MODEL
        assert vac.map() == ["retry"]
        with pytest.raises(DeviceError) as err:
            vac.raw_command("app_dance", [])
        assert err.value.args[0]["code"] == -32601
        with pytest.raises(DeviceError):
            vac.goto("far", "away")  # parameter error, not a crash
        assert fake.running


def test_manual_control_moves_the_simulation(world, token):
    with FakeFirmware(world, host="127.0.0.22", token=token, seed=4) as fake:
        vac = client(fake.host, token)
        with pytest.raises(DeviceError) as err:  # not in remote control yet
            vac.manual_control(0, 0.2, 500)
        assert err.value.args[0]["code"] == -3
        vac.manual_start()
        assert vac.status().state_code == 7
        before = fake.sim.true_pose
        vac.manual_control(30, 0.2, 1000)  # omega = round(radians(30), 1) = 0.5 rad/s
        ref = SimulatedRobot(world, seed=4)
        ref.drive(0.2, 0.5, 1.0)
        after = fake.sim.true_pose
        assert after.distance_to(before) == pytest.approx(0.2, abs=0.01)
        assert after.distance_to(ref.true_pose) < 1e-6
        assert math.isclose(fake.sim.time, 1.0)
        vac.manual_stop()
        assert vac.status().state_code == 3


def test_a_repeated_message_id_runs_once(world, token):
    with FakeFirmware(world, host="127.0.0.22", token=token) as fake:
        vac = client(fake.host, token)
        vac.manual_start()
        move = [{"omega": 0.0, "velocity": 0.2, "duration": 500, "seqnum": 1}]
        first = vac.send("app_rc_move", move, 0, extra_parameters={"id": 777})
        t = fake.sim.time
        again = vac.send("app_rc_move", move, 0, extra_parameters={"id": 777})
        assert first == again == ["ok"]
        assert fake.runs(777) == 1 and fake.stats.cache_hits == 1
        assert fake.sim.time == t == 0.5
        # the same id with other content is a new command (another session reusing ids)
        move[0]["seqnum"] = 2
        vac.send("app_rc_move", move, 0, extra_parameters={"id": 777})
        assert fake.runs(777) == 2 and fake.sim.time == 1.0
        assert max(fake.executions.values()) == 1
        # a stale seqnum in the same session does not move the robot
        vac.send("app_rc_move", move, 0, extra_parameters={"id": 778})
        assert fake.sim.time == 1.0 and fake.stats.stale_moves == 1


def test_goto_target_goes_there_on_its_own_plan(world, token):
    # from the dock to the kitchen: through the door, around the tv bench
    with FakeFirmware(world, host="127.0.0.23", token=token, speed=200) as fake:
        vac = client(fake.host, token)
        target = (8.0, 1.0)
        mm = np.round(fake.frame.to_robot(target)).astype(int)
        assert vac.goto(int(mm[0]), int(mm[1])) == ["ok"]
        assert vac.status().state_code == 16
        assert wait_for(lambda: vac.status().state_code == 3)
        assert math.hypot(fake.sim.true_pose.x - 8.0, fake.sim.true_pose.y - 1.0) < 0.05
        assert fake.sim.bumps == []  # the walls were in its map


def test_firmware_frame_places_the_dock(world, token):
    with FakeFirmware(
        world, host="127.0.0.23", token=token, dock_mm=(25300, 25800), dock_heading=math.pi / 2
    ) as fake:
        dock = world.start
        assert np.allclose(fake.frame.to_robot((dock.x, dock.y)), (25300, 25800))
        ahead = dock.compose(Pose(1.0, 0.0, 0.0))  # 1 m in front of the dock
        assert np.allclose(fake.frame.to_robot((ahead.x, ahead.y)), (25300, 26800))
    with FakeFirmware(world, host="127.0.0.23", token=token) as fake:
        assert np.allclose(fake.frame.to_robot((dock.x, dock.y)), DOCK_MM)


def test_zoned_clean_then_stop(world, token):
    with FakeFirmware(world, host="127.0.0.24", token=token, speed=40) as fake:
        vac = client(fake.host, token)
        lo = np.round(fake.frame.to_robot((2.6, 0.6))).astype(int)
        hi = np.round(fake.frame.to_robot((4.0, 1.4))).astype(int)
        zone = [int(min(lo[0], hi[0])), int(min(lo[1], hi[1]))]
        zone += [int(max(lo[0], hi[0])), int(max(lo[1], hi[1])), 1]
        assert vac.zoned_clean([zone]) == ["ok"]
        status = vac.status()
        assert status.state_code == 17 and status.in_zone_cleaning
        assert wait_for(lambda: vac.status().clean_area > 0.3)
        vac.stop()
        status = vac.status()
        assert status.state_code == 3 and not status.in_zone_cleaning
        t = fake.sim.time
        time.sleep(0.1)
        assert fake.sim.time == t  # the job is over
        with pytest.raises(DeviceError):
            vac.zoned_clean([[1, 2, 3]])


def test_segment_clean_sweeps_the_room_and_docks(world, token):
    with FakeFirmware(world, host="127.0.0.24", token=token, speed=400) as fake:
        vac = client(fake.host, token)
        rooms = dict(vac.get_room_mapping())
        assert set(rooms) == {16, 17, 18, 19, 20, 21}
        with pytest.raises(DeviceError):
            vac.segment_clean([99])
        assert vac.segment_clean([21]) == ["ok"]  # the bathroom, across the hall
        status = vac.status()
        assert status.state_code == 18 and status.in_segment_cleaning
        assert wait_for(lambda: vac.status().state_code == 8, timeout=40)
        status = vac.status()
        # the bathroom has 8.5 m2 inside its walls, less the furniture and the toilet
        assert 4.0 < status.clean_area < 9.0
        assert status.clean_time.total_seconds() > 30
        assert fake.sim.true_pose.distance_to(world.start) < 0.1


def test_charge_returns_to_the_dock(world, token):
    with FakeFirmware(world, host="127.0.0.25", token=token, speed=200) as fake:
        vac = client(fake.host, token)
        vac.manual_start()
        vac.manual_control(0, 0.3, 1000)
        vac.manual_control(90, 0.0, 1000)
        vac.manual_control(0, 0.3, 1000)
        assert fake.sim.true_pose.distance_to(world.start) > 0.3
        vac.home()
        assert vac.status().state_code == 6
        assert wait_for(lambda: vac.status().state_code == 8)
        pose = fake.sim.true_pose
        assert math.hypot(pose.x - world.start.x, pose.y - world.start.y) < 0.05
        assert abs(pose.theta - world.start.theta) < 0.05


def test_unreachable_dock_is_error_23(world, token):
    with FakeFirmware(world, host="127.0.0.25", token=token, speed=200) as fake:
        vac = client(fake.host, token)
        dock = world.start
        corners = [dock.x - 0.5, dock.y - 0.5, dock.x + 0.5, dock.y - 0.5]
        corners += [dock.x + 0.5, dock.y + 0.5, dock.x - 0.5, dock.y + 0.5]
        mm = np.round(fake.frame.to_robot(np.reshape(corners, (4, 2)))).astype(int).ravel()
        vac.manual_start()
        vac.manual_control(0, 0.3, 2000)
        assert vac.create_nogo_zone(*map(int, mm))
        vac.home()
        assert wait_for(lambda: vac.status().state_code == 12)
        status = vac.status()
        assert status.error_code == 23 and status.error == "Docking station not reachable"


def test_save_map_replaces_the_restrictions(world, token):
    with FakeFirmware(world, host="127.0.0.25", token=token, speed=200) as fake:
        vac = client(fake.host, token)
        assert vac.create_nogo_zone(25000, 26000, 25400, 26000, 25400, 26400, 25000, 26400)
        assert fake.restrictions == [[0, 25000, 26000, 25400, 26000, 25400, 26400, 25000, 26400]]
        assert vac.create_software_barrier(25000, 25000, 26000, 25000)
        assert fake.restrictions == [[1, 25000, 25000, 26000, 25000]]  # the zone is gone
        both = [[1, 1, 2, 3, 4], [0, 1, 1, 2, 1, 2, 2, 1, 2]]
        assert vac.send("save_map", both) == ["ok"]
        assert fake.restrictions == both
        with pytest.raises(DeviceError):
            vac.send("save_map", [[5, 1, 2]])
        assert vac.send("save_map", []) == ["ok"] and fake.restrictions == []
        # the firmware keeps out of a no-go zone: a target inside one is not reached
        target = (4.5, 2.5)
        box = np.array([(4.0, 2.0), (5.0, 2.0), (5.0, 3.0), (4.0, 3.0)])
        zone = np.round(fake.frame.to_robot(box)).astype(int).ravel().tolist()
        vac.send("save_map", [[0, *zone]])
        mm = np.round(fake.frame.to_robot(target)).astype(int)
        vac.goto(int(mm[0]), int(mm[1]))
        assert wait_for(lambda: vac.status().state_code == 3)
        pose = fake.sim.true_pose
        assert not (4.0 < pose.x < 5.0 and 2.0 < pose.y < 3.0)


# ------------------------------------------------------------------------------ faults
def test_wrong_token_gets_no_answer(world, token):
    with FakeFirmware(world, host="127.0.0.26", token=token) as fake:
        vac = client(fake.host, Token.generate())
        start = time.monotonic()
        with pytest.raises(DeviceException, match="No response"):
            vac.status()
        assert time.monotonic() - start < 10
        assert fake.stats.undecodable >= 1 and fake.stats.answered >= 1  # only hellos


def test_drops_and_delays_are_seeded(world, token):
    counts = []
    for _ in range(2):
        with FakeFirmware(world, host="127.0.0.26", token=token, drop=0.3, seed=9) as fake:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(0.05)
            hello = bytes.fromhex("21310020" + "ff" * 28)
            answered = []
            for _ in range(60):
                sock.sendto(hello, (fake.host, 54321))
                try:
                    answered.append(len(sock.recv(64)))
                except TimeoutError:
                    answered.append(0)
            sock.close()
            counts.append(answered)
            assert 0 < fake.stats.dropped_in + fake.stats.dropped_out < 60
    assert counts[0] == counts[1]
    with FakeFirmware(world, host="127.0.0.26", token=token, delay=0.99, delay_time=0.3) as fake:
        vac = client(fake.host, token)
        start = time.monotonic()
        assert vac.status().state_code == 8  # late answers still arrive within 0.5 s
        assert 0.25 < time.monotonic() - start < 5 and fake.stats.delayed >= 1


# ------------------------------------------------------------------------------ sensors
def read_lines(sock: socket.socket, until, timeout: float = 5.0) -> list[dict]:
    buf, lines = b"", []
    end = time.monotonic() + timeout
    sock.settimeout(0.2)
    while time.monotonic() < end and not until(lines):
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        buf += data
        *complete, buf = buf.split(b"\n")
        lines += [json.loads(x) for x in complete if x]
    return lines


def test_sensor_streams_carry_the_simulation(world, token):
    with FakeFirmware(world, host="127.0.0.27", token=token, seed=2) as fake:
        lidar = socket.create_connection(fake.lidar_url[6:].split(":"), timeout=2)
        tele = socket.create_connection(fake.telemetry_url[6:].split(":"), timeout=2)
        first = read_lines(tele, lambda lines: len(lines) >= 2)
        assert first[0]["type"] == "hello" and first[0]["cmd_tags"] is True
        assert first[0]["lds_rate"] == fake.config.lds_rate
        vac = client(fake.host, token)
        vac.manual_start()
        vac.manual_control(0, 0.25, 1000)
        last = vac.raw_id
        lines = read_lines(tele, lambda ls: any(x.get("done") for x in ls))
        scans = [x for x in lines if x["type"] == "scan"]
        done = [x for x in lines if x.get("done")]
        assert len(done) == 1 and done[0]["cmd"] == last and done[0]["t"] == 1.0
        odom = fake.sim.odometry()
        assert done[0]["x"] == odom.pose.x and done[0]["theta"] == odom.pose.theta
        assert [x["t"] for x in scans] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
        # the lidar bytes decode into the same number of turns
        data = b""
        lidar.settimeout(0.5)
        while len(data) < 5 * 1980:
            data += lidar.recv(65536)
        decoder = LdsDecoder("neato")
        turns = decoder.feed(data) + decoder.flush()
        assert len(turns) == 5 and decoder.checksum_errors == 0
        # and hold what the reference robot saw, to the millimetre of the wire format
        ref = SimulatedRobot(world, seed=2)
        ref.drive(0.25, 0.0, 1.0)
        for got, want in zip(turns, ref.scans(), strict=True):
            both = np.isfinite(got.ranges) & np.isfinite(want.ranges)
            assert both.mean() > 0.9
            assert np.abs(got.ranges[both] - want.ranges[both]).max() <= 0.0006
        lidar.close()
        tele.close()
