"""Lidar byte streams (firmware_bridge.lds): wire layout, round trips, chunking, resync, fuzz,
format detection and the byte sources (file, tcp, serial)."""

from __future__ import annotations

import socket
import sys
import threading
import time

import numpy as np
import pytest

from firmware_bridge.errors import BridgeError
from firmware_bridge.lds import (
    LdsDecoder,
    LdsError,
    detect_format,
    encode_delta2,
    encode_neato,
    open_source,
    read_scans,
)
from firmware_bridge.simulated import SimulatedRobot
from firmware_bridge.world import World
from maps.scan import Scan

QUANTUM = {"neato": 0.0005, "delta2": 0.000125}  # half the distance LSB, metres
ENCODE = {"neato": encode_neato, "delta2": encode_delta2}
PERIOD = {"neato": 60.0 / 300.0, "delta2": 60.0 / 315.0}  # default rpm of the encoders
FLOAT_SLACK = 2e-6  # float32 metres near 6 m


# ------------------------------------------------------------------------- helpers
def fold_checksum(packet: bytes) -> int:
    """The Neato checksum as the C drivers compute it (uint32 arithmetic)."""
    chk32 = 0
    for i in range(10):
        word = packet[2 * i] | (packet[2 * i + 1] << 8)
        chk32 = ((chk32 << 1) + word) & 0xFFFFFFFF
    return ((chk32 & 0x7FFF) + (chk32 >> 15)) & 0x7FFF


def ref_check(data: bytes, i: int, fmt: str) -> tuple[str, int]:
    """Byte-at-a-time status of a packet starting at data[i]: a slow twin of the decoder's
    vectorised candidate check. Returns (status, length)."""
    n = len(data)
    if fmt == "neato":
        if data[i] != 0xFA:
            return "none", 0
        if i + 1 >= n:
            return "open", 0
        if not 0xA0 <= data[i + 1] <= 0xF9:
            return "none", 0
        if i + 22 > n:
            return "open", 0
        packet = data[i : i + 22]
        ok = fold_checksum(packet) == packet[20] | (packet[21] << 8)
        return ("valid" if ok else "bad"), 22
    if data[i] != 0xAA:
        return "none", 0
    if i + 8 > n:
        return "open", 0
    frame_len = (data[i + 1] << 8) | data[i + 2]
    params = (data[i + 6] << 8) | data[i + 7]
    command = data[i + 5]
    plausible = (
        data[i + 3] == 0x01
        and data[i + 4] == 0x61
        and frame_len == params + 8
        and params <= 905
        and (
            (command == 0xAD and params >= 5 and (params - 5) % 3 == 0)
            or (command == 0xAE and params >= 1)
        )
    )
    if not plausible:
        return "none", 0
    if i + frame_len + 2 > n:
        return "open", 0
    ok = (
        sum(data[i : i + frame_len]) & 0xFFFF
        == (data[i + frame_len] << 8) | data[i + frame_len + 1]
    )
    return ("valid" if ok else "bad"), frame_len + 2


def ref_parse(data: bytes, fmt: str) -> dict:
    """Slow reference of the decoder's packet selection and counters over a whole stream."""
    i, packets, skipped, bad, runs, in_skip = 0, [], 0, 0, 0, False
    while i < len(data):
        status, length = ref_check(data, i, fmt)
        if status == "open":
            break
        if status == "valid":
            packets.append(i)
            i += length
            in_skip = False
            continue
        bad += status == "bad"
        skipped += 1
        runs += not in_skip
        in_skip = True
        i += 1
    return {
        "packets": len(packets),
        "bytes_skipped": skipped,
        "checksum_errors": bad,
        "resyncs": runs,
        "bytes_buffered": len(data) - i,
    }


def counters(d: LdsDecoder) -> dict:
    return {
        "packets": d.packets,
        "bytes_skipped": d.bytes_skipped,
        "checksum_errors": d.checksum_errors,
        "resyncs": d.resyncs,
        "bytes_buffered": d.bytes_buffered,
    }


def decode(fmt: str, stream: bytes, chunks: list[int] | None = None, **options):
    d = LdsDecoder(fmt, **options)
    out = []
    if chunks is None:
        out += d.feed(stream)
    else:
        pos = 0
        for size in chunks:
            out += d.feed(stream[pos : pos + size])
            pos += size
        assert pos >= len(stream)
    return d, out


