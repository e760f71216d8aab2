"""One module per task; ``TASKS`` maps the short task name to its env class."""

from __future__ import annotations

from sim.tasks.grasp import GraspEnv
from sim.tasks.pickplace import PickPlaceEnv
from sim.tasks.push import PushEnv
from sim.tasks.reach import ReachEnv

TASKS = {env.task_name: env for env in (ReachEnv, PushEnv, GraspEnv, PickPlaceEnv)}

__all__ = ["TASKS", "ReachEnv", "PushEnv", "GraspEnv", "PickPlaceEnv"]
