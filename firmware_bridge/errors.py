"""Errors raised by the firmware bridge: robots, sensors, recorded logs."""

from __future__ import annotations


class BridgeError(Exception):
    """Base class: a robot, a sensor stream or a recorded log failed."""


class LogFormatError(BridgeError):
    """A recorded log cannot be read at all (not a log, empty, corrupt compression)."""


class WorldError(BridgeError):
    """A simulator world (floor plan PNG) is missing or not a floor plan."""


# the miIO bridge (firmware_bridge.miio_robot)
class RobotUnreachable(BridgeError):
    """Nothing answers the miIO handshake at the robot's address (off, asleep, wrong address)."""


class TokenRejected(BridgeError):
    """The robot answers the handshake but not our encrypted commands: the token is wrong."""


class RobotTimeout(BridgeError):
    """A command got no answer after every retry (it may or may not have run)."""


class FirmwareError(BridgeError):
    """The firmware answered with an error, or reports an error code; `code` and `method` say
    which (code is the RPC error code, or the robot's error_code for a robot in error)."""

    def __init__(self, message: str, *, code: int | None = None, method: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.method = method


class UnsupportedCommand(FirmwareError):
    """The firmware does not know the method (JSON-RPC error -32601)."""


class SensorError(BridgeError):
    """The lidar or telemetry stream cannot be opened, closed, or says nothing in time."""
