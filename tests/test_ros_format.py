import json

import cv2
import numpy as np
import pytest

from maps import CorruptMap, MapNotFound, OccupancyGrid, Pose, Scan
from maps.formats import load_map, ros
from maps.model import FREE, OCCUPIED, UNKNOWN, MapDocument
from maps.render import draw_document


def test_ros_map_round_trip(tmp_path):
    grid = OccupancyGrid.centred(1.0, -2.0, 4.0)
    angles = np.linspace(-np.pi, np.pi, 180, endpoint=False)
    grid.integrate(Pose(1.0, -2.0, 0.0), Scan(np.full(180, 1.5, np.float32), angles, 0.0))
    pgm, yaml = ros.save(grid, tmp_path / "map")
    img = ros.load_pgm(pgm)
    np.testing.assert_array_equal(img, ros.to_image(grid))
    # row 0 of the image is the top: the lowest grid row is the last image row
    assert (img[::-1] == 0).any() and img.shape == grid.shape
    text = yaml.read_text()
    assert f"origin: [{grid.origin[0]!r}, {grid.origin[1]!r}, 0.0]" in text
    assert "resolution: 0.05" in text and "image: map.pgm" in text
    doc = ros.load(yaml)
    np.testing.assert_array_equal(doc.cell_states(), MapDocument(grid).cell_states())
    assert doc.grid.origin == grid.origin and doc.grid.resolution == grid.resolution


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"P5\n10 10",
        b"P5\n# c\n4 4\n255\n" + bytes(5),
        b"P2\n2 2\n255\n1 2 3",
        b"P2\n2 2\n255\n1 2 x 4",
        b"P2\n2 2\n9\n1 2 3 40",
        b"P2\n2 2\n255\n1 2 3 -4",
        b"P5\n99999 99999\n255\n" + bytes(16),
        b"P6\n2 2\n255\n" + bytes(12),
    ],
)
def test_bad_pgm_is_a_clear_error_not_a_hang(tmp_path, content):
    path = tmp_path / "bad.pgm"
    path.write_bytes(content)
    with pytest.raises(CorruptMap, match="bad.pgm"):
        ros.load_pgm(path)


def test_ascii_pgm_reads_like_binary(tmp_path):
    pixels = np.array([[0, 17, 205], [254, 255, 9]], np.uint8)
    p5 = tmp_path / "b.pgm"
    p5.write_bytes(b"P5\n3 2\n255\n" + pixels.tobytes())
    p2 = tmp_path / "a.pgm"
    p2.write_bytes(b"P2\n# a comment\n3 2\n255\n0 17 205\n254\t255\n  9\n")
    np.testing.assert_array_equal(ros.load_pgm(p2), pixels)
    np.testing.assert_array_equal(ros.load_pgm(p5), pixels)


def _yaml(path, image, mode="trinary", negate=0, occ=0.65, free=0.196, origin="[0.0, 0.0, 0.0]"):
    path.write_text(
        f"image: {image}\nmode: {mode}\nresolution: 0.1\norigin: {origin}\n"
        f"negate: {negate}\noccupied_thresh: {occ}\nfree_thresh: {free}\n"
    )
    return path


def _random_document(rng, shape=(30, 40)) -> MapDocument:
    lo = rng.uniform(-6.0, 6.0, shape).astype(np.float32)
    lo[rng.random(shape) < 0.2] = 0.0  # never observed
    lo[0, :3] = [ros.FREE_LOG_ODDS, 0.0, ros.OCCUPIED_LOG_ODDS]
    return MapDocument(OccupancyGrid(lo, 0.05, (-1.23456789, 2.5)), meta={"origin_yaw": 0.25})


@pytest.mark.parametrize("mode", ["trinary", "scale"])
def test_save_then_load_keeps_states_resolution_origin(tmp_path, rng, mode):
    doc = _random_document(rng)
    image, yaml = ros.save(doc, tmp_path / "floor", mode=mode)
    assert image.suffix == (".pgm" if mode == "trinary" else ".png")
    back = ros.load(yaml)
    np.testing.assert_array_equal(back.cell_states(), doc.cell_states())
    assert back.grid.resolution == doc.grid.resolution
    assert back.grid.origin == doc.grid.origin
    assert back.meta["origin_yaw"] == 0.25 and back.meta["mode"] == mode
    assert back.frame.vendor == "ros"
    if mode == "scale":
        # the graded probability survives to within the 8-bit step (and the 0.001 clamp)
        err = np.abs(back.grid.probability() - doc.grid.probability())
        assert err.max() <= 0.5 / 255 + 2.5e-3
        assert (back.grid.log_odds[doc.grid.log_odds == 0] == 0).all()  # transparent = unknown
        # and saving what was read writes the very same image
        again, _ = ros.save(back, tmp_path / "again", mode="scale")
        np.testing.assert_array_equal(
            cv2.imread(str(again), cv2.IMREAD_UNCHANGED), cv2.imread(str(image), -1)
        )


