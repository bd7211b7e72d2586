"""Simulated vacuum speed in the default home: one LDS revolution (target: median <= 1 ms), and
one drive command."""

from __future__ import annotations

import pytest

from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World


@pytest.fixture(scope="module")
def robot() -> SimulatedRobot:
    robot = SimulatedRobot(World.default(), seed=0)
    robot.drive(0.0, 0.5, 0.4)  # JIT warm-up: two revolutions
    robot.scans()
    return robot


def one_revolution(robot: SimulatedRobot) -> None:
    robot.drive(0.0, 0.5, 0.2)  # turning in place, so the scan is taken while moving
    (scan,) = robot.scans()
    assert len(scan) == 360


def test_lds_scan_default_home_360beams(benchmark, robot):
    """One 360-beam revolution at 5 Hz, turning, with the 20 physics steps it spans."""
    benchmark(one_revolution, robot)


def forth_and_back(robot: SimulatedRobot) -> None:
    robot.drive(0.3, 0.0, 0.1)
    robot.drive(-0.3, 0.0, 0.1)


def test_drive_command_default_home_10steps(benchmark, robot):
    """Two 0.1 s drive commands (10 physics steps each) in the open living room."""
    robot.scans()
    benchmark(forth_and_back, robot)
    robot.scans()
