"""Trajectory datasets on disk in the LeRobot v3.0 format (and LeRobot's older v2.1 layout): a reader
that reads our sim datasets and DROID converted to LeRobot with the same code, episode by episode.
Training samples its clips from these episodes (worldmodel/training/episodes.py, clips.py).

Nothing is dropped without a word: at open the data files are cross-checked against the episode
metadata (an episode with frames but no metadata row, an episode whose ``length`` or
``dataset_from_index .. dataset_to_index`` is not the number of its frames in its data file,
``total_frames`` not their sum, an unreadable data file) and ``fps`` against
the timestamps; such problems raise :class:`~dataset.format.DatasetError` naming the file and the
fix, or with ``LeRobotReaderConfig(bad_episodes="skip")`` are warned about and listed in
``LeRobotDataset.skipped``. Bad data of one episode raises when that episode is read.

The writer is dataset/writer.py and what both sides share (layout, feature names, camera-name
mapping, DatasetError) is dataset/format.py; ``from dataset import ...`` gives the public names of all three.
"""
from __future__ import annotations

import json
import logging
import math
import warnings
from collections import defaultdict
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
    OBSERVATION_STATE,
    POSE_AXES,
    SUCCESS,
    V21_CODEBASE_VERSION,
    V21_DATA_PATH,
    V21_EPISODES_PATH,
    V21_VIDEO_PATH,
    VIDEO_PATH,
    DatasetError,
    camera_feature_name,
)
from dataset.video import VideoDecodeError, decode_video_span
from foundation.pose import ACTION_DIM, actions_from_states

__all__ = ["Episode", "LeRobotDataset", "LeRobotReaderConfig"]

log = logging.getLogger(__name__)

# What to do about an episode whose data is bad (appended to per-episode errors).
EPISODE_FIX = "re-collect or repair it, or leave it out with --data.bad_episodes skip"
# What to do about stale or broken episode metadata.
META_FIX = (
    "rebuild meta/ (our datasets: rerun `jepa-mpc collect` with the same --out, which re-runs finalize, or "
    "LeRobotDatasetWriter(...).finalize()) or re-download the dataset"
)


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
    # Problems found at open (frames without a metadata row, unreadable data files): "error" raises
    # DatasetError, "skip" warns and lists them in LeRobotDataset.skipped (training's data.bad_episodes).
    bad_episodes: str = "error"

    def __post_init__(self) -> None:
        if self.sample_fps <= 0:
            raise ValueError(f"LeRobotReaderConfig.sample_fps must be > 0, got {self.sample_fps}")
        if self.bad_episodes not in ("error", "skip"):
            raise ValueError(f"LeRobotReaderConfig.bad_episodes must be 'error' or 'skip', got {self.bad_episodes!r}")
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


def _unreadable(path: Path, error: BaseException) -> str:
    """The first line of a pyarrow/OS error about ``path``, for a message that names the file."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{path} is not a readable parquet file ({type(error).__name__}: {first[:200]}): it is truncated or corrupt"


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """pq.read_table, with errors (truncated file, not parquet) as DatasetError naming the file."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(_unreadable(path, error)) from error


@lru_cache(maxsize=4)
def _read_data_file(path: Path, modified_ns: int, columns: tuple[str, ...]) -> pa.Table:
    # DROID keeps many episodes per data file: keep the last few files' columns in memory. The file's
    # modification time is part of the key, so a file rewritten on disk is read again.
    return _read_parquet(path, list(columns))