def random_chunks(rng: np.random.Generator, total: int) -> list[int]:
    sizes, left = [], total
    while left > 0:
        kind = rng.integers(3)
        hi = [3, 64, total][kind]
        size = int(min(left, rng.integers(1, hi + 1)))
        sizes.append(size)
        left -= size
    return sizes


def assert_same_scans(a: list[Scan], b: list[Scan], stamps: bool = True) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.ranges, y.ranges)
        np.testing.assert_array_equal(x.angles, y.angles)
        assert x.duration == pytest.approx(y.duration)
        if stamps:
            assert x.stamp == pytest.approx(y.stamp, abs=1e-9)


def uniform_scan(rng: np.random.Generator, beams: int = 360, offset: float = 0.0) -> Scan:
    angles = (offset + 2 * np.pi * np.arange(beams) / beams).astype(np.float32)
    ranges = rng.uniform(0.05, 5.5, beams).astype(np.float32)
    ranges[rng.random(beams) < 0.05] = np.inf
    return Scan(ranges, angles, 0.0, 0.15, 6.0)


def assert_nearest(scan: Scan, got: Scan, target: np.ndarray, quantum: float) -> None:
    """Each decoded beam holds the range of a source beam nearest to its target angle (rad);
    either of two equally near beams will do."""
    src = scan.angles.astype(np.float64)
    gap = np.abs(np.mod(src[None, :] - target[:, None] + np.pi, 2 * np.pi) - np.pi)
    near = gap <= gap.min(axis=1, keepdims=True) + 1e-6
    assert len(got) == target.size
    for k in range(target.size):
        options = scan.ranges[near[k]]
        if np.isinf(got.ranges[k]):
            assert np.isinf(options).any()
        else:
            assert np.abs(options - got.ranges[k]).min() <= quantum + FLOAT_SLACK


@pytest.fixture(scope="module")
def sim_scans() -> list[Scan]:
    """Seven real revolutions of the simulated LDS while the robot drives and turns."""
    robot = SimulatedRobot(World.default(), seed=3)
    robot.drive(0.25, 0.4, 1.5)
    scans = robot.scans()
    assert len(scans) >= 6
    return scans


@pytest.fixture(scope="module")
def streams(sim_scans) -> dict[str, bytes]:
    return {fmt: b"".join(ENCODE[fmt](s) for s in sim_scans) for fmt in ENCODE}


# ------------------------------------------------------------------------- wire layout
def test_neato_packets_follow_the_driver_layout(rng):
    scan = uniform_scan(rng)
    stream = encode_neato(scan, rpm=287.5)
    assert len(stream) == 90 * 22
    for i in range(90):
        p = stream[22 * i : 22 * i + 22]
        assert p[0] == 0xFA and p[1] == 0xA0 + i
        assert (p[2] | p[3] << 8) == round(287.5 * 64)
        assert (p[20] | p[21] << 8) == fold_checksum(p)
        for j in range(4):
            word = p[4 + 4 * j] | p[5 + 4 * j] << 8
            r = float(scan.ranges[4 * i + j])
            if np.isfinite(r):
                assert word & 0xC000 == 0 and word == round(r * 1000)
            else:
                assert word & 0x8000
    # one flipped bit anywhere in a packet breaks its checksum
    bad = bytearray(stream[:22])
    bad[9] ^= 0x10
    assert fold_checksum(bytes(bad)) != (bad[20] | bad[21] << 8)


def test_delta2_frames_follow_the_driver_layout(rng):
    scan = uniform_scan(rng)
    stream = encode_delta2(scan, rpm=315.0)
    size = 8 + 5 + 3 * 24 + 2
    assert len(stream) == 15 * size
    for k in range(15):
        f = stream[size * k : size * (k + 1)]
        assert f[0] == 0xAA and f[3] == 0x01 and f[4] == 0x61 and f[5] == 0xAD
        assert (f[1] << 8 | f[2]) == size - 2
        assert (f[6] << 8 | f[7]) == 5 + 3 * 24
        assert f[8] * 3 == 315  # speed byte x 0.05 rev/s
        assert (f[11] << 8 | f[12]) == 2400 * k  # start angle, 0.01 deg
        assert (f[-2] << 8 | f[-1]) == sum(f[:-2]) & 0xFFFF
        for j in range(24):
            units = f[14 + 3 * j] << 8 | f[15 + 3 * j]
            r = float(scan.ranges[24 * k + j])
            assert units == (round(r * 4000) if np.isfinite(r) else 0)


