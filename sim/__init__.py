"""MuJoCo tabletop tasks with a Franka Panda, in the DROID / V-JEPA 2-AC 7-D pose convention.

Importing ``sim`` registers the gymnasium ids (nothing heavy is imported until ``gymnasium.make``):

    jepa_mpc/Reach-v0, jepa_mpc/Push-v0, jepa_mpc/Grasp-v0, jepa_mpc/PickPlace-v0, and the language tasks
    jepa_mpc/LangTouch-v0, jepa_mpc/LangLift-v0, jepa_mpc/LangPush-v0, jepa_mpc/LangPlace-v0

    env = gymnasium.make("jepa_mpc/Push-v0", config=SimConfig(image_size=64))
    obs, info = env.reset(seed=0)   # info["goal_image"], info["goal_state"]

See docs/sim.md for the tasks, success criteria, cameras and control period.
"""

from __future__ import annotations

import gymnasium

from sim import gl_backend  # noqa: F401  (sets MUJOCO_GL before anything imports mujoco)

# short task name -> (gymnasium id, "module:class", episode length in control steps: 4 / 10 / 6 / 10 s at 4 Hz)
SINGLE_CUBE_TASKS = {
    "reach": ("jepa_mpc/Reach-v0", "sim.tasks.reach:ReachEnv", 16),
    "push": ("jepa_mpc/Push-v0", "sim.tasks.push:PushEnv", 40),
    "grasp": ("jepa_mpc/Grasp-v0", "sim.tasks.grasp:GraspEnv", 24),
    "pickplace": ("jepa_mpc/PickPlace-v0", "sim.tasks.pickplace:PickPlaceEnv", 40),
}
# The language tasks: coloured cubes and zones, an instruction per episode (sim/tasks/lang_tasks.py).
LANGUAGE_TASKS = {
    "lang-touch": ("jepa_mpc/LangTouch-v0", "sim.tasks.lang_tasks:LangTouchEnv", 16),
    "lang-lift": ("jepa_mpc/LangLift-v0", "sim.tasks.lang_tasks:LangLiftEnv", 24),
    "lang-push": ("jepa_mpc/LangPush-v0", "sim.tasks.lang_tasks:LangPushEnv", 40),
    "lang-place": ("jepa_mpc/LangPlace-v0", "sim.tasks.lang_tasks:LangPlaceEnv", 40),
}
ENV_IDS = {**SINGLE_CUBE_TASKS, **LANGUAGE_TASKS}


def _register() -> None:
    for env_id, entry_point, steps in ENV_IDS.values():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=steps)


_register()


def env_id(task: str) -> str:
    """The gymnasium id of a short task name; ValueError listing the valid names otherwise."""
    key = task.lower()
    if key not in ENV_IDS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(ENV_IDS)}")
    return ENV_IDS[key][0]


def episode_steps(task: str) -> int:
    """The episode length of a short task name in control steps (the env truncates after it)."""
    env_id(task)  # ValueError listing the valid names
    return ENV_IDS[task.lower()][2]


def is_language_task(task: str) -> bool:
    """Whether ``task`` (a short name) is a language task: its episodes each have an instruction."""
    return task.lower() in LANGUAGE_TASKS


__all__ = ["ENV_IDS", "LANGUAGE_TASKS", "SINGLE_CUBE_TASKS", "env_id", "episode_steps", "is_language_task"]
