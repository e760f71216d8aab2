"""Our LeRobot v3.0 writer: round trip through the reader, resuming, atomic episodes, bad data."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import jepa_mpc_dataset.writer as lerobot_writer
from jepa_mpc_dataset import DatasetError, LeRobotDataset, LeRobotDatasetWriter
from jepa_mpc_foundation.pose import actions_from_states

CAMERAS = {"exterior_image_1_left": (32, 32), "wrist_image_left": (32, 32)}
FPS = 4


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def smooth_frames(length: int, phase: float) -> np.ndarray:
    """uint8 [T, 32, 32, 3] moving smooth patterns (what a renderer gives, unlike noise)."""
    yy, xx = np.mgrid[:32, :32].astype(np.float64)
    frames = [
        np.stack(
            [128 + 100 * np.sin(xx / 6 + t / 3 + phase), 128 + 100 * np.cos(yy / 5 - t / 4), 60.0 + 10 * t + 0 * xx], -1
        )
        for t in range(length)
    ]
    return np.clip(frames, 0, 255).astype(np.uint8)


def make_episode(index: int, length: int) -> dict:
    rng = np.random.default_rng(index)
    state = np.zeros((length, 7), np.float32)
    state[:, :3] = 0.4 + 0.05 * rng.normal(size=(length, 3))
    state[:, 3] = np.pi - 0.03 + 0.02 * np.arange(length)  # roll crosses +pi, as in DROID
    state[:, 3] = (state[:, 3] + np.pi) % (2 * np.pi) - np.pi
    state[:, 4:6] = 0.1 * rng.normal(size=(length, 2))
    state[:, 6] = rng.uniform(size=length)
    action = np.zeros_like(state)
    action[:-1] = actions_from_states(torch.from_numpy(state).double()).float().numpy()
    frames = {name: smooth_frames(length, phase=index + k) for k, name in enumerate(CAMERAS)}
    joints = (0.5 * rng.normal(size=(length, 7))).astype(np.float32)
    return dict(
        frames=frames,
        state=state,
        action=action,
        task=f"task {index % 2}",
        success=bool(index % 2),
        seed=100 + index,
        joint_position=joints,
    )


LENGTHS = [12, 9, 6]  # at 4 fps an 8-frame clip spans 8 frames: episode 2 is too short


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict[int, dict]]:
    root = tmp_path_factory.mktemp("sim_dataset")
    writer = LeRobotDatasetWriter(root, fps=FPS, cameras=CAMERAS, robot_type="franka_sim")
    episodes = {i: make_episode(i, n) for i, n in enumerate(LENGTHS)}
    for index, episode in episodes.items():
        writer.write_episode(index, **episode)
    writer.finalize()
    return root, episodes


def test_round_trip(written) -> None:
    root, episodes = written
    ds = LeRobotDataset(root)
    assert ds.num_episodes == 3 and ds.fps == FPS and len(ds) == sum(LENGTHS)
    assert ds.camera_names == ["observation.images.exterior_1_left", "observation.images.wrist_left"]
    for index, source in episodes.items():
        episode = ds.episode(index)
        np.testing.assert_array_equal(episode.state, source["state"])
        np.testing.assert_array_equal(episode.commanded_action, source["action"])
        np.testing.assert_allclose(episode.action, source["action"], atol=1e-6, rtol=0)
        assert (episode.task, episode.success, episode.seed, episode.length) == (
            source["task"],
            source["success"],
            source["seed"],
            LENGTHS[index],
        )
        for name, feature in zip(CAMERAS, ds.camera_names):
            assert episode.frames[feature].shape == source["frames"][name].shape
            assert psnr(episode.frames[feature], source["frames"][name]) > 30.0


def test_meta_files_are_lerobot_v3(written) -> None:
    root, _ = written
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert (info["fps"], info["total_episodes"], info["total_frames"], info["total_tasks"]) == (FPS, 3, 27, 2)
    assert info["features"]["observation.images.wrist_left"]["info"]["video.codec"] == "h264"
    episodes = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pydict()
    assert episodes["dataset_from_index"] == [0, 12, 21] and episodes["dataset_to_index"] == [12, 21, 27]
    assert episodes["videos/observation.images.exterior_1_left/to_timestamp"] == [3.0, 2.25, 1.5]
    assert episodes["tasks"] == [["task 0"], ["task 1"], ["task 0"]]
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()
    assert tasks == {"task_index": [0, 1], "__index_level_0__": ["task 0", "task 1"]}
    data = pq.read_table(root / "data" / "chunk-000" / "file-001.parquet").to_pydict()
    assert data["index"] == list(range(12, 21)) and set(data["task_index"]) == {1}
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert stats["observation.state.cartesian_position"]["count"] == [27]
    all_x = np.concatenate([make_episode(i, n)["state"][:, 0] for i, n in enumerate(LENGTHS)])
    np.testing.assert_allclose(stats["observation.state.cartesian_position"]["mean"][0], all_x.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["observation.state.cartesian_position"]["std"][0], all_x.std(), rtol=1e-4)
    assert np.array(stats["observation.images.exterior_1_left"]["mean"]).shape == (3, 1, 1)


def test_resume(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    writer.write_episode(0, **make_episode(0, 8))
    writer.write_episode(1, **make_episode(1, 8))
    reopened = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    assert reopened.has_episode(0) and reopened.has_episode(1) and not reopened.has_episode(2)
    with pytest.raises(FileExistsError, match="episode 1"):
        reopened.write_episode(1, **make_episode(1, 8))
    reopened.write_episode(2, **make_episode(2, 8))
    reopened.finalize()
    assert LeRobotDataset(tmp_path).num_episodes == 3
    with pytest.raises(ValueError, match="'fps'"):
        LeRobotDatasetWriter(tmp_path, fps=15, cameras=CAMERAS)


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    """The second camera's encoding fails after the first camera's video was committed."""
    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    real_encode, calls = lerobot_writer.encode_video, []

    def encode_then_fail(path, frames, fps):
        calls.append(path)
        real_encode(path, frames, fps)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated interruption while writing a video")

    monkeypatch.setattr(lerobot_writer, "encode_video", encode_then_fail)
    with pytest.raises(KeyboardInterrupt):
        writer.write_episode(0, **make_episode(0, 8))
    assert not writer.has_episode(0)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == ["meta/info.json"]
    monkeypatch.setattr(lerobot_writer, "encode_video", real_encode)
    writer.write_episode(0, **make_episode(0, 8))
    assert writer.has_episode(0)


def test_an_interruption_just_after_the_commit_leaves_the_episode_whole(tmp_path: Path, monkeypatch) -> None:
    """A worker's SIGTERM raises at whatever line runs next, e.g. just after the data parquet's rename:
    the episode is then complete, and its videos must stay (a resumed collection skips it)."""
    import jepa_mpc_foundation.atomic_files as atomic_files

    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    real_replace = atomic_files.os.replace

    def replace_then_interrupt(source, target):
        real_replace(source, target)
        if str(target).endswith(".parquet"):
            raise KeyboardInterrupt("simulated SIGTERM just after the commit")

    monkeypatch.setattr(atomic_files.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        writer.write_episode(0, **make_episode(0, 8))
    monkeypatch.setattr(atomic_files.os, "replace", real_replace)
    assert writer.has_episode(0)
    writer.finalize()
    episode = LeRobotDataset(tmp_path).episode(0)
    assert episode.length == 8


def test_bad_inputs_are_refused_before_writing(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    episode = make_episode(3, 8)
    bad_frames = dict(
        episode, frames=dict(episode["frames"], wrist_image_left=episode["frames"]["wrist_image_left"][:, :16])
    )
    with pytest.raises(DatasetError, match=r"episode 3: frames\['wrist_image_left'\]"):
        writer.write_episode(3, **bad_frames)
    nan_state = episode["state"].copy()
    nan_state[5, 2] = np.nan
    with pytest.raises(DatasetError, match=r"episode 3: state has NaN/inf at frame\(s\) \[5\]"):
        writer.write_episode(3, **dict(episode, state=nan_state))
    assert not writer.has_episode(3)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["info.json"]
    with pytest.raises(ValueError, match="even"):
        LeRobotDatasetWriter(tmp_path / "odd", fps=FPS, cameras={"top": (31, 32)})


def test_bad_data_on_disk(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    for index in range(3):
        writer.write_episode(index, **make_episode(index, 9))
    writer.finalize()
    # Someone else's tool wrote a NaN into episode 1's state.
    path = writer.data_path(1)
    table = pq.read_table(path)
    cartesian = (
        table.column("observation.state.cartesian_position").combine_chunks().flatten().to_numpy().reshape(-1, 6).copy()
    )
    cartesian[4, 0] = np.nan
    column = pa.FixedSizeListArray.from_arrays(pa.array(cartesian.reshape(-1), pa.float32()), 6)
    pq.write_table(
        table.set_column(
            table.column_names.index("observation.state.cartesian_position"),
            "observation.state.cartesian_position",
            column,
        ),
        path,
    )
    ds = LeRobotDataset(tmp_path)
    with pytest.raises(
        DatasetError, match=r"episode 1 \(.*file-001\.parquet\): NaN/inf in the state at frame\(s\) \[4\]"
    ):
        ds.episode(1)
    with pytest.raises(DatasetError, match=r"episode 1 \(.*\): NaN/inf in the state"):
        ds.states(1)
    ds.states(0), ds.states(2)  # the other episodes still read
    # A missing video is named when its frames are needed.
    writer.video_path(2, "wrist_image_left").unlink()
    with pytest.raises(DatasetError, match=r"episode 2.*file-002\.mp4 does not exist"):
        ds.decode_frames(2, "wrist_image_left", np.arange(8))
    writer.data_path(0).unlink()
    with pytest.raises(DatasetError, match="episode 0.*data file is missing"):
        ds.episode(0)


def _write_in_process(root: str, indices: list[int]) -> None:
    writer = LeRobotDatasetWriter(root, fps=FPS, cameras=CAMERAS)
    for index in indices:
        writer.write_episode(index, **make_episode(index, 8))


def test_concurrent_writers(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_in_process, args=(str(tmp_path), indices)) for indices in ([0, 2], [1, 3])]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS).finalize()
    ds = LeRobotDataset(tmp_path)
    assert ds.episode_indices == [0, 1, 2, 3]
    for index in range(4):
        np.testing.assert_array_equal(ds.episode(index).state, make_episode(index, 8)["state"])


def test_image_stats_match_numpy() -> None:
    """Histogram-based image stats equal np.quantile/mean/std over all pixels."""
    frames = np.random.default_rng(0).integers(0, 256, (5, 14, 10, 3)).astype(np.uint8)
    frames[..., 2] //= 3
    stats = lerobot_writer.image_stats(frames)
    pixels = frames.reshape(-1, 3) / 255.0
    for name, expected in [
        ("min", pixels.min(0)),
        ("max", pixels.max(0)),
        ("mean", pixels.mean(0)),
        ("std", pixels.std(0)),
        ("q01", np.quantile(pixels, 0.01, axis=0)),
        ("q50", np.quantile(pixels, 0.5, axis=0)),
        ("q99", np.quantile(pixels, 0.99, axis=0)),
    ]:
        np.testing.assert_allclose(stats[name].reshape(3), expected, atol=1e-12, err_msg=name)
    assert stats["count"].tolist() == [5]


def test_unfinalized_and_broken_datasets_are_named(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    writer.write_episode(0, **make_episode(0, 8))
    with pytest.raises(DatasetError, match="finalize"):
        LeRobotDataset(tmp_path)
    writer.video_path(0, "exterior_image_1_left").unlink()
    with pytest.raises(DatasetError, match=r"episode 0: video file .*exterior_1_left.*file-000\.mp4 is missing"):
        writer.finalize()


def test_observation_state_is_droids_joints_and_gripper(written) -> None:
    """As in DROID's LeRobot port: observation.state [8] = 7 joint positions + gripper; the pose has its own columns."""
    root, episodes = written
    info = json.loads((root / "meta" / "info.json").read_text())
    droid = json.loads(
        (Path(__file__).parent / "fixtures" / "lerobot_droid_mini" / "dataset" / "meta" / "info.json").read_text()
    )
    for key in (
        "observation.state",
        "observation.state.joint_position",
        "observation.state.cartesian_position",
        "observation.state.gripper_position",
    ):
        assert info["features"][key] == droid["features"][key], key
    data = pq.read_table(root / "data" / "chunk-000" / "file-001.parquet")
    observation_state = data.column("observation.state").combine_chunks().flatten().to_numpy().reshape(-1, 8)
    source = episodes[1]
    np.testing.assert_array_equal(observation_state[:, :7], source["joint_position"])
    np.testing.assert_array_equal(observation_state[:, 7], source["state"][:, 6])
    ds = LeRobotDataset(root)
    assert ds.pose_feature is None
    np.testing.assert_array_equal(ds.episode(1).state, source["state"])


