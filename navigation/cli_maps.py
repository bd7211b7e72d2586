"""`vacnav maps ...` and `vacnav inspect`: the store's maps, vendor map recovery, exports, diffs.

A map reference (ID) is a version id from `vacnav maps list` / `history` (e.g. `12`), or a floor
name meaning that floor's current version. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from navigation.cli_common import table, write_json

STORE_HELP = "Map store (SQLite) [default: $VACNAV_STORE, else ~/.local/share/vacnav/vacnav.db]."


def _store_callback(ctx: click.Context, _param, value: str | None) -> None:
    if value:
        ctx.ensure_object(dict)
        ctx.obj["store"] = value


# accepted before or after the subcommand: `vacnav maps --store S list` or `maps list --store S`
store_option = click.option(
    "--store",
    type=click.Path(dir_okay=False),
    help=STORE_HELP,
    expose_value=False,
    callback=_store_callback,
)


def open_store(path: str | None, readonly: bool = False):
    """The MapStore at `path`, or at the default place (problems found on open are logged)."""
    from maps.store import MapStore

    return MapStore(path or MapStore.default_path(), readonly=readonly)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _pose(p) -> str:
    import math

    return "-" if p is None else f"({p.x:.2f}, {p.y:.2f}) m, {math.degrees(p.theta):.0f} deg"


def describe(doc, name: str) -> list[tuple[str, str]]:
    """Rows of the human summary of a map document."""
    s = doc.summary()
    rows = [
        ("map", name),
        ("size", f"{s['width']} x {s['height']} cells at {s['resolution'] * 100:g} cm"),
        ("free floor", f"{s['free_m2']:.2f} m2"),
        ("occupied", f"{s['occupied_m2']:.2f} m2"),
        ("unknown", f"{s['unknown_m2']:.2f} m2"),
        ("rooms", str(len(s["rooms"])) if s["rooms"] else "none"),
    ]
    for room in s["rooms"]:
        label = f"{room['id']}" + (f" {room['name']}" if room["name"] else "")
        rows.append((f"  room {label}", f"{room['area_m2']:.2f} m2"))
    r = s["restrictions"]
    rows += [
        (
            "restrictions",
            f"{r['no_go']} no-go, {r['virtual_walls']} virtual walls, {r['no_mop']} no-mop",
        ),
        ("dock", _pose(doc.dock)),
        ("robot", _pose(doc.robot)),
        ("obstacles", str(len(s["obstacles"]))),
        ("frame", f"{doc.frame.vendor}"),
    ]
    return rows


@click.group("maps")
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help=STORE_HELP)
@click.pass_context
def maps_group(ctx: click.Context, store_path: str | None) -> None:
    """Maps kept on the device: import a robot's own map file, list, show, export, diff."""
    ctx.ensure_object(dict)
    ctx.obj.setdefault("store", store_path)


@maps_group.command("import")
@store_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--floor", default="default", show_default=True, help="Floor to file it under.")
@click.option("--note", help="A note kept with the version.")
@click.pass_context
def maps_import(ctx: click.Context, file: str, floor: str, note: str | None) -> None:
    """Recover a map from a robot's file (Roborock, Dreame, Viomi, ROS .yaml) into the store."""
    from maps.formats import load_map
    from maps.store import check_floor_name

    check_floor_name(floor)
    doc = load_map(file)
    with open_store(ctx.obj["store"]) as store:
        info = store.save(doc, floor=floor, source="import", note=note or f"from {Path(file).name}")
    click.echo(f"imported {file} as version {info.id} of floor '{floor}'")
    click.echo(table(describe(doc, f"v{info.id}")))
    unknown = doc.meta.get("unknown_blocks")
    if unknown:
        click.echo(f"  ({unknown} unknown block(s) in the file were skipped)")


@maps_group.command("list")
@store_option
@click.pass_context
def maps_list(ctx: click.Context) -> None:
    """Floors in the store with their current version."""
    with open_store(ctx.obj["store"], readonly=True) as store:
        floors = store.floors()
        if not floors:
            click.echo(f"no maps in {store.path}; add one with `vacnav maps import FILE`")
            return
        rows = [("floor", "current  versions  size       source  saved")]
        for floor in floors:
            info = store.info(floor.current) if floor.current is not None else None
            if info is None:
                rows.append((floor.name, f"-        {floor.count}"))
                continue
            size = f"{info.shape[1]}x{info.shape[0]}"
            rows.append(
                (
                    floor.name,
                    f"v{info.id:<7} {floor.count:<9} {size:<10} {info.source:<7} "
                    f"{_when(info.created_at)}",
                )
            )
        click.echo(table(rows))


def _load(ctx: click.Context, ref: str):
    """(document, VersionInfo) for a store reference."""
    with open_store(ctx.obj["store"], readonly=True) as store:
        vid = store.resolve(ref)
        return store.load(vid), store.info(vid)


@maps_group.command("show")
@store_option
@click.argument("ref", metavar="ID")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Also draw it here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary.")
@click.pass_context
def maps_show(ctx: click.Context, ref: str, png_path: str | None, json_path: str | None) -> None:
    """One stored version: where it came from and what is in it."""
    doc, info = _load(ctx, ref)
    rows = [
        ("version", f"{info.id} of floor '{info.floor}'"),
        ("saved", f"{_when(info.created_at)} ({info.source})"),
        ("parent", "-" if info.parent is None else f"v{info.parent}"),
        ("note", info.note or "-"),
        ("checksum", info.checksum[:16]),
    ]
    click.echo(table(rows + describe(doc, f"v{info.id}")[1:]))
    _outputs(doc, png_path, json_path, {"id": info.id, "floor": info.floor})


