"""Helpers shared by the `vacnav` commands: report files, tables, results folders.

Standard library only, so that `vacnav --help` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def write_json(path: str | Path | None, report: dict) -> None:
    """Write `report` as indented JSON to `path` (parents created); nothing when path is None."""
    if path:
        target = Path(path)
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2) + "\n")


def table(rows: list[tuple[str, str]]) -> str:
    """Two aligned columns, indented, for the terminal."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def results_dir(out_dir: str | None, kind: str = "run") -> Path:
    """The folder for this command's results; by default a new timestamped one, linked as latest."""
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return out
    root = Path("vacnav-out")
    out = root / time.strftime(f"{kind}-%Y%m%d-%H%M%S")
    suffix = 1
    while out.exists():
        suffix += 1
        out = root / time.strftime(f"{kind}-%Y%m%d-%H%M%S-{suffix}")
    out.mkdir(parents=True)
    latest = root / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out.name)
    except OSError:
        pass  # a filesystem without symlinks: the timestamped folder is enough
    return out
