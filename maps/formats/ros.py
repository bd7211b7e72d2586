"""ROS map_server maps: an image plus a YAML file of metadata (the format Nav2 still reads).

The YAML is flat `key: value` lines:
- `image`: the image file, relative to the YAML's folder (or absolute);
- `resolution`: metres per pixel; `origin`: [x, y, yaw], the world pose (m, rad) of the lower-left
  pixel's outer corner. map_server ignores the yaw for the grid and so do we; it is kept in
  `doc.meta["origin_yaw"]` (radians) and written back by `save`;
- `negate` (0/1 or a bool), `occupied_thresh`, `free_thresh` (probabilities in [0, 1]);
- `mode`: trinary (the default), scale or raw.

Image row 0 is the top (largest y); grid row i is image row H-1-i. How a pixel is read follows
nav2_map_server's map_io (ROS 1 map_server agrees on all but the details noted):
- shade = mean of the colour channels / max value; in trinary mode an alpha channel is averaged
  in with the colours, as map_server does; occ = 1 - shade, or shade when `negate` is set.
- trinary: occ > occupied_thresh -> occupied, occ < free_thresh -> free, else unknown.
- scale: any transparency -> unknown (ROS 1 took only alpha 0); then as trinary, except that
  between the thresholds map_server gives a graded occupancy. We keep the graded value as
  log-odds: occ is mapped piecewise-linearly from the file's thresholds onto ours
  (`maps.model.FREE_THRESH`, `OCCUPIED_THRESH`), so `MapDocument.cell_states()` gives the class
  map_server gives (graded = our UNKNOWN) and, with the usual thresholds, the probability is the
  8-bit value itself (clamped to [0.001, 0.999] so that log-odds stay finite).
- raw: round(shade * 255) in 0..100 is the occupancy in percent, anything else (255 = -1) is
  unknown; negate and the thresholds do not apply (nav2; ROS 1 applied negate). The percent
  becomes the probability, and our thresholds decide the class.

Writing (`save`): trinary is map_saver's PGM (occupied 0, free 254, unknown 205); scale is an RGBA
PNG, as Nav2's map_saver writes it: grey = 255 * (1 - p), quantised so that map_server reads the
same class back, and transparent where the cell was never observed (log-odds exactly 0), which
map_server reads as unknown (-1) rather than a graded value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maps.errors import CorruptMap, MapNotFound
from maps.grid import OccupancyGrid
from maps.model import (
    FREE,
    FREE_LOG_ODDS,
    FREE_THRESH,
    OCCUPIED,
    OCCUPIED_LOG_ODDS,
    OCCUPIED_THRESH,
    UNKNOWN,
    MapDocument,
    VendorFrame,
)

MODES = ("trinary", "scale", "raw")
TRINARY_OCCUPIED, TRINARY_FREE, TRINARY_UNKNOWN = 0, 254, 205  # map_saver's grey values
MAX_YAML_BYTES = 1 << 20  # a map YAML is a few hundred bytes
MAX_IMAGE_BYTES = 256 << 20
MAX_PIXELS = 1 << 26  # 67 M cells: 410 m x 410 m at 5 cm
RESOLUTION_RANGE = (1e-4, 100.0)  # m per cell accepted (0.1 mm .. 100 m)
MAX_ORIGIN = 1e6  # m: |origin x|, |origin y| beyond this (1000 km) is damage
P_MIN, P_MAX = 1e-3, 1.0 - 1e-3  # probabilities of graded cells (log-odds +-6.9)
_MARGIN = 1e-6  # keeps a graded probability off our thresholds (float32 noise is ~1e-8)

__all__ = ["load", "load_pgm", "read_yaml", "save", "to_image"]


# --------------------------------------------------------------------------------------------
# writing


def to_image(map_: OccupancyGrid | MapDocument) -> np.ndarray:
    """(H, W) uint8 trinary image (0 occupied, 254 free, 205 unknown), row 0 at the top."""
    states = _states(_grid_of(map_))
    img = np.full(states.shape, TRINARY_UNKNOWN, np.uint8)
    img[states == FREE] = TRINARY_FREE
    img[states == OCCUPIED] = TRINARY_OCCUPIED
    return img[::-1].copy()


def scale_image(map_: OccupancyGrid | MapDocument) -> np.ndarray:
    """(H, W, 4) uint8 BGRA image for scale mode, row 0 at the top.

    Grey = 255 * (1 - p), rounded to the nearest grey value that map_server's scale mode, with
    our thresholds, reads back as the cell's class; alpha 0 where the log-odds are exactly 0
    (never observed), 255 elsewhere.
    """
    grid = _grid_of(map_)
    states = _states(grid)
    grey = np.rint(255.0 * (1.0 - grid.probability().astype(np.float64)))
    ranges = _scale_grey_ranges()
    for state, (lo, hi) in ranges.items():
        sel = states == state
        grey[sel] = np.clip(grey[sel], lo, hi)
    never_seen = grid.log_odds == 0
    grey[never_seen] = TRINARY_UNKNOWN
    img = np.empty((*states.shape, 4), np.uint8)
    img[..., :3] = grey.astype(np.uint8)[..., None]
    img[..., 3] = np.where(never_seen, 0, 255)
    return img[::-1].copy()


def save(
    map_: OccupancyGrid | MapDocument, stem: str | Path, mode: str = "trinary"
) -> tuple[Path, Path]:
    """Write `stem`.pgm (trinary) or `stem`.png (scale) and `stem`.yaml; returns (image, yaml).

    A suffix .pgm/.png/.yaml on `stem` is dropped first. The YAML holds image, mode,
    resolution, origin (yaw from `doc.meta["origin_yaw"]`, else 0), negate 0 and our thresholds.
    """
    if mode not in ("trinary", "scale"):
        raise ValueError(f"ROS map mode must be 'trinary' or 'scale', got {mode!r}")
    grid = _grid_of(map_)
    stem = Path(stem)
    if stem.suffix.lower() in (".pgm", ".png", ".yaml", ".yml"):
        stem = stem.with_suffix("")
    yaml = stem.parent / (stem.name + ".yaml")
    if mode == "trinary":
        image = stem.parent / (stem.name + ".pgm")
        img = to_image(grid)
        h, w = img.shape
        image.write_bytes(b"P5\n# vacnav\n%d %d\n255\n" % (w, h) + img.tobytes())
    else:
        image = stem.parent / (stem.name + ".png")
        ok, buf = cv2.imencode(".png", scale_image(grid))
        if not ok:
            raise OSError(f"could not encode PNG for {image}")
        image.write_bytes(buf.tobytes())
    yaw = 0.0
    if isinstance(map_, MapDocument):
        yaw = float(map_.meta.get("origin_yaw", 0.0) or 0.0)
    ox, oy = grid.origin
    yaml.write_text(
        f"image: {_yaml_string(image.name)}\n"
        f"mode: {mode}\n"
        f"resolution: {_num(grid.resolution)}\n"
        f"origin: [{_num(ox)}, {_num(oy)}, {_num(yaw)}]\n"
        "negate: 0\n"
        f"occupied_thresh: {_num(OCCUPIED_THRESH)}\n"
        f"free_thresh: {_num(FREE_THRESH)}\n"
    )
    return image, yaml


def _grid_of(map_: OccupancyGrid | MapDocument) -> OccupancyGrid:
    if isinstance(map_, MapDocument):
        return map_.grid
    if isinstance(map_, OccupancyGrid):
        return map_
    raise TypeError(f"expected a MapDocument or an OccupancyGrid, got {type(map_).__name__}")


def _states(grid: OccupancyGrid) -> np.ndarray:
    """(H, W) int8 classes exactly as MapDocument.cell_states() computes them."""
    return _classes(grid.probability())


def _classes(prob: np.ndarray) -> np.ndarray:
    states = np.full(prob.shape, UNKNOWN, np.int8)
    states[prob < FREE_THRESH] = FREE
    states[prob > OCCUPIED_THRESH] = OCCUPIED
    return states


def _scale_grey_ranges() -> dict[int, tuple[int, int]]:
    """Per class, the (lowest, highest) grey that scale mode with our thresholds reads as it."""
    grey = np.arange(256, dtype=np.float64)
    occ = (255.0 - grey) / 255.0
    cls = np.where(occ > OCCUPIED_THRESH, OCCUPIED, np.where(occ < FREE_THRESH, FREE, UNKNOWN))
    return {int(c): (int(grey[cls == c].min()), int(grey[cls == c].max())) for c in np.unique(cls)}


def _num(x: float) -> str:
    """The shortest text that reads back as the same float (YAML and yaml-cpp parse it)."""
    x = float(x)
    return "0.0" if x == 0 else repr(x)


def _yaml_string(text: str) -> str:
    if text and re.fullmatch(r"[A-Za-z0-9_./+-][A-Za-z0-9_./+ -]*", text) and text[-1] != " ":
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------
# reading the YAML


@dataclass(frozen=True, slots=True)
class YamlEntry:
    """One `key: value` of a map YAML: a scalar (str, or None for an empty value) or a list of
    scalars, and the 1-based line it came from."""

    value: str | list[str] | None
    line: int


_KEY = re.compile(r"""([A-Za-z_][\w.-]*|"[^"\\]*"|'[^']*')[ \t]*:(?:[ \t]+|$)(.*)$""")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/", "0": "\0", "r": "\r"}


