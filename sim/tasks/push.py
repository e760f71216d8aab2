"""Push: slide the cube along the table into the target zone.

Success: the cube's centre is within ``SUCCESS_RADIUS`` = 4 cm (in xy) of the zone's centre (the
zone is a 10 cm square). The hand pushes with its fingers 3 cm apart and turned across the push
line, so both fingertips touch the cube's back face (``push_rotation``); closed fingers in line with
the push touch it with one 2 cm edge and the cube slides off them (docs/benchmarks.md, "Planner
fixes"). The goal image shows the cube at the zone centre with the hand just behind it, where a push
ends. Sub-goals:

1. the fingers set 3 cm apart, the hand where it starts. Set during the approach, the world model's
   planner lets them drift shut and pushes with closed fingers; set alone, the planner holds the hand
   and plans the gripper by itself, then holds the gripper for the rest (``GoalSequence.keeps_pose``);
2. the turned hand above the cube, as a grasp approaches it: the wrist camera sees the cube at its
   centre. Aimed straight at the spot behind the cube, where the wrist camera shows the cube at its
   border, the world model's planner can go round the wrong way or lower the hand beside the cube;
3. the hand above the spot behind the cube where the push starts, then 4. lowered there.

What each sub-goal changed: docs/benchmarks.md, "Push through the cube's top".
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.env import DOWN, FrankaTaskEnv, GoalConfiguration
from sim.franka import PoseTarget
from sim.scene import CUBE_HALF_SIZE
from sim.tasks.grasp import APPROACH_HEIGHT
from sim.tasks.layout import place_cube, place_distractors

CUBE_AREA = (np.array([0.44, -0.14]), np.array([0.56, 0.14]))
ZONE_LOW, ZONE_HIGH = np.array([0.40, -0.18]), np.array([0.62, 0.18])
PUSH_DISTANCE = (0.12, 0.18)  # m, cube centre to zone centre
SUCCESS_RADIUS = 0.04
PUSH_HEIGHT = 0.02  # m, TCP height while pushing
CONTACT_OFFSET = CUBE_HALF_SIZE + 0.02  # m, TCP distance behind the cube centre when touching it
START_BACKOFF = 0.03  # m further back than contact where the push starts
CLEAR_HEIGHT = 0.08  # m, TCP height that clears the cube
PUSH_CLOSEDNESS = 0.625  # fingers 3 cm apart: two contact points across the cube's face, not one finger's edge


def push_rotation(direction: np.ndarray) -> np.ndarray:
    """Gripper pointing down, turned about the vertical so that its fingers close across the push
    ``direction`` [2] (unit, xy): both fingertips touch the cube's back face, which keeps it from
    turning off the hand. (The hand's x axis is along ``direction``; of the two such yaws, the one
    within +-90 degrees of pointing straight down.)"""
    yaw = np.arctan2(direction[1], direction[0])
    yaw = (yaw + np.pi / 2) % np.pi - np.pi / 2
    return Rotation.from_euler("z", yaw).as_matrix() @ DOWN


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
        placed = np.array([*self.zone, CUBE_HALF_SIZE])
        return GoalConfiguration(PoseTarget(tcp, push_rotation(direction), PUSH_CLOSEDNESS), {self.target_cube: placed})

    def _subgoal_configurations(self) -> list[GoalConfiguration]:
        cube = self.cube_position()
        direction = (self.zone - cube[:2]) / np.linalg.norm(self.zone - cube[:2])
        rotation = push_rotation(direction)
        behind = cube[:2] - (CONTACT_OFFSET + START_BACKOFF) * direction
        poses = [
            PoseTarget(self.robot.tcp_position(), self.robot.tcp_rotation(), PUSH_CLOSEDNESS),  # 1. fingers set
            PoseTarget(cube + [0.0, 0.0, APPROACH_HEIGHT], rotation, PUSH_CLOSEDNESS),  # 2. as a grasp approaches
            PoseTarget(np.array([*behind, CLEAR_HEIGHT]), rotation, PUSH_CLOSEDNESS),  # 3. above where the push starts
            PoseTarget(np.array([*behind, PUSH_HEIGHT]), rotation, PUSH_CLOSEDNESS),  # 4. lowered there
        ]
        return [GoalConfiguration(pose, {self.target_cube: cube.copy()}) for pose in poses]

    def _task_terms(self) -> dict[str, float]:
        return {"distance": float(np.linalg.norm(self.cube_position()[:2] - self.zone))}

    def _is_success(self, terms: dict[str, float]) -> bool:
        return terms["distance"] < SUCCESS_RADIUS
