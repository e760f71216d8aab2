"""The V-JEPA 2-AC post-training loss, and the no-motion baseline it must beat.

With layer-normed encoder tokens ``h`` ``[B, T, N, D]`` of a clip, actions ``a`` ``[B, T-1, 7]`` and
states ``s`` ``[B, T, 7]``:

- teacher forcing: the predictor sees the true frames ``h[:, :T-1]`` and predicts every next frame
  at once (block-causal, so output t depends only on steps <= t); L1 to ``h[:, 1:]``;
- rollout: starting from ``h[:, 0]`` and the first teacher-forced prediction, each layer-normed
  prediction is fed back as the next input for ``rollout_steps`` steps in all; L1 to ``h[:, 1:k+1]``.

The loss is their sum, as in the reference (``app/vjepa_droid/train.py``, loss_exp 1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from worldmodel.predictor import ActionConditionedPredictor
from worldmodel.world_model import normalize_tokens


class PredictorLoss(nn.Module):
    """Wraps the predictor so that one ``forward`` is one training loss (what DDP wraps)."""

    def __init__(self, predictor: ActionConditionedPredictor, rollout_steps: int) -> None:
        super().__init__()
        self.predictor = predictor
        self.rollout_steps = rollout_steps

    def step(self, tokens: Tensor, actions: Tensor, states: Tensor) -> Tensor:
        """Predicted, layer-normed next tokens ``[B, t, N, D]`` for t given steps."""
        return normalize_tokens(self.predictor(tokens, actions, states).float())

    def forward(self, tokens: Tensor, actions: Tensor, states: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """tokens ``[B, T, N, D]``, actions ``[B, T-1, 7]``, states ``[B, T, 7]`` -> (total, teacher forcing, rollout)
        scalars."""
        T = tokens.shape[1]
        if self.rollout_steps > T - 1:
            raise ValueError(
                f"a rollout of {self.rollout_steps} steps needs clips of >= {self.rollout_steps + 1} steps, got {T}"
            )
        targets = tokens[:, 1:]  # [B, T-1, N, D]
        teacher_forced = self.step(tokens[:, :-1], actions, states[:, :-1])  # [B, T-1, N, D]
        teacher_forcing = (teacher_forced - targets).abs().mean()

        rolled = [tokens[:, :1], teacher_forced[:, :1]]  # true frame 0, then predicted frame 1
        for n in range(1, self.rollout_steps):
            history = torch.cat(rolled, dim=1)  # [B, n+1, N, D]
            rolled.append(self.step(history, actions[:, : n + 1], states[:, : n + 1])[:, -1:])
        predicted = torch.cat(rolled[1:], dim=1)  # [B, rollout_steps, N, D]
        rollout = (predicted - targets[:, : self.rollout_steps]).abs().mean()
        return teacher_forcing + rollout, teacher_forcing, rollout


def no_motion_loss(tokens: Tensor) -> Tensor:
    """L1 of predicting each next frame as a copy of the current one (the teacher-forcing baseline)."""
    return (tokens[:, 1:] - tokens[:, :-1]).abs().mean()
