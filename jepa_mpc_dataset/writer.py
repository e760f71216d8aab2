"""The LeRobot v3.0 dataset writer for sim collection, and the per-feature stats it stores.
Layout and feature names: jepa_mpc_dataset/format.py; the reader: jepa_mpc_dataset/reader.py.

Our writer puts each episode in its own data file and its own mp4 per camera (chunk = index // 1000,
file = index % 1000): several processes can then write distinct episodes at once, each episode
appears atomically (its data parquet is renamed into place last), and collection can resume.
``finalize()`` builds ``meta/`` from the files on disk.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from jepa_mpc_dataset.format import (
    ACTION_AXES,
    CARTESIAN_STATE,
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    COMMANDED_ACTION,
    DATA_PATH,
    EPISODE_SEED,
    EPISODES_PATH,
    GRIPPER_STATE,
    JOINT_AXES,
    JOINT_STATE,
    LANGUAGE,
    OBSERVATION_STATE,
    POSE_AXES,
    SUCCESS,
    VIDEO_PATH,
    WORDS_IN_SCENE,
    DatasetError,
    camera_feature_name,
)
from jepa_mpc_dataset.video import VIDEO_PIX_FMT, encode_video, video_encoder
from jepa_mpc_foundation.atomic_files import atomic_path, write_text_atomic
from jepa_mpc_foundation.pose import ACTION_DIM, STATE_DIM, apply_action

STATS_QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
# Per-episode stats travel inside each episode's data parquet (schema metadata, which LeRobot ignores)
# so that finalize() never has to decode video.
EPISODE_STATS_KEY = b"jepa_mpc.episode_stats"


# ------------------------------------------------------------------------------------------- stats


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of one feature over frames: ``values`` [N, D] -> min/max/mean/std/q01..q99 [D], count [1].

    As LeRobot stores them: min/max keep the values' dtype (bool stays bool, integers int64, floats
    float64); mean, std and the quantiles are float64.
    """
    v = values.astype(np.float64)
    exact = values if values.dtype.kind in "biu" else v
    if exact.dtype.kind in "iu":
        exact = exact.astype(np.int64)
    stats = {"min": exact.min(0), "max": exact.max(0), "mean": v.mean(0), "std": v.std(0), "count": np.array([len(v)])}
    for name, q in STATS_QUANTILES.items():
        stats[name] = np.quantile(v, q, axis=0)
    return stats


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot-style per-channel stats of pixel values in [0, 1], each [3, 1, 1] (count [1] = frames),
    over every pixel of ``frames`` uint8 [T, H, W, 3].

    Computed from 256-bin histograms: exact (quantiles as np.quantile's linear interpolation) and
    ~50x faster than sorting the pixels.
    """
    histograms = np.stack([np.bincount(frames[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)
    levels = np.arange(256) / 255.0
    total = histograms[0].sum()
    mean = histograms @ levels / total
    std = np.sqrt(np.maximum(histograms @ levels**2 / total - mean**2, 0.0))
    present = histograms > 0
    stats = {
        "min": np.array([levels[row.argmax()] for row in present]),
        "max": np.array([levels[255 - row[::-1].argmax()] for row in present]),
        "mean": mean,
        "std": std,
    }
    cumulative = histograms.cumsum(1)
    for name, q in STATS_QUANTILES.items():
        position = q * (total - 1)
        below, above = math.floor(position), math.ceil(position)
        # The k-th smallest pixel (0-based) is the first level whose cumulative count exceeds k.
        low = np.array([levels[np.searchsorted(row, below, side="right")] for row in cumulative])
        high = np.array([levels[np.searchsorted(row, above, side="right")] for row in cumulative])
        stats[name] = low + (position - below) * (high - low)
    stats = {k: v.reshape(3, 1, 1) for k, v in stats.items()}
    return stats | {"count": np.array([len(frames)])}


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode stats of one feature: exact count/min/max/mean/std (pooled variance);
    quantiles as the count-weighted mean of the episodes' quantiles (LeRobot's approximation)."""
    counts = np.array([float(s["count"][0]) for s in per_episode])
    weights = (counts / counts.sum()).reshape(-1, *([1] * np.ndim(per_episode[0]["mean"])))
    means = np.stack([s["mean"] for s in per_episode])
    mean = (weights * means).sum(0)
    variance = (weights * (np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2)).sum(0)
    out = {
        "min": np.min(np.stack([s["min"] for s in per_episode]), 0),
        "max": np.max(np.stack([s["max"] for s in per_episode]), 0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": np.array([int(counts.sum())]),
    }
    for name in STATS_QUANTILES:
        out[name] = (weights * np.stack([s[name] for s in per_episode])).sum(0)
    return out


def _stats_to_json(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: np.asarray(v).tolist() for k, v in stats.items()}


def _stats_from_json(stats: dict[str, list]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in stats.items()}


# ------------------------------------------------------------------------------------------ writer


def _fixed_list(values: np.ndarray) -> pa.Array:
    """float32 [T, D] -> an Arrow fixed_size_list<float>[D] column (LeRobot's layout for vectors)."""
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), values.shape[1])