def test_joint_positions_are_required_unless_the_writer_records_none(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path / "joints", fps=FPS, cameras=CAMERAS)
    without = {k: v for k, v in make_episode(0, 8).items() if k != "joint_position"}
    with pytest.raises(DatasetError, match=r"episode 0: joint_position \[T, 7\] is required.*record_joints=False"):
        writer.write_episode(0, **without)
    with pytest.raises(DatasetError, match=r"joint_position must be \[T, 7\] = \[8, 7\]"):
        writer.write_episode(0, **dict(without, joint_position=np.zeros((8, 6))))
    plain = LeRobotDatasetWriter(tmp_path / "plain", fps=FPS, cameras=CAMERAS, record_joints=False)
    plain.write_episode(0, **without)
    plain.finalize()
    assert "observation.state" not in LeRobotDataset(tmp_path / "plain").features
    with pytest.raises(ValueError, match="record_joints"):  # re-opening with the other choice
        LeRobotDatasetWriter(tmp_path / "plain", fps=FPS, cameras=CAMERAS)


def _to_older_layout(root: Path, keep_pose_columns: bool) -> None:
    """Rewrite a dataset as older jepa_mpc versions wrote it: observation.state [7] = the 7-D pose."""
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    features = {k: v for k, v in info["features"].items() if k != "observation.state.joint_position"}
    features["observation.state"] = {
        "dtype": "float32",
        "shape": [7],
        "names": {"axes": ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]},
    }
    if not keep_pose_columns:
        for key in ("observation.state.cartesian_position", "observation.state.gripper_position"):
            del features[key]
    info_path.write_text(json.dumps(info | {"features": features}))
    for path in root.glob("data/*/*.parquet"):
        table = pq.read_table(path)
        cartesian = (
            table.column("observation.state.cartesian_position").combine_chunks().flatten().to_numpy().reshape(-1, 6)
        )
        gripper = table.column("observation.state.gripper_position").to_numpy().reshape(-1, 1)
        pose = np.concatenate([cartesian, gripper], axis=1)
        table = table.drop_columns(["observation.state", "observation.state.joint_position"])
        if not keep_pose_columns:
            table = table.drop_columns(["observation.state.cartesian_position", "observation.state.gripper_position"])
        column = pa.FixedSizeListArray.from_arrays(pa.array(pose.reshape(-1), pa.float32()), 7)
        pq.write_table(table.append_column("observation.state", column), path)


