"""Model-predictive path integral control (MPPI) over action sequences: Williams et al. 2017,
"Information theoretic MPC for model-based reinforcement learning" (ICRA 2017, Algorithm 2).

Per iteration: draw ``samples`` sequences ``a = mean + std * eps`` (``eps ~ N(0, I)``, sample 0 the
mean itself), put them inside the action limits, score them (energy ``E [S]``), and move the mean to
the energy-weighted average of the samples::

    w_s = exp(-(E_s - min E) / (lambda * std(E)))  /  sum_s' exp(...)       # [S]
    mean = sum_s w_s a_s                                                     # [H, 7]

``lambda`` is ``mppi_temperature``. One deviation from the paper: lambda is in units of the
iteration's energy std ``std(E)`` (over the finite energies), not in energy units, because embedding
energies have no common scale across models (a default-model energy and a ViT-g energy differ by
orders of magnitude); small lambda -> the best sample dominates (CEM-like), large -> a plain average.
The sampling std stays at the config's ``init_std_*`` (the paper's fixed noise covariance), so
``momentum_std`` is unused; ``momentum_mean`` smooths the mean update as in CEM. Several iterations
per planning step, as TD-MPC2's MPPI does. The plan is the final mean or the best sample seen,
whichever scores lower (as CEM's). Sampling, scoring and the NaN policy (a non-finite energy gets
weight 0) are :mod:`planner.population`'s, shared with CEM and iCEM.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import PlanResult, initial_distribution, start_mean
from planner.population import SearchRecord, sample_and_score


def mppi_weights(energies: Tensor, temperature: float) -> Tensor:
    """Weights ``[S]`` (sum 1) of energies ``[S]`` (+inf for non-finite): ``softmax(-(E - min E) / (lambda std E))``.

    The std is over the finite energies (1 when fewer than 2 are finite, or when all are equal);
    non-finite energies get weight 0. All energies non-finite: uniform weights (the caller keeps the mean).
    """
    finite = torch.isfinite(energies)
    n_finite = finite.sum()
    finite_energies = torch.where(finite, energies, 0.0)
    mean = finite_energies.sum() / n_finite.clamp_min(1)
    var = (torch.where(finite, energies - mean, 0.0) ** 2).sum() / (n_finite - 1).clamp_min(1)
    scale = torch.where(var > 0, var.sqrt(), torch.ones_like(var)) * temperature
    lowest = torch.where(finite, energies, float("inf")).min()
    logits = torch.where(finite, -(energies - lowest) / scale, float("-inf"))
    logits = torch.where(n_finite > 0, logits, torch.zeros_like(logits))
    return torch.softmax(logits, dim=0)


@torch.no_grad()
def plan_mppi(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    *,
    device: torch.device | str = "cpu",
    init_mean: Tensor | None = None,
    init_elites: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Optimise an action sequence ``[H, 7]`` with MPPI (the :class:`planner.optimizer.Optimizer` signature).

    Rollouts per call: ``samples * iterations + 2``. ``init_elites`` is ignored. ``PlanResult``'s
    elites are the ``topk`` best sequences seen over all iterations.

    Raises:
        ValueError: ``init_mean`` is not ``[H, 7]``, or the objective does not return ``[S]``.
        NonFiniteEnergyError: no finite energy at all, or the plan's energy is not finite.
    """
    device = torch.device(device)
    limits = ActionLimits(config, device)
    _, std = initial_distribution(config, limits)
    mean = start_mean(config, limits, init_mean)
    momentum = torch.full((ACTION_DIM,), config.momentum_mean, device=device)
    momentum[GRIPPER_DIM] = config.momentum_gripper
    search = SearchRecord(config, device)  # elites: the topk best seen; the update uses the weights, not them
    for it in range(config.iterations):
        noise = torch.randn((config.samples, config.horizon, ACTION_DIM), generator=generator, device=device)
        population = sample_and_score(rollout, objective, limits, mean, std, noise)  # the mean is sample 0
        weights = mppi_weights(population.energies, config.mppi_temperature)  # [N]
        weighted_mean = torch.einsum("s,shd->hd", weights, population.actions)  # [H, 7]
        new_mean = limits.apply(momentum * mean + (1 - momentum) * weighted_mean)
        mean = torch.where(population.finite_count > 0, new_mean, mean)
        search.select_elites(population, carry=config.topk)
        search.record(it, population)

    finalists = torch.stack([mean, search.elite_actions[0]])  # [2, H, 7]
    return search.finish(rollout, objective, config, limits, finalists, mean=mean, std=std)
