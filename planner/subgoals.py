"""Planning through visual sub-goals: a sequence of goal images, each aimed at for a number of steps.

The planner's horizon (two 0.5 s steps) sees too little of a multi-stage task: toward the final image
of a pick-and-place, the best two-step plan closes the gripper in mid-air or sweeps the cube away. The
reference plans pick-and-place through sub-goal images (grasp, carry, place); so does this module.
Each image of a :class:`GoalSequence` is the goal for its ``steps`` control steps, then the next one
is; the last image (the task's goal) stays the goal until the episode ends::

    goals = GoalSequence.from_poses(images, states, start_state, PlannerConfig())
    for step in range(goals.total_steps):
        mpc.set_goal(goals.images[goals.index_at(step)])   # only when the index changes

The steps of each sub-goal come from the distance to it: what the planner covers at a fraction of
its per-step limit, plus time to settle. On a robot, a user who records sub-goal images gives these
durations instead (how long the demonstration took between two of them): the ROS planner node
times images whose pose it recorded (``~/capture_goal``) by this rule and the others (goal files) by
its ``subgoal_steps`` parameter (``from_poses(..., unknown_steps=...)``), and advances through them
with :meth:`GoalSequence.index_at`, as ``jepa-mpc eval`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from jepa_mpc_foundation.pose import STATE_DIM, actions_from_states
from planner.config import PlannerConfig

SPEED_FRACTION = 0.6  # of max_translation per step: what CEM covers with a margin for detours
SETTLE_STEPS = 2  # steps per sub-goal for the hand (and fingers) to come to rest
SAME_GRIPPER = 0.05  # closedness difference under which two sub-goals share a gripper state
SAME_POSITION = 0.005  # m between two sub-goals' TCP positions under which they share a pose
SAME_ROTATION = 0.02  # rad between their orientations under which they share a pose


def rotation_between(start: np.ndarray, goal: np.ndarray) -> float:
    """Norm (rad) of the rotation part of the action from 7-D ``start`` to 7-D ``goal`` (jepa_mpc_foundation.pose)."""
    states = torch.as_tensor(np.stack([start, goal]), dtype=torch.float64)
    return float(torch.linalg.vector_norm(actions_from_states(states)[0, 3:6]))


def steps_between(start: np.ndarray, goal: np.ndarray, config: PlannerConfig) -> int:
    """Control steps to give the planner to move from 7-D ``start`` to 7-D ``goal``."""
    translation = float(np.linalg.norm(np.asarray(goal[:3]) - np.asarray(start[:3])))
    turn = rotation_between(start, goal)
    gripper = abs(float(goal[6]) - float(start[6]))
    moving = max(
        math.ceil(translation / (SPEED_FRACTION * config.max_translation)),
        math.ceil(turn / (SPEED_FRACTION * config.max_rotation)),
    )
    closing = math.ceil(gripper / config.max_gripper)
    return moving + closing + SETTLE_STEPS


@dataclass(frozen=True)
class GoalSequence:
    """Goal images in the order to reach them; the last is the task's goal."""

    images: np.ndarray
    """[K + 1, H, W, 3] uint8: K sub-goals, then the goal."""
    states: np.ndarray
    """[K + 1, 7] float32: the robot state shown in each image (for the true-state oracle and the schedule)."""
    steps: tuple[int, ...]
    """K + 1 step counts: how long each image is the goal (the last one's is its share of the episode)."""
    start_state: np.ndarray | None = None
    """[7] the robot's state when the sequence starts: what the first image is compared with (None: unknown)."""

    def __post_init__(self) -> None:
        count = len(self.images)
        if count < 1 or self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [K + 1 >= 1, H, W, 3], got {self.images.dtype} {self.images.shape}")
        if self.states.shape != (count, STATE_DIM):
            raise ValueError(f"states must be [{count}, {STATE_DIM}] (one per image), got {self.states.shape}")
        if len(self.steps) != count or min(self.steps) < 1:
            raise ValueError(f"steps must be {count} counts >= 1 (one per image), got {self.steps}")
        if self.start_state is not None and np.shape(self.start_state) != (STATE_DIM,):
            raise ValueError(f"start_state must be [{STATE_DIM}], got {np.shape(self.start_state)}")

    @classmethod
    def single(cls, goal_image: np.ndarray, goal_state: np.ndarray, start_state: np.ndarray, config: PlannerConfig):
        """The final goal alone (no sub-goals)."""
        return cls.from_poses(goal_image[None], np.asarray(goal_state)[None], start_state, config)

    @classmethod
    def from_poses(
        cls,
        images: np.ndarray,
        states: np.ndarray,
        start_state: np.ndarray,
        config: PlannerConfig,
        unknown_steps: int | None = None,
    ):
        """Each image's steps from the distance between consecutive states, starting at ``start_state``.

        ``images`` uint8 [K + 1, H, W, 3]; ``states`` [K + 1, 7] (m, rad, closedness); ``start_state`` [7].
        A state may be unknown (NaN: a photo taken without recording the robot's pose, as on a lab
        robot); the legs to and from it take ``unknown_steps`` steps instead, and ValueError is
        raised if it is None.
        """
        states = np.asarray(states, dtype=np.float32).reshape(-1, STATE_DIM)
        previous = np.concatenate([np.asarray(start_state, dtype=np.float32)[None], states[:-1]])
        steps = []
        for a, b in zip(previous, states):
            if np.isfinite(a).all() and np.isfinite(b).all():
                steps.append(steps_between(a, b, config))
            elif unknown_steps is None:
                raise ValueError("a goal image without a known robot state needs unknown_steps (its step count)")
            else:
                steps.append(int(unknown_steps))
        return cls(np.asarray(images), states, tuple(steps), previous[0])

    @property
    def num_subgoals(self) -> int:
        return len(self.images) - 1

    @property
    def total_steps(self) -> int:
        return sum(self.steps)

    def _previous_state(self, index: int) -> np.ndarray | None:
        """The state before image ``index``: the previous image's, or the start state for the first."""
        return self.states[index - 1] if index > 0 else self.start_state

    def keeps_gripper(self, index: int) -> bool:
        """Whether image ``index`` shows the gripper as the previous one (or the start state) does: carrying,
        moving open. A planner may then hold the gripper still instead of searching over it; a world model's
        planner that searches it anyway drifts it (the first approach of a grasp ended 0.75 closed)."""
        before = self._previous_state(index)
        return before is not None and abs(float(self.states[index, 6]) - float(before[6])) < SAME_GRIPPER

    def keeps_pose(self, index: int) -> bool:
        """Whether image ``index`` shows the hand where the previous one (or the start state) does, only the
        gripper changing (closing on the cube, letting it go): a planner may then hold the hand still and plan
        the gripper."""
        before = self._previous_state(index)
        if before is None:
            return False
        now = self.states[index]
        moved = float(np.linalg.norm(now[:3].astype(np.float64) - before[:3].astype(np.float64)))
        return moved < SAME_POSITION and rotation_between(before, now) < SAME_ROTATION

    def index_at(self, step: int) -> int:
        """Which image is the goal at control step ``step`` (0-based); the last one from its start on."""
        boundaries = np.cumsum(self.steps[:-1])
        return int(np.searchsorted(boundaries, step, side="right"))
