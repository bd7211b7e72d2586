"""Errors raised by the navigation package."""

from __future__ import annotations


class NavigationError(Exception):
    """Base class: localization, planning or a mission failed."""


class EvaluationError(NavigationError):
    """A poses or relations file is missing or malformed, or no relation matched a pose."""