def test_scale_png_has_alpha_for_never_observed_cells(tmp_path):
    lo = np.array([[0.0, -3.0], [3.0, 0.1]], np.float32)  # row 0 = bottom
    image, _ = ros.save(OccupancyGrid(lo, 0.05, (0, 0)), tmp_path / "m", mode="scale")
    bgra = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    assert bgra.shape == (2, 2, 4)
    np.testing.assert_array_equal(bgra[..., 3], [[255, 255], [0, 255]])
    grey = bgra[..., 0].astype(int)
    assert grey[1, 1] > 206 and grey[0, 0] < 89  # free light, occupied dark (map_server bands)
    assert 90 <= grey[0, 1] <= 205  # p = 0.525: between the thresholds, graded


def _map_server_class(occ, occ_th=0.65, free_th=0.196):
    return np.where(occ > occ_th, OCCUPIED, np.where(occ < free_th, FREE, UNKNOWN))


def test_every_grey_in_scale_mode_reads_as_map_server_and_writes_back_exactly(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    doc = ros.load(_yaml(tmp_path / "g.yaml", "g.png", mode="scale"))
    expected = _map_server_class((255.0 - grey) / 255.0)[::-1]
    np.testing.assert_array_equal(doc.cell_states(), expected)
    inside = np.abs(doc.grid.probability() - ((255.0 - grey) / 255.0)[::-1])
    assert inside[1:-1].max() < 1e-5  # the 8-bit value itself (ends clamped to 0.001 / 0.999)
    image, _ = ros.save(doc, tmp_path / "g2", mode="scale")
    np.testing.assert_array_equal(cv2.imread(str(image), -1)[..., 0], grey)


def test_scale_mode_with_other_thresholds_keeps_map_server_classes(tmp_path):
    occ = np.array([[0.02, 0.09, 0.11, 0.5, 0.89, 0.91, 0.99]])
    grey = np.rint(255 * (1 - occ)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "t.png"), grey)
    doc = ros.load(_yaml(tmp_path / "t.yaml", "t.png", mode="scale", occ=0.9, free=0.1))
    real_occ = (255.0 - grey) / 255.0
    np.testing.assert_array_equal(doc.cell_states(), _map_server_class(real_occ, 0.9, 0.1))
    prob = doc.grid.probability()[0]
    assert (np.diff(prob) > 0).all()  # graded, in order


def test_negate_reads_dark_as_free(tmp_path):
    states = np.array([[FREE, OCCUPIED, UNKNOWN], [OCCUPIED, FREE, FREE]], np.int8)  # row 0 bottom
    doc = MapDocument.from_cells(states, 0.1, (2.0, -3.0))
    negated = 255 - ros.to_image(doc)  # with negate, occ = value / 255
    (tmp_path / "neg.pgm").write_bytes(b"P5\n3 2\n255\n" + negated.tobytes())
    hand = tmp_path / "neg.yaml"
    hand.write_text(
        "# written by hand, as a user would\n"
        'image: "neg.pgm"   # quoted\n'
        "resolution: 0.1\n"
        "origin: [2.0,\n"
        "         -3.0, 0.0]\n"
        "negate: 1\n"
        "occupied_thresh: 0.65\n"
        "free_thresh: 0.196\n"
    )
    back = ros.load(hand)
    np.testing.assert_array_equal(back.cell_states(), states)
    assert back.grid.origin == (2.0, -3.0) and back.meta["negate"] is True
    # the same picture without negate: free and occupied swap
    plain_negated = _yaml(tmp_path / "pn.yaml", "neg.pgm", origin="[2.0, -3.0, 0.0]")
    swapped = ros.load(plain_negated).cell_states()
    assert (swapped[states == FREE] == OCCUPIED).all()
    assert (swapped[states == OCCUPIED] == FREE).all()


