"""The embedded default home: a furnished 5-room flat described in metres, rendered to rasters.

The home is our own design (no data file, so it ships with the package and needs nothing else).
Coordinates are world metres, x right, y up; the floor spans x in [0, 11], y in [0, 9] minus a
recess in the bottom-right corner (the entrance landing of the building, outside the flat).
Every length is a multiple of the 0.05 m cell, so the rectangles render exactly.

    y=9 +-----------+----------------+----------------+
        | bedroom 1 |   bedroom 2    |   bathroom  :  |   (: glass shower screen)
        | (bed,     |  (bed, desk)   |             :  |
        | wardrobe) +---  -----------+------  --------+ y=6.4
        |           )       hall           (shoe rack)|
    y=5 +--------------------  -----------------  ----+
        |                         |                   |
        |     living room         )      kitchen      |
        | (sofa, coffee table)    |  (table, chairs)  |
        |                         |         +---------+ y=1.2
        |          [dock]         |         |  landing (outside)
    y=0 +-------------------------+---------+
       x=0                      x=6.5     x=8.6     x=11

Furniture the lidar sees is either a solid block (sofa, beds, wardrobe, counters) or, for tables,
chairs and the desk, four single-cell legs (the robot passes under the top, the lidar only hits
the legs). Obstacles below the lidar plane (`INVISIBLE`) are found by the bumper only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from maps.geometry import Pose

RESOLUTION = 0.05  # m per cell
MARGIN = 0.5  # m of outside around the outer walls
OUTER_WALL = 0.15  # m
LEG = 0.05  # m: a table or chair leg is one cell
LEG_INSET = 0.05  # m from the corner of the top to the leg


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle [x0, x1] x [y0, y1] in world metres."""

    x0: float
    y0: float
    x1: float
    y1: float

    def cells(self, origin: tuple[float, float], resolution: float) -> tuple[slice, slice]:
        """(rows, cols) slices of the raster cells the rectangle covers."""
        j0 = round((self.x0 - origin[0]) / resolution)
        j1 = round((self.x1 - origin[0]) / resolution)
        i0 = round((self.y0 - origin[1]) / resolution)
        i1 = round((self.y1 - origin[1]) / resolution)
        return slice(i0, i1), slice(j0, j1)

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


# The floor: union of these rectangles minus RECESS (inner faces of the outer walls).
FLOOR = (Rect(0.0, 0.0, 11.0, 9.0),)
RECESS = (Rect(8.6, 0.0, 11.0, 1.2),)

# Rooms (floor rectangles between the wall faces), for tests and for people reading the plan.
ROOMS: dict[str, Rect] = {
    "living room": Rect(0.0, 0.0, 6.5, 5.0),
    "kitchen": Rect(6.6, 0.0, 11.0, 5.0),  # minus the recess
    "hall": Rect(3.5, 5.1, 11.0, 6.4),
    "bedroom 1": Rect(0.0, 5.1, 3.4, 9.0),
    "bedroom 2": Rect(3.5, 6.5, 7.5, 9.0),
    "bathroom": Rect(7.6, 6.5, 11.0, 9.0),
}

# Interior walls, 0.1 m thick; DOORS are cut out of them afterwards.
INTERIOR_WALLS = (
    Rect(0.0, 5.0, 11.0, 5.1),  # living room | kitchen  /  bedroom 1 | hall
    Rect(6.5, 0.0, 6.6, 5.0),  # living room | kitchen
    Rect(3.4, 5.1, 3.5, 9.0),  # bedroom 1 | hall, bedroom 2
    Rect(3.5, 6.4, 11.0, 6.5),  # hall | bedroom 2, bathroom
    Rect(7.5, 6.5, 7.6, 9.0),  # bedroom 2 | bathroom
)
DOORS: dict[str, Rect] = {
    "living room - hall": Rect(4.6, 5.0, 5.5, 5.1),
    "kitchen - hall": Rect(9.3, 5.0, 10.15, 5.1),
    "living room - kitchen": Rect(6.5, 2.6, 6.6, 3.5),
    "bedroom 1 - hall": Rect(3.4, 5.35, 3.5, 6.2),
    "bedroom 2 - hall": Rect(3.9, 6.4, 4.75, 6.5),
    "bathroom - hall": Rect(8.0, 6.4, 8.8, 6.5),
}

