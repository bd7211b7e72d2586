"""MapStore: the device-side map store, one SQLite file (stdlib sqlite3, WAL, synchronous=FULL).

Maps are kept per floor ("default", "upstairs", ...). Every save adds a new immutable version; a
floor has one current version, the one `load()` serves. Beside the versions, each floor has a
mutable obstacle memory: the points where the bumper or the cliff sensor fired.

    with MapStore(MapStore.default_path()) as store:
        info = store.save(doc, floor="default", source="slam", pose_graph=graph.to_arrays())
        doc = store.load()                      # the current version of floor "default"
        old = store.load(info.parent)           # any version by id
        store.remember_obstacle("default", 1.20, -0.35, source="bumper")

API
    MapStore(path, *, readonly=False)   open (a missing or empty file becomes a new store; a
                                        read-only open never writes, see "Reading"; a missing
                                        store reads as empty)
    default_path()                      $VACNAV_STORE, else $XDG_DATA_HOME/vacnav/vacnav.db, else
                                        ~/.local/share/vacnav/vacnav.db
    save(doc, floor, source, note, pose_graph, make_current, parent) -> VersionInfo
    load(version_id=None, floor=None, *, memory=True) -> MapDocument
    resolve(ref) -> int                 "12" / "v12" = that version; a floor name = the version
                                        `load(floor=...)` serves (its current one, or the newest
                                        intact earlier one when the current one is corrupt)
    info(id) -> VersionInfo; versions(floor) -> [VersionInfo] newest first; floors() -> [FloorInfo]
    create_floor(name); set_current(floor, id); pose_graph(id) -> dict | None
    prune(floor, keep) -> [id]          delete versions older than the `keep` newest (never the
                                        current one, its parent or the one load() serves)
    remember_obstacle / obstacles / forget_obstacles     the obstacle memory of a floor
    verify(id) -> str | None; check(full=False) -> [str]; problems; corrupt
    check_floor_name(name) -> name      InvalidFloorName (a MapError) when it breaks the rules

What a version holds (table `versions`): the log-odds grid as its exact float32 bytes (packed:
zlib level 1, or raw when a sample shows the bytes do not compress), shape, resolution (m/cell),
origin (m), the rooms raster (packed), a JSON part with everything else of the document (room_info,
restrictions, the document's own obstacles, dock, robot, paths, go_to_target, active_zones, frame,
meta, grid config; arrays inside it keep dtype and shape), the optional pose graph of a SLAM map
(a bundle of plain arrays, never pickle), created_at (s since the epoch), source ("slam", "import"
or "edit"), note, parent id, and a sha256 over all of it (`checksum`). The save of a version and
the change of its floor's current version are one transaction: a writer killed at any moment
leaves either the whole version or none of it.

Integrity: opening runs `PRAGMA quick_check`, checks that each floor's name is text and that its
current-version record names one of the floor's own versions, and verifies the checksum of each
floor's current version and of every obstacle memory row; `check(full=True)` runs
`integrity_check` and verifies every version. A failure is logged as a warning and kept in
`problems` (e.g. "version 12 of floor 'default' is corrupt: checksum mismatch ...") and, for a
version, in `corrupt` ({version id: what failed}). `load()` of a floor whose current version is
corrupt serves the newest intact earlier version of that floor (whose current-version record is
damaged: its newest intact version) and says so in `problems`; `load(12)` of a corrupt version
raises CorruptMap naming it; a corrupt obstacle memory row is left out. Text that is not UTF-8
(damage) reads with U+FFFD in place of the bad bytes, so it fails the checksum of its row
instead of every query; a floor whose name is damaged is left out of `floors()`. SQLite errors
(also one whose message quotes damaged bytes) become MapError / CorruptMap naming the file.
Not covered: the id of a version (only `integrity_check` sees a damaged one) and which intact
version of its own floor a floor's current-version record names.

Obstacle memory (table `obstacles`, each row with a sha256 `checksum` over its columns):
`remember_obstacle` merges a hit into the nearest intact stored point of the same source within
`merge_radius`: count + 1, first/last seen widened to the new stamp, and the position becomes the
count-weighted mean of all hits merged into it (repeated noisy hits settle on the middle of the
obstacle). `load()` appends the floor's remembered obstacles after the document's
own, marked with `meta["memory_id"]`; `save()` leaves out obstacles so marked, so a loaded map
saved again does not copy the memory into the version.

Schema: `PRAGMA user_version` is the schema number (the `MIGRATIONS` applied) and
`PRAGMA application_id` marks the file as a vacnav store. Opening applies the missing migrations
in order, in one transaction. A store of a newer schema is refused untouched, and so is a file
that is not a store (MapError "<path>: not a vacnav map store (...)"); a damaged store gives
CorruptMap. Floor names are 1-64 printable characters that do not look like a version id
(`check_floor_name`).

Reading: a read-only open creates no file and works where the user cannot write (a folder of
another user, a read-only mount). A store closed cleanly (no -wal or -journal beside it) is
opened `immutable` (no locks, no -wal/-shm); each public call first checks whether a writer has
changed the file since (inode, size, mtime, a -wal appearing) and reopens if so, and a call that
failed or found damage while the file changed under it is run once more. With a -wal beside the
file (a writer may be at work) the open is plain `mode=ro`, which needs the -shm file; where it
cannot be created, the store and its -wal are copied and read from memory (a snapshot). An older
schema is read through a migrated copy in memory (a snapshot too).

Sharing: several processes may open the same file (WAL: readers never wait; a writer waits up to
BUSY_TIMEOUT_S for another's lock, and opening, which sets WAL mode without waiting, retries with
a short backoff within that time). A MapStore object belongs to the thread that opened it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import random
import re
import shutil
import sqlite3
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maps import _codec
from maps.errors import CorruptMap, MapError, MapNotFound
from maps.model import MapDocument, Obstacle

log = logging.getLogger(__name__)

APPLICATION_ID = 0x766E6176  # "vnav" in the SQLite header: this file is a vacnav map store
SOURCES = ("slam", "import", "edit", "lifelong")
MEMORY_SOURCES = ("bumper", "cliff")
BUSY_TIMEOUT_S = 10.0  # wait this long for another process's write lock
PAGE_SIZE = 16384  # bytes; fewer pages per MB-sized grid than SQLite's 4096 (a new file only)

# Migration n (1-based) takes a store from schema n-1 to n. Never edit one that has shipped: add
# the next. Statements run one by one inside the opening transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: floors, immutable versions, obstacle memory
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE floors (
            name TEXT PRIMARY KEY,
            current INTEGER,
            created_at REAL NOT NULL)""",
        """CREATE TABLE versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            floor TEXT NOT NULL,
            parent INTEGER,
            created_at REAL NOT NULL,
            source TEXT NOT NULL,
            note TEXT,
            height INTEGER NOT NULL,
            width INTEGER NOT NULL,
            resolution REAL NOT NULL,
            origin_x REAL NOT NULL,
            origin_y REAL NOT NULL,
            checksum TEXT NOT NULL,
            grid BLOB NOT NULL,
            rooms BLOB,
            document BLOB NOT NULL)""",
        """CREATE TABLE obstacles (
            id INTEGER PRIMARY KEY,
            floor TEXT NOT NULL,
            x REAL NOT NULL,
            y REAL NOT NULL,
            source TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_seen REAL,
            last_seen REAL)""",
    ),
    (  # 2: the pose graph of a SLAM map, so it can be extended later; lookups by floor
        "ALTER TABLE versions ADD COLUMN pose_graph BLOB",
        "CREATE INDEX versions_by_floor ON versions (floor, id)",
        "CREATE INDEX obstacles_by_floor ON obstacles (floor, x)",
    ),
    (  # 3: a checksum per obstacle memory row (the SQL function is registered on every connection)
        "ALTER TABLE obstacles ADD COLUMN checksum TEXT",
        "UPDATE obstacles SET checksum = vacnav_obstacle_checksum("
        "id, floor, x, y, source, count, first_seen, last_seen)",
    ),
)
_OBSTACLE = ("id", "floor", "x", "y", "source", "count", "first_seen", "last_seen")
_SIDECARS = ("-wal", "-journal")  # beside the file while a writer may be active or was killed

