"""Start-up of the `vacnav` command (target: `vacnav --help` under 1 s with a warm cache)."""

import shutil
import subprocess
import sys
from pathlib import Path


def vacnav() -> list[str]:
    exe = Path(sys.executable).parent / "vacnav"
    return [str(exe)] if exe.exists() else [shutil.which("vacnav") or "vacnav"]


def test_vacnav_help_startup(benchmark):
    cmd = [*vacnav(), "--help"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the OS and numba caches
    benchmark.pedantic(
        subprocess.run,
        args=(cmd,),
        kwargs={"check": True, "capture_output": True},
        rounds=10,
        iterations=1,
    )