# Solid furniture the lidar sees (its body reaches the lidar plane).
FURNITURE: dict[str, Rect] = {
    "sofa": Rect(0.0, 1.0, 0.9, 3.2),
    "armchair": Rect(1.2, 0.0, 2.0, 0.8),
    "tv bench": Rect(6.05, 0.6, 6.5, 2.2),
    "bookshelf": Rect(0.3, 4.6, 2.3, 5.0),
    "plant": Rect(6.1, 4.6, 6.45, 4.95),
    "dock": Rect(4.3, 0.0, 4.7, 0.1),
    "kitchen counter": Rect(8.6, 1.2, 11.0, 1.8),
    "kitchen counter (side)": Rect(10.4, 1.8, 11.0, 4.2),
    "fridge": Rect(10.3, 4.2, 11.0, 4.9),
    "bed 1": Rect(0.9, 7.0, 2.5, 9.0),
    "nightstand 1a": Rect(0.4, 8.6, 0.85, 9.0),
    "nightstand 1b": Rect(2.55, 8.6, 3.0, 9.0),
    "wardrobe": Rect(0.0, 5.1, 0.6, 6.5),
    "bed 2": Rect(5.5, 7.2, 7.5, 8.6),
    "toilet": Rect(8.0, 8.3, 8.4, 9.0),
    "washbasin cabinet": Rect(8.8, 8.5, 9.6, 9.0),
    "washing machine": Rect(10.4, 6.5, 11.0, 7.1),
}

# Furniture on four thin legs: the rectangle is the top; only the legs are obstacles.
LEGGED: dict[str, Rect] = {
    "coffee table": Rect(1.4, 1.6, 2.4, 2.6),
    "dining table": Rect(7.4, 2.6, 8.8, 3.4),
    "chair 1": Rect(7.6, 2.05, 8.05, 2.5),
    "chair 2": Rect(8.15, 2.05, 8.6, 2.5),
    "chair 3": Rect(7.6, 3.5, 8.05, 3.95),
    "chair 4": Rect(8.15, 3.5, 8.6, 3.95),
    "desk": Rect(3.5, 8.4, 4.7, 9.0),
    "desk chair": Rect(3.9, 7.85, 4.35, 8.3),
}

# Obstacles below the lidar plane (0.1-0.3 m high, or glass): only the bumper finds them.
INVISIBLE: dict[str, Rect] = {
    "shoe rack (0.25 m)": Rect(9.8, 6.1, 10.9, 6.4),
    "glass shower screen": Rect(9.9, 7.9, 9.95, 9.0),
    "low shelf (0.2 m)": Rect(2.6, 4.7, 3.6, 5.0),
    "pet bowls": Rect(6.7, 0.1, 7.0, 0.3),
}

# The dock's pose: robot centre 3 cm in front of the dock, facing into the living room.
START = Pose(4.5, 0.30, math.pi / 2)

NAME = "default_home"


def legs(top: Rect) -> list[Rect]:
    """The four one-cell legs under a table or chair top."""
    xa, xb = top.x0 + LEG_INSET, top.x1 - LEG_INSET - LEG
    ya, yb = top.y0 + LEG_INSET, top.y1 - LEG_INSET - LEG
    return [Rect(x, y, x + LEG, y + LEG) for x in (xa, xb) for y in (ya, yb)]


def render(
    resolution: float = RESOLUTION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Rasterise the home: (walls, invisible, outside, origin); rasters (H, W) bool, row i <-> y.

    The raster covers the floor, the 0.15 m outer walls and `MARGIN` of outside around them; the
    outer wall is the floor footprint grown by its thickness (square corners).
    """
    pad = OUTER_WALL + MARGIN
    x_min = min(r.x0 for r in FLOOR) - pad
    y_min = min(r.y0 for r in FLOOR) - pad
    x_max = max(r.x1 for r in FLOOR) + pad
    y_max = max(r.y1 for r in FLOOR) + pad
    origin = (x_min, y_min)
    h = round((y_max - y_min) / resolution)
    w = round((x_max - x_min) / resolution)

    floor = np.zeros((h, w), bool)
    for r in FLOOR:
        floor[r.cells(origin, resolution)] = True
    for r in RECESS:
        floor[r.cells(origin, resolution)] = False
    k = 2 * round(OUTER_WALL / resolution) + 1
    footprint = cv2.dilate(floor.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    outside = ~footprint
    walls = footprint & ~floor

    for r in INTERIOR_WALLS:
        walls[r.cells(origin, resolution)] = True
    for r in DOORS.values():
        walls[r.cells(origin, resolution)] = False
    for r in FURNITURE.values():
        walls[r.cells(origin, resolution)] = True
    for top in LEGGED.values():
        for leg in legs(top):
            walls[leg.cells(origin, resolution)] = True

    invisible = np.zeros((h, w), bool)
    for r in INVISIBLE.values():
        invisible[r.cells(origin, resolution)] = True
    invisible &= ~walls & ~outside
    return walls, invisible, outside, origin