# ------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["neato", "delta2"])
def test_round_trip_of_simulated_scans(fmt, sim_scans, streams):
    d = LdsDecoder(fmt, range_max=10.0)
    out = d.feed(streams[fmt]) + d.flush()
    assert len(out) == len(sim_scans) == d.turns and d.turns_dropped == 0
    assert d.packets == len(sim_scans) * (90 if fmt == "neato" else 15)
    assert d.bytes_skipped == d.resyncs == d.checksum_errors == d.bytes_buffered == 0
    period = PERIOD[fmt]
    for k, (src, got) in enumerate(zip(sim_scans, out, strict=True)):
        assert len(got) == 360
        np.testing.assert_allclose(got.angles, src.angles, atol=1e-6)
        valid = np.isfinite(src.ranges)
        assert np.array_equal(np.isfinite(got.ranges), valid)  # invalid stays invalid
        err = np.abs(got.ranges[valid] - src.ranges[valid])
        assert err.max() <= QUANTUM[fmt] + FLOAT_SLACK
        assert got.stamp == pytest.approx(k * period)  # running clock from the rpm
        assert got.duration == pytest.approx(period * 359 / 360)
        assert got.range_min == 0.15 and got.range_max == 10.0


@pytest.mark.parametrize("fmt", ["neato", "delta2"])
def test_decoder_range_max_makes_far_readings_no_return(fmt, rng):
    scan = uniform_scan(rng)
    ranges = scan.ranges.copy()
    ranges[::7] = 8.5
    scan = Scan(ranges, scan.angles, 0.0, 0.0, 20.0)
    _, out = decode(fmt, ENCODE[fmt](scan) * 2)
    assert np.isinf(out[0].ranges[::7]).all()  # default range_max: 6 m neato, 8 m delta2
    assert np.isfinite(out[0].ranges[1::7]).sum() > 40
    _, out = decode(fmt, ENCODE[fmt](scan) * 2, range_max=10.0)
    assert np.allclose(out[0].ranges[::7], 8.5, atol=QUANTUM[fmt])


@pytest.mark.parametrize("fmt", ["neato", "delta2"])
def test_encoders_resample_to_the_nearest_beam(fmt, rng):
    # 500 beams starting at -pi; both encoders send 1-degree steps by default
    scan = uniform_scan(rng, beams=500, offset=-np.pi)
    _, out = decode(fmt, ENCODE[fmt](scan) * 2, range_max=10.0)
    assert_nearest(scan, out[0], np.deg2rad(np.arange(360.0)), QUANTUM[fmt])


def test_encoders_mark_unencodable_ranges_invalid():
    angles = np.deg2rad(np.arange(360)).astype(np.float32)
    ranges = np.full(360, 2.0, np.float32)
    ranges[10] = 17.0  # beyond the 14-bit Neato field and the Delta-2 u16 field
    ranges[20] = np.inf
    ranges[30] = 0.0  # a real reading of 0 m ("too close")
    scan = Scan(ranges, angles, 0.0, 0.0, 100.0)
    for fmt in ("neato", "delta2"):
        _, out = decode(fmt, ENCODE[fmt](scan) * 2, range_max=50.0)
        r = out[0].ranges
        assert np.isinf(r[10]) and np.isinf(r[20])
        assert 0.0 <= r[30] <= 0.00025  # delta2 sends 1 LSB: 0 is its no-return code
        assert np.allclose(np.delete(r, [10, 20, 30]), 2.0)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, 2000.0])
def test_encoders_reject_bad_rpm(bad, rng):
    scan = uniform_scan(rng)
    with pytest.raises(ValueError, match="rpm"):
        encode_neato(scan, rpm=bad)
    with pytest.raises(ValueError, match="rpm"):
        encode_delta2(scan, rpm=bad)


def test_encoders_reject_an_empty_scan():
    empty = Scan(np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0)
    with pytest.raises(ValueError, match="no beams"):
        encode_neato(empty)


