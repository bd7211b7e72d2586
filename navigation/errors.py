"""Errors raised by the navigation package."""

from __future__ import annotations


class NavigationError(Exception):
    """Base class: localization, planning or a mission failed."""


class EvaluationError(NavigationError):
    """A poses or relations file is missing or malformed, or no relation matched a pose."""


class NoPathFound(NavigationError):
    """The planner found no path: the start or goal is blocked, or the goal is not reachable.

    `reason` is "start", "goal" (that end lies on an obstacle, in unknown space, outside the map
    or too close to an obstacle to be moved free) or "unreachable" (both ends are free but not
    connected); `start` and `goal` are the requested world points (metres).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "unreachable",
        start: tuple[float, float] | None = None,
        goal: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.start = start
        self.goal = goal


def check_numbers(config: object, positive: str = "", non_negative: str = "") -> None:
    """ValueError naming the field unless each field of `config` named in `positive` (space
    separated) is a finite number > 0 and each in `non_negative` one >= 0."""
    import math

    for names, strict in ((positive, True), (non_negative, False)):
        for name in names.split():
            value = getattr(config, name)
            number = isinstance(value, int | float) and math.isfinite(value)
            if not (number and (value > 0 if strict else value >= 0)):
                raise ValueError(
                    f"{type(config).__name__}.{name} must be a number {'>' if strict else '>='} 0, "
                    f"got {value!r}"
                )
