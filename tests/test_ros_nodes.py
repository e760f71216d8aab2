"""The planner and sim nodes on a real ROS 2 graph (rclpy, Fast DDS over loopback).

The graph, the fake robot and the parameters are in tests/ros_helpers.py. The world model is a tiny
random one and the planner small (16 samples, 2 iterations): these tests check plumbing and safety,
not planning quality. The lifecycle, goal QoS, sub-goals, path and freshness are in
tests/test_ros_lifecycle.py.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_helpers import (  # noqa: E402
    MAX_STEP,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    FakeRobot,
    call,
    planner_parameters,
    sim_parameters,
    wait_until,
)
from ros_nodes import conversions  # noqa: E402
from ros_nodes.goal_images import save_goal_image  # noqa: E402
from ros_nodes.planner_node import PlannerNode  # noqa: E402
from slow_planner_node import slow_planner  # noqa: E402


@pytest.mark.timeout(60)
def test_planner_receives_a_goal_published_before_it_started_and_commands_inside_the_workspace(graph, tiny_checkpoint):
    robot = graph.start(FakeRobot)
    robot.publish_goal()  # before the planner exists: only transient-local QoS delivers it
    planner = graph.start(
        lambda ctx: PlannerNode(context=ctx, parameter_overrides=planner_parameters(tiny_checkpoint, autostart=False))
    )
    wait_until(lambda: planner.inputs.samples["goal"] is not None, 10, "the latched goal image")
    wait_until(
        lambda: any(d["state"] == "inactive" for d in robot.diagnostics), 10, "diagnostics of the inactive planner"
    )
    time.sleep(0.5)
    assert robot.targets == [], "an inactive planner must not command"

    assert robot.call("/planner_node/start").success
    wait_until(lambda: len(robot.targets) >= 3, 15, "target poses")

    for target in robot.targets:
        assert target.header.frame_id == "panda_link0"
        position = conversions.pose_to_vector(target)[:3]
        assert np.all(position >= WORKSPACE_LOW - 1e-9) and np.all(position <= WORKSPACE_HIGH + 1e-9)
        assert np.linalg.norm(position - robot.state[:3]) <= MAX_STEP + 1e-6
    assert robot.gripper_commands and all(0.0 <= g <= 1.0 for g in robot.gripper_commands)
    assert robot.latencies and all(latency > 0 for latency in robot.latencies)
    running = [d for d in robot.diagnostics if d.get("command")]
    assert running and {"latency_s", "energy", "energy_spread", "target", "subgoal"} <= set(running[-1])
    assert running[-1]["level"] == 0 and running[-1]["message"].startswith("commanding toward goal image 1/1, energy")
    assert running[-1]["subgoal"] == "1/1" and running[-1]["state"] == "active"
    assert set(running[-1]["rejections"]) <= {"no_image", "no_pose", "no_gripper", "awaiting_new_data"}

    # Parameters are read at start: changing one at run time is refused, not silently ignored.
    (result,) = planner.set_parameters([Parameter("safety.max_step", value=0.5)])
    assert not result.successful and "restart" in result.reason
    assert planner.config.safety.max_step == MAX_STEP


@pytest.mark.timeout(90)
def test_stale_malformed_and_nan_inputs_give_no_command_but_a_diagnostic_naming_the_cause(
    graph, tiny_checkpoint, capfd
):
    robot = graph.start(FakeRobot)
    robot.mode = "stale"  # faulty from the start: the planner never sees good data before the end
    robot.publish_goal()
    planner = graph.start(lambda ctx: PlannerNode(context=ctx, parameter_overrides=planner_parameters(tiny_checkpoint)))
    wait_until(lambda: planner.inputs.samples["goal"] is not None, 10, "the goal image")

    # (mode, reason counted, what the diagnostics' message names); 1e308 m is a bad pose, not a planner error
    faults = [
        ("stale", "stale_image", "no command (stale_image)"),
        ("mono8", "bad_encoding", "no command (no_image <- bad_encoding)"),
        ("truncated", "bad_image_size", "no command (no_image <- bad_image_size)"),
        ("nan_pose", "nonfinite_pose", "no command (no_pose <- nonfinite_pose)"),
        ("huge_pose", "pose_out_of_range", "no command (no_pose <- pose_out_of_range)"),
    ]
    for mode, reason, message in faults:
        robot.mode = mode
        wait_until(
            lambda reason=reason, message=message: (
                robot.diagnostics
                and robot.diagnostics[-1]["rejections"].get(reason, 0) >= 3
                and robot.diagnostics[-1]["message"].startswith(message)
            ),
            10,
            f"{reason} counted in diagnostics and named in their message",
        )
        status = robot.diagnostics[-1]
        assert status["level"] == 1 and status["command"] is False, status  # WARN: a data problem
        assert robot.targets == [], f"a command was sent from {mode} data"
        assert reason in planner.rejections.counts
    assert "planner_error" not in planner.rejections.counts

    robot.mode = "ok"  # the node survived every bad message and commands again from good data
    wait_until(lambda: len(robot.targets) >= 1, 15, "a command from good data")
    assert robot.diagnostics[-1]["state"] == "active"

    # Each reason was counted at least 3 times but logged once (ROS logs go to the stderr fd).
    log = capfd.readouterr().err
    for _, reason, _ in faults:
        assert log.count(f"rejected ({reason})") == 1, log


@pytest.mark.timeout(60)
def test_a_robot_metres_outside_the_workspace_is_refused_before_any_plan(graph, tiny_checkpoint, capfd):
    """Issue 29 part 8: a pose 5 m away was planned in full at every tick, then refused (no command, CPU spent)."""
    robot = graph.start(lambda ctx: FakeRobot(ctx, state=np.array([5.5, 0.0, 0.2, np.pi, 0.0, 0.0])))
    robot.publish_goal()
    planner = graph.start(
        lambda ctx: PlannerNode(  # a planner that counts its plans
            make_planner=slow_planner(0.0), context=ctx, parameter_overrides=planner_parameters(tiny_checkpoint)
        )
    )
    wait_until(
        lambda: robot.diagnostics and robot.diagnostics[-1]["rejections"].get("pose_outside_workspace", 0) >= 3,
        15,
        "three ticks refused as pose_outside_workspace",
    )
    status = robot.diagnostics[-1]
    assert planner.mpc.plans_started == 0 and planner._encoded_index == -1, "planned (or encoded the goal) in vain"
    assert robot.targets == []
    assert status["level"] == 1 and status["message"].startswith(  # WARN, naming the pose and the box
        "no command (pose_outside_workspace): the end-effector at [5.5, 0.0, 0.2] m is 4.800 m outside the "
        "workspace box [0.3, -0.3, 0.02]..[0.7, 0.3, 0.45] m"
    ), status["message"]

    robot.state = np.array([0.5, 0.0, 0.2, np.pi, 0.0, 0.0])  # moved back into the box by hand
    wait_until(lambda: len(robot.targets) >= 1, 15, "a command once the robot is back in the box")
    assert planner.mpc.plans_started >= 1
    log = capfd.readouterr().err
    assert log.count("rejected (pose_outside_workspace): the end-effector at [5.5, 0.0, 0.2] m") == 1, log


@pytest.mark.timeout(60)
def test_capture_goal_takes_the_newest_fresh_frame_and_saves_it(graph, tiny_checkpoint, tmp_path):
    from ros_nodes.goal_images import load_goal_image

    goal_dir = tmp_path / "goals"
    planner = graph.start(
        lambda ctx: PlannerNode(
            context=ctx,
            parameter_overrides=planner_parameters(tiny_checkpoint, autostart=False, goal_dir=str(goal_dir)),
        )
    )
    client_node = graph.start(lambda ctx: rclpy.create_node("capture_client", context=ctx))

    def capture() -> Trigger.Response:
        return call(client_node, Trigger, "/planner_node/capture_goal")

    response = capture()  # no camera yet
    assert not response.success and "no camera image" in response.message
    assert planner.inputs.samples["goal"] is None and not goal_dir.exists()

    robot = graph.start(FakeRobot)
    robot.mode = "stale"  # frames stamped 2 s ago: not a view of the scene now
    wait_until(lambda: planner.inputs.samples["image"] is not None, 10, "camera frames")
    response = capture()
    assert not response.success and "stale_image" in response.message
    assert planner.inputs.samples["goal"] is None

    robot.mode = "ok"
    wait_until(lambda: planner._now() - planner.inputs.samples["image"].stamp_s < 0.2, 10, "a fresh camera frame")
    response = capture()
    assert response.success and "goal image 1 captured" in response.message and "pose recorded" in response.message
    np.testing.assert_array_equal(planner.inputs.samples["goal"].value, robot.frame)
    assert planner.goals.count == 1
    np.testing.assert_allclose(planner.goals.states[0][:6], robot.state, atol=1e-9)  # the pose shown in the image
    (saved,) = goal_dir.glob("goal_*.png")
    assert str(saved.resolve()) in response.message
    np.testing.assert_array_equal(load_goal_image(saved), robot.frame)

    # The saved file starts the next session with the same goal.
    graph.close()
    planner = graph.start(
        lambda ctx: PlannerNode(
            context=ctx, parameter_overrides=planner_parameters(tiny_checkpoint, goal_file=str(saved))
        )
    )
    np.testing.assert_array_equal(planner.inputs.samples["goal"].value, robot.frame)
    graph.close()
    with pytest.raises(ValueError, match="configure failed: goal image x.png does not exist"):
        graph.start(
            lambda ctx: PlannerNode(
                context=ctx, parameter_overrides=planner_parameters(tiny_checkpoint, goal_file="x.png")
            )
        )


@pytest.mark.timeout(30)
@pytest.mark.parametrize("parameter", ["goal_file", "goal_files"])
def test_a_directory_given_as_goal_file_stops_the_node_saying_an_image_file_is_expected(
    graph, tiny_checkpoint, tmp_path, parameter
):
    """Issue 29 part 8: a directory given as a goal file was reported as "does not exist"."""
    goals = tmp_path / "goals"
    goals.mkdir()
    save_goal_image(np.zeros((8, 8, 3), np.uint8), goals, stamp_s=1_795_000_000.0)
    value = str(goals) if parameter == "goal_file" else [str(goals)]
    with pytest.raises(ValueError) as info:
        graph.start(
            lambda ctx: PlannerNode(
                context=ctx, parameter_overrides=planner_parameters(tiny_checkpoint, **{parameter: value})
            )
        )
    message = str(info.value)
    assert "\n" not in message and "does not exist" not in message, message
    assert message.startswith(
        f"configure failed: goal image {goals} is a directory; a goal image file (PNG/JPEG) is expected"
    ), message
    assert str(goals / "goal_20261118_110640_000.png") in message, message  # an image in it, by name


@pytest.mark.timeout(60)
def test_a_scene_unlike_the_training_data_is_a_warning_and_the_node_goes_on_commanding(
    graph, tiny_checkpoint, tmp_path, capfd
):
    """Issue 29 part 6: a model whose token statistics put the camera view above its threshold (here 0: every view)."""
    from worldmodel import TokenStatistics, TokenStatisticsConfig
    from worldmodel.checkpoint import save_token_statistics

    checkpoint = str(tmp_path / "with_statistics.pt")
    statistics = TokenStatistics(TokenStatisticsConfig(encoder_dim=48, tokens_per_frame=4, threshold=0.0))
    save_token_statistics(tiny_checkpoint, statistics, checkpoint)
    robot = graph.start(FakeRobot)
    robot.publish_goal()
    graph.start(lambda ctx: PlannerNode(context=ctx, parameter_overrides=planner_parameters(checkpoint)))
    wait_until(
        lambda: len(robot.targets) >= 2 and any(d.get("command") for d in robot.diagnostics),
        30,
        "commands and their diagnostics",
    )
    status = [d for d in robot.diagnostics if d.get("command")][-1]
    assert status["level"] == 1 and "the scene is unlike the model's training data (OOD score" in status["message"]
    assert float(status["ood_score"]) > 0.0 and status["ood_threshold"] == "0"
    assert capfd.readouterr().err.count("the scene is unlike the model's training data") == 1  # logged once


@pytest.mark.timeout(90)
def test_a_two_view_model_plans_from_both_cameras_and_refuses_a_one_view_goal(graph, tmp_path):
    from model_helpers import save_tiny_model
    from ros_nodes.sim_node import SimNode

    checkpoint = str(save_tiny_model(tmp_path / "two_view.pt", views=2))

    def sim_with(goal_views: int):
        return graph.start(lambda ctx: SimNode(context=ctx, parameter_overrides=sim_parameters(goal_views=goal_views)))

    # The sim's goal is the exterior camera alone: the planner says so and commands nothing.
    sim = sim_with(1)
    planner = graph.start(lambda ctx: PlannerNode(context=ctx, parameter_overrides=planner_parameters(checkpoint)))
    assert planner.views == 2 and planner.inputs.required[:2] == ("image", "wrist_image")
    wait_until(lambda: "view_mismatch" in planner.rejections.counts, 30, "the planner refusing a one-view goal")
    assert sim.executed_commands == 0
    graph.close()

    # Both views of the goal, side by side: the planner tiles its two cameras the same way and commands.
    sim = sim_with(2)
    planner = graph.start(
        lambda ctx: PlannerNode(
            context=ctx, parameter_overrides=planner_parameters(checkpoint, goal_dir=str(tmp_path / "goals"))
        )
    )
    wait_until(lambda: sim.executed_commands >= 2, 60, "two commands from a two-view plan")
    assert planner.goals.images[0].shape == (64, 128, 3)
    assert "view_mismatch" not in planner.rejections.counts
    # ~/capture_goal records what the model sees: both cameras side by side
    client = graph.start(lambda ctx: rclpy.create_node("capture_client", context=ctx))
    response = call(client, Trigger, "/planner_node/capture_goal")
    assert response.success, response.message
    captured = planner.goals.images[-1]
    assert captured.shape == (64, 128, 3) and np.abs(captured[:, :64].astype(int) - captured[:, 64:]).mean() > 10


@pytest.mark.timeout(90)
def test_sim_and_planner_close_the_loop_and_every_command_is_executed(graph, tiny_checkpoint):
    from ros_nodes.sim_node import SimNode

    sim = graph.start(lambda ctx: SimNode(context=ctx, parameter_overrides=sim_parameters()))
    events: list[tuple[str, np.ndarray]] = []  # ("target" | "pose", position), in order of arrival
    lock = threading.Lock()

    def recorder(kind: str):
        def record(msg: PoseStamped) -> None:
            with lock:
                position = msg.pose.position  # raw: the NaN target below is recorded too
                events.append((kind, np.array([position.x, position.y, position.z])))

        return record

    def make_observer(ctx: Context) -> Node:
        observer = Node("observer", context=ctx)
        observer.create_subscription(PoseStamped, "target_pose", recorder("target"), 10)
        observer.create_subscription(PoseStamped, "ee_pose", recorder("pose"), 10)
        observer.nan_pub = observer.create_publisher(PoseStamped, "target_pose", 1)
        return observer

    observer = graph.start(make_observer)
    # A NaN target is refused by the sim, which keeps running and does not move.
    wait_until(lambda: observer.nan_pub.get_subscription_count() > 0, 10, "the sim's target subscription")
    nan_target = conversions.vector_to_pose(
        np.array([np.nan, 0, 0.2, np.pi, 0, 0]), observer.get_clock().now().nanoseconds * 1e-9, "panda_link0"
    )

    def refused() -> bool:  # publish until it arrives: a new reader may miss the first volatile messages
        observer.nan_pub.publish(nan_target)
        return "nonfinite_pose" in sim.rejections.counts

    wait_until(refused, 10, "the sim refusing a NaN target")
    assert sim.executed_commands == 0

    start_position = sim.observation["state"][:3].copy()
    planner = graph.start(
        lambda ctx: PlannerNode(
            context=ctx,
            parameter_overrides=planner_parameters(
                tiny_checkpoint,
                **{"safety.workspace_low": [0.3, -0.3, 0.012], "safety.workspace_high": [0.72, 0.3, 0.45]},
            ),
        )
    )
    wait_until(lambda: sim.executed_commands >= 12, 60, "12 executed commands")
    with lock:
        recorded = list(events)

    targets = [i for i, (kind, p) in enumerate(recorded) if kind == "target" and np.isfinite(p).all()]
    assert len(targets) >= 10
    checked = 0
    for k, index in enumerate(targets[:-1]):
        target = recorded[index][1]
        poses_until_next = [p for kind, p in recorded[index + 1 : targets[k + 1]] if kind == "pose"]
        assert poses_until_next, f"no pose published between command {k} and command {k + 1}"
        # The sim ran the controller for one period towards the target: the pose after it lies close.
        error = min(np.linalg.norm(p - target) for p in poses_until_next)
        assert error < 0.01, f"command {k} at {target} not reached: closest pose {error * 1000:.1f} mm away"
        checked += 1
    assert checked >= 10
    assert sim.executed_commands >= planner.steps - 1  # at most the last one still in flight
    assert np.linalg.norm(sim.observation["state"][:3] - start_position) > 0.005  # the robot moved

    # A new episode: the sim publishes its goal image again and the planner takes it.
    goal_before = planner.inputs.samples["goal"].stamp_s
    assert all(r.successful for r in sim.set_parameters([Parameter("seed", value=3)]))
    assert not sim.set_parameters([Parameter("camera_hz", value=1.0)])[0].successful
    client = observer.create_client(Trigger, "/sim_node/reset")
    assert client.wait_for_service(timeout_sec=5)
    future = client.call_async(Trigger.Request())
    wait_until(future.done, 10, "the sim's ~/reset service")
    assert future.result().success, future.result().message
    wait_until(lambda: planner.inputs.samples["goal"].stamp_s > goal_before, 10, "the new episode's goal image")


@pytest.mark.timeout(180)
def test_default_model_drives_the_sim_closer_to_the_reach_goal(graph):
    """The shipped default model, through both nodes, moves the arm toward the goal image's pose."""
    from ros_nodes.sim_node import SimNode
    from worldmodel.checkpoint import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT.is_file(), "the default model ships with the package (worldmodel/default_model/model.pt)"
    # An evaluation seed (not in the training data) the model solves in jepa-mpc eval; the default model plans
    # from the exterior and wrist cameras.
    parameters = sim_parameters(task="reach", seed=1000, goal_views=2, **{"sim.control_hz": 2.0})
    sim = graph.start(lambda ctx: SimNode(context=ctx, parameter_overrides=parameters))

    def distance_to_goal() -> float:
        return float(np.linalg.norm(sim.observation["state"][:3] - sim.env.unwrapped.goal_state[:3]))

    start = distance_to_goal()
    graph.start(
        lambda ctx: PlannerNode(
            context=ctx,
            parameter_overrides=planner_parameters(
                "",  # the default model
                **{
                    "planner.samples": 96,
                    "planner.iterations": 5,
                    "planner.topk": 10,
                    "safety.workspace_low": [0.3, -0.3, 0.012],
                    "safety.workspace_high": [0.72, 0.3, 0.45],
                },
            ),
        )
    )
    wait_until(lambda: sim.executed_commands >= 8 or sim.success, 150, "8 executed commands or success")
    end = distance_to_goal()
    assert end < start - 0.03, f"distance to the goal went from {start:.3f} m to {end:.3f} m"
