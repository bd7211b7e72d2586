"""MapStore: round trip of every field, versions and floors, obstacle memory, location, schema
migrations, files that are not stores, byte flips caught by the checksum, and a writer killed
at random moments (tests/store_writer.py)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from maps import store as store_module
from maps.errors import CorruptMap, MapError, MapNotFound
from maps.geometry import Pose
from maps.grid import GridConfig, OccupancyGrid
from maps.model import MapDocument, MapPath, Obstacle, Restrictions, Room, VendorFrame
from maps.store import MapStore

WRITER = Path(__file__).with_name("store_writer.py")
REPO = Path(__file__).resolve().parents[1]


# ---- documents


def full_document(rng: np.random.Generator, shape=(1000, 1000)) -> MapDocument:
    """A document with every field set; random float32 log-odds."""
    h, w = shape
    rooms = rng.integers(0, 4, shape).astype(np.uint8)
    return MapDocument(
        OccupancyGrid(
            rng.standard_normal(shape, dtype=np.float32) * 3,
            0.05,
            (-12.5, 3.25),
            GridConfig(resolution=0.05, l_free=-0.3, l_occ=0.9, grow_margin=1.5),
        ),
        rooms=rooms,
        room_info={
            1: Room(1, "kitchen", True, {"material": "tile", "order": (2, 1)}),
            2: Room(2, "hall"),
            3: Room(3, "bath", False, {"vendor_id": 17}),
        },
        restrictions=Restrictions(
            no_go=[rng.normal(size=(4, 2)), rng.normal(size=(5, 2))],
            virtual_walls=[rng.normal(size=(2, 2))],
            no_mop=[rng.normal(size=(4, 2)).astype(np.float32)],
        ),
        obstacles=[
            Obstacle(1.5, -2.25, "shoe", "vendor", 1, None, None, {"id": 4, "image": b"\x00jpg"}),
            Obstacle(0.1, 0.2, "", "bumper", 3, 1.7e9, 1.7e9 + 60.5),
        ],
        dock=Pose(0.25, -0.5, 1.2345678901234),
        robot=Pose(3.0, 2.0, -3.1),
        paths=[
            MapPath("path", rng.normal(size=(500, 2))),
            MapPath("predicted_path", np.zeros((0, 2))),
        ],
        go_to_target=(1.25, -0.75),
        active_zones=[rng.normal(size=(4, 2))],
        frame=VendorFrame("roborock", 0.001, (25500.0, 25500.0)),
        meta={
            "vendor_map_id": 1234567,
            "firmware": "3.5.8_004",
            "nested": {"a": [1, 2.5, None, True], "b": {"c": "d"}},
            "tuple": (1, "two"),
            "int_keys": {1: "x", 2: "y"},
            "blob": b"\x01\x02\xff",
            "array": np.arange(6, dtype=np.int16).reshape(2, 3),
            "nan": float("nan"),
            "h": h,
        },
    )


def small_document(seed: int, shape=(150, 200)) -> MapDocument:
    """A map-like document (it compresses) whose cells depend on `seed`."""
    rng = np.random.default_rng(seed)
    h, w = shape
    lo = np.zeros(shape, np.float32)
    lo[10 : h - 10, 10 : w - 10] = -2.0
    lo[10 : h - 10, [10, w - 11]] = 3.5
    spots = rng.integers(0, [h, w], (100, 2))
    lo[spots[:, 0], spots[:, 1]] = rng.uniform(-2, 3.5, 100).astype(np.float32)
    rooms = np.zeros(shape, np.uint8)
    rooms[20:60, 20:80] = 1
    return MapDocument(
        OccupancyGrid(lo, 0.05, (-1.0, -2.0)),
        rooms=rooms,
        room_info={1: Room(1, f"room of {seed}")},
        dock=Pose(0.5, 0.5, 0.0),
        meta={"seed": seed},
    )


def same(a, b) -> bool:
    """Exact equality that also looks into numpy arrays (dtype, shape, bits) and containers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and np.isnan(a):
        return np.isnan(b)
    if hasattr(a, "__dataclass_fields__"):
        return all(same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b


def assert_same_document(a: MapDocument, b: MapDocument) -> None:
    for name in MapDocument.__dataclass_fields__:
        assert same(getattr(a, name), getattr(b, name)), name


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "store.db"


# ---- round trip


def test_round_trip_keeps_every_field(path, rng):
    doc = full_document(rng)
    graph = {
        "poses": rng.normal(size=(300, 3)),
        "fixed": rng.random(300) < 0.01,
        "ij": rng.integers(0, 300, (700, 2)),
        "info": rng.normal(size=(700, 3, 3)),
        "kind": rng.integers(0, 2, 700).astype(np.int64),
        "kinds": np.array(["odometry", "loop"]),
        "empty": np.zeros((0, 3)),
    }
    with MapStore(path) as store:
        info = store.save(
            doc, floor="default", source="import", note="every field", pose_graph=graph
        )
        back = store.load(info.id)
        assert_same_document(doc, back)
        assert back.grid.log_odds.flags.writeable and back.rooms.flags.writeable
        assert same(store.pose_graph(info.id), graph)
        assert_same_document(doc, store.load())  # the floor's current version
    with MapStore(path, readonly=True) as store:  # and after reopening the file
        assert_same_document(doc, store.load(floor="default"))
        assert store.problems == []


def test_round_trip_of_a_minimal_document(path):
    doc = MapDocument(OccupancyGrid(np.zeros((1, 1), np.float32), 0.1, (0, 0)))
    with MapStore(path) as store:
        vid = store.save(doc).id
        assert_same_document(doc, store.load(vid))
        assert store.pose_graph(vid) is None


def test_what_cannot_be_stored_is_refused_by_name(path):
    doc = small_document(1)
    doc.meta["when"] = {1, 2}
    with MapStore(path) as store:
        with pytest.raises(TypeError, match=r"doc\.meta\.when.*set"):
            store.save(doc)
        with pytest.raises(TypeError, match="pose_graph\\['bad'\\]"):
            store.save(small_document(1), pose_graph={"bad": np.array([object()])})
        with pytest.raises(ValueError, match="source"):
            store.save(small_document(1), source="cloud")
        for name in ("", " x", "12", "v3", "a\nb"):
            with pytest.raises(ValueError, match="floor name"):
                store.save(small_document(1), floor=name)
        assert store.floors() == []  # nothing half-saved


# ---- versions, floors, current


def test_versions_floors_and_current(path):
    t0 = time.time()
    with MapStore(path) as store:
        v1 = store.save(small_document(1), source="import", note="from the robot")
        v2 = store.save(small_document(2), source="slam")
        v3 = store.save(small_document(3), source="edit", make_current=False)
        up = store.save(small_document(4, (80, 90)), floor="upstairs")
        assert (v1.parent, v2.parent, v3.parent, up.parent) == (None, v1.id, v2.id, None)
        assert [v.id for v in store.versions("default")] == [v3.id, v2.id, v1.id]
        assert store.floors() == [
            store_module.FloorInfo("default", v2.id, 3),
            store_module.FloorInfo("upstairs", up.id, 1),
        ]
        info = store.info(v1.id)
        assert info == v1
        assert (info.floor, info.source, info.note, info.shape) == (
            "default",
            "import",
            "from the robot",
            (150, 200),
        )
        assert info.resolution == 0.05 and info.origin == (-1.0, -2.0)
        assert t0 - 1 <= info.created_at <= time.time() + 1
        assert len(info.checksum) == 64 and 0 < info.size < 150 * 200 * 4 // 4  # it compressed
        assert store.load().meta["seed"] == 2  # v3 was saved without becoming current
        store.set_current("default", v3.id)
        assert store.load().meta["seed"] == 3
        assert store.load(v1.id).meta["seed"] == 1
        assert store.load(floor="upstairs").grid.shape == (80, 90)
        v5 = store.save(small_document(5), parent=v1.id)
        assert v5.parent == v1.id
        # references
        assert store.resolve("2") == store.resolve("v2") == v2.id
        assert store.resolve("upstairs") == up.id
        assert store.resolve("default") == v5.id
        with pytest.raises(MapNotFound, match="99"):
            store.resolve("99")
        with pytest.raises(MapNotFound, match=r"'cellar' is neither.*default, upstairs"):
            store.resolve("cellar")
        with pytest.raises(MapNotFound, match="belongs to floor 'upstairs'"):
            store.set_current("default", up.id)
        with pytest.raises(MapNotFound, match="no floor 'cellar'"):
            store.versions("cellar")
        with pytest.raises(MapNotFound, match="no map version 42"):
            store.load(42)
        store.create_floor("cellar")
        assert store.versions("cellar") == []
        with pytest.raises(MapNotFound, match="floor 'cellar' has no map yet"):
            store.load(floor="cellar")


def test_empty_store_says_what_to_do(path):
    with MapStore(path) as store:
        with pytest.raises(MapNotFound, match="no maps in the store yet.*vacnav maps import"):
            store.load()
        assert store.floors() == []
    assert path.exists()


def test_readonly_never_writes(tmp_path):
    missing = tmp_path / "nowhere" / "store.db"
    with MapStore(missing, readonly=True) as store:
        assert store.floors() == []
        with pytest.raises(MapNotFound):
            store.resolve("default")
        with pytest.raises(MapError, match="read-only"):
            store.save(small_document(1))
    assert not missing.parent.exists()
    path = tmp_path / "store.db"
    with MapStore(path) as store:
        store.save(small_document(1))
    with MapStore(path, readonly=True) as store:
        with pytest.raises(MapError, match="read-only"):
            store.remember_obstacle("default", 0, 0)
        assert store.load().meta["seed"] == 1


def test_parent_folders_are_created_on_first_write(tmp_path):
    path = tmp_path / "a" / "b" / "vacnav.db"
    with MapStore(path) as store:
        store.save(small_document(1))
    assert path.is_file()


# ---- obstacle memory


def test_obstacle_memory_merges_hits_within_the_radius(path):
    with MapStore(path) as store:
        a = store.remember_obstacle("default", 1.00, 2.00, stamp=100.0)
        b = store.remember_obstacle("default", 1.06, 2.00, stamp=110.0)
        assert b.meta == a.meta and b.count == 2
        assert (b.x, b.y) == pytest.approx((1.03, 2.00))
        c = store.remember_obstacle("default", 1.03, 2.09, stamp=90.0)  # 0.09 m from the mean
        assert c.count == 3 and (c.first_seen, c.last_seen) == (90.0, 110.0)
        assert (c.x, c.y) == pytest.approx((1.03, 2.03))  # the mean of the three hits
        store.remember_obstacle("default", 1.20, 2.00, stamp=120.0)  # 0.17 m away: a new point
        store.remember_obstacle("default", 1.03, 2.03, source="cliff", stamp=130.0)
        store.remember_obstacle("upstairs", 1.03, 2.03, stamp=140.0)
        kept = store.obstacles("default")
        assert [(o.source, o.count) for o in kept] == [("bumper", 3), ("bumper", 1), ("cliff", 1)]
        assert len(store.obstacles("upstairs")) == 1 and store.obstacles("cellar") == []
        with pytest.raises(ValueError, match="source"):
            store.remember_obstacle("default", 0, 0, source="vendor")
        with pytest.raises(ValueError, match="finite"):
            store.remember_obstacle("default", float("nan"), 0)

        # load() appends the memory after the document's own obstacles ...
        doc = full_document(np.random.default_rng(1), (40, 50))
        vid = store.save(doc).id
        loaded = store.load()
        assert loaded.obstacles[:2] == doc.obstacles
        assert [(o.x, o.y, o.source, o.count) for o in loaded.obstacles[2:]] == [
            (o.x, o.y, o.source, o.count) for o in kept
        ]
        assert_same_document(doc, store.load(vid, memory=False))
        # ... and a loaded map saved again does not copy the memory into the version
        again = store.save(loaded)
        assert len(store.load(again.id, memory=False).obstacles) == 2
        assert len(store.load(again.id).obstacles) == 5

        assert store.forget_obstacles("default") == 3
        assert store.obstacles("default") == [] and len(store.obstacles("upstairs")) == 1


def test_obstacle_memory_clusters_noisy_hits(path):
    """Hits scattered 2 cm around 12 objects 0.5 m apart end up as 12 points, each near its
    object, whatever the order of the hits."""
    rng = np.random.default_rng(3)
    centres = np.array([(i * 0.5, j * 0.5) for i in range(4) for j in range(3)])
    which = rng.integers(0, len(centres), 400)
    hits = centres[which] + np.clip(rng.normal(0, 0.02, (400, 2)), -0.045, 0.045)
    stamps = rng.permutation(400).astype(float)
    with MapStore(path) as store:
        for (x, y), stamp in zip(hits, stamps, strict=True):
            store.remember_obstacle("default", x, y, stamp=stamp)
        kept = store.obstacles("default")
    assert len(kept) == len(centres)
    assert sum(o.count for o in kept) == 400
    for o in kept:
        k = np.argmin(np.hypot(*(centres - (o.x, o.y)).T))
        mine = which == k
        assert np.hypot(o.x - centres[k, 0], o.y - centres[k, 1]) < 0.01
        assert (o.x, o.y) == pytest.approx(tuple(hits[mine].mean(axis=0)))
        assert o.count == np.count_nonzero(mine)
        assert (o.first_seen, o.last_seen) == (stamps[mine].min(), stamps[mine].max())


# ---- location


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VACNAV_STORE", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert MapStore.default_path() == tmp_path / "home" / ".local/share/vacnav/vacnav.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the XDG spec: ignore a relative one
    assert MapStore.default_path() == tmp_path / "home" / ".local/share/vacnav/vacnav.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert MapStore.default_path() == tmp_path / "data" / "vacnav" / "vacnav.db"
    monkeypatch.setenv("VACNAV_STORE", "~/maps/my.db")
    assert MapStore.default_path() == tmp_path / "home" / "maps" / "my.db"
    monkeypatch.setenv("VACNAV_STORE", "")  # empty = unset
    assert MapStore.default_path() == tmp_path / "data" / "vacnav" / "vacnav.db"


# ---- schema


def _feed(h, value) -> None:
    """The checksum's column encoding, written out again: rows of schema 1 must keep verifying."""
    if value is None:
        h.update(b"N")
    elif isinstance(value, int):
        h.update(b"I" + struct.pack("<q", value))
    elif isinstance(value, float):
        h.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, str):
        h.update(b"S" + struct.pack("<Q", len(value.encode())) + value.encode())
    else:
        h.update(b"B" + struct.pack("<Q", len(value)) + value)


