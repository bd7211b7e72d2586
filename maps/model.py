"""A whole floor map as vacnav keeps it: the grid plus rooms, restrictions, dock and what the
bumper found, in our world frame, with the transform back to the robot's own frame.

Every importer (`maps.formats.roborock`, `dreame`, `viomi`) returns a `MapDocument`; the store
saves and loads them; the exporters and `vacnav inspect` read them.

Units: metres and radians in the world frame (x right, y up, theta counter-clockwise). The label
raster `rooms` has the grid's shape and axes (row i <-> y up); 0 means "in no room".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maps.geometry import Pose
from maps.grid import OccupancyGrid

UNKNOWN, FREE, OCCUPIED = -1, 0, 1
# Log-odds written for cells whose state a vendor file states outright (the grid's own clamps).
FREE_LOG_ODDS = -2.0
OCCUPIED_LOG_ODDS = 3.5
# A cell is free or occupied past these probabilities (ROS map_server's defaults).
FREE_THRESH = 0.196
OCCUPIED_THRESH = 0.65


@dataclass(frozen=True, slots=True)
class VendorFrame:
    """How a robot's own coordinates map to our world frame.

    world = (vendor - origin) * unit, both frames with y up. `vendor` names the firmware family
    ("roborock", "dreame", "viomi") or "vacnav" for maps we built; `unit` is metres per vendor
    unit (0.001 for millimetres); `origin` is the vendor position of our world (0, 0).
    """

    vendor: str = "vacnav"
    unit: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)

    def to_world(self, xy) -> np.ndarray:
        """(..., 2) vendor coordinates -> world metres."""
        return (np.asarray(xy, np.float64) - self.origin) * self.unit

    def to_vendor(self, xy) -> np.ndarray:
        """(..., 2) world metres -> vendor coordinates (floats; round as the vendor does)."""
        return np.asarray(xy, np.float64) / self.unit + self.origin


@dataclass(slots=True)
class Room:
    """A room (segment) of the label raster. `meta` keeps vendor details (material, source)."""

    id: int
    name: str = ""
    active: bool = False
    meta: dict = field(default_factory=dict)


@dataclass(slots=True)
class Obstacle:
    """A point obstacle: found by the bumper or cliff sensor, or reported by the vendor's camera.

    `x`, `y` in world metres; `count` how many times it was hit; times in seconds since the epoch.
    """

    x: float
    y: float
    label: str = ""
    source: str = "vendor"  # "bumper", "cliff" or "vendor"
    count: int = 1
    first_seen: float | None = None
    last_seen: float | None = None
    meta: dict = field(default_factory=dict)


@dataclass(slots=True)
class Restrictions:
    """No-go and no-mop zones as (K, 2) polygons, virtual walls as (2, 2) segments; world metres."""

    no_go: list[np.ndarray] = field(default_factory=list)
    virtual_walls: list[np.ndarray] = field(default_factory=list)
    no_mop: list[np.ndarray] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "no_go": len(self.no_go),
            "virtual_walls": len(self.virtual_walls),
            "no_mop": len(self.no_mop),
        }


@dataclass(slots=True)
class MapPath:
    """A polyline the robot drove or will drive: kind "path" or "predicted_path"; (N, 2) metres."""

    kind: str
    xy: np.ndarray


@dataclass(slots=True)
class MapDocument:
    """One floor map: grid, rooms, restrictions, dock, obstacle memory, paths, frame."""

    grid: OccupancyGrid
    rooms: np.ndarray | None = None  # (H, W) uint8 label raster, 0 = no room; None = no rooms
    room_info: dict[int, Room] = field(default_factory=dict)
    restrictions: Restrictions = field(default_factory=Restrictions)
    obstacles: list[Obstacle] = field(default_factory=list)
    dock: Pose | None = None
    robot: Pose | None = None
    paths: list[MapPath] = field(default_factory=list)
    go_to_target: tuple[float, float] | None = None
    active_zones: list[np.ndarray] = field(default_factory=list)  # (K, 2) polygons being cleaned
    frame: VendorFrame = field(default_factory=VendorFrame)
    meta: dict = field(default_factory=dict)  # vendor map id, firmware, source file ...

    def __post_init__(self) -> None:
        if self.rooms is not None:
            rooms = np.asarray(self.rooms)
            if rooms.shape != self.grid.shape:
                raise ValueError(f"rooms raster {rooms.shape} != grid {self.grid.shape}")
            self.rooms = np.ascontiguousarray(rooms, dtype=np.uint8)

    @classmethod
    def from_cells(
        cls,
        states: np.ndarray,
        resolution: float,
        origin: tuple[float, float],
        **kwargs,
    ) -> MapDocument:
        """A document from an (H, W) raster of UNKNOWN / FREE / OCCUPIED (row 0 = lowest y)."""
        states = np.asarray(states)
        lo = np.zeros(states.shape, np.float32)
        lo[states == FREE] = FREE_LOG_ODDS
        lo[states == OCCUPIED] = OCCUPIED_LOG_ODDS
        return cls(OccupancyGrid(lo, resolution, origin), **kwargs)

    def cell_states(self) -> np.ndarray:
        """(H, W) int8: UNKNOWN, FREE or OCCUPIED by map_server's thresholds."""
        prob = self.grid.probability()
        states = np.full(prob.shape, UNKNOWN, np.int8)
        states[prob < FREE_THRESH] = FREE
        states[prob > OCCUPIED_THRESH] = OCCUPIED
        return states

    def room_areas(self) -> dict[int, float]:
        """m2 of floor labelled with each room id (rooms without a cell get 0)."""
        areas = {rid: 0.0 for rid in self.room_info}
        if self.rooms is not None:
            cell = self.grid.resolution**2
            ids, counts = np.unique(self.rooms[self.rooms > 0], return_counts=True)
            for rid, n in zip(ids.tolist(), counts.tolist(), strict=True):
                areas[rid] = n * cell
        return areas

    def summary(self) -> dict:
        """What `vacnav inspect` reports: size, areas by state, rooms, restrictions, dock, robot."""
        states = self.cell_states()
        h, w = states.shape
        cell = self.grid.resolution**2

        def pose(p: Pose | None) -> dict | None:
            return None if p is None else {"x": p.x, "y": p.y, "theta": p.theta}

        areas = self.room_areas()
        return {
            "width": w,
            "height": h,
            "resolution": self.grid.resolution,
            "origin": list(self.grid.origin),
            "free_m2": round(float(np.count_nonzero(states == FREE)) * cell, 4),
            "occupied_m2": round(float(np.count_nonzero(states == OCCUPIED)) * cell, 4),
            "unknown_m2": round(float(np.count_nonzero(states == UNKNOWN)) * cell, 4),
            "rooms": [
                {
                    "id": rid,
                    "name": self.room_info[rid].name if rid in self.room_info else "",
                    "area_m2": round(areas[rid], 4),
                }
                for rid in sorted(areas)
            ],
            "dock": pose(self.dock),
            "robot": pose(self.robot),
            "restrictions": self.restrictions.counts(),
            "obstacles": [
                {"x": o.x, "y": o.y, "label": o.label, "source": o.source, "count": o.count}
                for o in self.obstacles
            ],
            "vendor": self.frame.vendor,
        }
