"""The costmap: what it costs the robot centre to stand on each cell, after Nav2's costmap_2d.

Layers, each an (H, W) bool raster on the stored map's grid (axes as maps.grid: row i <-> y up,
column j <-> x right, `origin` = world xy of the corner of cell (0, 0)):

- `static`: the stored map's occupied cells (walls, furniture the lidar sees);
- `unknown`: cells the map knows nothing of (outside the home, unexplored);
- `obstacles`: the obstacle memory, what the bumper and cliff sensors found (maps.model.Obstacle):
  a disc of `CostmapConfig.obstacle_radius` around each point;
- `keepout`: the restrictions (maps.model.Restrictions): no-go zones filled, virtual walls drawn
  as 4-connected lines. No-mop zones do not restrict a vacuum and are left out;
- `tight`: narrow passages (`Costmap.allow_tight`), where the centre may stand closer to what is
  lethal than `robot_radius`, down to a smaller radius given with them, at cost 252.

Costs (uint8), Nav2's values (nav2_costmap_2d/cost_values.hpp): 0 free, 1..252 near an
obstacle, 253 inscribed (the body would overlap an obstacle), 254 lethal (an obstacle itself),
255 unknown. Static, obstacle and keepout cells are lethal. The inflation is Nav2's
InflationLayer::computeCost: 253 inside the inscribed radius, then
252 * exp(-cost_scaling_factor * (d - robot_radius)) truncated to an integer, 0 beyond
`inflation_radius`. One change: d is measured from the cell centre to the nearest lethal cell's
edge (Nav2 uses the centre-to-centre distance), the convention of `navigation.coverage` and
`firmware_bridge.world.robot_room`, so a cell is enterable (cost <= 252) exactly where the round
body overlaps no lethal cell. Restrictions are inflated like walls: the whole body keeps out of a
no-go zone and off a virtual wall.

With `unknown_is_obstacle` (the default, right for a finished map whose unknown is outside the
home), unknown cells are inflated like walls and keep 255; without it (exploration), they keep
255 unless the body would overlap a lethal cell there (253), as Nav2 does.

Updates are incremental: `add_obstacles` recomputes only the window the new cells can reach,
with the very computation of a full build, so both give the same costs bit for bit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from maps.grid import OccupancyGrid
from maps.model import FREE_THRESH, OCCUPIED_THRESH, MapDocument, Obstacle, Restrictions

log = logging.getLogger(__name__)

FREE = 0
MAX_NON_OBSTACLE = 252
INSCRIBED = 253
LETHAL = 254
UNKNOWN = 255

Window = tuple[slice, slice]  # rows, columns of the grid


@dataclass(frozen=True, slots=True)
class CostmapConfig:
    """Robot body and inflation (metres). Defaults: the simulator's 0.17 m round vacuum, and
    Nav2's inflation_radius 0.55 m and cost_scaling_factor 10 (nav2 costmap-plugins docs)."""

    robot_radius: float = 0.17  # m, the round body (inscribed radius)
    inflation_radius: float = 0.55  # m from an obstacle's edge where the cost reaches 0
    cost_scaling_factor: float = 10.0  # 1/m, how fast the cost decays beyond the body
    obstacle_radius: float = 0.05  # m, the disc marked around a remembered obstacle point
    unknown_is_obstacle: bool = True  # unknown space is inflated like a wall

    def __post_init__(self) -> None:
        for name in ("robot_radius", "inflation_radius", "cost_scaling_factor", "obstacle_radius"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"CostmapConfig.{name} must be a finite number >= 0, got {value!r}"
                )
        if self.inflation_radius < self.robot_radius:
            raise ValueError(
                f"CostmapConfig.inflation_radius ({self.inflation_radius} m) must be >= "
                f"robot_radius ({self.robot_radius} m)"
            )


