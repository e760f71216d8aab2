"""What every optimiser shares: its signature (:class:`Optimizer`), its result (:class:`PlanResult`),
the initial sampling distribution, the warm start, and the choice of the final plan.

An optimiser is a function::

    optimise(rollout, objective, config, *, device="cpu", init_mean=None, init_elites=None,
             generator=None) -> PlanResult

- ``rollout``: actions ``[S, H, 7]`` -> predicted tokens ``[S, H, N, D]`` (context bound in);
- ``objective``: predicted tokens ``[S, H, N, D]`` -> energies ``[S]`` (float32, lower is better);
- ``init_mean``: ``[H, 7]`` a warm start (the previous plan shifted), else the config's initial mean;
- ``init_elites``: ``[K, H, 7]`` the previous step's elites, shifted (iCEM uses them; others ignore them);
- ``generator``: a ``torch.Generator`` on ``device`` for reproducible plans.

:func:`planner.cem.plan_cem`, :func:`planner.icem.plan_icem`, :func:`planner.mppi.plan_mppi` and
:func:`planner.gradient.plan_gradient` implement it; :mod:`planner.registry` maps
``PlannerConfig.optimizer`` to them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM, ROTATION_DIMS, TRANSLATION_DIMS
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits


class NonFiniteEnergyError(RuntimeError):
    """Every candidate's energy was NaN or infinite: the world model diverged on this input."""


@dataclass(frozen=True)
class PlanResult:
    """The outcome of one optimisation. Tensors are on the CPU, float32 (``finite_counts`` int64)."""

    actions: Tensor
    """[H, 7] the plan: the final mean or the best candidate (the lower energy), gripper dead band applied."""
    energy: float
    """Energy of ``actions`` (evaluated after the last iteration)."""
    energy_spread: float
    """Standard deviation of the final elites' energies: large = the planner is unsure."""
    elite_energies: Tensor
    """[K] energies of the final elites, ascending (+inf where no finite energy was found); the gradient
    planner's K is its number of parallel starts."""
    best_energies: Tensor
    """[I] lowest energy in the pool at each iteration (Adam step for the gradient planner)."""
    elite_mean_energies: Tensor
    """[I] mean energy of the finite elites at each iteration."""
    finite_counts: Tensor
    """[I] number of new samples with a finite energy at each iteration (int64)."""
    mean: Tensor
    """[H, 7] the final sampling mean (before the dead band)."""
    std: Tensor
    """[H, 7] the final sampling std (0 on held dimensions; the gradient planner: the initial std)."""
    elite_actions: Tensor | None = None
    """[K, H, 7] the final elites, in the order of ``elite_energies`` (iCEM warm-starts from them)."""
    predicted: Tensor | None = None
    """[H, N, D] the tokens the world model predicts after each step of ``actions`` (the surprise gate
    compares the observed frames with them)."""


