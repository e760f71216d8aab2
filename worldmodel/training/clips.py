"""Clips of cached tokens: where they start, which episodes are held out, which clips each step reads.

A clip of ``clip_steps`` predictor steps takes one sampled frame per tubelet: sampled frames
``s, s + tubelet, ..., s + (clip_steps - 1) * tubelet`` of one episode (the reference's 8-frame clip
at 4 fps = 4 steps, 4 states, 3 actions). Clips may start at any sampled frame.

Batches are a pure function of the step (:class:`ClipBatches`): each epoch is a permutation drawn by
``torch.utils.data.DistributedSampler`` from ``seed + epoch`` and dealt out to the ranks, so a
resumed run reads exactly the batches the uninterrupted run would have read.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from jepa_mpc_foundation.pose import STATE_DIM, actions_from_states

from .feature_cache import FeatureCache


def clip_span(clip_steps: int, tubelet_size: int) -> int:
    """Sampled frames one clip covers."""
    return (clip_steps - 1) * tubelet_size + 1


def split_episodes(num_episodes: int, val_fraction: float, min_val: int, seed: int) -> tuple[list[int], list[int]]:
    """Episode indices for training and for validation (held out, chosen at random with ``seed``)."""
    num_val = max(min_val, round(num_episodes * val_fraction)) if num_episodes >= 2 else 0
    num_val = min(num_val, num_episodes - 1)
    order = np.random.default_rng(seed).permutation(num_episodes)
    return sorted(order[num_val:].tolist()), sorted(order[:num_val].tolist())


def clip_starts(cache: FeatureCache, episode_ids: list[int], span: int) -> np.ndarray:
    """Row in the cache of every clip start of the given episodes -> int64 ``[K]``."""
    starts = []
    for e in episode_ids:
        entry = cache.episodes[e]
        starts.append(entry["offset"] + np.arange(entry["length"] - span + 1))
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, dtype=np.int64)


class ClipReader:
    """Cached rows -> a batch of clips: tokens ``[B, T, N, D]``, states ``[B, T, 7]``, actions ``[B, T-1, 7]``."""

    def __init__(self, cache: FeatureCache, clip_steps: int, tubelet_size: int) -> None:
        self.cache = cache
        self.offsets = tubelet_size * np.arange(clip_steps)  # [T]

    def read(self, starts: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        rows = np.asarray(starts)[:, None] + self.offsets  # [B, T]
        tokens = torch.from_numpy(np.asarray(self.cache.tokens[rows.ravel()], dtype=np.float32))
        tokens = tokens.view(*rows.shape, *tokens.shape[1:]).to(device)  # [B, T, N, D]
        states = torch.from_numpy(np.asarray(self.cache.states[rows.ravel()], dtype=np.float32)).view(
            *rows.shape, STATE_DIM
        )
        actions = actions_from_states(states.double()).float()  # [B, T-1, 7], composed rotations
        return tokens, states.to(device), actions.to(device)


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class ClipBatches:
    """Which clips (cache rows) a rank reads at a given step; a pure function of the step."""

    def __init__(self, starts: np.ndarray, batch_size: int, rank: int, world_size: int, seed: int) -> None:
        if len(starts) < batch_size * world_size:
            raise ValueError(
                f"{len(starts)} training clips are fewer than one batch of {batch_size} x {world_size} process(es): "
                "lower run.batch_size or add episodes"
            )
        self.starts = starts
        self.batch_size = batch_size
        self.sampler = DistributedSampler(
            _Indices(len(starts)), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batches_per_epoch = len(self.sampler) // batch_size
        self._epoch, self._order = -1, np.zeros(0, dtype=np.int64)

    def __call__(self, step: int) -> np.ndarray:
        epoch, within = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._order = epoch, np.fromiter(iter(self.sampler), dtype=np.int64)
        chosen = self._order[within * self.batch_size : (within + 1) * self.batch_size]
        return self.starts[chosen]
