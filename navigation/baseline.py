"""The "before" figure: reactive bump-and-turn, what a vacuum does once it has lost its map.

Drive straight until the bumper fires, back off a little, turn by a random angle away from the
contact, go on. No map, no lidar: the behaviour of a robot whose saved map is gone. Later
capabilities (relocalization, planning, coverage) are measured against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_bridge.robot import Robot


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """Bump-and-turn parameters (SI units)."""

    duration: float = 1200.0  # s of robot time
    speed: float = 0.25  # m/s forward
    turn_rate: float = 1.2  # rad/s while turning in place
    backoff: float = 0.05  # m reversed after a bump
    min_turn: float = math.radians(60)  # turn angle drawn from [min_turn, max_turn]
    max_turn: float = math.radians(180)
    step: float = 0.1  # s per drive command


def run_bump_and_turn(
    robot: Robot,
    config: BaselineConfig | None = None,
    seed: int = 0,
    observe: Callable[[], None] | None = None,
) -> int:
    """Drive `robot` with bump-and-turn for `config.duration` seconds of robot time.

    `observe` is called after every drive command (for recording the path). Returns the number
    of turns made.
    """
    config = config or BaselineConfig()
    rng = np.random.default_rng(seed)
    end = robot.time + config.duration
    turns = 0

    def drive(v: float, w: float, seconds: float) -> bool:
        bumped = False
        while seconds > 1e-9 and robot.time < end:
            dt = min(config.step, seconds)
            bumped |= robot.drive(v, w, dt)
            seconds -= dt
            if observe is not None:
                observe()
            if bumped and v > 0:
                break
        return bumped

    while robot.time < end:
        if not drive(config.speed, 0.0, config.step):
            continue
        # bumped: back off, then turn away by a random angle in a random direction
        drive(-config.speed, 0.0, config.backoff / config.speed)
        angle = rng.uniform(config.min_turn, config.max_turn)
        direction = 1.0 if rng.random() < 0.5 else -1.0
        drive(0.0, direction * config.turn_rate, angle / config.turn_rate)
        turns += 1
    return turns
