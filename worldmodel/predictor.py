"""The V-JEPA 2-AC action-conditioned predictor.

Per time step t the sequence holds ``[action_t, state_t, (extrinsics_t,) frame tokens_t]``; a
block-causal mask lets every token of step t see every token of steps <= t. The output at the
frame tokens of step t predicts the encoder tokens of frame t+1.

Planning rolls this forward one step at a time. Because the mask is block-causal, the keys and
values of earlier steps never change when a step is appended, so :class:`PredictorCache` keeps
them and each new step costs only its own tokens (the reference recomputes the whole prefix).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import PredictorConfig
from .layers import LAYER_NORM_EPS, Block, KVCacheLayer, rope_cos_sin


class PredictorCache:
    """Keys/values of the time steps run so far, one :class:`KVCacheLayer` per block."""

    def __init__(self, depth: int) -> None:
        self.layers = [KVCacheLayer() for _ in range(depth)]
        self.num_steps = 0


def block_causal_mask(step_of_query: Tensor, step_of_key: Tensor) -> Tensor:
    """``[Nq, Nk]`` boolean mask, True where the key's time step is <= the query's."""
    return step_of_key.unsqueeze(0) <= step_of_query.unsqueeze(1)


class ActionConditionedPredictor(nn.Module):
    """Frame tokens ``[B, T, N, encoder_dim]`` + actions/states ``[B, T, 7]`` -> predicted next-frame tokens
    ``[B, T, N, encoder_dim]``.

    ``N = views * grid_size**2``: with two views, the exterior's tokens then the wrist's (``PredictorConfig.views``).

    Parameter names follow the released ``vjepa2-ac-vitg.pt`` (``predictor_embed``, ``action_encoder``,
    ``state_encoder``, ``extrinsics_encoder``, ``predictor_blocks.{i}``, ``predictor_norm``,
    ``predictor_proj``). ``extrinsics_encoder`` exists in every released predictor, used or not.
    """

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.predictor_embed = nn.Linear(c.encoder_dim, c.dim)
        self.action_encoder = nn.Linear(c.action_dim, c.dim)
        self.state_encoder = nn.Linear(c.action_dim, c.dim)
        self.extrinsics_encoder = nn.Linear(c.action_dim - 1, c.dim)
        self.predictor_blocks = nn.ModuleList(Block(c.dim, c.num_heads, c.mlp_hidden_dim) for _ in range(c.depth))
        self.predictor_norm = nn.LayerNorm(c.dim, eps=LAYER_NORM_EPS)
        self.predictor_proj = nn.Linear(c.dim, c.encoder_dim)

    def token_positions(self, first_step: int, num_steps: int, device: torch.device) -> Tensor:
        """(t, h, w) of every token of steps ``first_step ..`` -> ``[T * (K + N), 3]``.

        Conditioning tokens sit at (t, 0, 0): RoPE then rotates them by time only, as in the reference.
        The views of a step are stacked along h (view v's rows are ``v * grid .. (v + 1) * grid - 1``).
        """
        c = self.config
        t = torch.arange(first_step, first_step + num_steps, device=device)
        rows = torch.arange(c.views * c.grid_size, device=device)
        columns = torch.arange(c.grid_size, device=device)
        patch_hw = torch.stack(torch.meshgrid(rows, columns, indexing="ij"), dim=-1).reshape(-1, 2)  # [N, 2]
        hw = torch.cat([patch_hw.new_zeros(c.cond_tokens, 2), patch_hw])  # [K + N, 2]
        per_step = hw.shape[0]
        return torch.cat(
            [t.repeat_interleave(per_step).unsqueeze(-1), hw.repeat(num_steps, 1)], dim=-1
        )  # [T * (K + N), 3]

    def forward(
        self,
        frame_tokens: Tensor,
        actions: Tensor,
        states: Tensor,
        extrinsics: Tensor | None = None,
        cache: PredictorCache | None = None,
    ) -> Tensor:
        """Predict the next frame's tokens for each of the T given steps.

        Args:
            frame_tokens: ``[B, T, N, encoder_dim]`` (layer-normed encoder tokens).
            actions, states: ``[B, T, 7]``.
            extrinsics: ``[B, T, 6]``, required when ``config.use_extrinsics``.
            cache: continue after the steps already in it (their keys/values are reused and these
                steps' are appended); ``None`` runs the T steps alone.
        Returns:
            ``[B, T, N, encoder_dim]``: output at step t predicts frame t+1.
        """
        c = self.config
        B, T, N, _ = frame_tokens.shape
        if N != c.tokens_per_frame:
            raise ValueError(f"frame_tokens has {N} tokens per frame, the predictor expects {c.tokens_per_frame}")
        if actions.shape[:2] != (B, T) or states.shape[:2] != (B, T):
            raise ValueError(
                f"actions {tuple(actions.shape)} and states {tuple(states.shape)} "
                f"must be [B={B}, T={T}, {c.action_dim}]"
            )
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # each [B, T, dim]
        if c.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor was built with use_extrinsics=True: pass extrinsics [B, T, 6]")
            cond.append(self.extrinsics_encoder(extrinsics))
        x = torch.cat([torch.stack(cond, dim=2), self.predictor_embed(frame_tokens)], dim=2)  # [B, T, K+N, dim]
        per_step = x.shape[2]
        x = x.flatten(1, 2)  # [B, T*(K+N), dim]

        first_step = cache.num_steps if cache is not None else 0
        positions = self.token_positions(first_step, T, x.device)
        cos, sin = rope_cos_sin(positions, c.dim // c.num_heads)
        # New steps see all cached steps, and each other block-causally; one step alone needs no mask.
        attn_mask = None
        if T > 1:
            query_step = positions[:, 0]
            key_step = torch.cat([torch.arange(first_step, device=x.device).repeat_interleave(per_step), query_step])
            attn_mask = block_causal_mask(query_step, key_step)
        for i, block in enumerate(self.predictor_blocks):
            x = block(x, cos, sin, attn_mask=attn_mask, cache=cache.layers[i] if cache is not None else None)
        if cache is not None:
            cache.num_steps += T

        x = x.unflatten(1, (T, per_step))[:, :, c.cond_tokens :]  # [B, T, N, dim]
        return self.predictor_proj(self.predictor_norm(x))  # [B, T, N, encoder_dim]
