"""Bad datasets on disk: never silent loss, never a bare error (issue 15).

Each case is built in tmp_path from a small dataset of our writer (or a copy of the DROID fixture,
where many episodes share a file) and must give a one-line DatasetError that names the file, the
field and the fix, or, with ``bad_episodes="skip"``, a warning and a counted skip.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jepa_mpc_dataset import DatasetError, LeRobotDataset, LeRobotDatasetWriter, LeRobotReaderConfig
from worldmodel.training.episodes import EpisodeError, LeRobotEpisodes, SkippedEpisode, open_episodes, usable_episodes

CAMERAS = {"exterior_image_1_left": (16, 16)}
FPS, LENGTH = 4, 8
DROID = Path(__file__).parent / "fixtures" / "lerobot_droid_mini" / "dataset"
EPISODES_META = Path("meta/episodes/chunk-000/file-000.parquet")


def episode(index: int) -> dict:
    rng = np.random.default_rng(index)
    state = np.zeros((LENGTH, 7), np.float32)
    state[:, :3] = 0.4 + 0.01 * np.arange(LENGTH)[:, None]
    state[:, 3] = np.pi - 0.1
    state[:, 6] = 0.1 * index
    frames = {name: rng.integers(0, 255, (LENGTH, *size, 3)).astype(np.uint8) for name, size in CAMERAS.items()}
    joints = rng.normal(size=(LENGTH, 7)).astype(np.float32)
    return dict(
        frames=frames,
        state=state,
        action=np.zeros_like(state),
        task="push",
        success=True,
        seed=index,
        joint_position=joints,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base") / "ds"
    writer = LeRobotDatasetWriter(root, fps=FPS, cameras=CAMERAS)
    for index in range(3):
        writer.write_episode(index, **episode(index))
    writer.finalize()
    return root


@pytest.fixture
def ds_root(base: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    return root


def skip(**kwargs) -> LeRobotReaderConfig:
    return LeRobotReaderConfig(bad_episodes="skip", **kwargs)


def drop_meta_row(root: Path, episode_index: int) -> None:
    table = pq.read_table(root / EPISODES_META)
    pq.write_table(
        table.filter(pa.compute.not_equal(table.column("episode_index"), episode_index)), root / EPISODES_META
    )


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def set_column(path: Path, name: str, values: np.ndarray) -> None:
    table = pq.read_table(path)
    if values.ndim == 2:
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), values.shape[1])
    else:
        column = pa.array(values, table.schema.field(name).type)
    pq.write_table(
        table.set_column(table.column_names.index(name), name, column).replace_schema_metadata(table.schema.metadata),
        path,
    )


def set_info(root: Path, **fields) -> None:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps(info | fields))


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# -------------------------------------------------------------- 1. frames without a metadata row


def test_episode_missing_from_meta_is_an_error_naming_it_the_file_and_the_fix(ds_root: Path) -> None:
    drop_meta_row(ds_root, 1)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root)
    message = one_line_error(excinfo)
    assert "episode 1: 8 frame(s) in" in message and "file-001.parquet" in message
    assert "no row in meta/episodes" in message and "finalize" in message and "--data.bad_episodes skip" in message
    with pytest.raises(DatasetError, match="episode 1: 8 frame"):  # training's default (bad_episodes error)
        open_episodes(ds_root, camera="exterior_image_1_left", sample_fps=4)


def test_episode_missing_from_meta_is_skipped_with_a_warning_and_counted(ds_root: Path) -> None:
    drop_meta_row(ds_root, 1)
    with pytest.warns(UserWarning, match="skipping 1 episode"):
        ds = LeRobotDataset(ds_root, skip())
    assert ds.episode_indices == [0, 2] and list(ds.skipped) == [f"1 of {ds_root}"]
    with pytest.warns(UserWarning, match="skipping 1 episode"):
        source = LeRobotEpisodes(ds_root, camera="exterior_image_1_left", sample_fps=4, skip_bad=True)
    skipped: list[SkippedEpisode] = []
    names = [e.name for e in usable_episodes(source, 7, skip_bad=True, skipped=skipped, desc="test")]
    assert len(names) == 2 and [s.name for s in skipped] == [f"1 of {ds_root}"] and "no row in" in skipped[0].reason
    with pytest.raises(EpisodeError, match="episode 1 of .*no row in meta/episodes"):
        list(usable_episodes(source, 7, skip_bad=False, skipped=[], desc="test"))


def test_droid_episode_missing_from_meta_in_a_shared_file_is_named(tmp_path: Path) -> None:
    """DROID keeps all episodes in one data file: the file has more rows than meta/episodes lists."""
    root = tmp_path / "droid"
    shutil.copytree(DROID, root)
    drop_meta_row(root, 1)
    with pytest.raises(
        DatasetError, match=r"episode 1: 33 frame\(s\) in .*file-000\.parquet but no row in meta/episodes"
    ):
        LeRobotDataset(root)
    with pytest.warns(UserWarning, match="skipping 1"):
        ds = LeRobotDataset(root, skip())
    assert ds.episode_indices == [0, 2]
    np.testing.assert_array_equal(ds.states(2), np.load(DROID.parent / "truth.npz")["ep2_state7"])


# ------------------------------------------------ 1b. episode lengths that disagree with the data


def set_meta_column(root: Path, name: str, episode_index: int, value: int) -> None:
    table = pq.read_table(root / EPISODES_META)
    values = [
        value if e == episode_index else v
        for e, v in zip(table.column("episode_index").to_pylist(), table.column(name).to_pylist())
    ]
    column = pa.array(values, table.schema.field(name).type)
    pq.write_table(table.set_column(table.column_names.index(name), name, column), root / EPISODES_META)


def test_a_length_smaller_than_the_shared_data_file_holds_is_an_error_not_a_truncated_episode(tmp_path: Path) -> None:
    """DROID fixture, episode 0 has 40 frames in the shared file: a length of 30 was read as 30 frames, silently."""
    root = tmp_path / "droid"
    shutil.copytree(DROID, root)
    set_meta_column(root, "length", 0, 30)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(root)
    message = one_line_error(excinfo)
    assert "episode 0: meta/episodes/chunk-000/file-000.parquet says length 30" in message
    assert "data/chunk-000/file-000.parquet holds 40 frame(s) of it" in message
    assert "rebuild meta/" in message and "--data.bad_episodes skip" in message
    with pytest.warns(UserWarning, match="skipping 1 episode"):
        ds = LeRobotDataset(root, skip())
    assert ds.episode_indices == [1, 2] and "says length 30" in ds.skipped[f"0 of {root}"]
    np.testing.assert_array_equal(ds.states(1), np.load(DROID.parent / "truth.npz")["ep1_state7"])


def test_a_length_of_our_writer_that_disagrees_with_its_file_is_named(ds_root: Path) -> None:
    set_meta_column(ds_root, "length", 1, LENGTH - 2)
    with pytest.raises(DatasetError, match=r"episode 1: .*says length 6 .*file-001\.parquet holds 8 frame\(s\) of it"):
        LeRobotDataset(ds_root)


def test_dataset_to_index_that_disagrees_with_the_length_is_named(ds_root: Path) -> None:
    set_meta_column(ds_root, "dataset_to_index", 2, 2 * LENGTH + 5)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root)
    message = one_line_error(excinfo)
    assert "episode 2: meta/episodes/chunk-000/file-000.parquet says length 8" in message
    assert "dataset_from_index 16 .. dataset_to_index 21 spans 5 frame(s)" in message and "rebuild meta/" in message


def test_total_frames_that_disagrees_with_the_episodes_is_named(ds_root: Path) -> None:
    set_info(ds_root, total_frames=3 * LENGTH + 1)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root)
    message = one_line_error(excinfo)
    assert "info.json: field 'total_frames' is 25 but the episodes of meta/episodes hold 24 frame(s)" in message
    assert "rebuild meta/" in message
    with pytest.warns(UserWarning, match="'total_frames' is 25"):
        assert len(LeRobotDataset(ds_root, skip())) == 3 * LENGTH


def test_a_v21_length_smaller_than_its_episode_file_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "v21"
    shutil.copytree(DROID.parents[1] / "lerobot_v21_mini" / "dataset", root)
    path = root / "meta" / "episodes.jsonl"
    path.write_text(path.read_text().replace('"length": 6', '"length": 4', 1))
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(root)
    message = one_line_error(excinfo)
    assert (
        "episode 0: meta/episodes.jsonl says length 4 but" in message
        and "episode_000000.parquet holds 6 frame(s)" in message
    )
    with pytest.warns(UserWarning, match="skipping 1 episode"):
        assert LeRobotDataset(root, skip()).episode_indices == [1]


def test_a_null_length_in_meta_episodes_is_named(ds_root: Path) -> None:
    table = pq.read_table(ds_root / EPISODES_META)
    column = pa.array([None, LENGTH, LENGTH], table.schema.field("length").type)
    pq.write_table(table.set_column(table.column_names.index("length"), "length", column), ds_root / EPISODES_META)
    with pytest.raises(
        DatasetError, match=r"file-000\.parquet, row 0 \(episode_index 0\): length is None, not a whole number"
    ):
        LeRobotDataset(ds_root)


# ------------------------------------------------------------------------ 2. truncated files


def test_truncated_data_file_is_named_or_skipped(ds_root: Path) -> None:
    truncate(ds_root / "data" / "chunk-000" / "file-001.parquet")
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root)
    message = one_line_error(excinfo)
    assert (
        "episode 1:" in message
        and "file-001.parquet is not a readable parquet file" in message
        and "truncated" in message
    )
    with pytest.warns(UserWarning, match="skipping 1"):
        ds = LeRobotDataset(ds_root, skip())
    assert ds.episode_indices == [0, 2] and "not a readable parquet file" in ds.skipped[f"1 of {ds_root}"]
    ds.episode(0), ds.episode(2)


def test_data_file_truncated_after_opening_is_an_episode_error(ds_root: Path) -> None:
    ds = LeRobotDataset(ds_root)
    source = LeRobotEpisodes(ds_root, camera="exterior_image_1_left", sample_fps=4)
    truncate(ds_root / "data" / "chunk-000" / "file-002.parquet")
    with pytest.raises(
        DatasetError, match=r"episode 2 \(.*file-002\.parquet\): .*not a readable parquet file.*bad_episodes skip"
    ):
        ds.episode(2)
    # Training gets an EpisodeError naming the episode, which bad_episodes skip skips and counts.
    with pytest.raises(EpisodeError, match=r"episode 2 of .*not a readable parquet file"):
        source.load(2)
    skipped: list[SkippedEpisode] = []
    assert len(list(usable_episodes(source, 7, skip_bad=True, skipped=skipped, desc="test"))) == 2
    assert [s.name for s in skipped] == [f"2 of {ds_root}"]


def test_truncated_episode_metadata_is_named_with_the_fix(ds_root: Path) -> None:
    truncate(ds_root / EPISODES_META)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root, skip())  # nothing to skip: which episodes exist is unknown
    message = one_line_error(excinfo)
    assert "meta/episodes/chunk-000/file-000.parquet is not a readable parquet file" in message
    assert "rebuild meta/" in message and "jepa-mpc collect" in message


def test_broken_info_json_is_named(ds_root: Path) -> None:
    path = ds_root / "meta" / "info.json"
    path.write_text(path.read_text()[:100])
    with pytest.raises(DatasetError, match=r"info\.json: not valid JSON"):
        LeRobotDataset(ds_root)


# ------------------------------------------------------------------------------------ fps


@pytest.mark.parametrize("fps", [0, -4, 2.5, "4"])
def test_fps_that_is_not_a_positive_whole_number_is_named(ds_root: Path, fps) -> None:
    set_info(ds_root, fps=fps)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root)
    message = one_line_error(excinfo)
    assert f"info.json: field 'fps' is {fps!r}, not a positive whole number" in message
    assert "advance 0.25 s per frame = 4 fps" in message  # the fix: the rate the timestamps say


def test_fps_that_disagrees_with_the_timestamps_is_named_not_blamed_on_short_episodes(ds_root: Path) -> None:
    set_info(ds_root, fps=30)
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root)
    message = one_line_error(excinfo)
    assert "field 'fps' is 30 but the data disagrees" in message and "= 4 fps" in message
    with pytest.raises(DatasetError, match="field 'fps' is 30"):  # even when skipping bad episodes
        LeRobotEpisodes(ds_root, camera="exterior_image_1_left", sample_fps=4, skip_bad=True)


def test_one_episode_whose_timestamps_disagree_is_named(ds_root: Path) -> None:
    path = ds_root / "data" / "chunk-000" / "file-002.parquet"
    set_column(path, "timestamp", np.arange(LENGTH, dtype=np.float32) / 10)
    ds = LeRobotDataset(ds_root)
    with pytest.raises(
        DatasetError, match=r"episode 2 \(.*\): its timestamps advance 0\.1 s per frame = 10 fps, not 1/4 s"
    ):
        ds.episode(2)


def test_fps_below_the_training_clock_is_refused(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path / "slow", fps=2, cameras=CAMERAS)
    writer.write_episode(0, **episode(0))
    writer.finalize()
    LeRobotDataset(tmp_path / "slow")  # a valid dataset...
    with pytest.raises(
        DatasetError, match=r"fps 2 is below the training clock data\.sample_fps 4.*--data\.sample_fps 2"
    ):
        LeRobotEpisodes(tmp_path / "slow", camera="exterior_image_1_left", sample_fps=4)  # ...but not on a 4 fps clock


# ------------------------------------------------------------------- 3. NaN in observation.state


def test_nan_in_observation_state_is_named(ds_root: Path) -> None:
    path = ds_root / "data" / "chunk-000" / "file-001.parquet"
    values = (
        pq.read_table(path).column("observation.state").combine_chunks().flatten().to_numpy().reshape(LENGTH, 8).copy()
    )
    values[3, 2] = np.inf
    set_column(path, "observation.state", values)
    ds = LeRobotDataset(ds_root)
    with pytest.raises(
        DatasetError, match=r"episode 1 \(.*file-001\.parquet\): NaN/inf in observation\.state at frame\(s\) \[3\]"
    ):
        ds.episode(1)
    ds.episode(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = LeRobotEpisodes(ds_root, camera="exterior_image_1_left", sample_fps=4)
    with pytest.raises(EpisodeError, match="observation.state"):
        source.load(1)


# ------------------------------------------------------------------ 4. which features are the state


def test_a_joint_observation_state_is_not_taken_for_a_pose(tmp_path: Path) -> None:
    root = tmp_path / "droid"
    shutil.copytree(DROID, root)
    info = json.loads((root / "meta" / "info.json").read_text())
    del info["features"]["observation.state.cartesian_position"]
    (root / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(root)
    message = one_line_error(excinfo)
    assert "state feature 'observation.state.cartesian_position' is missing" in message
    assert "observation.state is [8] (DROID's joint positions + gripper), not a pose" in message
    assert "LeRobotReaderConfig.cartesian_state" in message


# ------------------------------------------------------------------------- through the command


def test_train_command_reports_a_missing_meta_row_in_one_line_or_skips_it(ds_root: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    drop_meta_row(ds_root, 1)
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "OMP_NUM_THREADS": "1"}
    argv = [
        sys.executable,
        "-m",
        "jepa_mpc",
        "train",
        "--data",
        str(ds_root),
        "--encoder",
        str(tmp_path / "no_encoder.pt"),
        "--out",
        str(tmp_path / "run"),
        "--data.camera",
        "exterior_image_1_left",
    ]
    strict = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    lines = strict.stderr.strip().splitlines()
    assert strict.returncode == 2 and len(lines) == 1 and "Traceback" not in strict.stderr, strict.stderr
    assert "episode 1: 8 frame(s) in" in lines[0] and "no row in meta/episodes" in lines[0]
    # With skip, opening the data passes (with a warning) and the run stops later, at the missing encoder file.
    lenient = subprocess.run(
        argv + ["--data.bad_episodes", "skip"], capture_output=True, text=True, timeout=120, env=env
    )
    assert (
        lenient.returncode == 2
        and "skipping 1 episode" in lenient.stderr
        and "no_encoder.pt" in lenient.stderr.splitlines()[-1]
    )
    # The warning is the command's, one line per skipped episode, without Python's file, line and source line.
    assert f"jepa-mpc train: warning: {ds_root}: skipping 1 episode(s)" in lenient.stderr
    assert "UserWarning" not in lenient.stderr and "warnings.warn(" not in lenient.stderr
    assert len(lenient.stderr.strip().splitlines()) == 3, lenient.stderr  # the warning, its episode, the error


def test_a_missing_video_names_the_episode_and_the_fix(ds_root: Path) -> None:
    video = LeRobotDataset(ds_root).video_file(1)
    video.unlink()
    with pytest.raises(DatasetError) as excinfo:
        LeRobotDataset(ds_root).episode(1).frames["exterior_image_1_left"]
    message = one_line_error(excinfo)
    assert f"episode 1, camera observation.images.exterior_1_left: video file {video} does not exist" in message
    assert "re-collect or repair it, or leave it out with --data.bad_episodes skip" in message
