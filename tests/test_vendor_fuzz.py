"""Fuzz: the real vendor map files, mutated, give a MapDocument or a CorruptMap, nothing else.

Mutations hit the bytes as stored (gzip, zlib, base64 text) and the bytes inside the wrapper
(re-wrapped afterwards, so that the parsers' own checks are reached, not just the inflater's).
VACNAV_FUZZ_EXAMPLES sets the number of cases (default 10,000).
"""

from __future__ import annotations

import base64
import gzip
import os
import signal
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maps._codec import encode
from maps.errors import CorruptMap
from maps.formats import parse
from maps.formats.valetudo import export
from maps.model import MapDocument

EXAMPLES = int(os.environ.get("VACNAV_FUZZ_EXAMPLES", "10000"))
VENDOR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vendor_maps"
FILES = sorted(VENDOR_DIR.glob("*/*.bin")) + sorted(VENDOR_DIR.glob("*/*.gz"))

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not FILES, reason=f"vendor map files not found in {VENDOR_DIR}"),
]


def unwrap(data: bytes) -> tuple[bytes, str]:
    """(inner bytes, wrapper name) of a stored vendor file."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), "gzip"
    try:
        return zlib.decompress(data), "zlib"
    except zlib.error:
        pass
    try:
        text = data.strip().decode("ascii")
        return zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))), "b64"
    except (UnicodeDecodeError, ValueError, zlib.error):
        return data, "raw"


def wrap(inner: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(inner, 1)
    if kind == "zlib":
        return zlib.compress(inner, 1)
    if kind == "b64":
        return base64.urlsafe_b64encode(zlib.compress(inner, 1))
    return inner


SOURCES = [(path.name, *unwrap(path.read_bytes()), path.read_bytes()) for path in FILES]


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name, inner, kind, outer = draw(st.sampled_from(SOURCES))
    target = draw(st.sampled_from(["inner", "inner", "inner", "outer"]))
    data = bytearray(inner if target == "inner" else outer)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "dup", "int"]))
        n = len(data)
        at = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "dup" and n:
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
        elif op == "int" and n >= at + 4:
            # a length or dimension field turned huge, negative or zero
            value = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
            data[at : at + 4] = value.to_bytes(4, "little")
    blob = bytes(data)
    return name, wrap(blob, kind) if target == "inner" else blob


@contextmanager
def time_limit(seconds: int):
    def fail(*_):
        raise TimeoutError(f"parser still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated())
def test_mutated_vendor_files_give_a_map_or_corrupt_map(case):
    name, data = case
    with time_limit(10):
        try:
            doc = parse(data, name)
        except CorruptMap as exc:
            assert name in str(exc)  # the message names the file
            return
    assert isinstance(doc, MapDocument)
    assert doc.grid.log_odds.size <= 64 * 2**20  # never more than the file could describe
    # what survived parsing must also survive what users do next with it
    summary = doc.summary()
    assert summary["free_m2"] >= 0 and summary["width"] == doc.grid.shape[1]
    assert sum(len(p.xy) for p in doc.paths) <= 4_000_000
    export(doc)
    encode(doc, None)


def test_every_fixture_parses_unmutated():
    for name, _inner, _kind, outer in SOURCES:
        assert isinstance(parse(outer, name), MapDocument), name
