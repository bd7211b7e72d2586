"""The child of the store kill test: saves map versions into a store in a loop until killed.

    python tests/store_writer.py STORE [SEED]     write until killed
    python tests/store_writer.py --serve STORE    fork a writer for each seed read on stdin
    python tests/store_writer.py --hold STORE     save one map, keep the store open until EOF

Before each save it writes "saving" to stdout and after each commit "committed <id> <sha256>",
each line in one write(2) call, so a line is whole or absent. Grids vary: small maps, 600-1000
cell maps that take a few ms to compress, and noise grids stored raw (0.3-0.6 MB per commit).
Between saves it sometimes records an obstacle or moves a floor's current version.

--serve imports numpy and the store once, then for each line on stdin forks a writer with that
seed and prints "pid <pid>", then "exited <pid> <wait status>" once the writer is gone: a test
of hundreds of kills pays for one interpreter start-up. No SQLite connection exists before the
fork; each writer opens its own.
"""

from __future__ import annotations

import os
import sys
import traceback

import numpy as np

from maps.geometry import Pose
from maps.grid import OccupancyGrid
from maps.model import MapDocument
from maps.store import MapStore

FLOORS = ("default", "upstairs")


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def random_grid(rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 log-odds of one of three kinds (see the module docstring)."""
    kind = rng.random()
    if kind < 0.15:
        n = int(rng.integers(256, 400))
        return rng.standard_normal((n, n), dtype=np.float32)
    low, high = (600, 1000) if kind < 0.45 else (60, 250)
    h, w = (int(v) for v in rng.integers(low, high, 2))
    lo = np.zeros((h, w), np.float32)
    a, b = h // 8, w // 8
    lo[a : h - a, b : w - b] = -2.0
    lo[a : h - a, [b, w - b - 1]] = 3.5
    lo[[a, h - a - 1], b : w - b] = 3.5
    spots = rng.integers(0, [h, w], (200, 2))
    lo[spots[:, 0], spots[:, 1]] = rng.uniform(-2.0, 3.5, 200).astype(np.float32)
    return lo


def random_document(rng: np.random.Generator, seed: int, k: int) -> MapDocument:
    lo = random_grid(rng)
    rooms = None
    if rng.random() < 0.5:
        rooms = np.zeros(lo.shape, np.uint8)
        rooms[: lo.shape[0] // 2] = 1
        rooms[lo.shape[0] // 2 :] = 2
    return MapDocument(
        OccupancyGrid(lo, 0.05, tuple(rng.uniform(-10, 0, 2))),
        rooms=rooms,
        dock=Pose(*rng.uniform(-1, 1, 3)),
        meta={"seed": seed, "save": k},
    )


def random_pose_graph(rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    if rng.random() < 0.5:
        return None
    n = int(rng.integers(10, 2000))
    return {
        "poses": rng.normal(size=(n, 3)),
        "ij": np.column_stack((np.arange(n - 1), np.arange(1, n))).astype(np.int64),
        "kinds": np.array(["odometry", "loop"]),
    }


def write_forever(path: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with MapStore(path) as store:
        for k in range(10**9):
            floor = FLOORS[int(rng.integers(len(FLOORS)))]
            doc = random_document(rng, seed, k)
            graph = random_pose_graph(rng)
            say("saving")
            info = store.save(
                doc, floor=floor, note=f"seed {seed}", pose_graph=graph,
                make_current=bool(rng.random() < 0.9),
            )  # fmt: skip
            say(f"committed {info.id} {info.checksum}")
            r = rng.random()
            if r < 0.3:
                x, y = rng.uniform(-3, 3, 2)
                store.remember_obstacle(floor, x, y, source="bumper" if r < 0.2 else "cliff")
            elif r < 0.4:
                versions = store.versions(floor)
                store.set_current(floor, versions[int(rng.integers(len(versions)))].id)


def serve(path: str) -> None:
    for line in sys.stdin:
        seed = int(line)
        pid = os.fork()
        if pid == 0:
            try:
                write_forever(path, seed)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(3)
        say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        say(f"exited {pid} {status}")


def hold(path: str) -> None:
    """Save one map (seed 2) on floor "upstairs", say "committed <id> <sha256>", then keep the
    store open, its commit still in the -wal, until stdin closes."""
    with MapStore(path) as store:
        info = store.save(random_document(np.random.default_rng(2), 2, 0), floor="upstairs")
        say(f"committed {info.id} {info.checksum}")
        sys.stdin.read()


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--serve":
        serve(argv[1])
    elif argv and argv[0] == "--hold":
        hold(argv[1])
    else:
        write_forever(argv[0], int(argv[1]) if len(argv) > 1 else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
