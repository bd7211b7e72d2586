"""ROS map_server maps: a PGM image plus a YAML file (the format Nav2 still reads).

Image row 0 is the top (largest y); the YAML `origin` is the world pose of the lower-left pixel.
Trinary export: occupied 0 (black), free 254, unknown 205, with map_server's thresholds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maps.errors import CorruptMap
from maps.grid import OccupancyGrid

OCCUPIED_THRESH = 0.65
FREE_THRESH = 0.196


def to_image(grid: OccupancyGrid) -> np.ndarray:
    """(H, W) uint8 trinary image of the grid, row 0 at the top."""
    prob = grid.probability()
    img = np.full(prob.shape, 205, np.uint8)
    img[prob < FREE_THRESH] = 254
    img[prob > OCCUPIED_THRESH] = 0
    return img[::-1].copy()


def save(grid: OccupancyGrid, stem: str | Path) -> tuple[Path, Path]:
    """Write `stem`.pgm and `stem`.yaml; returns both paths."""
    stem = Path(stem)
    pgm, yaml = stem.with_suffix(".pgm"), stem.with_suffix(".yaml")
    img = to_image(grid)
    h, w = img.shape
    pgm.write_bytes(b"P5\n# vacnav\n%d %d\n255\n" % (w, h) + img.tobytes())
    ox, oy = grid.origin
    yaml.write_text(
        f"image: {pgm.name}\n"
        f"mode: trinary\n"
        f"resolution: {grid.resolution:.6g}\n"
        f"origin: [{ox:.6f}, {oy:.6f}, 0.0]\n"
        "negate: 0\n"
        f"occupied_thresh: {OCCUPIED_THRESH}\n"
        f"free_thresh: {FREE_THRESH}\n"
    )
    return pgm, yaml


def load_pgm(path: str | Path) -> np.ndarray:
    """Read a binary (P5) 8-bit PGM as an (H, W) uint8 array, row 0 at the top."""
    data = Path(path).read_bytes()
    fields: list[bytes] = []
    pos, size = 0, len(data)
    while len(fields) < 4 and pos < size:
        while pos < size and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            newline = data.find(b"\n", pos)
            pos = size if newline < 0 else newline + 1
            continue
        end = pos
        while end < size and not data[end : end + 1].isspace():
            end += 1
        if end > pos:
            fields.append(data[pos:end])
        pos = end
    if len(fields) < 4 or fields[0] != b"P5" or not all(f.isdigit() for f in fields[1:]):
        raise CorruptMap(f"{path}: not a binary PGM (header {b' '.join(fields)[:40]!r})")
    w, h, maxval = (int(f) for f in fields[1:])
    if maxval > 255 or w == 0 or h == 0:
        raise CorruptMap(f"{path}: only 8-bit PGM images are read, got {w}x{h} max {maxval}")
    if size - (pos + 1) < w * h:
        raise CorruptMap(f"{path}: truncated: {size - pos - 1} of {w * h} pixel bytes")
    pixels = np.frombuffer(data, np.uint8, count=w * h, offset=pos + 1)
    return pixels.reshape(h, w)