_META = (
    "id",
    "floor",
    "parent",
    "created_at",
    "source",
    "note",
    "height",
    "width",
    "resolution",
    "origin_x",
    "origin_y",
    "checksum",
)
_PAYLOAD = ("grid", "rooms", "document", "pose_graph")
_SIZE_SQL = (
    "length(grid) + coalesce(length(rooms), 0) + length(document) + coalesce(length(pose_graph), 0)"
)
_NUMBER = re.compile(r"v?(\d+)")


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One stored version, without its payload."""

    id: int
    floor: str
    parent: int | None  # the version it was derived from (the floor's current one at save time)
    created_at: float  # s since the epoch
    source: str  # "slam", "import" or "edit"
    note: str | None
    shape: tuple[int, int]  # (H, W) cells
    resolution: float  # m per cell
    origin: tuple[float, float]  # world xy (m) of the corner of cell (0, 0)
    checksum: str  # sha256, hex, over everything stored for the version
    size: int  # bytes stored (packed payload)
    has_pose_graph: bool


@dataclass(frozen=True, slots=True)
class FloorInfo:
    """A floor: its name, current version id (None before its first map; when the stored record
    is damaged, the version `load(floor=...)` serves instead) and version count."""

    name: str
    current: int | None
    count: int


class FloorMovedOn(MapError):
    """A save that expected the floor's current version found another one there."""


class InvalidFloorName(MapError, ValueError):
    """A floor name breaks the rules (see `check_floor_name`); also a ValueError."""


class _DamagedText(str):
    """A text value whose stored bytes are not UTF-8 (damage), with U+FFFD for the bad bytes."""

    raw: bytes


