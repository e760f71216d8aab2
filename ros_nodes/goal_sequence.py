"""The goal images a robot aims at in turn: sub-goals, then the goal (pure Python, no ROS).

On a lab robot the images come from files (the ``goal_files`` parameter), from ``~/capture_goal``
(the newest camera frame, with the pose and gripper measured with it) or from the ``goal_image``
topic. :class:`RobotGoals` keeps them in order and says which one the planner aims at, by the rule
``jepa-mpc eval`` uses (:class:`planner.subgoals.GoalSequence`): each image is the goal for its
number of control steps, the last one until the task ends. An image whose robot state was recorded
is timed from the distance to the previous one (:func:`planner.subgoals.steps_between`); one without
(a file, a topic message) takes ``unknown_steps``. Steps are counted from the first aim after a
(re)start, with the state measured then as the start of the first leg, and advance by one per
command sent::

    goals = RobotGoals(PlannerConfig(), unknown_steps=8)
    goals.append(image_a); goals.append(image_b, state_b)
    aim = goals.aim(state_now)          # Aim(index=0, count=2, image=image_a, changed=True, ...)
    if aim.changed: mpc.set_goal(aim.image)
    ...                                  # plan and command
    goals.advance()

Images: uint8 RGB ``[H, W, 3]``, all of one size (one camera). States: ``[7]`` in the project's
convention (``jepa_mpc_foundation/pose.py``: m, extrinsic xyz Euler rad, closedness).

:class:`RepeatedGoalFilter` decides whether a goal image message is the one that set the goals in
force (then it is dropped: both goal subscriptions deliver a latched message, and ``ros2 topic pub``
repeats its message every second) or a goal to take: any other message, and any message at all
once the goals changed by other means (cleared, captured, loaded), however often it was sent before.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from jepa_mpc_foundation.pose import STATE_DIM
from planner.config import PlannerConfig
from planner.subgoals import GoalSequence


@dataclass(frozen=True)
class Aim:
    """Which goal image the planner aims at now."""

    index: int
    """0-based position in the sequence; ``count - 1`` is the final goal."""
    count: int
    """Images in the sequence (sub-goals + the goal)."""
    image: np.ndarray
    """uint8 [H, W, 3], the image aimed at."""
    changed: bool
    """Another image than at the previous aim (or the first aim since a restart): encode it."""
    steps_left: int
    """Commands until the next image becomes the goal; 0 on the final goal (it stays)."""


class RobotGoals:
    """An ordered list of goal images and the step count that picks the one to aim at.

    ``planner``: the planner's limits, which time legs between recorded states; ``unknown_steps``
    (>= 1): the steps of an image whose state was not recorded. Any change of the list restarts the
    sequence at its first image.
    """

    def __init__(self, planner: PlannerConfig, unknown_steps: int) -> None:
        if not (isinstance(unknown_steps, int) and unknown_steps >= 1):
            raise ValueError(f"unknown_steps must be an integer >= 1, got {unknown_steps!r}")
        self.planner = planner
        self.unknown_steps = unknown_steps
        self.images: list[np.ndarray] = []
        self.states: list[np.ndarray] = []  # [7] each; NaN where not recorded
        self.restart()

    @property
    def count(self) -> int:
        return len(self.images)

    def restart(self) -> None:
        """Aim at the first image again; its steps count from the next :meth:`aim`."""
        self.sequence: GoalSequence | None = None
        self.steps_taken = 0
        self._aimed = -1

    def _checked(self, image: np.ndarray, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"a goal image must be uint8 RGB [H, W, 3], got {image.dtype} {image.shape}")
        if self.images and image.shape != self.images[0].shape:
            raise ValueError(
                f"goal image of {image.shape[1]} x {image.shape[0]} px, but the sequence's images are "
                f"{self.images[0].shape[1]} x {self.images[0].shape[0]}: take all goals with one camera "
                "(clear the goals first to start a sequence of another size)"
            )
        row = np.full(STATE_DIM, np.nan) if state is None else np.asarray(state, dtype=np.float64).reshape(STATE_DIM)
        return image, row

    def replace(self, image: np.ndarray, state: np.ndarray | None = None) -> None:
        """Make ``image`` the only goal (a goal topic message, a single goal file)."""
        self.images, self.states = [], []
        self.append(image, state)

    def append(self, image: np.ndarray, state: np.ndarray | None = None) -> None:
        """Add ``image`` (shown with the robot in ``state`` [7], None if unknown) as the new last goal.

        ValueError if it is not uint8 RGB or not the size of the images already there.
        """
        image, row = self._checked(image, state)
        self.images.append(image)
        self.states.append(row)
        self.restart()

    def clear(self) -> None:
        self.images, self.states = [], []
        self.restart()

    def aim(self, state: np.ndarray) -> Aim | None:
        """The image to aim at now, the robot standing at ``state`` [7]; None without goals.

        The first call after a (re)start fixes the schedule (``GoalSequence.from_poses`` from ``state``).
        """
        if not self.images:
            return None
        if self.sequence is None:
            self.sequence = GoalSequence.from_poses(
                np.stack(self.images),
                np.stack(self.states),
                np.asarray(state, dtype=np.float64),
                self.planner,
                unknown_steps=self.unknown_steps,
            )
        index = self.sequence.index_at(self.steps_taken)
        changed, self._aimed = index != self._aimed, index
        ends = np.cumsum(self.sequence.steps)
        steps_left = 0 if index == self.count - 1 else int(ends[index]) - self.steps_taken
        return Aim(index=index, count=self.count, image=self.images[index], changed=changed, steps_left=steps_left)

    def advance(self) -> None:
        """One command was sent toward the current aim."""
        self.steps_taken += 1


def goal_message_key(stamp: tuple[int, int], frame_id: str, height: int, width: int, encoding: str, data) -> tuple:
    """What makes two goal image messages the same: header, size, encoding and a checksum of the bytes."""
    return (tuple(stamp), frame_id, height, width, encoding, zlib.crc32(data))


class RepeatedGoalFilter:
    """Drops a goal message identical to the one that set the goals in force (module docstring).

    :meth:`offer` says whether to take a message; :meth:`goals_changed` after the goals changed by
    other means, so that the same message sent again is taken.
    """

    def __init__(self) -> None:
        self._current: tuple | None = None  # key of the message that set the goals in force
        self.repeats = 0  # times it was dropped since it was taken

    def offer(self, key: tuple) -> bool:
        """True: take the message of ``key`` (it becomes the current one); False: drop it, a repeat."""
        if key == self._current:
            self.repeats += 1
            return False
        self._current, self.repeats = key, 0
        return True

    def goals_changed(self) -> None:
        self._current, self.repeats = None, 0
