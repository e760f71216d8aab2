"""What the reader's errors tell the user to do, and parquet reads whose errors name the file.

Every reader module ends its :class:`~jepa_mpc_dataset.format.DatasetError` messages with one of the two fixes
below, so a user sees the same advice for the same kind of problem wherever it is found.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jepa_mpc_dataset.format import DatasetError

# What to do about an episode whose data is bad (appended to per-episode errors).
EPISODE_FIX = "re-collect or repair it, or leave it out with --data.bad_episodes skip"
# What to do about stale or broken episode metadata.
META_FIX = (
    "rebuild meta/ (our datasets: rerun `jepa-mpc collect` with the same --out, which re-runs finalize, or "
    "LeRobotDatasetWriter(...).finalize()) or re-download the dataset"
)


def unreadable(path: Path, error: BaseException) -> str:
    """The first line of a pyarrow/OS error about ``path`` (at most 200 characters), as a message naming the file."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{path} is not a readable parquet file ({type(error).__name__}: {first[:200]}): it is truncated or corrupt"


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """``pq.read_table(path, columns)``; a truncated or non-parquet file raises DatasetError naming it."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(unreadable(path, error)) from error
