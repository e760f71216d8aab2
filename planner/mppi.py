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
whichever scores lower (as CEM's).
"""
from __future__ import annotations

import torch
from torch import Tensor

from foundation.pose import ACTION_DIM, GRIPPER_DIM
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import PlanResult, finish_plan, initial_distribution, start_mean


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
    n, h, k, iterations = config.samples, config.horizon, config.topk, config.iterations
    best_energies = torch.empty(iterations, device=device)
    elite_mean_energies = torch.empty(iterations, device=device)
    finite_counts = torch.empty(iterations, dtype=torch.long, device=device)
    elite_actions = torch.empty(0, h, ACTION_DIM, device=device)
    elite_energies = torch.empty(0, device=device)

    for it in range(iterations):
        noise = torch.randn((n, h, ACTION_DIM), generator=generator, device=device)
        candidates = mean + std * noise  # [N, H, 7]
        candidates[0] = mean
        candidates = limits.apply(candidates)
        energies = objective(rollout(candidates)).float()  # [N]
        if energies.shape != (n,):
            raise ValueError(f"objective must return energies [S={n}], got shape {tuple(energies.shape)}")
        finite = torch.isfinite(energies)
        finite_counts[it] = finite.sum()
        energies = torch.where(finite, energies, torch.full_like(energies, float("inf")))

        weights = mppi_weights(energies, config.mppi_temperature)  # [N]
        weighted_mean = torch.einsum("s,shd->hd", weights, candidates)
        new_mean = limits.apply(momentum * mean + (1 - momentum) * weighted_mean)
        mean = torch.where(finite.any(), new_mean, mean)

        pool_actions = torch.cat([candidates, elite_actions])
        pool_energies = torch.cat([energies, elite_energies])
        top = torch.topk(pool_energies, k, largest=False, sorted=True)
        elite_actions, elite_energies = pool_actions[top.indices], top.values
        best_energies[it] = elite_energies[0]
        valid = torch.isfinite(elite_energies)
        elite_mean_energies[it] = torch.where(valid, elite_energies, 0.0).sum() / valid.sum().clamp_min(1)

    return finish_plan(
        rollout, objective, config, limits, torch.stack([mean, elite_actions[0]]),
        elite_actions=elite_actions, elite_energies=elite_energies, best_energies=best_energies,
        elite_mean_energies=elite_mean_energies, finite_counts=finite_counts, mean=mean, std=std,
    )