def test_negate_in_scale_mode_and_bool_flag(tmp_path):
    values = np.array([[0, 128, 255]], np.uint8)  # negate: occ = v / 255
    (tmp_path / "s.pgm").write_bytes(b"P5\n3 1\n255\n" + values.tobytes())
    yaml = _yaml(tmp_path / "s.yaml", "s.pgm", mode="scale", negate="true")
    np.testing.assert_array_equal(ros.load(yaml).cell_states(), [[FREE, UNKNOWN, OCCUPIED]])


def test_image_row_zero_is_the_top(tmp_path):
    img = np.full((3, 4), 254, np.uint8)
    img[0, 0] = 0  # top-left pixel
    (tmp_path / "r.pgm").write_bytes(b"P5\n4 3\n255\n" + img.tobytes())
    doc = ros.load(_yaml(tmp_path / "r.yaml", "r.pgm", origin="[1.0, 2.0, 0.0]"))
    states = doc.cell_states()
    assert states[2, 0] == OCCUPIED and (states == OCCUPIED).sum() == 1
    # world: the top-left cell's centre is at x = 1.05, y = 2.0 + 2.5 * 0.1
    i, j = doc.grid.world_to_cell(np.array([[1.05, 2.25]]))[0]
    assert (i, j) == (2, 0)


def test_colour_and_alpha_follow_map_server(tmp_path):
    # BGRA pixels: black opaque, black transparent, white transparent, pure red opaque,
    # mid grey opaque
    bgra = np.array(
        [[[0, 0, 0, 255], [0, 0, 0, 0], [255, 255, 255, 0], [0, 0, 255, 255], [128] * 4]],
        np.uint8,
    )
    bgra[0, 4, 3] = 255
    cv2.imwrite(str(tmp_path / "c.png"), bgra)
    # trinary: alpha is averaged in with the colours: black+transparent -> 0 -> occupied,
    # white+transparent -> 191.25 -> occ 0.25 -> unknown, opaque red -> 127.5 -> unknown
    tri = ros.load(_yaml(tmp_path / "t.yaml", "c.png")).cell_states()
    np.testing.assert_array_equal(tri, [[OCCUPIED, OCCUPIED, UNKNOWN, UNKNOWN, UNKNOWN]])
    # scale: transparency is unknown whatever the colour; red averages to 85 -> occ 0.667
    sca = ros.load(_yaml(tmp_path / "s.yaml", "c.png", mode="scale")).cell_states()
    np.testing.assert_array_equal(sca, [[OCCUPIED, UNKNOWN, UNKNOWN, OCCUPIED, UNKNOWN]])


def test_raw_mode_is_occupancy_percent(tmp_path):
    values = np.array([[0, 19, 50, 66, 100, 101, 255]], np.uint8)
    (tmp_path / "raw.pgm").write_bytes(b"P5\n7 1\n255\n" + values.tobytes())
    doc = ros.load(_yaml(tmp_path / "raw.yaml", "raw.pgm", mode="raw", negate=1))
    np.testing.assert_array_equal(
        doc.cell_states(), [[FREE, FREE, UNKNOWN, OCCUPIED, OCCUPIED, UNKNOWN, UNKNOWN]]
    )
    prob = doc.grid.probability()[0]
    assert abs(prob[2] - 0.5) < 1e-6 and abs(prob[3] - 0.66) < 1e-6
    assert doc.grid.log_odds[0, 5] == 0 and doc.grid.log_odds[0, 6] == 0


def test_sixteen_bit_pgm(tmp_path):
    values = np.array([[0, 65535, 32768]], ">u2")
    (tmp_path / "w.pgm").write_bytes(b"P5\n3 1\n65535\n" + values.tobytes())
    doc = ros.load(_yaml(tmp_path / "w.yaml", "w.pgm"))
    np.testing.assert_array_equal(doc.cell_states(), [[OCCUPIED, FREE, UNKNOWN]])


def test_image_path_is_relative_to_the_yaml_folder(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "meta").mkdir()
    img = np.array([[0, 254]], np.uint8)
    (tmp_path / "img" / "m.pgm").write_bytes(b"P5\n2 1\n255\n" + img.tobytes())
    rel = _yaml(tmp_path / "meta" / "rel.yaml", "../img/m.pgm")
    absolute = _yaml(tmp_path / "abs.yaml", str(tmp_path / "img" / "m.pgm"))
    for yaml in (rel, absolute):
        np.testing.assert_array_equal(ros.load(yaml).cell_states(), [[OCCUPIED, FREE]])
    # through the format-agnostic entry point too, from the YAML or the image beside it
    ros.save(ros.load(rel), tmp_path / "copy")
    for path in (tmp_path / "copy.yaml", tmp_path / "copy.pgm"):
        np.testing.assert_array_equal(load_map(path).cell_states(), [[OCCUPIED, FREE]])


