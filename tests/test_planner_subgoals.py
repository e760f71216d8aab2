"""Sub-goal schedules: how long each goal image is aimed at, and which one is the goal at a step."""

import numpy as np
import pytest

from planner.config import PlannerConfig
from planner.subgoals import SETTLE_STEPS, SPEED_FRACTION, GoalSequence, steps_between

CONFIG = PlannerConfig()


def state(x=0.0, gripper=0.0):
    return np.array([x, 0.0, 0.0, np.pi, 0.0, 0.0, gripper], dtype=np.float32)


def test_steps_grow_with_distance_and_gripper_travel():
    per_step = SPEED_FRACTION * CONFIG.max_translation
    assert steps_between(state(), state(), CONFIG) == SETTLE_STEPS
    assert steps_between(state(), state(x=3.5 * per_step), CONFIG) == 4 + SETTLE_STEPS
    assert steps_between(state(), state(gripper=1.0), CONFIG) == 2 + SETTLE_STEPS  # max_gripper 0.75 per step
    turned = state()
    turned[5] = 2.5 * SPEED_FRACTION * CONFIG.max_rotation  # a turn about the vertical takes time too
    assert steps_between(state(), turned, CONFIG) == 3 + SETTLE_STEPS


def test_index_follows_the_schedule_and_stays_on_the_goal():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    goals = GoalSequence(images, np.stack([state(), state(0.1), state(0.2)]), steps=(2, 3, 4))
    assert goals.num_subgoals == 2 and goals.total_steps == 9
    assert [goals.index_at(t) for t in range(12)] == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]


def test_from_poses_times_each_leg_from_the_previous_pose():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    states = np.stack([state(0.3), state(0.3, gripper=1.0)])
    goals = GoalSequence.from_poses(images, states, start_state=state(), config=CONFIG)
    assert goals.steps == (steps_between(state(), state(0.3), CONFIG), 2 + SETTLE_STEPS)
    single = GoalSequence.single(images[0], states[0], state(), CONFIG)
    assert single.num_subgoals == 0 and single.index_at(100) == 0


@pytest.mark.parametrize(
    "images, states, steps, message",
    [
        (np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 7)), (1, 1), "uint8"),
        (np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 7)), (1, 1), "one per image"),
        (np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 7)), (1, 0), ">= 1"),
    ],
)
def test_inconsistent_sequences_are_refused(images, states, steps, message):
    with pytest.raises(ValueError, match=message):
        GoalSequence(images, states, steps)


def test_a_subgoal_keeps_the_gripper_when_its_gripper_state_is_the_previous_ones():
    images = np.zeros((4, 8, 8, 3), np.uint8)
    states = np.stack([state(0.1), state(0.0), state(0.0, gripper=0.4), state(0.3, gripper=0.42)])
    goals = GoalSequence(images, states, steps=(1, 1, 1, 1))
    assert [goals.keeps_gripper(i) for i in range(4)] == [False, True, False, True]


def test_a_subgoal_keeps_the_pose_when_only_its_gripper_changes():
    images = np.zeros((5, 8, 8, 3), np.uint8)
    turned = state(0.0, gripper=0.4)
    turned[5] = 0.1  # 0.1 rad about z
    states = np.stack([state(0.1), state(0.0), state(0.0, gripper=0.4), turned, state(0.002, gripper=0.0)])
    goals = GoalSequence(images, states, steps=(1, 1, 1, 1, 1))
    # closing in place keeps the pose; a turn or a move does not; 2 mm is the same place
    assert [goals.keeps_pose(i) for i in range(5)] == [False, False, True, False, False]
    assert GoalSequence(images[:2], np.stack([state(0.0), state(0.002, gripper=1.0)]), steps=(1, 1)).keeps_pose(1)


def test_the_first_subgoal_is_compared_with_the_start_state():
    # An open hand moving to an open "above the cube" sub-goal keeps its gripper from the first step on
    # (left free, a world model's planner closed it 0.75 on the way); closing in place keeps the pose.
    images = np.zeros((2, 8, 8, 3), np.uint8)
    goals = GoalSequence.from_poses(images, np.stack([state(0.2), state(0.2, gripper=1.0)]), state(), CONFIG)
    assert goals.keeps_gripper(0) and not goals.keeps_pose(0)
    closing = GoalSequence.from_poses(images[:1], state(0.0, gripper=1.0)[None], state(), CONFIG)
    assert closing.keeps_pose(0) and not closing.keeps_gripper(0)
    unknown_start = GoalSequence(images, np.stack([state(0.2), state(0.2)]), steps=(1, 1))
    assert not unknown_start.keeps_gripper(0) and not unknown_start.keeps_pose(0)
    with pytest.raises(ValueError, match="start_state"):
        GoalSequence(images, np.stack([state(), state()]), steps=(1, 1), start_state=np.zeros(3))


def test_images_without_a_known_state_take_the_given_steps():
    """On a robot, goal files carry no pose (NaN): their legs take unknown_steps; recorded poses keep the rule."""
    images = np.zeros((3, 8, 8, 3), np.uint8)
    unknown = np.full(7, np.nan, np.float32)
    states = np.stack([state(0.3), unknown, state(0.3, gripper=1.0)])
    goals = GoalSequence.from_poses(images, states, start_state=state(), config=CONFIG, unknown_steps=5)
    assert goals.steps == (steps_between(state(), state(0.3), CONFIG), 5, 5)
    assert not goals.keeps_gripper(1) and not goals.keeps_pose(1) and not goals.keeps_pose(2)
    assert [goals.index_at(t) for t in range(goals.steps[0] - 1, goals.steps[0] + 7)] == [0, 1, 1, 1, 1, 1, 2, 2]
    # an unknown start (no pose measured yet) times the first leg by unknown_steps too
    assert GoalSequence.from_poses(images[:1], states[:1], unknown, CONFIG, unknown_steps=3).steps == (3,)
    with pytest.raises(ValueError, match="unknown_steps"):
        GoalSequence.from_poses(images, states, start_state=state(), config=CONFIG)
