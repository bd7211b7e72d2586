"""Errors raised by the maps package."""

from __future__ import annotations


class MapError(Exception):
    """Base class: something is wrong with a map, a floor plan or a map file."""


class CorruptMap(MapError):
    """A map or floor-plan file cannot be decoded (the message names the file and where)."""


class MapNotFound(MapError):
    """A map id or file does not exist."""
