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
    default="sim",
    show_default=True,
    help="sim (the simulator), miio-sim (the same simulation behind a fake firmware on "
    "loopback, driven through python-miio) or miio://HOST (a real robot: needs --lidar).",
)
@click.option(
    "--token",
    "token_opt",
    help="miIO token of a real robot (32 hex characters) [default: $VACNAV_TOKEN, else "
    "~/.config/vacnav/token].",
)
@click.option("--lidar", help="A real robot's lidar byte stream: tcp://HOST:PORT, serial://DEV.")
@click.option(
    "--telemetry", help="A real robot's odometry and bumper line stream: tcp://HOST:PORT."
)
@click.option(
    "--drop",
    type=click.FloatRange(0.0, 0.9),
    default=0.0,
    show_default=True,
    help="miio-sim: share of UDP datagrams the fake firmware drops, each way.",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False),
    help="Map store for the rebuilt map, its rooms, the progress and the obstacle memory "
    "[default: a new one in the results folder, vacnav.db].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    help="Robot seconds for vacnav's whole job: exploring, relocalizing and cleaning "
    "[default: until done]. The baseline gets the robot time vacnav used.",
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
    token_opt: str | None,
    lidar: str | None,
    telemetry: str | None,
    drop: float,
    store_path: str | None,
    seed: int,
    duration: float | None,
    out_dir: str | None,
    json_path: str | None,
) -> None:
    """The main job in the simulator: the cloud map is lost; vacnav explores and rebuilds it,
    saves it, is rebooted somewhere, relocalizes and cleans room by room. Beside it, the
    lost-map bump-and-turn baseline for the same robot time. Prints both as a table; pictures
    and report.json go to the results folder.
    """
    import time

    from firmware_bridge.world import World
    from maps.store import MapStore
    from navigation.mission import run_story

    wall_start = time.perf_counter()
    if robot.startswith("miio://"):
        _run_real_robot(
            robot, token_opt, lidar, telemetry, store_path, duration, out_dir, json_path
        )
        return
    if robot not in ("sim", "miio-sim"):
        raise click.BadParameter(
            f"{robot!r}: use sim, miio-sim or miio://HOST", param_hint="--robot"
        )
    if world == "default":
        if invisible:
            raise click.BadParameter("--invisible needs --world PNG", param_hint="--invisible")
        plan = World.default()
    else:
        plan = World.from_png(world, invisible=invisible)
    out = results_dir(out_dir)  # before the work: an unwritable folder fails at once
    if store_path is None:
        store_file = out / "vacnav.db"
        for suffix in ("", "-wal", "-shm"):  # the store of an earlier run in this folder
            store_file.with_name(store_file.name + suffix).unlink(missing_ok=True)
        store_path = str(store_file)
    with MapStore(store_path) as store, _PhaseBars() as bars:
        maker = None
        if robot == "miio-sim":
            from functools import partial

            from firmware_bridge.fake_firmware import MiioSim

            maker = partial(MiioSim, drop=drop, delay=drop / 2)
        story = run_story(
            plan, store, seed=seed, duration=duration, progress=bars.report, robot=maker
        )
        store_info = {
            "path": store_path,
            "floor": story.floor_name,
            "versions": len(store.versions(story.floor_name)),
            "obstacles": len(store.obstacles(story.floor_name)),
        }
    pictures = _story_pictures(story, out)
    res = plan.resolution
    report = {
        "world": plan.name,
        "robot": robot,
        "seed": seed,
        "floor_m2": round(float(story.floor.sum()) * res * res, 2),
        "baseline": story.baseline,
        "vacnav": story.report,
        "store": store_info,
        "pictures": pictures,
        "wall_s": round(time.perf_counter() - wall_start, 2),
        "phase_wall_s": {k: round(v, 2) for k, v in story.wall_s.items()},
    }
    report["picture"] = pictures["path"]
    write_json(str(out / "report.json"), report)
    write_json(json_path, report)
    click.echo(
        f"world {plan.name} ({report['floor_m2']} m2 of reachable floor), robot {robot}, "
        f"seed {seed}"
    )
    click.echo(_story_table(story, report))


