"""The map and everything spatial that is not navigation. Depends on nothing else of vacnav."""

from maps.errors import CorruptMap, MapError, MapNotFound
from maps.geometry import Pose, Trajectory, wrap_angle
from maps.grid import GridConfig, OccupancyGrid
from maps.raster import cast_rays
from maps.scan import Odometry, Scan

__all__ = [
    "CorruptMap",
    "GridConfig",
    "MapError",
    "MapNotFound",
    "OccupancyGrid",
    "Odometry",
    "Pose",
    "Scan",
    "Trajectory",
    "cast_rays",
    "wrap_angle",
]
