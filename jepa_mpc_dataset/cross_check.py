"""The checks a dataset passes at open, before any episode is read: the data files against the episode
metadata, and info.json's ``fps`` against the timestamps. They exist so that nothing is lost or invented
silently: metadata that is stale (collection interrupted before finalize, files added or edited later)
would otherwise drop episodes or read them truncated."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jepa_mpc_dataset.episode_rows import timestamp_mismatch
from jepa_mpc_dataset.format import DatasetError
from jepa_mpc_dataset.info_json import info_path
from jepa_mpc_dataset.read_errors import EPISODE_FIX, META_FIX, unreadable


def check_data_files(
    root: Path, info: dict, episodes: dict[int, dict], meta_name: str, bad_episodes: str
) -> dict[str, str]:
    """Cross-check the data files against the episode metadata ``episodes`` ({episode_index: row}, as
    :mod:`jepa_mpc_dataset.meta_v3` / :mod:`jepa_mpc_dataset.meta_v21` read it; ``meta_name`` is what messages call it).

    Each listed episode's frames in its data file (the rows with its ``episode_index``) must number
    its ``length``, and ``dataset_to_index - dataset_from_index`` must too; frames of episodes the
    metadata does not list, and data files that cannot be read, are problems as well; so is
    ``total_frames`` of info.json disagreeing with the lengths. A data file holding one listed
    episode is checked from its footer (row count); a shared one (DROID) by reading its
    ``episode_index`` column. A missing data file is left to be named when its episodes are read.

    Episodes with problems are removed from ``episodes``. With ``bad_episodes == "error"`` the first
    problem raises DatasetError (saying how many more there are); with ``"skip"`` they are warned about
    (warnings attributed to the code that opened the dataset) and returned as
    ``{"<episode or file> of <root>": reason}``. Raises DatasetError when skipping leaves no episode.
    """
    by_file: dict[Path, list[int]] = defaultdict(list)
    for episode, row in episodes.items():
        by_file[row["_data_file"]].append(episode)
    problems: list[tuple[str, str]] = []  # (episode or file, reason)
    listed_frames = sum(int(row["length"]) for row in episodes.values())

    def unlisted(path: Path, counts: dict[int, int]) -> None:
        for episode, count in counts.items():
            if episode not in episodes:
                problems.append(
                    (
                        str(episode),
                        (
                            f"episode {episode}: {count} frame(s) in {path} but no row in {meta_name}: "
                            "the metadata is stale (collection interrupted before finalize, or files added later); "
                            f"{META_FIX}, or leave it out with --data.bad_episodes skip"
                        ),
                    )
                )

    def bad_length(episode: int, reason: str) -> None:
        problems.append(
            (
                str(episode),
                (
                    f"episode {episode}: {reason}: the metadata is stale or was edited "
                    f"(reading it would lose or invent frames); {META_FIX}, "
                    "or leave it out with --data.bad_episodes skip"
                ),
            )
        )
        del episodes[episode]

    def span(row: dict) -> str:
        start, stop = row.get("dataset_from_index"), row.get("dataset_to_index")
        if start is None or stop is None or int(stop) - int(start) == int(row["length"]):
            return ""
        return f"dataset_from_index {start} .. dataset_to_index {stop} spans {int(stop) - int(start)} frame(s)"

    def episode_counts(path: Path) -> dict[int, int]:
        """{episode_index: frames} of a data file, from its ``episode_index`` column."""
        ids, frames = np.unique(pq.read_table(path, columns=["episode_index"]).column(0).to_numpy(), return_counts=True)
        return dict(zip(ids.tolist(), frames.tolist()))

    for path, listed in sorted(by_file.items()):
        if not path.is_file():
            continue  # a missing file is named when one of its episodes is read
        try:
            num_rows = pq.read_metadata(path).num_rows
            if len(listed) == 1 and num_rows == int(episodes[listed[0]]["length"]):
                counts = {listed[0]: num_rows}  # one episode, all its rows (our writer, v2.1): from the footer
            else:
                counts = episode_counts(path)
        except (pa.ArrowException, OSError, KeyError) as error:
            for episode in sorted(listed):
                problems.append((str(episode), f"episode {episode}: {unreadable(path, error)}; {EPISODE_FIX}"))
                del episodes[episode]
            continue
        unlisted(path, counts)
        for episode in sorted(listed):
            row = episodes[episode]
            held, spans = counts.get(episode, 0), span(row)
            if held != int(row["length"]):
                also = f" ({spans})" if spans else ""
                bad_length(
                    episode,
                    f"{row['_meta_file']} says length {row['length']}{also} but {path} holds {held} frame(s) of it",
                )
            elif spans:
                bad_length(episode, f"{row['_meta_file']} says length {row['length']} (as {path} holds) but {spans}")
    for path in sorted(set(root.glob("data/**/*.parquet")) - set(by_file)):
        try:
            unlisted(path, episode_counts(path))
        except (pa.ArrowException, OSError, KeyError) as error:
            problems.append(
                (
                    str(path.relative_to(root)),
                    (
                        f"{unreadable(path, error)}, and no episode of {meta_name} points to it: delete it, or "
                        f"re-collect its episode and {META_FIX}"
                    ),
                )
            )
    total = info.get("total_frames")
    stale_total = None
    if not problems and isinstance(total, int) and not isinstance(total, bool) and total != listed_frames:
        stale_total = (
            f"{info_path(root)}: field 'total_frames' is {total} but the episodes of {meta_name} hold "
            f"{listed_frames} frame(s) (their lengths agree with the data files); {META_FIX}"
        )
        if bad_episodes != "skip":
            raise DatasetError(stale_total + ", or read it as it is with --data.bad_episodes skip")
        # stacklevel 3: this function <- LeRobotDataset.__init__ <- the code that opened the dataset.
        warnings.warn(
            f"{stale_total}; reading the {listed_frames} frame(s) the data files hold (bad_episodes=skip)", stacklevel=3
        )
    if not problems:
        return {}
    if bad_episodes != "skip":
        more = ""
        if len(problems) > 1:
            more = f" (and {len(problems) - 1} more problem(s); bad_episodes=skip lists them all)"
        raise DatasetError(f"{root}: {problems[0][1]}{more}")
    skipped = {f"{label} of {root}": reason for label, reason in problems}
    lines = "\n".join(f"  {reason}" for _, reason in problems[:20])
    more = ""
    if len(problems) > 20:
        more = f"\n  ... and {len(problems) - 20} more (LeRobotDataset.skipped lists them all)"
    warnings.warn(
        f"{root}: skipping {len(problems)} episode(s) or file(s) (bad_episodes=skip):\n{lines}{more}", stacklevel=3
    )
    if not episodes:
        raise DatasetError(
            f"{root}: no readable episode is left after skipping {len(problems)} (first: {problems[0][1]})"
        )
    return skipped


def check_fps(
    root: Path,
    value: object,
    episode_indices: list[int],
    read_rows: Callable[[int], tuple[dict[str, np.ndarray], Path]],
) -> int:
    """``fps`` of info.json (``value``) as an int: a positive whole number that the timestamps (s) of the first
    episode ``read_rows`` can read agree with (within a quarter frame per frame).

    ``read_rows(episode_index)`` gives an episode's columns and data file, raising DatasetError for a bad
    episode (skipped here: it is named when it is read). Raises DatasetError naming info.json, and the rate the
    timestamps show, for a value that is not a positive whole number or that they disagree with.
    """
    where = info_path(root)
    measured = None  # (episode, data file, timestamps [T]) of the first readable episode
    for episode in episode_indices:
        try:
            columns, path = read_rows(episode)
        except DatasetError:
            continue  # a bad episode is named when it is read
        if "timestamp" in columns and len(columns["timestamp"]) > 1:
            measured = (episode, path, columns["timestamp"].astype(np.float64))
        break
    hint = ""
    step = float(np.median(np.diff(measured[2]))) if measured else 0.0
    if step > 0:
        hint = (
            f" (the timestamps of episode {measured[0]} in {measured[1]} advance {step:.4g} s per frame "
            f"= {1 / step:.4g} fps)"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != int(value):
        raise DatasetError(
            f"{where}: field 'fps' is {value!r}, not a positive whole number of frames per second: set it to the "
            f"rate the data was recorded at{hint}"
        )
    if measured and timestamp_mismatch(measured[2], float(value)):
        raise DatasetError(
            f"{where}: field 'fps' is {value} but the data disagrees{hint}: set 'fps' to the rate the data was "
            "recorded at (clips would otherwise be sampled at the wrong times)"
        )
    return int(value)
