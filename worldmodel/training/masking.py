"""V-JEPA multi-block masking of a clip's tubelet grid.

A mask is the union of a few rectangular blocks on the ``H x W`` patch grid, each extended over all
``T`` time steps (a 3-D tube, V-JEPA's temporal scale 1.0): the masked tokens are the prediction
targets, the others the context. Every sample of a batch gets its own mask; the index lists are cut
to the batch's shortest so that they stack (as the reference's collator does).

Masks are drawn from a generator the caller seeds per step, so a resumed run draws the same masks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def block_mask(
    grid_h: int,
    grid_w: int,
    num_blocks: int,
    scale: float,
    aspect_ratio: tuple[float, float],
    generator: torch.Generator,
) -> Tensor:
    """Boolean ``[H, W]``, True = masked: the union of ``num_blocks`` blocks of ``scale * H * W`` patches each.

    A draw that would leave no context is redrawn.
    """
    area = scale * grid_h * grid_w
    log_low, log_high = math.log(aspect_ratio[0]), math.log(aspect_ratio[1])
    for _ in range(100):
        masked = torch.zeros(grid_h, grid_w, dtype=torch.bool)
        for _ in range(num_blocks):
            ratio = math.exp(log_low + (log_high - log_low) * torch.rand((), generator=generator).item())
            h = min(grid_h, max(1, round(math.sqrt(area * ratio))))
            w = min(grid_w, max(1, round(math.sqrt(area / ratio))))
            top = int(torch.randint(0, grid_h - h + 1, (), generator=generator))
            left = int(torch.randint(0, grid_w - w + 1, (), generator=generator))
            masked[top : top + h, left : left + w] = True
        if not masked.all():
            return masked
    raise ValueError(
        f"{num_blocks} blocks of scale {scale} always cover the whole {grid_h}x{grid_w} grid: lower the scale"
    )


def sample_masks(
    batch_size: int,
    grid: tuple[int, int, int],
    num_blocks: int,
    scale: float,
    aspect_ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Context and target token indices ``[B, Kc]``, ``[B, Kt]`` (raster order over ``T x H x W``)."""
    T, H, W = grid
    contexts, targets = [], []
    for _ in range(batch_size):
        masked = block_mask(H, W, num_blocks, scale, aspect_ratio, generator).flatten().repeat(T)  # [T*H*W]
        contexts.append(torch.nonzero(~masked).squeeze(1))
        targets.append(torch.nonzero(masked).squeeze(1))
    keep_context = min(len(c) for c in contexts)
    keep_target = min(len(t) for t in targets)
    return torch.stack([c[:keep_context] for c in contexts]), torch.stack([t[:keep_target] for t in targets])
