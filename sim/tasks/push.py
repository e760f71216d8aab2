"""Push: slide the cube along the table into the target zone.

Success: the cube's centre is within ``SUCCESS_RADIUS`` = 4 cm (in xy) of the zone's centre (the
zone is a 10 cm square). The goal image shows the cube at the zone centre with the closed gripper
just behind it, where a push ends. Sub-goals: the closed hand above the spot behind the cube where
the push starts, then lowered there.
"""
from __future__ import annotations

import numpy as np

from sim.env import DOWN, FrankaTaskEnv, GoalConfiguration
from sim.franka import PoseTarget
from sim.scene import CUBE_HALF_SIZE
from sim.tasks.layout import place_cube, place_distractors

CUBE_AREA = (np.array([0.44, -0.14]), np.array([0.56, 0.14]))
ZONE_LOW, ZONE_HIGH = np.array([0.40, -0.18]), np.array([0.62, 0.18])
PUSH_DISTANCE = (0.12, 0.18)  # m, cube centre to zone centre
SUCCESS_RADIUS = 0.04
PUSH_HEIGHT = 0.02  # m, TCP height while pushing
CONTACT_OFFSET = CUBE_HALF_SIZE + 0.02  # m, TCP distance behind the cube centre when touching it
START_BACKOFF = 0.03  # m further back than contact where the push starts
CLEAR_HEIGHT = 0.08  # m, TCP height that clears the cube


class PushEnv(FrankaTaskEnv):
    task_name = "push"
    instruction = "push the cube into the green zone"

    def __init__(self, config=None, render_mode=None):
        super().__init__(config, render_mode)
        self.zone = np.zeros(2)

    def _sample_task(self) -> None:
        place_distractors(self.scene, self.np_random)
        cube = place_cube(self.scene, self.np_random, area=CUBE_AREA)
        for _ in range(100):
            # Mostly sideways pushes (the camera sees them best), sometimes forward or back.
            heading = self.np_random.choice([np.pi / 2, -np.pi / 2]) + self.np_random.uniform(-0.6, 0.6)
            distance = self.np_random.uniform(*PUSH_DISTANCE)
            zone = cube[:2] + distance * np.array([np.cos(heading), np.sin(heading)])
            if np.all(zone >= ZONE_LOW) and np.all(zone <= ZONE_HIGH):
                break
        self.zone = zone
        self.scene.place_zone(zone, visible=True)

    def _goal_configuration(self) -> GoalConfiguration:
        cube = self.cube_position()
        direction = (self.zone - cube[:2]) / np.linalg.norm(self.zone - cube[:2])
        tcp = np.array([*(self.zone - CONTACT_OFFSET * direction), PUSH_HEIGHT])
        return GoalConfiguration(PoseTarget(tcp, DOWN, 1.0), {"cube": np.array([*self.zone, CUBE_HALF_SIZE])})

    def _subgoal_configurations(self) -> list[GoalConfiguration]:
        cube = self.cube_position()
        direction = (self.zone - cube[:2]) / np.linalg.norm(self.zone - cube[:2])
        behind = cube[:2] - (CONTACT_OFFSET + START_BACKOFF) * direction
        return [
            GoalConfiguration(PoseTarget(np.array([*behind, height]), DOWN, 1.0), {"cube": cube.copy()})
            for height in (CLEAR_HEIGHT, PUSH_HEIGHT)
        ]

    def _task_terms(self) -> dict[str, float]:
        return {"distance": float(np.linalg.norm(self.cube_position()[:2] - self.zone))}

    def _is_success(self, terms: dict[str, float]) -> bool:
        return terms["distance"] < SUCCESS_RADIUS
