import cv2
import numpy as np
import pytest

from maps import render
from maps.geometry import Pose
from maps.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    MapDocument,
    MapPath,
    Obstacle,
    Restrictions,
    Room,
)

RES = 0.05
ORIGIN = (-1.0, -2.0)


def full_document() -> MapDocument:
    """A 4 m x 3 m flat of two rooms with every kind of element on it.

    Cells: (60, 80) at 5 cm from (-1, -2); walls around and between the rooms at column 40
    (x = 1.0 m) with a door; room 1 "Kitchen" left, room 2 (no name) right.
    """
    states = np.full((60, 80), UNKNOWN, np.int8)
    states[5:55, 5:75] = FREE
    states[5, 5:75] = states[54, 5:75] = OCCUPIED
    states[5:55, 5] = states[5:55, 74] = states[5:55, 40] = OCCUPIED
    states[30:33, 40] = FREE  # door
    rooms = np.zeros(states.shape, np.uint8)
    rooms[6:54, 6:40] = 1
    rooms[6:54, 41:74] = 2
    square = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]])
    return MapDocument.from_cells(
        states,
        RES,
        ORIGIN,
        rooms=rooms,
        room_info={1: Room(1, "Kitchen"), 2: Room(2)},
        restrictions=Restrictions(
            no_go=[square + (0.2, -1.4)],
            virtual_walls=[np.array([[1.2, -1.5], [1.2, 0.2]])],
            no_mop=[square * 0.8 + (-0.6, 0.0)],
        ),
        obstacles=[
            Obstacle(1.6, -1.3, source="bumper"),
            Obstacle(2.2, 0.3, label="sock", source="vendor"),
        ],
        dock=Pose(-0.6, -1.5, np.pi / 2),
        robot=Pose(0.3, 0.3, 0.0),
        paths=[
            MapPath("path", np.array([[-0.6, -1.5], [-0.6, -0.4], [0.8, -0.4]])),
            MapPath("predicted_path", np.array([[0.8, -0.4], [2.4, -0.4]])),
        ],
        go_to_target=(2.6, -1.0),
        active_zones=[np.array([[1.5, -1.7], [2.5, -1.7], [2.5, -0.9], [1.5, -0.9]])],
    )


def pixel(pic: render.Picture, x: float, y: float) -> np.ndarray:
    """BGR of the image pixel under world point (x, y)."""
    ((px, py),) = pic.to_pixels(np.array([[x, y]]))
    return pic.image[int(py), int(px)].astype(int)


def window(pic: render.Picture, x: float, y: float, r: int = 3) -> np.ndarray:
    """(K, 3) BGR pixels within r px of the world point."""
    ((px, py),) = pic.to_pixels(np.array([[x, y]]))
    i, j = int(py), int(px)
    return pic.image[i - r : i + r + 1, j - r : j + r + 1].reshape(-1, 3).astype(int)


def near(colours: np.ndarray, colour, tol: int = 40) -> bool:
    return bool((np.abs(colours - np.array(colour)).sum(axis=1) <= tol).any())


