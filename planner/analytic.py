"""An analytic world model whose optimum is known, for tests and benchmarks of the planner.

The "frame tokens" of a 7-D state are a fixed random linear map of smooth state features, layer
normed like real encoder tokens::

    features(s) = [xyz / 0.05, R(s) flattened (9), gripper]            # [13]
    tokens(s)   = layer_norm((features(s) @ W + b).view(N, D))          # [N, D]

The map is injective on states (13 features into N * D >= 13 generic outputs), so the goal energy
is zero exactly when the rolled-out state equals the goal state: the optimal plan is any action
sequence that moves the state to the goal within the per-step limits. States move with the
project's 7-D pose convention (``jepa_mpc_foundation.pose.apply_action``), as in the real world model.

Its "camera" writes the state's float32 bytes into the image, so :meth:`encode_frames` recovers
the exact state from a frame made by :meth:`render`; a closed loop "sense, plan, act" can then be
tested end to end without a renderer.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM, STATE_DIM, apply_action, euler_xyz_to_matrix

_MAGIC = np.frombuffer(b"AWM1", dtype=np.uint8)  # marks frames made by render()
_STATE_BYTES = STATE_DIM * 4
_POSITION_SCALE = 0.05  # m: one reference step moves a position feature by about 1


class AnalyticWorldModel:
    """Tokens ``[N, D]`` = layer-normed linear map of the 7-D state; satisfies ``PlanningWorldModel``."""

    def __init__(
        self,
        num_tokens: int = 4,
        token_dim: int = 8,
        image_size: int = 16,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if num_tokens * token_dim < 13:
            raise ValueError(
                f"num_tokens * token_dim = {num_tokens * token_dim} must be >= 13 (the state features), "
                "or distinct states could share tokens"
            )
        if image_size * image_size * 3 < _MAGIC.size + _STATE_BYTES:
            raise ValueError(f"image_size={image_size} is too small to carry a state; use >= 5")
        self.num_tokens, self.token_dim, self.image_size = num_tokens, token_dim, image_size
        self.device, self.dtype = torch.device(device), dtype
        generator = torch.Generator().manual_seed(seed)
        self.weight = (torch.randn(13, num_tokens * token_dim, generator=generator) / 13**0.5).to(device)
        self.bias = torch.randn(num_tokens * token_dim, generator=generator).to(device)

    def tokens_for_states(self, states: Tensor) -> Tensor:
        """States ``[..., 7]`` -> tokens ``[..., N, D]`` in ``self.dtype``."""
        states = states.to(self.device, torch.float32)
        features = torch.cat(
            [
                states[..., :3] / _POSITION_SCALE,
                euler_xyz_to_matrix(states[..., 3:6]).flatten(-2),
                states[..., GRIPPER_DIM : GRIPPER_DIM + 1],
            ],
            dim=-1,
        )
        tokens = (features @ self.weight + self.bias).unflatten(-1, (self.num_tokens, self.token_dim))
        return F.layer_norm(tokens, (self.token_dim,)).to(self.dtype)

    def rollout(self, context_tokens: Tensor, context_states: Tensor, actions: Tensor) -> Tensor:
        """Context ``[1, Tc, N, D]`` (unused: the state says it all), states ``[1, Tc, 7]``,
        actions ``[S, H, 7]`` -> tokens after each action ``[S, H, N, D]``."""
        if actions.dim() != 3 or actions.shape[-1] != ACTION_DIM:
            raise ValueError(f"actions must be [S, H, {ACTION_DIM}], got shape {tuple(actions.shape)}")
        state = context_states[:, -1].to(self.device, torch.float32).expand(actions.shape[0], STATE_DIM)
        states = []
        for step in range(actions.shape[1]):  # over the horizon, never over samples
            state = apply_action(state, actions[:, step].to(self.device, torch.float32))
            states.append(state)
        return self.tokens_for_states(torch.stack(states, dim=1))

    def render(self, state: Tensor | np.ndarray) -> np.ndarray:
        """A uint8 frame ``[S, S, 3]`` that carries ``state [7]`` (exactly, as float32 bytes)."""
        payload = np.asarray(state, dtype=np.float32).reshape(STATE_DIM).tobytes()
        image = np.full(self.image_size * self.image_size * 3, 127, dtype=np.uint8)
        image[: _MAGIC.size] = _MAGIC
        image[_MAGIC.size : _MAGIC.size + _STATE_BYTES] = np.frombuffer(payload, dtype=np.uint8)
        return image.reshape(self.image_size, self.image_size, 3)

    def state_from_frame(self, frame: np.ndarray) -> np.ndarray:
        """The state ``[7]`` carried by a frame from :meth:`render`."""
        flat = np.ascontiguousarray(frame, dtype=np.uint8).reshape(-1)
        if not np.array_equal(flat[: _MAGIC.size], _MAGIC):
            raise ValueError("frame was not made by AnalyticWorldModel.render (no state in it)")
        return np.frombuffer(flat[_MAGIC.size : _MAGIC.size + _STATE_BYTES].tobytes(), dtype=np.float32).copy()

    def encode_frames(self, frames: np.ndarray | Tensor) -> Tensor:
        """uint8 frames ``[T, H, W, 3]`` from :meth:`render` -> tokens ``[1, T, N, D]``."""
        frames = frames.cpu().numpy() if isinstance(frames, Tensor) else np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be [T, H, W, 3], got shape {frames.shape}")
        states = torch.from_numpy(np.stack([self.state_from_frame(f) for f in frames]))
        return self.tokens_for_states(states)[None]