class Costmap:
    """Layered uint8 costmap of a stored map; see the module docstring for layers and costs.

    Build it with `Costmap.from_map`. `costs` is (H, W) uint8; treat it as read-only and change
    the layers through `add_obstacles`, which keeps `costs` in step.
    """

    def __init__(
        self,
        static: np.ndarray,
        unknown: np.ndarray,
        resolution: float,
        origin: tuple[float, float],
        config: CostmapConfig | None = None,
        keepout: np.ndarray | None = None,
        obstacles: np.ndarray | None = None,
    ) -> None:
        """A costmap from its layers ((H, W) bool; keepout and obstacles empty when None), built
        in full. Raises ValueError when the rasters disagree or no cell is free."""
        self.config = config or CostmapConfig()
        static = np.asarray(static)
        unknown = np.asarray(unknown)
        if static.ndim != 2 or unknown.shape != static.shape:
            raise ValueError(
                f"static and unknown must be same-size 2-D rasters, got {static.shape} and "
                f"{unknown.shape}"
            )
        if static.size == 0:
            raise ValueError("the map is empty (0 cells)")
        if static.size >= 2**31:
            raise ValueError(f"the map has {static.size} cells; at most 2^31 - 1 are supported")
        if not (
            isinstance(resolution, int | float) and math.isfinite(resolution) and resolution > 0
        ):
            raise ValueError(f"resolution must be a finite number > 0 m, got {resolution!r}")
        self.resolution = float(resolution)
        self.origin = (float(origin[0]), float(origin[1]))
        if not all(math.isfinite(v) for v in self.origin):
            raise ValueError(f"origin must be finite, got {origin!r}")
        self.static = np.ascontiguousarray(static, dtype=bool)
        self.unknown = np.ascontiguousarray(unknown, dtype=bool) & ~self.static
        n_free = self.static.size - int(np.count_nonzero(self.static | self.unknown))
        if n_free == 0:
            raise ValueError(
                f"the map has no free cell: all {self.static.size} cells are occupied "
                f"({int(np.count_nonzero(self.static))}) or unknown "
                f"({int(np.count_nonzero(self.unknown))}); nothing to plan on"
            )
        self.keepout = self._layer(keepout, "keepout")
        self.obstacles = self._layer(obstacles, "obstacles")
        # narrow passages (`allow_tight`): cells enterable closer to obstacles than robot_radius
        self.tight = np.zeros_like(self.static)
        self._tight_d2 = math.inf
        self._lut, self._reach = _inflation_table(self.config, self.resolution)
        self._lut256 = np.zeros(256, np.uint8)
        self._lut256[: min(len(self._lut), 256)] = self._lut[:256]
        h, w = self.static.shape
        # sources of inflation, framed by one ring for what lies beyond the raster
        self._source = np.zeros((h + 2, w + 2), dtype=bool)
        self._source[[0, -1], :] = self.config.unknown_is_obstacle
        self._source[:, [0, -1]] = self.config.unknown_is_obstacle
        self.costs = np.empty((h, w), dtype=np.uint8)
        self.rebuild()

    def _layer(self, layer: np.ndarray | None, name: str) -> np.ndarray:
        if layer is None:
            return np.zeros_like(self.static)
        if np.shape(layer) != self.static.shape:
            raise ValueError(
                f"{name} {np.shape(layer)} must have the map's shape {self.static.shape}"
            )
        return np.array(layer, dtype=bool)  # a copy: the costmap updates it

    # ------------------------------------------------------------------ building
    @classmethod
    def from_map(
        cls,
        source: OccupancyGrid | MapDocument,
        *,
        obstacles: Iterable[Obstacle] = (),
        restrictions: Restrictions | None = None,
        config: CostmapConfig | None = None,
    ) -> Costmap:
        """The costmap of a stored map.

        `source`: an OccupancyGrid (cells free below occupancy probability 0.196, occupied above
        0.65, unknown between, map_server's thresholds as in maps.model), or a MapDocument, whose
        own restrictions and obstacles are used too. `obstacles` (e.g. `MapStore.obstacles(floor)`)
        and `restrictions` are added on top. Raises TypeError for another kind of map, ValueError
        for a grid with non-finite cells, a map with no free cell, or a bad restriction.
        """
        if isinstance(source, MapDocument):
            grid = source.grid
            extra_obstacles = list(source.obstacles)
            zones = [source.restrictions]
        elif isinstance(source, OccupancyGrid):
            grid = source
            extra_obstacles = []
            zones = []
        else:
            raise TypeError(
                f"expected a maps.grid.OccupancyGrid or a maps.model.MapDocument, got "
                f"{type(source).__module__}.{type(source).__qualname__}; wrap a state raster with "
                "MapDocument.from_cells(states, resolution, origin)"
            )
        if restrictions is not None:
            if not isinstance(restrictions, Restrictions):
                raise TypeError(
                    f"restrictions must be a maps.model.Restrictions, got "
                    f"{type(restrictions).__qualname__}"
                )
            zones.append(restrictions)
        log_odds = grid.log_odds
        bad = ~np.isfinite(log_odds)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"the grid has {int(np.count_nonzero(bad))} non-finite log-odds cells "
                f"(first at row {i}, column {j}); repair or reload the map"
            )
        # map_server's probability thresholds, as log-odds (the same test without exp)
        static = log_odds > math.log(OCCUPIED_THRESH / (1.0 - OCCUPIED_THRESH))
        unknown = ~static & ~(log_odds < math.log(FREE_THRESH / (1.0 - FREE_THRESH)))
        keepout = np.zeros(grid.shape, dtype=bool)
        for zone in zones:
            keepout |= rasterize_restrictions(zone, grid.shape, grid.resolution, grid.origin)
        config = config or CostmapConfig()
        marked = np.zeros(grid.shape, dtype=bool)
        rows, cols = _obstacle_cells(
            _points([*extra_obstacles, *obstacles]),
            grid.shape,
            grid.resolution,
            grid.origin,
            config,
        )
        marked[rows, cols] = True
        return cls(static, unknown, grid.resolution, grid.origin, config, keepout, marked)

    def rebuild(self) -> None:
        """Recompute every cost from the layers."""
        h, w = self.static.shape
        self._source[1:-1, 1:-1] = self.lethal
        if self.config.unknown_is_obstacle:
            self._source[1:-1, 1:-1] |= self.unknown
        self._update((slice(0, h), slice(0, w)))

    def add_obstacles(self, obstacles: Iterable[Obstacle | tuple[float, float]]) -> Window | None:
        """Mark obstacle points (maps.model.Obstacle or (x, y) world metres) in the obstacle
        memory layer and update the costs they change.

        Each point marks the cells whose centres lie within `obstacle_radius` of it, and always
        its own cell. Points outside the grid are skipped (logged). Only the window that the new
        cells' inflation reaches is recomputed. Returns that window (rows, columns), or None when
        no cell changed. Raises ValueError for a non-finite point.
        """
        h, w = self.static.shape
        rows, cols = _obstacle_cells(
            _points(obstacles), self.shape, self.resolution, self.origin, self.config
        )
        fresh = ~self.obstacles[rows, cols]
        rows, cols = rows[fresh], cols[fresh]
        if rows.size == 0:
            return None
        self.obstacles[rows, cols] = True
        self._source[rows + 1, cols + 1] = True
        reach = self._reach
        window = (
            slice(max(int(rows.min()) - reach, 0), min(int(rows.max()) + reach + 1, h)),
            slice(max(int(cols.min()) - reach, 0), min(int(cols.max()) + reach + 1, w)),
        )
        self._update(window)
        return window

    def allow_tight(self, cells: np.ndarray, radius: float) -> None:
        """Let the centre stand on `cells` ((H, W) bool) closer to what is lethal than
        `robot_radius`, down to `radius` m from the nearest lethal cell's edge: a door the robot
        was seen to pass with less room to spare than the margin plans keep. Those cells cost
        MAX_NON_OBSTACLE, so a plan takes them only where no roomier way is left. Replaces the
        cells of an earlier call; obstacles added later still close them (the test is made at
        every update). Raises ValueError for a radius outside (0, robot_radius] or a raster of
        another shape."""
        if not (isinstance(radius, int | float) and 0 < radius <= self.config.robot_radius):
            raise ValueError(
                f"a tight passage's radius must lie in (0, {self.config.robot_radius}] m (the "
                f"robot radius), got {radius!r}"
            )
        self.tight = self._layer(cells, "tight passages")
        # the squared centre distance (cells) from which the edge distance reaches `radius`
        self._tight_d2 = (radius / self.resolution + 0.5) ** 2 - 1e-9
        self.rebuild()

    def _update(self, window: Window) -> None:
        """Recompute the costs of the cells in `window` (rows, columns of the grid).

        The distance transform runs on the window grown by the inflation reach (plus the frame
        ring), which holds every source whose inflation can reach a cell of the window; beyond
        that, cv2 counts nothing as a source. So the costs equal those of a full build.
        """
        rows, cols = window
        h, w = self.static.shape
        reach = self._reach
        # in frame coordinates (one ring added on each side)
        r0, r1 = max(rows.start + 1 - reach, 0), min(rows.stop + 1 + reach, h + 2)
        c0, c1 = max(cols.start + 1 - reach, 0), min(cols.stop + 1 + reach, w + 2)
        not_source = np.logical_not(self._source[r0:r1, c0:c1]).view(np.uint8)
        dist = cv2.distanceTransform(not_source, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        inner = dist[
            rows.start + 1 - r0 : rows.stop + 1 - r0, cols.start + 1 - c0 : cols.stop + 1 - c0
        ]
        # squared centre distance in cells, exact: cv2 returns sqrt(integer) in float32
        top = len(self._lut) - 1
        d2 = np.minimum(inner, np.float32(math.sqrt(top)))
        np.multiply(d2, d2, out=d2)
        np.rint(d2, out=d2)
        if top <= 255:  # the usual case: cv2's 8-bit table lookup
            costs = cv2.LUT(d2.astype(np.uint8), self._lut256)
        else:
            costs = self._lut[d2.astype(np.intp)]
        if math.isfinite(self._tight_d2):
            tight = self.tight[window] & (costs == INSCRIBED) & (d2 >= self._tight_d2)
            costs[tight] = MAX_NON_OBSTACLE
        lethal = self.static[window] | self.obstacles[window] | self.keepout[window]
        unknown = self.unknown[window] & ~lethal
        if self.config.unknown_is_obstacle:
            costs[unknown] = UNKNOWN
        else:
            costs[unknown & (costs < INSCRIBED)] = UNKNOWN
        self.costs[window] = costs

    # ------------------------------------------------------------------ queries
    @property
    def shape(self) -> tuple[int, int]:
        return self.costs.shape  # type: ignore[return-value]

    @property
    def lethal(self) -> np.ndarray:
        """(H, W) bool: the cells that are obstacles themselves (static, obstacles, keepout)."""
        return self.static | self.obstacles | self.keepout

    def world_to_cell(self, xy) -> np.ndarray:
        """(N, 2) world xy (m) -> (N, 2) int64 cells (i, j); may lie outside the grid."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        ij = np.empty(pts.shape, dtype=np.int64)
        ij[:, 0] = np.floor((pts[:, 1] - self.origin[1]) / self.resolution)
        ij[:, 1] = np.floor((pts[:, 0] - self.origin[0]) / self.resolution)
        return ij

    def cell_to_world(self, ij) -> np.ndarray:
        """(N, 2) cells (i, j) -> (N, 2) world xy (m) of the cell centres."""
        cells = np.asarray(ij, dtype=np.float64).reshape(-1, 2)
        xy = np.empty(cells.shape, dtype=np.float64)
        xy[:, 0] = self.origin[0] + (cells[:, 1] + 0.5) * self.resolution
        xy[:, 1] = self.origin[1] + (cells[:, 0] + 0.5) * self.resolution
        return xy

    def describe(self, i: int, j: int) -> str:
        """What makes cell (i, j) what it is, in words, for error messages."""
        h, w = self.shape
        if not (0 <= i < h and 0 <= j < w):
            return f"outside the {w}x{h}-cell map"
        if self.keepout[i, j]:
            return "in a no-go zone or on a virtual wall"
        if self.obstacles[i, j]:
            return "on a remembered obstacle (bumper or cliff)"
        if self.static[i, j]:
            return "in a wall or furniture of the map"
        cost = int(self.costs[i, j])
        if cost == UNKNOWN:
            return "in unknown space"
        if cost == INSCRIBED:
            return (
                f"closer than the robot radius ({self.config.robot_radius} m) to an obstacle "
                "or unknown space"
            )
        return f"free (cost {cost})"


def _points(obstacles: Iterable[Obstacle | tuple[float, float]]) -> list[tuple[float, float]]:
    """World xy of each obstacle (maps.model.Obstacle or an (x, y) pair), checked finite."""
    points = []
    for item in obstacles:
        if isinstance(item, Obstacle):
            x, y = item.x, item.y
        else:
            try:
                x, y = item
            except (TypeError, ValueError):
                raise TypeError(
                    f"expected a maps.model.Obstacle or an (x, y) pair, got {item!r}"
                ) from None
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"obstacle position must be finite, got ({x}, {y})")
        points.append((x, y))
    return points


def _obstacle_cells(
    points: list[tuple[float, float]],
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
    config: CostmapConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the cells the points mark: centres within `obstacle_radius` of a point,
    and the point's own cell; points outside the grid are skipped (logged)."""
    h, w = shape
    rad = config.obstacle_radius / resolution
    r = math.ceil(rad) + 1
    rows_of: list = [np.empty(0, np.intp)]
    cols_of: list = [np.empty(0, np.intp)]
    skipped = 0
    for x, y in points:
        fi = (y - origin[1]) / resolution
        fj = (x - origin[0]) / resolution
        ci, cj = math.floor(fi), math.floor(fj)
        if not (0 <= ci < h and 0 <= cj < w):
            skipped += 1
            continue
        i0, i1 = max(ci - r, 0), min(ci + r + 1, h)
        j0, j1 = max(cj - r, 0), min(cj + r + 1, w)
        ii = np.arange(i0, i1)[:, None] + 0.5
        jj = np.arange(j0, j1)[None, :] + 0.5
        di, dj = np.nonzero((ii - fi) ** 2 + (jj - fj) ** 2 <= rad * rad)
        rows_of += [di + i0, np.array([ci])]
        cols_of += [dj + j0, np.array([cj])]
    if skipped:
        log.warning("%d obstacle point(s) outside the %dx%d map skipped", skipped, h, w)
    return np.concatenate(rows_of).astype(np.intp), np.concatenate(cols_of).astype(np.intp)


def _inflation_table(config: CostmapConfig, resolution: float) -> tuple[np.ndarray, int]:
    """Cost by squared centre distance (cells) to the nearest source, and the reach in cells.

    Index d2 (0..top): the cost at centre distance sqrt(d2) cells, whose edge distance is
    (sqrt(d2) - 0.5) * resolution; the last entry is 0 and stands for everything farther.
    """
    # farthest centre distance (cells) whose edge distance is within the inflation radius
    far = config.inflation_radius / resolution + 0.5
    top = math.floor(far * far) + 1
    d2 = np.arange(top + 1, dtype=np.float64)
    edge = (np.sqrt(d2) - 0.5) * resolution
    decay = np.floor(
        MAX_NON_OBSTACLE * np.exp(-config.cost_scaling_factor * (edge - config.robot_radius))
    )
    lut = np.where(edge < config.robot_radius, INSCRIBED, np.minimum(decay, MAX_NON_OBSTACLE))
    lut = np.where(edge <= config.inflation_radius, lut, FREE)
    lut[0] = LETHAL
    lut[top] = FREE
    return lut.astype(np.uint8), math.ceil(far)


# ---------------------------------------------------------------------- restrictions
def rasterize_restrictions(
    restrictions: Restrictions,
    shape: tuple[int, int],
    resolution: float,
    origin: tuple[float, float],
) -> np.ndarray:
    """(H, W) bool: the cells of the no-go zones (filled) and virtual walls (4-connected lines).

    Polygons are (K, 2) world metres, K >= 3 distinct vertices (a repeated closing vertex is
    dropped); virtual walls (N >= 2, 2) polylines, usually (2, 2). Raises ValueError naming the
    zone or wall when one is malformed, has no area, or crosses itself.
    """
    canvas = np.zeros(shape, dtype=np.uint8)
    shift = 4  # sub-cell filling, in 1/16 cell
    limit = 4 * max(shape) + 16  # keep far-off vertices within cv2's int32 coordinates

    def to_px(xy: np.ndarray) -> np.ndarray:
        # cell (i, j) is pixel (x = j, y = i), its centre at the integer coordinates
        px = (xy - np.asarray(origin)) / resolution - 0.5
        return np.round(np.clip(px, -limit, limit) * (1 << shift)).astype(np.int32)

    def to_cells(xy: np.ndarray) -> np.ndarray:
        # the cells holding the points: cv2 draws 4-connected lines only without a shift
        px = np.floor((xy - np.asarray(origin)) / resolution)
        return np.clip(px, -limit, limit).astype(np.int32)

    for k, zone in enumerate(restrictions.no_go):
        poly = check_polygon(zone, f"no-go zone {k}")
        cv2.fillPoly(canvas, [to_px(poly).reshape(-1, 1, 2)], 1, cv2.LINE_8, shift)
        cv2.polylines(canvas, [to_cells(poly).reshape(-1, 1, 2)], True, 1, 1, cv2.LINE_4)
    for k, wall in enumerate(restrictions.virtual_walls):
        line = np.asarray(wall, dtype=np.float64) if _numeric(wall) else None
        if line is None or line.ndim != 2 or line.shape[1] != 2 or line.shape[0] < 2:
            got = getattr(line, "shape", type(wall).__qualname__)
            raise ValueError(f"virtual wall {k}: expected (2, 2) end points in metres, got {got}")
        if not np.isfinite(line).all():
            raise ValueError(f"virtual wall {k}: non-finite coordinates {line.tolist()}")
        cv2.polylines(canvas, [to_cells(line).reshape(-1, 1, 2)], False, 1, 1, cv2.LINE_4)
    return canvas.astype(bool)


def _numeric(value) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def check_polygon(polygon, name: str = "polygon") -> np.ndarray:
    """A simple polygon as (K, 2) float64, K >= 3, without a repeated closing vertex.

    Raises ValueError naming `name` when it is not (K, 2) finite numbers, has fewer than three
    distinct vertices or no area, or crosses itself (two edges meet other than at their shared
    vertex; edges of a spike folding back on each other count).
    """
    poly = np.asarray(polygon, dtype=np.float64) if _numeric(polygon) else None
    if poly is None or poly.ndim != 2 or poly.shape[1] != 2:
        got = getattr(poly, "shape", type(polygon).__qualname__)
        raise ValueError(f"{name}: expected (K, 2) vertices in metres, got {got}")
    if not np.isfinite(poly).all():
        raise ValueError(f"{name}: non-finite vertex in {poly.tolist()}")
    # drop repeated consecutive vertices and the closing repeat of the first
    keep = np.ones(len(poly), dtype=bool)
    keep[1:] = np.any(poly[1:] != poly[:-1], axis=1)
    poly = poly[keep]
    if len(poly) > 1 and np.array_equal(poly[0], poly[-1]):
        poly = poly[:-1]
    if len(poly) < 3:
        raise ValueError(f"{name}: needs at least 3 distinct vertices, got {len(poly)}")
    rel = poly[1:] - poly[0]
    if np.all(rel[:, 0] * rel[0, 1] - rel[:, 1] * rel[0, 0] == 0.0):
        raise ValueError(f"{name}: its vertices are collinear (no area)")
    n = len(poly)
    for a in range(n):
        p, q = poly[a], poly[(a + 1) % n]
        for b in range(a + 1, n):
            r, s = poly[b], poly[(b + 1) % n]
            if b == a + 1 or (a == 0 and b == n - 1):
                # neighbours share a vertex: they cross only by folding back along each other
                shared = q if b == a + 1 else p
                u = (p if b == a + 1 else q) - shared
                v = (s if b == a + 1 else r) - shared
                if _cross(u, v) == 0.0 and float(np.dot(u, v)) > 0.0:
                    raise ValueError(
                        f"{name} crosses itself: edges {a} and {b} fold back along each other at "
                        f"({shared[0]:g}, {shared[1]:g})"
                    )
                continue
            if _segments_meet(p, q, r, s):
                raise ValueError(
                    f"{name} crosses itself: edge {a} ({p[0]:g}, {p[1]:g})-({q[0]:g}, {q[1]:g}) "
                    f"meets edge {b} ({r[0]:g}, {r[1]:g})-({s[0]:g}, {s[1]:g}); draw the zone as "
                    "a simple polygon or split it in two"
                )
    return poly


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def _segments_meet(p, q, r, s) -> bool:
    """Whether the closed segments pq and rs share a point."""
    d1 = _cross(s - r, p - r)
    d2 = _cross(s - r, q - r)
    d3 = _cross(q - p, r - p)
    d4 = _cross(q - p, s - p)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on(a, b, c, d) -> bool:  # c on segment ab, given collinear (d == 0)
        return (
            d == 0.0
            and min(a[0], b[0]) <= c[0] <= max(a[0], b[0])
            and (min(a[1], b[1]) <= c[1] <= max(a[1], b[1]))
        )

    return on(r, s, p, d1) or on(r, s, q, d2) or on(p, q, r, d3) or on(p, q, s, d4)
