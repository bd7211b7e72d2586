"""Errors raised by the navigation package."""

from __future__ import annotations


class NavigationError(Exception):
    """Base class: localization, planning or a mission failed."""
