"""Log reading speed: summarize() over the whole Intel log (13,631 scans, 16 MB of bzip2'd text).

Target: under 10 s on the dev machine, aiming at 3-5 s; reports scans per second.
"""

from pathlib import Path

import pytest

from firmware_bridge.logs import summarize

INTEL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "slam" / "intel.clf.bz2"


@pytest.mark.shared_data
@pytest.mark.skipif(not INTEL.is_file(), reason=f"Intel log not found at {INTEL}")
def test_read_intel_log(benchmark):
    summary = benchmark.pedantic(summarize, args=(INTEL,), rounds=3, iterations=1)
    assert summary.scans == 13_631 and summary.malformed == 0
    seconds = benchmark.stats.stats.median
    benchmark.extra_info["scans"] = summary.scans
    benchmark.extra_info["scans_per_s"] = round(summary.scans / seconds)
    benchmark.extra_info["ms_per_scan"] = round(1000 * seconds / summary.scans, 4)
