"""Reading LeRobot's v2.1 layout with the same reader: the fixture was written by LeRobot 0.3.3's own
writer (tests/fixtures/lerobot_v21_mini/README.md). What the files hold is read here independently
with pyarrow and compared with what our reader and training's episode loader give."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jepa_mpc_dataset import DatasetError, LeRobotDataset
from worldmodel.training.episodes import LeRobotEpisodes, usable_episodes

FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_v21_mini"
ROOT = FIXTURE / "dataset"
CAMERAS = ["observation.images.exterior_1_left", "observation.images.wrist_left"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def vectors(table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    values = column.flatten().to_numpy() if pa.types.is_fixed_size_list(column.type) else column.to_numpy()
    return values.reshape(table.num_rows, -1)


def on_disk() -> dict[int, dict]:
    """Each episode as the v2.1 files hold it: episodes.jsonl rows + the episode's own parquet."""
    episodes = {}
    for line in (ROOT / "meta" / "episodes.jsonl").read_text().splitlines():
        row = json.loads(line)
        table = pq.read_table(ROOT / "data" / "chunk-000" / f"episode_{row['episode_index']:06d}.parquet")
        episodes[row["episode_index"]] = {
            "length": row["length"],
            "tasks": row["tasks"],
            "rows": table.num_rows,
            "state": np.concatenate(
                [
                    vectors(table, "observation.state.cartesian_position"),
                    vectors(table, "observation.state.gripper_position"),
                ],
                axis=1,
            ),
            "action": vectors(table, "action"),
            "success": table.column("is_episode_successful")[0].as_py(),
            "seed": table.column("episode_seed")[0].as_py(),
        }
    return episodes


def test_metadata() -> None:
    info = json.loads((ROOT / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1"
    ds = LeRobotDataset(ROOT)
    assert (ds.version, ds.fps, ds.num_episodes, len(ds)) == ("v2.1", 4, 2, info["total_frames"])
    assert ds.camera_names == CAMERAS and ds.episode_indices == [0, 1] and not ds.skipped
    assert ds.data_file(1) == ROOT / "data" / "chunk-000" / "episode_000001.parquet"
    assert ds.video_file(1, "wrist_image_left") == ROOT / "videos" / "chunk-000" / CAMERAS[1] / "episode_000001.mp4"


@pytest.mark.parametrize("index", [0, 1])
def test_episodes_hold_what_the_files_hold(index: int) -> None:
    truth = on_disk()[index]
    episode = LeRobotDataset(ROOT).episode(index)
    assert episode.length == truth["length"] == truth["rows"]
    np.testing.assert_array_equal(episode.state, truth["state"])
    np.testing.assert_array_equal(episode.commanded_action, truth["action"])
    assert (episode.task, episode.success, episode.seed) == (truth["tasks"][0], truth["success"], truth["seed"])
    with np.load(FIXTURE / "truth.npz") as frames:
        expected = frames[f"ep{index}_exterior"]
    for camera in CAMERAS:
        assert episode.frames[camera].shape == (truth["length"], 64, 64, 3)
    assert psnr(episode.frames[CAMERAS[0]], expected) > 30.0  # AV1 at CRF 30, LeRobot's default


def test_training_episode_loader_accepts_it() -> None:
    source = LeRobotEpisodes(ROOT, camera="exterior_image_1_left", sample_fps=4)
    assert len(source) == 2 and source.frame_step == 1
    truth = on_disk()
    episodes = list(usable_episodes(source, 4, skip_bad=False, skipped=[], desc="test"))
    assert [e.length for e in episodes] == [truth[0]["length"], truth[1]["length"]]
    np.testing.assert_array_equal(episodes[1].states, truth[1]["state"])
    assert episodes[0].frames.shape == (6, 64, 64, 3) and episodes[0].frames.dtype == np.uint8


def test_episode_missing_from_episodes_jsonl_is_named(tmp_path: Path) -> None:
    root = tmp_path / "v21"
    shutil.copytree(ROOT, root)
    lines = (root / "meta" / "episodes.jsonl").read_text().splitlines()
    (root / "meta" / "episodes.jsonl").write_text(lines[0] + "\n")
    with pytest.raises(
        DatasetError, match=r"episode 1: 6 frame\(s\) in .*episode_000001\.parquet but no row in meta/episodes\.jsonl"
    ):
        LeRobotDataset(root)
