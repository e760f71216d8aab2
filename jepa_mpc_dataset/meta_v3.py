"""The episode metadata of a LeRobot v3.x dataset (``meta/episodes/chunk-*/file-*.parquet``) and where each
episode's data and video lie. The layout is jepa_mpc_dataset/format.py's; v3.0 lets many episodes share one data file
and one mp4 per camera (DROID does), so each row says which file holds the episode and where in it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jepa_mpc_dataset.format import DATA_PATH, VIDEO_PATH, DatasetError
from jepa_mpc_dataset.read_errors import META_FIX, read_parquet, unreadable

# What cross-check messages call this version's episode metadata.
EPISODES_META = "meta/episodes"
# Columns without which an episode's frames cannot be found; each must be a whole number >= 0.
REQUIRED = ["episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index"]


def read_v3_episodes(root: Path, info: dict) -> dict[int, dict]:
    """{episode_index: row} from every ``meta/episodes`` parquet of the dataset at ``root``.

    A row holds the file's columns but the ``stats/...`` ones (``length`` in frames, ``dataset_from_index``
    .. ``dataset_to_index`` the global frame range, ``videos/<camera>/from_timestamp`` in s, ...), plus
    ``_meta_file`` (the metadata file, relative to ``root``) and ``_data_file`` (Path of the data parquet, from
    info.json's ``data_path`` template). Raises DatasetError naming the file for no metadata file, an unreadable
    one, missing columns, or a row whose required column is null, negative or not whole.
    """
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DatasetError(
            f"{root / 'meta' / 'episodes'}: no episode metadata files (chunk-*/file-*.parquet); "
            "for a dataset being collected, run LeRobotDatasetWriter.finalize() first"
        )
    template = info.get("data_path", DATA_PATH)
    episodes = {}
    for path in files:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as error:
            raise DatasetError(f"{unreadable(path, error)}; {META_FIX}") from error
        missing = [c for c in REQUIRED if c not in schema.names]
        if missing:
            raise DatasetError(f"{path}: columns {missing} are missing; {META_FIX}")
        # Per-episode stats are many columns the reader never uses: leave them on disk.
        columns = [c for c in schema.names if not c.startswith("stats/")]
        try:
            rows = read_parquet(path, columns).to_pylist()
        except DatasetError as error:
            raise DatasetError(f"{error}; {META_FIX}") from error
        for number, row in enumerate(rows):
            bad = [c for c in REQUIRED if isinstance(row[c], bool) or not isinstance(row[c], int) or row[c] < 0]
            if bad:
                raise DatasetError(
                    f"{path}, row {number} (episode_index {row['episode_index']}): {bad[0]} is {row[bad[0]]!r}, "
                    f"not a whole number >= 0; {META_FIX}"
                )
            row["_meta_file"] = path.relative_to(root)
            row["_data_file"] = root / template.format(
                chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
            )
            episodes[int(row["episode_index"])] = row
    return episodes


def v3_video_file(root: Path, info: dict, row: dict, episode_index: int, camera: str) -> Path:
    """The mp4 holding ``camera``'s frames of the episode whose metadata row is ``row`` (from info.json's
    ``video_path`` template). Raises DatasetError when the row lacks the camera's chunk or file index."""
    template = info.get("video_path", VIDEO_PATH)
    try:
        chunk, file = row[f"videos/{camera}/chunk_index"], row[f"videos/{camera}/file_index"]
    except KeyError as error:
        raise DatasetError(f"episode {episode_index}: meta/episodes has no {error.args[0]!r}; {META_FIX}") from error
    return root / template.format(video_key=camera, chunk_index=chunk, file_index=file)
