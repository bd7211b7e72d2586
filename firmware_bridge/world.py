"""Simulator worlds: what the lidar sees, what only the bumper finds, and what is outside.

Rasters follow maps.grid: (H, W) bool, row i <-> y (up), column j <-> x (right), `origin` = world
xy (metres) of the outer corner of cell (0, 0), `resolution` metres per cell.

Floor-plan PNGs (the ROS map_saver / ipa convention, 0.05 m per pixel):
- grey >= 250 is free floor (white; some plans use 254);
- grey 205 +- 3 is outside / unknown;
- anything else (black walls, anti-aliased greys of the drawn furniture) is occupied;
- an alpha channel, where present, makes transparent pixels (alpha < 128) outside.
Colour and grey+alpha images are converted to grey first; 16-bit images are scaled to 8 bits.
PNG row 0 is the top of the image, raster row 0 is the bottom (y = 0): rows are flipped on
loading, so world y grows upwards as everywhere else. The origin of a PNG world is (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from firmware_bridge import worlds
from firmware_bridge.errors import WorldError
from maps.geometry import Pose

FREE_MIN = 250  # grey value: free floor at or above
OUTSIDE_GREY = 205  # grey value of outside / unknown ...
OUTSIDE_TOLERANCE = 3  # ... give or take this much
ROBOT_RADIUS = 0.17  # m: the body the start pose must leave room for


@dataclass(slots=True)
class World:
    """A simulator world: what is solid for the lidar, what only the bumper finds, and outside.

    `walls`, `invisible` and `outside` are disjoint (H, W) bool rasters (axes in the module
    docstring). `start` is the dock / start pose, on free floor with room for the robot body.
    """

    name: str
    walls: np.ndarray  # (H, W) bool: lidar-visible obstacles (walls, furniture, table legs)
    invisible: np.ndarray  # (H, W) bool: obstacles below the lidar plane (bumper only)
    outside: np.ndarray  # (H, W) bool: unknown / outside the home (never reachable; solid)
    resolution: float = 0.05  # m per cell
    origin: tuple[float, float] = (0.0, 0.0)  # world xy of the corner of cell (0, 0), metres
    start: Pose = Pose()  # dock / start pose

    def __post_init__(self) -> None:
        rasters = [np.asarray(a) for a in (self.walls, self.invisible, self.outside)]
        if rasters[0].ndim != 2 or any(a.shape != rasters[0].shape for a in rasters):
            shapes = ", ".join(str(a.shape) for a in rasters)
            raise ValueError(f"walls, invisible, outside must be same-size 2-D rasters: {shapes}")
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0 m, got {self.resolution}")
        walls, invisible, outside = (np.ascontiguousarray(a, dtype=bool) for a in rasters)
        # keep the classes disjoint: a wall wins over outside, both win over invisible
        self.walls = walls
        self.outside = outside & ~walls
        self.invisible = invisible & ~walls & ~self.outside
        self.origin = (float(self.origin[0]), float(self.origin[1]))

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape

    @property
    def free(self) -> np.ndarray:
        """(H, W) bool floor: not walls, not invisible, not outside."""
        return ~(self.walls | self.invisible | self.outside)

    @property
    def solid(self) -> np.ndarray:
        """(H, W) bool: what the robot body cannot enter (walls, invisible obstacles, outside)."""
        return self.walls | self.invisible | self.outside

    @property
    def area_m2(self) -> float:
        """Free floor area, square metres."""
        return float(np.count_nonzero(self.free)) * self.resolution**2

    def reachable(self, radius: float, room: np.ndarray | None = None) -> np.ndarray:
        """(H, W) bool: where the centre of a round body of `radius` m can go from the start
        (4-connected, at least `radius` from the edge of anything solid); everywhere it fits
        when it does not fit at the start. `room`: `robot_room(self.free, self.resolution,
        0.0)`, when the caller has it already."""
        if room is None:
            room = robot_room(self.free, self.resolution, 0.0)
        fits = room >= radius
        _, labels = cv2.connectedComponents(fits.astype(np.uint8), connectivity=4)
        i, j = self.cell_of(self.start.x, self.start.y)
        h, w = self.shape
        if 0 <= i < h and 0 <= j < w and labels[i, j] > 0:
            return labels == labels[i, j]
        return fits

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) of the cell holding world point (x, y); may lie outside the raster."""
        j = int(np.floor((x - self.origin[0]) / self.resolution))
        i = int(np.floor((y - self.origin[1]) / self.resolution))
        return i, j

    @classmethod
    def from_png(
        cls,
        path: str | Path,
        invisible: str | Path | None = None,
        resolution: float = 0.05,
    ) -> World:
        """Load a floor plan PNG (conventions in the module docstring).

        `invisible` is an optional PNG of the same size whose dark cells are obstacles below the
        lidar plane (cells already wall or outside in the plan stay what they are). The start pose
        is the free spot with the most clearance in the largest region the robot body can
        reach, heading 0. Raises WorldError naming the file when it is missing, not an image,
        or not a floor plan.
        """
        path = Path(path)
        grey, alpha = _read_grey(path)
        free = grey >= FREE_MIN
        outside = np.abs(grey.astype(np.int16) - OUTSIDE_GREY) <= OUTSIDE_TOLERANCE
        if alpha is not None:
            outside |= alpha < 128
            free &= alpha >= 128
        walls = ~free & ~outside
        if not free.any():
            raise WorldError(
                f"{path}: no free floor (no pixel with grey >= {FREE_MIN}); "
                "expected a floor plan with white free space"
            )
        hidden = np.zeros_like(free)
        if invisible is not None:
            invisible = Path(invisible)
            grey_inv, alpha_inv = _read_grey(invisible)
            if grey_inv.shape != grey.shape:
                raise WorldError(
                    f"{invisible}: the --invisible PNG is {grey_inv.shape[1]}x{grey_inv.shape[0]} "
                    f"px but the floor plan {path.name} is {grey.shape[1]}x{grey.shape[0]} px; "
                    "they must be the same size"
                )
            dark = grey_inv < FREE_MIN
            dark &= np.abs(grey_inv.astype(np.int16) - OUTSIDE_GREY) > OUTSIDE_TOLERANCE
            if alpha_inv is not None:
                dark &= alpha_inv >= 128
            hidden = dark & free
        # PNG row 0 is the top; raster row 0 is y = 0 (the bottom)
        walls, hidden, outside = walls[::-1], hidden[::-1], outside[::-1]
        world = cls(path.stem, walls, hidden, outside, resolution, (0.0, 0.0))
        try:
            world.start = _roomiest_spot(world.free, resolution, (0.0, 0.0), ROBOT_RADIUS)
        except ValueError as exc:
            raise WorldError(f"{path}: {exc}") from exc
        return world

    @classmethod
    def default(cls) -> World:
        """The embedded default home (firmware_bridge.worlds): 77 m2 of floor, five rooms and a
        hall, furnished, with four lidar-invisible obstacles; starts at the dock."""
        walls, invisible, outside, origin = _default_rasters()
        return cls(
            worlds.NAME,
            walls.copy(),
            invisible.copy(),
            outside.copy(),
            worlds.RESOLUTION,
            origin,
            worlds.START,
        )


