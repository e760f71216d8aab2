"""The networks of V-JEPA pretraining that the world model itself does not need.

- :func:`encode_visible`: the encoder (:class:`worldmodel.VideoEncoder`, unchanged) run on the
  context tokens only, each keeping the rotary position of its place in the full grid.
- :class:`MaskedPredictor`: a narrow transformer that sees the context tokens plus one learned mask
  token at every target position and predicts the target encoder's tokens there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from worldmodel.encoder import VideoEncoder
from worldmodel.layers import LAYER_NORM_EPS, Block, grid_positions, rope_cos_sin


def token_grid(encoder: VideoEncoder, video: Tensor) -> tuple[int, int, int]:
    """(T', H', W') tubelet grid of a ``[B, 3, T, H, W]`` video."""
    c = encoder.config
    _, _, T, H, W = video.shape
    return T // c.tubelet_size, H // c.patch_size, W // c.patch_size


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """``x`` ``[B, N, D]``, ``index`` ``[B, K]`` -> ``[B, K, D]``."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def rope_for(index: Tensor, grid: tuple[int, int, int], head_dim: int) -> tuple[Tensor, Tensor]:
    """Rotary tables of the tokens ``index`` ``[B, K]`` of a grid -> cos, sin ``[B, 1, K, head_dim]`` (broadcast over
    heads)."""
    positions = grid_positions(*grid, device=index.device)  # [N, 3]
    cos, sin = rope_cos_sin(positions, head_dim)  # [N, head_dim]
    return cos[index].unsqueeze(1), sin[index].unsqueeze(1)


def encode_visible(encoder: VideoEncoder, video: Tensor, keep: Tensor) -> Tensor:
    """Encode only the tokens ``keep`` ``[B, K]`` of ``video`` ``[B, 3, T, H, W]`` -> ``[B, K, D]``."""
    c = encoder.config
    x = gather_tokens(encoder.patch_embed(video), keep)  # [B, K, D]
    cos, sin = rope_for(keep, token_grid(encoder, video), c.dim // c.num_heads)
    for block in encoder.blocks:
        x = block(x, cos, sin)
    return encoder.norm(x)


class MaskedPredictor(nn.Module):
    """Context tokens ``[B, Kc, D]`` + target positions -> predicted target tokens ``[B, Kt, D]``."""

    def __init__(self, encoder_dim: int, dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, num_heads, int(dim * mlp_ratio)) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.proj = nn.Linear(dim, encoder_dim)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(
        self, context: Tensor, context_index: Tensor, target_index: Tensor, grid: tuple[int, int, int]
    ) -> Tensor:
        B, num_context, _ = context.shape
        masks = self.mask_token.expand(B, target_index.shape[1], -1)  # [B, Kt, dim]
        x = torch.cat([self.embed(context), masks], dim=1)  # [B, Kc + Kt, dim]
        cos, sin = rope_for(torch.cat([context_index, target_index], dim=1), grid, x.shape[-1] // self.num_heads)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.proj(self.norm(x[:, num_context:]))  # [B, Kt, D]
