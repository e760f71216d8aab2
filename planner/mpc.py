"""Receding-horizon goal-image control: a thin wrapper around a one-shot optimiser (CEM by default,
``PlannerConfig.optimizer``, :mod:`planner.registry`).

At every control step: encode the current frame(s), plan an action sequence ``[H, 7]`` towards the
goal image's tokens (warm-started from the previous plan shifted by the steps executed since), return
the first action to execute, and keep the plan for the next step. Used by the evaluation, the demo
and the ROS planner node::

    mpc = GoalImageMPC(world_model, PlannerConfig())
    mpc.set_goal(goal_image)                    # uint8 [H, W, 3], encoded once
    while not done:
        step = mpc.act(frame, state)            # uint8 [H, W, 3], float [7]
        robot.apply(step.action)                # [7]: dxyz, drot (xyz Euler), dgripper

**Surprise** (every step after the first): the mean L1 per token between the tokens of the frame
observed now and the tokens the last search's plan predicted for this moment (the same metric as
the energy, :func:`planner.energy.goal_energy`). A large surprise means the world did not do what the
model predicted (a wrong model, a disturbance, or a command the robot clipped).

**Surprise-gated replanning** (``surprise_gating``, off by default): while the surprise stays at or
under ``surprise_threshold`` and the plan has steps left, execute the plan's next step without a
search (the idea of acting on semantic change; a pull request to the V-JEPA 2 reference,
facebookresearch/vjepa2 #98, reports 2.28 -> 1.13 s per step); search again when surprised or when
the plan runs out, warm-started from the plan shifted by the steps executed since. Off by default
because it changes the actions: a kept step is the plan made one or more steps ago, not a fresh one.

**Out-of-distribution score** (every step, when the model has one): how unlike the model's training
frames the frame planned from is, ``world_model.ood_score(tokens [N, D]) -> float | None`` (the real
model's: the mean ``log(1 + z^2)`` of its tokens' z-scores against the training frames' per-token mean and std,
:mod:`worldmodel.token_statistics`), on the tokens the step encoded anyway; :attr:`GoalImageMPC.ood_threshold`
is the model's threshold above which a frame is unlike its training data. A model without them (an old
checkpoint, the analytic model) gives None for both.

**Proposals** (``proposal``): a world model that holds a goal-conditioned policy
(:meth:`worldmodel.world_model.WorldModel.propose`, ``jepa-mpc train-policy``) proposes the next
actions from the tokens now and the goal's. ``policy`` executes its plan without a search (one
forward pass and one scoring rollout per step); ``policy+finish`` does the same until the policy
proposes to stay (:meth:`GoalImageMPC._arrived`), and there the optimiser searches from its plan;
``policy+search`` starts the optimiser from it in place of the warm start at every step. From one final goal photo
the energy of a two-step search climbs while a
multi-stage task is on its way (docs/planner.md): the policy has learned, from demonstrations, what
comes after the hill; near the goal, where an L1-fitted policy's median move is "stay", the energy
has no hill left and finishes the last centimetres.

**Goals in words** (:meth:`GoalImageMPC.set_goal_text`): a world model that holds a language-goal
predictor (``world_model.goal_from_text(instruction, tokens [N, D]) -> [N, D]``,
:mod:`worldmodel.language_goal`) predicts the goal's tokens from the instruction and the frame the
user gave it in; the planner then plans toward them exactly as toward a goal photo's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jepa_mpc_foundation.pose import GRIPPER_DIM, STATE_DIM, TRANSLATION_DIMS
from planner.config import PlannerConfig
from planner.energy import goal_energy, goal_objective
from planner.interface import PlanningWorldModel, bind_context
from planner.limits import ActionLimits
from planner.optimizer import PlanResult, apply_deadband, initial_distribution, plan_from_proposal, shift_plan
from planner.registry import NEEDS_GRADIENTS, get_optimizer


@dataclass(frozen=True)
class MPCStep:
    """What one control step decided, and how sure it was."""

    action: np.ndarray
    """[7] float32, the action to execute now (the plan's first step)."""
    plan: np.ndarray
    """[H, 7] float32, the whole planned sequence."""
    energy: float
    """Energy of the plan (mean L1 between predicted and goal tokens)."""
    energy_spread: float
    """Std of the final elites' energies; large relative to ``energy`` = the planner is unsure."""
    latency_s: float
    """Wall-clock seconds of this step (encoding + planning)."""
    iteration_energies: np.ndarray
    """[I] float32, lowest energy found at each iteration of the search ([0] when no search ran)."""
    surprise: float | None = None
    """Mean L1 per token between this frame's tokens and the tokens the last search predicted for it;
    None when nothing predicted it (the first step after ``set_goal`` / ``reset``)."""
    replanned: bool = True
    """True when this step searched; False when it executed the kept plan's next step (surprise gating)."""
    ood_score: float | None = None
    """How unlike the model's training frames the frame planned from is (dimensionless, higher is less alike;
    above :attr:`GoalImageMPC.ood_threshold`: unlike them); None when the model has no training statistics."""


def _check_frames(frames: np.ndarray | Tensor, name: str) -> np.ndarray | Tensor:
    """uint8 ``[H, W, 3]`` or ``[T, H, W, 3]`` -> ``[T, H, W, 3]``; anything else is a ValueError naming ``name``."""
    if not isinstance(frames, (np.ndarray, Tensor)):
        raise ValueError(f"{name} must be a uint8 numpy array [H, W, 3] or [T, H, W, 3], got {type(frames).__name__}")
    if frames.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"{name} must be uint8 RGB pixels, got dtype {frames.dtype}; convert with .astype(np.uint8)")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"{name} must be RGB [H, W, 3] or [T, H, W, 3], got shape {tuple(frames.shape)}")
    return frames