def test_delta2_variants_frames_and_sample_counts(rng):
    scan = uniform_scan(rng)
    for frames, samples in ((16, 28), (15, 20), (12, 7)):
        stream = encode_delta2(scan, samples_per_frame=samples, frames_per_turn=frames) * 3
        d, out = decode("delta2", stream, frames_per_turn=frames, range_max=10.0)
        assert len(out) == 2 and d.turns_dropped == 0
        got = out[0]
        assert len(got) == frames * samples
        deg = np.arange(frames * samples) * 360.0 / (frames * samples)
        expected = np.angle(np.exp(1j * np.deg2rad(deg)))
        assert np.abs(np.angle(np.exp(1j * (got.angles - expected)))).max() < 1e-4
        assert_nearest(scan, got, np.deg2rad(deg), QUANTUM["delta2"])


def test_neato_strength_warning_keeps_distance_and_invalid_is_no_return(rng):
    packets = bytearray(encode_neato(uniform_scan(rng)) * 2)
    p = 22 * 5  # packet 5 of the first turn: beams 20..23
    packets[p + 4 : p + 6] = (1234 | 0x4000).to_bytes(2, "little")  # weak but measured
    packets[p + 8 : p + 10] = (1234 | 0x8000).to_bytes(2, "little")  # invalid
    chk = fold_checksum(bytes(packets[p : p + 22]))
    packets[p + 20 : p + 22] = chk.to_bytes(2, "little")
    _, out = decode("neato", bytes(packets))
    assert out[0].ranges[20] == pytest.approx(1.234)
    assert np.isinf(out[0].ranges[21])


def test_angle_offset_turns_every_beam(rng):
    stream = encode_neato(uniform_scan(rng)) * 2
    _, plain = decode("neato", stream)
    _, turned = decode("neato", stream, angle_offset=-np.deg2rad(10.0))
    diff = np.angle(np.exp(1j * (turned[0].angles - plain[0].angles).astype(np.float64)))
    np.testing.assert_allclose(diff, -np.deg2rad(10.0), atol=1e-6)
    np.testing.assert_array_equal(turned[0].ranges, plain[0].ranges)


# ------------------------------------------------------------------------- stamps and turns
@pytest.mark.parametrize("fmt", ["neato", "delta2"])
def test_stamps_come_from_the_chunk_that_completes_the_turn(fmt, sim_scans):
    period = PERIOD[fmt]
    d = LdsDecoder(fmt, range_max=10.0)
    out = []
    for k, scan in enumerate(sim_scans):  # turn k arrives whole at 10 + (k + 1) * period
        out += d.feed(ENCODE[fmt](scan), stamp=10.0 + (k + 1) * period)
    assert len(out) == len(sim_scans) - 1  # the last turn waits for the next wrap
    for k, scan in enumerate(out):
        assert scan.stamp == pytest.approx(10.0 + k * period)  # the turn's first beam
    last = d.flush()
    assert len(last) == 1 and last[0].stamp == pytest.approx(10.0 + (len(out)) * period)


def test_partial_first_turn_is_dropped_and_gaps_stay_inf(rng):
    scans = [uniform_scan(rng) for _ in range(3)]
    stream = b"".join(encode_neato(s) for s in scans)
    # start in the middle of the first turn, lose packets 30..39 of the second
    cut = stream[22 * 45 : 90 * 22 + 22 * 30] + stream[90 * 22 + 22 * 40 :]
    d, out = decode("neato", cut)
    out += d.flush()
    assert d.turns_dropped == 1 and len(out) == 2
    second = out[0]
    assert np.isinf(second.ranges[120:160]).all()
    keep = np.r_[0:120, 160:360]
    valid = np.isfinite(scans[1].ranges[keep])
    assert np.array_equal(np.isfinite(second.ranges[keep]), valid)
    np.testing.assert_allclose(second.ranges[keep][valid], scans[1].ranges[keep][valid], atol=6e-4)
    np.testing.assert_allclose(second.angles, out[1].angles)  # the layout stays whole
    assert d.bytes_skipped == 0  # packets were lost on the wire, not corrupted


