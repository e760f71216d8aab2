"""Reach: bring the tool centre point (TCP) to a target point above the table.

Success: the TCP is within ``SUCCESS_RADIUS`` = 3 cm of the target point. The goal image shows the
arm with its TCP at the target (gripper down, open); the target itself is not drawn in the scene.
"""

from __future__ import annotations

import numpy as np

from sim.env import DOWN, FrankaTaskEnv, GoalConfiguration
from sim.franka import PoseTarget
from sim.tasks.layout import place_cube, place_distractors

TARGET_LOW = np.array([0.40, -0.18, 0.08])
TARGET_HIGH = np.array([0.60, 0.18, 0.30])
SUCCESS_RADIUS = 0.03
MIN_TRAVEL = 0.12  # m, the target is at least this far from the TCP at the start


class ReachEnv(FrankaTaskEnv):
    task_name = "reach"
    instruction = "move the gripper to the target position"

    def __init__(self, config=None, render_mode=None):
        super().__init__(config, render_mode)
        self.target = np.zeros(3)

    def _sample_task(self) -> None:
        place_distractors(self.scene, self.np_random)
        place_cube(self.scene, self.np_random)
        self.scene.place_zone(np.array([0.5, 0.0]), visible=False)
        start = self.robot.tcp_position()
        for _ in range(100):
            self.target = self.np_random.uniform(TARGET_LOW, TARGET_HIGH)
            if np.linalg.norm(self.target - start) >= MIN_TRAVEL:
                break

    def _goal_configuration(self) -> GoalConfiguration:
        return GoalConfiguration(PoseTarget(self.target.copy(), DOWN, 0.0))

    def _task_terms(self) -> dict[str, float]:
        return {"distance": float(np.linalg.norm(self.robot.tcp_position() - self.target))}

    def _is_success(self, terms: dict[str, float]) -> bool:
        return terms["distance"] < SUCCESS_RADIUS
