"""Goal images on disk: what ~/capture_goal writes and goal_file reads (no ROS needed)."""

import re

import imageio.v2 as imageio
import numpy as np
import pytest

from ros_nodes.goal_images import load_goal_image, save_goal_image


def test_saved_goal_loads_back_exactly_and_nothing_temporary_is_left(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    path = save_goal_image(image, tmp_path / "goals", stamp_s=1_795_000_000.25)
    assert path.name == "goal_20261118_110640_250.png"
    np.testing.assert_array_equal(load_goal_image(path), image)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_rgba_photo_is_accepted_as_rgb(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    imageio.imwrite(tmp_path / "photo.png", rgba)
    np.testing.assert_array_equal(load_goal_image(tmp_path / "photo.png"), rgba[..., :3])


def test_bad_goal_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match="missing.png does not exist; capture one"):
        load_goal_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png could not be read"):
        load_goal_image(tmp_path / "notes.png")
    imageio.imwrite(tmp_path / "grey.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="grey.png.*RGB"):
        load_goal_image(tmp_path / "grey.png")
    with pytest.raises(ValueError, match="8-bit"):
        save_goal_image(np.zeros((8, 8, 3), np.float32), tmp_path)


def test_a_directory_is_not_a_goal_image_and_the_message_names_an_image_in_it(tmp_path):
    """Issue 29 part 8: a directory given as a goal file was reported as "does not exist"."""
    with pytest.raises(
        ValueError,
        match=f"^goal image {re.escape(str(tmp_path))} is a directory; a goal image file "
        r"\(PNG/JPEG\) is expected.*holds no image",
    ):
        load_goal_image(tmp_path)
    for stamp in (1_795_000_000.0, 1_795_000_060.0):
        save_goal_image(np.zeros((8, 8, 3), np.uint8), tmp_path, stamp_s=stamp)
    with pytest.raises(ValueError) as info:
        load_goal_image(tmp_path)
    assert str(info.value).endswith(
        f"e.g. {tmp_path / 'goal_20261118_110740_000.png'} (the last by name of its 2 image(s))"
    ), info.value