def _text(data: bytes) -> str:
    """The connections' text factory: a damaged value reads as _DamagedText instead of failing
    the whole query (and with it every floor)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = _DamagedText(data.decode("utf-8", "replace"))
        text.raw = data
        return text


# Python's sqlite3 raises UnicodeDecodeError when SQLite's error message quotes damaged bytes
# (e.g. "malformed database schema (<damaged name>)").
_SQLITE_ERRORS = (sqlite3.Error, UnicodeDecodeError)


def _guarded(method):
    """Turn sqlite3 errors escaping a public method into MapError / CorruptMap naming the file.

    On a snapshot open (see `MapStore._open_snapshot`) the outermost call first reopens the
    file if a writer changed it, and reads once more if it changed during the call and the call
    failed or found damage (a writer's checkpoint may have moved pages under the read).
    """

    @functools.wraps(method)
    def wrapper(self: MapStore, *args, **kwargs):
        if self._depth:  # an inner call: the outermost one converts errors
            return method(self, *args, **kwargs)
        again = True
        while True:
            found, corrupt = len(self.problems), dict(self.corrupt)
            stamp = None
            self._depth += 1
            try:
                stamp = self._refresh()
                return_value, error = method(self, *args, **kwargs), None
            except _SQLITE_ERRORS as exc:
                return_value, error = None, self._error(exc)
                error.__cause__ = exc
            except MapError as exc:
                return_value, error = None, exc
            finally:
                self._depth -= 1
            trouble = error is not None or len(self.problems) > found
            if again and trouble and stamp is not None and self._stamp() != stamp:
                del self.problems[found:]  # found in a file that changed under the read
                self.corrupt = corrupt
                again = False
                continue
            if error is not None:
                raise error
            return return_value

    return wrapper


class _Changed(Exception):
    """A writer changed the file under a snapshot read (see MapStore._open_snapshot)."""


def _busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class MapStore:
    """Versioned floor maps and obstacle memory in one SQLite file; see the module docstring."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self.problems: list[str] = []  # what the checks found, in order, without repeats
        self.corrupt: dict[int, str] = {}  # version id -> what failed
        self._db: sqlite3.Connection | None = None
        self._snapshot: tuple | None = None  # the file's stamp when opened immutable, else None
        self._depth = 0  # nesting of guarded calls
        try:
            self._db = self._open()
            self.check(full=False)
        except _SQLITE_ERRORS as exc:
            self.close()
            raise self._error(exc) from exc
        except OSError as exc:  # e.g. a folder the user may not create, a file that vanished
            self.close()
            raise MapError(f"{self.path}: cannot open the map store ({exc})") from exc
        except BaseException:
            self.close()
            raise

    # ---- location, opening, schema ------------------------------------------------------------

    @staticmethod
    def default_path() -> Path:
        """$VACNAV_STORE, else $XDG_DATA_HOME/vacnav/vacnav.db, else ~/.local/share/vacnav/..."""
        env = os.environ.get("VACNAV_STORE")
        if env:
            return Path(env).expanduser()
        xdg = os.environ.get("XDG_DATA_HOME")
        if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative one
            return Path(xdg) / "vacnav" / "vacnav.db"
        return Path.home() / ".local" / "share" / "vacnav" / "vacnav.db"

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise MapError(f"{self.path}: is a folder, not a vacnav map store")
        if not self.readonly:
            return self._open_writable()
        if not self._exists():  # reads as an empty store
            db = self._connect(":memory:")
            self._migrate(db)
            return db
        return self._open_readable()

    def _exists(self) -> bool:
        wal = self.path.with_name(self.path.name + "-wal")
        return (self.path.exists() and self.path.stat().st_size > 0) or (
            wal.exists() and wal.stat().st_size > 0
        )

    def _open_readable(self) -> sqlite3.Connection:
        """A read-only connection to the existing file; an older schema is migrated in a copy in
        memory. Never writes to the file or its folder (see `_open_snapshot`). A snapshot read
        that a writer disturbed (the file changed meanwhile) is done again."""
        for attempt in range(5):
            try:
                return self._open_readable_once()
            except _Changed:
                log.info("%s: changed by a writer while being opened; again", self.path)
                time.sleep(0.01 * attempt)
        raise MapError(f"{self.path}: the map store kept changing while being opened")

    def _open_readable_once(self) -> sqlite3.Connection:
        stamp = self._stamp()
        db = None
        try:
            self._check_header()
            db = self._open_snapshot(stamp)
            schema = self._probe(db)
            if schema < len(MIGRATIONS):
                memory = self._connect(":memory:")
                try:
                    db.backup(memory)
                    self._migrate(memory)
                except BaseException:
                    memory.close()
                    raise
                db.close()
                db = memory
                log.info("%s: schema %d, read through a migrated copy in memory", self.path, schema)
        except (MapError, *_SQLITE_ERRORS):
            if db is not None:
                db.close()
            if self._snapshot is not None and self._stamp() != stamp:
                raise _Changed from None
            raise
        if self._snapshot is not None and self._stamp() != stamp:
            db.close()
            raise _Changed
        if schema < len(MIGRATIONS):
            self._snapshot = None  # a copy: later writes to the file are not seen
        return db

    def _open_snapshot(self, stamp: tuple | None) -> sqlite3.Connection:
        """A read-only connection that creates no file beside the store when it can.

        A store closed cleanly (no -wal or -journal beside it) opens `immutable`: SQLite then
        takes no locks and creates no -wal/-shm, so it works in a folder or on a mount the user
        cannot write. `self._snapshot` keeps the file's `stamp` (taken before): the guarded
        methods reopen when a writer changes the file. With a -wal beside it (a writer may be
        active, or one was killed) the open is plain `mode=ro`, which needs a -shm file; when
        SQLite cannot create one there (a read-only folder), the store and its -wal are copied,
        recovered and read from memory (a snapshot that is not refreshed).
        """
        uri = self.path.resolve().as_uri()
        self._snapshot = None
        if stamp is not None and not stamp[-1]:  # no sidecar when the stamp was taken
            db = self._connect(f"{uri}?mode=ro&immutable=1")
            self._snapshot = stamp
            return db
        db = self._connect(f"{uri}?mode=ro")
        try:
            db.execute("PRAGMA schema_version").fetchone()  # opens the WAL (and its -shm)
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if (exc.sqlite_errorcode or 0) & 0xFF not in (
                sqlite3.SQLITE_READONLY,
                sqlite3.SQLITE_CANTOPEN,
            ):
                raise
            log.info("%s: %s; reading a copy in memory", self.path, exc)
        return self._copy_into_memory()

    def _copy_into_memory(self) -> sqlite3.Connection:
        """The store with the commits in its -wal (or a killed writer's -journal rolled back),
        copied through a private temporary folder into memory."""
        memory = self._connect(":memory:")
        try:
            with tempfile.TemporaryDirectory(prefix="vacnav-store-") as tmp:
                copy = Path(tmp) / "store.db"
                shutil.copyfile(self.path, copy)
                for suffix in _SIDECARS:
                    try:
                        shutil.copyfile(f"{self.path}{suffix}", f"{copy}{suffix}")
                    except FileNotFoundError:
                        pass
                source = self._connect(str(copy))
                try:
                    source.backup(memory)
                finally:
                    source.close()
        except OSError as exc:
            memory.close()
            raise MapError(f"{self.path}: cannot read the map store ({exc})") from None
        except BaseException:
            memory.close()
            raise
        return memory

    def _sidecar(self) -> bool:
        """True when a -wal or -journal file is beside the store."""
        return any(os.path.exists(f"{self.path}{suffix}") for suffix in _SIDECARS)

    def _stamp(self) -> tuple | None:
        """What tells that the file changed: inode, size, mtime (ns), a sidecar beside it."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, self._sidecar())

    def _refresh(self) -> tuple | None:
        """On a snapshot open: reopen if a writer changed the file; returns the stamp read now
        (None when the connection is not a snapshot)."""
        if self._snapshot is None or self._db is None:
            return None
        stamp = self._stamp()
        if stamp != self._snapshot:
            log.info("%s: changed by a writer; reopening", self.path)
            self._db.close()
            self._db = None
            self._db = self._open_readable()
        return self._snapshot

    def _open_writable(self) -> sqlite3.Connection:
        """Open (creating or migrating) the store for writing. Several processes doing this at
        once wait for each other: setting WAL mode does not wait on the busy timeout, so a
        locked attempt is retried with a short random backoff within BUSY_TIMEOUT_S."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.002
        while True:
            try:
                return self._try_open_writable()
            except _SQLITE_ERRORS as exc:
                if not _busy(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(2 * delay, 0.1)

    def _try_open_writable(self) -> sqlite3.Connection:
        path = self.path
        if self._exists():
            self._check_header()
            probe = self._connect(f"{path.resolve().as_uri()}?mode=ro")  # sees the WAL too
            try:
                self._probe(probe)
            finally:
                probe.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect(str(path))
        try:
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # takes effect only on a new file
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                log.warning("%s: journal mode %s (WAL not available here)", path, mode)
            db.execute("PRAGMA synchronous=FULL")  # a commit survives power loss
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        uri = target.startswith("file:")
        db = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.text_factory = _text
        db.create_function("vacnav_obstacle_checksum", 8, _obstacle_checksum, deterministic=True)
        return db

    def _check_header(self) -> None:
        """Refuse a foreign file or a store of a newer schema from its 100-byte SQLite header,
        before SQLite touches it."""
        with open(self.path, "rb") as fh:
            head = fh.read(100)
        if head and not head.startswith(b"SQLite format 3\x00"):
            raise MapError(
                f"{self.path}: not a vacnav map store (not an SQLite database; "
                f"it starts with {head[:8].hex(' ')})"
            )
        if len(head) == 100:
            (user_version,) = struct.unpack_from(">I", head, 60)
            (app_id,) = struct.unpack_from(">I", head, 68)
            self._refuse(app_id, user_version, tables=None)

    def _probe(self, db: sqlite3.Connection) -> int:
        """The schema number of the store open on `db` (which also sees commits still in the
        WAL); MapError if it is not a store we can open."""
        try:  # one statement: one read transaction, while a creator may be committing
            app_id, user_version, tables = db.execute(
                "SELECT a.application_id, u.user_version, (SELECT count(*) FROM sqlite_master) "
                "FROM pragma_application_id AS a, pragma_user_version AS u"
            ).fetchone()
        except _SQLITE_ERRORS as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise MapError(f"{self.path}: not a vacnav map store ({exc})") from None
            if _busy(exc):
                raise
            raise self._error(exc) from None
        self._refuse(app_id & 0xFFFFFFFF, user_version, tables)
        return user_version

    def _refuse(self, app_id: int, user_version: int, tables: int | None) -> None:
        if app_id == APPLICATION_ID:
            if user_version > len(MIGRATIONS):
                raise MapError(
                    f"{self.path}: store schema {user_version} is newer than this vacnav supports "
                    f"({len(MIGRATIONS)}); upgrade vacnav"
                )
        elif app_id != 0 or (tables is not None and (tables or user_version)):
            what = f"application_id {app_id:#x}" if app_id else f"{tables} tables of its own"
            raise MapError(
                f"{self.path}: not a vacnav map store (an SQLite database of another program: "
                f"{what})"
            )

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Apply the missing migrations in order, in one transaction."""
        target = len(MIGRATIONS)
        if db.execute("PRAGMA user_version").fetchone()[0] == target:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # again, under the lock
            if version > target:
                raise MapError(
                    f"{self.path}: store schema {version} is newer than this vacnav supports "
                    f"({target}); upgrade vacnav"
                )
            for number in range(version + 1, target + 1):
                try:
                    for statement in MIGRATIONS[number - 1]:
                        db.execute(statement)
                except _SQLITE_ERRORS as exc:
                    if _busy(exc):
                        raise
                    raise MapError(
                        f"{self.path}: migrating the store to schema {number} failed ({exc}); "
                        f"the store is left at schema {version}"
                    ) from exc
            db.execute(f"PRAGMA user_version = {target}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if version:
            log.info("%s: store schema %d migrated to %d", self.path, version, target)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> MapStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _error(self, exc: BaseException) -> MapError:
        if isinstance(exc, UnicodeDecodeError):  # SQLite's message quotes damaged bytes
            message = bytes(exc.object).decode("utf-8", "replace")
            return CorruptMap(f"{self.path}: the map store is damaged ({message})")
        name = getattr(exc, "sqlite_errorname", "")
        if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            return CorruptMap(f"{self.path}: the map store is damaged ({exc})")
        return MapError(f"{self.path}: {exc}")

    @property
    def _con(self) -> sqlite3.Connection:
        if self._db is None:
            raise MapError(f"{self.path}: the map store is closed")
        return self._db

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any error)."""
        if self.readonly:
            raise MapError(f"{self.path}: opened read-only, cannot {what}")
        db = self._con
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # ---- floors and versions ------------------------------------------------------------------

    @_guarded
    def floors(self) -> list[FloorInfo]:
        """Every floor, in the order they were created.

        Damage: a floor whose stored name is not text is left out (reported in `problems`; its
        versions stay readable by id); a floor whose recorded current version is not one of its
        own versions shows the version `load(floor=...)` serves instead (None if none is intact).
        """
        rows = self._con.execute(
            "SELECT f.name, f.current, count(v.id) FROM floors f "
            "LEFT JOIN versions v ON v.floor = f.name GROUP BY f.name ORDER BY f.created_at, f.name"
        ).fetchall()
        floors = []
        for name, current, count in rows:
            if isinstance(name, _DamagedText):
                self._report(None, _damaged_name(name))
                continue
            if self._current_problem(name, current) is not None:
                try:
                    current = self._serve(name)["id"]
                except (MapError, *_SQLITE_ERRORS):
                    current = None
            floors.append(FloorInfo(name, current, count))
        return floors

    @_guarded
    def create_floor(self, name: str) -> FloorInfo:
        """Add a floor without a map (nothing happens if it exists)."""
        check_floor_name(name)
        with self._write("create a floor") as db:
            self._ensure_floor(db, name)
        return next(f for f in self.floors() if f.name == name)

    @staticmethod
    def _ensure_floor(db: sqlite3.Connection, name: str) -> None:
        db.execute(
            "INSERT OR IGNORE INTO floors (name, current, created_at) VALUES (?, NULL, ?)",
            (name, time.time()),
        )

    def _floor_current(self, floor: str) -> int | None:
        """The current version recorded for `floor` (unchecked); MapNotFound if no such floor."""
        row = self._con.execute("SELECT current FROM floors WHERE name = ?", (floor,)).fetchone()
        if row is None:
            names = [f.name for f in self.floors()]
            if not names:
                raise MapNotFound(
                    f"{self.path}: no maps in the store yet; save one or import one with "
                    f"`vacnav maps import FILE`"
                )
            raise MapNotFound(f"{self.path}: no floor '{floor}' (floors: {', '.join(names)})")
        return row[0]

    def _current_problem(self, floor: str, current) -> str | None:
        """None if `current` (as recorded) can be the current version of `floor`: one of its
        versions, or NULL while it has none. Else what is wrong (damage: `save` and
        `set_current` only ever record a version of the floor itself)."""
        if current is None:
            row = self._con.execute("SELECT 1 FROM versions WHERE floor = ? LIMIT 1", (floor,))
            return None if row.fetchone() is None else "none is recorded but it has versions"
        if type(current) is not int:
            return f"{current!r} is recorded, which is not a version id"
        row = self._con.execute("SELECT floor FROM versions WHERE id = ?", (current,)).fetchone()
        if row is None:
            return f"version {current} is recorded, which is missing"
        if row[0] != floor:
            return f"version {current} is recorded, which belongs to floor '{row[0]}'"
        return None

    @_guarded
    def save(
        self,
        doc: MapDocument,
        floor: str = "default",
        source: str = "slam",
        note: str | None = None,
        pose_graph: dict[str, np.ndarray] | None = None,
        make_current: bool = True,
        parent: int | None = None,
        expect_current: int | None = None,
    ) -> VersionInfo:
        """Store `doc` as a new version of `floor` (created if new) and return its info.

        The version becomes the floor's current one unless `make_current` is False (a floor
        without a current version, or whose record of it is damaged, always takes it).
        `parent` defaults to the floor's current version. `pose_graph` is a dict of plain
        numeric or string arrays (e.g. `PoseGraph.to_arrays()`), returned as stored by
        `pose_graph(id)`. With `expect_current`, the save happens only if that version is still
        the floor's current one when the write begins (checked in the same transaction), else
        FloorMovedOn; nothing is written.
        """
        if self.readonly:
            raise MapError(f"{self.path}: opened read-only, cannot save a map")
        check_floor_name(floor)
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        if note is not None and not isinstance(note, str):
            raise TypeError(f"note must be a str or None, got {type(note).__name__}")
        parent = None if parent is None else int(parent)
        payload = _codec.encode(doc, pose_graph)  # the slow part, outside the transaction
        digest = _payload_digest(payload)
        h, w = doc.grid.shape
        ox, oy = doc.grid.origin
        with self._write("save a map") as db:
            self._ensure_floor(db, floor)
            current = db.execute("SELECT current FROM floors WHERE name = ?", (floor,)).fetchone()
            current = current[0]
            if expect_current is not None and current != int(expect_current):
                now = "none" if current is None else f"v{current}"
                raise FloorMovedOn(
                    f"{self.path}: floor '{floor}' moved on: its current version is {now}, not "
                    f"v{int(expect_current)}; nothing saved"
                )
            if self._current_problem(floor, current) is not None:
                current = None  # a damaged record: the new version takes its place
            if parent is None:
                parent = current
            elif db.execute("SELECT 1 FROM versions WHERE id = ?", (parent,)).fetchone() is None:
                raise MapNotFound(f"{self.path}: parent version {parent} does not exist")
            meta = {
                "floor": floor,
                "parent": None if parent is None else int(parent),
                "created_at": time.time(),
                "source": source,
                "note": note,
                "height": int(h),
                "width": int(w),
                "resolution": float(doc.grid.resolution),
                "origin_x": float(ox),
                "origin_y": float(oy),
            }
            meta["checksum"] = _finish_digest(digest.copy(), meta)
            row = {**meta, **payload}
            names = list(row)
            cursor = db.execute(
                f"INSERT INTO versions ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [row[n] for n in names],
            )
            vid = cursor.lastrowid
            if make_current or current is None:
                db.execute("UPDATE floors SET current = ? WHERE name = ?", (vid, floor))
        size = sum(len(v) for v in payload.values() if v is not None)
        return VersionInfo(
            vid,
            floor,
            meta["parent"],
            meta["created_at"],
            source,
            note,
            (int(h), int(w)),
            meta["resolution"],
            (meta["origin_x"], meta["origin_y"]),
            meta["checksum"],
            size,
            payload["pose_graph"] is not None,
        )

    @_guarded
    def info(self, version_id: int) -> VersionInfo:
        """What is known about a version without reading its payload."""
        row = self._con.execute(
            f"SELECT {', '.join(_META)}, {_SIZE_SQL}, pose_graph IS NOT NULL "
            f"FROM versions WHERE id = ?",
            (int(version_id),),
        ).fetchone()
        if row is None:
            raise MapNotFound(f"{self.path}: no map version {version_id}")
        return _info(row)

    @_guarded
    def versions(self, floor: str) -> list[VersionInfo]:
        """Every version of a floor, newest first."""
        if self._con.execute("SELECT 1 FROM floors WHERE name = ?", (floor,)).fetchone() is None:
            self._floor_current(floor)  # raises MapNotFound naming the floors there are
        rows = self._con.execute(
            f"SELECT {', '.join(_META)}, {_SIZE_SQL}, pose_graph IS NOT NULL "
            f"FROM versions WHERE floor = ? ORDER BY id DESC",
            (floor,),
        ).fetchall()
        return [_info(row) for row in rows]

    @_guarded
    def set_current(self, floor: str, version_id: int) -> None:
        """Make a version of `floor` its current one (it must be intact)."""
        version_id = int(version_id)
        row = self._con.execute("SELECT floor FROM versions WHERE id = ?", (version_id,)).fetchone()
        if row is None:
            raise MapNotFound(f"{self.path}: no map version {version_id}")
        if row[0] != floor:
            raise MapNotFound(
                f"{self.path}: version {version_id} belongs to floor '{row[0]}', not '{floor}'"
            )
        problem = self.verify(version_id)
        if problem is not None:
            raise CorruptMap(f"{self.path}: {problem}; not made current")
        with self._write("change the current version") as db:
            db.execute("UPDATE floors SET current = ? WHERE name = ?", (version_id, floor))

    @_guarded
    def prune(self, floor: str, keep: int) -> list[int]:
        """Delete the versions of `floor` older than its `keep` newest; returns the ids deleted.

        Never deleted, whatever their age: the current version, its parent, and the version
        `load(floor=...)` serves (the newest intact one when the current one is corrupt). One
        transaction: a writer killed during it leaves every version or the pruned store. A
        floor whose current-version record is damaged is not pruned (MapError). The parent of
        a version kept may name a version deleted here. Freed pages are reused by later saves
        (the file does not shrink).
        """
        check_floor_name(floor)
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an int >= 1, got {keep!r}")
        with self._write("prune versions") as db:
            current = self._floor_current(floor)  # MapNotFound for an unknown floor
            why = self._current_problem(floor, current)
            if why is not None:
                raise MapError(
                    f"{self.path}: the current version of floor '{floor}' is damaged ({why}); "
                    "not pruned"
                )
            ids = [r[0] for r in db.execute("SELECT id FROM versions WHERE floor = ?", (floor,))]
            ids.sort(reverse=True)
            if len(ids) <= keep:
                return []
            protected = set(ids[:keep])
            if current is not None:
                protected.add(current)
                parent = db.execute("SELECT parent FROM versions WHERE id = ?", (current,))
                protected.add(parent.fetchone()[0])
                protected.add(self._serve(floor)["id"])
            doomed = [vid for vid in ids if vid not in protected]
            db.executemany("DELETE FROM versions WHERE id = ?", [(vid,) for vid in doomed])
        for vid in doomed:
            self.corrupt.pop(vid, None)
        if doomed:
            log.info("%s: pruned %d old versions of floor '%s'", self.path, len(doomed), floor)
        return sorted(doomed)

    @_guarded
    def resolve(self, ref: str | int) -> int:
        """A version id from "12" / "v12", or the version a floor name serves; MapNotFound else."""
        text = str(ref).strip()
        match = _NUMBER.fullmatch(text)
        if match:
            vid = int(match.group(1))
            if self._con.execute("SELECT 1 FROM versions WHERE id = ?", (vid,)).fetchone() is None:
                raise MapNotFound(f"{self.path}: no map version {vid} (see `vacnav maps list`)")
            return vid
        exists = self._con.execute("SELECT 1 FROM floors WHERE name = ?", (text,)).fetchone()
        if exists is None:
            names = ", ".join(f.name for f in self.floors()) or "none yet"
            raise MapNotFound(
                f"{self.path}: '{text}' is neither a version id nor a floor (floors: {names})"
            )
        return self._serve(text)["id"]

    # ---- loading ------------------------------------------------------------------------------

    @_guarded
    def load(
        self, version_id: int | None = None, floor: str | None = None, *, memory: bool = True
    ) -> MapDocument:
        """A stored map: version `version_id`, else the current version of `floor` ("default").

        With `memory`, the floor's remembered obstacles are appended to `doc.obstacles`. A corrupt
        current version is skipped for the newest intact earlier one (reported in `problems`);
        a corrupt version asked for by id raises CorruptMap.
        """
        if version_id is None:
            row = self._serve(floor or "default")
        else:
            row = self._row(int(version_id))
            if floor is not None and row["floor"] != floor:
                raise MapNotFound(
                    f"{self.path}: version {row['id']} belongs to floor '{row['floor']}', "
                    f"not '{floor}'"
                )
            problem = self._check_row(row)
            if problem is not None:
                raise CorruptMap(f"{self.path}: {problem}")
        try:
            doc = _codec.decode(row)
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            raise CorruptMap(
                f"{self.path}: version {row['id']} of floor '{row['floor']}' cannot be decoded "
                f"({exc})"
            ) from None
        if memory:
            doc.obstacles.extend(self.obstacles(row["floor"]))
        return doc

    @_guarded
    def pose_graph(self, version_id: int) -> dict[str, np.ndarray] | None:
        """The pose graph saved with a version (arrays as given to `save`), or None."""
        row = self._row(int(version_id))
        problem = self._check_row(row)
        if problem is not None:
            raise CorruptMap(f"{self.path}: {problem}")
        if row["pose_graph"] is None:
            return None
        try:
            return _codec.unbundle(_codec.unpack(row["pose_graph"], "pose graph"))
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            raise CorruptMap(
                f"{self.path}: the pose graph of version {row['id']} cannot be decoded ({exc})"
            ) from None

    def _row(self, vid: int) -> dict:
        names = _META + _PAYLOAD
        row = self._con.execute(
            f"SELECT {', '.join(names)} FROM versions WHERE id = ?", (vid,)
        ).fetchone()
        if row is None:
            raise MapNotFound(f"{self.path}: no map version {vid}")
        return dict(zip(names, row, strict=True))

    def _serve(self, floor: str) -> dict:
        """The row `load(floor=...)` serves: the current version, else (corrupt or unreadable)
        the newest intact one before it; when the floor's current-version record is itself
        damaged, the newest intact version of the floor."""
        current = self._floor_current(floor)
        why = self._current_problem(floor, current)
        if why is None and current is None:
            raise MapNotFound(f"{self.path}: floor '{floor}' has no map yet")
        query = "SELECT id FROM versions WHERE floor = ? AND id <= ? ORDER BY id DESC"
        args = (floor, current)
        if why is not None:
            query, args = "SELECT id FROM versions WHERE floor = ? ORDER BY id DESC", (floor,)
        for (vid,) in self._con.execute(query, args).fetchall():
            try:
                row = self._row(vid)
            except _SQLITE_ERRORS as exc:
                self._report(vid, f"version {vid} of floor '{floor}' is unreadable ({exc})")
                continue
            if self._check_row(row) is not None:
                continue
            if why is not None:
                self._report(
                    None,
                    f"the current version of floor '{floor}' is damaged ({why}); serving "
                    f"version {vid}, the newest intact version of that floor",
                )
            elif vid != current:
                self._report(
                    current,
                    f"version {current} of floor '{floor}' is corrupt "
                    f"({self.corrupt.get(current, 'unreadable')}); serving version {vid} "
                    f"of that floor instead",
                )
            return row
        raise CorruptMap(
            f"{self.path}: floor '{floor}' has no intact version (current version: "
            f"{why or self.corrupt.get(current, 'unreadable')})"
        )

    # ---- integrity ----------------------------------------------------------------------------

    def _check_row(self, row: dict) -> str | None:
        """None if the row's checksum matches, else the problem (also reported)."""
        actual = _finish_digest(_payload_digest(row), row)
        if actual == row["checksum"]:
            return None
        recorded = row["checksum"] if isinstance(row["checksum"], str) else repr(row["checksum"])
        what = f"checksum mismatch (recorded {recorded[:16]}, computed {actual[:16]})"
        problem = f"version {row['id']} of floor '{row['floor']}' is corrupt: {what}"
        self.corrupt[row["id"]] = what
        self._report(row["id"], problem)
        return problem

    def _report(self, vid: int | None, problem: str) -> None:
        if vid is not None:
            self.corrupt.setdefault(vid, problem)
        if problem not in self.problems:
            self.problems.append(problem)
            log.warning("%s: %s", self.path, problem)

    @_guarded
    def verify(self, version_id: int) -> str | None:
        """None if the version is intact, else what is wrong with it (also in `problems`)."""
        try:
            row = self._row(int(version_id))
        except _SQLITE_ERRORS as exc:
            problem = f"version {version_id} is unreadable ({exc})"
            self._report(int(version_id), problem)
            return problem
        return self._check_row(row)

    @_guarded
    def check(self, full: bool = False) -> list[str]:
        """Check the store and return the problems found (also added to `problems`, logged).

        Always: SQLite's quick_check (integrity_check with `full`), every floor's name and
        current-version record, the checksum of each floor's current version (of every version
        with `full`) and of every obstacle memory row.
        """
        found: list[str] = []

        def note(vid: int | None, problem: str) -> None:
            self._report(vid, problem)
            found.append(problem)

        pragma = "integrity_check" if full else "quick_check"
        try:
            lines = [r[0] for r in self._con.execute(f"PRAGMA {pragma}")]
        except _SQLITE_ERRORS as exc:
            lines = [str(self._error(exc)).removeprefix(f"{self.path}: ")]
        if lines != ["ok"]:
            for line in lines[:20]:
                note(None, f"SQLite {pragma}: {line}")
        ids = []
        for name, current in self._con.execute("SELECT name, current FROM floors").fetchall():
            if isinstance(name, _DamagedText):
                note(None, _damaged_name(name))
                continue
            why = self._current_problem(name, current)
            if why is not None:
                note(None, f"the current version of floor '{name}' is damaged ({why})")
            elif current is not None:
                ids.append((current, name))
        if full:
            ids = [(r[0], r[1]) for r in self._con.execute("SELECT id, floor FROM versions")]
        for vid, floor in ids:
            try:
                row = self._row(vid)
            except _SQLITE_ERRORS as exc:
                note(vid, f"version {vid} of floor '{floor}' is unreadable ({exc})")
                continue
            problem = self._check_row(row)
            if problem is not None:
                found.append(problem)
        rows = self._con.execute(f"SELECT {', '.join(_OBSTACLE)}, checksum FROM obstacles")
        for row in rows.fetchall():
            problem = self._check_obstacle(row)
            if problem is not None:
                found.append(problem)
        return found

    def _check_obstacle(self, row: tuple) -> str | None:
        """None if an obstacle memory row (the _OBSTACLE columns, checksum) is intact, else
        the problem (also reported)."""
        if _obstacle_checksum(*row[:-1]) == row[-1]:
            return None
        problem = (
            f"remembered obstacle {row[0]} of floor '{row[1]}' is corrupt (checksum mismatch); "
            f"left out"
        )
        self._report(None, problem)
        return problem

    # ---- obstacle memory ----------------------------------------------------------------------

    @_guarded
    def remember_obstacle(
        self,
        floor: str,
        x: float,
        y: float,
        source: str = "bumper",
        stamp: float | None = None,
        merge_radius: float = 0.10,
    ) -> Obstacle:
        """Record a bumper or cliff hit at world (x, y) m on `floor`; returns the stored point.

        A hit within `merge_radius` m of a stored point of the same source merges into the
        nearest one (count + 1, count-weighted mean position, seen-times widened); otherwise it
        is a new point. `stamp` is seconds since the epoch (now by default). A corrupt stored
        point is never merged into (its checksum would launder the damage).
        """
        check_floor_name(floor)
        if source not in MEMORY_SOURCES:
            raise ValueError(f"source must be one of {', '.join(MEMORY_SOURCES)}, got {source!r}")
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"obstacle position must be finite, got ({x}, {y})")
        if not merge_radius >= 0:
            raise ValueError(f"merge_radius must be >= 0 m, got {merge_radius}")
        stamp = time.time() if stamp is None else float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite (s since the epoch), got {stamp}")
        r = float(merge_radius)
        with self._write("remember an obstacle") as db:
            self._ensure_floor(db, floor)
            rows = db.execute(
                f"SELECT {', '.join(_OBSTACLE)}, checksum FROM obstacles "
                f"WHERE floor = ? AND source = ? AND x BETWEEN ? AND ? AND y BETWEEN ? AND ?",
                (floor, source, x - r, x + r, y - r, y + r),
            ).fetchall()
            near = [
                row[:-1]
                for row in rows
                if math.hypot(row[2] - x, row[3] - y) <= r and self._check_obstacle(row) is None
            ]
            if near:
                oid, _, ox, oy, _, count, first, last = min(
                    near, key=lambda n: math.hypot(n[2] - x, n[3] - y)
                )
                count += 1
                ox += (x - ox) / count
                oy += (y - oy) / count
                first = stamp if first is None else min(first, stamp)
                last = stamp if last is None else max(last, stamp)
            else:
                ox, oy, count, first, last = x, y, 1, stamp, stamp
                oid = db.execute(
                    "INSERT INTO obstacles (floor, x, y, source, count, checksum) "
                    "VALUES (?, 0, 0, ?, 0, '')",
                    (floor, source),
                ).lastrowid
            values = (oid, floor, ox, oy, source, count, first, last)
            db.execute(
                "UPDATE obstacles SET x = ?, y = ?, count = ?, first_seen = ?, last_seen = ?, "
                "checksum = ? WHERE id = ?",
                (ox, oy, count, first, last, _obstacle_checksum(*values), oid),
            )
        return Obstacle(ox, oy, "", source, count, first, last, {"memory_id": oid})

    @_guarded
    def obstacles(self, floor: str) -> list[Obstacle]:
        """The remembered obstacles of a floor, oldest first ([] for an unknown floor). A row
        whose checksum does not match is left out and reported in `problems`."""
        rows = self._con.execute(
            f"SELECT {', '.join(_OBSTACLE)}, checksum FROM obstacles WHERE floor = ? ORDER BY id",
            (floor,),
        ).fetchall()
        return [
            Obstacle(x, y, "", source, count, first, last, {"memory_id": oid})
            for oid, _, x, y, source, count, first, last in (
                row[:-1] for row in rows if self._check_obstacle(row) is None
            )
        ]

    @_guarded
    def forget_obstacles(self, floor: str) -> int:
        """Drop the obstacle memory of a floor; returns how many points were dropped."""
        with self._write("forget obstacles") as db:
            return db.execute("DELETE FROM obstacles WHERE floor = ?", (floor,)).rowcount


def check_floor_name(name: str) -> str:
    """`name` if it is a valid floor name: 1-64 printable characters without outer spaces that
    do not look like a version id ("12", "v12"); else InvalidFloorName (a MapError) naming it
    and the rule it breaks."""
    if not isinstance(name, str) or not name or name != name.strip() or len(name) > 64:
        rule = "a floor name is 1-64 characters without outer spaces"
    elif not name.isprintable():
        rule = "a floor name must be printable"
    elif _NUMBER.fullmatch(name):
        rule = "a floor name cannot look like a version id; add a letter"
    else:
        return name
    raise InvalidFloorName(f"invalid floor name {name!r}: {rule}")


def _damaged_name(name: _DamagedText) -> str:
    return (
        f"the name of floor '{name}' is damaged (stored bytes {name.raw!r} are not text); "
        f"that floor is left out"
    )


def _info(row: tuple) -> VersionInfo:
    vid, floor, parent, created, source, note, h, w, res, ox, oy, checksum, size, has_pg = row
    return VersionInfo(
        vid,
        floor,
        parent,
        created,
        source,
        note,
        (h, w),
        res,
        (ox, oy),
        checksum,
        size,
        bool(has_pg),
    )


# ---- checksum -----------------------------------------------------------------------------------


def _feed(h, value) -> None:
    """Hash one column with its type and length, so that no two rows hash alike by accident."""
    if value is None:
        h.update(b"N")
    elif isinstance(value, int):
        h.update(b"I" + struct.pack("<q", value))
    elif isinstance(value, float):
        h.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(b"S" + struct.pack("<Q", len(data)))
        h.update(data)
    else:
        data = memoryview(value)
        h.update(b"B" + struct.pack("<Q", data.nbytes))
        h.update(data)


def _payload_digest(row: dict):
    """sha256 state after the payload columns (the pose graph only when present, so rows saved
    before schema 2 hash as they did)."""
    h = hashlib.sha256(b"vacnav map version\x00")
    for name in ("grid", "rooms", "document"):
        _feed(h, row[name])
    if row.get("pose_graph") is not None:
        h.update(b"G")
        _feed(h, row["pose_graph"])
    return h


def _finish_digest(h, row: dict) -> str:
    for name in _META[1:-1]:  # everything but the id (assigned on insert) and the checksum
        _feed(h, row[name])
    return h.hexdigest()


def _obstacle_checksum(oid, floor, x, y, source, count, first_seen, last_seen) -> str:
    """sha256 (hex) over an obstacle memory row (also the SQL function of migration 3)."""
    h = hashlib.sha256(b"vacnav obstacle\x00")
    for value in (oid, floor, x, y, source, count, first_seen, last_seen):
        _feed(h, value)
    return h.hexdigest()
