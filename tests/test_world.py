"""Simulator worlds: PNG decoding, bad input, the embedded default home, the real plans."""

from __future__ import annotations

import csv
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware_bridge import WorldError
from firmware_bridge import worlds as home
from firmware_bridge.world import ROBOT_RADIUS, World, robot_room


def write_la_png(path: Path, grey: np.ndarray, alpha: np.ndarray) -> None:
    """A grey+alpha (colour type 4) PNG, which OpenCV cannot write but real plans use."""
    h, w = grey.shape
    raw = np.dstack((grey, alpha)).astype(np.uint8).reshape(h, 2 * w)
    rows = b"".join(b"\x00" + row.tobytes() for row in raw)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", w, h, 8, 4, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(rows))
    path.write_bytes(png + chunk(b"IEND", b""))


def plan_image(h: int = 30, w: int = 40) -> np.ndarray:
    """A grey plan, image row 0 at the top: a 205 border, a wall ring, white floor inside."""
    img = np.full((h, w), 205, np.uint8)
    img[2:-2, 2:-2] = 0
    img[3:-3, 3:-3] = 255
    return img


# ---------------------------------------------------------------- PNG decoding


def test_png_classes_are_decoded_exactly_and_rows_flipped(tmp_path):
    img = plan_image()
    img[5, 10] = 0  # a wall pixel near the top of the image
    img[6, 10] = 254  # some plans use 254 for free
    img[7, 10] = 180  # an anti-aliased grey: occupied
    img[8, 10] = 203  # grey close to 205: outside / unknown
    path = tmp_path / "plan.png"
    assert cv2.imwrite(str(path), img)
    world = World.from_png(path)

    assert world.name == "plan"
    assert world.shape == img.shape
    assert world.origin == (0.0, 0.0) and world.resolution == 0.05
    flipped = img[::-1]
    np.testing.assert_array_equal(world.free, flipped >= 250)
    np.testing.assert_array_equal(world.outside, np.abs(flipped.astype(int) - 205) <= 3)
    np.testing.assert_array_equal(
        world.walls, (flipped < 250) & (np.abs(flipped.astype(int) - 205) > 3)
    )
    h = img.shape[0]
    assert world.walls[h - 1 - 5, 10]  # image row 5 from the top is raster row h-1-5
    assert world.free[h - 1 - 6, 10]
    assert world.walls[h - 1 - 7, 10]
    assert world.outside[h - 1 - 8, 10]
    assert not world.invisible.any()
    assert world.area_m2 == pytest.approx(np.count_nonzero(img >= 250) * 0.0025)


@pytest.mark.parametrize("mode", ["rgb", "rgba", "la", "grey16"])
def test_png_modes_are_converted_to_grey(tmp_path, mode):
    img = plan_image()
    path = tmp_path / f"plan_{mode}.png"
    if mode == "rgb":
        cv2.imwrite(str(path), np.dstack([img] * 3))
    elif mode == "rgba":
        cv2.imwrite(str(path), np.dstack([img] * 3 + [np.full_like(img, 255)]))
    elif mode == "la":
        write_la_png(path, img, np.full_like(img, 255))
    else:
        cv2.imwrite(str(path), img.astype(np.uint16) * 257)
    world = World.from_png(path)
    np.testing.assert_array_equal(world.free, img[::-1] >= 250)
    np.testing.assert_array_equal(world.walls, img[::-1] == 0)
    np.testing.assert_array_equal(world.outside, img[::-1] == 205)


def test_transparent_pixels_are_outside(tmp_path):
    img = plan_image()
    alpha = np.full_like(img, 255)
    alpha[:, :1] = 0  # the leftmost column is transparent (and grey 205 anyway)
    alpha[10:12, 10:12] = 0  # a transparent hole in the floor
    path = tmp_path / "holes.png"
    write_la_png(path, img, alpha)
    world = World.from_png(path)
    h = img.shape[0]
    assert world.outside[h - 1 - 10, 10] and not world.free[h - 1 - 10, 10]
    assert world.free[h - 1 - 15, 15]