@lru_cache(maxsize=1)
def _default_rasters() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    return worlds.render(worlds.RESOLUTION)


def _read_grey(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey, alpha) uint8 (H, W) images of a PNG, image row 0 at the top; alpha may be None."""
    if not path.exists():
        raise WorldError(f"{path}: no such file")
    if not path.is_file():
        raise WorldError(f"{path}: not a file")
    try:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # pragma: no cover - OpenCV reports most failures as None
        raise WorldError(f"{path}: not a readable image ({exc})") from exc
    if img is None:
        raise WorldError(f"{path}: not a readable image (expected a floor plan PNG)")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise WorldError(f"{path}: unsupported pixel type {img.dtype}; expected 8- or 16-bit")
    if img.ndim == 2:
        return img, None
    channels = img.shape[2] if img.ndim == 3 else 0
    if channels == 1:
        return img[:, :, 0], None
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), None
    if channels == 4:  # BGRA; OpenCV also reads grey+alpha (LA) PNGs this way
        return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY), img[:, :, 3]
    raise WorldError(
        f"{path}: image with shape {img.shape} cannot be read as a floor plan; "
        "expected grey, grey+alpha, RGB or RGBA"
    )


def robot_room(free: np.ndarray, resolution: float, radius: float) -> np.ndarray:
    """(H, W) float32: clearance (m) of each cell centre, where a robot of `radius` fits (> 0).

    Clearance is the distance from the cell centre to the nearest non-free cell's edge (the
    centre-to-centre distance less half a cell) minus `radius`; <= 0 where the body does not fit.
    """
    # beyond the raster is not floor: pad with a ring of non-free cells
    padded = np.pad(np.ascontiguousarray(free, dtype=np.uint8), 1, constant_values=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return (dist - 0.5) * resolution - radius


def _roomiest_spot(
    free: np.ndarray, resolution: float, origin: tuple[float, float], radius: float
) -> Pose:
    """The cell centre with the most clearance in the largest region a robot disc can reach."""
    room = robot_room(free, resolution, radius)
    fits = room >= 0.0
    if not fits.any():
        raise ValueError(f"no free spot wide enough for a robot of radius {radius} m")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fits.astype(np.uint8), connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    score = np.where(labels == largest, room, -np.inf)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    return Pose(origin[0] + (j + 0.5) * resolution, origin[1] + (i + 0.5) * resolution, 0.0)
