"""Submaps: small occupancy grids built from a run of consecutive scans in the local frame.

A submap is rigid once finished. Its grid lives in the front end's local frame; the pose graph
places it through its anchor node (the first node inserted into it), so a loop closure against
a submap becomes an edge between its anchor node and the new node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from maps.geometry import Pose
from maps.grid import GridConfig, OccupancyGrid
from maps.scan import Scan
from navigation.slam.matcher import ScoreField

if TYPE_CHECKING:
    from navigation.slam.correlative import MatchGrid


@dataclass(slots=True)
class Submap:
    """A run of scans fused into one grid (local frame), anchored at node `anchor`."""

    index: int
    anchor: int  # node id of the first node inserted
    anchor_local: Pose  # that node's pose in the local frame
    grid: OccupancyGrid
    nodes: list[int] = field(default_factory=list)
    finished: bool = False
    centre: np.ndarray | None = None  # (2,) local xy of the middle of the known area, once finished
    _field: ScoreField | None = None
    _prob: np.ndarray | None = None
    _match_grids: dict[int, MatchGrid] = field(default_factory=dict)  # by depth

    @classmethod
    def start(cls, index: int, anchor: int, anchor_local: Pose, config: GridConfig) -> Submap:
        grid = OccupancyGrid.centred(anchor_local.x, anchor_local.y, 4.0, config)
        return cls(index, anchor, anchor_local, grid)

    def insert(self, node: int, local: Pose, scan: Scan) -> None:
        """Fuse a scan taken at `local` (local frame) into the grid."""
        self.grid.integrate(local, scan)
        self.nodes.append(node)
        self._field = None
        self._prob = None
        self._match_grids.clear()

    def finish(self) -> None:
        """Freeze the submap: no more scans; its matching structures may be cached."""
        self.finished = True
        known = np.argwhere(self.grid.log_odds != 0)
        if known.size:
            self.centre = self.grid.cell_to_world(known.mean(axis=0, keepdims=True))[0]
            # keep only the known area: the growth margins are most of a grid's memory
            (i0, j0), (i1, j1) = known.min(axis=0), known.max(axis=0) + 1
            g = self.grid
            g.log_odds = np.ascontiguousarray(g.log_odds[i0:i1, j0:j1])
            g.origin = (g.origin[0] + j0 * g.resolution, g.origin[1] + i0 * g.resolution)
        self.drop_match_grids()

    def score_field(self) -> ScoreField:
        """The smooth score raster used by the sub-cell matcher (cached until the next insert)."""
        if self._field is None:
            self._field = ScoreField.from_probability(
                self._probability(), self.grid.resolution, self.grid.origin
            )
        return self._field

    def match_grid(self, depth: int = 7) -> MatchGrid:
        """The max-filtered stack for correlative search, `depth` levels (cached until the next
        insert); depth 1 serves the front end's small-window search."""
        from navigation.slam.correlative import MatchGrid

        if depth not in self._match_grids:
            self._match_grids[depth] = MatchGrid.from_probability(
                self._probability(), self.grid.resolution, self.grid.origin, depth
            )
        return self._match_grids[depth]

    def _probability(self) -> np.ndarray:
        """The grid's probability view, computed once per insert for both matchers."""
        if self._prob is None:
            self._prob = self.grid.probability()
        return self._prob

    def drop_match_grids(self) -> None:
        """Free the matching structures (they are rebuilt on demand)."""
        self._match_grids.clear()
        self._field = None
        self._prob = None
