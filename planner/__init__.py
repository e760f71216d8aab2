"""Goal-image planning: CEM over action sequences scored by a world model's predicted tokens.

- :mod:`planner.config`: :class:`PlannerConfig`, the single source of the planner's defaults.
- :mod:`planner.interface`: what the planner needs from a model (a rollout function and an objective).
- :mod:`planner.energy`: the goal energy (mean L1 between predicted and goal tokens).
- :mod:`planner.limits`: action limits applied to every sample.
- :mod:`planner.optimizer`: the :class:`Optimizer` signature every optimiser has, :class:`PlanResult`.
- :mod:`planner.cem`, :mod:`planner.icem`, :mod:`planner.mppi`, :mod:`planner.gradient`: the optimisers
  (CEM, iCEM, MPPI, Adam through the model); :mod:`planner.registry`: ``PlannerConfig.optimizer`` -> one.
- :mod:`planner.population`: the sampling step and per-iteration record CEM, iCEM and MPPI share (one NaN policy).
- :mod:`planner.mpc`: :class:`GoalImageMPC`, receding-horizon control around one, with surprise gating.
- :mod:`planner.analytic`: a world model with a known optimum, for tests and benchmarks.
"""

from planner.cem import plan_cem
from planner.config import PlannerConfig
from planner.energy import goal_energy, goal_objective
from planner.gradient import plan_cem_then_gradient, plan_gradient
from planner.icem import plan_icem
from planner.interface import Objective, PlanningWorldModel, RolloutFn, RolloutModel, bind_context
from planner.limits import ActionLimits
from planner.mpc import GoalImageMPC, MPCStep, PlanCancelled
from planner.mppi import plan_mppi
from planner.optimizer import NonFiniteEnergyError, Optimizer, PlanResult, shift_plan
from planner.registry import OPTIMIZER_FUNCTIONS, get_optimizer

__all__ = [
    "ActionLimits",
    "GoalImageMPC",
    "MPCStep",
    "NonFiniteEnergyError",
    "OPTIMIZER_FUNCTIONS",
    "Objective",
    "Optimizer",
    "PlanCancelled",
    "PlanResult",
    "PlannerConfig",
    "PlanningWorldModel",
    "RolloutFn",
    "RolloutModel",
    "bind_context",
    "goal_energy",
    "get_optimizer",
    "goal_objective",
    "plan_cem",
    "plan_cem_then_gradient",
    "plan_gradient",
    "plan_icem",
    "plan_mppi",
    "shift_plan",
]