def read_yaml(path: str | Path) -> dict[str, YamlEntry]:
    """The flat `key: value` YAML map_server reads: scalars, quoted strings, `[a, b]` lists (also
    over several lines), `- item` block lists, `#` comments, `---` markers.

    Nested maps, anchors and multi-line strings are not map_server metadata and are refused.
    Raises CorruptMap naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise MapNotFound(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise CorruptMap(f"{path}: {size:,} bytes is far larger than a map YAML")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptMap(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
    lines = text.splitlines()
    entries: dict[str, YamlEntry] = {}
    k = 0
    while k < len(lines):
        number = k + 1
        line = _strip_comment(lines[k]).rstrip()
        k += 1
        if not line.strip() or line.startswith(("---", "...", "%")):
            continue
        if line[0] in " \t":
            raise CorruptMap(f"{path}: line {number}: indented line; nested values are not read")
        match = _KEY.match(line)
        if match is None:
            raise CorruptMap(f"{path}: line {number}: expected 'key: value', got {line[:40]!r}")
        key, rest = _unquote(match.group(1), path, number), match.group(2).strip()
        if key in entries:
            raise CorruptMap(f"{path}: line {number}: key '{key}' given twice")
        if rest.startswith("["):
            while "]" not in rest and k < len(lines):  # a flow list over several lines
                rest += " " + _strip_comment(lines[k]).strip()
                k += 1
            value: str | list[str] | None = _flow_list(rest, path, number)
        elif rest == "":
            items = []
            while k < len(lines):
                item = re.fullmatch(r"\s*-(?:\s+(.*))?", _strip_comment(lines[k]))
                if item is None:
                    break
                items.append(_scalar(item.group(1) or "", path, k + 1))
                k += 1
            value = items if items else None
        else:
            value = _scalar(rest, path, number)
        entries[key] = YamlEntry(value, number)
    return entries


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a # starting a token, outside quotes)."""
    quote, pos = "", 0
    while pos < len(line):
        ch = line[pos]
        if quote:
            if ch == "\\" and quote == '"':
                pos += 1  # skip the escaped character
            elif ch == "'" == quote and line[pos + 1 : pos + 2] == "'":
                pos += 1  # '' is a quote inside a single-quoted string
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and (pos == 0 or line[pos - 1] in " \t[,:-"):
            quote = ch
        elif ch == "#" and (pos == 0 or line[pos - 1] in " \t"):
            return line[:pos]
        pos += 1
    return line


