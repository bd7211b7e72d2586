"""Foreign map formats, one module each; `load_map` opens any file we can read.

Vendor files are recognised by their content (Roborock RRMap, Dreame, Viomi/3irobotix), ROS
map_server maps by their YAML (or the PGM beside it).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from maps.errors import CorruptMap, MapNotFound
from maps.model import MapDocument

VENDORS = ("roborock", "dreame", "viomi")
MAX_FILE_BYTES = 256 * 2**20  # no vendor map comes near this; refuse before reading it all


def detect(data: bytes) -> str | None:
    """The vendor whose format `data` looks like, or None."""
    for vendor in VENDORS:
        if importlib.import_module(f"maps.formats.{vendor}").sniff(data):
            return vendor
    return None


def parse(data: bytes, source: str = "<bytes>") -> MapDocument:
    """A vendor map from its bytes, whatever the vendor."""
    vendor = detect(data)
    if vendor is None:
        head = data[:8].hex(" ") if data else "empty"
        raise CorruptMap(
            f"{source}: not a map file we can read (first bytes {head}); "
            f"supported: Roborock RRMap (raw or gzip), Dreame, Viomi/3irobotix, ROS map .yaml"
        )
    return importlib.import_module(f"maps.formats.{vendor}").parse(data, source)


def load_map(path: str | Path) -> MapDocument:
    """Any supported map file: a vendor blob, or a ROS map_server .yaml (or its .pgm)."""
    path = Path(path)
    if not path.exists():
        raise MapNotFound(f"{path}: no such file")
    if path.is_dir():
        raise CorruptMap(f"{path}: is a folder, not a map file")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".pgm"):
        from maps.formats import ros

        yaml_path = path if suffix != ".pgm" else path.with_suffix(".yaml")
        if not yaml_path.exists():
            raise MapNotFound(f"{path}: a ROS map needs its .yaml beside it ({yaml_path.name})")
        return ros.load(yaml_path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CorruptMap(f"{path}: {size:,} bytes is far larger than any vendor map file")
    doc = parse(path.read_bytes(), str(path))
    doc.meta.setdefault("source", path.name)
    return doc