def test_turns_with_too_little_data_are_dropped(rng):
    scans = [uniform_scan(rng) for _ in range(3)]
    stream = b"".join(encode_delta2(s) for s in scans)
    frame = len(stream) // 45
    # the second turn keeps 5 frames of 15
    cut = stream[: 15 * frame] + stream[15 * frame : 20 * frame] + stream[30 * frame :]
    d, out = decode("delta2", cut)
    out += d.flush()
    assert len(out) == 2 and d.turns_dropped == 1
    d, out = decode("delta2", cut, min_fill=0.3)
    out += d.flush()
    assert len(out) == 3 and np.isinf(out[1].ranges[120:]).all()


def test_delta2_health_frames_are_counted_not_scanned(rng):
    scans = [uniform_scan(rng) for _ in range(2)]
    health = bytes([0xAA, 0x00, 0x09, 0x01, 0x61, 0xAE, 0x00, 0x01, 0x69])
    health += (sum(health) & 0xFFFF).to_bytes(2, "big")
    a, b = encode_delta2(scans[0]), encode_delta2(scans[1])
    frame = len(a) // 15
    stream = health + a[: 4 * frame] + health + a[4 * frame :] + b + health
    d, out = decode("delta2", stream)
    out += d.flush()
    assert d.health_frames == 3 and d.packets == 33 and d.bytes_skipped == 0
    assert len(out) == 2
    _, clean = decode("delta2", a + b)
    assert_same_scans(out[:1], clean[:1])


# ------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("fmt", ["neato", "delta2"])
def test_random_chunking_gives_the_same_scans_and_counters(fmt, streams, rng):
    stream = streams[fmt]
    garbage = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    stream = garbage[:37] + stream[:1000] + garbage[37:] + stream[1000:]
    ref_d, ref = decode(fmt, stream)
    assert len(ref) >= 5
    for trial in range(6):
        chunks = [1] * len(stream) if trial == 0 else random_chunks(rng, len(stream))
        d, out = decode(fmt, stream, chunks)
        assert_same_scans(out, ref)
        assert counters(d) == counters(ref_d)
        assert d.turns == ref_d.turns and d.turns_dropped == ref_d.turns_dropped


# ------------------------------------------------------------------------- garbage
@pytest.mark.parametrize("fmt", ["neato", "delta2"])
def test_resync_after_garbage_before_between_and_inside(fmt, rng):
    scans = [uniform_scan(rng) for _ in range(5)]
    turns = [ENCODE[fmt](s) for s in scans]
    frame = len(turns[0]) // (90 if fmt == "neato" else 15)
    start = 0xFA if fmt == "neato" else 0xAA
    junk = rng.integers(0, 256, 200, dtype=np.uint8)
    junk[::9] = start  # many false starts
    junk = junk.tobytes()
    corrupted = bytearray(turns[3])
    corrupted[5 * frame + 13] ^= 0x5A  # a data byte of packet 5 (header intact)
    stream = (
        junk[:50]  # before
        + turns[0]
        + turns[1][: 7 * frame]
        + junk[50:130]  # between two packets
        + turns[1][7 * frame :]
        + turns[2][: 3 * frame + 4]
        + junk[130:]  # inside a packet: that packet is lost
        + turns[2][3 * frame + 4 :]
        + bytes(corrupted)  # a corrupt packet
        + turns[4]
    )
    d, out = decode(fmt, stream)
    out += d.flush()
    expected = ref_parse(stream, fmt)
    assert counters(d) == expected
    assert d.resyncs == 4
    assert d.checksum_errors >= 1  # at least the corrupt packet
    assert d.bytes_skipped == 200 + 2 * frame  # the junk and the two lost packets
    assert d.packets == 5 * len(turns[0]) // frame - 2
    assert len(out) == 5
    _, clean = decode(fmt, b"".join(turns))
    assert_same_scans([out[0], out[1]], clean[:2])
    assert [s.stamp for s in out[:4]] == pytest.approx([s.stamp for s in clean])
    per = 360 // (90 if fmt == "neato" else 15)
    for k, lost in ((2, 3), (3, 5)):
        gap = np.isinf(out[k].ranges[lost * per : (lost + 1) * per])
        assert gap.all()
        np.testing.assert_array_equal(
            np.delete(out[k].ranges, np.s_[lost * per : (lost + 1) * per]),
            np.delete(clean[k].ranges, np.s_[lost * per : (lost + 1) * per]),
        )


