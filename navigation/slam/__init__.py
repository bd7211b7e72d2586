"""Occupancy-grid SLAM: scan matching, submaps, pose graph, loop closure."""
