"""Encoder + action-conditioned predictor behind the narrow interface the planner uses.

- :meth:`WorldModel.encode_frames`: raw uint8 frames -> (layer-normed) tokens ``[1, T, N, D]``, each
  frame encoded alone as a 2-frame tubelet, as the reference does at planning time.
- :meth:`WorldModel.rollout`: predict the tokens after each of H candidate actions for S samples at
  once, ``[S, H, N, D]``, feeding each layer-normed prediction back and moving the 7-D state with
  :func:`jepa_mpc_foundation.pose.apply_action`. Keys/values of finished steps are cached.
- :meth:`WorldModel.propose`: the next actions ``[chunk, 7]`` its goal-conditioned policy proposes
  from the tokens now and the goal's, when the checkpoint holds one (:mod:`worldmodel.goal_policy`).
- :meth:`WorldModel.ood_score`: how unlike the training frames a frame's tokens are, and
  :attr:`WorldModel.ood_threshold` the score above which they are unlike, when the checkpoint holds the
  training frames' token statistics (:mod:`worldmodel.token_statistics`).
- :meth:`WorldModel.goal_from_text`: the goal tokens ``[N, D]`` an instruction asks for, predicted from the
  frame now, when the checkpoint holds a language-goal predictor (:mod:`worldmodel.language_goal`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_mpc_foundation.pose import ACTION_DIM, STATE_DIM, actions_from_states, apply_action

from .checkpoint import (
    CheckpointError,
    encoder_state_dict,
    goal_policy_config_from_checkpoint,
    language_goal_config_from_checkpoint,
    load_state_dict_strict,
    predictor_state_dict,
    read_checkpoint,
    token_statistics_config_from_checkpoint,
    world_model_config_from_checkpoint,
)
from .config import WorldModelConfig
from .encoder import build_encoder, init_vit_weights
from .goal_policy import GoalConditionedPolicy
from .hf_checkpoint import check_hf_checkpoint, is_hf_checkpoint
from .language_goal import LanguageGoalPredictor
from .precision import autocast, resolve_device
from .predictor import ActionConditionedPredictor, PredictorCache
from .preprocess import as_frame_tensor, preprocess_frames, split_views
from .token_statistics import TokenStatistics


def normalize_tokens(tokens: Tensor) -> Tensor:
    """Parameter-free layer norm over the feature dim (the reference's ``normalize_reps``)."""
    return F.layer_norm(tokens, (tokens.shape[-1],))


def encode_each_frame(
    encoder: nn.Module, frames: np.ndarray | Tensor, views: int = 1, batch_size: int = 64, bf16: bool = True
) -> Tensor:
    """uint8 frames ``[T, H, V * W, 3]`` -> the encoder's tokens ``[T, V * n, D]`` (float32, not layer-normed).

    Each view of each frame is encoded alone, repeated into a 2-frame tubelet (as the reference does at
    planning time); the views' tokens follow each other in order (:func:`worldmodel.preprocess.split_views`).
    Planning (:meth:`WorldModel.encode_frames`), the feature cache and end-to-end training all encode
    through here, so they see the same tokens. Autograd follows the caller; ``bf16``: autocast on CUDA.

    Raises:
        ValueError: frames that are not uint8 RGB, or whose width does not hold ``views`` views.
    """
    c = encoder.config
    device = next(encoder.parameters()).device
    per_view = []
    for view in split_views(as_frame_tensor(frames), views):
        tokens = []
        for chunk in view.split(batch_size):
            images = preprocess_frames(chunk, c.img_size, device)  # [b, 3, S, S]
            clips = images.unsqueeze(2).expand(-1, -1, c.tubelet_size, -1, -1)  # [b, 3, tubelet, S, S]
            with autocast(device, bf16):
                tokens.append(encoder(clips).float())  # [b, n, D]
        per_view.append(torch.cat(tokens))  # [T, n, D]
    return torch.cat(per_view, dim=1)  # [T, V * n, D]


class WorldModel(nn.Module):
    """A V-JEPA 2 (or 2.1) encoder and V-JEPA 2-AC predictor used together for planning."""

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder)
        self.predictor = ActionConditionedPredictor(config.predictor)
        # A goal-conditioned policy on the tokens (jepa-mpc train-policy), when the checkpoint holds one.
        self.goal_policy: GoalConditionedPolicy | None = None
        # A language-goal predictor (jepa-mpc train-language-goal), when the checkpoint holds one.
        self.language_goal: LanguageGoalPredictor | None = None
        # The training frames' token statistics (jepa-mpc ood-stats, train-policy), when the checkpoint holds them.
        self.token_statistics: TokenStatistics | None = None
        # bf16 autocast on CUDA (worldmodel.precision); off until load_world_model puts the model on a GPU.
        self.bf16 = False

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _finish(self, tokens: Tensor) -> Tensor:
        tokens = tokens.float()
        return normalize_tokens(tokens) if self.config.normalize_tokens else tokens

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray | Tensor, batch_size: int = 32) -> Tensor:
        """uint8 RGB frames ``[T, H, W, 3]`` (any size) -> tokens ``[1, T, N, D]``.

        Each frame is repeated into a 2-frame tubelet and encoded alone. A model with V views takes
        frames ``[T, H, V * W, 3]`` (the views side by side, :func:`worldmodel.preprocess.tile_views`)
        and returns each view's tokens in turn, ``N = V * grid**2``.
        """
        tokens = encode_each_frame(self.encoder, frames, self.config.predictor.views, batch_size, self.bf16)
        return self._finish(tokens).unsqueeze(0)  # [1, T, V * n, D]

    @property
    def can_propose(self) -> bool:
        """Whether :meth:`propose` works: the model holds a goal-conditioned policy."""
        return self.goal_policy is not None

    @torch.no_grad()
    def propose(self, context_tokens: Tensor, context_states: Tensor, goal_tokens: Tensor) -> Tensor:
        """The goal-conditioned policy's next actions ``[chunk, 7]`` from the last context frame.

        Args:
            context_tokens: ``[1, Tc, N, D]`` observed (layer-normed) tokens, the last one is "now".
            context_states: ``[1, Tc, 7]`` the states at those frames.
            goal_tokens: ``[N, D]`` the goal image's tokens.
        Raises:
            RuntimeError: the model holds no goal-conditioned policy (train one with ``jepa-mpc train-policy``).
        """
        if self.goal_policy is None:
            raise RuntimeError(
                "this world model holds no goal-conditioned policy: add one with `jepa-mpc train-policy "
                "--checkpoint MODEL --data DATASETS --out DIR`, or plan with --planner.proposal none"
            )
        with autocast(self.device, self.bf16):
            actions = self.goal_policy(context_tokens[:, -1], context_states[:, -1], goal_tokens[None])  # [1, chunk, 7]
        return actions[0].float()

    @property
    def can_read_goal_text(self) -> bool:
        """Whether :meth:`goal_from_text` works: the model holds a language-goal predictor."""
        return self.language_goal is not None

    @torch.no_grad()
    def goal_from_text(self, instruction: str, tokens: Tensor) -> Tensor:
        """The goal tokens ``[N, D]`` an instruction asks for, predicted from one frame's tokens ``[N, D]`` (all views).

        Raises:
            RuntimeError: the model holds no language-goal predictor (train one with ``jepa-mpc train-language-goal``).
            worldmodel.language_goal.InstructionError: an instruction the predictor refuses (empty, naming
                nothing it knows, not fitting the scene in view).
        """
        if self.language_goal is None:
            raise RuntimeError(
                "this world model holds no language-goal predictor: add one with `jepa-mpc train-language-goal "
                "--checkpoint MODEL --data DATASETS --out DIR` (datasets whose task is each episode's instruction)"
            )
        with autocast(self.device, self.bf16):
            goal, _ = self.language_goal.predict_goal(instruction, tokens.to(self.device).float())
        return goal.float()

    @property
    def ood_threshold(self) -> float | None:
        """The :meth:`ood_score` above which a frame is unlike the training data (stated with the model's
        statistics: a high quantile of held-out in-range frames' scores); None without statistics."""
        return None if self.token_statistics is None else self.token_statistics.threshold

    @torch.no_grad()
    def ood_score(self, tokens: Tensor) -> float | None:
        """How unlike the training frames one frame is: the mean ``log(1 + z^2)`` of its tokens' features, z their
        deviation from the training frames' per-token mean in units of their std (:mod:`worldmodel.token_statistics`).

        Args:
            tokens: ``[N, D]`` one frame's tokens as :meth:`encode_frames` gives them (all views).
        Returns:
            the score (dimensionless), or None when the checkpoint holds no token statistics.
        Raises:
            ValueError: ``tokens`` are not ``[N, D]`` of this model.
        """
        if self.token_statistics is None:
            return None
        N, D = self.config.predictor.tokens_per_frame, self.config.encoder.dim
        if tuple(tokens.shape) != (N, D):
            raise ValueError(f"tokens must be one frame's [{N}, {D}], got {tuple(tokens.shape)}")
        return float(self.token_statistics(tokens.to(self.token_statistics.mean.device)))

    def _check_rollout_inputs(self, context_tokens: Tensor, context_states: Tensor, actions: Tensor) -> None:
        N, D = self.config.predictor.tokens_per_frame, self.config.encoder.dim
        if context_tokens.ndim != 4 or context_tokens.shape[0] != 1 or context_tokens.shape[2:] != (N, D):
            raise ValueError(f"context_tokens must be [1, T, {N}, {D}], got {tuple(context_tokens.shape)}")
        if context_states.shape != (1, context_tokens.shape[1], STATE_DIM):
            raise ValueError(
                f"context_states must be [1, {context_tokens.shape[1]}, {STATE_DIM}], got {tuple(context_states.shape)}"
            )
        if actions.ndim != 3 or actions.shape[-1] != ACTION_DIM:
            raise ValueError(f"actions must be [S, H, {ACTION_DIM}], got {tuple(actions.shape)}")

    def rollout(self, context_tokens: Tensor, context_states: Tensor, actions: Tensor) -> Tensor:
        """Predicted tokens after each candidate action, with a key/value cache.

        Autograd follows the caller: the sampling planners call it under ``torch.no_grad()``
        (``planner.interface.bind_context``), gradient planning with autograd on, to differentiate the
        energy with respect to ``actions``.

        Args:
            context_tokens: ``[1, Tc, N, D]`` observed (layer-normed) tokens, the last one is "now".
            context_states: ``[1, Tc, 7]`` the states at those frames (earlier actions derive from them).
            actions: ``[S, H, 7]`` candidate action sequences.
        Returns:
            ``[S, H, N, D]``: tokens predicted after actions ``0..h`` for each h.
        """
        self._check_rollout_inputs(context_tokens, context_states, actions)
        S, H, _ = actions.shape
        Tc = context_tokens.shape[1]
        cache = PredictorCache(self.config.predictor.depth)
        # The poses are moved before autocast: under it the rotation matmuls of apply_action run in
        # bf16 (2-3 digits; the gimbal-lock test then uses bf16's eps), and the error compounds step
        # after step. The states depend on the actions alone, never on the predicted tokens.
        past_actions = actions_from_states(context_states) if Tc > 1 else None  # [1, Tc-1, 7]
        states = [context_states[:, -1:].expand(S, -1, -1)]  # [S, 1, 7] each
        for h in range(H - 1):
            states.append(apply_action(states[-1], actions[:, h : h + 1]))
        with autocast(self.device, self.bf16):
            if Tc > 1:  # the observed past is shared by every sample: run it once, batch 1
                self.predictor(context_tokens[:, :-1], past_actions, context_states[:, :-1], cache=cache)
            tokens = context_tokens[:, -1:].expand(S, -1, -1, -1)  # [S, 1, N, D]
            predictions = []
            for h in range(H):
                action = actions[:, h : h + 1]  # [S, 1, 7]
                tokens = self._finish(self.predictor(tokens, action, states[h], cache=cache))  # [S, 1, N, D]
                predictions.append(tokens)
        return torch.cat(predictions, dim=1)

    @torch.no_grad()
    def rollout_uncached(self, context_tokens: Tensor, context_states: Tensor, actions: Tensor) -> Tensor:
        """The straightforward rollout of the reference: the whole sequence is re-run at every step.

        Kept as the ground truth that :meth:`rollout` is tested against.
        """
        self._check_rollout_inputs(context_tokens, context_states, actions)
        S, H, _ = actions.shape
        tokens = context_tokens.expand(S, -1, -1, -1)
        # Poses in float32, outside autocast (as in rollout): [S, Tc + H - 1, 7] states, all known in advance.
        states = context_states.expand(S, -1, -1)
        past_actions = actions_from_states(context_states).expand(S, -1, -1)  # [S, Tc-1, 7]
        for h in range(H - 1):
            states = torch.cat([states, apply_action(states[:, -1:], actions[:, h : h + 1])], dim=1)
        Tc = context_tokens.shape[1]
        predictions = []
        with autocast(self.device, self.bf16):
            for h in range(H):
                step_actions = torch.cat([past_actions, actions[:, : h + 1]], dim=1)
                out = self.predictor(tokens, step_actions, states[:, : Tc + h])  # [S, T, N, D]
                next_tokens = self._finish(out[:, -1:])
                predictions.append(next_tokens)
                tokens = torch.cat([tokens, next_tokens], dim=1)
        return torch.cat(predictions, dim=1)


