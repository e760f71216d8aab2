"""What the planner needs from a world model, and nothing more.

The optimiser (``planner.cem``) sees only two functions:

- a *rollout* ``actions [S, H, 7] -> predicted tokens [S, H, N, D]`` (the frame predicted after each
  of the H actions, context already bound in), and
- an *objective* ``predicted tokens [S, H, N, D] -> energies [S]`` (lower is better).

The receding-horizon controller (``planner.mpc``) additionally encodes the goal and the current
frames, so it plans against :class:`PlanningWorldModel`, a structural protocol that the real
``worldmodel.world_model.WorldModel`` and the analytic test model (``planner.analytic``) both satisfy
without importing anything from here. A model may also propose plans (``PlannerConfig.proposal``):
then it has ``can_propose`` true and ``propose(context_tokens [1, Tc, N, D], context_states [1, Tc, 7],
goal_tokens [N, D]) -> actions [K, 7]`` (the real model's goal-conditioned policy). A model may also say how
unlike its training frames a frame is: ``ood_score(tokens [N, D]) -> float | None`` (None: it holds no
training statistics) and ``ood_threshold: float | None`` (the score above which a frame is unlike them);
``GoalImageMPC`` reports the score of every step (``MPCStep.ood_score``) when the model has the method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

RolloutFn = Callable[[Tensor], Tensor]
"""``actions [S, H, 7] -> predicted tokens [S, H, N, D]``."""

Objective = Callable[[Tensor], Tensor]
"""``predicted tokens [S, H, N, D] -> energies [S]`` (float32, lower is better)."""


@runtime_checkable
class RolloutModel(Protocol):
    """A model that predicts future frame tokens from context tokens, states and actions."""

    device: torch.device  # where the planner puts its samples

    def rollout(self, context_tokens: Tensor, context_states: Tensor, actions: Tensor) -> Tensor:
        """Context tokens ``[1, Tc, N, D]``, states ``[1, Tc, 7]``, actions ``[S, H, 7]`` ->
        the (layer-normed) tokens predicted after each action, ``[S, H, N, D]``."""
        ...


@runtime_checkable
class PlanningWorldModel(RolloutModel, Protocol):
    """A :class:`RolloutModel` that can also encode camera frames."""

    def encode_frames(self, frames: np.ndarray | Tensor) -> Tensor:
        """uint8 frames ``[T, H, W, 3]`` -> layer-normed tokens ``[1, T, N, D]``."""
        ...


def bind_context(
    model: RolloutModel, context_tokens: Tensor, context_states: Tensor, differentiable: bool = False
) -> RolloutFn:
    """The rollout function of ``model`` from a fixed context (tokens ``[1, Tc, N, D]``, states ``[1, Tc, 7]``).

    ``differentiable``: the gradient planners need autograd through the rollout; the sampling ones
    do not, and run it under ``torch.no_grad()`` (no graph kept for thousands of samples).
    """

    def rollout(actions: Tensor) -> Tensor:
        with torch.set_grad_enabled(differentiable):
            return model.rollout(context_tokens, context_states, actions)

    return rollout
