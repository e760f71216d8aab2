"""Trajectory datasets on disk in the LeRobot v3.0 format (and LeRobot's older v2.1 layout): a reader
that reads our sim datasets and DROID converted to LeRobot with the same code, episode by episode.
Training samples its clips from these episodes (worldmodel/training/episodes.py, clips.py).

Nothing is dropped without a word: at open the data files are cross-checked against the episode
metadata (an episode with frames but no metadata row, an episode whose ``length`` or
``dataset_from_index .. dataset_to_index`` is not the number of its frames in its data file,
``total_frames`` not their sum, an unreadable data file) and ``fps`` against
the timestamps; such problems raise :class:`~jepa_mpc_dataset.format.DatasetError` naming the file and the
fix, or with ``LeRobotReaderConfig(bad_episodes="skip")`` are warned about and listed in
``LeRobotDataset.skipped``. Bad data of one episode raises when that episode is read.

This module is the reader's face: :class:`LeRobotDataset` opens a dataset and serves its episodes; each job
it does is a module of its own:

- :mod:`jepa_mpc_dataset.reader_config`: :class:`LeRobotReaderConfig`, what to read (re-exported here);
- :mod:`jepa_mpc_dataset.info_json`: ``meta/info.json``, the state features and the cameras;
- :mod:`jepa_mpc_dataset.meta_v3`, :mod:`jepa_mpc_dataset.meta_v21`: each version's episode metadata and file paths;
- :mod:`jepa_mpc_dataset.cross_check`: the data files against the metadata, and ``fps`` against the timestamps;
- :mod:`jepa_mpc_dataset.episode_rows`: an episode's rows of its data file, its state and commanded action;
- :mod:`jepa_mpc_dataset.episode_frames`: an episode's video frames, decoded on first access;
- :mod:`jepa_mpc_dataset.read_errors`: the fixes the errors name, parquet reads that name the file.

The writer is jepa_mpc_dataset/writer.py and what both sides share (layout, feature names, camera-name
mapping, DatasetError) is jepa_mpc_dataset/format.py; ``from dataset import ...`` gives the public names of all three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jepa_mpc_dataset.cross_check import check_data_files, check_fps
from jepa_mpc_dataset.episode_frames import LazyFrames, decode_episode_frames
from jepa_mpc_dataset.episode_rows import (
    columns_to_read,
    commanded_from_columns,
    file_starts,
    read_episode_rows,
    state_from_columns,
)
from jepa_mpc_dataset.format import (
    EPISODE_SEED,
    LANGUAGE,
    V21_CODEBASE_VERSION,
    V21_EPISODES_PATH,
    WORDS_IN_SCENE,
    DatasetError,
)
from jepa_mpc_dataset.info_json import read_info, resolve_camera, state_features, video_features
from jepa_mpc_dataset.meta_v3 import EPISODES_META, read_v3_episodes, v3_video_file
from jepa_mpc_dataset.meta_v21 import read_v21_episodes, v21_video_file
from jepa_mpc_dataset.read_errors import META_FIX
from jepa_mpc_dataset.reader_config import LeRobotReaderConfig
from jepa_mpc_foundation.pose import actions_from_states

__all__ = ["Episode", "LeRobotDataset", "LeRobotReaderConfig"]


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
    words_in_scene: tuple[str, ...] = ()  # the words naming what is on the table (our language tasks); () unknown


class LeRobotDataset:
    """Reads a LeRobot v3.0 dataset (ours, or DROID converted by LeRobot) or a LeRobot v2.1 one,
    episode by episode.

    Episodes are addressed by their ``episode_index``. ``len(ds)`` is the number of frames.
    ``skipped`` maps ``"<episode or file> of <root>"`` to the reason it was left out at open
    (only with ``config.bad_episodes == "skip"``; otherwise those problems raise DatasetError).
    ``pose_feature`` is ``None`` when the 7-D state comes from ``config.cartesian_state`` +
    ``config.gripper_state``, or ``"observation.state"`` for our older datasets that hold only the
    7-D pose there.

    Raises FileNotFoundError without ``meta/info.json``; DatasetError (naming the file, the field
    and the fix) for an unsupported version, a bad ``fps`` (not a positive whole number, or
    disagreeing with the timestamps), unreadable metadata, missing state features, and (unless
    skipped) episodes without metadata rows, episodes whose ``length`` (or ``dataset_to_index -
    dataset_from_index``) is not the number of their frames in their data file, ``total_frames`` not
    the sum of the lengths, or unreadable data files.
    """

    def __init__(self, root: str | Path, config: LeRobotReaderConfig | None = None):
        self.root = Path(root)
        self.config = config or LeRobotReaderConfig()
        self.info = read_info(self.root)
        self.version = str(self.info["codebase_version"])
        self.features = self.info["features"]
        self.camera_names = video_features(self.features)
        # The checks below that warn say stacklevel=3 so that the warning names the code that opened the
        # dataset: call them from here directly, not through another method.
        self.pose_feature = state_features(self.root, self.features, self.camera_names, self.config)
        v21 = self.version == V21_CODEBASE_VERSION
        if v21:
            self._episodes = read_v21_episodes(self.root, self.info, self.camera_names)
        else:
            self._episodes = read_v3_episodes(self.root, self.info)
        if not self._episodes:
            raise DatasetError(f"{self.root}: the episode metadata lists no episode; {META_FIX}")
        # Drops the episodes with problems from self._episodes (raising unless config.bad_episodes is "skip").
        self.skipped: dict[str, str] = check_data_files(
            self.root, self.info, self._episodes, V21_EPISODES_PATH if v21 else EPISODES_META, self.config.bad_episodes
        )
        self.episode_indices = sorted(self._episodes)
        self._file_start = file_starts(self._episodes)
        self.fps = check_fps(
            self.root,
            self.info["fps"],
            self.episode_indices,
            lambda episode: self._episode_rows(episode, check_timestamps=False),
        )

    def resolve_camera(self, camera: str | None) -> str:
        """A camera feature key or writer-side name (``exterior_image_1_left``; None: ``config.camera``) ->
        this dataset's video key. Raises DatasetError when the dataset has no such video feature."""
        return resolve_camera(self.root, self.camera_names, camera, self.config.camera)

    # ----------------------------------------------------------------------------------- episodes

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def __len__(self) -> int:
        return sum(int(row["length"]) for row in self._episodes.values())

    def _meta(self, episode_index: int) -> dict:
        """The episode's metadata row (as :mod:`jepa_mpc_dataset.meta_v3` / :mod:`jepa_mpc_dataset.meta_v21` read it).
        Raises KeyError naming the dataset's range for an episode it does not have."""
        if episode_index not in self._episodes:
            raise KeyError(
                f"{self.root}: no episode {episode_index}; the dataset has {self.num_episodes} episodes "
                f"({self.episode_indices[0]}..{self.episode_indices[-1]})"
            )
        return self._episodes[episode_index]

    def episode_length(self, episode_index: int) -> int:
        """The episode's number of frames T."""
        return int(self._meta(episode_index)["length"])

    def data_file(self, episode_index: int) -> Path:
        """The parquet holding the episode's rows (shared with other episodes in DROID)."""
        return self._meta(episode_index)["_data_file"]

    def video_file(self, episode_index: int, camera: str | None = None) -> Path:
        """The mp4 holding the camera's frames of the episode (``camera`` as :meth:`resolve_camera` takes it)."""
        camera, row = self.resolve_camera(camera), self._meta(episode_index)
        video_file = v21_video_file if self.version == V21_CODEBASE_VERSION else v3_video_file
        return video_file(self.root, self.info, row, episode_index, camera)

    def _episode_rows(self, episode_index: int, check_timestamps: bool = True) -> tuple[dict[str, np.ndarray], Path]:
        """The episode's per-frame columns as numpy arrays, validated; and the data file they came from.

        ``check_timestamps``: that the timestamps advance 1/fps per frame (off while fps itself is checked at open).
        """
        path, row = self.data_file(episode_index), self._meta(episode_index)
        wanted, optional = columns_to_read(self.config, self.pose_feature, self.features)
        columns = read_episode_rows(
            path, episode_index, row, self._file_start[path], wanted, optional, self.fps if check_timestamps else None
        )
        return columns, path

    def states(self, episode_index: int) -> np.ndarray:
        """float32 [T, 7] 7-D states of an episode; NaN/inf or wrong shapes raise DatasetError naming it."""
        columns, path = self._episode_rows(episode_index)
        return state_from_columns(columns, f"episode {episode_index} ({path})", self.config, self.pose_feature)

    def episode(self, episode_index: int) -> Episode:
        """The episode's states, actions, task and success; frames decode on first access per camera."""
        columns, path = self._episode_rows(episode_index)
        where = f"episode {episode_index} ({path})"
        state = state_from_columns(columns, where, self.config, self.pose_feature)
        action = np.zeros_like(state)
        if len(state) > 1:
            action[:-1] = actions_from_states(torch.from_numpy(state).double()).float().numpy()
        tasks = self._meta(episode_index).get("tasks") or []
        task = tasks[0] if tasks else (str(columns[LANGUAGE][0]) if LANGUAGE in columns else "")
        commanded = commanded_from_columns(columns, where)
        return Episode(
            index=episode_index,
            frames=LazyFrames(self, episode_index),
            state=state,
            action=action,
            task=task,
            success=bool(columns[self.config.success][0]) if self.config.success in columns else None,
            length=len(state),
            commanded_action=commanded,
            seed=int(columns[EPISODE_SEED][0]) if EPISODE_SEED in columns else None,
            words_in_scene=tuple(str(columns[WORDS_IN_SCENE][0]).split()) if WORDS_IN_SCENE in columns else (),
        )

    def decode_frames(
        self, episode_index: int, camera: str | None = None, frame_indices: np.ndarray | None = None
    ) -> np.ndarray:
        """uint8 [K, H, W, 3] frames of an episode (all, or ``frame_indices``), checked against info.json's shape.

        Raises DatasetError naming the episode and the video when frames are missing, undecodable or of another
        size."""
        camera = self.resolve_camera(camera)
        row, path = self._meta(episode_index), self.video_file(episode_index, camera)
        return decode_episode_frames(
            path,
            episode_index,
            camera,
            float(row[f"videos/{camera}/from_timestamp"]),
            int(row["length"]),
            self.fps,
            self.features[camera],
            frame_indices,
        )

    def frame_step(self) -> int:
        """Source frames between sampled frames: ceil(fps / sample_fps) (15 fps -> 4; 4 fps -> 1)."""
        return math.ceil(self.fps / self.config.sample_fps)
