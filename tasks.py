#!/usr/bin/env python3
"""Set-up and the everyday jobs, with nothing but Python 3.11+ on the machine.

    python3 tasks.py run [ARGS]    make .venv, install vacnav, run `vacnav run ARGS`
    python3 tasks.py test [ARGS]   make .venv with the dev tools, run pytest ARGS, then the kernel
                                   tests again with NUMBA_DISABLE_JIT=1
    python3 tasks.py bench [ARGS]  the benchmark suite (pytest-benchmark)
    python3 tasks.py lint          ruff check and ruff format --check

The virtualenv lives in .venv (or $VACNAV_VENV); it is reinstalled when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("VACNAV_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_venv(extras: str) -> None:
    """Create the venv and install the project editable (with `extras`) unless up to date."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs before anything checks it)
        sys.exit(f"vacnav needs Python 3.11+, this is {sys.version.split()[0]}")
    python = "py" + ".".join(str(v) for v in sys.version_info[:2])
    project = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / ".vacnav-installed"
    # stamp entries look like "py3.11:<pyproject hash>:<extras>"; others are stale
    installed = stamp.read_text().split() if stamp.exists() and PY.exists() else []
    installed = [e for e in installed if e.startswith(f"{python}:{project}:")]
    if f"{python}:{project}:{extras}" in installed or (
        extras == "" and f"{python}:{project}:dev" in installed
    ):
        return  # the dev install includes everything `run` needs
    if PY.exists() and venv_python() != python[2:]:
        print(f"re-creating {VENV} for Python {python[2:]}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        installed = []
    elif not PY.exists():
        print(f"creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    print(f"installing vacnav{('[' + extras + ']') if extras else ''} into {VENV}", flush=True)
    call([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    call([str(PY), "-m", "pip", "install", "--quiet", "-e", target])
    stamp.write_text(" ".join([*installed, f"{python}:{project}:{extras}"]))


def venv_python() -> str:
    """The venv's Python as "3.11", from its pyvenv.cfg ("" when unknown)."""
    cfg = VENV / "pyvenv.cfg"
    for line in cfg.read_text().splitlines() if cfg.exists() else []:
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return ".".join(value.strip().split(".")[:2])
    return ""


def call(cmd: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"run", "test", "bench", "lint"}:
        sys.exit(__doc__)
    job, args = argv[0], argv[1:]
    if job == "run":
        ensure_venv("")
        call([str(BIN / "vacnav"), "run", *args])
    elif job == "test":
        ensure_venv("dev")
        call([str(PY), "-m", "pytest", "-q", *args])
        no_jit = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
        print("kernel tests again with NUMBA_DISABLE_JIT=1", flush=True)
        call([str(PY), "-m", "pytest", "-q", "-m", "kernel"], env=no_jit)
    elif job == "bench":
        ensure_venv("dev")
        call(
            [
                str(PY),
                "-m",
                "pytest",
                "benchmarks",
                "--benchmark-only",
                "--benchmark-columns=min,median,max,rounds",
                *args,
            ]
        )
    else:
        ensure_venv("dev")
        call([str(BIN / "ruff"), "check", "."])
        call([str(BIN / "ruff"), "format", "--check", "."])


if __name__ == "__main__":
    main(sys.argv[1:])
