"""Trajectory datasets on disk in the LeRobot v3.0 format: a reader that reads our sim datasets and
DROID converted to LeRobot with the same code, episode by episode. Training samples its clips from
these episodes (worldmodel/training/episodes.py, clips.py).

The writer is dataset/writer.py and what both sides share (layout, feature names, camera-name
mapping, DatasetError) is dataset/format.py; ``from dataset import ...`` gives the public names of all three.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from dataset.format import (
    CARTESIAN_STATE,
    COMMANDED_ACTION,
    DATA_PATH,
    EPISODE_SEED,
    GRIPPER_STATE,
    LANGUAGE,
    SUCCESS,
    VIDEO_PATH,
    DatasetError,
    camera_feature_name,
)
from dataset.video import VideoDecodeError, decode_video_span
from foundation.pose import ACTION_DIM, actions_from_states

__all__ = ["Episode", "LeRobotDataset", "LeRobotReaderConfig"]


# ----------------------------------------------------------------------------------------- records


@dataclass
class Episode:
    """One episode as the reader returns it.

    ``frames`` maps camera feature keys to uint8 [T, H, W, 3]; each camera is decoded on first access.
    ``action`` [T, 7] is always recomputed from ``state`` (action t takes state t to t+1, composed
    rotations; last row zeros), the same for DROID and sim data. ``commanded_action`` is the 7-D action
    our writer stored (None for DROID, whose ``action`` is joint-space).
    """

    index: int
    frames: Mapping[str, np.ndarray]
    state: np.ndarray  # float32 [T, 7]
    action: np.ndarray  # float32 [T, 7]
    task: str
    success: bool | None
    length: int
    commanded_action: np.ndarray | None = None  # float32 [T, 7]
    seed: int | None = None


@dataclass
class LeRobotReaderConfig:
    """Which features of a LeRobot dataset make the 7-D state and the training video, and the rate
    training samples frames at. Defaults read DROID-in-LeRobot and our sim datasets (which use DROID's names)."""

    camera: str = "observation.images.exterior_1_left"
    cartesian_state: str = CARTESIAN_STATE  # [6]: x, y, z, extrinsic xyz Euler
    gripper_state: str = GRIPPER_STATE  # [1]: closedness in [0, 1]
    success: str = SUCCESS  # per-frame bool column; episodes without it read success=None
    sample_fps: int = 4  # training samples every ceil(fps / sample_fps)-th source frame (frame_step)

    def __post_init__(self) -> None:
        if self.sample_fps <= 0:
            raise ValueError(f"LeRobotReaderConfig.sample_fps must be > 0, got {self.sample_fps}")
        for name in ("camera", "cartesian_state", "gripper_state"):
            if not getattr(self, name):
                raise ValueError(f"LeRobotReaderConfig.{name} must name a feature, got {getattr(self, name)!r}")


# ------------------------------------------------------------------------------------------ reader


class _LazyFrames(Mapping):
    """{camera feature key: uint8 [T, H, W, 3]}, each camera decoded on first access and kept."""

    def __init__(self, dataset: "LeRobotDataset", episode_index: int):
        self._dataset, self._episode_index = dataset, episode_index
        self._decoded: dict[str, np.ndarray] = {}

    def __getitem__(self, camera: str) -> np.ndarray:
        camera = self._dataset.resolve_camera(camera)
        if camera not in self._decoded:
            self._decoded[camera] = self._dataset.decode_frames(self._episode_index, camera)
        return self._decoded[camera]

    def select(self, camera: str, frame_indices: np.ndarray) -> np.ndarray:
        """Frames ``frame_indices`` of a camera, from the decoded episode if there is one, else decoding only up to them."""
        camera = self._dataset.resolve_camera(camera)
        if camera in self._decoded:
            return self._decoded[camera][frame_indices]
        return self._dataset.decode_frames(self._episode_index, camera, frame_indices)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dataset.camera_names)

    def __len__(self) -> int:
        return len(self._dataset.camera_names)


@lru_cache(maxsize=4)
def _read_data_file(path: Path, modified_ns: int, columns: tuple[str, ...]) -> pa.Table:
    # DROID keeps many episodes per data file: keep the last few files' columns in memory. The file's
    # modification time is part of the key, so a file rewritten on disk is read again.
    return pq.read_table(path, columns=list(columns))


