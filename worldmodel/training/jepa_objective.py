"""The V-JEPA objective: masked prediction of EMA-target tokens, and the collapse check.

- :class:`JepaLoss`: the context encoder sees the context tokens of each mask, the predictor fills in
  the targets; L1 to the target encoder's layer-normed tokens, averaged over the masks.
- :func:`ema_update`: the target encoder follows the context encoder.
- :func:`feature_spread`: per-dimension std of features across clips; ~0 means collapse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodel.encoder import VideoEncoder

from .config import MaskConfig
from .masked_model import MaskedPredictor, encode_visible, gather_tokens, token_grid
from .masking import sample_masks


class JepaLoss(nn.Module):
    """Context encoder + predictor: one forward is the masked-prediction loss (what DDP wraps)."""

    def __init__(self, encoder: VideoEncoder, predictor: MaskedPredictor) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def forward(self, video: Tensor, masks: list[tuple[Tensor, Tensor]], targets: Tensor) -> Tensor:
        """video ``[B, 3, T, H, W]``; masks: (context ``[B, Kc]``, target ``[B, Kt]``) indices; targets ``[B, N, D]``
        (layer-normed)."""
        grid = token_grid(self.encoder, video)
        losses = []
        for context_index, target_index in masks:
            context = encode_visible(self.encoder, video, context_index)  # [B, Kc, D]
            predicted = self.predictor(context, context_index, target_index, grid)  # [B, Kt, D]
            losses.append((predicted.float() - gather_tokens(targets, target_index)).abs().mean())
        return torch.stack(losses).mean()


def draw_masks(
    config: MaskConfig, batch_size: int, grid: tuple[int, int, int], generator: torch.Generator
) -> list[tuple[Tensor, Tensor]]:
    return [
        sample_masks(batch_size, grid, config.short_blocks, config.short_scale, tuple(config.aspect_ratio), generator),
        sample_masks(batch_size, grid, config.long_blocks, config.long_scale, tuple(config.aspect_ratio), generator),
    ]


@torch.no_grad()
def target_tokens(target_encoder: VideoEncoder, video: Tensor) -> Tensor:
    return F.layer_norm(target_encoder(video).float(), (target_encoder.config.dim,))


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    target_params = list(target.parameters())
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, [p.detach() for p in online.parameters()], alpha=1.0 - momentum)


@dataclass
class FeatureSpread:
    """Per-dimension std of encoder features on held-out clips: ~0 everywhere means collapse."""

    clip_std_mean: float  # std across clips of the mean-pooled feature, averaged over dimensions
    clip_std_min: float
    token_std_mean: float  # std across all tokens of all clips, averaged over dimensions
    dead_dims: int  # dimensions whose clip std is below 1e-3 (collapsed)


@torch.no_grad()
def feature_spread(encoder: VideoEncoder, video: Tensor, batch_size: int = 32) -> FeatureSpread:
    tokens = torch.cat(
        [encoder(video[i : i + batch_size]).float() for i in range(0, len(video), batch_size)]
    )  # [B, N, D]
    clip_std = tokens.mean(1).std(0)  # [D]
    return FeatureSpread(
        clip_std.mean().item(),
        clip_std.min().item(),
        tokens.flatten(0, 1).std(0).mean().item(),
        int((clip_std < 1e-3).sum()),
    )
