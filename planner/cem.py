"""The cross-entropy method (CEM) over action sequences: a one-shot optimiser.

One call plans one sequence ``[H, 7]`` from one context:

1. keep a Gaussian (mean, std ``[H, 7]``) per step and action dimension;
2. draw ``N`` sequences ``[N, H, 7]`` at once (sample 0 is the mean itself), move them inside the
   action limits, roll the world model forward, score each with the objective;
3. take the ``topk`` lowest energies (with ``keep_elites``, among the new samples *and* the previous
   iteration's elites, whose energies are already known) and move mean and std towards the elites'
   mean and std with momentum (``new = (1 - m) * elites + m * old``; the gripper has its own m);
4. repeat for ``iterations``; the plan is the final mean (the reference's choice) or the best elite
   ever evaluated, whichever has the lower energy once both are inside the limits with small gripper
   deltas set to 0 (the reference's dead band); that energy is returned with the plan.

Non-finite energies (a diverging model) become +inf and so are never preferred over a finite one;
an elite set without any finite energy leaves the distribution unchanged, and a run in which no
sample ever had a finite energy, or whose plan has a non-finite energy, raises
:class:`NonFiniteEnergyError`. The loop never syncs with the host (no ``.item()``): per-iteration
statistics are written into preallocated device tensors and read once at the end. Kept elites are
not rolled out again: the world model is assumed deterministic (it is, in eval mode).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from foundation.pose import ACTION_DIM, GRIPPER_DIM, ROTATION_DIMS, TRANSLATION_DIMS
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits


class NonFiniteEnergyError(RuntimeError):
    """Every candidate's energy was NaN or infinite: the world model diverged on this input."""


@dataclass(frozen=True)
class PlanResult:
    """The outcome of one CEM optimisation. Tensors are on the CPU, float32."""

    actions: Tensor
    """[H, 7] the plan: the final mean or the best elite (the lower energy), gripper dead band applied."""
    energy: float
    """Energy of ``actions`` (evaluated after the last iteration)."""
    energy_spread: float
    """Standard deviation of the final elites' energies: large = the planner is unsure."""
    elite_energies: Tensor
    """[topk] energies of the final elites, ascending (+inf where no finite energy was found)."""
    best_energies: Tensor
    """[I] lowest energy in the pool at each iteration."""
    elite_mean_energies: Tensor
    """[I] mean energy of the finite elites at each iteration."""
    finite_counts: Tensor
    """[I] number of new samples with a finite energy at each iteration (int64)."""
    mean: Tensor
    """[H, 7] the final sampling mean (before the dead band)."""
    std: Tensor
    """[H, 7] the final sampling std (0 on held dimensions)."""


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


def shift_plan(mean: Tensor, config: PlannerConfig, limits: ActionLimits) -> Tensor:
    """Warm start: the previous mean ``[H, 7]`` advanced one step, the new last step at the initial mean."""
    initial_mean, _ = initial_distribution(config, limits)
    mean = mean.to(initial_mean.device, torch.float32)
    return torch.cat([mean[1:], initial_mean[-1:]], dim=0)


