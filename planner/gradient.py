"""Gradient-based planning: Adam on the action sequence through the world model's rollout.

The energy ``E(a) = objective(rollout(a))`` is differentiable in the actions ``a [H, 7]`` through
the predictor, so the plan can be improved by gradient descent instead of by sampling, as in
gradient-based planners over learned models (e.g. the GD planner of DINO-WM, Zhou et al. 2024, and of
facebookresearch/jepa-wms). ``grad_starts`` sequences ``[G, H, 7]`` are optimised in parallel
(start 0 is ``init_mean``, the warm start, the others that plus ``init_std_*`` Gaussian noise, or the
given elites), each for ``grad_steps`` Adam steps (Kingma and Ba 2015) on

    z = a / s,   s = init_std per dimension            # [G, H, 7], so that grad_lr is in units of s
    loss = sum over finite starts of E(a)              # the starts do not interact

with a projection after every step: ``a = limits.apply(a)`` (projected gradient descent; held
dimensions get no gradient). A non-finite energy or gradient zeroes that start's step. The plan is
the lowest-energy sequence ever evaluated or the best final iterate (scored like CEM's finalists).

``plan_cem_then_gradient`` ("cem+grad") first runs :func:`planner.cem.plan_cem` with the config's
budget, then refines its plan (start 0) and its best elites (the other starts) with Adam.

The rollout must be differentiable (autograd enabled inside it): :class:`planner.mpc.GoalImageMPC`
binds one with :func:`planner.interface.bind_context` ``(..., differentiable=True)``. Each Adam step
costs one forward and one backward pass of batch G (the backward about twice the forward).
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM
from planner.cem import plan_cem
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import PlanResult, finish_plan, initial_distribution, start_mean


class NotDifferentiableError(RuntimeError):
    """The rollout returned tokens without a gradient: it runs under ``torch.no_grad``."""


def plan_gradient(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    *,
    device: torch.device | str = "cpu",
    init_mean: Tensor | None = None,
    init_elites: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Optimise an action sequence ``[H, 7]`` with Adam (the :class:`planner.optimizer.Optimizer` signature).

    ``init_mean`` ``[H, 7]``: start 0 (else the initial mean, no motion). ``init_elites``
    ``[K, H, 7]``: further starts, best first (else random ones around start 0). Rollouts: ``grad_steps``
    forward + backward passes of batch ``grad_starts``, plus one of batch ``grad_starts + 1`` at the end.

    Raises:
        NotDifferentiableError: the rollout's output has no gradient.
        ValueError: ``init_mean`` / ``init_elites`` of the wrong shape, or the objective does not return ``[S]``.
        NonFiniteEnergyError: no finite energy at all, or the plan's energy is not finite.
    """
    device = torch.device(device)
    limits = ActionLimits(config, device)
    _, std = initial_distribution(config, limits)  # [H, 7], 0 on held dimensions
    mean = start_mean(config, limits, init_mean)
    g, h, steps = config.grad_starts, config.horizon, config.grad_steps
    with torch.no_grad():
        starts = mean.expand(g, h, ACTION_DIM).clone()  # [G, H, 7]
        noise = torch.randn((g, h, ACTION_DIM), generator=generator, device=device)
        starts[1:] = starts[1:] + std * noise[1:]
        if init_elites is not None:
            if init_elites.dim() != 3 or init_elites.shape[1:] != (h, ACTION_DIM):
                raise ValueError(f"init_elites must be [K, horizon={h}, {ACTION_DIM}], got {tuple(init_elites.shape)}")
            given = init_elites[: g - 1].to(device, torch.float32)
            starts[1 : 1 + given.shape[0]] = given
        scale = torch.where(limits.planned, std[0], torch.ones_like(std[0]))  # [7] the units of z
        z = (limits.apply(starts) / scale).requires_grad_(True)
    adam = torch.optim.Adam([z], lr=config.grad_lr)

    best_energies = torch.empty(steps, device=device)
    elite_mean_energies = torch.empty(steps, device=device)
    finite_counts = torch.empty(steps, dtype=torch.long, device=device)
    best_action = mean.clone()
    best_energy = torch.full((), float("inf"), device=device)
    start_energies = torch.full((g,), float("inf"), device=device)  # best energy of each start
    start_actions = starts.clone()
    for step in range(steps):
        with torch.enable_grad():
            actions = limits.apply(z * scale)  # [G, H, 7]
            energies = objective(rollout(actions)).float()  # [G]
            if energies.shape != (g,):
                raise ValueError(f"objective must return energies [S={g}], got shape {tuple(energies.shape)}")
            if not energies.requires_grad:
                raise NotDifferentiableError(
                    "the rollout's tokens carry no gradient (it runs under torch.no_grad): bind it with "
                    "planner.interface.bind_context(model, ..., differentiable=True), or choose a sampling optimizer"
                )
            finite = torch.isfinite(energies)
            loss = torch.where(finite, energies, 0.0).sum()
            (grad,) = torch.autograd.grad(loss, z)
        with torch.no_grad():
            finite_counts[step] = finite.sum()
            energies = torch.where(finite, energies.detach(), float("inf"))
            improved = energies < start_energies
            start_energies = torch.where(improved, energies, start_energies)
            start_actions = torch.where(improved[:, None, None], actions.detach(), start_actions)
            lowest = energies.argmin()
            better = energies[lowest] < best_energy
            best_action = torch.where(better, actions[lowest].detach(), best_action)
            best_energy = torch.where(better, energies[lowest], best_energy)
            best_energies[step] = best_energy
            elite_mean_energies[step] = torch.where(finite, energies, 0.0).sum() / finite.sum().clamp_min(1)
            z.grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
            adam.step()
            z.copy_(limits.apply(z * scale) / scale)  # the projection

    with torch.no_grad():
        order = torch.argsort(start_energies)
        finalists = torch.cat([best_action[None], (z * scale).detach()])  # [1 + G, H, 7]
        return finish_plan(
            rollout,
            objective,
            config,
            limits,
            finalists,
            elite_actions=start_actions[order],
            elite_energies=start_energies[order],
            best_energies=best_energies,
            elite_mean_energies=elite_mean_energies,
            finite_counts=finite_counts,
            mean=mean,
            std=std,
        )


def plan_cem_then_gradient(
    rollout: RolloutFn,
    objective: Objective,
    config: PlannerConfig,
    *,
    device: torch.device | str = "cpu",
    init_mean: Tensor | None = None,
    init_elites: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """CEM (``samples`` x ``iterations``), then Adam from CEM's plan and its best elites; the lower
    energy of the two results is the plan. Same signature and errors as :func:`plan_gradient`."""
    searched = plan_cem(rollout, objective, config, device=device, init_mean=init_mean, generator=generator)
    refined = plan_gradient(
        rollout,
        objective,
        config,
        device=device,
        init_mean=searched.actions,
        init_elites=searched.elite_actions,
        generator=generator,
    )
    return refined if refined.energy <= searched.energy else searched