def schema1_row(floor: str, parent: int | None, lo: np.ndarray, document: dict) -> dict:
    """A version row as vacnav wrote it at schema 1: packed parts, sha256 over payload+meta."""
    data = lo.astype("<f4").tobytes()
    row = {
        "grid": struct.pack("<BQ", 1, len(data)) + zlib.compress(data, 1),
        "rooms": None,
        "document": struct.pack("<BQ", 0, 0) + b"",
        "floor": floor,
        "parent": parent,
        "created_at": 1.7e9,
        "source": "import",
        "note": "schema 1",
        "height": lo.shape[0],
        "width": lo.shape[1],
        "resolution": 0.05,
        "origin_x": -1.0,
        "origin_y": 2.5,
    }
    text = json.dumps(document).encode()
    row["document"] = struct.pack("<BQ", 0, len(text)) + text
    h = hashlib.sha256(b"vacnav map version\x00")
    for name in ("grid", "rooms", "document", "floor", "parent", "created_at", "source", "note"):
        _feed(h, row[name])
    for name in ("height", "width", "resolution", "origin_x", "origin_y"):
        _feed(h, row[name])
    row["checksum"] = h.hexdigest()
    return row


def make_schema1_store(path: Path) -> np.ndarray:
    """A store at schema 1 built by hand (migration 1's SQL, rows in the schema-1 format)."""
    lo = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    db = sqlite3.connect(path, isolation_level=None)
    for statement in store_module.MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    document = {
        "dock": {"__tuple__": [0.5, -1.0, 0.25]},
        "room_info": [[1, {"id": 1, "name": "hall", "active": False, "meta": {}}]],
        "frame": {"vendor": "roborock", "unit": 0.001, "origin": {"__tuple__": [25500, 25500]}},
        "meta": {"source": "old.bin"},
    }
    for parent in (None, 1):
        row = schema1_row("ground", parent, lo + (parent or 0), document)
        db.execute(
            f"INSERT INTO versions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    db.execute("INSERT INTO floors VALUES ('ground', 2, 1.7e9)")
    db.execute(
        "INSERT INTO obstacles (floor, x, y, source, count, first_seen, last_seen) "
        "VALUES ('ground', 1.0, 2.0, 'bumper', 4, 10.0, 20.0)"
    )
    db.close()
    return lo + 1


def test_schema1_store_migrates_with_its_data(path):
    lo = make_schema1_store(path)
    with MapStore(path, readonly=True) as store:  # read through a migrated copy: file untouched
        assert store.load(floor="ground").meta == {"source": "old.bin"}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    with MapStore(path) as store:
        assert store.problems == []
        doc = store.load(floor="ground")
        np.testing.assert_array_equal(doc.grid.log_odds, lo)
        assert doc.grid.origin == (-1.0, 2.5) and doc.dock == Pose(0.5, -1.0, 0.25)
        assert doc.frame == VendorFrame("roborock", 0.001, (25500, 25500))
        assert doc.room_info == {1: Room(1, "hall")}
        assert [(o.x, o.y, o.source, o.count) for o in doc.obstacles] == [(1.0, 2.0, "bumper", 4)]
        assert [v.id for v in store.versions("ground")] == [2, 1]
        assert store.pose_graph(2) is None
        new = store.save(small_document(9), floor="ground", pose_graph={"poses": np.ones((2, 3))})
        assert new.parent == 2 and store.pose_graph(new.id)["poses"].shape == (2, 3)
        assert store.check(full=True) == []
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(store_module.MIGRATIONS)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"versions_by_floor", "obstacles_by_floor"} <= indexes


