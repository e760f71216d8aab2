"""The nodes' ROS parameters are typed (issue 29, part 2): real rclpy nodes, real ``-p`` arguments, real files.

Before, ``-p safety.max_step:=true`` made a node that commanded with a 1.0 m step limit (20 times the
0.05 m meant), ``-p gripper_max_width:=yes`` (rcl reads YAML 1.1: a bool) an open gripper that read as
closed, and ``gripper_joints:=panda_finger_joint1`` a list of its letters, so the joint states were
ignored. Each is now one line naming the node or file, the parameter, the value and the form
expected, and the node does not start (exit 2).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402

from process_helpers import ros_environment  # noqa: E402
from ros_helpers import sim_parameters  # noqa: E402
from ros_nodes.planner_node import PlannerNode  # noqa: E402
from ros_nodes.sim_node import SimNode  # noqa: E402


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "name, value, message",
    [
        ("safety.max_step", True, "safety.max_step is true, a bool"),
        ("gripper_max_width", True, "gripper_max_width is true, a bool"),
        ("gripper_joints", "panda_finger_joint1", "gripper_joints is 'panda_finger_joint1', text (write a list"),
        ("goal_files", "goal.png", "goal_files is 'goal.png', text (write a list"),
        ("rate_hz", float("nan"), "rate_hz is .nan, not a number"),
        ("safety.workspace_low", [0.3, -0.3], "safety.workspace_low is [0.3, -0.3], a list of 2 items"),
    ],
)
def test_the_planner_node_refuses_a_parameter_of_the_wrong_form(graph, name, value, message):
    overrides = [
        Parameter("device", value="cpu"),
        Parameter("configure_at_start", value=False),
        Parameter(name, value=value),
    ]
    with pytest.raises(ValueError) as info:
        graph.start(lambda ctx: PlannerNode(context=ctx, parameter_overrides=overrides))
    assert str(info.value).startswith(f"node planner_node: {message}"), info.value
    assert "; expected " in str(info.value) and "\n" not in str(info.value)


@pytest.mark.timeout(60)
def test_the_sim_node_refuses_a_bool_for_a_number(graph):
    with pytest.raises(ValueError, match=r"^node sim_node: sim.image_size is true, a bool .*; expected an integer$"):
        graph.start(lambda ctx: SimNode(context=ctx, parameter_overrides=[Parameter("sim.image_size", value=True)]))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "argument, message",
    [
        (
            "gripper_max_width:=yes",
            "gripper_max_width is true, a bool (YAML reads true/false, yes/no, on/off as bools); expected a number",
        ),
        (
            "gripper_joints:=panda_finger_joint1",
            "gripper_joints is 'panda_finger_joint1', text (write a list: "
            "[panda_finger_joint1]); expected a list of texts",
        ),
    ],
)
def test_a_dash_p_value_of_the_wrong_form_stops_the_node_with_one_line(argument, message):
    """rcl parses ``-p`` values as YAML 1.1 (``yes`` is a bool); the node says so and exits 2 instead of running."""
    command = [sys.executable, "-m", "ros_nodes.planner_node", "--ros-args", "-p", "device:=cpu", "-p", argument]
    result = subprocess.run(command, env=ros_environment(), capture_output=True, text=True, timeout=90)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2 and lines == [f"error: node planner_node: {message}"], (result.returncode, lines)


@pytest.mark.timeout(120)
def test_the_bringup_stops_on_a_bool_in_its_parameter_file_before_ros_starts(tmp_path):
    """The bringup promises to check the file first: ``max_step: yes`` used to pass the check and run with 1.0 m."""
    params = tmp_path / "robot.yaml"
    params.write_text("planner_node:\n  ros__parameters:\n    device: cpu\n    safety:\n      max_step: yes\n")
    command = [sys.executable, "-m", "jepa_mpc.cli", "bringup", str(params)]
    result = subprocess.run(command, env=ros_environment(), capture_output=True, text=True, timeout=90)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2, (result.returncode, lines)
    assert lines == [
        f"jepa-mpc bringup: error: {params} [planner_node]: safety.max_step is true, a bool (YAML reads "
        "true/false, yes/no, on/off as bools); expected a number"
    ], lines


@pytest.mark.timeout(90)
def test_the_sims_reset_reads_its_changed_parameters_as_typed_as_at_start(graph):
    """``ros2 param set /sim_node seed true`` is allowed (seed is re-read by ~/reset); the reset refuses the bool."""
    from std_srvs.srv import Trigger

    sim = graph.start(lambda ctx: SimNode(context=ctx, parameter_overrides=sim_parameters()))
    assert all(r.successful for r in sim.set_parameters([Parameter("seed", value=True)]))
    response = sim._on_reset(Trigger.Request(), Trigger.Response())
    assert not response.success
    assert response.message.startswith("not reset: node sim_node: seed is true, a bool"), response.message
    assert sim.config.seed == 0
    assert all(r.successful for r in sim.set_parameters([Parameter("seed", value=4)]))
    response = sim._on_reset(Trigger.Request(), Trigger.Response())
    assert response.success and sim.config.seed == 4, response.message


@pytest.mark.timeout(120)
def test_a_planner_node_asked_to_plan_from_a_policy_its_model_lacks_stops_with_one_line(tiny_checkpoint):
    """config/*.yaml plan with the goal policy; a checkpoint without one (a released V-JEPA 2-AC, say) is refused
    at configure with the fix, and the node exits 2 instead of idling without a planner."""
    command = [
        sys.executable,
        "-m",
        "ros_nodes.planner_node",
        "--ros-args",
        "-p",
        "device:=cpu",
        "-p",
        f"checkpoint:={tiny_checkpoint}",
        "-p",
        "planner.proposal:=policy",
    ]
    result = subprocess.run(command, env=ros_environment(), capture_output=True, text=True, timeout=90)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, lines)
    assert "goal-conditioned policy" in lines[0] and "planner.proposal none" in lines[0], lines