def _outputs(doc, png_path: str | None, json_path: str | None, extra: dict) -> None:
    if png_path:
        from maps import render

        render.draw_document(doc).save(png_path)
        click.echo(f"  picture: {png_path}")
    write_json(json_path, {**extra, **doc.summary()})


@maps_group.command("export")
@store_option
@click.argument("ref", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ros", "valetudo", "png"]),
    required=True,
    help="ros: map_server PGM + YAML; valetudo: ValetudoMap JSON; png: a picture.",
)
@click.option(
    "--out",
    "out_path",
    help="Output path (ros: the stem of .yaml + image) [default: ./<floor>-v<id>[-ros]].",
)
@click.option(
    "--mode",
    type=click.Choice(["trinary", "scale"]),
    default="trinary",
    show_default=True,
    help="ROS map_server mode.",
)
@click.pass_context
def maps_export(ctx: click.Context, ref: str, fmt: str, out_path: str | None, mode: str) -> None:
    """Write a stored map in another format."""
    import re

    doc, info = _load(ctx, ref)
    extension = {"ros": "", "valetudo": ".json", "png": ".png"}[fmt]
    if out_path:
        out = Path(out_path)
        if not out.suffix:
            out = out.with_name(out.name + extension)
        elif fmt == "png" and out.suffix.lower() != ".png":
            message = f"{out}: the picture is a PNG; name it *.png"
            raise click.BadParameter(message, param_hint="--out")
    else:  # a floor name is not a path: the default file stays in this folder
        floor = re.sub(r"[^\w-]+", "_", info.floor).strip("_") or "floor"
        out = Path(f"{floor}-v{info.id}" + ("-ros" if fmt == "ros" else extension))
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "ros":
        from maps.formats import ros

        known = out.suffix.lower() in (".yaml", ".yml", ".pgm", ".png")
        written = ros.save(doc, out.with_suffix("") if known else out, mode=mode)
    elif fmt == "valetudo":
        from maps.formats import valetudo

        written = (valetudo.save(doc, out),)
    else:
        from maps import render

        render.draw_document(doc).save(out)
        written = (out,)
    click.echo("wrote " + ", ".join(str(p) for p in written))


@maps_group.command("history")
@store_option
@click.argument("ref", metavar="ID")
@click.pass_context
def maps_history(ctx: click.Context, ref: str) -> None:
    """Every version of the floor that ID belongs to, newest first."""
    with open_store(ctx.obj["store"], readonly=True) as store:
        info = store.info(store.resolve(ref))
        current = {f.name: f.current for f in store.floors()}.get(info.floor)
        store.check(full=True)
        bad = store.corrupt
        rows = [("version", "saved                source  size       note")]
        for v in store.versions(info.floor):
            mark = " *" if v.id == current else "  "
            flag = "  CORRUPT" if v.id in bad else ""
            size = f"{v.shape[1]}x{v.shape[0]}"
            rows.append(
                (
                    f"v{v.id}{mark}",
                    f"{_when(v.created_at)}  {v.source:<7} {size:<10} {v.note or ''}{flag}",
                )
            )
    click.echo(f"floor '{info.floor}' (* = current)")
    click.echo(table(rows))


@maps_group.command("diff")
@store_option
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Picture of the change.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the diff.")
@click.pass_context
def maps_diff(
    ctx: click.Context, a: str, b: str, png_path: str | None, json_path: str | None
) -> None:
    """What changed from map A to map B (store ids, floor names or map files)."""
    from maps.diff import diff

    doc_a, name_a = _resolve_any(ctx.obj["store"], a)
    doc_b, name_b = _resolve_any(ctx.obj["store"], b)
    result = diff(doc_a, doc_b)
    report = {"a": name_a, "b": name_b, **result.as_dict()}
    click.echo(table([(k, str(v)) for k, v in report.items()]))
    if png_path:
        result.picture().save(png_path)
        click.echo(f"  picture: {png_path}")
    write_json(json_path, report)


def _resolve_any(store_path: str | None, ref: str):
    """(document, name) for a map file path or a store reference."""
    from maps.errors import MapNotFound
    from maps.formats import load_map

    if Path(ref).exists():
        return load_map(ref), ref
    try:
        with open_store(store_path, readonly=True) as store:
            vid = store.resolve(ref)
            return store.load(vid), f"v{vid}"
    except MapNotFound as exc:
        raise MapNotFound(f"{ref}: neither a map file nor a stored map ({exc})") from None


@click.command("inspect")
@click.argument("target", metavar="FILE|ID")
@click.option("--store", "store_path", type=click.Path(dir_okay=False), help=STORE_HELP)
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Draw the map here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary.")
def inspect(target: str, store_path: str | None, png_path: str | None, json_path: str | None):
    """Look into a map file (vendor or ROS) or a stored map: size, areas, rooms, dock."""
    doc, name = _resolve_any(store_path, target)
    click.echo(table(describe(doc, name)))
    _outputs(doc, png_path, json_path, {"map": name})