def test_invisible_overlay(tmp_path):
    img = plan_image()
    overlay = np.full_like(img, 255)
    overlay[10:12, 15:20] = 0  # on the floor: lidar-invisible obstacle
    overlay[2, 5] = 0  # on a wall: stays a wall
    overlay[0, 0] = 0  # outside: stays outside
    overlay[20, 20] = 205  # grey 205 is "unknown", not an obstacle
    cv2.imwrite(str(tmp_path / "p.png"), img)
    cv2.imwrite(str(tmp_path / "p_inv.png"), overlay)
    world = World.from_png(tmp_path / "p.png", invisible=str(tmp_path / "p_inv.png"))
    expected = np.zeros_like(img, bool)
    expected[10:12, 15:20] = True
    np.testing.assert_array_equal(world.invisible, expected[::-1])
    assert world.walls[img.shape[0] - 1 - 2, 5]
    assert world.outside[img.shape[0] - 1, 0]
    assert not (world.free & world.invisible).any()
    assert world.area_m2 == pytest.approx((np.count_nonzero(img == 255) - 10) * 0.0025)


def test_start_is_roomiest_spot_of_the_largest_region(tmp_path):
    img = np.zeros((60, 100), np.uint8)
    img[5:55, 5:55] = 255  # 2.5 m x 2.5 m room
    img[10:30, 65:95] = 255  # a smaller separate room: 1.0 m x 1.5 m
    cv2.imwrite(str(tmp_path / "two.png"), img)
    world = World.from_png(tmp_path / "two.png")
    start = world.start
    i, j = world.cell_of(start.x, start.y)
    assert world.free[i, j]
    assert start.theta == 0.0
    # in the big room, near its centre (x 0.25..2.75, y 0.25..2.75), with ample clearance
    assert start.x == pytest.approx(1.5, abs=0.1) and start.y == pytest.approx(1.5, abs=0.1)
    assert robot_room(world.free, 0.05, ROBOT_RADIUS)[i, j] > 1.0
    # deterministic
    assert World.from_png(tmp_path / "two.png").start == start


# ---------------------------------------------------------------- bad input


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, Path | None, str]]:
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), plan_image())
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    noise = tmp_path / "noise.png"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((20, 20), np.uint8))
    unknown = tmp_path / "unknown.png"
    cv2.imwrite(str(unknown), np.full((20, 20), 205, np.uint8))
    tiny = tmp_path / "tiny.png"
    small = np.zeros((20, 20), np.uint8)
    small[5:10, 5:10] = 255  # 0.25 m square: the 0.34 m robot does not fit
    cv2.imwrite(str(tiny), small)
    other = tmp_path / "other_size.png"
    cv2.imwrite(str(other), np.full((31, 40), 255, np.uint8))
    return {
        "missing file": (tmp_path / "nope.png", None, "no such file"),
        "a directory": (tmp_path, None, "not a file"),
        "text": (text, None, "not a readable image"),
        "random bytes": (noise, None, "not a readable image"),
        "empty file": (empty, None, "not a readable image"),
        "all black": (black, None, "no free floor"),
        "all unknown": (unknown, None, "no free floor"),
        "robot does not fit": (tiny, None, "wide enough"),
        "invisible of another size": (good, other, "same size"),
        "invisible missing": (good, tmp_path / "gone.png", "no such file"),
        "invisible not an image": (good, text, "not a readable image"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "a directory",
        "text",
        "random bytes",
        "empty file",
        "all black",
        "all unknown",
        "robot does not fit",
        "invisible of another size",
        "invisible missing",
        "invisible not an image",
    ],
)
def test_bad_input_raises_world_error_naming_the_file(tmp_path, case):
    plan, invisible, reason = _bad_inputs(tmp_path)[case]
    with pytest.raises(WorldError) as info:
        World.from_png(plan, invisible=invisible)
    message = str(info.value)
    culprit = invisible if invisible is not None and case.startswith("invisible") else plan
    assert str(culprit) in message
    assert reason in message


# ---------------------------------------------------------------- the default home


@pytest.fixture(scope="module")
def default_home() -> World:
    return World.default()


def test_default_home_facts(default_home):
    w = default_home
    assert w.name == "default_home"
    assert 70.0 <= w.area_m2 <= 100.0
    assert w.resolution == 0.05
    # the classes are disjoint and cover the raster together with the floor
    total = w.walls.astype(int) + w.invisible + w.outside + w.free
    assert (total == 1).all()
    # fresh arrays per call: callers may edit their copy
    other = World.default()
    other.walls[0, 0] = not other.walls[0, 0]
    assert World.default().walls[0, 0] == w.walls[0, 0]
    assert 4 <= len(home.ROOMS) - 1 <= 5  # rooms besides the hall
    for name, door in home.DOORS.items():
        width = max(door.x1 - door.x0, door.y1 - door.y0)
        assert 0.8 <= width <= 0.9 + 1e-9, name