def _flow_list(text: str, path: Path, number: int) -> list[str]:
    if not text.endswith("]") or text.count("[") != 1 or text.count("]") != 1:
        raise CorruptMap(f"{path}: line {number}: a list must be one [a, b, ...] without nesting")
    inner = text[1:-1].strip()
    if not inner:
        return []
    return [_scalar(part.strip(), path, number) for part in _split_commas(inner, path, number)]


def _split_commas(text: str, path: Path, number: int) -> list[str]:
    parts, start, quote = [], 0, ""
    for pos, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            parts.append(text[start:pos])
            start = pos + 1
    parts.append(text[start:])
    if any(not p.strip() for p in parts):
        raise CorruptMap(f"{path}: line {number}: empty item in list")
    return parts


def _scalar(text: str, path: Path, number: int) -> str:
    text = text.strip()
    if not text:
        return ""
    if text[0] in "\"'":
        return _unquote(text, path, number)
    if text[0] in "{[]}&*!|>@`%" or re.search(r":(\s|$)", text):
        raise CorruptMap(f"{path}: line {number}: unsupported YAML value {text[:30]!r}")
    return text


def _unquote(text: str, path: Path, number: int) -> str:
    quote = text[0]
    if quote not in "\"'":
        return text
    if len(text) < 2 or text[-1] != quote:
        raise CorruptMap(f"{path}: line {number}: unterminated quoted string {text[:30]!r}")
    body = text[1:-1]
    if quote == "'":
        if "'" in body.replace("''", ""):
            raise CorruptMap(f"{path}: line {number}: stray quote in {text[:30]!r}")
        return body.replace("''", "'")
    out, pos = [], 0
    while pos < len(body):
        ch = body[pos]
        if ch == '"':
            raise CorruptMap(f"{path}: line {number}: stray quote in {text[:30]!r}")
        if ch == "\\":
            nxt = body[pos + 1 : pos + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                pos += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[pos + 2 : pos + 6]):
                out.append(chr(int(body[pos + 2 : pos + 6], 16)))
                pos += 6
                continue
            raise CorruptMap(f"{path}: line {number}: bad escape in {text[:30]!r}")
        out.append(ch)
        pos += 1
    return "".join(out)


