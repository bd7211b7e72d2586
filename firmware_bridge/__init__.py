"""The only package that talks to a robot or a sensor (real, simulated or recorded)."""

from firmware_bridge.errors import BridgeError, LogFormatError, WorldError
from firmware_bridge.logs import LogReader, LogScan, LogSummary, read_log, summarize
from firmware_bridge.robot import Robot
from firmware_bridge.simulated import Bump, SimConfig, SimulatedRobot
from firmware_bridge.world import World

__all__ = [
    "BridgeError",
    "Bump",
    "LogFormatError",
    "LogReader",
    "LogScan",
    "LogSummary",
    "Robot",
    "SimConfig",
    "SimulatedRobot",
    "World",
    "WorldError",
    "read_log",
    "summarize",
]
