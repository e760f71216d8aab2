"""The goal energy: how far predicted frame tokens are from the goal image's tokens.

As in V-JEPA 2-AC, the energy of an action sequence is the mean absolute difference (L1) between
the tokens of the last predicted frame and the tokens of the goal frame, averaged over tokens and
feature dimensions. ``"terminal+intermediate"`` averages that distance over every predicted frame
instead, which also rewards sequences that approach the goal early; its scale matches the terminal
energy's, so the numbers stay comparable.
"""

from __future__ import annotations

import torch
from torch import Tensor

from planner.config import ENERGY_MODES
from planner.interface import Objective


def goal_energy(predicted: Tensor, goal: Tensor, mode: str = "terminal") -> Tensor:
    """Energies ``[S]`` (float32) of predicted tokens ``[S, H, N, D]`` against goal tokens ``[N, D]``.

    A non-finite prediction gives a non-finite energy; the optimiser treats it as "never an elite".
    """
    if predicted.dim() != 4:
        raise ValueError(f"predicted tokens must be [S, H, N, D], got shape {tuple(predicted.shape)}")
    if goal.shape != predicted.shape[-2:]:
        raise ValueError(
            f"goal tokens must be [N, D] = {tuple(predicted.shape[-2:])} like the predictions, "
            f"got shape {tuple(goal.shape)}"
        )
    goal = goal.to(device=predicted.device, dtype=predicted.dtype)
    if mode == "terminal":
        frames = predicted[:, -1:]  # [S, 1, N, D]
    elif mode == "terminal+intermediate":
        frames = predicted  # [S, H, N, D]
    else:
        raise ValueError(f"energy mode must be one of {ENERGY_MODES}, got {mode!r}")
    # Accumulate in float32: bf16 means over ~10^5 values lose the differences CEM ranks by.
    return (frames - goal).abs().mean(dim=(1, 2, 3), dtype=torch.float32)


def goal_objective(goal: Tensor, mode: str = "terminal") -> Objective:
    """The objective ``predicted [S, H, N, D] -> energies [S]`` for goal tokens ``[N, D]``."""

    def objective(predicted: Tensor) -> Tensor:
        return goal_energy(predicted, goal, mode)

    return objective
