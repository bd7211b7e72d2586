"""CARMEN log reader: exact decoding, every kind of bad input, and the real benchmark logs."""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import lzma
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.errors import LogFormatError
from firmware_bridge.logs import LogScan, LogSummary, read_log, summarize
from maps import Odometry, Pose

SLAM_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "slam"

COMPRESS = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


def flaser(ranges, odom=(0.0, 0.0, 0.0), stamp=1.0, laser=None) -> str:
    """A FLASER line: n, ranges, laser pose, odometry pose, ipc stamp, host, logger stamp."""
    laser = odom if laser is None else laser
    fields = ["FLASER", str(len(ranges)), *map(str, ranges), *map(str, laser), *map(str, odom)]
    return " ".join([*fields, str(stamp), "host", "0.5"])


def robotlaser(ranges, *, start, res, max_range, laser, robot, tv=0.0, rv=0.0, stamp=1.0,
               remissions=()) -> str:  # fmt: skip
    """A ROBOTLASER1 line in the layout of SOURCES.md."""
    fields = ["ROBOTLASER1", "0", start, res * len(ranges), res, max_range, 0.1, 0]
    fields += [len(ranges), *ranges, len(remissions), *remissions, *laser, *robot]
    fields += [tv, rv, 0.5, 0.2, 0.3, stamp, "host", 0.7]
    return " ".join(map(str, fields))


def write_log(tmp_path: Path, lines, compression="plain", name="test.log") -> Path:
    text = "".join(line + "\n" for line in lines) if isinstance(lines, list) else lines
    data = text.encode("latin-1") if isinstance(text, str) else text
    path = tmp_path / name
    path.write_bytes(COMPRESS[compression](data))
    return path


def read_all(path, **kw):
    reader = read_log(path, **kw)
    return list(reader), reader.summary


