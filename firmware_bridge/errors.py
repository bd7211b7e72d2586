"""Errors raised by the firmware bridge: robots, sensors, recorded logs."""

from __future__ import annotations


class BridgeError(Exception):
    """Base class: a robot, a sensor stream or a recorded log failed."""


class LogFormatError(BridgeError):
    """A recorded log cannot be read at all (not a log, empty, corrupt compression)."""


class WorldError(BridgeError):
    """A simulator world (floor plan PNG) is missing or not a floor plan."""