_NUMBER = re.compile(
    r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_TRUE = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}
_FALSE = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}


class _Fields:
    """Typed access to the entries of one map YAML; errors name the file, line and key."""

    def __init__(self, entries: dict[str, YamlEntry], path: Path) -> None:
        self.entries, self.path = entries, path

    def where(self, key: str) -> str:
        entry = self.entries.get(key)
        return f"{self.path}: line {entry.line}: '{key}'" if entry else f"{self.path}: '{key}'"

    def scalar(self, key: str, default: str | None = None) -> str:
        entry = self.entries.get(key)
        if entry is None or entry.value is None:
            if default is None:
                raise CorruptMap(f"{self.path}: missing key '{key}'")
            return default
        if isinstance(entry.value, list):
            raise CorruptMap(f"{self.where(key)} must be a single value, not a list")
        return entry.value

    def number(self, key: str, default: float | None = None) -> float:
        text = self.scalar(key, None if default is None else repr(default))
        return self._to_float(key, text)

    def _to_float(self, key: str, text: str) -> float:
        if not _NUMBER.fullmatch(text):
            raise CorruptMap(f"{self.where(key)}: not a number: {text[:30]!r}")
        value = math.nan if text.lstrip("+-").lower() in (".inf", ".nan") else float(text)
        if not math.isfinite(value):
            raise CorruptMap(f"{self.where(key)}: must be a finite number, got {text!r}")
        return value

    def numbers(self, key: str) -> list[float]:
        entry = self.entries.get(key)
        if entry is None or entry.value is None:
            raise CorruptMap(f"{self.path}: missing key '{key}'")
        if not isinstance(entry.value, list):
            raise CorruptMap(f"{self.where(key)} must be a list [x, y, yaw]")
        return [self._to_float(key, item) for item in entry.value]

    def flag(self, key: str, default: bool) -> bool:
        text = self.scalar(key, "1" if default else "0")
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if re.fullmatch(r"[-+]?\d+", text):
            return int(text) != 0
        raise CorruptMap(f"{self.where(key)}: expected 0, 1, true or false, got {text[:30]!r}")


# --------------------------------------------------------------------------------------------
# reading the image


