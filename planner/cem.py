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

import torch
from torch import Tensor

from foundation.pose import ACTION_DIM, GRIPPER_DIM
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import (  # noqa: F401  (PlanResult, NonFiniteEnergyError, shift_plan: public here too)
    NonFiniteEnergyError,
    PlanResult,
    finish_plan,
    initial_distribution,
    shift_plan,
    start_mean,
)


def elite_update(
    mean: Tensor, std: Tensor, elite_actions: Tensor, elite_energies: Tensor, config: PlannerConfig,
    limits: ActionLimits,
) -> tuple[Tensor, Tensor, Tensor]:
    """One CEM update of ``mean, std [H, 7]`` towards the finite elites ``[K, H, 7]`` with momentum
    (``new = (1 - m) * elite_stat + m * old``). Returns the new mean, std and the number of finite
    elites (a 0-d tensor; with none, mean and std are returned unchanged)."""
    device = mean.device
    momentum_mean = torch.full((ACTION_DIM,), config.momentum_mean, device=device)
    momentum_std = torch.full((ACTION_DIM,), config.momentum_std, device=device)
    momentum_mean[GRIPPER_DIM] = config.momentum_gripper
    momentum_std[GRIPPER_DIM] = config.momentum_gripper
    # Elite statistics over the finite elites only: a NaN energy never moves the distribution.
    valid = torch.isfinite(elite_energies)
    n_valid = valid.sum()
    weights = valid.float() / n_valid.clamp_min(1)  # [K]
    elite_mean = torch.einsum("k,khd->hd", weights, elite_actions)
    squared = (elite_actions - elite_mean) ** 2
    # Unbiased, as torch.std in the reference; a single valid elite gives 0 (then min_std).
    elite_var = torch.einsum("k,khd->hd", weights, squared) * n_valid / (n_valid - 1).clamp_min(1)
    new_mean = momentum_mean * mean + (1 - momentum_mean) * elite_mean
    new_std = momentum_std * std + (1 - momentum_std) * elite_var.sqrt()
    new_std = new_std.clamp_min(config.min_std) * limits.planned.float()
    any_valid = n_valid > 0
    return torch.where(any_valid, limits.apply(new_mean), mean), torch.where(any_valid, new_std, std), n_valid


@torch.no_grad()
def plan_cem(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    *,
    device: torch.device | str = "cpu",
    init_mean: Tensor | None = None,
    init_elites: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Optimise an action sequence ``[H, 7]`` with CEM (the :class:`planner.optimizer.Optimizer` signature).

    ``rollout``: actions ``[S, H, 7]`` -> predicted tokens ``[S, H, N, D]`` (S is ``samples`` in the
    loop and 2 for the final evaluation). ``objective``: predicted tokens -> energies ``[S]``.
    ``init_mean``: ``[H, 7]`` starting mean (a warm start); the std always starts from the config.
    ``init_elites``: ignored (iCEM's). ``generator``: a ``torch.Generator`` on ``device`` for
    reproducible plans (else the global RNG).

    Raises:
        ValueError: ``init_mean`` is not ``[H, 7]``, or the objective does not return ``[S]``.
        NonFiniteEnergyError: no finite energy at all, or the plan's energy is not finite.
    """
    device = torch.device(device)
    limits = ActionLimits(config, device)
    _, std = initial_distribution(config, limits)
    mean = start_mean(config, limits, init_mean)

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

        mean, std, n_valid = elite_update(mean, std, elite_actions, elite_energies, config, limits)
        best_energies[it] = elite_energies[0]
        valid = torch.isfinite(elite_energies)
        elite_mean_energies[it] = torch.where(valid, elite_energies, 0.0).sum() / n_valid.clamp_min(1)

    # The plan: the final mean (the reference's choice) or the best elite ever evaluated, whichever
    # scores lower after the dead band; with 10 iterations the mean has not always converged and can
    # score worse than samples already seen. Both are scored in one rollout of batch 2.
    return finish_plan(
        rollout, objective, config, limits, torch.stack([mean, elite_actions[0]]),
        elite_actions=elite_actions, elite_energies=elite_energies, best_energies=best_energies,
        elite_mean_energies=elite_mean_energies, finite_counts=finite_counts, mean=mean, std=std,
    )
