"""The `vacnav` command: one click group, the composition root that wires the three packages.

Heavy imports (numpy, numba kernels, cv2, miio) happen inside the commands so `--help` is fast.
"""

from __future__ import annotations

import logging
import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="More log output (-v info, -vv debug); tracebacks."
)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """vacnav: offline navigation and map recovery for lidar robot vacuums."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def main() -> None:
    """Console entry point: our errors become one line on stderr and exit status 1."""
    verbose = any(a in ("-v", "-vv", "-vvv", "--verbose") for a in sys.argv[1:3])
    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        # imported here, not at the top: these packages pull in numpy and numba
        from firmware_bridge.errors import BridgeError
        from maps.errors import MapError
        from navigation.errors import NavigationError

        if verbose or not isinstance(exc, MapError | NavigationError | BridgeError | OSError):
            raise
        click.echo(f"vacnav: error: {exc}", err=True)
        sys.exit(1)
    if isinstance(status, int) and status:
        sys.exit(status)


def _write_json(path: str | None, report: dict) -> None:
    import json
    from pathlib import Path

    if path:
        target = Path(path)
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2) + "\n")


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


@cli.group()
def log() -> None:
    """Recorded sensor logs (CARMEN CLF: plain, .gz, .bz2)."""


@log.command("info")
@click.argument("logfile", type=click.Path(dir_okay=False))
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary as JSON."
)
def log_info(logfile: str, json_path: str | None) -> None:
    """Summarize a recorded log: scans, beams, odometry, duration, time jumps, malformed lines."""
    from firmware_bridge.logs import summarize

    summary = summarize(logfile)
    report = summary.as_dict()
    beams = ", ".join(f"{n} beams x {count}" for n, count in sorted(summary.beams.items()))
    rows = [
        ("log", str(logfile)),
        ("scans", f"{summary.scans:,} ({beams})"),
        ("odometry messages", f"{summary.odometry:,}"),
        ("duration", f"{summary.duration_s:,.1f} s"),
        ("backward time jumps", f"{summary.time_jumps} (largest {summary.max_time_jump_s:.2f} s)"),
        ("laser offset", f"{summary.laser_offset:+.3f} m"),
        ("malformed lines", f"{summary.malformed}"),
        ("beams dropped (NaN/neg.)", f"{summary.bad_beams}"),
    ]
    click.echo(_table(rows))
    for line, reason in summary.malformed_lines[:10]:
        click.echo(f"  line {line}: {reason}")
    _write_json(json_path, report)


@cli.command()
@click.option(
    "--world",
    default="default",
    show_default=True,
    help="'default' (the built-in home) or a floor-plan PNG at 0.05 m/px.",
)
@click.option(
    "--invisible",
    type=click.Path(dir_okay=False),
    help="PNG of the same size whose dark cells are obstacles the lidar cannot see.",
)
@click.option(
    "--robot",
    type=click.Choice(["sim"]),
    default="sim",
    show_default=True,
    help="The robot to drive.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    default=1200.0,
    show_default=True,
    help="Seconds of robot time to clean.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Results folder [default: ./vacnav-out/run-<time>, linked as latest].",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON."
)
def run(
    world: str,
    invisible: str | None,
    robot: str,
    seed: int,
    duration: float,
    out_dir: str | None,
    json_path: str | None,
) -> None:
    """Clean a home with the simulated vacuum and report coverage and bumps.

    Until the map-based navigation lands this drives the lost-map behaviour, reactive
    bump-and-turn: the "before" figure that vacnav must beat.
    """
    import time

    import numpy as np

    from firmware_bridge.simulated import SimulatedRobot
    from firmware_bridge.world import World
    from maps import render
    from navigation.baseline import BaselineConfig, run_bump_and_turn
    from navigation.coverage import CoverageConfig, coverage_ratio, reachable_floor, swept_area

    wall_start = time.perf_counter()
    if world == "default":
        if invisible:
            raise click.BadParameter("--invisible needs --world PNG", param_hint="--invisible")
        plan = World.default()
    else:
        plan = World.from_png(world, invisible=invisible)
    sim = SimulatedRobot(plan, seed=seed)
    config = BaselineConfig(duration=duration)
    trail = [sim.true_pose.as_array()]

    with click.progressbar(
        length=int(duration), label="bump-and-turn", file=sys.stderr, show_eta=False
    ) as bar:
        shown = [0]

        def observe() -> None:
            trail.append(sim.true_pose.as_array())
            now = int(sim.time)
            if now > shown[0]:
                bar.update(now - shown[0])
                shown[0] = now

        run_bump_and_turn(sim, config, seed=seed, observe=observe)

    trajectory = np.asarray(trail)
    cov = CoverageConfig()
    floor = reachable_floor(plan.free, plan.resolution, plan.origin, plan.start, cov)
    cleaned = swept_area(trajectory, plan.free.shape, plan.resolution, plan.origin, cov.clean_width)
    coverage = coverage_ratio(cleaned, floor)
    bumps = sim.bumps
    path_m = float(np.hypot(*np.diff(trajectory[:, :2], axis=0).T).sum())
    baseline = {
        "coverage": round(coverage, 4),
        "bumps": len(bumps),
        "bumps_invisible": sum(b.invisible for b in bumps),
        "path_m": round(path_m, 2),
        "time_s": round(sim.time, 2),
    }
    report = {
        "world": plan.name,
        "robot": robot,
        "seed": seed,
        "floor_m2": round(float(floor.sum()) * plan.resolution**2, 2),
        "baseline": baseline,
        "wall_s": round(time.perf_counter() - wall_start, 2),
    }

    out = _results_dir(out_dir)
    scale = 3
    img = render.draw_plan(plan.walls, plan.outside, plan.invisible, cleaned & floor, scale)
    args = (plan.walls.shape, plan.resolution, plan.origin, scale)
    render.draw_path(img, trajectory[:, :2], *args)
    visible = np.array([(b.x, b.y) for b in bumps if not b.invisible]).reshape(-1, 2)
    hidden = np.array([(b.x, b.y) for b in bumps if b.invisible]).reshape(-1, 2)
    render.draw_markers(img, visible, *args, render.BUMP)
    render.draw_markers(img, hidden, *args, render.BUMP_INVISIBLE)
    render.draw_markers(img, trajectory[:1, :2], *args, render.START, render.STAR_MARKER, 13)
    render.save_png(out / "path.png", img)
    report["picture"] = str(out / "path.png")
    _write_json(str(out / "report.json"), report)
    _write_json(json_path, report)

    click.echo(
        f"world {plan.name} ({report['floor_m2']} m2 of reachable floor), robot {robot}, "
        f"seed {seed}: bump-and-turn baseline"
    )
    click.echo(
        _table(
            [
                ("coverage", f"{coverage * 100:.1f} %"),
                (
                    "bumps",
                    f"{baseline['bumps']} ({baseline['bumps_invisible']} on lidar-invisible ones)",
                ),
                ("path", f"{path_m:.1f} m"),
                ("robot time", f"{sim.time:.0f} s"),
                ("wall time", f"{report['wall_s']:.1f} s"),
                ("picture", str(out / "path.png")),
            ]
        )
    )


def _results_dir(out_dir: str | None):
    """The folder for this run's results; by default a new timestamped one, linked as latest."""
    import time
    from pathlib import Path

    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return out
    root = Path("vacnav-out")
    out = root / time.strftime("run-%Y%m%d-%H%M%S")
    suffix = 1
    while out.exists():
        suffix += 1
        out = root / time.strftime(f"run-%Y%m%d-%H%M%S-{suffix}")
    out.mkdir(parents=True)
    latest = root / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out.name)
    except OSError:
        pass  # a filesystem without symlinks: the timestamped folder is enough
    return out
