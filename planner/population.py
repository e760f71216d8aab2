"""What the three sampling optimisers, CEM (:mod:`planner.cem`), iCEM (:mod:`planner.icem`) and MPPI
(:mod:`planner.mppi`), do alike in every iteration: draw a population of action sequences around a
Gaussian, put it inside the action limits, roll it out and score it (:func:`sample_and_score`), keep
the lowest energies as elites and record the iteration for :class:`planner.optimizer.PlanResult`
(:class:`SearchRecord`). What sets them apart stays in their own modules, beside their papers: the
noise (iCEM's coloured), the population size (iCEM's decay), which elites rejoin the pool, and how
the population moves the mean (CEM's elite statistics, MPPI's energy weights).

The NaN policy, the one for all three: an energy that is not finite (NaN, +inf or -inf: a world model
diverging on that sequence) becomes +inf. It sorts after every finite energy, so such a sequence is
an elite only while fewer than ``topk`` energies are finite, and the updates ignore it (CEM's elite
statistics and MPPI's weights count finite energies only): it never moves the distribution, and an
iteration without a finite energy leaves the distribution where it was. A search in which no sample
ever had a finite energy, or whose chosen plan's energy is not finite, raises
:class:`planner.optimizer.NonFiniteEnergyError` (in :func:`planner.optimizer.finish_plan`): never a
random action.

Nothing here waits for the host (no ``.item()``): the record lives in preallocated device tensors,
read once by :func:`planner.optimizer.finish_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM
from planner.config import PlannerConfig
from planner.interface import Objective, RolloutFn
from planner.limits import ActionLimits
from planner.optimizer import PlanResult, finish_plan


@dataclass(frozen=True)
class Population:
    """One iteration's candidates and their energies, on the search's device."""

    actions: Tensor
    """[P, H, 7] the candidates, inside the action limits (m, rad, gripper delta per step)."""
    energies: Tensor
    """[P] float32 their energies (lower is better), +inf where the objective's was not finite."""
    finite_count: Tensor
    """0-d int64: how many of the objective's energies were finite."""


def sample_and_score(
    rollout: RolloutFn,
    objective: Objective,
    limits: ActionLimits,
    mean: Tensor,
    std: Tensor,
    noise: Tensor,
    *,
    mean_as_sample: bool = True,
    extra: Tensor | None = None,
) -> Population:
    """Draw ``mean + std * noise`` and score it in one rollout, with the module's NaN policy.

    ``mean``, ``std``: ``[H, 7]`` the sampling Gaussian; ``noise``: ``[P, H, 7]`` unit-variance draws,
    made by the caller so that each optimiser keeps its own distribution and generator order.
    ``mean_as_sample``: sample 0 is the mean itself (so a converged mean is always scored).
    ``extra``: ``[E, H, 7]`` sequences appended to the draw (iCEM's previous elites). All P + E are put
    inside ``limits``, rolled out (``[P + E, H, N, D]``) and scored (``[P + E]``).

    Raises:
        ValueError: the objective does not return energies ``[P + E]``.
    """
    candidates = mean + std * noise  # [P, H, 7]
    if mean_as_sample:
        candidates[0] = mean
    if extra is not None and extra.shape[0]:
        candidates = torch.cat([candidates, extra])  # [P + E, H, 7]
    candidates = limits.apply(candidates)
    energies = objective(rollout(candidates)).float()  # [P + E]
    if energies.shape != (candidates.shape[0],):
        raise ValueError(f"objective must return energies [S={candidates.shape[0]}], got shape {tuple(energies.shape)}")
    finite = torch.isfinite(energies)
    energies = torch.where(finite, energies, torch.full_like(energies, float("inf")))
    return Population(candidates, energies, finite.sum())


class SearchRecord:
    """The elites of a sampling search and its per-iteration record (what ``PlanResult`` reports).

    ``elite_actions [K, H, 7]`` and ``elite_energies [K]`` (ascending; K = ``topk``, empty before the
    first :meth:`select_elites`); ``best_energies``, ``elite_mean_energies`` and ``finite_counts`` are
    ``[I]`` (I = ``iterations``), written by :meth:`record`.
    """

    def __init__(self, config: PlannerConfig, device: torch.device) -> None:
        self.topk = config.topk
        self.best_energies = torch.empty(config.iterations, device=device)
        self.elite_mean_energies = torch.empty(config.iterations, device=device)
        self.finite_counts = torch.empty(config.iterations, dtype=torch.long, device=device)
        self.elite_actions = torch.empty(0, config.horizon, ACTION_DIM, device=device)
        self.elite_energies = torch.empty(0, device=device)

    def select_elites(self, population: Population, carry: int) -> None:
        """The new elites: the ``topk`` lowest energies among the population and the first ``carry``
        current elites. Carried elites keep their energies: the world model is deterministic (in eval
        mode), so rolling them out again would only cost time."""
        actions = torch.cat([population.actions, self.elite_actions[:carry]])  # [P + carry, H, 7]
        energies = torch.cat([population.energies, self.elite_energies[:carry]])
        top = torch.topk(energies, min(self.topk, energies.numel()), largest=False, sorted=True)
        self.elite_actions, self.elite_energies = actions[top.indices], top.values

    def record(self, iteration: int, population: Population, best_energy: Tensor | None = None) -> None:
        """Record iteration ``iteration`` after :meth:`select_elites`: its best energy (the lowest elite's
        unless ``best_energy``, 0-d, is given), the mean energy of the finite elites (0 when none is)
        and the population's finite count."""
        self.finite_counts[iteration] = population.finite_count
        self.best_energies[iteration] = self.elite_energies[0] if best_energy is None else best_energy
        finite = torch.isfinite(self.elite_energies)
        finite_sum = torch.where(finite, self.elite_energies, 0.0).sum()
        self.elite_mean_energies[iteration] = finite_sum / finite.sum().clamp_min(1)

    def finish(
        self,
        rollout: RolloutFn,
        objective: Objective,
        config: PlannerConfig,
        limits: ActionLimits,
        finalists: Tensor,
        *,
        mean: Tensor,
        std: Tensor,
    ) -> PlanResult:
        """The plan among ``finalists [F, H, 7]``, with this record: :func:`planner.optimizer.finish_plan`.

        Raises:
            NonFiniteEnergyError: no finite energy in any iteration, or the plan's energy is not finite.
        """
        return finish_plan(
            rollout,
            objective,
            config,
            limits,
            finalists,
            elite_actions=self.elite_actions,
            elite_energies=self.elite_energies,
            best_energies=self.best_energies,
            elite_mean_energies=self.elite_mean_energies,
            finite_counts=self.finite_counts,
            mean=mean,
            std=std,
        )