def load_pgm(path: str | Path) -> np.ndarray:
    """Read an 8-bit PGM, binary (P5) or ASCII (P2), as an (H, W) uint8 array, row 0 at the top."""
    path = Path(path)
    pixels, maxval = _read_pgm(path.read_bytes(), path)
    if maxval > 255:
        raise CorruptMap(f"{path}: only 8-bit PGM images are read here, got max value {maxval}")
    return pixels.astype(np.uint8, copy=False)


def _read_pgm(data: bytes, path: Path) -> tuple[np.ndarray, int]:
    """(H, W) uint8 or uint16 pixels of a P5 or P2 PGM and its max value."""
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
    if (
        len(fields) < 4
        or fields[0] not in (b"P5", b"P2")
        or not all(f.isdigit() and len(f) < 10 for f in fields[1:])
    ):
        raise CorruptMap(f"{path}: not a PGM image (header {b' '.join(fields)[:40]!r})")
    w, h, maxval = (int(f) for f in fields[1:])
    if w == 0 or h == 0 or not 0 < maxval < 65536:
        raise CorruptMap(f"{path}: bad PGM header: {w}x{h}, max value {maxval}")
    if w * h > MAX_PIXELS:
        raise CorruptMap(f"{path}: {w}x{h} pixels is more than a map can have ({MAX_PIXELS:,})")
    start = pos + 1  # one whitespace byte ends the header
    if fields[0] == b"P5":
        width = 1 if maxval < 256 else 2
        if size - start < w * h * width:
            raise CorruptMap(
                f"{path}: truncated: {max(0, size - start)} of {w * h * width} pixel bytes"
            )
        dtype = np.uint8 if width == 1 else np.dtype(">u2")
        pixels = np.frombuffer(data, dtype, count=w * h, offset=start).astype(
            np.uint8 if width == 1 else np.uint16
        )
    else:
        pixels = _ascii_values(data, start, w * h, path)
    if int(pixels.max()) > maxval:
        raise CorruptMap(f"{path}: pixel value {int(pixels.max())} above the max value {maxval}")
    return pixels.reshape(h, w).astype(np.uint8 if maxval < 256 else np.uint16), maxval


def _ascii_values(data: bytes, start: int, count: int, path: Path) -> np.ndarray:
    """The first `count` decimal numbers of data[start:], separated by whitespace (a P2 raster)."""
    if len(data) - start < 2 * count - 1:
        raise CorruptMap(f"{path}: truncated: too few bytes for {count} ASCII pixel values")
    buf = np.frombuffer(data, np.uint8)[start:]
    digit = (buf >= 48) & (buf <= 57)
    before = np.concatenate(([False], digit[:-1]))
    after = np.concatenate((digit[1:], [False]))
    starts = np.flatnonzero(digit & ~before)
    ends = np.flatnonzero(digit & ~after)
    limit = min(len(buf), int(ends[count - 1]) + 2) if len(starts) >= count else len(buf)
    bad = ~(digit[:limit] | np.isin(buf[:limit], np.frombuffer(b" \t\n\r\x0b\x0c", np.uint8)))
    if bad.any():
        offset = start + int(np.argmax(bad))
        raise CorruptMap(f"{path}: byte offset {offset}: not a digit in the ASCII PGM raster")
    if len(starts) < count:
        raise CorruptMap(f"{path}: truncated: {len(starts)} of {count} ASCII pixel values")
    starts, ends = starts[:count], ends[:count]
    if int((ends - starts).max()) >= 9:
        raise CorruptMap(f"{path}: an ASCII pixel value has too many digits")
    token = np.cumsum(digit[: ends[-1] + 1] & ~before[: ends[-1] + 1]) - 1
    where = np.flatnonzero(digit[: ends[-1] + 1])
    tok = token[where]
    place = ends[tok] - where
    values = np.bincount(
        tok, weights=(buf[where] - 48).astype(np.float64) * 10.0**place, minlength=count
    )
    return values.astype(np.uint32)


