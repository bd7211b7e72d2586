"""Where am I, and where do I go: localization, planning, coverage, missions and the CLI."""

from navigation.errors import NavigationError

__all__ = ["NavigationError"]