def test_every_element_has_its_colour_where_it_belongs(tmp_path):
    doc = full_document()
    pic = render.draw_document(doc)
    assert pic.scale == 8  # 80 cells wide: enlarged so the picture is readable
    # grid layers
    np.testing.assert_array_equal(pixel(pic, -0.9, -1.9), render.UNKNOWN_GREY)
    np.testing.assert_array_equal(pixel(pic, 1.0 + RES / 2, -1.0), render.WALL_DARK)
    np.testing.assert_array_equal(pixel(pic, 1.6, 0.5), render.room_colour(2))
    np.testing.assert_array_equal(pixel(pic, 0.7, 0.6), render.room_colour(1))
    assert render.room_colour(1) != render.room_colour(2)
    # zones: no-go reddish, no-mop bluish, with the room colour showing through
    b, g, r = pixel(pic, 0.45, -1.15)
    assert r > g + 60 and r > b + 60
    b, g, r = pixel(pic, -0.4, 0.2)
    assert b > r + 60 and b > g + 20
    # virtual wall: thick red; active zone: green outline, inside left alone
    b, g, r = pixel(pic, 1.2, -0.6)
    assert r > 150 and g < 60 and b < 60
    assert near(window(pic, 2.0, -1.7, 2), render.ACTIVE_ZONE)
    np.testing.assert_array_equal(pixel(pic, 2.0, -1.2), render.room_colour(2))
    # paths: thin lines of their colours
    assert near(window(pic, -0.6, -1.0, 2), render.PATH, 90)
    assert near(window(pic, 2.0, -0.4, 2), render.PREDICTED_PATH, 60)
    # obstacles: bumper orange, vendor purple, distinct
    assert near(window(pic, 1.6, -1.3), render.OBSTACLE_BUMPER)
    assert not near(window(pic, 1.6, -1.3), render.OBSTACLE_VENDOR)
    assert near(window(pic, 2.2, 0.3, 6), render.OBSTACLE_VENDOR)
    assert not near(window(pic, 2.2, 0.3, 6), render.OBSTACLE_BUMPER)
    assert near(window(pic, 2.6, -1.0), render.GO_TO)
    # dock: a green disc on the dock; robot: a blue disc, heading line towards +x
    np.testing.assert_array_equal(pixel(pic, -0.6 - 0.05, -1.5), render.DOCK)
    np.testing.assert_array_equal(pixel(pic, 0.3 - 0.05, 0.3), render.ROBOT)
    assert near(window(pic, 0.3 + 0.25, 0.3, 1), render.ROBOT)  # the heading, past the disc
    assert not near(window(pic, 0.3 - 0.3, 0.3, 1), render.ROBOT)  # nothing behind it
    # room labels: dark text near each room's centre
    for centre in ((0.15 + RES / 2, -0.5 + RES / 2), (1.875, -0.5 + RES / 2)):
        assert (window(pic, *centre, 10).sum(axis=1) < 200).any()
    # caption band below the map, with text in it
    rows = pic.rows * pic.scale
    assert pic.image.shape[0] > rows + 40
    assert (pic.image[rows:].sum(axis=2) < 300).any()
    out = tmp_path / "doc.png"
    pic.save(out)
    back = cv2.imread(str(out))
    np.testing.assert_array_equal(back, pic.image)


def test_room_colours_cycle_by_id_and_palette_is_pale():
    n = len(render.ROOM_PALETTE)
    assert render.room_colour(1) == render.room_colour(1 + n)
    assert len(set(render.ROOM_PALETTE)) == n
    for b, g, r in render.ROOM_PALETTE:
        assert min(b, g, r) >= 150  # pale: walls and zones stay the strongest colours
        assert not (r > g + 60 and r > b + 60)  # never mistaken for a no-go zone


@pytest.mark.parametrize("shape, scale", [((10, 20), 8), ((300, 200), 3), ((1000, 1200), 1)])
def test_auto_scale_enlarges_small_maps_only(shape, scale):
    doc = MapDocument.from_cells(np.full(shape, FREE, np.int8), RES, (0.0, 0.0))
    pic = render.draw_document(doc, caption=False)
    assert pic.scale == scale
    assert pic.image.shape[:2] == (shape[0] * scale, shape[1] * scale)


def test_caption_widens_a_tiny_map_and_can_be_left_out():
    doc = MapDocument.from_cells(np.full((4, 6), FREE, np.int8), RES, (0.0, 0.0))
    with_caption = render.draw_document(doc)
    assert with_caption.image.shape[1] > 6 * 8  # room for the caption text
    np.testing.assert_array_equal(with_caption.image[: 4 * 8, : 6 * 8], 255)
    bare = render.draw_document(doc, scale=2, caption=False)
    assert bare.image.shape == (8, 12, 3)


def test_plain_document_without_extras_draws():
    states = np.array([[FREE, OCCUPIED], [UNKNOWN, FREE]], np.int8)  # row 0 = bottom
    pic = render.draw_document(MapDocument.from_cells(states, 0.1, (0.0, 0.0)), scale=4)
    np.testing.assert_array_equal(pixel(pic, 0.05, 0.05), render.FREE_WHITE)
    np.testing.assert_array_equal(pixel(pic, 0.15, 0.05), render.WALL_DARK)
    np.testing.assert_array_equal(pixel(pic, 0.05, 0.15), render.UNKNOWN_GREY)
