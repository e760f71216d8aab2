"""SIGReg: the sketched isotropic Gaussian regulariser that keeps an end-to-end JEPA from collapsing.

LeJEPA (Balestriero & LeCun, arXiv 2511.08544) shows that embeddings distributed as an isotropic
Gaussian minimise downstream risk and that matching every 1-D projection to N(0, 1) (Cramér-Wold)
is enough; LeWorldModel (arXiv 2603.19312) trains a pixel encoder and an action-conditioned
predictor end to end with this one regulariser beside the prediction loss, no EMA target and no
stop-gradient. Per step, ``directions`` random unit vectors are drawn, the embeddings are projected
on each, and the Epps-Pulley statistic compares each projection's empirical characteristic
function with N(0, 1)'s::

    EP = M * integral over t of |phi_M(t) - exp(-t^2 / 2)|^2 * exp(-t^2 / 2) dt

(trapezoidal rule on ``knots`` points of [-t_max, t_max]), averaged over the directions.

Layer-normed tokens (what the predictor sees and the planner's energy compares) have norm sqrt(D),
so an isotropic spread of them projects to unit variance: the target N(0, 1) needs no rescaling.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sigreg(
    embeddings: Tensor,
    directions: int = 256,
    knots: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean Epps-Pulley statistic of ``directions`` random 1-D projections of ``embeddings`` ``[M, D]`` -> scalar.

    Zero in expectation for samples of N(0, I_D); grows as the embeddings collapse (all alike) or
    stretch along few directions. Directions come from ``generator`` (default: torch's global RNG,
    which the training loop saves and restores, so a resumed run draws the same ones).

    Raises:
        ValueError: ``embeddings`` is not ``[M, D]`` with M >= 2.
    """
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"sigreg needs embeddings [M >= 2, D], got {tuple(embeddings.shape)}")
    x = embeddings.float()
    projection = torch.randn(x.shape[1], directions, device=x.device, generator=generator)
    projection = projection / projection.norm(dim=0, keepdim=True)  # [D, K] unit directions
    t = torch.linspace(-t_max, t_max, knots, device=x.device)  # [knots]
    xt = (x @ projection).unsqueeze(-1) * t  # [M, K, knots]
    gaussian = torch.exp(-0.5 * t**2)  # N(0, 1)'s characteristic function, also the weight
    error = (xt.cos().mean(0) - gaussian) ** 2 + xt.sin().mean(0) ** 2  # [K, knots]
    statistic = torch.trapezoid(error * gaussian, t, dim=-1) * x.shape[0]  # [K]
    return statistic.mean()
