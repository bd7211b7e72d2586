"""Rooms: split the free space of a map into rooms, describe their doorways, score a split.

Rasters follow maps.grid: (H, W), row i <-> y (up), column j <-> x (right), `origin` = world xy
(metres) of the outer corner of cell (0, 0). Labels are int32: 0 = not a room (not free), 1..N.

Method (ours, from the distance-transform family of the survey below): the clearance of every
free cell (Euclidean distance to the nearest non-free cell) is a landscape whose hills are room
centres and whose passes are doorways. Each cell climbs to its hill by steepest ascent, which
splits the floor into basins; two touching regions stay apart only when the pass between them
(the highest clearance on their shared border, half the opening's width) is narrower than
`door_ratio` times the peak clearance of the smaller of the two, i.e. when the opening is a
constriction for both. Regions are merged along their widest passes first. Regions under
`min_room_area` then join the neighbour they share the widest pass with. Small free-standing
obstacle blobs (table and chair legs, bins, plants: `clutter_size`) are ignored while splitting,
so furniture does not cut a room into pieces. The pass between two clearance hills is the
doorway point of the survey's Voronoi method (a critical point: a local minimum of clearance
along the medial axis); instead of its pruning and merging heuristics, the constriction ratio
above decides which passes are doorways.

Scoring (`score_segmentation`): R. Bormann, F. Jordan, W. Li, J. Hampp, M. Hägele, "Room
Segmentation: Survey, Implementation, and Analysis", ICRA 2016. The exact definition is taken
from the authors' evaluation code, ipa320/ipa_coverage_planning
ipa_room_segmentation/common/src/evaluation_segmentation.cpp (EvaluationSegmentation::
computePrecisionRecall, read at commit 0d8e63ec): regions of 100 cells or fewer are dropped from
both the ground truth and the segmentation; for each segment the ground-truth room it overlaps
most gives precision = overlap / segment area; for each ground-truth room the segment that
overlaps it most gives recall = overlap / room area; the reported figures are the means over
segments and over rooms ("micro" in that code; evaluation_numeric_properties.cpp tabulates them
as the "average of recalls / precisions"), and the pixel-weighted variants ("macro": summed
overlaps / summed areas). The ground truth image has separator lines drawn across
doorways; its rooms are the 8-connected regions of grey > 250 (cv::floodFill with connectivity
8 after cv::threshold at 250). The paper's own text could not be read here (only its abstract),
so the definition rests on that code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage as ndi

from maps.grid import OccupancyGrid
from maps.model import FREE_THRESH
from navigation.errors import NavigationError


class NoFreeSpace(NavigationError, ValueError):
    """The map given to `segment_rooms` has no free cell, so there is no room to find."""


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """How rooms are split. The same defaults serve every map (metres, m²)."""

    # An opening is a doorway when its half-width is below door_ratio x the peak clearance of
    # the smaller region it joins (0 < door_ratio <= 1; higher = more splits).
    door_ratio: float = 0.7
    min_room_area: float = 1.5  # m²: smaller regions join a neighbour (a WC is about 1.5-2 m²)
    clutter_size: float = 0.6  # m: free-standing obstacle blobs that fit in a square this big

    def __post_init__(self) -> None:
        if not (math.isfinite(self.door_ratio) and 0.0 < self.door_ratio <= 1.0):
            raise ValueError(f"door_ratio must be in (0, 1], got {self.door_ratio}")
        if not (math.isfinite(self.min_room_area) and self.min_room_area >= 0.0):
            raise ValueError(
                f"min_room_area must be a finite area >= 0 m², got {self.min_room_area}"
            )
        if not (math.isfinite(self.clutter_size) and self.clutter_size >= 0.0):
            raise ValueError(
                f"clutter_size must be a finite length >= 0 m, got {self.clutter_size}"
            )


@dataclass(frozen=True, slots=True)
class Room:
    """One room: its id in the label raster, floor area, and two reference points (world xy, m).

    `centroid` is the mean of the room's cell centres (it can fall outside an L-shaped room);
    `centre` is the room's cell farthest from any obstacle, always inside the room.
    """

    id: int
    area: float  # m²
    centroid: tuple[float, float]
    centre: tuple[float, float]
    neighbours: tuple[int, ...]  # ids of the rooms it shares a doorway with, ascending


@dataclass(frozen=True, slots=True)
class Door:
    """Where two rooms touch: the cells on both sides of their border, and its middle.

    `cells` is (K, 2) int (row, col) of free cells of either room that have a 4-neighbour in the
    other; `centre` is the world xy of the most open of them (the middle of the doorway); `width`
    is the opening's width through that cell, about 2 x its clearance (m).
    """

    rooms: tuple[int, int]  # (a, b), a < b
    cells: np.ndarray
    centre: tuple[float, float]
    width: float  # m


@dataclass(slots=True)
class Segmentation:
    """Rooms of a map: a label raster (axes in the module docstring), the rooms and doorways."""

    labels: np.ndarray  # (H, W) int32, 0 = not free, 1..N = room id
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy of the corner of cell (0, 0)
    rooms: list[Room]  # ordered by id (rooms[k].id == k + 1)
    doors: list[Door]  # ordered by (rooms, first cell)

    def room(self, room_id: int) -> Room:
        """The room with this id; raises KeyError naming the valid range."""
        if not 1 <= room_id <= len(self.rooms):
            raise KeyError(f"no room {room_id}: ids run from 1 to {len(self.rooms)}")
        return self.rooms[room_id - 1]

    @property
    def adjacency(self) -> dict[int, tuple[int, ...]]:
        """Room id -> ids of the rooms it touches through a doorway."""
        return {room.id: room.neighbours for room in self.rooms}

    def doors_between(self, a: int, b: int) -> list[Door]:
        """The doorways joining rooms a and b (empty when they do not touch)."""
        pair = (min(a, b), max(a, b))
        return [door for door in self.doors if door.rooms == pair]


def segment_rooms(
    grid_or_free: OccupancyGrid | np.ndarray,
    resolution: float | None = None,
    origin: tuple[float, float] | None = None,
    config: RoomConfig | None = None,
) -> Segmentation:
    """Split the free space of a map into rooms (method in the module docstring).

    `grid_or_free` is an OccupancyGrid (free = occupancy probability below map_server's 0.196;
    its resolution and origin are used) or an (H, W) bool mask, True = free, with `resolution`
    (m per cell) and optionally `origin` (default (0, 0)). Every free cell ends up in exactly one
    room. Raises NoFreeSpace when no cell is free, ValueError/TypeError on malformed input.
    """
    free, resolution, origin = _free_mask(grid_or_free, resolution, origin)
    config = config or RoomConfig()
    if not free.any():
        raise NoFreeSpace(
            f"no free cell in the {free.shape[0]}x{free.shape[1]} map: nothing to split into "
            "rooms (is free marked True, and has the map been explored?)"
        )
    labels = _room_labels(free, resolution, config)
    return _describe(labels, free, resolution, origin)


# --------------------------------------------------------------------------------------------
# Scoring against a ground truth


@dataclass(frozen=True, slots=True)
class SegmentationScore:
    """Bormann et al. 2016 precision and recall of a segmentation (definition in the module
    docstring); all four in [0, 1]."""

    precision: float  # mean over segments of (overlap with its best room) / segment area
    recall: float  # mean over ground-truth rooms of (overlap with its best segment) / room area
    precision_area: float  # summed best overlaps / summed segment areas
    recall_area: float  # summed best overlaps / summed room areas
    segments: int  # segments scored (more than `drop_cells` cells)
    truth_rooms: int  # ground-truth rooms scored


def score_segmentation(
    labels: np.ndarray, truth: np.ndarray, drop_cells: int = 100
) -> SegmentationScore:
    """Score a label raster against a ground-truth label raster of the same shape (0 = none).

    Regions of `drop_cells` cells or fewer are left out on both sides (the authors' code uses
    100 at 0.05 m per cell). Raises ValueError when the shapes differ, the labels are not
    integers, or either side has no region left to score.
    """
    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.shape != truth.shape or labels.ndim != 2:
        raise ValueError(
            f"labels {labels.shape} and truth {truth.shape} must be 2-D rasters of the same shape"
        )
    for name, arr in (("labels", labels), ("truth", truth)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be an integer label raster, got dtype {arr.dtype}")
    seg_ids, seg_area = _kept_regions(labels, drop_cells)
    gt_ids, gt_area = _kept_regions(truth, drop_cells)
    if len(seg_ids) == 0 or len(gt_ids) == 0:
        raise ValueError(
            f"nothing to score: {len(seg_ids)} segments and {len(gt_ids)} ground-truth rooms "
            f"have more than {drop_cells} cells"
        )
    both = np.isin(labels, seg_ids) & np.isin(truth, gt_ids)
    si = np.searchsorted(seg_ids, labels[both])
    gi = np.searchsorted(gt_ids, truth[both])
    pair, count = np.unique(si.astype(np.int64) * len(gt_ids) + gi, return_counts=True)
    best_for_seg = np.zeros(len(seg_ids))
    best_for_gt = np.zeros(len(gt_ids))
    np.maximum.at(best_for_seg, pair // len(gt_ids), count)
    np.maximum.at(best_for_gt, pair % len(gt_ids), count)
    return SegmentationScore(
        precision=float(np.mean(best_for_seg / seg_area)),
        recall=float(np.mean(best_for_gt / gt_area)),
        precision_area=float(best_for_seg.sum() / seg_area.sum()),
        recall_area=float(best_for_gt.sum() / gt_area.sum()),
        segments=len(seg_ids),
        truth_rooms=len(gt_ids),
    )


def truth_from_separators(
    grey: np.ndarray, connectivity: int = 8, free_above: int = 250
) -> np.ndarray:
    """Ground-truth labels (int32, 0 = none) from a plan with separators drawn across doorways.

    A room is a connected region of grey values above `free_above`: 8-connected for the ipa
    `_gt_segmentation.png` files (as their evaluation code fills them), 4-connected for plans
    whose separators are 1-cell 8-connected lines (our homes' `_rooms.png`). Pass the grey image
    in raster axes (flip a PNG's rows first, as World.from_png does).
    """
    grey = np.asarray(grey)
    if grey.ndim != 2 or grey.size == 0:
        raise ValueError(f"expected a non-empty 2-D grey image, got shape {grey.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = (grey > free_above).astype(np.uint8)
    _, labels = cv2.connectedComponents(mask, connectivity=connectivity, ltype=cv2.CV_32S)
    return labels


def _kept_regions(labels: np.ndarray, drop_cells: int) -> tuple[np.ndarray, np.ndarray]:
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    keep = counts > drop_cells
    return ids[keep], counts[keep].astype(np.float64)


# --------------------------------------------------------------------------------------------
# A picture


# Ten pale BGR colours of well-separated hues, in an order where neighbours in the list differ
# most; touching rooms get different ones (greedy colouring of the room graph).
_PALETTE = cv2.cvtColor(
    np.array([[[h, 90, 255] for h in (0, 108, 36, 144, 72, 162, 18, 126, 54, 90)]], np.uint8),
    cv2.COLOR_HSV2BGR,
)[0]


def draw_segmentation(
    seg: Segmentation,
    occupied: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    scale: int | None = None,
    caption: list[str] | None = None,
):
    """A maps.render.Picture of the rooms: each in a pale colour (touching rooms differ), its id
    at its centre, doorway middles as small diamonds.

    Cells outside every room are dark, or grey (unknown / outside) when `occupied` (bool raster)
    says which of them are obstacles. With `truth` (a ground-truth label raster), free cells in
    no ground-truth room (the drawn separators) are red, so the two splits can be compared.
    `caption` lines go in a band below.
    """
    from maps import render

    labels = seg.labels
    h, w = labels.shape
    scale = render.auto_scale((h, w)) if scale is None else max(1, int(scale))
    palette = _PALETTE
    colour_of = np.zeros(len(seg.rooms) + 1, np.int64)
    for room in sorted(seg.rooms, key=lambda r: (-len(r.neighbours), r.id)):
        taken = {colour_of[n] for n in room.neighbours if colour_of[n] > 0}
        # start the search at a colour that depends on the id, for variety
        free_colours = [c for c in range(1, len(palette) + 2) if c not in taken]
        shifted = [c for c in free_colours if c > room.id % len(palette)]
        colour_of[room.id] = (shifted or free_colours)[0]
    img = np.empty((h, w, 3), np.uint8)
    img[:] = render.WALL_DARK
    if occupied is not None:
        occupied = np.asarray(occupied, bool)
        if occupied.shape != labels.shape:
            raise ValueError(f"occupied {occupied.shape} != labels {labels.shape}")
        img[~occupied] = render.UNKNOWN_GREY
    inside = labels > 0
    img[inside] = palette[(colour_of[labels[inside]] - 1) % len(palette)]
    if truth is not None:
        truth = np.asarray(truth)
        if truth.shape != labels.shape:
            raise ValueError(f"truth {truth.shape} != labels {labels.shape}")
        img[inside & (truth == 0)] = (40, 40, 220)
    pic = render.raster_picture(img, seg.resolution, seg.origin, scale)
    if seg.doors:
        size = max(7, int(round(0.25 * scale / seg.resolution)))
        centres = np.array([door.centre for door in seg.doors])
        pic.markers(centres, (150, 60, 20), cv2.MARKER_DIAMOND, size)
    for room in seg.rooms:
        pic.label(str(room.id), room.centre, size=0.4 if scale < 3 else 0.5)
    if caption:
        pic.fit_caption([(line, render.TEXT) for line in caption])
    return pic


# --------------------------------------------------------------------------------------------
# The method


def _free_mask(
    grid_or_free: OccupancyGrid | np.ndarray,
    resolution: float | None,
    origin: tuple[float, float] | None,
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """(free bool (H, W), resolution, origin) from either input form, validated."""
    if isinstance(grid_or_free, OccupancyGrid):
        grid = grid_or_free
        if resolution is not None and not math.isclose(resolution, grid.resolution):
            raise ValueError(
                f"resolution {resolution} m differs from the grid's {grid.resolution} m; "
                "leave it out when passing an OccupancyGrid"
            )
        free = grid.probability() < FREE_THRESH
        return free, float(grid.resolution), _checked_origin(origin or grid.origin)
    free = np.asarray(grid_or_free)
    if free.ndim != 2 or free.size == 0:
        raise ValueError(f"expected a non-empty 2-D free mask (H, W), got shape {free.shape}")
    if free.dtype != bool:
        if not np.issubdtype(free.dtype, np.integer) or not np.isin(free, (0, 1)).all():
            raise TypeError(
                f"expected a bool free mask (True = free), got dtype {free.dtype}; "
                "threshold an image first, e.g. grey >= 250, or pass an OccupancyGrid"
            )
        free = free.astype(bool)
    if resolution is None:
        raise ValueError("resolution (m per cell) is required with a free mask")
    resolution = float(resolution)
    if not (math.isfinite(resolution) and resolution > 0.0):
        raise ValueError(f"resolution must be a finite number of metres > 0, got {resolution}")
    return np.ascontiguousarray(free), resolution, _checked_origin(origin or (0.0, 0.0))


def _checked_origin(origin) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in origin)
    except (TypeError, ValueError):
        raise ValueError(
            f"origin must be a pair of numbers (x, y) in metres, got {origin!r}"
        ) from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"origin must be finite, got {origin!r}")
    return (x, y)


def _clearance(free: np.ndarray) -> np.ndarray:
    """(H, W) float32: distance (cells) from each free cell centre to the nearest non-free cell
    centre, the raster's outside counting as non-free; 0 on non-free cells."""
    padded = np.pad(free, 1).astype(np.uint8)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _without_clutter(free: np.ndarray, resolution: float, size: float) -> np.ndarray:
    """The free mask with small free-standing obstacle blobs (8-connected, not touching the
    raster's edge, bounding box at most `size` metres a side) turned into floor."""
    if size <= 0.0:
        return free
    blocked = (~free).astype(np.uint8)
    n, blobs, stats, _ = cv2.connectedComponentsWithStats(blocked, connectivity=8)
    side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) * resolution
    small = side <= size + 1e-9
    small[0] = False  # the background label is the free space itself
    edge = np.concatenate((blobs[0], blobs[-1], blobs[:, 0], blobs[:, -1]))
    small[edge] = False
    return free | small[blobs]


def _drain(clearance: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Basins of the clearance over `mask`: every mask cell climbs by steepest ascent (8
    neighbours) to a local maximum; cells reaching the same top share a label. Returns (labels
    (H, W) int64, 1..n on the mask, and the flat index of each label's top, (n,) int64).

    Ties go to the larger flat index, so a flat ridge drains one way. The clearance of
    cv2.distanceTransform (DIST_MASK_PRECISE) is the distance between cell centres, so its
    square is an integer: (round(d²), flat index) packs into one exact int64 sort key.
    """
    h, w = clearance.shape
    size = h * w
    flat = np.arange(size, dtype=np.int64).reshape(h, w)
    key = np.rint(clearance.astype(np.float64) ** 2).astype(np.int64) * size + flat
    key[~mask] = -1
    padded = np.pad(key, 1, constant_values=-1)
    best = key.copy()
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                np.maximum(best, padded[1 + di : 1 + di + h, 1 + dj : 1 + dj + w], out=best)
    parent = np.where(mask, best % size, flat).ravel()
    while True:  # pointer jumping: log2(longest ascent) rounds
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            break
        parent = jumped
    flat_mask = mask.ravel()
    tops = np.flatnonzero((parent == flat.ravel()) & flat_mask)
    lut = np.zeros(size, np.int64)
    lut[tops] = np.arange(1, len(tops) + 1)
    basins = np.where(mask, lut[parent].reshape(h, w), 0)
    return basins, tops


def _touching(
    labels: np.ndarray, clearance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label pairs that touch (4-neighbours), one row per pair: (a, b) with a < b, and the pass
    height (the highest lower clearance over the cell pairs where they touch, in cells)."""
    parts: list[tuple[np.ndarray, ...]] = []
    for first, second in (
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        la, lb = labels[first], labels[second]
        touch = (la != lb) & (la > 0) & (lb > 0)
        a, b = la[touch], lb[touch]
        height = np.minimum(clearance[first][touch], clearance[second][touch])
        parts.append((np.minimum(a, b), np.maximum(a, b), height))
    a, b, height = (np.concatenate(cols) for cols in zip(*parts, strict=True))
    if len(a) == 0:
        return a, b, height
    key = a.astype(np.int64) * (int(labels.max()) + 1) + b
    order = np.lexsort((-height, key))  # per pair, the highest pass first
    first_of_pair = np.r_[True, key[order][1:] != key[order][:-1]]
    keep = order[first_of_pair]
    return a[keep], b[keep], height[keep]


class _Regions:
    """Union-find over basins with each region's peak clearance and floor area (cells)."""

    def __init__(self, peak: np.ndarray, area: np.ndarray) -> None:
        self.parent = list(range(len(peak)))
        self.peak = peak.astype(np.float64).tolist()
        self.area = area.astype(np.float64).tolist()

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, keep: int, gone: int) -> None:
        self.parent[gone] = keep
        self.peak[keep] = max(self.peak[keep], self.peak[gone])
        self.area[keep] += self.area[gone]

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], np.int64)


def _room_labels(free: np.ndarray, resolution: float, config: RoomConfig) -> np.ndarray:
    """(H, W) int32 room labels 1..N on the free cells, in raster order of first cell."""
    work = _without_clutter(free, resolution, config.clutter_size)
    clearance = _clearance(work)
    basins, tops = _drain(clearance, work)
    n = len(tops) + 1
    peak = np.r_[0.0, clearance.ravel()[tops]]  # a basin's top is its highest cell
    area = np.bincount(basins[free], minlength=n)
    regions = _Regions(peak, area)

    # 1. Merge along the widest passes first, unless the pass is a doorway for both sides.
    a, b, height = _touching(basins, clearance)
    for k in np.argsort(-height, kind="stable").tolist():
        ra, rb = regions.find(int(a[k])), regions.find(int(b[k]))
        if ra == rb:
            continue
        smaller_peak = min(regions.peak[ra], regions.peak[rb])
        if height[k] >= config.door_ratio * smaller_peak:
            regions.union(ra, rb)

    # 2. Regions under the minimum area join the neighbour with the widest pass, smallest first.
    min_cells = config.min_room_area / resolution**2
    roots = regions.roots()
    passes: dict[int, dict[int, float]] = {}
    for x, y, z in zip(roots[a].tolist(), roots[b].tolist(), height.tolist(), strict=True):
        if x != y:
            for p, q in ((x, y), (y, x)):
                row = passes.setdefault(p, {})
                row[q] = max(row.get(q, -1.0), z)
    live = sorted(set(roots[1:].tolist()), key=lambda r: regions.area[r])
    for r in live:
        if regions.area[r] >= min_cells or not passes.get(r):
            continue
        target = max(passes[r], key=lambda q: (passes[r][q], regions.area[q]))
        regions.union(target, r)
        for q, z in passes.pop(r).items():  # r's passes now belong to target
            passes[q].pop(r, None)
            if q != target:
                passes[target][q] = max(passes[target].get(q, -1.0), z)
                passes[q][target] = passes[target][q]

    labels = regions.roots()[basins]
    labels[~free] = 0
    labels = _relabel(labels)

    # 3. Small free pockets that touch no other room (specks inside walls) join the nearest room.
    counts = np.bincount(labels.ravel())
    tiny = np.flatnonzero(counts < min_cells)
    tiny = tiny[tiny > 0]
    if len(tiny) and len(tiny) < len(counts) - 1:
        pocket = np.isin(labels, tiny)
        keep = (labels > 0) & ~pocket
        _, (ii, jj) = ndi.distance_transform_edt(~keep, return_indices=True)
        labels[pocket] = labels[ii[pocket], jj[pocket]]
        labels = _relabel(labels)
    return labels


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..N in raster order of each label's first cell (0 stays 0)."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    first, ids = first[ids > 0], ids[ids > 0]
    lut = np.zeros(int(flat.max()) + 1, np.int32)
    lut[ids[np.argsort(first, kind="stable")]] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]


