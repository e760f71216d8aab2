"""An episode's per-frame rows, read from its data parquet and checked, and the arrays made from them: the
7-D state and our writer's commanded action. Bad data of one episode is found here, when that episode is
read, and raises :class:`~jepa_mpc_dataset.format.DatasetError` naming the episode and the file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jepa_mpc_dataset.format import (
    COMMANDED_ACTION,
    EPISODE_SEED,
    LANGUAGE,
    OBSERVATION_STATE,
    WORDS_IN_SCENE,
    DatasetError,
)
from jepa_mpc_dataset.read_errors import EPISODE_FIX, read_parquet, unreadable
from jepa_mpc_dataset.reader_config import LeRobotReaderConfig
from jepa_mpc_foundation.pose import ACTION_DIM


@lru_cache(maxsize=4)
def _read_data_file(path: Path, modified_ns: int, columns: tuple[str, ...]) -> pa.Table:
    # DROID keeps many episodes per data file: keep the last few files' columns in memory. The file's
    # modification time is part of the key, so a file rewritten on disk is read again.
    return read_parquet(path, list(columns))


def timestamp_mismatch(timestamps: np.ndarray, fps: float) -> str | None:
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


def file_starts(episodes: dict[int, dict]) -> dict[Path, int]:
    """{data file: the global index of its first row}, to find an episode's rows in its file."""
    starts: dict[Path, int] = {}
    for row in episodes.values():
        key = row["_data_file"]
        starts[key] = min(starts.get(key, row["dataset_from_index"]), row["dataset_from_index"])
    return starts


def columns_to_read(
    config: LeRobotReaderConfig, pose_feature: str | None, features: dict
) -> tuple[list[str], list[str]]:
    """(wanted, optional) data columns: a file without a wanted one is bad; optional ones are read where present.

    The state columns are ``pose_feature`` if set, else ``config``'s cartesian + gripper features; our commanded
    ``action`` is read only where info.json says it is the 7-D action (DROID's ``action`` is joint-space)."""
    cfg = config
    state_columns = [OBSERVATION_STATE] if pose_feature else [cfg.cartesian_state, cfg.gripper_state]
    wanted = ["episode_index", "frame_index", *state_columns]
    optional = [cfg.success, LANGUAGE, EPISODE_SEED, "timestamp", OBSERVATION_STATE, WORDS_IN_SCENE]
    if features.get(COMMANDED_ACTION, {}).get("shape") == [ACTION_DIM]:
        optional.append(COMMANDED_ACTION)
    return wanted, optional


def read_episode_rows(
    path: Path, episode_index: int, row: dict, file_start: int, wanted: list[str], optional: list[str], fps: int | None
) -> dict[str, np.ndarray]:
    """The per-frame columns of episode ``episode_index`` in data file ``path``, as numpy arrays [T] or [T, D].

    ``row`` is the episode's metadata row (``length`` T, ``dataset_from_index``), ``file_start`` the global
    index of the file's first row; ``wanted`` / ``optional`` as :func:`columns_to_read` gives them. ``fps``:
    check that ``timestamp`` advances 1/fps s per frame (None while fps itself is checked at open).

    Raises DatasetError naming the episode and the file for a missing or unreadable file, a missing wanted
    column, another number of rows than T, a null, ``frame_index`` not 0..T-1, or timestamps off the fps.
    """
    length = int(row["length"])
    where = f"episode {episode_index} ({path})"
    if not path.is_file():
        raise DatasetError(f"{where}: data file is missing; {EPISODE_FIX}")
    try:
        available = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(f"{where}: {unreadable(path, error)}; {EPISODE_FIX}") from error
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
    offset = int(row["dataset_from_index"]) - file_start
    sliced = table.slice(max(offset, 0), length)
    if (
        offset >= 0
        and sliced.num_rows == length
        and pc.all(pc.equal(sliced.column("episode_index"), episode_index)).as_py()
    ):
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
    if fps is not None and "timestamp" in columns:
        mismatch = timestamp_mismatch(columns["timestamp"], fps)
        if mismatch:
            raise DatasetError(f"{where}: {mismatch} (meta/info.json field 'fps' is {fps}); {EPISODE_FIX}")
    return columns


def state_from_columns(
    columns: dict[str, np.ndarray], where: str, config: LeRobotReaderConfig, pose_feature: str | None
) -> np.ndarray:
    """float32 [T, 7] state (x, y, z in m, roll, pitch, yaw in rad, gripper closedness) from ``pose_feature``'s
    column if set, else ``config``'s cartesian [T, 6] + gripper [T, 1] columns.

    Raises DatasetError prefixed by ``where`` for wrong shapes or NaN/inf in the state or in
    ``observation.state`` (checked even when the state comes from the pose columns: it is the same recording).
    """
    cfg = config
    if pose_feature:
        state = columns[pose_feature].reshape(len(columns["frame_index"]), -1)
        if state.shape[1:] != (7,):
            raise DatasetError(f"{where}: {pose_feature} {list(state.shape)} is not [T, 7]; {EPISODE_FIX}")
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
            raise DatasetError(
                f"{where}: NaN/inf in {OBSERVATION_STATE} at frame(s) {bad[:10].tolist()}; {EPISODE_FIX}"
            )
    return state


def commanded_from_columns(columns: dict[str, np.ndarray], where: str) -> np.ndarray | None:
    """float32 [T, 7] commanded delta action our writer stored, or None where it was not read (DROID).

    Raises DatasetError prefixed by ``where`` for NaN/inf in it."""
    commanded = columns.get(COMMANDED_ACTION)
    if commanded is None:
        return None
    commanded = commanded.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(commanded).all(1))
    if bad.size:
        raise DatasetError(f"{where}: NaN/inf in {COMMANDED_ACTION} at frame(s) {bad[:10].tolist()}; {EPISODE_FIX}")
    return commanded