def big_log(lines=3000) -> bytes:
    """About 300 kB of FLASER lines: several 100 kB bzip2 blocks at compresslevel=1."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(lines):
        ranges = np.round(rng.uniform(0.2, 20.0, 20), 2)
        rows.append(flaser(ranges.tolist(), odom=(0.01 * i, 0.0, 0.0), stamp=100 + 0.1 * i))
    return ("\n".join(rows) + "\n").encode("latin-1")


SYNTHETIC = [
    "# a comment with a latin-1 byte: caf\xe9",
    "PARAM robot_frontlaser_offset 0.25 nohost 0",
    "PARAM robot_use_laser on 1.0 host 1.0",
    "",
    "ODOM 1.0 2.0 0.5 0.3 0.1 0.0 100.0 host 0.0",
    flaser([1.0, 2.5, 81.83, 0.0], odom=(1.0, 2.0, 0.5), stamp=100.05),
    "TRUEPOS 1.0 2.0 0.5 1.0 2.0 0.5 100.06 host 0.06",
    # laser 0.1 m ahead of and 0.02 m left of the robot, robot facing +y
    robotlaser([1.5, 60.0, 2.0], start=-1.0, res=0.5, max_range=50.0,
               laser=(0.98, 1.1, 1.570796), robot=(1.0, 1.0, 1.570796),
               tv=0.3, rv=-0.2, stamp=100.1, remissions=(0.5, 0.6)),
]  # fmt: skip


# -- exact decoding ---------------------------------------------------------------------------
@pytest.mark.parametrize("compression", sorted(COMPRESS))
def test_synthetic_log_decodes_exactly(tmp_path, compression):
    items, summary = read_all(write_log(tmp_path, SYNTHETIC, compression))

    odom, first, second = items  # file order: ODOM, FLASER, ROBOTLASER1
    assert odom == Odometry(Pose(1.0, 2.0, 0.5), 100.0, 0.3, 0.1)

    assert isinstance(first, LogScan) and first.line == 6
    scan = first.scan
    np.testing.assert_allclose(scan.angles, [-np.pi / 2, -np.pi / 4, 0.0, np.pi / 4], atol=1e-7)
    np.testing.assert_array_equal(scan.ranges, np.array([1.0, 2.5, np.inf, 0.0], np.float32))
    assert scan.ranges.dtype == np.float32
    assert scan.hit_mask.tolist() == [True, True, False, False]  # 0 m = no echo, never a hit
    assert scan.stamp == 100.05 and scan.range_max == 80.0
    assert scan.sensor == Pose(0.25, 0.0, 0.0)
    assert first.odometry == Odometry(Pose(1.0, 2.0, 0.5), 100.05)

    assert second.line == 8
    scan = second.scan
    np.testing.assert_allclose(scan.angles, [-1.0, -0.5, 0.0], atol=1e-7)
    # the line's own max (50 m) makes 60 m a no-return even under the 80 m default
    np.testing.assert_array_equal(scan.ranges, np.array([1.5, np.inf, 2.0], np.float32))
    assert scan.range_max == 50.0 and scan.stamp == 100.1
    assert (scan.sensor.x, scan.sensor.y, scan.sensor.theta) == (0.1, 0.02, 0.0)
    assert second.odometry == Odometry(Pose(1.0, 1.0, 1.570796), 100.1, 0.3, -0.2)

    assert summary == LogSummary(
        path=str(tmp_path / "test.log"),
        lines=8,
        scans=2,
        beams={4: 1, 3: 1},
        odometry=1,
        params={"robot_frontlaser_offset": "0.25", "robot_use_laser": "on"},
        first_stamp=100.05,
        last_stamp=100.1,
        other_lines=2,
        laser_offset=0.25,
    )
    assert summary.duration_s == pytest.approx(0.05)
    report = json.loads(json.dumps(summary.as_dict()))
    assert report["beams"] == {"4": 1, "3": 1} and report["duration_s"] == pytest.approx(0.05)


def test_compression_is_told_by_magic_bytes_not_the_name(tmp_path):
    bz2_named_txt = write_log(tmp_path, SYNTHETIC, "bzip2", name="log.txt")
    plain_named_gz = write_log(tmp_path, SYNTHETIC, "plain", name="log.clf.gz")
    assert summarize(bz2_named_txt).scans == summarize(plain_named_gz).scans == 2


def test_crlf_line_endings_are_read(tmp_path):
    path = write_log(tmp_path, "\r\n".join(SYNTHETIC) + "\r\n")
    assert summarize(path).scans == 2


def test_backward_time_jumps_keep_file_order_and_are_counted(tmp_path):
    stamps = [10.0, 9.5, 10.2, 10.1, 10.3]
    path = write_log(tmp_path, [flaser([1.0, 2.0], stamp=t) for t in stamps])
    items, summary = read_all(path)
    assert [item.scan.stamp for item in items] == stamps
    assert summary.time_jumps == 2
    assert summary.max_time_jump_s == pytest.approx(0.5)
    assert (summary.first_stamp, summary.last_stamp) == (9.5, 10.3)
    assert summary.duration_s == pytest.approx(0.8)


def test_max_range_argument_sets_the_no_return_threshold(tmp_path):
    path = write_log(tmp_path, [flaser([5.0, 30.0, 29.99])])
    (item,), _ = read_all(path, max_range=30.0)
    assert item.scan.no_return_mask.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="min_range < max_range"):
        read_log(path, max_range=0.0)


# -- bad lines: skipped and counted, never fatal ------------------------------------------------
GOOD = flaser([1.0, 2.0, 3.0], stamp=5.0)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("FLASER", "too few fields"),
        ("FLASER 180 1.0 2.0", "191 fields"),
        ("FLASER 3 1.0 2.0 3.0 0 0 0 0 0 0 5.0 host", "14 fields"),
        ("FLASER x 1.0", "invalid literal"),
        ("FLASER 3 1.0 abc 2.0 0 0 0 0 0 0 5.0 host 0.5", "could not convert"),
        (flaser([1.0]).replace("FLASER 1", "FLASER 0"), "absurd beam count 0"),
        (flaser([1.0]).replace("FLASER 1", "FLASER -5"), "absurd beam count -5"),
        ("FLASER 20000 1.0 0 0 0 0 0 0 5.0 host 0.5", "absurd beam count 20000"),
        ("FLASER 99999999999999999999 1.0", "absurd beam count"),
        (flaser([1.0, 2.0], odom=(0.0, "inf", 0.0)), "finite"),
        (flaser([1.0, 2.0], odom=("nan", 0.0, 0.0)), "finite"),
        (flaser([1.0, 2.0], stamp="nan"), "non-finite timestamp"),
        ("ROBOTLASER1 0 -1.57 3.14 0.0174 50 0.1 0 3 1.0", "too few fields"),
        ("ROBOTLASER1 0 -1.57 3.14 0.0174 50 0.1 0 0", "absurd beam count 0"),
        (
            robotlaser([1.0], start="nan", res=0.1, max_range=50, laser=(0, 0, 0), robot=(0, 0, 0)),
            "non-finite start angle",
        ),  # fmt: skip
        (
            robotlaser([1.0], start=0, res=0.1, max_range=50, laser=(0, 0, 0), robot=(0, 0, 0))
            + " extra",
            "need 25 fields",
        ),  # fmt: skip
        ("ODOM 1 2", "at least 9 fields"),
        ("ODOM 1 2 x 0 0 0 1.0 host 1.0", "could not convert"),
        ("PARAM robot_frontlaser_offset", "a name and a value"),
        ("PARAM robot_frontlaser_offset forward host 1.0", "could not convert"),
    ],
)
def test_malformed_line_is_skipped_and_counted_with_its_line_number(tmp_path, line, reason):
    path = write_log(tmp_path, ["# header", GOOD, line, GOOD])
    items, summary = read_all(path)
    assert [item.line for item in items] == [2, 4]
    assert summary.scans == 2 and summary.malformed == 1
    ((lineno, why),) = summary.malformed_lines
    assert lineno == 3 and reason in why, why


def test_only_the_first_malformed_lines_are_kept_with_reasons(tmp_path):
    path = write_log(tmp_path, [GOOD] + ["FLASER 2 1.0"] * 50)
    summary = summarize(path)
    assert summary.malformed == 50
    assert [n for n, _ in summary.malformed_lines] == list(range(2, 22))


def test_nan_and_negative_ranges_are_dropped_and_counted_scan_kept(tmp_path):
    path = write_log(tmp_path, [flaser(["1.0", "nan", "-0.5", "2.0", "-inf", "inf"])])
    (item,), summary = read_all(path)
    np.testing.assert_array_equal(item.scan.ranges, np.array([1.0, 2.0, np.inf], np.float32))
    step = np.pi / 6
    np.testing.assert_allclose(
        item.scan.angles, [-np.pi / 2, -np.pi / 2 + 3 * step, -np.pi / 2 + 5 * step], atol=1e-6
    )
    assert summary.bad_beams == 3 and summary.malformed == 0
    assert summary.beams == {6: 1}  # beams counts what the line declared


def test_range_too_large_for_float32_is_a_quiet_no_return(tmp_path):
    path = write_log(tmp_path, [flaser(["1.0", "1e50"])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (item,), summary = read_all(path)
    assert item.scan.no_return_mask.tolist() == [False, True] and summary.bad_beams == 0


def test_cached_beam_angles_cannot_be_corrupted_through_a_scan(tmp_path):
    (first, second), _ = read_all(write_log(tmp_path, [GOOD, GOOD]))
    with pytest.raises(ValueError, match="read-only"):
        first.scan.angles[0] = 1.0
    assert second.scan.angles[0] == np.float32(-np.pi / 2)


# -- whole-file failures: LogFormatError naming the file -------------------------------------
@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz"])
def test_truncated_compressed_log_names_the_last_good_line(tmp_path, compression):
    data = big_log()
    packed = bz2.compress(data, 1) if compression == "bzip2" else COMPRESS[compression](data)
    path = tmp_path / "cut.log"
    path.write_bytes(packed[: len(packed) * 3 // 4])
    seen = []
    with pytest.raises(LogFormatError, match=r"cut\.log: stream cut or corrupt") as info:
        for item in read_log(path):
            seen.append(item.line)
    assert len(seen) > 100, "lines before the cut must stream out before the error"
    assert f"after line {seen[-1]} (the last good line)" in str(info.value)
    assert isinstance(info.value.__cause__, (EOFError, OSError))


@pytest.mark.parametrize("compression", ["gzip", "bzip2"])
def test_corrupt_bytes_in_the_middle_of_a_compressed_log(tmp_path, compression):
    data = big_log()
    packed = bytearray(bz2.compress(data, 1) if compression == "bzip2" else gzip.compress(data))
    middle = len(packed) // 2
    packed[middle : middle + 64] = bytes(64)  # zeroed: no longer a valid stream
    path = tmp_path / "corrupt.log"
    path.write_bytes(bytes(packed))
    with pytest.raises(LogFormatError, match=r"corrupt\.log: stream cut or corrupt after line"):
        summarize(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"# just a header\n# and another comment\n\n",
        b"ODOM 1.0 2.0 0.5 0.3 0.1 0.0 100.0 host 0.0\n",
    ],
    ids=["empty", "only-comments", "odometry-only"],
)
def test_log_without_scans_is_rejected(tmp_path, content):
    path = tmp_path / "noscan.log"
    path.write_bytes(content)
    with pytest.raises(LogFormatError, match=r"noscan\.log: no scans"):
        summarize(path)


def test_empty_compressed_log_is_rejected(tmp_path):
    with pytest.raises(LogFormatError, match="no scans"):
        summarize(write_log(tmp_path, [], "bzip2"))


def test_png_is_rejected_on_open(tmp_path):
    path = tmp_path / "map.clf"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(LogFormatError, match=r"map\.clf: is a PNG image, not a CARMEN log"):
        read_log(path)


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_random_binary_is_rejected(tmp_path, compression):
    noise = np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes()
    path = write_log(tmp_path, noise, compression, name="noise.bin")
    with pytest.raises(LogFormatError, match=r"noise\.bin: line \d+: binary data"):
        summarize(path)


def test_text_that_is_not_a_log_is_rejected_after_the_sniff_window(tmp_path):
    rows = ["x,y,theta"] + [f"{i},{i * 0.5},0.1" for i in range(1500)]
    path = write_log(tmp_path, rows, name="poses.csv")
    with pytest.raises(LogFormatError, match=r"poses\.csv: not a CARMEN log.*line 1 starts"):
        summarize(path)


def test_unknown_messages_before_the_first_scan_are_tolerated(tmp_path):
    path = write_log(tmp_path, ["NMEA-XYZ 1 2 3"] * 500 + [GOOD] + ["FOO bar"] * 2000)
    summary = summarize(path)
    assert summary.scans == 1 and summary.other_lines == 2500


def test_missing_file_and_directory_are_rejected(tmp_path):
    with pytest.raises(LogFormatError, match=r"nope\.clf: no such log file") as info:
        read_log(tmp_path / "nope.clf")
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(LogFormatError, match="cannot read the log"):
        read_log(tmp_path)


# -- the real benchmark logs (../shared/data/slam) -------------------------------------------
@pytest.fixture
def slam_data() -> Path:
    if not (SLAM_DATA / "intel.clf.bz2").is_file():
        pytest.skip(
            f"real SLAM logs not found at {SLAM_DATA} (the ../shared folder beside the repo)"
        )
    return SLAM_DATA


@pytest.mark.shared_data
def test_intel_log_summary(slam_data):
    summary = summarize(slam_data / "intel.clf.bz2")
    assert summary.scans == 13_631 and summary.beams == {180: 13_631}
    assert summary.odometry == 26_915
    # SOURCES.md: 631 FLASER lines out of time order, backward jumps up to 0.90 s
    assert summary.time_jumps == 631
    assert summary.max_time_jump_s == pytest.approx(0.897, abs=1e-3)
    assert summary.duration_s == pytest.approx(2691.3, abs=0.05)
    assert summary.first_stamp == pytest.approx(976052857.34, abs=0.01)
    assert summary.last_stamp == pytest.approx(976055548.63, abs=0.01)
    assert (summary.malformed, summary.bad_beams) == (0, 0)
    assert summary.params["robot_frontlaser_offset"] == "0.0"
    assert summary.laser_offset == 0.0


@pytest.mark.shared_data
def test_intel_first_scan_decodes(slam_data):
    items = list(itertools.islice(read_log(slam_data / "intel.clf.bz2"), 3))
    assert isinstance(items[0], Odometry) and isinstance(items[1], LogScan)
    first = items[1]
    assert first.line == 13 and first.scan.stamp == 976052857.337530
    assert first.odometry.pose == Pose(0.0, 0.0, -0.002458)
    assert len(first.scan) == 180 and first.scan.ranges[0] == np.float32(1.07)
    assert np.isinf(first.scan.ranges[87]) and first.scan.ranges[88] == np.float32(11.58)
    assert first.scan.angles[90] == pytest.approx(0.0, abs=1e-7)
    assert math.degrees(float(first.scan.angles[1] - first.scan.angles[0])) == pytest.approx(
        1.0, abs=1e-4
    )


@pytest.mark.shared_data
def test_relation_stamps_are_scan_stamps(slam_data):
    # every stamp of the ground-truth relations is the exact ipc stamp of a scan
    for log, relations in [
        ("intel.clf.bz2", "intel.relations"),
        ("fr079.clf.bz2", "fr079.relations"),
    ]:
        stamps = {
            item.scan.stamp for item in read_log(slam_data / log) if isinstance(item, LogScan)
        }
        rows = np.loadtxt(slam_data / relations, usecols=(0, 1))
        assert set(rows.ravel().tolist()) <= stamps, log


@pytest.mark.shared_data
def test_fr079_log_summary(slam_data):
    summary = summarize(slam_data / "fr079.clf.bz2")
    assert summary.scans == 4_934 and summary.beams == {360: 4_934}
    assert summary.odometry == 8_951
    assert summary.duration_s == pytest.approx(1061.4, abs=0.1)
    assert summary.time_jumps == 0
    assert (summary.malformed, summary.bad_beams) == (0, 0)
    assert summary.laser_offset == -0.04
    first = next(
        item for item in read_log(slam_data / "fr079.clf.bz2") if isinstance(item, LogScan)
    )
    assert first.scan.sensor == Pose(-0.04, 0.0, 0.0)
    assert summary.params["robot_frontlaser_offset"] == "-0.04"


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name, scans, beams, offset",
    [("intel-lab.flirt.log.gz", 2_672, 180, 0.0), ("fr079.flirt.log.gz", 1_464, 360, -0.040001)],
)
def test_flirt_robotlaser_logs_read_cleanly(slam_data, name, scans, beams, offset):
    path = slam_data / "derived" / name
    summary = summarize(path)
    assert summary.scans == scans and summary.beams == {beams: scans}
    assert (summary.malformed, summary.bad_beams, summary.odometry) == (0, 0, 0)
    assert summary.laser_offset == offset
    first = next(item for item in read_log(path) if isinstance(item, LogScan))
    assert first.scan.range_max == 50.0  # the line's max; its 81.83 m readings are no-return
    assert first.scan.sensor == Pose(offset, 0.0, 0.0)  # laser pose seen from the robot pose
    assert first.scan.angles[0] == pytest.approx(-np.pi / 2, abs=1e-6)
