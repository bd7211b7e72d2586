import numpy as np
import pytest

from maps import CorruptMap, OccupancyGrid, Pose, Scan
from maps.formats import ros


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
    assert f"origin: [{grid.origin[0]:.6f}, {grid.origin[1]:.6f}, 0.0]" in text
    assert "resolution: 0.05" in text and "image: map.pgm" in text


@pytest.mark.parametrize(
    "content", [b"", b"P5\n10 10", b"P5\n# c\n4 4\n255\n" + bytes(5), b"P2\n2 2\n255\n1 2 3 4"]
)
def test_bad_pgm_is_a_clear_error_not_a_hang(tmp_path, content):
    path = tmp_path / "bad.pgm"
    path.write_bytes(content)
    with pytest.raises(CorruptMap, match="bad.pgm"):
        ros.load_pgm(path)
