"""Pre-norm transformer block shared by the encoder and the predictor."""

from __future__ import annotations

from torch import Tensor, nn

from .attention import KVCacheLayer, RoPEAttention
from .mlp import Mlp

LAYER_NORM_EPS = 1e-6


class Block(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``; ``[B, N, D] -> [B, N, D]``."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden_dim: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = RoPEAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, mlp_hidden_dim)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        attn_mask: Tensor | None = None,
        cache: KVCacheLayer | None = None,
    ) -> Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, attn_mask=attn_mask, cache=cache)
        return x + self.mlp(self.norm2(x))
