"""The ROS planner's library parts without a ROS graph: goal sequences (the eval's rule), diagnostics
content and their message, the planned path, and the one-line error for an empty ``-p name:=``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from planner.config import PlannerConfig
from planner.subgoals import GoalSequence, steps_between
from ros_nodes.diagnostics import ERROR, OK, WARN, TickReport, planner_status
from ros_nodes.goal_sequence import RobotGoals
from ros_nodes.safety import InputRejected, RejectionCounter

CONFIG = PlannerConfig()


def image(value: int, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def state(x: float, gripper: float = 0.0) -> np.ndarray:
    return np.array([x, 0.0, 0.2, np.pi, 0.0, 0.0, gripper])


def test_robot_goals_follow_the_evaluations_schedule():
    goals = RobotGoals(CONFIG, unknown_steps=3)
    assert goals.aim(state(0.4)) is None
    goals.append(image(1))  # a file: no pose
    goals.append(image(2), state(0.5))  # captured with its pose
    goals.append(image(3), state(0.5, gripper=1.0))
    start = state(0.4)
    expected = GoalSequence.from_poses(np.stack(goals.images), np.stack(goals.states), start, CONFIG, unknown_steps=3)
    assert expected.steps == (3, 3, steps_between(state(0.5), state(0.5, 1.0), CONFIG))  # unknown legs: 3 each

    indices, changed, left = [], [], []
    for _ in range(expected.total_steps + 3):
        aim = goals.aim(start)  # the start state of the schedule is fixed at the first aim
        indices.append(aim.index)
        changed.append(aim.changed)
        left.append(aim.steps_left)
        assert aim.count == 3 and aim.image[0, 0, 0] == aim.index + 1
        goals.advance()
    assert indices == [expected.index_at(t) for t in range(expected.total_steps + 3)]
    assert changed == [i == 0 or indices[i] != indices[i - 1] for i in range(len(indices))]
    assert left[:6] == [3, 2, 1, 3, 2, 1] and left[-1] == 0  # the goal stays

    goals.restart()
    assert goals.aim(start).index == 0 and goals.aim(start).changed is False
    goals.replace(image(9))
    aim = goals.aim(start)
    assert goals.count == 1 and aim.index == 0 and aim.changed and aim.image[0, 0, 0] == 9
    goals.clear()
    assert goals.count == 0 and goals.aim(start) is None


def test_robot_goals_refuse_images_of_another_size_or_type():
    goals = RobotGoals(CONFIG, unknown_steps=2)
    goals.append(image(1, size=8))
    with pytest.raises(ValueError, match="one camera"):
        goals.append(image(1, size=16))
    with pytest.raises(ValueError, match="uint8 RGB"):
        goals.append(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="unknown_steps"):
        RobotGoals(CONFIG, unknown_steps=0)


def _values(status) -> dict[str, str]:
    return dict(status.values)


def test_diagnostics_name_the_cause_and_grade_the_level():
    counter = RejectionCounter()
    bad = InputRejected("bad_encoding", "image encoding 'mono8' is not one of [...]")
    counter.record(bad)
    missing = InputRejected("no_image", "the last image message was malformed (bad_encoding; ...)", cause=bad)
    counter.record(missing)
    status = planner_status("active", TickReport(command=False, rejection=missing), counter, steps=4, goals=1)
    assert status.level == WARN
    assert status.message.startswith("no command (no_image <- bad_encoding)")
    values = _values(status)
    assert values["reason"] == "no_image" and values["cause"] == "bad_encoding" and values["command"] == "false"
    assert values["rejections.bad_encoding"] == "1" and values["rejections_total"] == "2" and values["steps"] == "4"

    crash = InputRejected("planner_error", "RuntimeError: boom")
    assert planner_status("active", TickReport(command=False, rejection=crash), counter, 0, 1).level == ERROR

    no_goal = InputRejected("no_goal", "no goal image received yet")
    status = planner_status("active", TickReport(command=False, rejection=no_goal), counter, 0, 0, goal_publishers=0)
    assert status.message.endswith("0 publisher(s) on the goal topics") and _values(status)["goal_publishers"] == "0"


def test_diagnostics_of_commands_and_of_the_lifecycle_states():
    from ros_nodes.goal_sequence import Aim

    aim = Aim(index=1, count=3, image=image(0), changed=False, steps_left=2)
    report = TickReport(
        command=True,
        latency_s=0.8,
        energy=0.25,
        energy_spread=0.01,
        target=np.arange(7.0),
        aim=aim,
        surprise=0.0375,
        replanned=False,
    )
    status = planner_status("active", report, RejectionCounter(), steps=5, goals=3)
    assert status.level == OK and status.message == "commanding toward goal image 2/3, energy 0.25"
    values = _values(status)
    assert values["subgoal"] == "2/3" and values["subgoal_steps_left"] == "2" and values["energy"] == "0.25"
    assert values["latency_s"] == "0.8" and values["target"].startswith("[0.00000, 1.00000")
    assert values["surprise"] == "0.0375" and values["replanned"] == "false"
    first = _values(
        planner_status("active", TickReport(command=True, latency_s=0.8, energy=0.25), RejectionCounter(), 1, 1)
    )
    assert first["surprise"] == "" and first["replanned"] == "true"  # nothing predicted the first frame

    failed = planner_status(
        "unconfigured", None, RejectionCounter(), 0, 0, configure_error="configure failed: x.pt: No such file"
    )
    assert failed.level == ERROR and "x.pt: No such file" in failed.message
    assert planner_status("inactive", report, RejectionCounter(), 0, 1).level == OK
    assert "command" not in _values(planner_status("inactive", report, RejectionCounter(), 0, 1))


def test_a_view_unlike_the_training_data_is_a_warning_while_commanding():
    """Issue 29 part 6: above the model's out-of-distribution threshold a commanding tick is WARN, saying why."""

    def status(score, threshold):
        report = TickReport(command=True, latency_s=0.8, energy=0.25, ood_score=score, ood_threshold=threshold)
        return planner_status("active", report, RejectionCounter(), steps=1, goals=1)

    unlike = status(3.5, 1.2)
    assert unlike.level == WARN and "\n" not in unlike.message
    assert unlike.message.startswith(
        "commanding, energy 0.25; the scene is unlike the model's training data (OOD score 3.5 > 1.2)"
    ), unlike.message
    assert _values(unlike)["ood_score"] == "3.5" and _values(unlike)["ood_threshold"] == "1.2"
    assert status(1.1, 1.2).level == OK and status(1.1, 1.2).message == "commanding, energy 0.25"
    old_model = status(None, None)  # a checkpoint without token statistics: as before
    assert old_model.level == OK and _values(old_model)["ood_score"] == "" and _values(old_model)["ood_threshold"] == ""