def test_yaml_reader_accepts_what_map_server_files_hold(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "%YAML 1.2\n---\n"
        "image: 'my map.pgm'  # single quotes\n"
        "resolution: 5e-2\n"
        "origin:\n  - -1.5\n  - +2\n  - 0.0\n"
        "negate: false\n"
        "occupied_thresh: .65\n"
        'free_thresh: "0.196"\n'
        "mode: trinary\n"
        "extra_key: kept # ignored by load\n"
    )
    entries = ros.read_yaml(path)
    assert entries["image"].value == "my map.pgm" and entries["image"].line == 3
    assert entries["origin"].value == ["-1.5", "+2", "0.0"]
    assert entries["extra_key"].value == "kept"
    (tmp_path / "my map.pgm").write_bytes(b"P5\n1 1\n255\n\x00")
    doc = ros.load(path)
    assert doc.grid.resolution == 0.05 and doc.grid.origin == (-1.5, 2.0)
    assert doc.cell_states()[0, 0] == OCCUPIED
    json.dumps(doc.meta)  # meta stays JSON-friendly for the store


@pytest.mark.parametrize(
    "line, value",
    [
        ('image: "a #b.pgm" # comment', "a #b.pgm"),
        ("image: 'it''s #1.pgm'  # comment", "it's #1.pgm"),
        ('image: "q\\"r\\u00e9.pgm"', 'q"r\u00e9.pgm'),
        ("image: a#b.pgm", "a#b.pgm"),
        ("image:", None),
    ],
)
def test_yaml_quotes_and_comments(tmp_path, line, value):
    path = tmp_path / "q.yaml"
    path.write_text(line + "\n")
    assert ros.read_yaml(path)["image"].value == value


GOOD = {
    "image": "m.pgm",
    "resolution": "0.05",
    "origin": "[0.0, 0.0, 0.0]",
    "negate": "0",
    "occupied_thresh": "0.65",
    "free_thresh": "0.196",
}


@pytest.mark.parametrize(
    "change, key, message",
    [
        ({"image": "missing.pgm"}, "image", "does not exist"),
        ({"image": "''"}, "image", "empty"),
        ({"resolution": "abc"}, "resolution", "not a number"),
        ({"resolution": "-0.05"}, "resolution", r"\[0.0001, 100\] m per cell, got -0.05"),
        ({"resolution": "0"}, "resolution", r"\[0.0001, 100\]"),
        ({"resolution": "1e300"}, "resolution", r"\[0.0001, 100\] m per cell, got 1e\+300"),
        ({"resolution": "1e-320"}, "resolution", r"\[0.0001, 100\] m per cell, got 1e-320"),
        ({"resolution": "100.5"}, "resolution", r"\[0.0001, 100\]"),
        ({"origin": "[1.0e7, 0.0, 0.0]"}, "origin", "x 10000000.0 m is farther than 1e\\+06 m"),
        ({"origin": "[0.0, -1e300, 0.0]"}, "origin", "y -1e\\+300 m is farther than"),
        ({"origin": "[0.0, .inf, 0.0]"}, "origin", "finite"),
        ({"resolution": ".nan"}, "resolution", "finite"),
        ({"origin": "[0.0, 0.0, 0.0, 1.0]"}, "origin", "x, y, yaw"),
        ({"origin": "[0.0, zero, 0.0]"}, "origin", "not a number"),
        ({"origin": "0.0"}, "origin", "list"),
        ({"occupied_thresh": "1.5"}, "occupied_thresh", r"\[0, 1\]"),
        ({"free_thresh": "-0.1"}, "free_thresh", r"\[0, 1\]"),
        ({"free_thresh": "0.7"}, "free_thresh", "above occupied_thresh"),
        ({"negate": "maybe"}, "negate", "0, 1, true or false"),
        ({"mode": "fancy"}, "mode", "trinary, scale or raw"),
        ({"resolution": None}, "resolution", "missing key"),
    ],
)
def test_bad_yaml_values_name_file_and_key(tmp_path, change, key, message):
    (tmp_path / "m.pgm").write_bytes(b"P5\n1 1\n255\n\x00")
    fields = {**GOOD, **change}
    path = tmp_path / "bad.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None))
    with pytest.raises(CorruptMap, match=f"bad.yaml.*('{key}'.*{message}|{message} '{key}')"):
        ros.load(path)


