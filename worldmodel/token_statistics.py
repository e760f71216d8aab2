"""How unlike the model's training frames a view is: per-token statistics of the frozen encoder's tokens.

A world model trained on a range of scenes (object colours, camera pose, light) plans worse outside it
and cannot say so itself: its energies and surprises are computed in a space it never saw such frames
in. This module keeps, with the checkpoint, the mean and standard deviation of every token position's
every feature over the training frames (``[N, D]`` each, ``N`` = all views' tokens of one frame), and
scores a frame ``x`` (``[N, D]``) by how far its tokens lie from them:

    z[n, d]^2 = (x[n, d] - mean[n, d])^2 / (std[n, d]^2 + variance_floor)
    score(x)  = 1 / (N D) * sum_{n, d} log(1 + z[n, d]^2)

the mean negative log-likelihood, up to constants, of a Student-t (Cauchy: one degree of freedom)
per token feature with that location and scale. Why this one:

- a distribution per token position over a frozen pretrained network's features is PaDiM's anomaly
  model (Defard et al. 2021, arXiv 2011.08785: a Gaussian per patch, scored by the Mahalanobis
  distance; the Mahalanobis distance of features is also Lee et al. 2018's out-of-distribution
  detector, NeurIPS, arXiv 1807.03888). The encoder is frozen (the predictor and the policy were
  trained on its cached tokens), so the training frames' token distribution is what the model was
  fitted on;
- diagonal, because a full covariance per position is ``N D^2`` numbers (2 GB for ViT-g's 256
  tokens of 1408 features) and needs far more frames than a robot dataset holds to estimate;
- heavy-tailed (Student-t, as robust modelling uses it: Lange, Little & Taylor 1989, JASA 84: 881-896)
  rather than Gaussian: with the Gaussian's mean squared z-score (the diagonal Mahalanobis distance)
  the shipped model's held-out in-range frames scored a median of 0.88 but a 99th percentile of 2.24,
  a few features of a few tokens far out (the arm crossing a patch), so a threshold there flagged 10%
  of the frames of scenes beyond the training ranges; ``log(1 + z^2)`` grows slowly in one far
  feature and counts a scene change, which moves most features a little: ROC AUC 0.94 against 0.92
  per frame, 21% of those frames flagged (``bench/ood_score.py``; docs/benchmarks.md);
- the variance floor (0.01 of the layer-normed features' average variance, as PaDiM regularises its
  covariance with 0.01 I) keeps a feature that hardly varied in training from dominating;
- averaged over tokens and features, so the score reads alike across model sizes (a standard
  Gaussian feature gives 0.53 on average); the threshold is measured, a high quantile (0.99) of the
  scores of held-out frames of the training data (:func:`fit_token_statistics`).

Tokens are layer-normed before scoring (``F.layer_norm`` over the features, as
:meth:`worldmodel.world_model.WorldModel.encode_frames` and the feature cache give them; a second
layer norm changes already normed tokens by float rounding only), so the score does not depend on
the model's ``normalize_tokens``. ``views`` > 1: the tokens are the views' in turn
(:func:`worldmodel.preprocess.split_views`), and :meth:`TokenStatistics.view_scores` gives each
view's score (the frame's is their mean).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TokenStatisticsConfig

CHUNK_ROWS = 2048  # frames read from the cache at once while fitting


class TokenStatistics(nn.Module):
    """Per-token mean and std ``[N, D]`` of the training frames' tokens, and the score of new tokens.

    Buffers (saved in the checkpoint as ``token_statistics``, loaded strictly): ``mean`` and ``std``,
    float32 ``[N, D]``, of the layer-normed tokens. The threshold and the sizes are in ``config``.
    """

    def __init__(self, config: TokenStatisticsConfig) -> None:
        super().__init__()
        self.config = config
        shape = (config.tokens_per_frame, config.encoder_dim)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @property
    def threshold(self) -> float:
        """The score above which a frame is unlike the training data (``config.threshold``)."""
        return self.config.threshold

    def squared_z(self, tokens: Tensor) -> Tensor:
        """``[..., N, D]`` tokens -> ``[..., N, D]`` squared z-scores of their layer-normed features (float32).

        Raises:
            ValueError: ``tokens`` do not end in ``[N, D]`` of this model.
        """
        N, D = self.mean.shape
        if tokens.ndim < 2 or tuple(tokens.shape[-2:]) != (N, D):
            raise ValueError(
                f"tokens must be [..., {N}, {D}] (all views' tokens of a frame), got {tuple(tokens.shape)}"
            )
        normed = F.layer_norm(tokens.float(), (D,))  # [..., N, D]
        return (normed - self.mean).square() / (self.std.square() + self.config.variance_floor)

    def feature_scores(self, tokens: Tensor) -> Tensor:
        """``[..., N, D]`` tokens -> ``[..., N, D]``: ``log(1 + z^2)`` of each feature (module docstring)."""
        return torch.log1p(self.squared_z(tokens))

    def view_scores(self, tokens: Tensor) -> Tensor:
        """``[..., N, D]`` tokens -> ``[..., V]``: each view's score, the mean of its tokens' :meth:`feature_scores`."""
        views = self.feature_scores(tokens).unflatten(-2, (self.config.views, -1))  # [..., V, n, D]
        return views.mean(dim=(-2, -1))  # [..., V]

    def forward(self, tokens: Tensor) -> Tensor:
        """``[..., N, D]`` tokens -> ``[...]`` scores: the mean of :meth:`feature_scores` over all tokens and
        features (dimensionless; higher is less like the training frames; module docstring)."""
        return self.feature_scores(tokens).mean(dim=(-2, -1))


def _rows_in_chunks(tokens: np.ndarray | Tensor, rows: np.ndarray) -> list[Tensor]:
    """``tokens[rows]`` as float64 tensors ``[<= CHUNK_ROWS, N, D]``, a chunk at a time (a memory map stays on disk)."""
    chunks = []
    for start in range(0, len(rows), CHUNK_ROWS):
        picked = rows[start : start + CHUNK_ROWS]
        block = tokens[torch.as_tensor(picked)] if isinstance(tokens, Tensor) else np.asarray(tokens[picked])
        chunks.append(torch.as_tensor(block).double())
    return chunks


@torch.no_grad()
def score_rows(statistics: TokenStatistics, tokens: np.ndarray | Tensor, rows: np.ndarray) -> Tensor:
    """The scores ``[R]`` (float32, CPU) of the frames ``tokens[rows]`` (``tokens``: ``[S, N, D]``), a chunk at
    a time."""
    rows = np.asarray(rows, dtype=np.int64)
    device = statistics.mean.device
    blocks = [statistics(block.to(device, torch.float32)).cpu() for block in _rows_in_chunks(tokens, rows)]
    return torch.cat(blocks) if blocks else torch.zeros(0)


def fit_token_statistics(
    tokens: np.ndarray | Tensor,
    training_rows: np.ndarray,
    held_out_rows: np.ndarray,
    views: int = 1,
    threshold_quantile: float = 0.99,
    variance_floor: float = 0.01,
) -> TokenStatistics:
    """The statistics of ``tokens[training_rows]`` and the threshold from ``tokens[held_out_rows]``' scores.

    Args:
        tokens: ``[S, N, D]`` the frames' tokens (a feature cache's float16 memory map, or a tensor),
            layer-normed or not (they are layer-normed here, as when scoring).
        training_rows: ``[R]`` int, the frames the mean and std are taken over (R >= 2).
        held_out_rows: ``[Q]`` int, frames of other episodes whose scores' ``threshold_quantile`` is the
            threshold; empty: the training frames' own scores are used (a threshold that is too low,
            since those frames made the statistics), with a warning.
        views: camera views whose tokens follow each other in ``N``.
    Raises:
        ValueError: fewer than 2 training rows, or non-finite tokens among them.
    """
    training_rows = np.asarray(training_rows, dtype=np.int64)
    held_out_rows = np.asarray(held_out_rows, dtype=np.int64)
    if len(training_rows) < 2:
        raise ValueError(f"fit_token_statistics needs at least 2 training frames, got {len(training_rows)}")
    _, N, D = tokens.shape
    # Two passes in float64: the mean, then the spread about it (no cancellation as with sum of squares).
    total = torch.zeros(N, D, dtype=torch.float64)
    for block in _rows_in_chunks(tokens, training_rows):
        total += F.layer_norm(block, (D,)).sum(0)
    mean = total / len(training_rows)  # [N, D]
    if not bool(torch.isfinite(mean).all()):
        raise ValueError("fit_token_statistics: NaN or inf in the training frames' tokens: rebuild the feature cache")
    squares = torch.zeros(N, D, dtype=torch.float64)
    for block in _rows_in_chunks(tokens, training_rows):
        squares += (F.layer_norm(block, (D,)) - mean).square().sum(0)
    std = (squares / (len(training_rows) - 1)).sqrt()  # [N, D]

    config = TokenStatisticsConfig(
        encoder_dim=D,
        tokens_per_frame=N,
        views=views,
        variance_floor=variance_floor,
        threshold_quantile=threshold_quantile,
        training_frames=len(training_rows),
        held_out_frames=len(held_out_rows),
    )
    statistics = TokenStatistics(config)
    statistics.mean.copy_(mean.float())
    statistics.std.copy_(std.float())
    if len(held_out_rows) == 0:
        warnings.warn(
            "no held-out frames: the out-of-distribution threshold is the quantile of the training frames' "
            "own scores, lower than that of unseen in-range frames; hold out episodes (--data.val_fraction)",
            stacklevel=2,
        )
    scores = score_rows(statistics, tokens, held_out_rows if len(held_out_rows) else training_rows)  # [Q]
    threshold = float(np.quantile(scores.numpy(), threshold_quantile))
    statistics.config = dataclasses.replace(config, threshold=threshold)
    return statistics
