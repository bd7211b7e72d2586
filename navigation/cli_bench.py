"""`vacnav bench ...`: scenario benchmarks in the simulator (kidnapped-robot relocalization)."""

from __future__ import annotations

import sys

import click

from navigation.cli_common import table, write_json


@click.group("bench")
def bench_group() -> None:
    """Scenario benchmarks in the simulator."""


@bench_group.command("relocalize")
@click.option(
    "--world",
    default="default",
    show_default=True,
    help="'default' (the built-in home) or a floor-plan PNG at 0.05 m/px the robot drives in.",
)
@click.option(
    "--invisible",
    type=click.Path(dir_okay=False),
    help="PNG of the same size whose dark cells are obstacles the lidar cannot see.",
)
@click.option(
    "--map-from",
    "map_from",
    type=click.Path(dir_okay=False),
    help="Plan PNG the stored map is made from [default: the world itself]; e.g. the empty plan "
    "of a furnished world, so the home changed since the map was made. 'slam': the map the "
    "robot rebuilds exploring the world from its dock first.",
)
@click.option("--trials", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the drop poses.")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON."
)
def bench_relocalize(
    world: str,
    invisible: str | None,
    map_from: str | None,
    trials: int,
    seed: int,
    json_path: str | None,
) -> None:
    """Kidnap the simulated robot at random free poses; count right, wrong and refused answers.

    Right: the accepted pose is within 0.10 m and 3 deg of the truth; wrong: accepted outside;
    refused: no pose accepted (the answer "not localized", never a guess).
    """
    from firmware_bridge.world import World
    from navigation.relocalize_bench import SLAM, run_trials

    if world == "default":
        if invisible:
            raise click.BadParameter("--invisible needs --world PNG", param_hint="--invisible")
        plan = World.default()
    else:
        plan = World.from_png(world, invisible=invisible)
    source = World.from_png(map_from) if map_from and map_from != SLAM else map_from
    if source == SLAM:
        click.echo("exploring the world to rebuild its map first ...", err=True)
    with click.progressbar(length=trials, label="relocalize", file=sys.stderr) as bar:
        report = run_trials(
            plan, source, trials=trials, seed=seed, progress=lambda *_: bar.update(1)
        )
    report = {"world": world, "map_from": map_from or world, **report}
    summary = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
    click.echo(table([(k, str(v)) for k, v in summary.items()]))
    write_json(json_path, report)
