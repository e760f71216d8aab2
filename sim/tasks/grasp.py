"""Grasp: pick the cube up and hold it in the air.

Success: the cube's bottom is at least ``MIN_LIFT`` = 5 cm above the table and its centre within
``MAX_HOLD_DISTANCE`` = 5 cm of the TCP (it is in the hand, not thrown). The goal image shows the
cube held at ``LIFT_HEIGHT`` above the spot where it started, the gripper closed on it. Sub-goals:
the open hand above the cube, around it, then closed on it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.env import DOWN, FrankaTaskEnv, GoalConfiguration
from sim.franka import FINGER_TRAVEL, PoseTarget
from sim.scene import CUBE_HALF_SIZE
from sim.tasks.layout import place_cube, place_distractors

MIN_LIFT = 0.05
MAX_HOLD_DISTANCE = 0.05
LIFT_HEIGHT = 0.15  # m, cube centre height in the goal configuration
APPROACH_HEIGHT = 0.10  # m, TCP above the cube centre in the "above the cube" sub-goal
HELD_CLOSEDNESS = 1.0 - CUBE_HALF_SIZE / FINGER_TRAVEL  # fingers touching the 5 cm cube


def grasp_rotation(cube_rotation: np.ndarray) -> np.ndarray:
    """Gripper pointing down, turned about the vertical so that the fingers close on two cube faces."""
    yaw = np.arctan2(cube_rotation[1, 0], cube_rotation[0, 0])
    yaw = (yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4  # a cube looks the same every 90 degrees
    return Rotation.from_euler("z", yaw).as_matrix() @ DOWN


def grasp_subgoals(cube: np.ndarray, rotation: np.ndarray, name: str = "cube") -> list[GoalConfiguration]:
    """Above the cube (open), fingers around it (open), fingers closed on it: the way into a grasp of the
    cube body ``name`` at ``cube`` [3]."""
    above = PoseTarget(cube + [0.0, 0.0, APPROACH_HEIGHT], rotation, 0.0)
    around = PoseTarget(cube.copy(), rotation, 0.0)
    closed = PoseTarget(cube.copy(), rotation, HELD_CLOSEDNESS)
    return [GoalConfiguration(pose, {name: cube.copy()}) for pose in (above, around, closed)]


class GraspEnv(FrankaTaskEnv):
    task_name = "grasp"
    instruction = "pick up the cube"

    def __init__(self, config=None, render_mode=None):
        super().__init__(config, render_mode)
        self.cube_start = np.zeros(3)

    def _sample_task(self) -> None:
        place_distractors(self.scene, self.np_random)
        self.cube_start = place_cube(self.scene, self.np_random)
        self.scene.place_zone(np.array([0.5, 0.0]), visible=False)

    def _goal_configuration(self) -> GoalConfiguration:
        lifted = np.array([self.cube_start[0], self.cube_start[1], LIFT_HEIGHT])
        rotation = grasp_rotation(self.cube_rotation())
        return GoalConfiguration(PoseTarget(lifted, rotation, HELD_CLOSEDNESS), {self.target_cube: lifted})

    def _subgoal_configurations(self) -> list[GoalConfiguration]:
        return grasp_subgoals(self.cube_start.copy(), grasp_rotation(self.cube_rotation()), self.target_cube)

    def _task_terms(self) -> dict[str, float]:
        cube = self.cube_position()
        goal = np.array([self.cube_start[0], self.cube_start[1], LIFT_HEIGHT])
        return {
            "distance": float(np.linalg.norm(cube - goal)),
            "lift": float(cube[2] - CUBE_HALF_SIZE),
            "tcp_to_cube": float(np.linalg.norm(self.robot.tcp_position() - cube)),
        }

    def _is_success(self, terms: dict[str, float]) -> bool:
        return terms["lift"] >= MIN_LIFT and terms["tcp_to_cube"] <= MAX_HOLD_DISTANCE