def _run_real_robot(
    url: str,
    token_opt: str | None,
    lidar: str | None,
    telemetry: str | None,
    store_path: str | None,
    duration: float | None,
    out_dir: str | None,
    json_path: str | None,
) -> None:
    """`vacnav run --robot miio://HOST`: explore from the dock with live SLAM, save the map,
    clean it room by room; a real robot has no truth to score against, so the report holds what
    the robot itself measured."""
    import time

    from firmware_bridge.miio_robot import MiioRobot
    from firmware_bridge.secrets import resolve_token
    from maps.store import MapStore
    from navigation.mission import clean, rebuild_map

    host = url[len("miio://") :].strip("/")
    if not host:
        raise click.BadParameter("miio://HOST needs the robot's address", param_hint="--robot")
    if not lidar:
        raise click.UsageError(
            "--robot miio://HOST needs the robot's lidar stream: --lidar tcp://HOST:PORT (ser2net "
            "on a rooted robot) or serial://DEVICE; miIO itself carries no scans"
        )
    token = resolve_token(token_opt)
    out = results_dir(out_dir)
    store_path = store_path or str(out / "vacnav.db")
    start = time.perf_counter()
    with (
        MiioRobot(host, token, lidar_url=lidar, telemetry_url=telemetry) as bot,
        MapStore(store_path) as store,
    ):
        floor = "home"
        rebuilt = rebuild_map(bot, store, floor, time_budget=duration)
        explored = rebuilt.exploration
        # the same odometry goes on: the map frame is where it started, up to SLAM's correction
        map_from_odom = explored.pose.compose(bot.odometry().pose.inverse())
        left = None if duration is None else max(duration - explored.time_s, 1e-3)
        cleaning = clean(bot, store, floor, map_from_odom, time_budget=left)
    report = {
        "robot": f"miio://{host}",
        "store": store_path,
        "vacnav": {
            "explore_time_s": round(explored.time_s, 1),
            "explore_stop": explored.stop_reason,
            "map_version": rebuilt.version.id,
            "clean_stop": cleaning.stop_reason,
            "clean_time_s": round(cleaning.time_s, 1),
            "cleaned_share": round(cleaning.cleaned_share, 4),
            "rooms": len(cleaning.segmentation.rooms),
            "rooms_done": len(cleaning.rooms_done),
            "bumps": len(cleaning.bumps) + len(explored.bumps),
            "path_m": round(explored.path_m + cleaning.path_m, 2),
        },
        "wall_s": round(time.perf_counter() - start, 2),
    }
    write_json(str(out / "report.json"), report)
    write_json(json_path, report)
    nav = report["vacnav"]
    click.echo(
        f"robot miio://{host}: explored {nav['explore_time_s']:.0f} s ({nav['explore_stop']}), "
        f"map version {nav['map_version']}; cleaned {100 * nav['cleaned_share']:.1f} % of the "
        f"planned floor by its own estimate, {nav['rooms_done']} of {nav['rooms']} rooms "
        f"({nav['clean_stop']}), {nav['bumps']} bumps, {nav['path_m']:.0f} m"
    )