# ------------------------------------------------------------------------- fuzz
def _mutate(rng: np.random.Generator, base: bytes, start: int) -> bytes:
    data = bytearray(base)
    kind = int(rng.integers(8))
    n = len(data)
    if n < 2:
        kind = 5
    if kind == 0:  # bit flips
        for pos in rng.integers(0, n, int(rng.integers(1, 20))):
            data[pos] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # truncation at both ends
        a = int(rng.integers(0, n // 2))
        data = data[a : int(rng.integers(a, n + 1))]
    elif kind == 2:  # insertion of random bytes
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(0, len(data) + 1))
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 60)), dtype=np.uint8).tobytes()
    elif kind == 3:  # duplication of a segment
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 400)))
        pos = int(rng.integers(0, n))
        data[pos:pos] = data[a:b]
    elif kind == 4:  # deletion of segments
        for _ in range(int(rng.integers(1, 6))):
            a = int(rng.integers(0, max(1, len(data))))
            del data[a : a + int(rng.integers(1, 80))]
    elif kind == 5:  # random bytes, full of start bytes
        data = bytearray(rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8))
        if data:
            for pos in rng.integers(0, len(data), len(data) // 5 + 1):
                data[pos] = start
    elif kind == 6:  # random bytes overwriting a stretch
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 200)))
        data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    else:  # packets swapped and dropped
        step = 22 if start == 0xFA else 8 + 5 + 3 * 24 + 2  # one packet / frame
        cut = [data[i : i + step] for i in range(0, n, step)]
        for _ in range(int(rng.integers(1, 6))):
            i, j = rng.integers(0, len(cut), 2)
            cut[i], cut[j] = cut[j], cut[i]
        keep = rng.random(len(cut)) > rng.random() * 0.5
        data = bytearray(b"".join(c for c, k in zip(cut, keep, strict=True) if k))
    return bytes(data)


def _check_invariants(d: LdsDecoder, out: list[Scan], size: int) -> None:
    assert d.bytes_fed == size
    assert d.bytes_fed == d.packet_bytes + d.bytes_skipped + d.bytes_buffered
    assert 0 <= d.resyncs <= d.bytes_skipped
    assert 0 <= d.checksum_errors <= d.bytes_skipped
    assert d.turns == len(out)
    assert d.turns + d.turns_dropped <= d.packets
    for scan in out:
        assert len(scan) > 0 and scan.ranges.dtype == np.float32
        assert np.isfinite(scan.angles).all() and not np.isnan(scan.ranges).any()
        assert (scan.ranges >= 0).all() and np.isfinite(scan.stamp) and scan.duration >= 0


def test_fuzz_never_raises_and_counters_stay_consistent():
    rng = np.random.default_rng(7)
    scan_rng = np.random.default_rng(8)
    bases = {fmt: b"".join(ENCODE[fmt](uniform_scan(scan_rng)) for _ in range(2)) for fmt in ENCODE}
    health = bytes([0xAA, 0x00, 0x09, 0x01, 0x61, 0xAE, 0x00, 0x01, 0x69])
    health += (sum(health) & 0xFFFF).to_bytes(2, "big")
    bases["delta2"] = bases["delta2"][:500] + health + bases["delta2"][500:]
    compared = 0
    for trial in range(10_000):
        fmt = "neato" if trial % 2 == 0 else "delta2"
        base = bases[fmt]
        stream = _mutate(rng, base, 0xFA if fmt == "neato" else 0xAA)
        if rng.random() < 0.3:  # several mutations on top of each other
            stream = _mutate(rng, stream, 0xFA if fmt == "neato" else 0xAA)
        d = LdsDecoder(fmt, min_fill=0.0 if rng.random() < 0.1 else 0.5)
        out: list[Scan] = []
        n_cuts = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
        cuts = np.sort(rng.integers(0, len(stream) + 1, n_cuts)).tolist()
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):  # 1 to 3 chunks
            out += d.feed(stream[a:b], None if rng.random() < 0.5 else 0.01 * trial)
        _check_invariants(d, out, len(stream))
        out += d.flush()
        _check_invariants(d, out, len(stream))
        if trial % 20 == 0:  # the slow reference on a sample of the streams
            assert counters(d) == ref_parse(stream, fmt), f"trial {trial}"
            compared += 1
        if trial % 4 == 0:
            try:
                detected = detect_format(stream)
            except LdsError:
                assert d.packets == 0
            else:
                assert detected == fmt or d.packets <= 1
    assert compared == 500