def _describe(
    labels: np.ndarray, free: np.ndarray, resolution: float, origin: tuple[float, float]
) -> Segmentation:
    """Rooms (area, centroid, centre, neighbours) and doorways of a label raster."""
    w = labels.shape[1]
    count = int(labels.max())
    clearance = _clearance(free)

    def world(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.column_stack(
            (origin[0] + (j + 0.5) * resolution, origin[1] + (i + 0.5) * resolution)
        )

    a, b, _ = _touching(labels, clearance)
    neighbours: dict[int, list[int]] = {k: [] for k in range(1, count + 1)}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        neighbours[x].append(y)
        neighbours[y].append(x)

    ids = np.arange(1, count + 1)
    where = np.flatnonzero(labels)
    room = labels.ravel()[where]
    ci, cj = np.divmod(where, w)
    cells = np.bincount(room, minlength=count + 1)[1:].astype(np.float64)
    mean_i = np.bincount(room, ci, minlength=count + 1)[1:] / cells
    mean_j = np.bincount(room, cj, minlength=count + 1)[1:] / cells
    centroids = world(mean_i, mean_j)
    # each room's most open cell: sort by (room, clearance), take the last of each room
    order = np.lexsort((clearance.ravel()[where], room))
    last = order[np.r_[room[order][1:] != room[order][:-1], True]]
    centres = world(ci[last].astype(np.float64), cj[last].astype(np.float64))
    rooms = [
        Room(
            id=int(k),
            area=float(cells[k - 1] * resolution**2),
            centroid=(float(centroids[k - 1, 0]), float(centroids[k - 1, 1])),
            centre=(float(centres[k - 1, 0]), float(centres[k - 1, 1])),
            neighbours=tuple(sorted(neighbours[int(k)])),
        )
        for k in ids
    ]
    return Segmentation(
        labels, resolution, origin, rooms, _doors(labels, clearance, resolution, world)
    )


def _doors(labels: np.ndarray, clearance: np.ndarray, resolution: float, world) -> list[Door]:
    """The doorways: per touching room pair, each 8-connected group of border cells."""
    rows: list[tuple[np.ndarray, ...]] = []
    for first, second in (
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        la, lb = labels[first], labels[second]
        touch = (la != lb) & (la > 0) & (lb > 0)
        ci, cj = np.nonzero(touch)
        di, dj = (0, 1) if first[0] == slice(None) else (1, 0)
        x, y = la[touch], lb[touch]
        pair = np.minimum(x, y).astype(np.int64) * (int(labels.max()) + 1) + np.maximum(x, y)
        rows.append((pair, ci, cj))
        rows.append((pair, ci + di, cj + dj))
    pair, ci, cj = (np.concatenate(cols) for cols in zip(*rows, strict=True))
    doors: list[Door] = []
    if len(pair) == 0:
        return doors
    base = int(labels.max()) + 1
    order = np.lexsort((cj, ci, pair))
    pair, ci, cj = pair[order], ci[order], cj[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    ends = np.r_[starts[1:], len(pair)]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        pi, pj = ci[s:e], cj[s:e]
        i0, j0 = int(pi.min()), int(pj.min())
        crop = np.zeros((int(pi.max()) - i0 + 1, int(pj.max()) - j0 + 1), np.uint8)
        crop[pi - i0, pj - j0] = 1
        _, groups = cv2.connectedComponents(crop, connectivity=8)
        for g in range(1, int(groups.max()) + 1):
            gi, gj = np.nonzero(groups == g)
            gi, gj = gi + i0, gj + j0
            k = int(np.argmax(clearance[gi, gj]))
            centre = world(gi[k : k + 1], gj[k : k + 1])[0]
            width = max(2.0 * float(clearance[gi[k], gj[k]]) - 1.0, 1.0) * resolution
            rooms = (int(pair[s] // base), int(pair[s] % base))
            doors.append(
                Door(rooms, np.column_stack((gi, gj)), (float(centre[0]), float(centre[1])), width)
            )
    return doors
