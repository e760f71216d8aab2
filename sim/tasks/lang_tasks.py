"""The language tasks: one per instruction family, each the single-cube task of its skill in the
coloured scene of sim/tasks/language.py, about the cube (and zone) its episode's instruction names.

| task | family | the single-cube task it reuses | success |
|---|---|---|---|
| lang-touch | "touch the red cube" | (its own; the reach motion) | a finger touches the named cube |
| lang-lift | "lift the red cube" | Grasp | Grasp's, for the named cube |
| lang-push | "push the red cube to the blue zone" | Push | Push's, the named cube in the named zone |
| lang-place | "put the red cube in the left zone" | PickPlace | PickPlace's, the named cube in the named zone |

One task per family rather than one task of all families: each keeps its skill's episode length (a
gymnasium id has one), goal image, sub-goals, success and scripted expert, so an evaluation reads per
family like the single-cube tasks; a dataset of every family is the four collected side by side.
"""

from __future__ import annotations

import numpy as np

from sim.env import DOWN, FrankaTaskEnv, GoalConfiguration
from sim.franka import PoseTarget
from sim.scene import CUBE_HALF_SIZE
from sim.tasks.grasp import APPROACH_HEIGHT, GraspEnv
from sim.tasks.language import LanguageTask
from sim.tasks.pickplace import PickPlaceEnv
from sim.tasks.push import PushEnv

FINGERTIP_BELOW_TCP = 0.009  # m, the closed fingers' tips below the TCP (panda.xml)
TOUCH_PRESS = 0.003  # m the fingertips are asked below the cube's top, so that they touch it
TOUCH_CLOSEDNESS = 1.0  # closed fingers: one fingertip, not two that straddle the cube


def touch_point(cube: np.ndarray) -> np.ndarray:
    """The TCP position [3] whose closed fingertips press on the top of a cube centred at ``cube`` [3]."""
    return cube + [0.0, 0.0, CUBE_HALF_SIZE + FINGERTIP_BELOW_TCP - TOUCH_PRESS]


class LangTouchEnv(LanguageTask, FrankaTaskEnv):
    """Touch the named cube: closed fingertips on its top. Success: a finger touches the named cube. Goal
    image: the closed hand pointing down on the named cube's top; sub-goal: the hand 10 cm above it."""

    task_name = "lang-touch"
    family = "touch"

    @property
    def target(self) -> np.ndarray:
        """Where the TCP touches the named cube now (the reach expert's target)."""
        return touch_point(self.cube_position())

    def _goal_configuration(self) -> GoalConfiguration:
        return GoalConfiguration(PoseTarget(touch_point(self.cube_start), DOWN, TOUCH_CLOSEDNESS))

    def _subgoal_configurations(self) -> list[GoalConfiguration]:
        above = touch_point(self.cube_start) + [0.0, 0.0, APPROACH_HEIGHT]
        return [GoalConfiguration(PoseTarget(above, DOWN, TOUCH_CLOSEDNESS))]

    def _task_terms(self) -> dict[str, float]:
        return {"distance": float(np.linalg.norm(self.robot.tcp_position() - self.target))}

    def _is_success(self, terms: dict[str, float]) -> bool:
        return self.target_cube in self.touched_objects()


class LangLiftEnv(LanguageTask, GraspEnv):
    """Lift the named cube: the Grasp task (goal, sub-goals, success) for it."""

    task_name = "lang-lift"
    family = "lift"


class LangPushEnv(LanguageTask, PushEnv):
    """Push the named cube to the named zone: the Push task for them."""

    task_name = "lang-push"
    family = "push"


class LangPlaceEnv(LanguageTask, PickPlaceEnv):
    """Put the named cube in the named zone: the PickPlace task for them."""

    task_name = "lang-place"
    family = "place"
