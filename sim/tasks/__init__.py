"""One module per task; ``TASKS`` maps the short task name to its env class."""

from __future__ import annotations

from sim.tasks.grasp import GraspEnv
from sim.tasks.lang_tasks import LangLiftEnv, LangPlaceEnv, LangPushEnv, LangTouchEnv
from sim.tasks.pickplace import PickPlaceEnv
from sim.tasks.push import PushEnv
from sim.tasks.reach import ReachEnv

LANGUAGE_ENVS = (LangTouchEnv, LangLiftEnv, LangPushEnv, LangPlaceEnv)
TASKS = {env.task_name: env for env in (ReachEnv, PushEnv, GraspEnv, PickPlaceEnv, *LANGUAGE_ENVS)}

__all__ = [
    "TASKS",
    "ReachEnv",
    "PushEnv",
    "GraspEnv",
    "PickPlaceEnv",
    "LangTouchEnv",
    "LangLiftEnv",
    "LangPushEnv",
    "LangPlaceEnv",
]
