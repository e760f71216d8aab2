"""An episode's camera frames: decoded from its span of the camera's mp4 (jepa_mpc_dataset/video.py) and checked
against info.json's shape, and the lazy per-camera mapping :class:`~jepa_mpc_dataset.reader.Episode` carries, so that
reading an episode's states never pays for decoding video it does not use."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jepa_mpc_dataset.format import DatasetError
from jepa_mpc_dataset.read_errors import EPISODE_FIX
from jepa_mpc_dataset.video import VideoDecodeError, decode_video_span

if TYPE_CHECKING:  # the reader imports this module; the type alone goes the other way
    from jepa_mpc_dataset.reader import LeRobotDataset


def decode_episode_frames(
    path: Path,
    episode_index: int,
    camera: str,
    from_timestamp: float,
    length: int,
    fps: int,
    feature: dict,
    frame_indices: np.ndarray | None,
) -> np.ndarray:
    """uint8 [K, H, W, 3] frames of an episode (all ``length``, or ``frame_indices``) from the mp4 ``path``,
    where its frame k is shown at ``from_timestamp + k / fps`` s.

    Raises DatasetError naming the episode and camera when the video lacks frames of the span or cannot be
    decoded, and naming the file when frames are not the ``shape`` [H, W, 3] of ``feature`` (the camera's
    entry in info.json's features).
    """
    try:
        frames = decode_video_span(path, from_timestamp, length, fps, frame_indices)
    except VideoDecodeError as error:
        raise DatasetError(f"episode {episode_index}, camera {camera}: {error}; {EPISODE_FIX}") from error
    expected = list(feature["shape"])
    if list(frames.shape[1:]) != expected:
        raise DatasetError(
            f"episode {episode_index}: video {path} decodes to frames {list(frames.shape[1:])}, info.json says "
            f"{expected}; {EPISODE_FIX}"
        )
    return frames


class LazyFrames(Mapping):
    """{camera feature key: uint8 [T, H, W, 3]}, each camera decoded on first access and kept.

    Keys may be given in either spelling :meth:`LeRobotDataset.resolve_camera` takes; an unknown camera
    raises DatasetError, and so does a video that does not decode (:meth:`LeRobotDataset.decode_frames`).
    """

    def __init__(self, dataset: LeRobotDataset, episode_index: int):
        self._dataset, self._episode_index = dataset, episode_index
        self._decoded: dict[str, np.ndarray] = {}

    def __getitem__(self, camera: str) -> np.ndarray:
        camera = self._dataset.resolve_camera(camera)
        if camera not in self._decoded:
            self._decoded[camera] = self._dataset.decode_frames(self._episode_index, camera)
        return self._decoded[camera]

    def select(self, camera: str, frame_indices: np.ndarray) -> np.ndarray:
        """uint8 [K, H, W, 3] frames ``frame_indices`` (sorted, within the episode) of a camera: from the decoded
        episode if there is one, else decoding only up to the last of them."""
        camera = self._dataset.resolve_camera(camera)
        if camera in self._decoded:
            return self._decoded[camera][frame_indices]
        return self._dataset.decode_frames(self._episode_index, camera, frame_indices)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dataset.camera_names)

    def __len__(self) -> int:
        return len(self._dataset.camera_names)
