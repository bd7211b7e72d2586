"""Lidar byte-stream decoding speed (firmware_bridge.lds), in points per second.

A real LDS sends about 1,800 points/s (5 turns of 360 at 300 rpm; Roborock-OpenSource/Cullinan);
the decoder must keep up with 100x that on one core. Each case decodes 200 turns of random
scans fed in 4 KiB chunks (a live port read often) or 64 KiB chunks (what `read_scans` reads from
a file at once) and reports the multiple of 1,800 points/s in extra_info (`realtime_x`).
"""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.lds import LdsDecoder, encode_delta2, encode_neato
from maps.scan import Scan

REAL_POINTS_PER_S = 1800.0
TURNS = 200
ENCODE = {"neato": encode_neato, "delta2": encode_delta2}


def _stream(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    angles = (2 * np.pi * np.arange(360) / 360).astype(np.float32)
    parts = []
    for _ in range(TURNS):
        ranges = rng.uniform(0.1, 5.8, 360).astype(np.float32)
        ranges[rng.random(360) < 0.03] = np.inf
        parts.append(ENCODE[fmt](Scan(ranges, angles, 0.0, 0.15, 6.0)))
    return b"".join(parts)


def _decode(fmt: str, stream: bytes, chunk: int) -> int:
    decoder = LdsDecoder(fmt)
    points = 0
    for i in range(0, len(stream), chunk):
        for scan in decoder.feed(stream[i : i + chunk]):
            points += len(scan)
    for scan in decoder.flush():
        points += len(scan)
    return points


@pytest.mark.parametrize("chunk", [4096, 65536], ids=["4KiB", "64KiB"])
@pytest.mark.parametrize(
    "fmt", ["neato", "delta2"], ids=[f"neato-{TURNS}turns", f"delta2-{TURNS}turns"]
)
def test_decode_throughput(benchmark, fmt, chunk):
    stream = _stream(fmt)
    points = _decode(fmt, stream, chunk)  # warm up
    assert points == TURNS * 360
    benchmark.pedantic(_decode, args=(fmt, stream, chunk), rounds=5, iterations=1)
    seconds = benchmark.stats.stats.median
    rate = points / seconds
    benchmark.extra_info["points"] = points
    benchmark.extra_info["bytes"] = len(stream)
    benchmark.extra_info["points_per_s"] = round(rate)
    benchmark.extra_info["MB_per_s"] = round(len(stream) / seconds / 1e6, 2)
    benchmark.extra_info["realtime_x"] = round(rate / REAL_POINTS_PER_S)
    print(
        f"\n{fmt}, {chunk} B chunks: {rate:,.0f} points/s "
        f"= {rate / REAL_POINTS_PER_S:,.0f}x a real LDS"
    )