@pytest.mark.parametrize(
    ("resolution", "origin"), [("0.0001", "[-1e6, 1e6, 0.0]"), ("100", "[0.5, -2.0, 3.0]")]
)
def test_resolution_and_origin_at_the_bounds_load_and_summarise(tmp_path, resolution, origin):
    (tmp_path / "m.pgm").write_bytes(b"P5\n2 1\n255\n\x00\xfe")
    path = tmp_path / "edge.yaml"
    fields = {**GOOD, "resolution": resolution, "origin": origin}
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    doc = ros.load(path)
    assert doc.grid.resolution == float(resolution)
    summary = doc.summary()
    assert summary["free_m2"] == summary["occupied_m2"] == round(float(resolution) ** 2, 4)
    assert draw_document(doc).image.shape[:2] >= doc.grid.shape


@pytest.mark.parametrize(
    "text, line",
    [
        ("image: m.pgm\nresolution 0.05\n", 2),
        ("image: m.pgm\n  nested: 1\n", 2),
        ("image: m.pgm\nimage: n.pgm\n", 2),
        ('image: "m.pgm\n', 1),
        ("image: m.pgm\norigin: [0, [1], 2]\n", 2),
        ("image: m.pgm\norigin: [0, 1, 2\nnegate: 0\n", 2),
        ("image: m.pgm\norigin: [0, , 2]\n", 2),
        ("image: {a: 1}\n", 1),
        ("image: a: b\n", 1),
        ("image: 'it's'\n", 1),
        ('image: "bad \\q escape"\n', 1),
    ],
)
def test_broken_yaml_names_file_and_line(tmp_path, text, line):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(CorruptMap, match=f"broken.yaml: line {line}:"):
        ros.load(path)


def test_undecodable_inputs_are_corrupt_map(tmp_path):
    with pytest.raises(MapNotFound, match="nothing.yaml"):
        ros.load(tmp_path / "nothing.yaml")
    (tmp_path / "x.yaml").write_bytes(b"image: \xff\xfe\n")
    with pytest.raises(CorruptMap, match="x.yaml.*UTF-8"):
        ros.load(tmp_path / "x.yaml")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(CorruptMap, match="junk.png"):
        ros.load(_yaml(tmp_path / "j.yaml", "junk.png"))
    huge = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2 + bytes(20)
    (tmp_path / "huge.png").write_bytes(huge)
    with pytest.raises(CorruptMap, match="huge.png.*pixels"):
        ros.load(_yaml(tmp_path / "h.yaml", "huge.png"))


def test_arbitrary_bytes_only_ever_raise_corrupt_map(tmp_path, rng):
    doc = _random_document(rng, (6, 7))
    image, yaml = ros.save(doc, tmp_path / "seed")
    good_image, good_yaml = image.read_bytes(), yaml.read_bytes()
    for trial in range(300):
        data = bytearray(good_image if trial % 2 else good_yaml)
        for _ in range(rng.integers(1, 6)):
            pos = int(rng.integers(0, len(data)))
            if rng.random() < 0.3:
                del data[pos:]
                break
            data[pos] = int(rng.integers(0, 256))
        image.write_bytes(bytes(data) if trial % 2 else good_image)
        yaml.write_bytes(good_yaml if trial % 2 else bytes(data))
        try:
            ros.load(yaml)
        except CorruptMap:
            pass


def test_save_refuses_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="trinary"):
        ros.save(OccupancyGrid.empty(1, 1), tmp_path / "m", mode="raw")


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["lab_intel.png", "office_a.png", "lab_c_scan.png"])
def test_real_floor_plan_png_as_map_server_reads_it(shared_data, tmp_path, name):
    """Grey+alpha, RGBA and grey PNGs from the floor-plan set, read in trinary mode."""
    path = shared_data / "floorplans" / name
    yaml = _yaml(tmp_path / "plan.yaml", str(path))
    doc = ros.load(yaml)
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64)
    if pixels.ndim == 2:
        avg = pixels
    else:  # OpenCV gives grey+alpha as BGRA; trinary averages the alpha in
        avg = pixels.mean(axis=2)
    expected = _map_server_class((255.0 - avg) / 255.0)[::-1]
    np.testing.assert_array_equal(doc.cell_states(), expected)
    assert (expected == FREE).mean() > 0.2 and (expected == OCCUPIED).any()
