"""Sampled frames held in memory, for training the encoder with the predictor (end to end).

With a frozen encoder the tokens are computed once and cached (:mod:`.feature_cache`); when the
encoder trains too (``loss.sigreg_weight > 0``) every step encodes its clips again, so the frames
themselves are kept: uint8 ``[S, H, W, 3]`` of every sampled frame, in the cache's layout (episodes
with offset and length, so :func:`.clips.clip_starts` and the held-out split work unchanged). 490
episodes of 64 px frames are about 200 MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from jepa_mpc_foundation.pose import STATE_DIM, actions_from_states
from worldmodel.encoder import VideoEncoder
from worldmodel.world_model import encode_each_frame, normalize_tokens

from .episodes import EpisodeSource, SkippedEpisode, no_usable_episode, usable_episodes


@dataclass
class FrameStore:
    """Frames ``[S, H, W, 3]`` uint8 and states ``[S, 7]`` of all kept episodes, one row per sampled frame."""

    frames: np.ndarray
    states: np.ndarray
    episodes: list[dict]  # {"name", "offset", "length"} in row order
    skipped: list[SkippedEpisode] = field(default_factory=list)


def load_frame_store(source: EpisodeSource, min_length: int, skip_bad: bool = False) -> FrameStore:
    """Every usable episode of ``source`` (:func:`.episodes.usable_episodes`: too short or bad ones are
    skipped and recorded, or raise) into memory.

    Raises:
        ValueError: no episode is usable (:func:`.episodes.no_usable_episode`).
    """
    frames, states, episodes, skipped = [], [], [], []
    offset = 0
    for episode in usable_episodes(source, min_length, skip_bad, skipped, desc="loading episodes"):
        frames.append(episode.frames)
        states.append(episode.states.astype(np.float32))
        episodes.append({"name": episode.name, "offset": offset, "length": episode.length})
        offset += episode.length
    if not episodes:
        raise no_usable_episode(skipped, min_length, "--data.clip_steps")
    return FrameStore(np.concatenate(frames), np.concatenate(states), episodes, skipped)


class EncodingClipReader:
    """Rows of a :class:`FrameStore` -> a batch of clips, encoded by the (training) encoder now.

    Same output as :class:`.clips.ClipReader`: layer-normed tokens ``[B, T, N, D]`` (with autograd
    into the encoder when enabled), states ``[B, T, 7]``, actions ``[B, T-1, 7]``. Each frame is
    encoded alone as a repeated tubelet, as at planning time.
    """

    def __init__(self, store: FrameStore, clip_steps: int, encoder: VideoEncoder, views: int = 1) -> None:
        self.store, self.encoder, self.views = store, encoder, views
        self.offsets = encoder.config.tubelet_size * np.arange(clip_steps)  # [T]

    def read(self, starts: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        rows = np.asarray(starts)[:, None] + self.offsets  # [B, T]
        frames = self.store.frames[rows.ravel()]  # [B*T, H, V*W, 3]
        tokens = encode_each_frame(self.encoder, frames, self.views, batch_size=len(frames))  # [B*T, V*n, D]
        tokens = normalize_tokens(tokens).unflatten(0, rows.shape)  # [B, T, V*n, D]
        states = torch.from_numpy(self.store.states[rows.ravel()]).view(*rows.shape, STATE_DIM)
        actions = actions_from_states(states.double()).float()  # [B, T-1, 7]
        return tokens, states.to(device), actions.to(device)
