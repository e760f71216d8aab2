"""The episode metadata of a LeRobot v2.1 dataset (``meta/episodes.jsonl``) and where each episode's data
and video lie: one data parquet and one mp4 per camera per episode, found from info.json's path templates.
v2.1 stores no global frame range or video span, so they are derived here in the v3.0 row's terms, and the
rest of the reader treats both versions alike."""

from __future__ import annotations

import json
from pathlib import Path

from jepa_mpc_dataset.format import V21_DATA_PATH, V21_EPISODES_PATH, V21_VIDEO_PATH, DatasetError
from jepa_mpc_dataset.read_errors import META_FIX


def read_v21_episodes(root: Path, info: dict, camera_names: list[str]) -> dict[int, dict]:
    """{episode_index: row} from ``meta/episodes.jsonl`` of the dataset at ``root``, rows shaped as v3.0's.

    A row holds ``episode_index``, ``length`` (frames), ``tasks``; ``dataset_from_index`` ..
    ``dataset_to_index`` (the global frame range, episodes counted in index order); ``_chunk`` (the episode's
    chunk, ``episode_index // chunks_size``); ``_meta_file`` and ``_data_file``; and, per camera in
    ``camera_names``, ``videos/<camera>/from_timestamp`` = 0.0 s. Raises DatasetError naming the file when
    episodes.jsonl is missing, and naming the line for one that is not an episode record.
    """
    path = root / V21_EPISODES_PATH
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: a v2.1 dataset lists its episodes there; {META_FIX}")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(
                {
                    "episode_index": int(row["episode_index"]),
                    "length": int(row["length"]),
                    "tasks": list(row.get("tasks") or []),
                }
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{path}, line {number}: not an episode record ({error}); {META_FIX}") from error
    chunks_size = int(info.get("chunks_size", 1000))
    template = info.get("data_path", V21_DATA_PATH)
    episodes, offset = {}, 0
    for row in sorted(rows, key=lambda r: r["episode_index"]):
        episode = row["episode_index"]
        row |= {
            "dataset_from_index": offset,
            "dataset_to_index": offset + row["length"],
            "_chunk": episode // chunks_size,
            "_meta_file": Path(V21_EPISODES_PATH),
        }
        row["_data_file"] = root / template.format(episode_chunk=row["_chunk"], episode_index=episode)
        for camera in camera_names:  # v2.1: every episode's video starts at 0
            row[f"videos/{camera}/from_timestamp"] = 0.0
        episodes[episode] = row
        offset += row["length"]
    return episodes


def v21_video_file(root: Path, info: dict, row: dict, episode_index: int, camera: str) -> Path:
    """The mp4 holding ``camera``'s frames of the episode whose metadata row is ``row`` (from info.json's
    ``video_path`` template)."""
    template = info.get("video_path", V21_VIDEO_PATH)
    return root / template.format(video_key=camera, episode_chunk=row["_chunk"], episode_index=episode_index)
