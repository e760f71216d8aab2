"""Reading DROID-in-LeRobot: the fixture was written by LeRobot 0.4.4's own writer (v3.0, AV1, 15 fps);
truth.npz holds what went in and the reference clip sampling (see tests/fixtures/lerobot_droid_mini/README.md).
The training clips sampled from it are tested in tests/test_training_clips.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from jepa_mpc_dataset import DatasetError, LeRobotDataset, LeRobotReaderConfig

FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_droid_mini"
EXTERIOR = "observation.images.exterior_1_left"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def droid() -> LeRobotDataset:
    return LeRobotDataset(FIXTURE / "dataset")


@pytest.fixture(scope="module")
def truth():
    with np.load(FIXTURE / "truth.npz") as data:
        return dict(data)


def test_metadata(droid: LeRobotDataset) -> None:
    assert droid.num_episodes == 3
    assert droid.fps == 15
    assert len(droid) == 83
    assert sorted(droid.camera_names) == [EXTERIOR, "observation.images.wrist_left"]
    assert [droid.episode_length(e) for e in droid.episode_indices] == [40, 33, 10]
    assert droid.frame_step() == 4  # ceil(15 / 4)


@pytest.mark.parametrize("episode_index", [0, 1, 2])
def test_states_match_truth(droid: LeRobotDataset, truth, episode_index: int) -> None:
    episode = droid.episode(episode_index)
    np.testing.assert_array_equal(episode.state, truth[f"ep{episode_index}_state7"])
    assert episode.length == len(truth[f"ep{episode_index}_state7"])
    assert episode.task and isinstance(episode.task, str)
    assert isinstance(episode.success, bool)
    assert episode.commanded_action is None  # DROID's "action" is joint-space, not our 7-D delta
    np.testing.assert_array_equal(episode.action[-1], np.zeros(7))


def test_selected_frames_of_a_decoded_episode_equal_a_partial_decode(droid: LeRobotDataset) -> None:
    episode = droid.episode(0)
    _ = episode.frames[EXTERIOR]  # decode the whole episode first: select then slices it
    indices = np.arange(3, 32, 4)
    np.testing.assert_array_equal(episode.frames.select(EXTERIOR, indices), droid.decode_frames(0, EXTERIOR, indices))


@pytest.mark.parametrize("episode_index", [1, 2])
def test_episode_frames_come_from_its_time_span(droid: LeRobotDataset, truth, episode_index: int) -> None:
    """Episodes 1 and 2 start mid-file (from_timestamp > 0): an off-by-one frame would show as lower PSNR."""
    frames = droid.episode(episode_index).frames[EXTERIOR]
    expected = truth[f"ep{episode_index}_exterior"]
    assert frames.shape == expected.shape
    aligned = psnr(frames, expected)
    assert aligned > 30.0
    assert aligned > psnr(frames[1:], expected[:-1]) + 3.0
    assert aligned > psnr(frames[:-1], expected[1:]) + 3.0


def test_roll_wrap_actions_compose_rotations(droid: LeRobotDataset) -> None:
    """Roll crosses +-pi in the fixture: subtracting Euler angles would give a ~2 pi jump."""
    episode = droid.episode(0)
    naive = np.abs(np.diff(episode.state[:, 3]))
    assert naive.max() > np.pi  # the wrap is really there
    assert np.abs(episode.action[:, 3:6]).max() < 0.5


def test_camera_choice(droid: LeRobotDataset) -> None:
    indices = np.arange(0, 29, 4)
    wrist = droid.decode_frames(0, "wrist_image_left", indices)  # writer-side alias of the wrist camera
    exterior = droid.decode_frames(0, EXTERIOR, indices)
    assert wrist.shape == exterior.shape
    assert psnr(wrist, exterior) < 25.0  # really another camera
    with pytest.raises(DatasetError, match="not a video feature"):
        droid.decode_frames(0, "exterior_image_2_left")
    with pytest.raises(DatasetError, match="not a video feature"):
        LeRobotDataset(FIXTURE / "dataset", LeRobotReaderConfig(camera="observation.images.top"))


def test_missing_state_feature_is_named() -> None:
    with pytest.raises(DatasetError, match="observation.state.eef"):
        LeRobotDataset(FIXTURE / "dataset", LeRobotReaderConfig(cartesian_state="observation.state.eef"))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="sample_fps"):
        LeRobotReaderConfig(sample_fps=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LeRobotReaderConfig()
