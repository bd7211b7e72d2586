"""Occupancy-grid SLAM: scan matching, submaps, pose graph, loop closure."""

from navigation.slam.correlative import Match, MatchGrid, SearchWindow
from navigation.slam.posegraph import OptimizeResult, PoseGraph, load_g2o
from navigation.slam.slam import Slam, SlamConfig, SlamStats

__all__ = [
    "Match",
    "MatchGrid",
    "OptimizeResult",
    "PoseGraph",
    "SearchWindow",
    "Slam",
    "SlamConfig",
    "SlamStats",
    "load_g2o",
]