class Optimizer(Protocol):
    """The signature every optimiser implements (module docstring)."""

    def __call__(
        self,
        rollout: RolloutFn,
        objective: Objective,
        config: PlannerConfig,
        *,
        device: torch.device | str = "cpu",
        init_mean: Tensor | None = None,
        init_elites: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult: ...


def initial_distribution(config: PlannerConfig, limits: ActionLimits) -> tuple[Tensor, Tensor]:
    """Mean and std ``[H, 7]`` on the limits' device: mean 0 (held dimensions at their value)."""
    device = limits.held.device
    per_dim_std = torch.zeros(ACTION_DIM, device=device)
    per_dim_std[list(TRANSLATION_DIMS)] = config.init_std_translation
    per_dim_std[list(ROTATION_DIMS)] = config.init_std_rotation
    per_dim_std[GRIPPER_DIM] = config.init_std_gripper
    per_dim_std = torch.where(limits.held, torch.zeros_like(per_dim_std), per_dim_std)
    mean = limits.held_value.expand(config.horizon, ACTION_DIM).clone()
    return mean, per_dim_std.expand(config.horizon, ACTION_DIM).clone()


def start_mean(config: PlannerConfig, limits: ActionLimits, init_mean: Tensor | None) -> Tensor:
    """The starting mean ``[H, 7]``: ``init_mean`` inside the limits, else the initial mean.

    Raises:
        ValueError: ``init_mean`` is not ``[horizon, 7]``.
    """
    mean, _ = initial_distribution(config, limits)
    if init_mean is None:
        return mean
    if init_mean.shape != (config.horizon, ACTION_DIM):
        raise ValueError(f"init_mean must be [horizon={config.horizon}, {ACTION_DIM}], got {tuple(init_mean.shape)}")
    return limits.apply(init_mean.to(mean.device, torch.float32))


def shift_plan(mean: Tensor, config: PlannerConfig, limits: ActionLimits, steps: int = 1) -> Tensor:
    """Warm start: the previous plan ``[H, 7]`` (or elites ``[K, H, 7]``) advanced ``steps`` steps, the
    freed last steps at the initial mean."""
    initial_mean, _ = initial_distribution(config, limits)
    mean = mean.to(initial_mean.device, torch.float32)
    steps = min(steps, config.horizon)
    tail = initial_mean[-1:].expand(*mean.shape[:-2], steps, ACTION_DIM)
    return torch.cat([mean[..., steps:, :], tail], dim=-2)


def apply_deadband(actions: Tensor, config: PlannerConfig, limits: ActionLimits) -> Tensor:
    """``actions [..., 7]`` with small planned gripper deltas (``|dg| < gripper_deadband``) set to 0
    (the reference's ``round_small_elements(.., 0.25)``)."""
    gripper = actions[..., GRIPPER_DIM]
    in_deadband = (gripper.abs() < config.gripper_deadband) & limits.planned[GRIPPER_DIM]
    actions = actions.clone()
    actions[..., GRIPPER_DIM] = torch.where(in_deadband, torch.zeros_like(gripper), gripper)
    return actions


def plan_from_proposal(
    rollout: RolloutFn, objective: Objective, config: PlannerConfig, limits: ActionLimits, proposal: Tensor
) -> PlanResult:
    """The proposal ``[H, 7]`` as the plan, without a search: put inside the limits, the gripper dead band
    applied, and scored with one rollout of batch 1 (its energy and predicted tokens, as a search reports them).

    Raises:
        NonFiniteEnergyError: the proposal's energy is not finite.
    """
    proposal = proposal.to(limits.held.device, torch.float32)
    unscored = torch.zeros(1, device=proposal.device)
    result = finish_plan(
        rollout,
        objective,
        config,
        limits,
        proposal[None],
        elite_actions=proposal[None],
        elite_energies=unscored,
        best_energies=unscored,
        elite_mean_energies=unscored,
        finite_counts=torch.ones(1, dtype=torch.int64),
        mean=proposal,
        std=torch.zeros_like(proposal),
    )
    energy = torch.tensor([result.energy])
    return dataclasses.replace(result, elite_energies=energy, best_energies=energy, elite_mean_energies=energy)


def finish_plan(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    limits: ActionLimits,
    finalists: Tensor,
    *,
    elite_actions: Tensor,
    elite_energies: Tensor,
    best_energies: Tensor,
    elite_mean_energies: Tensor,
    finite_counts: Tensor,
    mean: Tensor,
    std: Tensor,
) -> PlanResult:
    """Choose the plan among ``finalists [F, H, 7]`` (e.g. the final mean and the best candidate seen):
    each is put inside the limits with the gripper dead band applied, all are scored in one rollout of
    batch F, and the lowest energy wins. The only host syncs of an optimiser happen here.

    Raises:
        NonFiniteEnergyError: no sample of any iteration had a finite energy, or the chosen plan's
            energy is not finite.
    """
    final = apply_deadband(limits.apply(finalists), config, limits)  # [F, H, 7]
    predicted = rollout(final)  # [F, H, N, D]
    final_energies = objective(predicted).float()  # [F]
    final_energies = torch.where(torch.isfinite(final_energies), final_energies, float("inf"))
    choice = torch.argmin(final_energies)
    plan, plan_energy = final[choice], final_energies[choice : choice + 1]  # [H, 7], [1]

    finite_counts_cpu = finite_counts.cpu()
    plan_energy_value = float(plan_energy[0])
    if int(finite_counts_cpu.sum()) == 0:
        raise NonFiniteEnergyError(
            f"all {int(config.samples)} x {finite_counts_cpu.numel()} sampled action sequences had a non-finite "
            "energy (NaN/inf): the world model's predictions diverge for this context; check the input frames, "
            "states and checkpoint"
        )
    if not torch.isfinite(plan_energy).all():
        raise NonFiniteEnergyError(
            f"the planned action sequence {plan.cpu().tolist()} has a non-finite energy {plan_energy_value} "
            f"(finite samples per iteration: {finite_counts_cpu.tolist()}); the world model diverges here"
        )
    elite_energies_cpu = elite_energies.detach().float().cpu()
    finite_elites = elite_energies_cpu[torch.isfinite(elite_energies_cpu)]
    spread = float(finite_elites.std()) if finite_elites.numel() > 1 else 0.0
    return PlanResult(
        actions=plan.detach().cpu(),
        energy=plan_energy_value,
        energy_spread=spread,
        elite_energies=elite_energies_cpu,
        best_energies=best_energies.detach().float().cpu(),
        elite_mean_energies=elite_mean_energies.detach().float().cpu(),
        finite_counts=finite_counts_cpu,
        mean=mean.detach().cpu(),
        std=std.detach().cpu(),
        elite_actions=elite_actions.detach().cpu(),
        predicted=predicted[choice].detach().float().cpu(),
    )