class _PhaseBars:
    """One progress bar on stderr per phase of the story, opened when the phase reports first."""

    LABELS = {
        "explore": "explore + SLAM",
        "relocalize": "relocalize",
        "clean": "clean",
        "baseline": "bump-and-turn",
    }

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar = None
        self.shown = 0

    def __enter__(self) -> _PhaseBars:
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.length - self.shown)
            self.bar.__exit__(None, None, None)
            self.bar = None

    def report(self, phase: str, info: dict) -> None:
        if phase != self.phase:
            self._close()
            self.phase, self.shown = phase, 0
            # lengths: robot seconds (explore: of its budget; baseline: of its run), scans,
            # or percent of the planned floor
            length = {"explore": 3600, "relocalize": 16, "clean": 100}.get(phase)
            if phase == "baseline":
                length = int(info.get("duration", 1))
            self.bar = click.progressbar(
                length=max(int(length or 1), 1),
                label=self.LABELS.get(phase, phase),
                file=sys.stderr,
                show_eta=False,
                show_percent=phase in ("clean", "baseline"),
                item_show_func=lambda text: text,
            )
            self.bar.__enter__()
        value = {
            "explore": info.get("time_s", 0),
            "relocalize": info.get("scans", 0),
            "clean": 100 * info.get("cleaned", 0.0),
            "baseline": info.get("time_s", 0),
        }.get(phase, 0)
        value = min(int(value), self.bar.length)
        text = {
            "explore": f"{info.get('time_s', 0):.0f} s, {info.get('frontiers', 0)} frontiers",
            "relocalize": f"{info.get('scans', 0)} scans",
            "clean": f"{info.get('rooms_done', 0)}/{info.get('rooms', 0)} rooms",
        }.get(phase)
        self.bar.update(max(value - self.shown, 0), text)
        self.shown = max(value, self.shown)