def _read_image(path: Path, key_where: str) -> tuple[np.ndarray, int]:
    """(H, W) or (H, W, C) uint8/uint16 pixels of any image file, and the channel max value."""
    if not path.is_file():
        raise CorruptMap(f"{key_where}: image file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise CorruptMap(f"{path}: {size:,} bytes is far larger than a map image")
    data = path.read_bytes()
    if data[:2] in (b"P5", b"P2"):
        return _read_pgm(data, path)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if w * h > MAX_PIXELS:
            raise CorruptMap(f"{path}: {w}x{h} pixels is more than a map can have")
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise CorruptMap(f"{path}: cannot decode the image ({str(exc).strip()[:80]})") from None
    if pixels is None:
        raise CorruptMap(f"{path}: cannot decode the image (not a PGM, PNG or other known format)")
    if pixels.dtype == np.uint8:
        maxval = 255
    elif pixels.dtype == np.uint16:
        maxval = 65535
    else:
        raise CorruptMap(f"{path}: {pixels.dtype} pixels are not read (8 or 16 bits only)")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] > 4):
        raise CorruptMap(f"{path}: unsupported image layout {pixels.shape}")
    return pixels, maxval


def _channel_sum(pixels: np.ndarray, with_alpha: bool) -> tuple[np.ndarray, int, np.ndarray]:
    """(sum of the averaged channels (H, W) int32, how many were averaged, opaque (H, W) bool).

    Grey+alpha counts the grey three times, as R = G = B, like the RGBA map_server sees.
    """
    if pixels.ndim == 2:
        return pixels.astype(np.int32), 1, np.ones(pixels.shape, bool)
    channels = pixels.shape[2]
    alpha = pixels[..., -1] if channels in (2, 4) else None
    if channels in (1, 2):
        total, n = pixels[..., 0].astype(np.int32) * 3, 3
    else:
        total, n = pixels[..., :3].sum(axis=2, dtype=np.int32), 3
    maxval = 255 if pixels.dtype == np.uint8 else 65535
    opaque = np.ones(pixels.shape[:2], bool) if alpha is None else alpha == maxval
    if alpha is not None and with_alpha:
        total, n = total + alpha, n + 1
    return total, n, opaque


# --------------------------------------------------------------------------------------------
# reading a map


def load(yaml_path: str | Path) -> MapDocument:
    """A ROS map_server map (YAML + image) as a MapDocument; see the module docstring.

    map_server requires negate, occupied_thresh, free_thresh and a 3-item origin; we read files
    without them too (negate 0, thresholds 0.65 / 0.196, yaw 0). Raises MapNotFound for a
    missing YAML and CorruptMap naming the file and the key or line for a broken YAML, a missing
    or unreadable image, bad numbers, a resolution outside RESOLUTION_RANGE (1e-4 .. 100 m per
    cell), an origin x or y farther than MAX_ORIGIN (1e6 m), thresholds outside [0, 1] or
    free_thresh > occupied_thresh.
    """
    yaml_path = Path(yaml_path)
    fields = _Fields(read_yaml(yaml_path), yaml_path)
    image_name = fields.scalar("image")
    if not image_name.strip():
        raise CorruptMap(f"{fields.where('image')} is empty")
    resolution = fields.number("resolution")
    low, high = RESOLUTION_RANGE
    if not low <= resolution <= high:
        raise CorruptMap(
            f"{fields.where('resolution')} must lie in [{low:g}, {high:g}] m per cell, "
            f"got {resolution!r}"
        )
    origin = fields.numbers("origin")
    if len(origin) not in (2, 3):
        raise CorruptMap(f"{fields.where('origin')} must be [x, y, yaw], got {len(origin)} items")
    for axis, value in zip("xy", origin[:2], strict=False):
        if not abs(value) <= MAX_ORIGIN:
            raise CorruptMap(
                f"{fields.where('origin')}: {axis} {value!r} m is farther than {MAX_ORIGIN:g} m"
            )
    yaw = origin[2] if len(origin) == 3 else 0.0
    mode = fields.scalar("mode", "trinary").lower()
    if mode not in MODES:
        raise CorruptMap(f"{fields.where('mode')} must be trinary, scale or raw, got {mode!r}")
    negate = fields.flag("negate", False)
    occ_th = fields.number("occupied_thresh", OCCUPIED_THRESH)
    free_th = fields.number("free_thresh", FREE_THRESH)
    for key, value in (("occupied_thresh", occ_th), ("free_thresh", free_th)):
        if not 0.0 <= value <= 1.0:
            raise CorruptMap(f"{fields.where(key)} must lie in [0, 1], got {value}")
    if free_th > occ_th:
        raise CorruptMap(
            f"{fields.where('free_thresh')} ({free_th}) is above occupied_thresh ({occ_th})"
        )
    image_path = Path(image_name)
    if not image_path.is_absolute():
        image_path = yaml_path.parent / image_path
    pixels, maxval = _read_image(image_path, fields.where("image"))

    total, n, opaque = _channel_sum(pixels, with_alpha=mode == "trinary")
    lut_lo = _lookup(mode, negate, occ_th, free_th, n * maxval)
    log_odds = lut_lo[total]
    if mode == "scale":
        log_odds[~opaque] = 0.0
    grid = OccupancyGrid(log_odds[::-1], resolution, (origin[0], origin[1]))
    meta = {
        "source": yaml_path.name,
        "image": image_name,
        "mode": mode,
        "negate": negate,
        "occupied_thresh": occ_th,
        "free_thresh": free_th,
        "origin_yaw": yaw,
    }
    return MapDocument(grid, frame=VendorFrame(vendor="ros"), meta=meta)