class PlanCancelled(Exception):
    """Raised by :meth:`GoalImageMPC.act` when :meth:`GoalImageMPC.cancel` was called: no plan, no action."""


class GoalImageMPC:
    """Goal-image model-predictive control over a world model's rollouts, with the optimiser of
    ``config.optimizer`` and optional surprise-gated replanning (module docstring)."""

    def __init__(self, world_model: PlanningWorldModel, config: PlannerConfig | None = None) -> None:
        self.world_model = world_model
        self.config = config if config is not None else PlannerConfig()
        self.device = torch.device(world_model.device)
        self.limits = ActionLimits(self.config, self.device)
        self.goal_tokens: Tensor | None = None  # [N, D]
        self.generator: torch.Generator | None = None
        self.optimize = get_optimizer(self.config.optimizer)
        if self.config.proposal != "none" and not getattr(world_model, "can_propose", False):
            raise ValueError(
                f"planner.proposal {self.config.proposal} needs a world model with a goal-conditioned policy: "
                "train one "
                "with `jepa-mpc train-policy --checkpoint MODEL --data DATASETS --out DIR` and plan with DIR/model.pt, "
                "or set planner.proposal none (flag --planner.proposal none, or the ROS parameter)"
            )
        self.last_result: PlanResult | None = None
        self.executed = 0  # steps of last_result's plan handed out since it was made
        self._score_ood = getattr(world_model, "ood_score", None)  # tokens [N, D] -> float | None, if the model has it
        self._cancelled = threading.Event()
        self.reset()

    @property
    def ood_threshold(self) -> float | None:
        """The world model's threshold on :attr:`MPCStep.ood_score` above which a frame is unlike its training data;
        None when the model has none."""
        return getattr(self.world_model, "ood_threshold", None)

    def reset(self) -> None:
        """Forget the previous plan (no warm start) and restart the random stream from the seed."""
        self.last_result = None
        self.executed = 0
        if self.config.seed is not None:
            self.generator = torch.Generator(device=self.device).manual_seed(self.config.seed)

    def cancel(self) -> None:
        """Stop planning: a running :meth:`act` raises :class:`PlanCancelled` before its next world-model rollout
        (within one optimiser iteration), and so does every later call until :meth:`resume`. Safe from any thread.

        Why: a process must not exit while a plan runs torch on another thread (its C++ thread pool then aborts
        the process), and a CPU plan can take seconds; a node shutting down cancels instead of waiting.
        """
        self._cancelled.set()

    def resume(self) -> None:
        """Plan again after :meth:`cancel`."""
        self._cancelled.clear()

    def _raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise PlanCancelled("planning was cancelled (GoalImageMPC.cancel); call resume() to plan again")

    def set_goal(self, goal_image: np.ndarray | Tensor) -> None:
        """Encode the goal image (uint8 ``[H, W, 3]``) once; also forgets the previous plan."""
        frames = _check_frames(goal_image, "goal_image")
        if frames.shape[0] != 1:
            raise ValueError(f"goal_image must be one image [H, W, 3], got {frames.shape[0]} frames")
        self.goal_tokens = self.world_model.encode_frames(frames)[0, -1]  # [N, D]
        self.reset()

    def set_goal_text(self, instruction: str, frame: np.ndarray | Tensor) -> None:
        """Set the goal an instruction asks for, predicted once from ``frame`` (uint8 ``[H, W, 3]``, the scene the
        instruction is about, usually the frame now); also forgets the previous plan.

        Raises:
            ValueError: the world model reads no instructions (it holds no language-goal predictor), or
                ``frame`` is not one image; ``worldmodel.language_goal.InstructionError`` (a ValueError) when
                the model refuses the instruction (empty, naming nothing it knows, not fitting the scene).
        """
        if not getattr(self.world_model, "can_read_goal_text", False):
            raise ValueError(
                "this world model reads no instructions: plan with a model trained by `jepa-mpc train-language-goal` "
                "(or give a goal image)"
            )
        frames = _check_frames(frame, "frame")
        if frames.shape[0] != 1:
            raise ValueError(f"frame must be one image [H, W, 3], got {frames.shape[0]} frames")
        tokens = self.world_model.encode_frames(frames)[0, -1]  # [N, D]
        self.goal_tokens = self.world_model.goal_from_text(instruction, tokens)  # [N, D]
        self.reset()

    def act(self, frames: np.ndarray | Tensor, state: np.ndarray | Tensor) -> MPCStep:
        """Plan from the current frame(s) and state(s); return the action to execute now.

        ``frames``: uint8 ``[H, W, 3]`` (now) or ``[T, H, W, 3]`` (recent frames, the last is now).
        ``state``: ``[7]`` for one frame, ``[T, 7]`` for T frames (the states at those frames).
        """
        if self.goal_tokens is None:
            raise RuntimeError(
                "GoalImageMPC.act called before set_goal(goal_image) or set_goal_text(instruction, frame)"
            )
        self._raise_if_cancelled()
        start = time.perf_counter()
        frames = _check_frames(frames, "frames")
        if isinstance(state, Tensor):
            states = state.detach().to("cpu", torch.float32)
        else:
            states = torch.as_tensor(np.asarray(state, dtype=np.float32))
        if states.ndim == 1:
            states = states[None]
        if states.shape != (frames.shape[0], STATE_DIM):
            raise ValueError(
                f"state must be [{STATE_DIM}] (one frame) or [T, {STATE_DIM}] matching frames' T={frames.shape[0]}, "
                f"got shape {tuple(np.shape(state))}"
            )
        if not torch.isfinite(states).all():
            raise ValueError(
                f"state contains NaN or inf: {states.tolist()}; pass the measured [x, y, z, rx, ry, rz, g]"
            )

        context_tokens = self.world_model.encode_frames(frames)  # [1, T, N, D]
        ood_score = self._score_ood(context_tokens[0, -1]) if self._score_ood is not None else None
        previous, horizon = self.last_result, self.config.horizon
        surprise = None
        if previous is not None and previous.predicted is not None and 1 <= self.executed <= horizon:
            predicted = previous.predicted[self.executed - 1]  # [N, D] what the plan said this frame would be
            observed = context_tokens[0, -1].detach().float().cpu()  # [N, D]
            surprise = float(goal_energy(predicted[None, None], observed)[0])
        if (
            self.config.surprise_gating
            and surprise is not None
            and surprise <= self.config.surprise_threshold
            and self.executed < horizon
        ):
            plan = previous.actions.numpy().astype(np.float32)
            action = plan[self.executed].copy()
            self.executed += 1
            remaining = shift_plan(previous.actions, self.config, self.limits, self.executed - 1)
            return MPCStep(
                action=action,
                plan=remaining.cpu().numpy().astype(np.float32),
                energy=previous.energy,
                energy_spread=previous.energy_spread,
                latency_s=time.perf_counter() - start,
                iteration_energies=np.zeros(0, dtype=np.float32),
                surprise=surprise,
                replanned=False,
                ood_score=ood_score,
            )

        context_states = states[None].to(self.device)  # [1, T, 7]
        init_mean = init_elites = None
        if self.config.proposal != "none":
            init_mean = self._proposal(context_tokens, context_states)  # in place of the shifted plan
        elif self.config.warm_start and previous is not None:
            init_mean = shift_plan(previous.actions, self.config, self.limits, self.executed)
        if self.config.warm_start and previous is not None and previous.elite_actions is not None:
            init_elites = shift_plan(previous.elite_actions, self.config, self.limits, self.executed)
        differentiable = self.config.optimizer in NEEDS_GRADIENTS
        bound = bind_context(self.world_model, context_tokens, context_states, differentiable=differentiable)

        def rollout(actions: Tensor) -> Tensor:  # [S, H, 7] -> [S, H, N, D], unless cancelled meanwhile
            self._raise_if_cancelled()
            return bound(actions)

        objective = goal_objective(self.goal_tokens, self.config.energy)
        if self.config.proposal == "policy" or (
            self.config.proposal == "policy+finish" and not self._arrived(init_mean)
        ):
            result = plan_from_proposal(rollout, objective, self.config, self.limits, init_mean)
        else:
            result = self.optimize(
                rollout,
                objective,
                self.config,
                device=self.device,
                init_mean=init_mean,
                init_elites=init_elites,
                generator=self.generator,
            )
        self.last_result, self.executed = result, 1
        plan = result.actions.numpy().astype(np.float32)
        return MPCStep(
            action=plan[0].copy(),
            plan=plan,
            energy=result.energy,
            energy_spread=result.energy_spread,
            latency_s=time.perf_counter() - start,
            iteration_energies=result.best_energies.numpy().astype(np.float32),
            surprise=surprise,
            replanned=True,
            ood_score=ood_score,
        )

    def _arrived(self, proposal: Tensor) -> bool:
        """Whether the proposal ``[H, 7]`` stays put: its first step moves the hand less than ``finish_below`` (m)
        and its gripper delta falls in the dead band. Where the policy believes it has arrived, the energy to the
        goal is near its valley and a search by it is reliable (docs/planner.md, "One goal photo")."""
        first = apply_deadband(proposal[:1], self.config, self.limits)[0]  # [7]
        return bool(first[list(TRANSLATION_DIMS)].norm() < self.config.finish_below and first[GRIPPER_DIM] == 0)

    def _proposal(self, context_tokens: Tensor, context_states: Tensor) -> Tensor:
        """The world model's proposed plan ``[H, 7]``: its policy's chunk, cut to the horizon or padded with the
        initial mean, inside the limits."""
        proposed = self.world_model.propose(context_tokens, context_states, self.goal_tokens)  # [K, 7]
        plan, _ = initial_distribution(self.config, self.limits)  # [H, 7]
        steps = min(len(proposed), len(plan))
        plan[:steps] = proposed[:steps].to(plan.device, torch.float32)
        return self.limits.apply(plan)
