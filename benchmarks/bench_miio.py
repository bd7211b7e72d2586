"""The miIO bridge over loopback: what a command costs through python-miio and the fake firmware.

`pytest benchmarks/bench_miio.py --benchmark-only`. Cases: one get_status round trip; one 0.5 s
drive (remote-control moves on python-miio's omega grid, the telemetry's end-of-move line, the
lidar turns decoded), out and back so the robot stays in place; the same drive with 20 % of the
datagrams lost each way (a loss costs the 0.02 s resend timeout of `FakeFirmware.connect` and
its backoff).
A real robot answers in tens of ms over Wi-Fi and moves in real time; these figures are the
bridge's own overhead.
"""

from __future__ import annotations

import pytest

from firmware_bridge.fake_firmware import FakeFirmware
from firmware_bridge.secrets import Token
from firmware_bridge.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World.default()


@pytest.fixture(params=[0.0, 0.2], ids=["no-loss", "drop20"])
def robot(request, world):
    with FakeFirmware(
        world, host="127.0.0.41", token=Token.generate(), drop=request.param, seed=1
    ) as fake:
        with fake.connect() as robot:
            robot.drive(0.0, 0.0, 0.1)  # enter remote control before timing
            yield robot


def test_status_round_trip(benchmark, robot):
    benchmark(robot.status)


def test_drive_half_a_second(benchmark, robot):
    def out_and_back() -> None:
        robot.drive(0.2, 0.33, 0.5)
        robot.drive(-0.2, -0.33, 0.5)
        robot.scans()

    benchmark.pedantic(out_and_back, rounds=30, iterations=1, warmup_rounds=1)
