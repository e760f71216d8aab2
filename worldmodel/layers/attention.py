"""Multi-head self-attention with 3-D RoPE on queries and keys, and an optional key/value cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .rope import apply_rope


class KVCacheLayer:
    """Keys and values of earlier tokens for one attention layer, ``[B, heads, L, head_dim]`` each."""

    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def extend(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append new keys/values and return everything cached so far (new ones included)."""
        if self.keys is not None:
            keys = _append_tokens(self.keys, keys)
            values = _append_tokens(self.values, values)
        self.keys, self.values = keys, values
        return keys, values


def _append_tokens(old: Tensor, new: Tensor) -> Tensor:
    """Concatenate along tokens, broadcasting a batch-1 cache (a context shared by all samples)."""
    if old.shape[0] != new.shape[0]:
        old = old.expand(new.shape[0], *old.shape[1:])
    return torch.cat([old, new], dim=2)


class RoPEAttention(nn.Module):
    """Fused-qkv attention; RoPE tables come from the caller, so one module serves encoder and predictor."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        attn_mask: Tensor | None = None,
        cache: KVCacheLayer | None = None,
    ) -> Tensor:
        """x ``[B, N, D]``, cos/sin ``[N, head_dim]``, attn_mask ``[N, L]`` (True = may attend) -> ``[B, N, D]``.

        With a ``cache``, the keys/values of ``x`` are appended to it and the queries attend to all
        ``L`` cached tokens (earlier ones first).
        """
        B, N, D = x.shape
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))  # [B, N, 3, heads, head_dim]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, head_dim]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.extend(k, v)  # [B, heads, L, head_dim]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, heads, N, head_dim]
        return self.proj(x.transpose(1, 2).reshape(B, N, D))