class LeRobotDataset:
    """Reads a LeRobot v3.0 dataset (ours, or DROID converted by LeRobot), episode by episode.

    Episodes are addressed by their ``episode_index``. ``len(ds)`` is the number of frames.
    """

    def __init__(self, root: str | Path, config: LeRobotReaderConfig | None = None):
        self.root = Path(root)
        self.config = config or LeRobotReaderConfig()
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise FileNotFoundError(
                f"{info_path} does not exist: point at a LeRobot dataset root (with meta/, data/, videos/), "
                "or run LeRobotDatasetWriter.finalize() on a dataset still being collected"
            )
        self.info = json.loads(info_path.read_text())
        version = str(self.info.get("codebase_version", ""))
        if not version.startswith("v3"):
            raise DatasetError(
                f"{info_path}: codebase_version {version!r} is not supported (v3.x only); convert the dataset with "
                "LeRobot's convert_dataset_v21_to_v30 script"
            )
        self.fps = int(self.info["fps"])
        self.features = self.info["features"]
        self.camera_names = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self._check_features()
        self._episodes = self._read_episodes_meta()
        self.episode_indices = sorted(self._episodes)
        # The global index of each data file's first row, to find an episode's rows in its file.
        self._file_start: dict[tuple[int, int], int] = {}
        for row in self._episodes.values():
            key = (row["data/chunk_index"], row["data/file_index"])
            self._file_start[key] = min(self._file_start.get(key, row["dataset_from_index"]), row["dataset_from_index"])

    def _check_features(self) -> None:
        cfg, features, where = self.config, self.features, self.root / "meta" / "info.json"
        for name, size in ((cfg.cartesian_state, 6), (cfg.gripper_state, 1)):
            if name not in features:
                raise DatasetError(f"{where}: state feature {name!r} is missing; features are {sorted(features)}")
            if list(features[name]["shape"]) != [size]:
                raise DatasetError(f"{where}: state feature {name!r} has shape {features[name]['shape']}, expected [{size}]")
        self.resolve_camera(cfg.camera)

    def resolve_camera(self, camera: str | None) -> str:
        """A camera feature key or writer-side name (``exterior_image_1_left``) -> this dataset's video key."""
        key = camera_feature_name(camera or self.config.camera)
        if key not in self.camera_names:
            raise DatasetError(f"{self.root}: camera {camera!r} ({key}) is not a video feature; cameras are {self.camera_names}")
        return key

    def _read_episodes_meta(self) -> dict[int, dict]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(
                f"{self.root / 'meta' / 'episodes'}: no episode metadata files (chunk-*/file-*.parquet); "
                "for a dataset being collected, run LeRobotDatasetWriter.finalize() first"
            )
        episodes = {}
        for path in files:
            columns = [c for c in pq.read_schema(path).names if not c.startswith("stats/")]
            for row in pq.read_table(path, columns=columns).to_pylist():
                episodes[int(row["episode_index"])] = row
        return episodes

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def __len__(self) -> int:
        return sum(int(row["length"]) for row in self._episodes.values())

    def _meta(self, episode_index: int) -> dict:
        if episode_index not in self._episodes:
            raise KeyError(
                f"{self.root}: no episode {episode_index}; the dataset has {self.num_episodes} episodes "
                f"({self.episode_indices[0]}..{self.episode_indices[-1]})"
            )
        return self._episodes[episode_index]

    def episode_length(self, episode_index: int) -> int:
        return int(self._meta(episode_index)["length"])

    def data_file(self, episode_index: int) -> Path:
        row = self._meta(episode_index)
        template = self.info.get("data_path", DATA_PATH)
        return self.root / template.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])

    def video_file(self, episode_index: int, camera: str | None = None) -> Path:
        camera, row = self.resolve_camera(camera), self._meta(episode_index)
        template = self.info.get("video_path", VIDEO_PATH)
        return self.root / template.format(
            video_key=camera, chunk_index=row[f"videos/{camera}/chunk_index"], file_index=row[f"videos/{camera}/file_index"]
        )

    def _episode_rows(self, episode_index: int) -> tuple[dict[str, np.ndarray], Path]:
        """The episode's per-frame columns as numpy arrays, validated; and the data file they came from."""
        cfg, path, length = self.config, self.data_file(episode_index), self.episode_length(episode_index)
        where = f"episode {episode_index} ({path})"
        if not path.is_file():
            raise DatasetError(f"{where}: data file is missing")
        wanted = ["episode_index", "frame_index", cfg.cartesian_state, cfg.gripper_state]
        optional = [cfg.success, LANGUAGE, EPISODE_SEED]
        if self.features.get(COMMANDED_ACTION, {}).get("shape") == [ACTION_DIM]:
            optional.append(COMMANDED_ACTION)
        available = set(pq.read_schema(path).names)
        missing = [c for c in wanted if c not in available]
        if missing:
            raise DatasetError(f"{where}: columns {missing} are missing")
        table = _read_data_file(path, path.stat().st_mtime_ns, tuple(wanted + [c for c in optional if c in available]))
        # Episodes lie in a file in order, one after another: slice at the episode's offset in its file,
        # and fall back to filtering on episode_index if that slice is not the episode.
        row = self._meta(episode_index)
        offset = int(row["dataset_from_index"]) - self._file_start[(row["data/chunk_index"], row["data/file_index"])]
        sliced = table.slice(max(offset, 0), length)
        if offset >= 0 and sliced.num_rows == length and pc.all(pc.equal(sliced.column("episode_index"), episode_index)).as_py():
            table = sliced
        else:
            table = table.filter(pc.equal(table.column("episode_index"), episode_index)).sort_by("frame_index")
        if table.num_rows != length:
            raise DatasetError(f"{where}: has {table.num_rows} rows, meta/episodes says length {length}")
        columns = {}
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            if column.null_count:
                raise DatasetError(f"{where}: column {name!r} has {column.null_count} null value(s)")
            if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
                columns[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(length, -1)
            else:
                columns[name] = column.to_numpy(zero_copy_only=False)
        if not np.array_equal(columns["frame_index"], np.arange(length)):
            raise DatasetError(f"{where}: frame_index is not 0..{length - 1}")
        return columns, path

    def states(self, episode_index: int) -> np.ndarray:
        """float32 [T, 7] 7-D states of an episode; NaN/inf or wrong shapes raise DatasetError naming it."""
        columns, path = self._episode_rows(episode_index)
        return self._state_from(columns, episode_index, path)

    def _state_from(self, columns: dict[str, np.ndarray], episode_index: int, path: Path) -> np.ndarray:
        cfg = self.config
        cartesian = columns[cfg.cartesian_state]
        gripper = columns[cfg.gripper_state].reshape(len(cartesian), -1)
        if cartesian.shape[1:] != (6,) or gripper.shape[1:] != (1,):
            raise DatasetError(
                f"episode {episode_index} ({path}): {cfg.cartesian_state} {list(cartesian.shape)} / {cfg.gripper_state} "
                f"{list(gripper.shape)} are not [T, 6] / [T, 1]"
            )
        state = np.concatenate([cartesian, gripper], axis=1).astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(state).all(1))
        if bad.size:
            raise DatasetError(f"episode {episode_index} ({path}): NaN/inf in the state at frame(s) {bad[:10].tolist()}")
        return state

    def episode(self, episode_index: int) -> Episode:
        """The episode's states, actions, task and success; frames decode on first access per camera."""
        columns, path = self._episode_rows(episode_index)
        state = self._state_from(columns, episode_index, path)
        action = np.zeros_like(state)
        if len(state) > 1:
            action[:-1] = actions_from_states(torch.from_numpy(state).double()).float().numpy()
        tasks = self._meta(episode_index).get("tasks") or []
        task = tasks[0] if tasks else (str(columns[LANGUAGE][0]) if LANGUAGE in columns else "")
        commanded = columns.get(COMMANDED_ACTION)
        if commanded is not None:
            commanded = commanded.astype(np.float32)
            bad = np.flatnonzero(~np.isfinite(commanded).all(1))
            if bad.size:
                raise DatasetError(f"episode {episode_index} ({path}): NaN/inf in {COMMANDED_ACTION} at frame(s) {bad[:10].tolist()}")
        return Episode(
            index=episode_index,
            frames=_LazyFrames(self, episode_index),
            state=state,
            action=action,
            task=task,
            success=bool(columns[self.config.success][0]) if self.config.success in columns else None,
            length=len(state),
            commanded_action=commanded,
            seed=int(columns[EPISODE_SEED][0]) if EPISODE_SEED in columns else None,
        )

    def decode_frames(self, episode_index: int, camera: str | None = None, frame_indices: np.ndarray | None = None) -> np.ndarray:
        """uint8 [K, H, W, 3] frames of an episode (all, or ``frame_indices``), checked against info.json's shape."""
        camera = self.resolve_camera(camera)
        row, path = self._meta(episode_index), self.video_file(episode_index, camera)
        try:
            frames = decode_video_span(
                path, float(row[f"videos/{camera}/from_timestamp"]), int(row["length"]), self.fps, frame_indices
            )
        except VideoDecodeError as error:
            raise DatasetError(f"episode {episode_index}, camera {camera}: {error}") from error
        expected = list(self.features[camera]["shape"])
        if list(frames.shape[1:]) != expected:
            raise DatasetError(
                f"episode {episode_index}: video {path} decodes to frames {list(frames.shape[1:])}, info.json says {expected}"
            )
        return frames

    def frame_step(self) -> int:
        """Source frames between sampled frames: ceil(fps / sample_fps) (15 fps -> 4; 4 fps -> 1)."""
        return math.ceil(self.fps / self.config.sample_fps)
