"""``jepa-mpc ood-stats``: add the training frames' token statistics to a world model checkpoint.

    jepa-mpc ood-stats --checkpoint model.pt --data data/reach_expert data/pickplace_expert ... --out model_ood.pt

The world model's encoder encodes every episode once, into the feature cache ``train`` and
``train-policy`` use (:mod:`.feature_cache`, keyed by the encoder's weights and the data: a cache that
``train-policy`` built for a model with the same encoder and data is read, not rebuilt). The episodes are split as
``train-policy`` splits them; the per-token mean and std are taken over the training episodes' frames,
and the out-of-distribution threshold is a high quantile of the held-out episodes' frames' scores
(:func:`worldmodel.token_statistics.fit_token_statistics`, where the score and its sources are).

``--out`` is the input checkpoint with ``token_statistics`` and ``token_statistics_config`` added (or
replaced), every other entry unchanged, written atomically; ``load_world_model`` then loads them
strictly, and the planner reports the score of every step (``MPCStep.ood_score``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jepa_mpc_foundation.configuration import ConfigError
from worldmodel.checkpoint import save_token_statistics
from worldmodel.token_statistics import TokenStatistics, fit_token_statistics, score_rows

from .clips import split_episodes
from .config import TokenStatisticsJobConfig
from .distributed import setup_distributed
from .episodes import EpisodeSource, check_sample_fps, split_report
from .feature_cache import FeatureCache, cache_frozen_tokens, load_frozen_world_model


@dataclass
class TokenStatisticsSummary:
    """What ``jepa-mpc ood-stats`` computed and wrote."""

    out: str
    threshold: float
    threshold_quantile: float
    training_frames: int
    held_out_frames: int
    held_out_median: float  # the held-out frames' median score: what in range looks like
    train_episodes: int
    val_episodes: int
    skipped_episodes: list[dict]
    cache_folder: str

    def text(self) -> str:
        lines = [
            f"token statistics of {self.training_frames} training frames; out-of-distribution threshold "
            f"{self.threshold:.4g} (the {100 * self.threshold_quantile:g}th percentile of {self.held_out_frames} "
            f"held-out frames' scores, whose median is {self.held_out_median:.4g})"
        ]
        lines += split_report(self.train_episodes, self.val_episodes, self.skipped_episodes)
        lines.append(f"feature cache: {self.cache_folder}")
        lines.append(
            f"world model with its token statistics: {self.out} (eval results and the planner node's "
            "diagnostics report ood_score per step)"
        )
        return "\n".join(lines)


def episode_rows(cache: FeatureCache, episode_ids: list[int]) -> np.ndarray:
    """The cache rows ``[R]`` (int64) of every frame of the episodes ``episode_ids``."""
    rows = [
        np.arange(cache.episodes[e]["offset"], cache.episodes[e]["offset"] + cache.episodes[e]["length"])
        for e in episode_ids
    ]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)


def cache_token_statistics(
    cache: FeatureCache,
    train_ids: list[int],
    held_out_ids: list[int],
    views: int,
    threshold_quantile: float = 0.99,
    variance_floor: float = 0.01,
) -> TokenStatistics:
    """:func:`fit_token_statistics` over the frames of the cache's episodes ``train_ids``, threshold from
    ``held_out_ids``' frames (``jepa-mpc ood-stats`` and ``train-policy`` both call it)."""
    return fit_token_statistics(
        cache.tokens,
        episode_rows(cache, train_ids),
        episode_rows(cache, held_out_ids),
        views=views,
        threshold_quantile=threshold_quantile,
        variance_floor=variance_floor,
    )


def add_token_statistics(
    config: TokenStatisticsJobConfig,
    source: EpisodeSource,
    checkpoint: str | Path,
    out: str | Path,
    overwrite: bool = False,
) -> TokenStatisticsSummary:
    """Compute the token statistics of ``checkpoint``'s encoder over ``source`` and write ``out``: the checkpoint
    with them added (module docstring).

    Raises:
        ConfigError: ``out`` exists and ``overwrite`` is false; the data's views differ from the model's;
            torchrun (one process does it).
        CheckpointError: ``checkpoint`` is not a world model :func:`load_world_model` loads.
        EpisodeError / DatasetError: bad data (unless ``config.data.bad_episodes`` is ``skip``).
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out} exists: pass --overwrite true to replace it, or another --out")
    ctx = setup_distributed(config.device)
    try:
        if ctx.world_size > 1:
            raise ConfigError("jepa-mpc ood-stats runs in one process: drop torchrun")
        check_sample_fps(source, config.data.sample_fps)
        if config.threads:
            torch.set_num_threads(config.threads)
        world_model = load_frozen_world_model(checkpoint, config.data)
        wm = world_model.config
        cache = cache_frozen_tokens(source, world_model, checkpoint, config.data, ctx.device)
    finally:
        ctx.close()
    train_ids, val_ids = split_episodes(
        len(cache.episodes), config.data.val_fraction, config.data.min_val_episodes, config.seed
    )
    statistics = cache_token_statistics(
        cache, train_ids, val_ids, wm.predictor.views, config.threshold_quantile, config.variance_floor
    )
    held_out = episode_rows(cache, val_ids if val_ids else train_ids)
    median = float(score_rows(statistics, cache.tokens, held_out).median())
    save_token_statistics(checkpoint, statistics, out)
    return TokenStatisticsSummary(
        out=str(out),
        threshold=statistics.threshold,
        threshold_quantile=config.threshold_quantile,
        training_frames=statistics.config.training_frames,
        held_out_frames=statistics.config.held_out_frames,
        held_out_median=median,
        train_episodes=len(train_ids),
        val_episodes=len(val_ids),
        skipped_episodes=[vars(s) for s in cache.skipped],
        cache_folder=str(cache.folder),
    )