def _lookup(mode: str, negate: bool, occ_th: float, free_th: float, top: int) -> np.ndarray:
    """(top + 1,) float32 log-odds for each channel sum 0..top (top = channels * max value)."""
    s = np.arange(top + 1, dtype=np.float64)
    if mode == "raw":
        percent = np.rint(s / top * 255.0)
        known = percent <= 100
        prob = np.clip(percent / 100.0, P_MIN, P_MAX)
        cls = np.where(known, _classes(prob), UNKNOWN)
        prob = _banded(prob, cls)
        return _settle(np.where(known, np.log(prob / (1.0 - prob)), 0.0), cls)
    occ = s / top if negate else (top - s) / top
    occupied, free = occ > occ_th, occ < free_th
    cls = np.where(occupied, OCCUPIED, np.where(free, FREE, UNKNOWN))
    if mode == "trinary":
        lo = np.where(occupied, OCCUPIED_LOG_ODDS, np.where(free, FREE_LOG_ODDS, 0.0))
        return _settle(lo, cls)
    # scale: map the file's [0, free_th, occ_th, 1] onto ours, then keep each class inside its band
    with np.errstate(divide="ignore", invalid="ignore"):
        low = occ / free_th * FREE_THRESH
        span = occ_th - free_th
        mid = FREE_THRESH + ((occ - free_th) / span if span > 0 else 0.5) * (
            OCCUPIED_THRESH - FREE_THRESH
        )
        high = OCCUPIED_THRESH + (occ - occ_th) / (1.0 - occ_th) * (1.0 - OCCUPIED_THRESH)
    prob = _banded(np.where(occupied, high, np.where(free, low, mid)), cls)
    return _settle(np.log(prob / (1.0 - prob)), cls)


def _banded(prob: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Probabilities clamped into their class's band of ours, a little off the thresholds."""
    return np.where(
        cls == OCCUPIED,
        np.clip(prob, OCCUPIED_THRESH + _MARGIN, P_MAX),
        np.where(
            cls == FREE,
            np.clip(prob, P_MIN, FREE_THRESH - _MARGIN),
            np.clip(prob, FREE_THRESH + _MARGIN, OCCUPIED_THRESH - _MARGIN),
        ),
    )


def _settle(lo: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """float32 log-odds whose class (as cell_states computes it) is `cls`; where rounding would
    change the class, the class's plain value (FREE_LOG_ODDS, OCCUPIED_LOG_ODDS or 0) is used."""
    lo = lo.astype(np.float32)
    prob = (1.0 / (1.0 + np.exp(-lo))).astype(np.float32)
    wrong = _classes(prob) != cls
    if wrong.any():
        plain = np.where(
            cls == OCCUPIED, OCCUPIED_LOG_ODDS, np.where(cls == FREE, FREE_LOG_ODDS, 0)
        )
        lo[wrong] = plain[wrong]
    return lo
