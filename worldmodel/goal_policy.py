"""A goal-conditioned policy on the world model's frozen tokens: (now, goal) -> the next actions.

The planner's energy to one final goal photo is not monotone along a multi-stage task (the hand
goes down to the cube and the energy climbs; ``docs/planner.md``, "One goal photo"), so a two-step
search that scores the end against that photo sees the hill, not the valley behind it. This module
amortises the search instead: a small network reads the encoder's tokens of the frame now and of
the goal image, and the robot's state, and predicts the chunk of the next ``chunk`` predictor-step
actions (0.5 s each at 4 fps, 2-frame tubelets). It is trained by behaviour cloning with hindsight
goals (any later frame of the same demonstration is a goal: Kaelbling 1993, Andrychowicz et al.
2017; goal-conditioned BC on frozen latents is the GCBC baseline of OGBench and of arXiv
2605.08732), by ``jepa-mpc train-policy`` (:mod:`worldmodel.training.train_goal_policy`).

The planner uses it alone (one forward pass per control step) or as the mean CEM starts from
(``PlannerConfig.proposal``); it sees the policy only through
:meth:`worldmodel.world_model.WorldModel.propose`.

Layout, nanoGPT-small: each token is projected to ``token_dim`` features by one shared linear map,
the frame now, the goal minus now and the state (position, rotation matrix, gripper: 13 numbers,
so that roll's wrap at +-pi is no jump) are concatenated, and an MLP of ``depth`` GELU layers
(dropout after each while training) outputs ``[chunk, 7]`` targets (the hand's deltas, the gripper's
closedness) in units of their per-dimension spread in training (``target_scale``, a buffer stored
with the weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM, STATE_DIM, euler_xyz_to_matrix

from .config import GoalPolicyConfig

STATE_FEATURES = 3 + 9 + 1  # position (m), rotation matrix, gripper closedness


def state_features(states: Tensor) -> Tensor:
    """7-D states ``[B, 7]`` (m, extrinsic xyz Euler in rad, closedness) -> ``[B, 13]`` continuous features."""
    rotation = euler_xyz_to_matrix(states[:, 3:6]).flatten(1)  # [B, 9]
    return torch.cat([states[:, :3], rotation, states[:, 6:7]], dim=1)


class GoalConditionedPolicy(nn.Module):
    """tokens now ``[B, N, D]``, states ``[B, 7]``, goal tokens ``[B, N, D]`` -> actions ``[B, chunk, 7]``.

    The network predicts the gripper's closedness after each step, not its delta: a demonstration
    closes the gripper in one or two frames of sixty, so the delta is zero almost everywhere and an L1
    fit (a median) never closes it, while the closedness is a step that a median follows.
    :meth:`forward` turns it into the deltas the planner executes.
    """

    def __init__(self, config: GoalPolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.token_proj = nn.Linear(config.encoder_dim, config.token_dim)
        width = 2 * config.tokens_per_frame * config.token_dim + STATE_FEATURES
        widths = [width] + [config.hidden_dim] * config.depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head = nn.Linear(widths[-1], config.chunk * ACTION_DIM)
        # Per-dimension spread of the training targets (m, rad, closedness): the network's outputs are
        # in these units, so the gripper's ~1 does not drown the hand's centimetres in the loss.
        self.register_buffer("target_scale", torch.ones(ACTION_DIM))

    def predict(self, tokens: Tensor, states: Tensor, goal_tokens: Tensor) -> Tensor:
        """``[B, chunk, 7]``: the hand's deltas (m, rad) and the gripper's closedness after each step."""
        N, D = self.config.tokens_per_frame, self.config.encoder_dim
        if tokens.shape[1:] != (N, D) or goal_tokens.shape != tokens.shape:
            raise ValueError(
                f"tokens and goal_tokens must both be [B, {N}, {D}], got {tuple(tokens.shape)} "
                f"and {tuple(goal_tokens.shape)}"
            )
        if states.shape != (tokens.shape[0], STATE_DIM):
            raise ValueError(f"states must be [{tokens.shape[0]}, {STATE_DIM}], got {tuple(states.shape)}")
        now = self.token_proj(tokens).flatten(1)  # [B, N * token_dim]
        goal = self.token_proj(goal_tokens).flatten(1)  # [B, N * token_dim]
        x = torch.cat([now, goal - now, state_features(states)], dim=1)  # [B, 2 N token_dim + 13]
        for layer in self.hidden:
            x = F.dropout(F.gelu(layer(x)), self.config.dropout, self.training)  # [B, hidden_dim]
        return self.head(x).unflatten(1, (self.config.chunk, ACTION_DIM)) * self.target_scale  # [B, chunk, 7]

    def forward(self, tokens: Tensor, states: Tensor, goal_tokens: Tensor) -> Tensor:
        """The 7-D actions ``[B, chunk, 7]`` (jepa_mpc_foundation.pose): :meth:`predict`'s closedness as deltas."""
        predicted = self.predict(tokens, states, goal_tokens)
        closedness = predicted[..., GRIPPER_DIM].clamp(0.0, 1.0)  # [B, chunk]
        before = torch.cat([states[:, None, GRIPPER_DIM], closedness[:, :-1]], dim=1)  # [B, chunk]
        return torch.cat([predicted[..., :GRIPPER_DIM], (closedness - before)[..., None]], dim=-1)