def _story_table(story, report: dict) -> str:
    """The story as a table: the baseline and vacnav side by side."""
    base, nav = report["baseline"] or {}, report["vacnav"]
    reloc = "yes" if nav["relocalized"] else "refused: started again from the dock"
    if nav["relocalized"] and nav.get("relocalize_error_m") is not None:
        reloc += f" ({100 * nav['relocalize_error_m']:.0f} cm off)"
    rows = [
        ("", "bump-and-turn", "vacnav"),
        ("coverage", f"{100 * base.get('coverage', 0):.1f} %", f"{100 * nav['coverage']:.1f} %"),
        (
            "bumps (lidar-invisible)",
            f"{base.get('bumps', 0)} ({base.get('bumps_invisible', 0)})",
            f"{nav['bumps']} ({nav['bumps_invisible']})",
        ),
        ("bumps into mapped obstacles", "-", str(nav["bumps_mapped"])),
        ("repeat bumps (invisible)", "-", str(nav["repeat_bumps"])),
        ("path", f"{base.get('path_m', 0):.0f} m", f"{nav['path_m']:.0f} m"),
        (
            "robot time",
            f"{base.get('time_s', 0):.0f} s",
            f"{nav['time_s']:.0f} s (exploring {nav['explore_time_s']:.0f} s)",
        ),
        ("rebuilt map (free IoU)", "-", f"{nav['map_iou']:.3f}"),
        ("relocalized", "-", reloc),
        (
            "rooms cleaned",
            "-",
            f"{nav['rooms_done']} of {nav['rooms']} ({nav['clean_stop']}), "
            f"{nav['replans']} replans, {nav['recoveries']} recoveries",
        ),
        ("cleaning path / (floor / 0.25 m)", "-", str(nav["path_ratio"])),
        ("wall time", "", f"{report['wall_s']:.1f} s"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"  {a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.append(f"  pictures: {', '.join(report['pictures'].values())}")
    return "\n".join(lines)


def _story_pictures(story, out) -> dict[str, str]:
    """Write map.png, rooms.png, plan.png, path.png, cleaned.png and baseline.png; their paths."""
    import cv2
    import numpy as np

    from maps import render
    from navigation.coverage_plan import draw_coverage_plan
    from navigation.rooms import draw_segmentation

    world, files = story.world, {}
    explore = story.rebuilt.exploration
    pic = render.draw_grid(explore.grid, scale=render.auto_scale(explore.grid.shape))
    pic.path(explore.trajectory[:, :2])
    if explore.bumps:
        pic.markers(np.array(explore.bumps), render.BUMP)
    pic.markers(np.zeros((1, 2)), render.START, render.STAR_MARKER, 13)
    pic.fit_caption(
        [
            (
                f"rebuilt map: {explore.time_s:.0f} s of exploration ({explore.stop_reason}), "
                f"{explore.path_m:.0f} m, free IoU with the world {story.report['map_iou']:.3f}",
                render.WALL,
            ),
            ("blue: exploration path   star: dock (map origin)   x: bump", render.PATH),
        ]
    )
    files["map"] = out / "map.png"
    pic.save(files["map"])
    cleaning = story.cleaning
    if cleaning is not None:
        seg = cleaning.segmentation
        occupied = cleaning.costmap.static
        pic = draw_segmentation(
            seg, occupied=occupied, caption=[f"{len(seg.rooms)} rooms on the rebuilt map"]
        )
        files["rooms"] = out / "rooms.png"
        pic.save(files["rooms"])
        pic = draw_coverage_plan(
            cleaning.first_plan,
            cleaning.costmap,
            seg,
            cleaned=cleaning.cleaned,
            caption=[
                f"coverage plan {cleaning.first_plan.length:.0f} m (edge green, lanes blue, "
                "transitions orange); red: the path driven, as the robot estimated it",
                f"x: bumps; dark discs: the obstacle memory ({cleaning.remembered} new)",
            ],
        )
        pic.path(cleaning.trajectory[:, :2], (40, 40, 220))
        if cleaning.bumps:
            pic.markers(np.array([(x, y) for x, y, _ in cleaning.bumps]), render.BUMP)
        files["plan"] = out / "plan.png"
        pic.save(files["plan"])
    # the truth, in the world: path and cleaned floor, then what was missed
    floor, cleaned = story.floor, story.cleaned
    nav = story.report
    pic = _truth_picture(
        world,
        cleaned & floor,
        story.paths,
        story.bumps,
        f"vacnav, {nav['time_s']:.0f} s: coverage {100 * nav['coverage']:.1f} %, "
        f"{nav['bumps']} bumps ({nav['bumps_mapped']} into mapped obstacles)",
    )
    files["path"] = out / "path.png"
    pic.save(files["path"])
    pic = render.draw_plan(
        world.walls, world.outside, world.resolution, world.origin, world.invisible, cleaned & floor
    )
    missed = floor & ~cleaned
    img = pic.image
    scaled = cv2.resize(
        missed[::-1].astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=0
    ).astype(bool)
    img[scaled[: img.shape[0]]] = (80, 80, 240)
    floor_m2 = float(floor.sum()) * world.resolution**2
    pic.caption(
        [
            (
                f"cleaned {100 * nav['coverage']:.1f} % of the {floor_m2:.1f} m2 the robot "
                "can reach",
                render.WALL,
            ),
            ("blue: cleaned   red: reachable floor left dirty", render.PATH),
        ]
    )
    files["cleaned"] = out / "cleaned.png"
    pic.save(files["cleaned"])
    if story.baseline is not None:
        base = story.baseline
        pic = _truth_picture(
            world,
            story.baseline_cleaned & floor,
            [story.baseline_path],
            story.baseline_bumps,
            f"bump-and-turn, {base['time_s']:.0f} s: coverage {100 * base['coverage']:.1f} %, "
            f"{base['bumps']} bumps",
        )
        files["baseline"] = out / "baseline.png"
        pic.save(files["baseline"])
    return {name: str(path) for name, path in files.items()}


def _truth_picture(world, cleaned, paths, bumps, title: str):
    """The world with the cleaned floor, true paths, bumps and the dock, captioned."""
    from maps import render

    pic = render.draw_plan(
        world.walls, world.outside, world.resolution, world.origin, world.invisible, cleaned
    )
    for path in paths:
        pic.path(path[:, :2])
    _bump_markers(pic, bumps)
    pic.markers(world.start.as_array()[None, :2], render.START, render.STAR_MARKER, 13)
    pic.caption(
        [
            (title, render.WALL),
            (
                "blue: true path and cleaned floor   x red: bump   x orange: bump on a "
                "lidar-invisible obstacle (orange cells)   star: dock",
                render.PATH,
            ),
        ]
    )
    return pic


def _bump_markers(pic, bumps) -> None:
    import numpy as np

    from maps import render

    pic.markers(
        np.array([(b.x, b.y) for b in bumps if not b.invisible]).reshape(-1, 2), render.BUMP
    )
    pic.markers(
        np.array([(b.x, b.y) for b in bumps if b.invisible]).reshape(-1, 2), render.BUMP_INVISIBLE
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
