"""Starting weights of a predictor to post-train.

``vit``: the reference's truncated-normal init (std 0.02) everywhere.

``identity``: the same, except that the input embedding and the output projection start as
transposed orthonormal maps (``proj @ embed = I`` when the predictor is at least as wide as the
encoder). The residual stream then carries each frame token through, so the untrained predictor is
close to copying the current frame (the no-motion baseline) and training learns the change. On small
data and short CPU runs this converges several times faster (docs/training.md has the numbers).
"""

from __future__ import annotations

import torch

from worldmodel.encoder import init_vit_weights
from worldmodel.predictor import ActionConditionedPredictor

PREDICTOR_INITS = ("identity", "vit")


@torch.no_grad()
def init_predictor(predictor: ActionConditionedPredictor, how: str, generator: torch.Generator | None = None) -> None:
    if how not in PREDICTOR_INITS:
        raise ValueError(f"predictor init {how!r} is not one of {PREDICTOR_INITS}")
    init_vit_weights(predictor)
    if how == "identity":
        dim, encoder_dim = predictor.predictor_embed.weight.shape  # [dim, encoder_dim]
        wide = torch.randn(max(dim, encoder_dim), min(dim, encoder_dim), generator=generator)
        q, _ = torch.linalg.qr(wide)  # orthonormal columns
        embed = q if dim >= encoder_dim else q.T  # [dim, encoder_dim]
        predictor.predictor_embed.weight.copy_(embed)
        predictor.predictor_proj.weight.copy_(embed.T)
