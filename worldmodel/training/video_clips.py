"""Video clips for pretraining: preprocessed frames in memory, clips and still clips drawn per step.

Each usable episode's sampled frames are preprocessed once (crop, resize to the encoder's input size,
normalize) and kept as float16. A "still" clip is one frame repeated, which is how the world model
encodes frames at planning time. Draws come from a generator seeded by (seed, step, rank), so a
resumed run reads the same clips.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from worldmodel.preprocess import preprocess_frames

from .episodes import EpisodeSource, SkippedEpisode, no_usable_episode, usable_episodes


class VideoClips:
    """Preprocessed frames of all usable episodes in memory, and clip sampling from them.

    frames of episode e: float16 ``[T_e, 3, S, S]`` (normalized, at the encoder's input size).
    """

    def __init__(self, source: EpisodeSource, img_size: int, clip_frames: int, skip_bad: bool) -> None:
        self.clip_frames = clip_frames
        self.frames: list[Tensor] = []
        self.names: list[str] = []
        skipped: list[SkippedEpisode] = []
        for episode in usable_episodes(source, clip_frames, skip_bad, skipped, desc="loading episodes"):
            self.frames.append(preprocess_frames(episode.frames, img_size).to(torch.float16))
            self.names.append(episode.name)
        self.skipped = [vars(s) for s in skipped]
        if not self.frames:
            raise no_usable_episode(skipped, clip_frames, "--data.clip_frames")
        if self.skipped:
            lines = "\n".join(f"  {s['name']}: {s['reason']}" for s in self.skipped[:20])
            warnings.warn(f"skipped {len(self.skipped)} episode(s):\n{lines}", stacklevel=2)

    def positions(self, episode_ids: list[int]) -> np.ndarray:
        """(episode, start) of every clip of the given episodes -> int64 ``[K, 2]``."""
        rows = [(e, s) for e in episode_ids for s in range(len(self.frames[e]) - self.clip_frames + 1)]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 2)

    def batch(self, positions: np.ndarray, still: np.ndarray) -> Tensor:
        """Clips ``[B, 3, F, S, S]`` (float32); ``still[b]`` makes clip b its first frame repeated."""
        clips = []
        for (e, s), is_still in zip(positions, still):
            frames = self.frames[e][s : s + self.clip_frames]  # [F, 3, S, S]
            if is_still:
                frames = frames[:1].expand(self.clip_frames, -1, -1, -1)
            clips.append(frames.permute(1, 0, 2, 3))
        return torch.stack(clips).float()


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """A generator that depends only on (seed, step, rank): resumed runs draw the same clips and masks."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 101 + rank)
