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

Sampling, scoring, the elites and the per-iteration record are :mod:`planner.population`'s, shared
with iCEM and MPPI, and so is its NaN policy (a non-finite energy never moves the distribution; no
finite energy at all raises :class:`NonFiniteEnergyError`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import (  # noqa: F401  (PlanResult, NonFiniteEnergyError, shift_plan: public here too)
    NonFiniteEnergyError,
    PlanResult,
    initial_distribution,
    shift_plan,
    start_mean,
)
from planner.population import SearchRecord, sample_and_score


def elite_update(
    mean: Tensor,
    std: Tensor,
    elite_actions: Tensor,
    elite_energies: Tensor,
    config: PlannerConfig,
    limits: ActionLimits,
) -> tuple[Tensor, Tensor]:
    """One CEM update of ``mean, std [H, 7]`` towards the finite elites ``[K, H, 7]`` (energies ``[K]``)
    with momentum (``new = (1 - m) * elite_stat + m * old``). Returns the new mean and std; with no
    finite elite, the old ones."""
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
    return torch.where(any_valid, limits.apply(new_mean), mean), torch.where(any_valid, new_std, std)


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

    search = SearchRecord(config, device)
    # All kept elites rejoin the pool; without keep_elites, the pool is the new samples (the reference).
    carry = config.topk if config.keep_elites else 0
    for it in range(config.iterations):
        noise = torch.randn((config.samples, config.horizon, ACTION_DIM), generator=generator, device=device)
        population = sample_and_score(rollout, objective, limits, mean, std, noise)  # the mean is sample 0
        search.select_elites(population, carry)
        mean, std = elite_update(mean, std, search.elite_actions, search.elite_energies, config, limits)
        search.record(it, population)

    # The plan: the final mean (the reference's choice) or the best elite ever evaluated, whichever
    # scores lower after the dead band; with 10 iterations the mean has not always converged and can
    # score worse than samples already seen. Both are scored in one rollout of batch 2.
    finalists = torch.stack([mean, search.elite_actions[0]])  # [2, H, 7]
    return search.finish(rollout, objective, config, limits, finalists, mean=mean, std=std)