@pytest.mark.parametrize("keep_pose_columns", [True, False])
def test_older_datasets_with_the_pose_in_observation_state_still_read(
    written, tmp_path: Path, keep_pose_columns: bool, caplog
) -> None:
    root, episodes = written
    older = tmp_path / "older"
    shutil.copytree(root, older)
    _to_older_layout(older, keep_pose_columns)
    if keep_pose_columns:  # both: the pose columns are preferred, and the log says so
        with caplog.at_level("INFO", logger="jepa_mpc_dataset.reader"):
            ds = LeRobotDataset(older)
        assert ds.pose_feature is None and "observation.state [7]" in caplog.text and "is not used" in caplog.text
    else:  # only observation.state [7]: read as the pose, with a warning that says so
        with pytest.warns(UserWarning, match=r"reading the 7-D state .* from observation\.state \[7\]"):
            ds = LeRobotDataset(older)
        assert ds.pose_feature == "observation.state"
    for index, source in episodes.items():
        np.testing.assert_array_equal(ds.states(index), source["state"])


def test_stats_are_lerobots(written) -> None:
    """Like LeRobot's compute_stats: bool features have stats too; min/max keep bool and int64 types
    (the DROID fixture, written by LeRobot 0.4.4, is the reference for the meta/episodes column types)."""
    root, _ = written
    stats = json.loads((root / "meta" / "stats.json").read_text())
    info = json.loads((root / "meta" / "info.json").read_text())
    assert set(stats) == {k for k, f in info["features"].items() if f["dtype"] != "string"}
    assert stats["is_first"]["min"] == [False] and stats["is_first"]["max"] == [True]
    assert stats["is_first"]["mean"] == pytest.approx([3 / 27])
    assert stats["is_episode_successful"]["max"] == [True] and type(stats["is_episode_successful"]["min"][0]) is bool
    assert stats["index"]["min"] == [0] and stats["index"]["max"] == [26] and type(stats["index"]["max"][0]) is int
    assert type(stats["episode_seed"]["min"][0]) is int and type(stats["observation.state"]["min"][0]) is float
    ours = pq.read_schema(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    droid = pq.read_schema(
        Path(__file__).parent
        / "fixtures"
        / "lerobot_droid_mini"
        / "dataset"
        / "meta"
        / "episodes"
        / "chunk-000"
        / "file-000.parquet"
    )
    common = [name for name in droid.names if name.startswith("stats/") and name in ours.names]
    assert "stats/is_first/min" in common and "stats/index/max" in common and "stats/observation.state/min" in common
    for name in common:
        assert ours.field(name).type == droid.field(name).type, name
