"""3-D rotary position embedding (RoPE) over (time, height, width), as in V-JEPA 2.

The head dimension is split into three equal parts of ``2 * ((head_dim // 3) // 2)`` channels that
are rotated by the token's time, row and column index respectively; any remaining channels are left
unrotated. Within a part of ``d`` channels the reference pairs channels ``(2i, 2i+1)`` for the
rotation but indexes the frequencies as ``[f_0 .. f_{d/2-1}, f_0 .. f_{d/2-1}]`` (its ``repeat``);
we reproduce that exactly because released checkpoints were trained with it.

V-JEPA 2.1 (``app/vjepa_2_1/models/utils/modules.py`` ``rotate_queries_or_keys``) keeps the pairing
but indexes the frequencies ``[f_0, f_0, f_1, f_1, ..]`` (``repeat_interleave``), so each pair turns by
one frequency: ``rope_cos_sin(..., interleave=True)``. Its positions may be fractional (interpolated
to the pretraining grid, see :mod:`worldmodel.vjepa2_1_encoder`).

A position of 0 is the identity rotation, which is how V-JEPA 2-AC rotates its action/state tokens
(time only): they get the position ``(t, 0, 0)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_part_dim(head_dim: int) -> int:
    """Channels rotated per axis (time, height, width)."""
    return 2 * ((head_dim // 3) // 2)


def rope_cos_sin(
    positions: Tensor, head_dim: int, base: float = 10000.0, interleave: bool = False
) -> tuple[Tensor, Tensor]:
    """Rotation tables for tokens at ``positions`` ``[N, 3]`` (t, h, w) -> cos, sin ``[N, head_dim]`` (float32).

    ``interleave``: frequencies ``[f_0, f_0, f_1, f_1, ..]`` per part (V-JEPA 2.1) instead of
    ``[f_0 .. f_{d/2-1}, f_0 .. f_{d/2-1}]`` (V-JEPA 2).
    """
    part = rope_part_dim(head_dim)
    half = part // 2
    omega = 1.0 / base ** (torch.arange(half, dtype=torch.float32, device=positions.device) / half)  # [part/2]
    angles = positions.to(torch.float32).unsqueeze(-1) * omega  # [N, 3, part/2]
    if interleave:
        angles = angles.repeat_interleave(2, dim=-1).flatten(-2)  # [N, 3 * part], each frequency twice in a row
    else:
        angles = torch.cat([angles, angles], dim=-1).flatten(-2)  # [N, 3 * part], frequencies repeated per part
    cos, sin = angles.cos(), angles.sin()
    remainder = head_dim - 3 * part
    if remainder:
        n = positions.shape[0]
        cos = torch.cat([cos, cos.new_ones(n, remainder)], dim=-1)
        sin = torch.cat([sin, sin.new_zeros(n, remainder)], dim=-1)
    return cos, sin


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate queries or keys ``x`` ``[B, heads, N, head_dim]`` with tables ``[N, head_dim]``."""
    pairs = x.unflatten(-1, (-1, 2))  # [B, heads, N, head_dim/2, 2]
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)  # (x0, x1) -> (-x1, x0)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


def grid_positions(time_steps: int, height: int, width: int, device: torch.device | None = None) -> Tensor:
    """(t, h, w) of every token of a ``[T, H, W]`` grid in raster order -> ``[T * H * W, 3]``."""
    t, h, w = torch.meshgrid(
        torch.arange(time_steps, device=device),
        torch.arange(height, device=device),
        torch.arange(width, device=device),
        indexing="ij",
    )
    return torch.stack([t, h, w], dim=-1).reshape(-1, 3)
