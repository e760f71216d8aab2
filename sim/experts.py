"""Scripted experts for every task and a random exploration policy, all acting in the 7-D action space.

The experts read the true object poses from the env (privileged information a real demonstrator
has by eye) and follow a small state machine of waypoints, stepping towards each one at a bounded
speed. They are closed loop: a dropped cube or a push gone sideways sends them back to an earlier
phase. Two knobs make the data less perfect, as demonstrations are:

- ``noise``: std (m) of Gaussian noise added to every position delta (a third of it, in rad, to the
  rotation delta);
- ``failure_prob``: the chance that an episode is a *failure* episode, whose waypoints are all
  shifted by 7-10 cm sideways (the hand misses the cube or the zone); such episodes mostly fail.

    expert = make_expert("pickplace", env, np.random.default_rng(0), noise=0.005)
    obs, info = env.reset(seed=0); expert.reset()
    action = expert.act(obs)   # float32 [7]
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.env import DOWN, FrankaTaskEnv
from sim.scene import CUBE_HALF_SIZE
from sim.tasks.grasp import APPROACH_HEIGHT, LIFT_HEIGHT, grasp_rotation
from sim.tasks.pickplace import CARRY_HEIGHT
from sim.tasks.push import CLEAR_HEIGHT, CONTACT_OFFSET, PUSH_CLOSEDNESS, PUSH_HEIGHT, START_BACKOFF, push_rotation

FAST = 0.05  # m per control step (0.2 m/s at 4 Hz) in free space
SLOW = 0.025  # m per control step near objects
MAX_TURN = 0.25  # rad per control step
OPEN, CLOSED = 0.0, 1.0
CLOSE_STEPS = 2  # control steps the gripper gets to close or open


def rotation_to(state: np.ndarray, rotation: np.ndarray) -> Rotation:
    """The rotation ``R_delta = R_target @ R^T`` from the orientation of the 7-D ``state`` (extrinsic xyz
    Euler, rad) to the rotation matrix ``rotation`` [3, 3]: the rotation part of
    jepa_mpc_foundation.pose.action_between."""
    return Rotation.from_matrix(rotation) * Rotation.from_euler("xyz", state[3:6]).inv()


def step_towards(
    state: np.ndarray, position: np.ndarray, rotation: np.ndarray, gripper: float, speed: float
) -> np.ndarray:
    """The action [7] moving ``state`` [7] towards a pose (position [3] in m, rotation matrix [3, 3]):
    position delta of norm <= ``speed`` (m), rotation delta <= MAX_TURN (rad) about the shortest axis."""
    delta = position - state[:3]
    norm = np.linalg.norm(delta)
    if norm > speed:
        delta *= speed / norm
    rotvec = rotation_to(state, rotation).as_rotvec()  # axis * angle, angle in [0, pi]
    angle = np.linalg.norm(rotvec)
    if angle > MAX_TURN:
        rotvec *= MAX_TURN / angle
    return np.concatenate([delta, Rotation.from_rotvec(rotvec).as_euler("xyz"), [gripper - state[6]]])


def pose_error(state: np.ndarray, position: np.ndarray, rotation: np.ndarray) -> tuple[float, float]:
    """(position error in m, rotation error in rad) of ``state`` from a pose."""
    return float(np.linalg.norm(position - state[:3])), float(rotation_to(state, rotation).magnitude())


class Expert:
    """Base of the scripted experts: noise, failure episodes, phase bookkeeping."""

    def __init__(self, env, rng: np.random.Generator, noise: float = 0.0, failure_prob: float = 0.0):
        if noise < 0:
            raise ValueError(f"noise must be >= 0 m, got {noise}")
        if not 0.0 <= failure_prob <= 1.0:
            raise ValueError(f"failure_prob must be in [0, 1], got {failure_prob}")
        self.env: FrankaTaskEnv = env.unwrapped
        self.rng, self.noise, self.failure_prob = rng, noise, failure_prob
        self.phase = 0
        self.counter = 0
        self.offset = np.zeros(3)  # waypoint shift of a failure episode
        self.failing = False

    def reset(self) -> None:
        """Call after every ``env.reset``: restarts the state machine and draws the failure mode."""
        self.phase, self.counter = 0, 0
        self.failing = bool(self.rng.random() < self.failure_prob)
        if self.failing:
            angle = self.rng.uniform(-np.pi, np.pi)
            self.offset = self.rng.uniform(0.07, 0.1) * np.array([np.cos(angle), np.sin(angle), 0.0])
        else:
            self.offset = np.zeros(3)

    def act(self, obs: dict) -> np.ndarray:
        state = np.asarray(obs["state"], dtype=np.float64)
        action = self._act(state)
        if self.noise > 0:
            action[:3] += self.rng.normal(0.0, self.noise, 3)
            action[3:6] += self.rng.normal(0.0, self.noise / 3, 3)
        return action.astype(np.float32)

    def _act(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _advance(self, phase: int) -> None:
        self.phase, self.counter = phase, 0


class ReachExpert(Expert):
    """Straight to the target point, gripper down and open."""

    def _act(self, state):
        target = self.env.target + self.offset
        return step_towards(state, target, DOWN, OPEN, FAST)


class TouchExpert(Expert):
    """Above the named cube with closed fingers, then straight down until the fingertips touch its top
    (the env's ``target``, which follows the cube): a reach that does not sweep past the other cubes."""

    ABOVE, DESCEND = range(2)

    def _act(self, state):
        point = self.env.target + self.offset
        above = point + [0.0, 0.0, APPROACH_HEIGHT]
        if self.phase == self.ABOVE:
            if pose_error(state, above, DOWN)[0] < 0.02:
                self._advance(self.DESCEND)
            return step_towards(state, above, DOWN, CLOSED, FAST)
        return step_towards(state, point, DOWN, CLOSED, SLOW)


class GraspingExpert(Expert):
    """Phases shared by Grasp and PickPlace: above the cube, down, close, lift."""

    ABOVE, DESCEND, CLOSE, LIFT = range(4)

    def _grasp_phases(self, state: np.ndarray, lift_height: float) -> np.ndarray:
        cube = self.env.cube_position() + self.offset
        rotation = grasp_rotation(self.env.cube_rotation())
        if self.phase == self.ABOVE:
            above = cube + [0.0, 0.0, APPROACH_HEIGHT]
            position_error, angle_error = pose_error(state, above, rotation)
            if position_error < 0.02 and angle_error < 0.1 and state[6] < 0.1:
                self._advance(self.DESCEND)
            return step_towards(state, above, rotation, OPEN, FAST)
        if self.phase == self.DESCEND:
            grasp_point = np.array([cube[0], cube[1], max(cube[2], CUBE_HALF_SIZE)])
            if np.linalg.norm(state[:2] - grasp_point[:2]) > 0.03:  # the cube moved: start over
                self._advance(self.ABOVE)
            elif pose_error(state, grasp_point, rotation)[0] < 0.008:
                self._advance(self.CLOSE)
            return step_towards(state, grasp_point, rotation, OPEN, SLOW)
        if self.phase == self.CLOSE:
            self.counter += 1
            if self.counter >= CLOSE_STEPS:
                self._advance(self.LIFT)
            return step_towards(state, state[:3], rotation, CLOSED, SLOW)
        # LIFT
        lifted = np.array([state[0], state[1], lift_height])
        return step_towards(state, lifted, rotation, CLOSED, FAST)

    def _holding(self, state: np.ndarray) -> bool:
        return np.linalg.norm(self.env.cube_position() - state[:3]) < 0.04 and state[6] > 0.2


class GraspExpert(GraspingExpert):
    def _act(self, state):
        if self.phase == self.LIFT and state[2] > 0.08 and not self._holding(state):
            self._advance(self.ABOVE)  # dropped it: try again
        return self._grasp_phases(state, LIFT_HEIGHT)


class PickPlaceExpert(GraspingExpert):
    CARRY, LOWER, RELEASE, RETREAT = range(4, 8)

    def _act(self, state):
        zone = np.array([*self.env.zone, 0.0]) + self.offset
        carrying = self.phase in (self.LIFT, self.CARRY, self.LOWER)
        if carrying and self.counter > 1 and not self._holding(state):
            self._advance(self.ABOVE)  # dropped it on the way: pick it up again
        if self.phase <= self.LIFT:
            if self.phase == self.LIFT:
                self.counter += 1
                if state[2] > CARRY_HEIGHT - 0.03:
                    self._advance(self.CARRY)
            return self._grasp_phases(state, CARRY_HEIGHT)
        rotation = Rotation.from_euler("xyz", state[3:6]).as_matrix()  # keep the grasp orientation while carrying
        if self.phase == self.CARRY:
            self.counter += 1
            over_zone = np.array([zone[0], zone[1], CARRY_HEIGHT])
            if np.linalg.norm(state[:2] - zone[:2]) < 0.015:
                self._advance(self.LOWER)
            return step_towards(state, over_zone, rotation, CLOSED, FAST)
        if self.phase == self.LOWER:
            self.counter += 1
            place = np.array([zone[0], zone[1], CUBE_HALF_SIZE + 0.008])
            if pose_error(state, place, rotation)[0] < 0.01:
                self._advance(self.RELEASE)
            return step_towards(state, place, rotation, CLOSED, SLOW)
        if self.phase == self.RELEASE:
            self.counter += 1
            if self.counter >= CLOSE_STEPS:
                self._advance(self.RETREAT)
            return step_towards(state, state[:3], rotation, OPEN, SLOW)
        retreat = np.array([state[0], state[1], CARRY_HEIGHT])
        return step_towards(state, retreat, DOWN, OPEN, SLOW)


class PushExpert(Expert):
    """Fingers across the push line behind the cube (the task's ``push_rotation``, ``PUSH_CLOSEDNESS``: both
    fingertips on its back face), pushing it along the cube -> zone line, re-approaching when it slips.

    The push direction is fixed when the hand comes down and refreshed only while the cube is still far
    from the zone (near it, the cube -> zone direction swings with every millimetre)."""

    ABOVE, LOWER, PUSH, DONE = range(4)
    DONE_RADIUS = 0.015  # m, cube centre to zone centre where pushing stops

    def reset(self) -> None:
        super().reset()
        self.direction = np.array([0.0, 1.0])

    def _act(self, state):
        cube = self.env.cube_position()[:2]
        zone = np.asarray(self.env.zone) + self.offset[:2]
        remaining = np.linalg.norm(zone - cube)
        if self.phase in (self.ABOVE, self.LOWER) or remaining > 0.05:
            self.direction = (zone - cube) / max(remaining, 1e-6)
        start = cube - self.direction * (CONTACT_OFFSET + START_BACKOFF)
        hand = push_rotation(self.direction)
        if self.phase == self.PUSH:
            relative = state[:2] - cube
            along = relative @ self.direction  # negative: behind the cube
            lateral = np.linalg.norm(relative - along * self.direction)
            if remaining < self.DONE_RADIUS:
                self._advance(self.DONE)
            elif lateral > 0.02 or along > -CUBE_HALF_SIZE or (zone - cube) @ self.direction < -self.DONE_RADIUS:
                # slipped off the cube's back face, or pushed it past the zone: lift and come again
                self._advance(self.ABOVE)
            else:
                push_to = cube - self.direction * (CONTACT_OFFSET - min(SLOW, 0.5 * remaining))  # slow near the zone
                return step_towards(state, np.array([*push_to, PUSH_HEIGHT]), hand, PUSH_CLOSEDNESS, SLOW)
        if self.phase == self.ABOVE:
            if state[2] < CLEAR_HEIGHT - 0.02:  # straight up first, so as not to sweep the cube
                return step_towards(state, np.array([state[0], state[1], CLEAR_HEIGHT]), hand, PUSH_CLOSEDNESS, SLOW)
            if np.linalg.norm(state[:2] - start) < 0.015:
                self._advance(self.LOWER)
            return step_towards(state, np.array([*start, CLEAR_HEIGHT]), hand, PUSH_CLOSEDNESS, FAST)
        if self.phase == self.LOWER:
            if abs(state[2] - PUSH_HEIGHT) < 0.01:
                self._advance(self.PUSH)
            return step_towards(state, np.array([*start, PUSH_HEIGHT]), hand, PUSH_CLOSEDNESS, SLOW)
        if remaining > 2 * self.DONE_RADIUS:  # DONE, but the cube is off the centre after all
            self._advance(self.ABOVE)
            return step_towards(state, np.array([state[0], state[1], CLEAR_HEIGHT]), hand, PUSH_CLOSEDNESS, SLOW)
        return step_towards(state, state[:3], hand, PUSH_CLOSEDNESS, SLOW)  # hold still behind the cube (the goal pose)


class RandomWalkExplorer(Expert):
    """Exploration data for collection: a smooth random walk of the hand (momentum 0.7), random small turns
    about the vertical with the tilt pulled back to pointing down, and the gripper toggled now and then.
    (Not the evaluation's floor: that is jepa_mpc.evaluation.policies.RandomActionBaseline.)"""

    def reset(self) -> None:
        super().reset()
        self.velocity = np.zeros(3)
        self.yaw_rate = 0.0
        self.gripper = OPEN

    def _act(self, state):
        self.velocity = 0.7 * self.velocity + 0.3 * self.rng.normal(0.0, FAST, 3)
        self.yaw_rate = 0.7 * self.yaw_rate + 0.3 * self.rng.normal(0.0, 0.15)
        if self.rng.random() < 0.1:
            self.gripper = CLOSED - self.gripper
        rotation = Rotation.from_euler("xyz", state[3:6]).as_matrix()
        yaw = np.arctan2(rotation[1, 0], rotation[0, 0]) + self.yaw_rate
        level = Rotation.from_euler("z", yaw).as_matrix() @ DOWN
        return step_towards(state, state[:3] + self.velocity, level, self.gripper, FAST)


EXPERTS = {
    "reach": ReachExpert,
    "push": PushExpert,
    "grasp": GraspExpert,
    "pickplace": PickPlaceExpert,
    # The language tasks: the same motions for the cube (and zone) the instruction names (env.target_cube, env.zone).
    "lang-touch": TouchExpert,
    "lang-lift": GraspExpert,
    "lang-push": PushExpert,
    "lang-place": PickPlaceExpert,
}


def make_expert(task: str, env, rng: np.random.Generator, noise: float = 0.0, failure_prob: float = 0.0) -> Expert:
    """The scripted expert of ``task`` (a short name: reach, push, grasp, pickplace, lang-*) for ``env``."""
    if task not in EXPERTS:
        raise ValueError(f"no expert for task {task!r}; choose one of {sorted(EXPERTS)}")
    return EXPERTS[task](env, rng, noise=noise, failure_prob=failure_prob)


def make_policy(
    kind: str, task: str, env, rng: np.random.Generator, noise: float = 0.0, failure_prob: float = 0.0
) -> Expert:
    """``kind`` "expert" -> make_expert(...); "random" -> RandomWalkExplorer (task-independent)."""
    if kind == "expert":
        return make_expert(task, env, rng, noise=noise, failure_prob=failure_prob)
    if kind == "random":
        return RandomWalkExplorer(env, rng)
    raise ValueError(f"unknown policy {kind!r}; choose 'expert' or 'random'")
