"""``PlannerConfig.optimizer`` -> the optimiser function (all share :class:`planner.optimizer.Optimizer`).

| name | function | rollouts per planning step (batch) |
|---|---|---|
| ``cem`` | :func:`planner.cem.plan_cem` | ``samples`` x ``iterations`` |
| ``icem`` | :func:`planner.icem.plan_icem` | ``sum_i max(samples * gamma^-i, 2 topk)`` |
| ``mppi`` | :func:`planner.mppi.plan_mppi` | ``samples`` x ``iterations`` |
| ``grad`` | :func:`planner.gradient.plan_gradient` | ``grad_steps`` forward+backward of ``grad_starts`` |
| ``cem+grad`` | :func:`planner.gradient.plan_cem_then_gradient` | CEM's, then grad's |
"""

from __future__ import annotations

from planner.cem import plan_cem
from planner.config import OPTIMIZERS
from planner.gradient import plan_cem_then_gradient, plan_gradient
from planner.icem import plan_icem
from planner.mppi import plan_mppi
from planner.optimizer import Optimizer

OPTIMIZER_FUNCTIONS: dict[str, Optimizer] = {
    "cem": plan_cem,
    "icem": plan_icem,
    "mppi": plan_mppi,
    "grad": plan_gradient,
    "cem+grad": plan_cem_then_gradient,
}
NEEDS_GRADIENTS = frozenset({"grad", "cem+grad"})
"""Optimisers that differentiate through the rollout (bind it with ``differentiable=True``)."""

assert set(OPTIMIZER_FUNCTIONS) == set(OPTIMIZERS), "planner.config.OPTIMIZERS and the registry disagree"


def get_optimizer(name: str) -> Optimizer:
    """The optimiser called ``name``. Raises ValueError naming the valid names."""
    try:
        return OPTIMIZER_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZER_FUNCTIONS)}") from None