def _reachable_centres(world: World) -> np.ndarray:
    fits = robot_room(world.free, world.resolution, ROBOT_RADIUS) >= 0
    _, labels = cv2.connectedComponents(fits.astype(np.uint8), connectivity=8)
    i, j = world.cell_of(world.start.x, world.start.y)
    assert labels[i, j] > 0, "the start pose has no room for the robot"
    return labels == labels[i, j]


def test_default_home_every_room_is_reachable(default_home):
    w = default_home
    reach = _reachable_centres(w)
    fits = robot_room(w.free, w.resolution, ROBOT_RADIUS) >= 0
    for name, room in home.ROOMS.items():
        rows, cols = room.cells(w.origin, w.resolution)
        room_fits = fits[rows, cols].sum()
        reached = (reach & fits)[rows, cols].sum()
        assert room_fits > 0, name
        # every room is entered; a few pockets (behind the glass screen's end) may be cut off
        assert reached >= 0.9 * room_fits, f"{name}: {reached} of {room_fits} places reachable"


def test_default_home_invisible_obstacles_and_table_legs(default_home):
    w = default_home
    n_inv, _ = cv2.connectedComponents(w.invisible.astype(np.uint8), connectivity=8)
    assert n_inv - 1 >= 2
    # invisible obstacles stand in reach of the robot (the bumper can find them)
    near = cv2.dilate(_reachable_centres(w).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    _, labels = cv2.connectedComponents(w.invisible.astype(np.uint8), connectivity=8)
    for k in range(1, n_inv):
        assert (near & (labels == k)).any()
    # table and chair legs: single wall cells with no wall among their 8 neighbours
    walls = w.walls.astype(np.uint8)
    neighbours = cv2.filter2D(
        walls, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT
    )
    isolated = (walls == 1) & (neighbours == 1)
    assert isolated.sum() == 4 * len(home.LEGGED)


def test_default_home_start_pose(default_home):
    w = default_home
    i, j = w.cell_of(w.start.x, w.start.y)
    assert w.free[i, j]
    assert robot_room(w.free, w.resolution, ROBOT_RADIUS)[i, j] >= 0
    assert w.start.theta == pytest.approx(np.pi / 2)


def test_world_rejects_mismatched_rasters():
    a = np.zeros((4, 5), bool)
    with pytest.raises(ValueError, match="same-size"):
        World("x", a, np.zeros((5, 4), bool), a)
    with pytest.raises(ValueError, match="resolution"):
        World("x", a, a, a, resolution=0.0)


# ---------------------------------------------------------------- real plans (../shared/data)


def _home_rows(shared: Path) -> list[dict[str, str]]:
    with open(shared / "homes" / "files.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.shared_data
def test_real_homes_load_with_their_area(shared_data):
    rows = _home_rows(shared_data)
    assert len(rows) == 8
    for row in rows:
        name = row["name"]
        plan = World.from_png(shared_data / "homes" / f"{name}.png")
        assert plan.area_m2 == pytest.approx(float(row["free_m2"]), rel=0.03), name
        assert plan.shape == (int(row["height"]), int(row["width"]))
        furnished = World.from_png(
            shared_data / "homes" / f"{name}_furnished.png",
            invisible=shared_data / "homes" / f"{name}_invisible.png",
        )
        assert furnished.invisible.any(), name
        assert furnished.area_m2 < plan.area_m2
        # the furniture stands on the plan's floor; walls and outside are the plan's
        assert not (furnished.outside ^ plan.outside).any(), name
        i, j = furnished.cell_of(furnished.start.x, furnished.start.y)
        assert furnished.free[i, j]
        assert robot_room(furnished.free, 0.05, ROBOT_RADIUS)[i, j] >= 0


FLOORPLAN_AREAS = {  # m2 of pixels >= 250, from floorplans/SOURCES.md
    "lab_ipa": 305,
    "lab_c_scan": 357,
    "Freiburg52_scan": 356,
    "lab_intel": 772,
    "office_d": 882,
    "office_a": 1530,
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(FLOORPLAN_AREAS))
def test_real_floorplans_load(shared_data, name):
    folder = shared_data / "floorplans"
    plan = World.from_png(folder / f"{name}.png")
    assert plan.area_m2 == pytest.approx(FLOORPLAN_AREAS[name], rel=0.03)
    grey = cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(plan.free, grey[::-1] >= 250)
    for variant in ("_furnitures", "_furnitures_trashbins"):
        furnished = World.from_png(folder / f"{name}{variant}.png")
        assert furnished.shape == plan.shape
        assert furnished.area_m2 < plan.area_m2
        i, j = furnished.cell_of(furnished.start.x, furnished.start.y)
        assert furnished.free[i, j]