def build_world_model(config: WorldModelConfig, seed: int | None = None) -> WorldModel:
    """A randomly initialised world model (for training from scratch, tests and benchmarks)."""
    if seed is not None:
        torch.manual_seed(seed)
    model = WorldModel(config)
    init_vit_weights(model)
    return model


def load_world_model(
    path: str | Path,
    device: str | torch.device | None = None,
    encoder_key: str = "encoder",
    img_size: int = 256,
    config: WorldModelConfig | None = None,
) -> WorldModel:
    """Load a project checkpoint or a released V-JEPA 2-AC file (e.g. ``vjepa2-ac-vitg.pt``).

    Args:
        encoder_key: which encoder of a released file to use (``encoder`` or ``target_encoder``).
        img_size: the input size of a released model (256 for ``vjepa2-ac-vitg.pt``); ignored for the
            project's own checkpoints, which carry their config.
        config: force a config instead of reading/inferring it.

    ``path`` names a file (or a Hugging Face folder, refused with the reason); the shipped default model
    is ``worldmodel.checkpoint.DEFAULT_CHECKPOINT`` (``resolve_checkpoint("")`` gives it, as the commands do).

    Raises:
        CheckpointError: ``path`` is empty or None, or the file is none of the layouts of
            :data:`worldmodel.checkpoint.CHECKPOINT_LAYOUTS` that hold a predictor, or its weights do not
            fit or hold NaN or inf (named), or its goal policy or token statistics were made for other sizes; the
            message names the file and the fix. A Hugging Face folder is refused for what is wrong with it first
            (missing or unreadable files), else because it holds no predictor.
    """
    if path is None or str(path) == "":
        raise CheckpointError(
            f"load_world_model: no checkpoint given ({path!r}): pass a model.pt, or "
            "worldmodel.checkpoint.resolve_checkpoint('') for the shipped default model"
        )
    if is_hf_checkpoint(path):
        check_hf_checkpoint(path)  # a broken folder: its real problem first (train --encoder would refuse it too)
        raise CheckpointError(
            f"{path}: a Hugging Face VJEPA2Model checkpoint holds an encoder (and V-JEPA 2's mask predictor) but no "
            "action-conditioned predictor, so it cannot plan: post-train one with `jepa-mpc train --encoder "
            f"{path}` and plan with the model.pt it writes"
        )
    data = read_checkpoint(path)
    if config is None:
        try:
            config = world_model_config_from_checkpoint(data, img_size=img_size, encoder_key=encoder_key)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
    model = WorldModel(config)
    key = "encoder" if data.get("format") == "jepa_mpc" else encoder_key
    load_state_dict_strict(model.encoder, encoder_state_dict(data, key), where=f"{path} [{key}]")
    load_state_dict_strict(model.predictor, predictor_state_dict(data), where=f"{path} [predictor]")
    policy_config = goal_policy_config_from_checkpoint(data, path)
    if policy_config is not None:
        if (policy_config.encoder_dim, policy_config.tokens_per_frame) != (
            config.encoder.dim,
            config.predictor.tokens_per_frame,
        ):
            raise CheckpointError(
                f"{path}: its goal policy reads {policy_config.tokens_per_frame} tokens of {policy_config.encoder_dim} "
                f"features, the world model makes {config.predictor.tokens_per_frame} of {config.encoder.dim}: the "
                "policy was trained on another model; train it again with `jepa-mpc train-policy`"
            )
        model.goal_policy = GoalConditionedPolicy(policy_config)
        load_state_dict_strict(model.goal_policy, data["goal_policy"], where=f"{path} [goal_policy]")
    language_config = language_goal_config_from_checkpoint(data, path)
    if language_config is not None:
        if (language_config.encoder_dim, language_config.tokens_per_frame) != (
            config.encoder.dim,
            config.predictor.tokens_per_frame,
        ):
            raise CheckpointError(
                f"{path}: its language-goal predictor reads {language_config.tokens_per_frame} tokens of "
                f"{language_config.encoder_dim} features, the world model makes {config.predictor.tokens_per_frame} of "
                f"{config.encoder.dim}: it was trained on another model; train it again with "
                "`jepa-mpc train-language-goal`"
            )
        model.language_goal = LanguageGoalPredictor(language_config)
        load_state_dict_strict(model.language_goal, data["language_goal"], where=f"{path} [language_goal]")
    statistics_config = token_statistics_config_from_checkpoint(data, path)
    if statistics_config is not None:
        sizes = (statistics_config.tokens_per_frame, statistics_config.encoder_dim, statistics_config.views)
        if sizes != (config.predictor.tokens_per_frame, config.encoder.dim, config.predictor.views):
            raise CheckpointError(
                f"{path}: its token statistics hold {sizes[0]} tokens of {sizes[1]} features in {sizes[2]} view(s), "
                f"the world model makes {config.predictor.tokens_per_frame} of {config.encoder.dim} in "
                f"{config.predictor.views}: they were computed with another model; compute them again with "
                "`jepa-mpc ood-stats`"
            )
        model.token_statistics = TokenStatistics(statistics_config)
        load_state_dict_strict(model.token_statistics, data["token_statistics"], where=f"{path} [token_statistics]")
    device = resolve_device(device)
    model = model.to(device).eval()
    model.bf16 = device.type == "cuda"
    return model
