"""Map store speed: save and load of a 1000 x 1000 map document (target: median <= 20 ms each).

Two grids: "home", log-odds as SLAM leaves them (rooms, walls and unknown, with a real SLAM
grid's mix of values), and "noise", random float32 everywhere (the worst case:
it does not compress, so it is stored raw). Each document also carries a rooms raster, rooms,
restrictions, a dock and a 2000-pose path; the store is a real file in WAL mode.
"""

import numpy as np
import pytest

from maps.geometry import Pose
from maps.grid import OccupancyGrid
from maps.model import MapDocument, MapPath, Restrictions, Room
from maps.store import MapStore

SIZE = 1000  # cells per side, 0.05 m each


def home_log_odds(rng: np.random.Generator, span: int = 560) -> np.ndarray:
    """(SIZE, SIZE) float32: a 28 x 28 m flat of 4 x 4 rooms with doors amid unknown, with the
    statistics of a real SLAM grid (Intel, 1500 scans: 69 % unknown, 26 % free at the clamp,
    4 % free a few updates short of it, 1 % walls). Here 13 % of the free cells, drawn at random,
    are short of the clamp: a little harder to compress than the real thing."""
    lo = np.zeros((SIZE, SIZE), np.float32)
    a = (SIZE - span) // 2
    inner = slice(a, a + span)
    free = np.full((span, span), -2.0, np.float32)
    short = rng.random((span, span)) < 0.13
    free[short] = rng.choice(np.float32([-0.4, -0.8, -1.2, -1.6]), np.count_nonzero(short))
    lo[inner, inner] = free
    wall_values = np.float32([3.5, 3.5, 3.5, 3.4, 2.55, 0.85])
    walls = np.linspace(a, a + span - 3, 5).astype(int)
    for k in walls:
        lo[k : k + 3, inner] = rng.choice(wall_values, (3, span))
        lo[inner, k : k + 3] = rng.choice(wall_values, (span, 3))
    for k in walls[1:-1]:  # doors
        for d in np.linspace(a + 60, a + span - 80, 4).astype(int):
            lo[k : k + 3, d : d + 18] = -2.0
            lo[d : d + 18, k : k + 3] = -2.0
    return lo


def document(kind: str) -> MapDocument:
    rng = np.random.default_rng(7)
    if kind == "home":
        lo = home_log_odds(rng)
    else:
        lo = rng.standard_normal((SIZE, SIZE), dtype=np.float32)
    rooms = np.zeros((SIZE, SIZE), np.uint8)
    edges = np.linspace(220, SIZE - 220, 5).astype(int)
    for r in range(4):
        for c in range(4):
            rooms[edges[r] + 3 : edges[r + 1], edges[c] + 3 : edges[c + 1]] = 1 + 4 * r + c
    steps = rng.normal(0, 0.05, (2000, 2)).cumsum(axis=0) + 25.0
    return MapDocument(
        OccupancyGrid(lo, 0.05, (-25.0, -25.0)),
        rooms=rooms,
        room_info={i: Room(i, f"room {i}") for i in range(1, 17)},
        restrictions=Restrictions(no_go=[np.array([[1.0, 1.0], [2.0, 1.0], [2.0, 2.0]])]),
        dock=Pose(0.5, 0.5, 1.57),
        robot=Pose(3.0, 2.0, -0.3),
        paths=[MapPath("path", steps)],
        meta={"source": "bench"},
    )


@pytest.fixture(params=["home", "noise"])
def doc(request):
    return document(request.param)


@pytest.mark.parametrize("size", [f"{SIZE}x{SIZE}"])
def test_save(benchmark, tmp_path, doc, size):
    with MapStore(tmp_path / "bench.db") as store:
        store.save(doc)  # creates the floor and warms the file
        info = benchmark.pedantic(store.save, args=(doc,), rounds=40, warmup_rounds=2)
        benchmark.extra_info["stored_bytes"] = info.size
        assert info.shape == (SIZE, SIZE)


@pytest.mark.parametrize("size", [f"{SIZE}x{SIZE}"])
def test_load(benchmark, tmp_path, doc, size):
    with MapStore(tmp_path / "bench.db") as store:
        store.save(doc)
        back = benchmark.pedantic(store.load, rounds=40, warmup_rounds=2)
        assert np.array_equal(back.grid.log_odds, doc.grid.log_odds)
