"""PickPlace: pick the cube up and put it down in the target zone.

Success: the cube's centre is within ``SUCCESS_RADIUS`` = 4 cm (in xy) of the zone's centre and the
cube rests on the table (its bottom less than 1 cm above it). The goal image shows the cube at the
zone centre and the open gripper ``RELEASE_HEIGHT`` above the table over it. Sub-goals: the grasp's
(above, around, closed on the cube), then the cube lifted, carried over the zone and set down.
"""

from __future__ import annotations

import numpy as np

from sim.env import DOWN, FrankaTaskEnv, GoalConfiguration
from sim.franka import PoseTarget
from sim.scene import CUBE_HALF_SIZE, sample_separated_xy
from sim.tasks.grasp import HELD_CLOSEDNESS, grasp_rotation, grasp_subgoals
from sim.tasks.layout import place_cube, place_distractors

ZONE_AREA = (np.array([0.40, -0.16]), np.array([0.58, 0.16]))
MIN_ZONE_DISTANCE = 0.15  # m, cube start to zone centre
SUCCESS_RADIUS = 0.04
MAX_REST_HEIGHT = 0.01
RELEASE_HEIGHT = 0.12  # m, TCP height in the goal configuration
CARRY_HEIGHT = 0.12  # m, TCP (and cube centre) height of the carrying sub-goals


class PickPlaceEnv(FrankaTaskEnv):
    task_name = "pickplace"
    instruction = "put the cube in the green zone"

    def __init__(self, config=None, render_mode=None):
        super().__init__(config, render_mode)
        self.zone = np.zeros(2)
        self.cube_start = np.zeros(3)

    def _sample_task(self) -> None:
        place_distractors(self.scene, self.np_random)
        cube = place_cube(self.scene, self.np_random)
        self.cube_start = cube
        self.zone = sample_separated_xy(self.np_random, *ZONE_AREA, [cube], MIN_ZONE_DISTANCE)
        self.scene.place_zone(self.zone, visible=True)

    def _goal_configuration(self) -> GoalConfiguration:
        tcp = np.array([*self.zone, RELEASE_HEIGHT])
        placed = np.array([*self.zone, CUBE_HALF_SIZE])
        return GoalConfiguration(PoseTarget(tcp, DOWN, 0.0), {self.target_cube: placed})

    def _subgoal_configurations(self) -> list[GoalConfiguration]:
        rotation = grasp_rotation(self.cube_rotation())
        lifted = np.array([*self.cube_start[:2], CARRY_HEIGHT])
        over_zone = np.array([*self.zone, CARRY_HEIGHT])
        placed = np.array([*self.zone, CUBE_HALF_SIZE])
        carry = [  # the cube is in the closed hand, its centre at the TCP
            GoalConfiguration(PoseTarget(position, rotation, HELD_CLOSEDNESS), {self.target_cube: position})
            for position in (lifted, over_zone, placed)
        ]
        return grasp_subgoals(self.cube_start.copy(), rotation, self.target_cube) + carry

    def _task_terms(self) -> dict[str, float]:
        cube = self.cube_position()
        return {
            "distance": float(np.linalg.norm(cube[:2] - self.zone)),
            "height": float(cube[2] - CUBE_HALF_SIZE),
        }

    def _is_success(self, terms: dict[str, float]) -> bool:
        return terms["distance"] < SUCCESS_RADIUS and terms["height"] < MAX_REST_HEIGHT
