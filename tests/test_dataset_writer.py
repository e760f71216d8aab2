"""Our LeRobot v3.0 writer: round trip through the reader, resuming, atomic episodes, bad data."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import dataset.writer as lerobot_writer
from dataset import DatasetError, LeRobotDataset, LeRobotDatasetWriter
from foundation.pose import actions_from_states

CAMERAS = {"exterior_image_1_left": (32, 32), "wrist_image_left": (32, 32)}
FPS = 4


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def smooth_frames(length: int, phase: float) -> np.ndarray:
    """uint8 [T, 32, 32, 3] moving smooth patterns (what a renderer gives, unlike noise)."""
    yy, xx = np.mgrid[:32, :32].astype(np.float64)
    frames = [
        np.stack([128 + 100 * np.sin(xx / 6 + t / 3 + phase), 128 + 100 * np.cos(yy / 5 - t / 4), 60.0 + 10 * t + 0 * xx], -1)
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
    return dict(frames=frames, state=state, action=action, task=f"task {index % 2}", success=bool(index % 2), seed=100 + index)


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
            source["task"], source["success"], source["seed"], LENGTHS[index])
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


def test_bad_inputs_are_refused_before_writing(tmp_path: Path) -> None:
    writer = LeRobotDatasetWriter(tmp_path, fps=FPS, cameras=CAMERAS)
    episode = make_episode(3, 8)
    bad_frames = dict(episode, frames=dict(episode["frames"], wrist_image_left=episode["frames"]["wrist_image_left"][:, :16]))
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
    cartesian = table.column("observation.state.cartesian_position").combine_chunks().flatten().to_numpy().reshape(-1, 6).copy()
    cartesian[4, 0] = np.nan
    column = pa.FixedSizeListArray.from_arrays(pa.array(cartesian.reshape(-1), pa.float32()), 6)
    pq.write_table(table.set_column(table.column_names.index("observation.state.cartesian_position"),
                                    "observation.state.cartesian_position", column), path)
    ds = LeRobotDataset(tmp_path)
    with pytest.raises(DatasetError, match=r"episode 1 \(.*file-001\.parquet\): NaN/inf in the state at frame\(s\) \[4\]"):
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
    for name, expected in [("min", pixels.min(0)), ("max", pixels.max(0)), ("mean", pixels.mean(0)), ("std", pixels.std(0)),
                           ("q01", np.quantile(pixels, 0.01, axis=0)), ("q50", np.quantile(pixels, 0.5, axis=0)),
                           ("q99", np.quantile(pixels, 0.99, axis=0))]:
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
