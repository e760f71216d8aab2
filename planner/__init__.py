"""Goal-image planning: CEM over action sequences scored by a world model's predicted tokens.

- :mod:`planner.config`: :class:`PlannerConfig`, the single source of the planner's defaults.
- :mod:`planner.interface`: what the planner needs from a model (a rollout function and an objective).
- :mod:`planner.energy`: the goal energy (mean L1 between predicted and goal tokens).
- :mod:`planner.limits`: action limits applied to every sample.
- :mod:`planner.cem`: the one-shot optimiser :func:`plan_cem` -> :class:`PlanResult`.
- :mod:`planner.mpc`: :class:`GoalImageMPC`, receding-horizon control around it.
- :mod:`planner.analytic`: a world model with a known optimum, for tests and benchmarks.
"""
from planner.cem import NonFiniteEnergyError, PlanResult, plan_cem, shift_plan
from planner.config import PlannerConfig
from planner.energy import goal_energy, goal_objective
from planner.interface import Objective, PlanningWorldModel, RolloutFn, RolloutModel, bind_context
from planner.limits import ActionLimits
from planner.mpc import GoalImageMPC, MPCStep

__all__ = [
    "ActionLimits",
    "GoalImageMPC",
    "MPCStep",
    "NonFiniteEnergyError",
    "Objective",
    "PlanResult",
    "PlannerConfig",
    "PlanningWorldModel",
    "RolloutFn",
    "RolloutModel",
    "bind_context",
    "goal_energy",
    "goal_objective",
    "plan_cem",
    "shift_plan",
]