def test_a_failing_migration_changes_nothing(path, monkeypatch):
    make_schema1_store(path)
    broken = (*store_module.MIGRATIONS, ("CREATE TABLE extra (a)", "SELECT * FROM no_such_table"))
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    with pytest.raises(MapError, match="migrating the store to schema 3 failed.*left at schema 1"):
        MapStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "extra" not in tables
    assert db.execute("PRAGMA table_info(versions)").fetchall()[-1][1] == "document"  # no column


def test_newer_schema_is_refused_untouched(path):
    with MapStore(path) as store:
        store.save(small_document(1))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = path.read_bytes()
    supported = len(store_module.MIGRATIONS)
    message = f"store schema 99 is newer than this vacnav supports ({supported}); upgrade vacnav"
    for readonly in (False, True):
        with pytest.raises(MapError, match=message.replace("(", r"\(").replace(")", r"\)")):
            MapStore(path, readonly=readonly)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize(
    "kind", ["random", "png", "text", "foreign sqlite", "sqlite header, garbage"]
)
def test_files_that_are_not_stores_are_refused(tmp_path, kind):
    path = tmp_path / "maps.db"
    if kind == "random":
        path.write_bytes(np.random.default_rng(5).bytes(5000))
    elif kind == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    elif kind == "text":
        path.write_text("floors:\n  default: kitchen\n")
    elif kind == "foreign sqlite":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE users (name TEXT)")
        db.commit()
        db.close()
    else:
        path.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(6).bytes(8000))
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(MapError) as caught:
            MapStore(path, readonly=readonly)
        message = str(caught.value)
        assert message.startswith(f"{path}: ")
        if kind != "sqlite header, garbage":
            assert "not a vacnav map store (" in message
    assert path.read_bytes() == before