@torch.no_grad()
def plan_cem(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    *,
    device: torch.device | str = "cpu",
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Optimise an action sequence ``[H, 7]`` with CEM.

    ``rollout``: actions ``[S, H, 7]`` -> predicted tokens ``[S, H, N, D]`` (S is ``samples`` in the
    loop and 2 for the final evaluation). ``objective``: predicted tokens -> energies ``[S]``.
    ``init_mean``: ``[H, 7]`` starting mean (a warm start); the std always starts from the config.
    ``generator``: a ``torch.Generator`` on ``device`` for reproducible plans (else the global RNG).
    """
    device = torch.device(device)
    limits = ActionLimits(config, device)
    mean, std = initial_distribution(config, limits)
    if init_mean is not None:
        if init_mean.shape != (config.horizon, ACTION_DIM):
            raise ValueError(
                f"init_mean must be [horizon={config.horizon}, {ACTION_DIM}], got {tuple(init_mean.shape)}"
            )
        mean = limits.apply(init_mean.to(device, torch.float32))
    planned = limits.planned.float()  # [7]
    momentum_mean = torch.full((ACTION_DIM,), config.momentum_mean, device=device)
    momentum_std = torch.full((ACTION_DIM,), config.momentum_std, device=device)
    momentum_mean[GRIPPER_DIM] = config.momentum_gripper
    momentum_std[GRIPPER_DIM] = config.momentum_gripper

    n, h, k, iterations = config.samples, config.horizon, config.topk, config.iterations
    best_energies = torch.empty(iterations, device=device)
    elite_mean_energies = torch.empty(iterations, device=device)
    finite_counts = torch.empty(iterations, dtype=torch.long, device=device)
    elite_actions = torch.empty(0, h, ACTION_DIM, device=device)  # [k, H, 7] after the first iteration
    elite_energies = torch.empty(0, device=device)  # [k]

    for it in range(iterations):
        noise = torch.randn((n, h, ACTION_DIM), generator=generator, device=device)
        candidates = mean + std * noise  # [N, H, 7]
        candidates[0] = mean  # the current mean is always one of the candidates
        candidates = limits.apply(candidates)
        energies = objective(rollout(candidates)).float()  # [N]
        if energies.shape != (n,):
            raise ValueError(f"objective must return energies [S={n}], got shape {tuple(energies.shape)}")
        finite = torch.isfinite(energies)
        finite_counts[it] = finite.sum()
        energies = torch.where(finite, energies, torch.full_like(energies, float("inf")))

        if config.keep_elites:
            candidates = torch.cat([candidates, elite_actions])  # [N (+k), H, 7]
            energies = torch.cat([energies, elite_energies])
        top = torch.topk(energies, k, largest=False, sorted=True)
        elite_actions, elite_energies = candidates[top.indices], top.values  # [k, H, 7], [k]

        # Elite statistics over the finite elites only: a NaN energy never moves the distribution.
        valid = torch.isfinite(elite_energies)
        n_valid = valid.sum()
        weights = valid.float() / n_valid.clamp_min(1)  # [k]
        elite_mean = torch.einsum("k,khd->hd", weights, elite_actions)
        squared = (elite_actions - elite_mean) ** 2
        # Unbiased, as torch.std in the reference; a single valid elite gives 0 (then min_std).
        elite_var = torch.einsum("k,khd->hd", weights, squared) * n_valid / (n_valid - 1).clamp_min(1)
        new_mean = momentum_mean * mean + (1 - momentum_mean) * elite_mean
        new_std = momentum_std * std + (1 - momentum_std) * elite_var.sqrt()
        new_std = new_std.clamp_min(config.min_std) * planned
        any_valid = n_valid > 0
        mean = torch.where(any_valid, limits.apply(new_mean), mean)
        std = torch.where(any_valid, new_std, std)

        best_energies[it] = elite_energies[0]
        elite_mean_energies[it] = torch.where(valid, elite_energies, 0.0).sum() / n_valid.clamp_min(1)

    # The plan: the final mean (the reference's choice) or the best elite ever evaluated, whichever
    # scores lower after the dead band; with 10 iterations the mean has not always converged and can
    # score worse than samples already seen. Both are scored in one rollout of batch 2.
    final = limits.apply(torch.stack([mean, elite_actions[0]]))  # [2, H, 7]
    gripper = final[..., GRIPPER_DIM]
    in_deadband = (gripper.abs() < config.gripper_deadband) & limits.planned[GRIPPER_DIM]
    final[..., GRIPPER_DIM] = torch.where(in_deadband, torch.zeros_like(gripper), gripper)
    final_energies = objective(rollout(final)).float()  # [2]
    final_energies = torch.where(torch.isfinite(final_energies), final_energies, float("inf"))
    choice = torch.argmin(final_energies)
    plan, plan_energy = final[choice], final_energies[choice : choice + 1]  # [H, 7], [1]

    # The only host syncs of the call.
    finite_counts_cpu = finite_counts.cpu()
    plan_energy_value = float(plan_energy[0])
    if int(finite_counts_cpu.sum()) == 0:
        raise NonFiniteEnergyError(
            f"all {n * iterations} sampled action sequences had a non-finite energy (NaN/inf): the world "
            "model's predictions diverge for this context; check the input frames, states and checkpoint"
        )
    if not torch.isfinite(plan_energy).all():
        raise NonFiniteEnergyError(
            f"the planned action sequence {plan.cpu().tolist()} has a non-finite energy {plan_energy_value} "
            f"(finite samples per iteration: {finite_counts_cpu.tolist()}); the world model diverges here"
        )
    elite_energies_cpu = elite_energies.cpu()
    finite_elites = elite_energies_cpu[torch.isfinite(elite_energies_cpu)]
    spread = float(finite_elites.std()) if finite_elites.numel() > 1 else 0.0
    return PlanResult(
        actions=plan.cpu(),
        energy=plan_energy_value,
        energy_spread=spread,
        elite_energies=elite_energies_cpu,
        best_energies=best_energies.cpu(),
        elite_mean_energies=elite_mean_energies.cpu(),
        finite_counts=finite_counts_cpu,
        mean=mean.cpu(),
        std=std.cpu(),
    )