def _timestamp_mismatch(timestamps: np.ndarray, fps: float) -> str | None:
    """None if ``timestamps`` [T] (s) advance 1 / fps per frame (within a quarter frame), else what they do."""
    if len(timestamps) < 2:
        return None
    timestamps = timestamps.astype(np.float64)
    expected = timestamps[0] + np.arange(len(timestamps)) / fps
    if np.abs(timestamps - expected).max() <= 0.25 / fps:
        return None
    step = float(np.median(np.diff(timestamps)))
    rate = f" = {1 / step:.4g} fps" if step > 0 else ""
    return f"its timestamps advance {step:.4g} s per frame{rate}, not 1/{fps:g} s"


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
        self.info = self._read_info()
        self.version = str(self.info["codebase_version"])
        self.features = self.info["features"]
        self.camera_names = [k for k, f in self.features.items() if isinstance(f, dict) and f.get("dtype") == "video"]
        self.pose_feature = self._check_features()
        self.skipped: dict[str, str] = {}
        self._episodes = self._read_episodes_meta()
        self._check_data_files()
        self.episode_indices = sorted(self._episodes)
        # The global index of each data file's first row, to find an episode's rows in its file.
        self._file_start: dict[Path, int] = {}
        for row in self._episodes.values():
            key = row["_data_file"]
            self._file_start[key] = min(self._file_start.get(key, row["dataset_from_index"]), row["dataset_from_index"])
        self.fps = self._check_fps()

    # ------------------------------------------------------------------------------ opening checks

    @property
    def _info_path(self) -> Path:
        return self.root / "meta" / "info.json"

    def _read_info(self) -> dict:
        path = self._info_path
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: point at a LeRobot dataset root (with meta/, data/, videos/), "
                "or run LeRobotDatasetWriter.finalize() on a dataset still being collected"
            )
        try:
            info = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetError(f"{path}: not valid JSON ({error}): the file is truncated or corrupt; {META_FIX}") from error
        if not isinstance(info, dict):
            raise DatasetError(f"{path}: expected a JSON object, got {type(info).__name__}; {META_FIX}")
        version = str(info.get("codebase_version", ""))
        if not (version.startswith("v3") or version == V21_CODEBASE_VERSION):
            raise DatasetError(
                f"{path}: codebase_version {version!r} is not supported (v3.x and v2.1 are): convert the dataset "
                "with LeRobot's conversion scripts (convert_dataset_v20_to_v21, then convert_dataset_v21_to_v30)"
            )
        for field in ("fps", "features"):
            if field not in info:
                raise DatasetError(f"{path}: field {field!r} is missing; {META_FIX}")
        if not isinstance(info["features"], dict):
            raise DatasetError(f"{path}: field 'features' must map feature names to their dtype and shape; {META_FIX}")
        return info

    def _check_features(self) -> str | None:
        """Which features make the 7-D state: None = cartesian + gripper; or the 7-D ``observation.state``
        of our older datasets (only when the configured features are absent). Raises DatasetError."""
        cfg, features, where = self.config, self.features, self._info_path
        legacy = features.get(OBSERVATION_STATE) or {}
        legacy_shape = list(legacy.get("shape", []))
        names = legacy.get("names")
        legacy_axes = names.get("axes") if isinstance(names, dict) else names
        legacy_is_pose = legacy_shape == [7] and legacy_axes in (None, POSE_AXES + ["gripper"])
        self.resolve_camera(cfg.camera)
        missing = [name for name in (cfg.cartesian_state, cfg.gripper_state) if name not in features]
        if not missing:
            for name, size in ((cfg.cartesian_state, 6), (cfg.gripper_state, 1)):
                if list(features[name]["shape"]) != [size]:
                    raise DatasetError(f"{where}: state feature {name!r} has shape {features[name]['shape']}, expected [{size}]")
            if legacy_is_pose:
                log.info("%s: 7-D state from %s + %s; %s [7] (the same pose in our older datasets) is not used",
                         self.root, cfg.cartesian_state, cfg.gripper_state, OBSERVATION_STATE)
            return None
        if legacy_is_pose and cfg.cartesian_state == CARTESIAN_STATE and cfg.gripper_state == GRIPPER_STATE:
            warnings.warn(
                f"{self.root}: {missing} missing; reading the 7-D state (x, y, z, roll, pitch, yaw, gripper) from "
                f"{OBSERVATION_STATE} [7], as datasets of older jepa_mpc versions hold it",
                stacklevel=3,
            )
            return OBSERVATION_STATE
        hint = ""
        if legacy_shape == [8]:
            hint = f"; {OBSERVATION_STATE} is [8] (DROID's joint positions + gripper), not a pose"
        raise DatasetError(
            f"{where}: state feature {missing[0]!r} is missing{hint}; features are {sorted(features)}: "
            "set LeRobotReaderConfig.cartesian_state / gripper_state to the dataset's pose features"
        )

    def resolve_camera(self, camera: str | None) -> str:
        """A camera feature key or writer-side name (``exterior_image_1_left``) -> this dataset's video key."""
        key = camera_feature_name(camera or self.config.camera)
        if key not in self.camera_names:
            raise DatasetError(f"{self.root}: camera {camera!r} ({key}) is not a video feature; cameras are {self.camera_names}")
        return key

    def _read_episodes_meta(self) -> dict[int, dict]:
        """{episode_index: row}: the metadata row plus ``_data_file`` (Path of the data parquet)."""
        episodes = self._read_v21_episodes() if self.version == V21_CODEBASE_VERSION else self._read_v3_episodes()
        if not episodes:
            raise DatasetError(f"{self.root}: the episode metadata lists no episode; {META_FIX}")
        return episodes

    def _read_v3_episodes(self) -> dict[int, dict]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(
                f"{self.root / 'meta' / 'episodes'}: no episode metadata files (chunk-*/file-*.parquet); "
                "for a dataset being collected, run LeRobotDatasetWriter.finalize() first"
            )
        required = ["episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index"]
        template = self.info.get("data_path", DATA_PATH)
        episodes = {}
        for path in files:
            try:
                schema = pq.read_schema(path)
            except (pa.ArrowException, OSError) as error:
                raise DatasetError(f"{_unreadable(path, error)}; {META_FIX}") from error
            missing = [c for c in required if c not in schema.names]
            if missing:
                raise DatasetError(f"{path}: columns {missing} are missing; {META_FIX}")
            columns = [c for c in schema.names if not c.startswith("stats/")]
            try:
                rows = _read_parquet(path, columns).to_pylist()
            except DatasetError as error:
                raise DatasetError(f"{error}; {META_FIX}") from error
            for number, row in enumerate(rows):
                bad = [c for c in required if isinstance(row[c], bool) or not isinstance(row[c], int) or row[c] < 0]
                if bad:
                    raise DatasetError(
                        f"{path}, row {number} (episode_index {row['episode_index']}): {bad[0]} is {row[bad[0]]!r}, not a "
                        f"whole number >= 0; {META_FIX}")
                row["_meta_file"] = path.relative_to(self.root)
                row["_data_file"] = self.root / template.format(
                    chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
                episodes[int(row["episode_index"])] = row
        return episodes

    def _read_v21_episodes(self) -> dict[int, dict]:
        path = self.root / V21_EPISODES_PATH
        if not path.is_file():
            raise DatasetError(f"{path} does not exist: a v2.1 dataset lists its episodes there; {META_FIX}")
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append({"episode_index": int(row["episode_index"]), "length": int(row["length"]),
                             "tasks": list(row.get("tasks") or [])})
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise DatasetError(f"{path}, line {number}: not an episode record ({error}); {META_FIX}") from error
        chunks_size = int(self.info.get("chunks_size", 1000))
        template = self.info.get("data_path", V21_DATA_PATH)
        episodes, offset = {}, 0
        for row in sorted(rows, key=lambda r: r["episode_index"]):
            episode = row["episode_index"]
            row |= {"dataset_from_index": offset, "dataset_to_index": offset + row["length"],
                    "_chunk": episode // chunks_size, "_meta_file": Path(V21_EPISODES_PATH)}
            row["_data_file"] = self.root / template.format(episode_chunk=row["_chunk"], episode_index=episode)
            for camera in self.camera_names:  # v2.1: every episode's video starts at 0
                row[f"videos/{camera}/from_timestamp"] = 0.0
            episodes[episode] = row
            offset += row["length"]
        return episodes

    def _check_data_files(self) -> None:
        """Cross-check the data files against the episode metadata, before any episode is read.

        Each listed episode's frames in its data file (the rows with its ``episode_index``) must number
        its ``length``, and ``dataset_to_index - dataset_from_index`` must too; frames of episodes the
        metadata does not list, and data files that cannot be read, are problems as well; so is
        ``total_frames`` of info.json disagreeing with the lengths. A data file holding one listed
        episode is checked from its footer (row count); a shared one (DROID) by reading its
        ``episode_index`` column.
        """
        meta_name = V21_EPISODES_PATH if self.version == V21_CODEBASE_VERSION else "meta/episodes"
        by_file: dict[Path, list[int]] = defaultdict(list)
        for episode, row in self._episodes.items():
            by_file[row["_data_file"]].append(episode)
        problems: list[tuple[str, str]] = []  # (episode or file, reason)
        listed_frames = sum(int(row["length"]) for row in self._episodes.values())

        def unlisted(path: Path, counts: dict[int, int]) -> None:
            for episode, count in counts.items():
                if episode not in self._episodes:
                    problems.append((str(episode), (
                        f"episode {episode}: {count} frame(s) in {path} but no row in {meta_name}: the metadata is stale "
                        f"(collection interrupted before finalize, or files added later); {META_FIX}, or leave it out "
                        "with --data.bad_episodes skip")))

        def bad_length(episode: int, reason: str) -> None:
            problems.append((str(episode), (
                f"episode {episode}: {reason}: the metadata is stale or was edited (reading it would lose or invent "
                f"frames); {META_FIX}, or leave it out with --data.bad_episodes skip")))
            del self._episodes[episode]

        def span(row: dict) -> str:
            start, stop = row.get("dataset_from_index"), row.get("dataset_to_index")
            if start is None or stop is None or int(stop) - int(start) == int(row["length"]):
                return ""
            return f"dataset_from_index {start} .. dataset_to_index {stop} spans {int(stop) - int(start)} frame(s)"

        for path, listed in sorted(by_file.items()):
            if not path.is_file():
                continue  # a missing file is named when one of its episodes is read
            try:
                num_rows = pq.read_metadata(path).num_rows
                if len(listed) == 1 and num_rows == int(self._episodes[listed[0]]["length"]):
                    counts = {listed[0]: num_rows}  # one episode, all its rows (our writer, v2.1): from the footer
                else:
                    ids, frames = np.unique(pq.read_table(path, columns=["episode_index"]).column(0).to_numpy(), return_counts=True)
                    counts = dict(zip(ids.tolist(), frames.tolist()))
            except (pa.ArrowException, OSError, KeyError) as error:
                for episode in sorted(listed):
                    problems.append((str(episode), f"episode {episode}: {_unreadable(path, error)}; {EPISODE_FIX}"))
                    del self._episodes[episode]
                continue
            unlisted(path, counts)
            for episode in sorted(listed):
                row = self._episodes[episode]
                held, spans = counts.get(episode, 0), span(row)
                if held != int(row["length"]):
                    also = f" ({spans})" if spans else ""
                    bad_length(episode, f"{row['_meta_file']} says length {row['length']}{also} but {path} holds {held} frame(s) of it")
                elif spans:
                    bad_length(episode, f"{row['_meta_file']} says length {row['length']} (as {path} holds) but {spans}")
        for path in sorted(set(self.root.glob("data/**/*.parquet")) - set(by_file)):
            try:
                ids, frames = np.unique(pq.read_table(path, columns=["episode_index"]).column(0).to_numpy(), return_counts=True)
                unlisted(path, dict(zip(ids.tolist(), frames.tolist())))
            except (pa.ArrowException, OSError, KeyError) as error:
                problems.append((str(path.relative_to(self.root)), (
                    f"{_unreadable(path, error)}, and no episode of {meta_name} points to it: delete it, or "
                    f"re-collect its episode and {META_FIX}")))
        total = self.info.get("total_frames")
        stale_total = None
        if not problems and isinstance(total, int) and not isinstance(total, bool) and total != listed_frames:
            stale_total = (f"{self._info_path}: field 'total_frames' is {total} but the episodes of {meta_name} hold "
                           f"{listed_frames} frame(s) (their lengths agree with the data files); {META_FIX}")
            if self.config.bad_episodes != "skip":
                raise DatasetError(stale_total + ", or read it as it is with --data.bad_episodes skip")
            warnings.warn(f"{stale_total}; reading the {listed_frames} frame(s) the data files hold (bad_episodes=skip)", stacklevel=3)
        if not problems:
            return
        if self.config.bad_episodes != "skip":
            more = f" (and {len(problems) - 1} more problem(s); bad_episodes=skip lists them all)" if len(problems) > 1 else ""
            raise DatasetError(f"{self.root}: {problems[0][1]}{more}")
        for label, reason in problems:
            self.skipped[f"{label} of {self.root}"] = reason
        lines = "\n".join(f"  {reason}" for _, reason in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more (LeRobotDataset.skipped lists them all)" if len(problems) > 20 else ""
        warnings.warn(f"{self.root}: skipping {len(problems)} episode(s) or file(s) (bad_episodes=skip):\n{lines}{more}", stacklevel=3)
        if not self._episodes:
            raise DatasetError(
                f"{self.root}: no readable episode is left after skipping {len(problems)} (first: {problems[0][1]})")

    def _check_fps(self) -> int:
        """``fps`` of info.json: a positive whole number that the first readable episode's timestamps agree with."""
        value, where = self.info["fps"], self._info_path
        measured = None  # (episode, data file, timestamps [T]) of the first readable episode
        for episode in self.episode_indices:
            try:
                columns, path = self._episode_rows(episode, check_timestamps=False)
            except DatasetError:
                continue  # a bad episode is named when it is read
            if "timestamp" in columns and len(columns["timestamp"]) > 1:
                measured = (episode, path, columns["timestamp"].astype(np.float64))
            break
        hint = ""
        step = float(np.median(np.diff(measured[2]))) if measured else 0.0
        if step > 0:
            hint = f" (the timestamps of episode {measured[0]} in {measured[1]} advance {step:.4g} s per frame = {1 / step:.4g} fps)"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != int(value):
            raise DatasetError(
                f"{where}: field 'fps' is {value!r}, not a positive whole number of frames per second: set it to the "
                f"rate the data was recorded at{hint}"
            )
        if measured and _timestamp_mismatch(measured[2], float(value)):
            raise DatasetError(
                f"{where}: field 'fps' is {value} but the data disagrees{hint}: set 'fps' to the rate the data was "
                "recorded at (clips would otherwise be sampled at the wrong times)"
            )
        return int(value)

    # ----------------------------------------------------------------------------------- episodes

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
        return self._meta(episode_index)["_data_file"]

    def video_file(self, episode_index: int, camera: str | None = None) -> Path:
        camera, row = self.resolve_camera(camera), self._meta(episode_index)
        if self.version == V21_CODEBASE_VERSION:
            template = self.info.get("video_path", V21_VIDEO_PATH)
            return self.root / template.format(video_key=camera, episode_chunk=row["_chunk"], episode_index=episode_index)
        template = self.info.get("video_path", VIDEO_PATH)
        try:
            chunk, file = row[f"videos/{camera}/chunk_index"], row[f"videos/{camera}/file_index"]
        except KeyError as error:
            raise DatasetError(f"episode {episode_index}: meta/episodes has no {error.args[0]!r}; {META_FIX}") from error
        return self.root / template.format(video_key=camera, chunk_index=chunk, file_index=file)

    def _episode_rows(self, episode_index: int, check_timestamps: bool = True) -> tuple[dict[str, np.ndarray], Path]:
        """The episode's per-frame columns as numpy arrays, validated; and the data file they came from.

        ``check_timestamps``: that the timestamps advance 1/fps per frame (off while fps itself is checked at open).
        """
        cfg, path, length = self.config, self.data_file(episode_index), self.episode_length(episode_index)
        where = f"episode {episode_index} ({path})"
        if not path.is_file():
            raise DatasetError(f"{where}: data file is missing; {EPISODE_FIX}")
        state_columns = [OBSERVATION_STATE] if self.pose_feature else [cfg.cartesian_state, cfg.gripper_state]
        wanted = ["episode_index", "frame_index", *state_columns]
        optional = [cfg.success, LANGUAGE, EPISODE_SEED, "timestamp", OBSERVATION_STATE]
        if self.features.get(COMMANDED_ACTION, {}).get("shape") == [ACTION_DIM]:
            optional.append(COMMANDED_ACTION)
        try:
            available = set(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as error:
            raise DatasetError(f"{where}: {_unreadable(path, error)}; {EPISODE_FIX}") from error
        missing = [c for c in wanted if c not in available]
        if missing:
            raise DatasetError(f"{where}: columns {missing} are missing; {EPISODE_FIX}")
        read = tuple(dict.fromkeys(wanted + [c for c in optional if c in available]))
        try:
            table = _read_data_file(path, path.stat().st_mtime_ns, read)
        except DatasetError as error:
            raise DatasetError(f"episode {episode_index}: {error}; {EPISODE_FIX}") from error
        # Episodes lie in a file in order, one after another: slice at the episode's offset in its file,
        # and fall back to filtering on episode_index if that slice is not the episode.
        row = self._meta(episode_index)
        offset = int(row["dataset_from_index"]) - self._file_start[path]
        sliced = table.slice(max(offset, 0), length)
        if offset >= 0 and sliced.num_rows == length and pc.all(pc.equal(sliced.column("episode_index"), episode_index)).as_py():
            table = sliced
        else:
            table = table.filter(pc.equal(table.column("episode_index"), episode_index)).sort_by("frame_index")
        if table.num_rows != length:
            raise DatasetError(f"{where}: has {table.num_rows} rows, meta/episodes says length {length}; {EPISODE_FIX}")
        columns = {}
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            if column.null_count:
                raise DatasetError(f"{where}: column {name!r} has {column.null_count} null value(s); {EPISODE_FIX}")
            if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
                columns[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(length, -1)
            else:
                columns[name] = column.to_numpy(zero_copy_only=False)
        if not np.array_equal(columns["frame_index"], np.arange(length)):
            raise DatasetError(f"{where}: frame_index is not 0..{length - 1}; {EPISODE_FIX}")
        if check_timestamps and "timestamp" in columns:
            mismatch = _timestamp_mismatch(columns["timestamp"], self.fps)
            if mismatch:
                raise DatasetError(f"{where}: {mismatch} (meta/info.json field 'fps' is {self.fps}); {EPISODE_FIX}")
        return columns, path

    def states(self, episode_index: int) -> np.ndarray:
        """float32 [T, 7] 7-D states of an episode; NaN/inf or wrong shapes raise DatasetError naming it."""
        columns, path = self._episode_rows(episode_index)
        return self._state_from(columns, episode_index, path)

    def _state_from(self, columns: dict[str, np.ndarray], episode_index: int, path: Path) -> np.ndarray:
        """float32 [T, 7] from the state columns; DatasetError for wrong shapes or NaN/inf in the state
        or in ``observation.state`` (read for the check even when the state comes from the pose columns)."""
        cfg, where = self.config, f"episode {episode_index} ({path})"
        if self.pose_feature:
            state = columns[self.pose_feature].reshape(len(columns["frame_index"]), -1)
            if state.shape[1:] != (7,):
                raise DatasetError(f"{where}: {self.pose_feature} {list(state.shape)} is not [T, 7]; {EPISODE_FIX}")
        else:
            cartesian = columns[cfg.cartesian_state]
            gripper = columns[cfg.gripper_state].reshape(len(cartesian), -1)
            if cartesian.shape[1:] != (6,) or gripper.shape[1:] != (1,):
                raise DatasetError(
                    f"{where}: {cfg.cartesian_state} {list(cartesian.shape)} / {cfg.gripper_state} "
                    f"{list(gripper.shape)} are not [T, 6] / [T, 1]; {EPISODE_FIX}"
                )
            state = np.concatenate([cartesian, gripper], axis=1)
        state = state.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(state).all(1))
        if bad.size:
            raise DatasetError(f"{where}: NaN/inf in the state at frame(s) {bad[:10].tolist()}; {EPISODE_FIX}")
        if OBSERVATION_STATE in columns:
            values = columns[OBSERVATION_STATE].reshape(len(state), -1).astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(values).all(1))
            if bad.size:
                raise DatasetError(f"{where}: NaN/inf in {OBSERVATION_STATE} at frame(s) {bad[:10].tolist()}; {EPISODE_FIX}")
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
                raise DatasetError(
                    f"episode {episode_index} ({path}): NaN/inf in {COMMANDED_ACTION} at frame(s) {bad[:10].tolist()}; {EPISODE_FIX}")
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
            raise DatasetError(f"episode {episode_index}, camera {camera}: {error}; {EPISODE_FIX}") from error
        expected = list(self.features[camera]["shape"])
        if list(frames.shape[1:]) != expected:
            raise DatasetError(
                f"episode {episode_index}: video {path} decodes to frames {list(frames.shape[1:])}, info.json says {expected}; "
                f"{EPISODE_FIX}"
            )
        return frames

    def frame_step(self) -> int:
        """Source frames between sampled frames: ceil(fps / sample_fps) (15 fps -> 4; 4 fps -> 1)."""
        return math.ceil(self.fps / self.config.sample_fps)