def test_an_empty_file_becomes_a_store(path):
    path.write_bytes(b"")
    with MapStore(path) as store:
        store.save(small_document(1))
    with MapStore(path) as store:
        assert store.load().meta == {"seed": 1}


# ---- corruption


def flip(db: sqlite3.Connection, vid: int, column: str, offset: int, mask: int) -> None:
    blob = bytearray(
        db.execute(f"SELECT {column} FROM versions WHERE id = ?", (vid,)).fetchone()[0]
    )
    blob[offset] ^= mask
    db.execute(f"UPDATE versions SET {column} = ? WHERE id = ?", (bytes(blob), vid))


def test_byte_flips_are_always_caught_and_the_last_good_version_served(path):
    good, bad = small_document(1), small_document(2)
    graph = {"poses": np.random.default_rng(0).normal(size=(50, 3))}
    with MapStore(path) as store:
        v1 = store.save(good).id
        v2 = store.save(bad, pose_graph=graph).id
    raw = sqlite3.connect(path, isolation_level=None)
    sizes = dict(
        zip(
            ("grid", "document", "rooms", "pose_graph"),
            raw.execute(
                "SELECT length(grid), length(document), length(rooms), length(pose_graph) "
                "FROM versions WHERE id = ?",
                (v2,),
            ).fetchone(),
            strict=True,
        )
    )
    assert sizes["grid"] < 150 * 200 * 4 // 4  # the grid is stored compressed
    rng = random.Random(11)
    cases = ["grid"] * 90 + ["document"] * 90 + ["rooms"] * 10 + ["pose_graph"] * 10
    caught = 0
    for column in cases:
        offset, mask = rng.randrange(sizes[column]), rng.randrange(1, 256)
        flip(raw, v2, column, offset, mask)
        with MapStore(path, readonly=rng.random() < 0.5) as store:
            assert store.corrupt.keys() == {v2}, (column, offset)
            assert any(
                p.startswith(f"version {v2} of floor 'default' is corrupt: checksum mismatch")
                for p in store.problems
            )
            served = store.load()
            np.testing.assert_array_equal(served.grid.log_odds, good.grid.log_odds)
            assert served.meta == {"seed": 1}
            assert store.resolve("default") == v1
            assert any(f"serving version {v1}" in p for p in store.problems)
            with pytest.raises(CorruptMap, match=f"version {v2} of floor 'default' is corrupt"):
                store.load(v2)
            with pytest.raises(CorruptMap, match=f"version {v2}"):
                store.pose_graph(v2)
            assert store.load(v1).meta == {"seed": 1}
            caught += 1
        flip(raw, v2, column, offset, mask)  # put it back for the next case
    assert caught == len(cases) == 200
    with MapStore(path) as store:
        assert store.problems == [] and store.check(full=True) == []
        assert store.load().meta == {"seed": 2}