def test_a_finalized_node_is_advised_a_restart_not_the_start_it_refuses():
    """Issue 29 part 8: once finalized, the diagnostics advised ~/start, which is refused there."""
    status = planner_status("finalized", None, RejectionCounter(), 0, 1)
    assert status.level == OK and status.message.startswith("finalized (shut down")
    assert status.message.endswith("restart the node (relaunch it, or ros2 run it again) to plan again"), status.message
    assert "call ~/start" not in status.message
    # The states ~/start does leave keep their advice.
    assert "call ~/start" in planner_status("inactive", None, RejectionCounter(), 0, 1).message
    assert "call ~/start" in planner_status("unconfigured", None, RejectionCounter(), 0, 1).message


def test_status_becomes_a_diagnostic_array():
    pytest.importorskip("diagnostic_msgs")
    from diagnostic_msgs.msg import DiagnosticStatus

    from ros_nodes.conversions import status_to_diagnostics

    status = planner_status(
        "active", TickReport(command=False, rejection=InputRejected("no_pose", "x")), RejectionCounter(), 0, 1
    )
    array = status_to_diagnostics(status, "planner_node: planner", "jepa_mpc", 12.5)
    (entry,) = array.status
    assert (
        entry.level == DiagnosticStatus.WARN
        and entry.name == "planner_node: planner"
        and entry.hardware_id == "jepa_mpc"
    )
    assert entry.message == status.message and {kv.key: kv.value for kv in entry.values}["reason"] == "no_pose"
    assert array.header.stamp.sec == 12 and array.header.stamp.nanosec == 500_000_000


@pytest.mark.parametrize("euler", [(np.pi, 0.0, 0.3), (0.0, np.pi / 2, 0.5), (0.2, -np.pi / 2 + 1e-9, -1.0)])
def test_planned_path_applies_the_plan_to_the_measured_pose(euler):
    pytest.importorskip("nav_msgs")
    from ros_nodes.conversions import plan_to_path, pose_to_vector

    start = np.array([0.5, 0.0, 0.2, *euler, 0.3])
    plan = np.array([[0.01, -0.02, 0.03, 0.0, 0.0, 0.1, 0.5], [0.0, 0.04, 0.0, 0.05, 0.0, 0.0, 0.0]])
    path = plan_to_path(start, plan, 3.0, "panda_link0")
    assert path.header.frame_id == "panda_link0" and len(path.poses) == 3
    expected = [Rotation.from_euler("xyz", euler)]
    for action in plan:
        expected.append(Rotation.from_euler("xyz", action[3:6]) * expected[-1])  # R_delta @ R
    for k, pose in enumerate(path.poses):
        vector = pose_to_vector(pose)
        np.testing.assert_allclose(vector[:3], start[:3] + plan[:k, :3].sum(0), atol=1e-12)
        assert (Rotation.from_euler("xyz", vector[3:]) * expected[k].inv()).magnitude() < 1e-9


def test_an_empty_parameter_value_is_one_line_naming_it_and_the_fix():
    pytest.importorskip("rclpy")
    from ros_nodes.runtime import empty_parameter_error, ros_arguments_error

    message = empty_parameter_error(["planner_node", "--ros-args", "-p", "device:=cpu", "-p", "checkpoint:="])
    assert message is not None and "\n" not in message
    assert message.startswith("parameter checkpoint:") and "-p \"checkpoint:=''\"" in message
    assert empty_parameter_error(["x", "--ros-args", "-p", "checkpoint:=''"]) is None
    other = ros_arguments_error("failed to initialize rcl: Couldn't parse parameter override rule: '-p rate_hz:=[1'")
    assert other.startswith("parameter rate_hz: ROS cannot parse the value '[1'")


def test_a_repeated_goal_message_is_dropped_until_the_goals_change_otherwise():
    """Issue 29 part 5: after ~/clear_goals the same goal message was dropped for ever."""
    from ros_nodes.goal_sequence import RepeatedGoalFilter, goal_message_key

    goal = goal_message_key((0, 0), "", 8, 8, "rgb8", bytes(192))  # a publisher that does not stamp
    other = goal_message_key((0, 0), "", 8, 8, "rgb8", bytes(191) + b"\x01")
    messages = RepeatedGoalFilter()
    assert messages.offer(goal)
    assert not messages.offer(goal) and not messages.offer(goal) and messages.repeats == 2  # the node logs the 1st
    messages.goals_changed()  # ~/clear_goals, ~/capture_goal, goal files loaded
    assert messages.offer(goal) and messages.repeats == 0
    assert messages.offer(other) and messages.offer(goal)  # another goal in between: the first is new again
    assert goal_message_key((1, 0), "", 8, 8, "rgb8", bytes(192)) != goal  # stamped later: another message