def _scalar(dtype: str) -> dict:
    return {"dtype": dtype, "shape": [1], "names": None}


def _vector(axes: list[str]) -> dict:
    return {"dtype": "float32", "shape": [len(axes)], "names": {"axes": axes}}


def _hf_features(features: dict) -> dict:
    """The ``huggingface`` parquet metadata LeRobot/`datasets` write, for the non-video features."""
    out = {}
    for key, feature in features.items():
        if feature["dtype"] == "video":
            continue
        value = {"dtype": feature["dtype"], "_type": "Value"}
        size = feature["shape"][0]
        out[key] = value if size == 1 else {"feature": value, "length": size, "_type": "List"}
    return {"info": {"features": out}}


class LeRobotDatasetWriter:
    """Writes episodes of a sim task as a LeRobot v3.0 dataset, one episode at a time.

    ``cameras`` maps camera names (DROID's RLDS names, e.g. ``exterior_image_1_left``, are mapped to
    DROID-LeRobot feature keys by :func:`camera_feature_name`) to frame sizes (H, W), both even.
    ``record_joints`` (default): episodes carry the 7 arm joint positions, written as DROID writes
    them: ``observation.state.joint_position`` [7] and ``observation.state`` [8] = joints + gripper.
    Without joints (generated data) neither feature is written; the 7-D pose is always written under
    ``observation.state.cartesian_position`` + ``observation.state.gripper_position``.
    ``record_words_in_scene``: episodes carry the words naming what is on the table (``words_in_scene``,
    the language tasks'), written as one space-separated string per frame.
    Constructing on an existing root re-opens it (the fps, cameras and robot_type must match), so an
    interrupted collection resumes: skip indices for which :meth:`has_episode` is True.
    Processes may write distinct episode indices concurrently; call :meth:`finalize` once they are done.
    """

    def __init__(
        self,
        root: str | Path,
        fps: int,
        cameras: dict[str, tuple[int, int]],
        robot_type: str = "franka_sim",
        record_joints: bool = True,
        record_words_in_scene: bool = False,
    ):
        if not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps must be a positive int, got {fps!r}")
        if not cameras:
            raise ValueError("cameras must name at least one camera, got an empty dict")
        self.root = Path(root)
        self.fps = fps
        self.robot_type = robot_type
        self.record_joints = bool(record_joints)
        self.record_words_in_scene = bool(record_words_in_scene)
        self.cameras = {name: camera_feature_name(name) for name in cameras}
        if len(set(self.cameras.values())) != len(self.cameras):
            raise ValueError(f"cameras {list(cameras)} map to duplicate feature keys {list(self.cameras.values())}")
        self.frame_sizes = {}
        for name, size in cameras.items():
            height, width = (int(s) for s in size)
            if height <= 0 or width <= 0 or height % 2 or width % 2:
                raise ValueError(f"camera {name!r}: frame size must be positive and even (H.264 yuv420p), got {size}")
            self.frame_sizes[name] = (height, width)
        self.features = self._features()
        self._open_or_create()

    def _features(self) -> dict:
        features = {
            "is_first": _scalar("bool"),
            "is_last": _scalar("bool"),
            LANGUAGE: {"dtype": "string", "shape": [1], "names": None},
            GRIPPER_STATE: _vector(["gripper"]),
            CARTESIAN_STATE: _vector(POSE_AXES),
        }
        if self.record_words_in_scene:
            features[WORDS_IN_SCENE] = {"dtype": "string", "shape": [1], "names": None}
        if self.record_joints:  # as DROID: observation.state = the 7 joint positions + the gripper position
            features[JOINT_STATE] = _vector(JOINT_AXES)
            features[OBSERVATION_STATE] = _vector(JOINT_AXES + ["gripper"])
        for name, feature_key in self.cameras.items():
            height, width = self.frame_sizes[name]
            features[feature_key] = {
                "dtype": "video",
                "shape": [height, width, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": height,
                    "video.width": width,
                    "video.codec": video_encoder()[1],
                    "video.pix_fmt": VIDEO_PIX_FMT,
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        features |= {
            "action.gripper_position": _vector(["gripper"]),  # commanded absolute gripper, as DROID
            "action.cartesian_position": _vector(POSE_AXES),  # commanded absolute pose, as DROID
            COMMANDED_ACTION: _vector(ACTION_AXES),  # the commanded 7-D delta action
            SUCCESS: _scalar("bool"),
            EPISODE_SEED: _scalar("int64"),
            "timestamp": _scalar("float32"),
            "frame_index": _scalar("int64"),
            "episode_index": _scalar("int64"),
            "index": _scalar("int64"),
            "task_index": _scalar("int64"),
        }
        return features

    def _info(self, total_episodes: int, total_frames: int, total_tasks: int) -> dict:
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": total_episodes,
            "total_frames": total_frames,
            "total_tasks": total_tasks,
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {"train": f"0:{total_episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": self.features,
        }

    def _open_or_create(self) -> None:
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            # Concurrent writers may all get here; each writes the same text atomically.
            write_text_atomic(info_path, json.dumps(self._info(0, 0, 0), indent=4))
            return
        existing = json.loads(info_path.read_text())
        mine = self._info(0, 0, 0)
        for key in ("codebase_version", "fps", "robot_type", "features"):
            if existing.get(key) != mine[key]:
                raise ValueError(
                    f"{info_path}: the existing dataset's {key!r} ({str(existing.get(key))[:200]}) differs from this "
                    f"writer's ({str(mine[key])[:200]}); write to a new root or pass the same "
                    "fps/cameras/robot_type/record_joints/record_words_in_scene (a dataset of an older jepa_mpc, whose "
                    "observation.state is the 7-D pose or whose language episodes lack words_in_scene, cannot be "
                    "extended: collect into a new root)"
                )

    def data_path(self, index: int) -> Path:
        chunk, file = divmod(index, CHUNKS_SIZE)
        return self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)

    def video_path(self, index: int, camera: str) -> Path:
        chunk, file = divmod(index, CHUNKS_SIZE)
        return self.root / VIDEO_PATH.format(video_key=camera_feature_name(camera), chunk_index=chunk, file_index=file)

    def has_episode(self, index: int) -> bool:
        """True once episode ``index`` is completely written (its data parquet is committed last)."""
        return self.data_path(index).is_file()

    def _validate(self, index, frames, state, action, task, success, seed, joint_position, words_in_scene) -> int:
        where = f"episode {index}"
        if not isinstance(index, (int, np.integer)) or index < 0:
            raise DatasetError(f"{where}: the episode index must be an int >= 0")
        if set(frames) != set(self.cameras):
            raise DatasetError(
                f"{where}: frames has cameras {sorted(frames)}, the writer expects {sorted(self.cameras)}"
            )
        state, action = np.asarray(state), np.asarray(action)
        if state.ndim != 2 or state.shape[1] != STATE_DIM or state.shape[0] < 1:
            raise DatasetError(
                f"{where}: state must be float [T, {STATE_DIM}] with T >= 1, got shape {list(state.shape)}"
            )
        length = state.shape[0]
        if action.shape != (length, ACTION_DIM):
            raise DatasetError(
                f"{where}: action must be [T, {ACTION_DIM}] = [{length}, {ACTION_DIM}] like state, "
                f"got {list(action.shape)}"
            )
        named = [("state", state), ("action", action)]
        if self.record_joints:
            if joint_position is None:
                raise DatasetError(
                    f"{where}: joint_position [T, 7] is required (this writer records DROID's observation.state = "
                    "joints + gripper); pass it, or make the writer with record_joints=False for data without joints"
                )
            joint_position = np.asarray(joint_position)
            if joint_position.shape != (length, 7):
                raise DatasetError(
                    f"{where}: joint_position must be [T, 7] = [{length}, 7] like state, "
                    f"got {list(joint_position.shape)}"
                )
            named.append(("joint_position", joint_position))
        elif joint_position is not None:
            raise DatasetError(f"{where}: joint_position given, but the writer was made with record_joints=False")
        for name, values in named:
            bad = np.flatnonzero(~np.isfinite(values).all(1))
            if bad.size:
                raise DatasetError(f"{where}: {name} has NaN/inf at frame(s) {bad[:10].tolist()}")
        for camera, video in frames.items():
            expected = (length, *self.frame_sizes[camera], 3)
            if not isinstance(video, np.ndarray) or video.dtype != np.uint8 or video.shape != expected:
                got = f"{type(video).__name__} {getattr(video, 'dtype', '')} {list(getattr(video, 'shape', []))}"
                raise DatasetError(
                    f"{where}: frames[{camera!r}] must be uint8 {list(expected)} [T, H, W, 3], got {got}"
                )
        if not isinstance(task, str) or not task:
            raise DatasetError(f"{where}: task must be a non-empty string, got {task!r}")
        if not isinstance(success, (bool, np.bool_)):
            raise DatasetError(f"{where}: success must be a bool, got {success!r}")
        if not isinstance(seed, (int, np.integer)):
            raise DatasetError(f"{where}: seed must be an int, got {seed!r}")
        if self.record_words_in_scene != (words_in_scene is not None):
            raise DatasetError(
                f"{where}: words_in_scene must be given iff the writer was made with record_words_in_scene=True"
            )
        if words_in_scene is not None and not all(isinstance(w, str) and w.isalpha() for w in words_in_scene):
            raise DatasetError(f"{where}: words_in_scene must be words of letters, got {words_in_scene!r}")
        return length

    def write_episode(
        self,
        index: int,
        frames: dict[str, np.ndarray],
        state: np.ndarray,
        action: np.ndarray,
        task: str,
        success: bool,
        seed: int,
        joint_position: np.ndarray | None = None,
        words_in_scene: tuple[str, ...] | None = None,
    ) -> None:
        """Write episode ``index``: ``frames`` {camera: uint8 [T, H, W, 3]}, ``state`` [T, 7] (pose convention
        of jepa_mpc_foundation/pose.py), ``action`` [T, 7] the commanded delta actions (last row usually zeros),
        ``joint_position`` [T, 7] the arm joint positions in rad (required iff ``record_joints``),
        ``words_in_scene`` the words naming what is on the table (required iff ``record_words_in_scene``).

        Atomic: the videos are committed first, the data parquet last; on any failure the files of this
        call are removed, so the episode is either complete or absent. Writing an index that is already
        complete is an error (:meth:`has_episode` tells; delete its files first to write it again).
        """
        length = self._validate(index, frames, state, action, task, success, seed, joint_position, words_in_scene)
        index = int(index)
        if self.has_episode(index):
            raise FileExistsError(
                f"episode {index} is already complete at {self.data_path(index)}: skip it "
                "(has_episode), or delete its data file and videos to write it again"
            )
        state = np.asarray(state, dtype=np.float32)
        action = np.asarray(action, dtype=np.float32)
        committed: list[Path] = []
        try:
            stats = {}
            for camera, video in frames.items():
                target = self.video_path(index, camera)
                committed.append(target)  # before the rename: an exception just after it still removes the file
                with atomic_path(target) as tmp:
                    encode_video(tmp, video, self.fps)
                stats[self.cameras[camera]] = image_stats(video)
            joints = None if joint_position is None else np.asarray(joint_position, dtype=np.float32)
            table = self._episode_table(index, length, state, action, task, bool(success), int(seed), joints)
            if words_in_scene is not None:
                words = pa.array([" ".join(words_in_scene)] * length, pa.string())
                table = table.add_column(table.schema.get_field_index(CARTESIAN_STATE) + 1, WORDS_IN_SCENE, words)
            stats |= self._numeric_column_stats(table)
            metadata = {
                b"huggingface": json.dumps(_hf_features(self.features)).encode(),
                EPISODE_STATS_KEY: json.dumps({k: _stats_to_json(v) for k, v in stats.items()}).encode(),
            }
            with atomic_path(self.data_path(index)) as tmp:
                pq.write_table(table.replace_schema_metadata(metadata), tmp)
        except BaseException:
            # The parquet's rename is the commit: an exception that lands after it (a worker's SIGTERM
            # is raised at whatever line runs next) must leave the complete episode standing.
            if not self.has_episode(index):
                for path in committed:
                    path.unlink(missing_ok=True)
            raise

    def _numeric_column_stats(self, table: pa.Table) -> dict[str, dict[str, np.ndarray]]:
        """Stats of the numeric and bool per-frame columns (LeRobot gives bool features stats too);
        index/task_index/episode_index wait for finalize()."""
        stats = {}
        for key in table.column_names:
            if key in ("index", "task_index", "episode_index") or self.features[key]["dtype"] not in (
                "float32",
                "int64",
                "bool",
            ):
                continue
            column = table.column(key).combine_chunks()
            values = column.flatten() if pa.types.is_fixed_size_list(column.type) else column
            stats[key] = feature_stats(values.to_numpy(zero_copy_only=False).reshape(table.num_rows, -1))
        return stats

    def _episode_table(self, index, length, state, action, task, success, seed, joints) -> pa.Table:
        commanded_pose = (
            apply_action(torch.from_numpy(state).double(), torch.from_numpy(action).double()).float().numpy()
        )
        frame_index = np.arange(length, dtype=np.int64)
        columns = {
            "is_first": pa.array(frame_index == 0),
            "is_last": pa.array(frame_index == length - 1),
            LANGUAGE: pa.array([task] * length, pa.string()),
            GRIPPER_STATE: pa.array(state[:, 6], pa.float32()),
            CARTESIAN_STATE: _fixed_list(state[:, :6]),
        }
        if joints is not None:
            columns[JOINT_STATE] = _fixed_list(joints)
            columns[OBSERVATION_STATE] = _fixed_list(np.concatenate([joints, state[:, 6:7]], axis=1))
        columns |= {
            "action.gripper_position": pa.array(commanded_pose[:, 6], pa.float32()),
            "action.cartesian_position": _fixed_list(commanded_pose[:, :6]),
            COMMANDED_ACTION: _fixed_list(action),
            SUCCESS: pa.array([success] * length),
            EPISODE_SEED: pa.array([seed] * length, pa.int64()),
            "timestamp": pa.array(frame_index / self.fps, pa.float32()),
            "frame_index": pa.array(frame_index),
            "episode_index": pa.array(np.full(length, index, np.int64)),
            # Global frame index and task index depend on the other episodes: -1 until finalize().
            "index": pa.array(np.full(length, -1, np.int64)),
            "task_index": pa.array(np.full(length, -1, np.int64)),
        }
        return pa.table(columns)

    def finalize(self) -> dict:
        """(Re)write meta/ from the episodes on disk; returns the new info.json content.

        Numbers the episodes' frames globally (``index``) and their tasks (``task_index``) in episode
        order, rewriting a data file only where those columns change. Run it when no writer is running.
        """
        episode_files = sorted(
            (int(pq.read_table(p, columns=["episode_index"]).column(0)[0].as_py()), p)
            for p in self.root.glob("data/chunk-*/file-*.parquet")
        )
        if not episode_files:
            raise DatasetError(f"{self.root}: no episodes to finalize (no data/chunk-*/file-*.parquet)")
        task_index: dict[str, int] = {}
        rows, all_stats = [], []
        offset = 0
        for episode, path in tqdm(episode_files, desc="finalize: episodes", disable=None, leave=False):
            row, stats = self._finalize_episode(episode, path, offset, task_index)
            rows.append(row)
            all_stats.append(stats)
            offset += row["length"]
        if [e for e, _ in episode_files] != list(range(len(episode_files))):
            warnings.warn(
                f"{self.root}: episode indices are not 0..{len(episode_files) - 1} (missing: "
                f"{sorted(set(range(episode_files[-1][0] + 1)) - {e for e, _ in episode_files})[:10]}); "
                "our reader handles this, LeRobot's own loader expects contiguous indices",
                stacklevel=2,
            )
        with atomic_path(self.root / EPISODES_PATH) as tmp:
            pq.write_table(pa.Table.from_pylist(rows), tmp)
        self._write_tasks(task_index)
        dataset_stats = {k: _stats_to_json(aggregate_stats([s[k] for s in all_stats])) for k in all_stats[0]}
        write_text_atomic(self.root / "meta" / "stats.json", json.dumps(dataset_stats, indent=4))
        info = self._info(len(rows), offset, len(task_index))
        write_text_atomic(self.root / "meta" / "info.json", json.dumps(info, indent=4))
        return info

    def _finalize_episode(self, episode: int, path: Path, offset: int, task_index: dict[str, int]) -> tuple[dict, dict]:
        """Number one episode's frames from ``offset`` and its task (adding new tasks to ``task_index``);
        return its meta/episodes row and its per-feature stats."""
        if path != self.data_path(episode):
            raise DatasetError(f"episode {episode}: its data is in {path}, expected {self.data_path(episode)}")
        table = pq.read_table(path)
        if EPISODE_STATS_KEY not in (table.schema.metadata or {}):
            raise DatasetError(f"episode {episode}: {path} was not written by LeRobotDatasetWriter (no episode stats)")
        length = table.num_rows
        task = table.column(LANGUAGE)[0].as_py()
        task_index.setdefault(task, len(task_index))
        global_index = np.arange(offset, offset + length, dtype=np.int64)
        task_column = np.full(length, task_index[task], np.int64)
        stats = {k: _stats_from_json(v) for k, v in json.loads(table.schema.metadata[EPISODE_STATS_KEY]).items()}
        stats["index"] = feature_stats(global_index[:, None])
        stats["task_index"] = feature_stats(task_column[:, None])
        stats["episode_index"] = feature_stats(np.full((length, 1), episode))
        if not (
            np.array_equal(table.column("index").to_numpy(), global_index)
            and np.array_equal(table.column("task_index").to_numpy(), task_column)
        ):
            metadata = table.schema.metadata
            table = table.set_column(table.column_names.index("index"), "index", pa.array(global_index))
            table = table.set_column(table.column_names.index("task_index"), "task_index", pa.array(task_column))
            with atomic_path(path) as tmp:
                pq.write_table(table.replace_schema_metadata(metadata), tmp)
        chunk, file = divmod(episode, CHUNKS_SIZE)
        row = {
            "episode_index": episode,
            "tasks": [task],
            "length": length,
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": offset,
            "dataset_to_index": offset + length,
        }
        for camera, feature_key in self.cameras.items():
            video = self.video_path(episode, camera)
            if not video.is_file():
                raise DatasetError(f"episode {episode}: video file {video} is missing; delete {path} and re-collect it")
            row |= {
                f"videos/{feature_key}/chunk_index": chunk,
                f"videos/{feature_key}/file_index": file,
                f"videos/{feature_key}/from_timestamp": 0.0,
                f"videos/{feature_key}/to_timestamp": length / self.fps,
            }
        row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        row |= {f"stats/{k}/{name}": np.asarray(v).tolist() for k, s in stats.items() for name, v in s.items()}
        return row, stats

    def _write_tasks(self, task_index: dict[str, int]) -> None:
        """meta/tasks.parquet as LeRobot writes it with pandas: the task string is the frame's index."""
        table = pa.table(
            {
                "task_index": pa.array(list(task_index.values()), pa.int64()),
                "__index_level_0__": pa.array(list(task_index), pa.large_string()),
            }
        )
        pandas_metadata = {
            "index_columns": ["__index_level_0__"],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "str",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": [
                {
                    "name": "task_index",
                    "field_name": "task_index",
                    "pandas_type": "int64",
                    "numpy_type": "int64",
                    "metadata": None,
                },
                {
                    "name": None,
                    "field_name": "__index_level_0__",
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": None,
                },
            ],
            "attributes": {},
            "creator": {"library": "pyarrow", "version": pa.__version__},
        }
        with atomic_path(self.root / "meta" / "tasks.parquet") as tmp:
            pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(pandas_metadata).encode()}), tmp)