def test_changed_metadata_is_caught_too(path):
    with MapStore(path) as store:
        store.save(small_document(1))
        v2 = store.save(small_document(2)).id
    changes = [
        "resolution = 0.1",
        "origin_x = origin_x + 1e-9",
        "height = 200, width = 150",
        "note = 'edited'",
        "parent = NULL",
        "source = 'edit'",
        "created_at = created_at + 1",
        "checksum = upper(checksum)",
    ]
    for change in changes:
        backup = sqlite3.connect(path).execute("SELECT * FROM versions WHERE id = ?", (v2,))
        backup = backup.fetchone()
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute(f"UPDATE versions SET {change} WHERE id = ?", (v2,))
        with MapStore(path) as store:
            assert v2 in store.corrupt, change
            assert store.load().meta == {"seed": 1}, change
        raw.execute("DELETE FROM versions WHERE id = ?", (v2,))
        raw.execute(f"INSERT INTO versions VALUES ({', '.join('?' * len(backup))})", backup)
        raw.close()
    with MapStore(path) as store:
        assert store.check(full=True) == []


def test_a_floor_without_an_intact_version(path):
    with MapStore(path) as store:
        vid = store.save(small_document(1)).id
    raw = sqlite3.connect(path, isolation_level=None)
    flip(raw, vid, "grid", 20, 0x10)
    with MapStore(path) as store:
        with pytest.raises(CorruptMap, match="floor 'default' has no intact version"):
            store.load()
        with pytest.raises(CorruptMap, match=f"version {vid}.*not made current"):
            store.set_current("default", vid)
        problems = store.check(full=True)
        assert len(problems) == 1 and f"version {vid} of floor 'default'" in problems[0]


