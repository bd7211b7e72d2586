"""The `vacnav` command: one click group, the composition root that wires the three packages.

Heavy imports (numpy, numba kernels, cv2, miio) happen inside the commands so `--help` is fast.
"""

from __future__ import annotations

import logging
import re
import sys

import click

from navigation.cli_bench import bench_group
from navigation.cli_common import results_dir, table, write_json
from navigation.cli_maps import inspect, maps_group


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


cli.add_command(maps_group)
cli.add_command(inspect)
cli.add_command(bench_group)


def main() -> None:
    """Console entry point: our errors become one line on stderr and exit status 1."""
    verbose = any(re.fullmatch(r"-v+|--verbose", a) for a in sys.argv[1:3])
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
    click.echo(table(rows))
    for line, reason in summary.malformed_lines[:10]:
        click.echo(f"  line {line}: {reason}")
    write_json(json_path, report)


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
    out = results_dir(out_dir)  # before the work: an unwritable folder fails at once
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

    picture = render.draw_plan(
        plan.walls, plan.outside, plan.resolution, plan.origin, plan.invisible, cleaned & floor
    )
    picture.path(trajectory[:, :2])
    picture.markers(np.array([(b.x, b.y) for b in bumps if not b.invisible]), render.BUMP)
    picture.markers(np.array([(b.x, b.y) for b in bumps if b.invisible]), render.BUMP_INVISIBLE)
    picture.markers(trajectory[:1, :2], render.START, render.STAR_MARKER, 13)
    picture.caption(
        [
            (
                f"bump-and-turn, {sim.time:.0f} s: coverage {coverage * 100:.1f} %, "
                f"{len(bumps)} bumps",
                render.WALL,
            ),
            (
                "blue: path and cleaned floor   x red: bump   x orange: bump on a lidar-invisible "
                "obstacle (orange cells)",
                render.PATH,
            ),
        ]
    )
    picture.save(out / "path.png")
    report["picture"] = str(out / "path.png")
    write_json(str(out / "report.json"), report)
    write_json(json_path, report)

    click.echo(
        f"world {plan.name} ({report['floor_m2']} m2 of reachable floor), robot {robot}, "
        f"seed {seed}: bump-and-turn baseline"
    )
    click.echo(
        table(
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


@cli.command("eval")
@click.argument("poses", type=click.Path(dir_okay=False))
@click.argument("relations", type=click.Path(dir_okay=False))
@click.option(
    "--max-dt",
    type=click.FloatRange(min=0.0),
    default=0.1,
    show_default=True,
    help="Largest gap (s) between a relation stamp and the pose used for it.",
)
@click.option(
    "--match",
    type=click.Choice(["nearest", "interp"]),
    default="nearest",
    show_default=True,
    help="Nearest pose, or linear interpolation between two.",
)
@click.option(
    "--style",
    type=click.Choice(["kummerle", "cartographer"]),
    default="kummerle",
    show_default=True,
    help="Error composition: Kümmerle et al. 2009 or Cartographer's.",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write the metric as JSON."
)
def eval_command(
    poses: str, relations: str, max_dt: float, match: str, style: str, json_path: str | None
) -> None:
    """Score a trajectory (poses.txt) with the SLAM benchmark's relations metric."""
    from navigation.evaluation import evaluate, format_table, load_poses, load_relations

    stamps, estimate = load_poses(poses)
    metric = evaluate(
        stamps, estimate, load_relations(relations), max_dt=max_dt, match=match, style=style
    )
    click.echo(format_table(metric))
    write_json(json_path, {"poses": poses, "relations": relations, **metric.as_dict()})


@cli.command()
@click.argument("logfile", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Results folder [default: ./vacnav-out/rebuild-<time>, linked as latest].",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON."
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False),
    help="Also save the map (with its pose graph) as a new version in this map store.",
)
@click.option("--floor", default="default", show_default=True, help="Floor to save it under.")
def rebuild(
    logfile: str, out_dir: str | None, json_path: str | None, store_path: str | None, floor: str
) -> None:
    """Rebuild a map from a recorded log with SLAM: poses.txt, map.pgm/.yaml, map.png."""
    import resource
    import time

    import numpy as np

    from firmware_bridge.logs import LogScan, read_log, summarize
    from maps import render
    from maps.formats import ros
    from navigation.slam.slam import Slam

    if store_path:
        from maps.store import check_floor_name

        check_floor_name(floor)  # before the work, not after it
    started = time.perf_counter()
    total = summarize(logfile).scans  # a first pass: counts for the bar, and bad files fail early
    out = results_dir(out_dir, "rebuild")
    reader = read_log(logfile)
    slam = Slam()
    with click.progressbar(length=total, label="rebuild", file=sys.stderr) as bar:
        for item in reader:
            if isinstance(item, LogScan):
                slam.add(item.scan, item.odometry.pose)
                bar.update(1)
    slam.finish()
    stamps, poses = slam.trajectory()
    wall = time.perf_counter() - started

    with open(out / "poses.txt", "w") as fh:
        fh.write("# timestamp x y theta (s, m, m, rad; map frame; one line per scan, log order)\n")
        np.savetxt(fh, np.column_stack((stamps, poses)), fmt=["%.6f", "%.6f", "%.6f", "%.6f"])
    grid = slam.map()
    ros.save(grid, out / "map")
    picture = render.draw_grid(grid, scale=2)
    picture.path(poses[:, :2])
    picture.save(out / "map.png")

    stats, summary = slam.stats, reader.summary
    saved = None
    if store_path:
        saved = _save_rebuild(slam, grid, logfile, store_path, floor)
    report = {
        "log": str(logfile),
        "scans": stats.scans,
        "scans_used": stats.scans_used,
        "nodes": stats.nodes,
        "loop_closures": stats.loop_closures,
        "wall_s": round(wall, 2),
        "realtime_factor": (
            round(summary.duration_s / wall, 2) if wall > 0 and summary.duration_s > 0 else None
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loops_rejected": stats.loops_rejected,
        "submaps": stats.submaps,
        "skipped_few_points": stats.skipped_few_points,
        "odometry_jumps": stats.odometry_jumps,
        "time_jumps": summary.time_jumps,
        "malformed_lines": summary.malformed,
        "bad_beams": summary.bad_beams,
        "out": str(out),
    }
    if saved is not None:
        report["store"] = {"path": store_path, "floor": floor, "version": saved.id}
    write_json(str(out / "report.json"), report)
    write_json(json_path, report)
    click.echo(table([(k, str(v)) for k, v in report.items()]))


def _save_rebuild(slam, grid, logfile: str, store_path: str, floor: str):
    """Save a rebuilt map with its node path and pose graph; returns the VersionInfo."""
    from pathlib import Path

    from maps import Pose
    from maps.model import MapDocument, MapPath
    from navigation.cli_maps import open_store

    nodes = slam.graph.poses
    doc = MapDocument(
        grid,
        robot=Pose.from_array(nodes[-1]) if len(nodes) else None,
        paths=[MapPath("path", nodes[:, :2])] if len(nodes) else [],
        meta={"source": Path(logfile).name},
    )
    with open_store(store_path) as store:
        return store.save(
            doc,
            floor=floor,
            source="slam",
            note=f"rebuilt from {Path(logfile).name}",
            pose_graph=slam.graph.to_arrays(),
        )
