"""``jepa-mpc train-policy``: a goal-conditioned policy on a world model's frozen tokens
(:mod:`worldmodel.goal_policy`).

    jepa-mpc train-policy --checkpoint runs/dm/predictor/model.pt --data data/pickplace data/push --out runs/policy

The world model's encoder encodes every episode once (the same feature cache as ``jepa-mpc train``,
:mod:`.feature_cache`); each step then draws frames of the training episodes and gives each a goal
by hindsight relabelling: with probability ``hindsight.final_goal_fraction`` the episode's last frame
(what a user's one goal photo shows), else a later frame drawn uniformly. The target is the chunk of
the next ``policy.chunk`` predictor-step actions the episode actually took from that frame
(``action_between`` of the states one tubelet apart, 0.5 s at 4 fps; zeros past the episode's end:
at the goal, stay), with the gripper's closedness after each step in place of its delta
(:class:`worldmodel.goal_policy.GoalConditionedPolicy` says why). The loss is the L1 distance in
units of the targets' per-dimension spread. The held-out episodes are scored with their last frame as
the goal: the first action's L1 against the zero action's.

``OUT/model.pt`` is the input world model (its config, encoder, predictor and metadata unchanged)
with the policy and its config added, and the token statistics of the training episodes' frames with
the out-of-distribution threshold from the held-out ones' (as ``jepa-mpc ood-stats`` computes them
from the same cache, :mod:`.ood_stats`); the training state, metrics and ``summary.json`` sit beside
it, and ``--resume`` continues an interrupted run (:mod:`.loop`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from jepa_mpc_foundation.configuration import ConfigError, dataclass_to_dict
from jepa_mpc_foundation.pose import GRIPPER_DIM, actions_from_states
from worldmodel.checkpoint import read_checkpoint, save_world_model_checkpoint
from worldmodel.config import GoalPolicyConfig
from worldmodel.goal_policy import GoalConditionedPolicy

from .clips import split_episodes
from .config import TrainGoalPolicyConfig
from .distributed import setup_distributed
from .encoder_checkpoint import file_digest
from .episodes import EpisodeSource, check_sample_fps, split_report
from .feature_cache import FeatureCache, cache_frozen_tokens, load_frozen_world_model
from .loop import Objective, train_loop
from .ood_stats import cache_token_statistics
from .optimization import build_optimizer
from .run_summary import RunSummary
from .train_state import clear_run_folder, open_run_folder

MODEL_FILE = "model.pt"
MIN_TARGET_SCALE = 1e-3  # per-dimension floor of the targets' spread (a dimension no demonstration moved)
# Checkpoint entries of the world model itself; every other entry (its recipe, its training config) is kept as it is.
WORLD_MODEL_ENTRIES = (
    "format",
    "config",
    "encoder",
    "predictor",
    "goal_policy",
    "goal_policy_config",
    "token_statistics",
    "token_statistics_config",
)


@dataclass
class PolicyValidation:
    l1: float  # mean L1 of the first predicted action, in units of the action spread, goal = the episode's last frame
    zero_action_l1: float  # the same for the zero action: what l1 must beat
    translation_error_m: float  # mean distance between the first predicted and the true hand translation (m)
    frames: int


@dataclass(kw_only=True)
class PolicyTrainSummary(RunSummary):
    """The summary of a ``jepa-mpc train-policy`` run: the held-out scores, the feature cache it read and the
    out-of-distribution threshold stored with the model.

    A step draws samples (a frame and its goal), not clips: ``clips_per_second`` counts samples, and
    ``summary.json`` names it ``samples_per_second``, as it always has. The report is worded for this
    one-process run on cached tokens.
    """

    JSON_NAMES: ClassVar[dict[str, str]] = {"clips_per_second": "samples_per_second"}

    validation: PolicyValidation | None
    cache_folder: str
    ood_threshold: float | None = None  # the out-of-distribution threshold stored with the model (None: not yet)

    def text(self) -> str:
        lines = [
            f"trained the goal policy, steps {self.start_step}..{self.steps} in {self.train_seconds:.1f} s "
            f"({self.clips_per_second:.0f} samples/s), final train loss {self.final_train_loss:.4f}"
        ]
        v = self.validation
        if v is not None:
            lines.append(
                f"validation ({v.frames} frames, goal = the episode's last frame): L1 {v.l1:.4f} against "
                f"{v.zero_action_l1:.4f} for the zero action; "
                f"hand translation error {1000 * v.translation_error_m:.1f} mm"
            )
        lines += split_report(self.train_episodes, self.val_episodes, self.skipped_episodes)
        lines.append(f"feature cache: {self.cache_folder}")
        if self.steps < self.total_steps:
            lines.append(f"stopped at step {self.steps} of {self.total_steps}: resume with --resume true")
        else:
            lines.append(
                f"world model with its goal policy: {Path(self.out) / MODEL_FILE} "
                f"(plan from one goal photo with it: jepa-mpc eval --checkpoint ... --subgoals false)"
            )
            if self.ood_threshold is not None:
                lines.append(
                    f"and its training frames' token statistics: out-of-distribution threshold "
                    f"{self.ood_threshold:.4g} (99th percentile of the held-out frames' scores)"
                )
        return "\n".join(lines)


class HindsightSamples:
    """Frames of a feature cache with hindsight goals and the action chunks taken from them.

    ``tubelet`` sampled frames make one predictor step (2 at 4 fps: 0.5 s). The tokens are held in
    memory as float32 and every frame's action chunk is computed once: a step only gathers rows.
    """

    def __init__(self, cache: FeatureCache, episode_ids: list[int], tubelet: int, chunk: int) -> None:
        self.tokens = torch.from_numpy(np.array(cache.tokens, dtype=np.float32))  # [S, N, D]
        self.states = torch.from_numpy(np.array(cache.states, dtype=np.float32))  # [S, 7]
        rows, ends = [], []
        for e in episode_ids:
            entry = cache.episodes[e]
            first, last = entry["offset"], entry["offset"] + entry["length"] - 1
            rows.append(np.arange(first, last))  # every frame with a later one
            ends.append(np.full(last - first, last))
        self.rows = torch.from_numpy(np.concatenate(rows)) if rows else torch.zeros(0, dtype=torch.int64)  # [F]
        self.ends = torch.from_numpy(np.concatenate(ends)) if ends else torch.zeros(0, dtype=torch.int64)  # [F]
        self.tubelet, self.chunk = tubelet, chunk
        self.targets = self.policy_targets(self.rows, self.ends)  # [F, chunk, 7]

    def __len__(self) -> int:
        return len(self.rows)

    def actions(self, rows: Tensor, ends: Tensor) -> Tensor:
        """The ``chunk`` predictor-step actions ``[B, chunk, 7]`` taken from cache rows ``rows`` [B]; zeros past
        ``ends``."""
        steps = torch.arange(self.chunk + 1) * self.tubelet  # [chunk + 1]
        index = torch.minimum(rows[:, None] + steps, ends[:, None])  # [B, chunk + 1]
        return actions_from_states(self.states[index])  # [B, chunk, 7]

    def policy_targets(self, rows: Tensor, ends: Tensor) -> Tensor:
        """What the policy predicts (:meth:`GoalConditionedPolicy.predict`) from rows ``rows`` [B]: the chunk's
        actions ``[B, chunk, 7]`` with the gripper's closedness after each step in place of its delta."""
        targets = self.actions(rows, ends)
        steps = torch.arange(1, self.chunk + 1) * self.tubelet  # [chunk]
        index = torch.minimum(rows[:, None] + steps, ends[:, None])  # [B, chunk]
        targets[..., GRIPPER_DIM] = self.states[index, GRIPPER_DIM]
        return targets

    def batch(self, picks: Tensor, goals: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """tokens ``[B, N, D]``, states ``[B, 7]``, goal tokens ``[B, N, D]``, targets ``[B, chunk, 7]``
        (:meth:`policy_targets`) of the sample indices ``picks`` [B] with goal rows ``goals`` [B]."""
        rows = self.rows[picks]
        return (
            self.tokens[rows].to(device),
            self.states[rows].to(device),
            self.tokens[goals].to(device),
            self.targets[picks].to(device),
        )

    def draw(self, generator: torch.Generator, batch_size: int, final_fraction: float) -> tuple[Tensor, Tensor]:
        """Sample indices ``[B]`` and their goal rows ``[B]``: the episode's last frame with probability
        ``final_fraction``, else a later frame drawn uniformly."""
        picks = torch.randint(len(self.rows), (batch_size,), generator=generator)
        rows, ends = self.rows[picks], self.ends[picks]
        later = (
            rows + 1 + (torch.rand(batch_size, generator=generator) * (ends - rows)).long().clamp(max=ends - rows - 1)
        )
        final = torch.rand(batch_size, generator=generator) < final_fraction
        return picks, torch.where(final, ends, later)

    def target_scale(self) -> Tensor:
        """Per-dimension std ``[7]`` of the first targets of every frame's chunk (floored at ``MIN_TARGET_SCALE``)."""
        return self.targets[:, 0].std(0).clamp(min=MIN_TARGET_SCALE)


def cloning_error(
    policy: GoalConditionedPolicy, tokens: Tensor, states: Tensor, goal_tokens: Tensor, target: Tensor
) -> Tensor:
    """The behaviour-cloning error ``[B, chunk, 7]``: ``|predicted - target|`` in units of the targets' spread."""
    return (policy.predict(tokens, states, goal_tokens) - target).abs() / policy.target_scale


@torch.no_grad()
def validate(
    policy: GoalConditionedPolicy, samples: HindsightSamples, batch_size: int, device: torch.device
) -> PolicyValidation:
    """The first action's L1 (in spread units) with the episode's last frame as the goal, beside the zero action's."""
    policy.eval()
    scale = policy.target_scale
    sums = torch.zeros(3, dtype=torch.float64)
    for picks in torch.arange(len(samples)).split(batch_size):
        tokens, states, goal_tokens, _ = samples.batch(picks, samples.ends[picks], device)
        target = samples.actions(samples.rows[picks], samples.ends[picks])[:, 0].to(device)  # [B, 7]
        first = policy(tokens, states, goal_tokens)[:, 0]  # [B, 7]
        sums[0] += ((first - target).abs() / scale).mean(1).sum().item()
        sums[1] += (target.abs() / scale).mean(1).sum().item()
        sums[2] += (first[:, :3] - target[:, :3]).norm(dim=1).sum().item()
    policy.train()
    mean = (sums / max(len(samples), 1)).tolist()
    return PolicyValidation(*mean, frames=len(samples))


def train_goal_policy(
    config: TrainGoalPolicyConfig,
    source: EpisodeSource,
    checkpoint: str | Path,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> PolicyTrainSummary:
    """Train a goal-conditioned policy on ``checkpoint``'s frozen tokens; write ``out/model.pt`` (the world
    model with the policy), ``out/train_state.pt``, metrics and ``out/summary.json``.

    Raises:
        RunFinished / ConfigError / CheckpointError: as :func:`.train_predictor.train_predictor` (run
            folder, resume, checkpoint); ConfigError also when the data's views differ from the model's.
        EpisodeError / DatasetError: bad data (unless ``config.data.bad_episodes`` is ``skip``).
    """
    ctx = setup_distributed(config.run.device)
    try:
        return _train(ctx, config, source, Path(checkpoint), Path(out), resume, overwrite)
    finally:
        ctx.close()


def _train(
    ctx,
    config: TrainGoalPolicyConfig,
    source: EpisodeSource,
    checkpoint: Path,
    out: Path,
    resume: bool,
    overwrite: bool,
) -> PolicyTrainSummary:
    run = config.run
    if ctx.world_size > 1:
        raise ConfigError("jepa-mpc train-policy runs in one process (a small network on cached tokens): drop torchrun")
    device = ctx.device
    check_sample_fps(source, config.data.sample_fps)
    if run.threads:
        torch.set_num_threads(run.threads)
    world_model = load_frozen_world_model(checkpoint, config.data)
    wm = world_model.config
    digest = file_digest(checkpoint)
    resume_key = {"config": dataclass_to_dict(config), "data": source.fingerprint(), "checkpoint": digest}
    for name in ("val_every", "save_every", "device", "threads"):
        resume_key["config"]["run"].pop(name)
    resume_key["config"]["data"].pop("cache_dir")
    state = open_run_folder(out, resume_key, run.steps, resume, overwrite, MODEL_FILE)
    if overwrite:
        clear_run_folder(out, MODEL_FILE)

    cache = cache_frozen_tokens(source, world_model, checkpoint, config.data, device)
    train_ids, val_ids = split_episodes(
        len(cache.episodes), config.data.val_fraction, config.data.min_val_episodes, run.seed
    )
    chunk = config.policy.chunk
    train = HindsightSamples(cache, train_ids, wm.encoder.tubelet_size, chunk)
    held_out = HindsightSamples(cache, val_ids, wm.encoder.tubelet_size, chunk)

    torch.manual_seed(run.seed)
    policy_config = GoalPolicyConfig(
        encoder_dim=wm.encoder.dim, tokens_per_frame=wm.predictor.tokens_per_frame, **dataclass_to_dict(config.policy)
    )
    policy = GoalConditionedPolicy(policy_config)
    policy.target_scale.copy_(train.target_scale())
    policy.to(device).train()
    optimizer = build_optimizer([policy], config.optim)
    generator = torch.Generator().manual_seed(run.seed)

    def batch_loss(step: int) -> tuple[Tensor, dict[str, Tensor]]:
        # Batches are a function of the step (a resumed run draws the same ones).
        generator.manual_seed(run.seed * 1_000_003 + step)
        picks, goals = train.draw(generator, run.batch_size, config.hindsight.final_goal_fraction)
        error = cloning_error(policy, *train.batch(picks, goals, device))  # [B, chunk, 7]
        return error.mean(), {"first_action": error[:, 0].mean()}

    validation: PolicyValidation | None = None

    def held_out_metrics() -> tuple[dict[str, float], str]:
        nonlocal validation
        validation = validate(policy, held_out, 1024, device)
        return (
            asdict(validation) | {"frames": float(validation.frames)},
            f"val L1 {validation.l1:.4f} (zero action {validation.zero_action_l1:.4f}), "
            f"translation error {1000 * validation.translation_error_m:.1f} mm",
        )

    objective = Objective({"goal_policy": policy}, batch_loss, validate=held_out_metrics if len(held_out) else None)
    result = train_loop(ctx, objective, optimizer, run, config.optim, out, resume_key, state, desc="train-policy")
    ood_threshold = None
    if result.end_step == run.steps:
        data = read_checkpoint(checkpoint)
        kept = {k: v for k, v in data.items() if k not in WORLD_MODEL_ENTRIES}
        kept["goal_policy_train_config"] = dataclass_to_dict(config)
        statistics = cache_token_statistics(cache, train_ids, val_ids, wm.predictor.views)
        ood_threshold = statistics.threshold
        save_world_model_checkpoint(
            out / MODEL_FILE,
            wm,
            world_model.encoder,
            world_model.predictor,
            extra=kept,
            goal_policy=policy.cpu(),
            token_statistics=statistics,
        )
    summary = PolicyTrainSummary.of_run(
        ctx,
        result,
        out,
        run.steps,
        len(train_ids),
        len(val_ids),
        [vars(s) for s in cache.skipped],
        validation=validation,
        cache_folder=str(cache.folder),
        ood_threshold=ood_threshold,
    )
    summary.write()
    return summary