def test_a_damaged_file_gives_map_errors_not_crashes(tmp_path):
    """Truncated files and pages overwritten with garbage: opening, loading and checking either
    work or raise MapError naming the file, nothing else escapes, and the damage is noticed."""
    good = tmp_path / "good.db"
    with MapStore(good) as store:
        for seed in range(4):
            store.save(small_document(seed, (300, 300)), floor=("default", "upstairs")[seed % 2])
    data = good.read_bytes()
    assert not Path(f"{good}-wal").exists() or Path(f"{good}-wal").stat().st_size == 0
    rng = random.Random(3)
    outcomes = {"refused": 0, "opened with problems": 0}
    for case in range(40):
        damaged = bytearray(data)
        if case % 2:
            damaged = damaged[: rng.randrange(1, len(data))]
        else:
            start = rng.randrange(len(data) // 16384) * 16384
            damaged[start : start + 16384] = rng.randbytes(16384)
        path = tmp_path / f"damaged{case}.db"
        path.write_bytes(bytes(damaged))
        try:
            store = MapStore(path)
        except MapError as exc:
            assert str(exc).startswith(str(path)), exc
            outcomes["refused"] += 1
            continue
        with store:
            outcomes["opened with problems"] += bool(store.problems)
            for floor in ("default", "upstairs"):
                try:
                    store.load(floor=floor)
                except MapError as exc:
                    assert str(path) in str(exc), exc
            try:
                store.check(full=True)
            except MapError as exc:
                assert str(path) in str(exc), exc
            assert store.problems, f"damage {case} went unnoticed"  # by SQLite or a checksum
    assert outcomes["refused"] >= 10 and outcomes["opened with problems"] >= 10, outcomes


# ---- a writer killed at random moments


def writer_env() -> dict[str, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return env


class Survey:
    """What the writers reported, checked against the store after each kill."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.committed: dict[int, str] = {}
        self.verified_up_to = 0
        self.mid_save = 0

    def take(self, lines: list[str]) -> None:
        last = None
        for line in lines:
            if line.startswith("committed "):
                _, vid, checksum = line.split()
                self.committed[int(vid)] = checksum
            last = line.split()[0] if line else last
        self.mid_save += last == "saving"

    def check(self, new: dict[int, str]) -> None:
        with MapStore(self.path) as store:  # it opens: quick_check and current versions
            assert store.problems == []
            for vid, checksum in new.items():  # every reported commit is there, intact
                assert store.info(vid).checksum == checksum
            newest = self.verified_up_to
            for floor in store.floors():  # every version there is complete (ids only grow)
                for info in store.versions(floor.name):
                    if info.id <= self.verified_up_to:
                        break
                    assert store.verify(info.id) is None, info.id
                    newest = max(newest, info.id)
                if floor.current is not None:
                    assert store.resolve(floor.name) == floor.current
                    assert (
                        store.load(floor=floor.name).grid.shape == store.info(floor.current).shape
                    )
            self.verified_up_to = newest

    def final(self) -> int:
        with MapStore(self.path) as store:
            assert store.check(full=True) == []
            for vid, checksum in self.committed.items():
                assert store.info(vid).checksum == checksum
            return sum(f.count for f in store.floors())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the writer server forks")
def test_writer_killed_at_random_moments_loses_nothing(tmp_path):
    """VACNAV_KILLS (200) writers, each SIGKILLed after a random 5-150 ms: nothing committed is
    lost, nothing incomplete appears, the store opens and serves its current maps."""
    kills = int(os.environ.get("VACNAV_KILLS", "200"))
    path = tmp_path / "kill.db"
    errors = (tmp_path / "writer.err").open("w+")
    server = subprocess.Popen(
        [sys.executable, str(WRITER), "--serve", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        env=writer_env(),
        text=True,
        bufsize=1,
    )
    survey = Survey(path)
    rng = random.Random(2024)
    try:
        for k in range(kills):
            server.stdin.write(f"{k}\n")
            server.stdin.flush()
            lines, pid = [], None
            while pid is None:
                line = server.stdout.readline()
                assert line, f"writer server died: {Path(errors.name).read_text()}"
                if line.startswith("pid "):
                    pid = int(line.split()[1])
                else:
                    lines.append(line.strip())
            time.sleep(rng.uniform(0.005, 0.150))
            os.kill(pid, signal.SIGKILL)
            while True:
                line = server.stdout.readline()
                assert line, f"writer server died: {Path(errors.name).read_text()}"
                if line.startswith("exited "):
                    status = int(line.split()[2])
                    break
                lines.append(line.strip())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"writer {k} was not killed but ended: {Path(errors.name).read_text()[-2000:]}"
            )
            before = dict(survey.committed)
            survey.take(lines)
            survey.check({v: c for v, c in survey.committed.items() if v not in before})
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        errors.close()
    versions = survey.final()
    print(f"{kills} kills, {survey.mid_save} during a save, {versions} versions kept")
    assert len(survey.committed) >= kills  # the writers got real work done between kills
    assert survey.mid_save >= kills // 5  # and many kills landed inside a save


def test_writer_as_its_own_process_killed(tmp_path):
    """The writer as its own process (a fresh interpreter each time), killed after its first
    commit, three times over the same store."""
    path = tmp_path / "kill.db"
    survey = Survey(path)
    rng = random.Random(5)
    for seed in range(3):
        child = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=writer_env(),
            text=True,
        )
        lines = [child.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("committed"):
            lines.append(child.stdout.readline())
        time.sleep(rng.uniform(0.0, 0.1))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        before = dict(survey.committed)
        survey.take([line.strip() for line in lines] + out.splitlines())
        assert len(survey.committed) > len(before), err
        survey.check({v: c for v, c in survey.committed.items() if v not in before})
    survey.final()
