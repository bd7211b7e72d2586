import json

import cv2
import numpy as np
import pytest

from maps.diff import APPEARED, DISAPPEARED, EXPLORED, LOST, diff
from maps.errors import MapError
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument

RES = 0.1
CELL = RES * RES


def room(shape=(10, 12)) -> np.ndarray:
    """Free floor with a wall along the bottom row and an unexplored last column."""
    states = np.full(shape, FREE, np.int8)
    states[0, :] = OCCUPIED
    states[:, -1] = UNKNOWN
    return states


def test_known_changes_give_exact_counts_areas_and_bbox(tmp_path):
    a = room()
    b = a.copy()
    b[4, 2:5] = OCCUPIED  # 3 appeared (a chair)
    b[0, 6:8] = FREE  # 2 disappeared (a door opened in the wall)
    b[:, -1] = FREE  # 10 explored
    b[9, 0:4] = UNKNOWN  # 4 lost
    rooms_a = np.zeros(a.shape, np.uint8)
    rooms_a[1:, :6] = 1
    rooms_b = rooms_a.copy()
    rooms_b[1:, 6:] = 2  # a new room: 9 x 6 cells relabelled
    doc_a = MapDocument.from_cells(a, RES, (2.0, -1.0), rooms=rooms_a)
    doc_b = MapDocument.from_cells(b, RES, (2.0, -1.0), rooms=rooms_b)

    d = diff(doc_a, doc_b)
    assert d.counts == {"appeared": 3, "disappeared": 2, "explored": 10, "lost": 4}
    expected_m2 = {"appeared": 0.03, "disappeared": 0.02, "explored": 0.10, "lost": 0.04}
    assert d.areas == pytest.approx(expected_m2)
    assert d.total_cells == 19 and d.total_m2 == pytest.approx(0.19)
    assert d.room_label_cells == 54 and d.rooms_added == [2] and d.rooms_removed == []
    assert d.shape == a.shape and d.origin == (2.0, -1.0)
    # changes reach the bottom row, the top row, the first and the last column
    assert d.bbox == pytest.approx((2.0, -1.0, 3.2, 0.0))
    assert d.change[4, 3] == APPEARED and d.change[0, 6] == DISAPPEARED
    assert d.change[5, 11] == EXPLORED and d.change[9, 1] == LOST

    report = d.as_dict()
    json.dumps(report)
    assert report["appeared_cells"] == 3 and report["lost_cells"] == 4
    assert report["explored_m2"] == pytest.approx(0.1)
    assert report["changed_cells"] == 19 and report["changed_m2"] == pytest.approx(0.19)
    assert report["room_label_m2"] == pytest.approx(0.54)
    assert report["bbox_m"] == pytest.approx([2.0, -1.0, 3.2, 0.0])

    pic = d.picture(scale=5)

    def at(i, j):  # BGR at the centre of union cell (i, j)
        ((px, py),) = pic.to_pixels(np.array([[2.0 + (j + 0.5) * RES, -1.0 + (i + 0.5) * RES]]))
        return pic.image[int(py), int(px)].astype(int)

    b_, g_, r_ = at(4, 3)
    assert r_ > 180 and g_ < 60 and b_ < 60  # appeared: red
    b_, g_, r_ = at(0, 6)
    assert g_ > 120 and r_ < 60 and b_ < 60  # disappeared: green
    b_, g_, r_ = at(5, 11)
    assert b_ > 180 and r_ < 60  # explored: blue
    b_, g_, r_ = at(5, 5)
    assert b_ == g_ == r_  # unchanged: the newer map in grey
    assert pic.image.shape[0] > 10 * 5 + 30  # caption
    pic.save(tmp_path / "diff.png")
    assert cv2.imread(str(tmp_path / "diff.png")) is not None


def test_identical_maps_have_no_change():
    doc = MapDocument.from_cells(room(), RES, (0.3, 0.7))
    d = diff(doc, doc)
    assert d.counts == dict.fromkeys(("appeared", "disappeared", "explored", "lost"), 0)
    assert d.total_cells == 0 and d.total_m2 == 0 and d.room_label_cells == 0
    assert d.bbox is None and d.as_dict()["bbox_m"] is None
    assert d.picture().image.ndim == 3


def test_offset_origins_on_the_same_lattice_align_by_world_position():
    world = np.full((20, 20), FREE, np.int8)
    world[::4, :] = OCCUPIED  # stripes: any misalignment would show up as changes
    a = world[0:12, 0:12]
    b = world[3:20, 5:20].copy()
    b[5, 5] = OCCUPIED if b[5, 5] == FREE else FREE  # world cell (8, 10): one real change
    kind = APPEARED if b[5, 5] == OCCUPIED else DISAPPEARED
    # float noise well below the 1e-6 m tolerance, as origins read from files carry
    doc_a = MapDocument.from_cells(a, RES, (0.0, 0.0))
    doc_b = MapDocument.from_cells(b, RES, (5 * RES + 3e-9, 3 * RES - 2e-9))
    d = diff(doc_a, doc_b)
    assert d.shape == (20, 20) and d.origin == (0.0, 0.0)
    overlap = 9 * 7  # rows 3..11, cols 5..11
    only_a = 12 * 12 - overlap
    only_b = 17 * 15 - overlap
    moved = {APPEARED: "appeared", DISAPPEARED: "disappeared"}[kind]
    expected = {"appeared": 0, "disappeared": 0, "explored": only_b, "lost": only_a}
    expected[moved] = 1
    assert d.counts == expected
    assert d.change[8, 10] == kind
    # the other way round, explored and lost swap and the change reverses
    back = diff(doc_b, doc_a)
    assert back.counts["explored"] == only_a and back.counts["lost"] == only_b
    assert back.origin == pytest.approx((0.0, 0.0), abs=1e-6)


def test_maps_off_the_lattice_or_of_other_resolution_are_refused():
    a = MapDocument.from_cells(room(), RES, (0.0, 0.0))
    with pytest.raises(MapError, match="lattice"):
        diff(a, MapDocument.from_cells(room(), RES, (0.05, 0.0)))
    with pytest.raises(MapError, match="lattice"):
        diff(a, MapDocument.from_cells(room(), RES, (0.0, 0.3 + 2e-6)))
    with pytest.raises(MapError, match="resolution"):
        diff(a, MapDocument.from_cells(room(), 0.05, (0.0, 0.0)))
    with pytest.raises(MapError, match="too far apart"):
        diff(a, MapDocument.from_cells(room(), RES, (1e5, 1e5)))


def test_picture_scale_is_automatic_and_paints_exactly_the_changed_cells():
    a = MapDocument.from_cells(room((40, 50)), RES, (0.0, 0.0))
    b_states = room((40, 50))
    b_states[10:12, 10:12] = OCCUPIED
    d = diff(a, MapDocument.from_cells(b_states, RES, (0.0, 0.0)))
    assert d.bbox == pytest.approx((1.0, 1.0, 1.2, 1.2))  # the 2 x 2 cells at rows/cols 10, 11
    pic = d.picture()
    assert pic.scale == 8
    assert (pic.image[: 40 * 8].reshape(-1, 3) == (0, 0, 230)).all(axis=1).sum() == 4 * 64