# ------------------------------------------------------------------------- detection
def test_detect_format(streams, rng):
    junk = rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    assert detect_format(streams["neato"][7:400]) == "neato"
    assert detect_format(junk + streams["delta2"][:300]) == "delta2"
    with pytest.raises(LdsError, match="500 bytes"):
        detect_format(junk)
    with pytest.raises(LdsError):
        detect_format(b"")
    assert issubclass(LdsError, BridgeError)


# ------------------------------------------------------------------------- sources
def test_file_sources_and_read_scans(tmp_path, streams, sim_scans):
    path = tmp_path / "lidar.bin"
    path.write_bytes(b"\x00junk" + streams["delta2"])
    for url in (f"file:{path}", str(path), path):
        out = list(read_scans(url, range_max=10.0))  # format detected
        assert len(out) == len(sim_scans)  # the last turn is flushed at the end
        np.testing.assert_allclose(out[2].angles, sim_scans[2].angles, atol=1e-6)
    with open_source(f"file:{path}") as source:
        assert source.read(5) == b"\x00junk"
        out = list(read_scans(source, "delta2"))
        assert len(out) == len(sim_scans)


def test_missing_file_and_bad_urls(tmp_path):
    with pytest.raises(LdsError, match="no such file") as err:
        open_source(f"file:{tmp_path}/nope.bin")
    assert "nope.bin" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(LdsError, match="unknown scheme"):
        open_source("http://example.com/lidar")
    with pytest.raises(LdsError, match="HOST:PORT"):
        open_source("tcp://localhost")
    with pytest.raises(LdsError, match="baud"):
        open_source("serial:///dev/ttyUSB0?baud=fast")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(LdsError, match="junk.bin"):
        list(read_scans(str(junk)))


def _serve(payload: bytes, chunk: int = 333, hold: float = 0.0):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def run():
        conn, _ = server.accept()
        with conn:
            for i in range(0, len(payload), chunk):
                conn.sendall(payload[i : i + chunk])
            time.sleep(hold)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_tcp_source_with_a_loopback_server(streams, sim_scans):
    port, thread = _serve(streams["neato"])
    stamps = iter(np.arange(1000.0))
    out = list(read_scans(f"tcp://127.0.0.1:{port}", clock=lambda: float(next(stamps))))
    thread.join(timeout=5)
    assert len(out) == len(sim_scans)
    valid = np.isfinite(sim_scans[1].ranges)
    err = np.abs(out[1].ranges[valid] - sim_scans[1].ranges[valid])
    assert err.max() <= QUANTUM["neato"] + FLOAT_SLACK


def test_tcp_unreachable_port_and_silent_server():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(LdsError, match=f"tcp://127.0.0.1:{port}") as err:
        open_source(f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 3.0 and "\n" not in str(err.value)
    port, thread = _serve(b"", hold=1.0)  # accepts, then says nothing
    t0 = time.monotonic()
    with pytest.raises(LdsError, match="no data for 0.3 s"):
        list(read_scans(f"tcp://127.0.0.1:{port}", timeout=0.3))
    assert time.monotonic() - t0 < 3.0
    thread.join(timeout=5)


def test_serial_without_a_device():
    pytest.importorskip("serial")
    with pytest.raises(LdsError, match="/dev/ttyNOSUCHLDS") as err:
        open_source("serial:///dev/ttyNOSUCHLDS?baud=230400")
    assert "cannot open serial port" in str(err.value) and "\n" not in str(err.value)


def test_serial_without_pyserial(monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)  # import serial -> ImportError
    with pytest.raises(LdsError, match="pyserial"):
        open_source("serial:///dev/ttyUSB0")


# ------------------------------------------------------------------------- bad arguments
def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown LDS format"):
        LdsDecoder("rplidar")
    with pytest.raises(ValueError, match="range_min"):
        LdsDecoder("neato", range_min=3.0, range_max=2.0)
    with pytest.raises(ValueError, match="90 packets"):
        LdsDecoder("neato", frames_per_turn=15)
    d = LdsDecoder("delta2")
    with pytest.raises(TypeError, match="bytes"):
        d.feed("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stamp"):
        d.feed(b"\xaa", stamp=float("nan"))
    assert d.feed(bytearray(b"")) == [] and d.feed(memoryview(b"\x00")) == []
