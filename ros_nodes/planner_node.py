"""The planner as a ROS 2 node: camera + pose + gripper + goal image -> absolute target pose.

Run::

    ros2 run jepa_mpc planner_node --ros-args --params-file config/robot.yaml -p checkpoint:=model.pt
    planner_node --ros-args --params-file config/sim.yaml        # pip install, no ROS workspace

Topics (relative names: remap them with ``-r image:=/camera/color/image_raw``):

- subscribes ``image`` (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, any size), ``ee_pose``
  (geometry_msgs/PoseStamped, base frame), ``joint_states`` (sensor_msgs/JointState with the
  finger joints), ``goal_image`` (sensor_msgs/Image, reliable + transient local: a goal published
  before the node started is received);
- publishes ``target_pose`` (geometry_msgs/PoseStamped, absolute, base frame: what a Cartesian
  impedance controller takes), ``gripper_command`` (std_msgs/Float64, closedness 0 open .. 1 closed),
  ``~/diagnostics`` (std_msgs/String, JSON: state, steps, latency, energy, rejection counts, every
  tick), ``~/planning_latency``, ``~/energy``, ``~/energy_spread`` (std_msgs/Float64, every plan);
- services ``~/start``, ``~/stop``, ``~/reset`` and ``~/capture_goal`` (std_srvs/Trigger): the
  newest camera frame becomes the goal, saved as PNG under ``goal_dir`` (see
  :mod:`ros_nodes.goal_images`); ``goal_file`` starts the node with a saved one.

The node only converts messages and calls library code: :mod:`ros_nodes.safety` decides whether a
command may be computed and makes it safe, :class:`planner.mpc.GoalImageMPC` plans. All callbacks are
in the node's default (mutually exclusive) callback group, so they never overlap and need no locks;
sensor subscriptions keep only the newest message, so nothing piles up while a plan is computed.
"""
from __future__ import annotations

import json

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from ros_nodes.goal_images import load_goal_image, save_goal_image
from planner.mpc import GoalImageMPC
from ros_nodes.safety import CommandGuard, InputGuard, InputRejected, RejectionCounter, check_fresh
from ros_nodes import conversions
from ros_nodes.config import PlannerNodeConfig
from ros_nodes.parameters import declare_config, refuse_changes
from ros_nodes.runtime import run_nodes

# Sensors: best effort, newest only. A best-effort subscription accepts reliable and best-effort
# publishers alike, so any camera driver connects.
SENSOR_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
# Goal image: latched, so a goal published before this node started still arrives.
GOAL_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


def load_planner(config: PlannerNodeConfig) -> GoalImageMPC:
    """The world model of ``config.checkpoint`` (empty: the shipped default model) wrapped in the MPC."""
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel import load_world_model

    device = None if config.device == "auto" else config.device  # None: cuda if present
    return GoalImageMPC(load_world_model(resolve_checkpoint(config.checkpoint), device=device), config.planner)


class PlannerNode(Node):
    """See the module docstring; ``node_kwargs`` go to ``rclpy.node.Node`` (context, parameter_overrides)."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("planner_node", **node_kwargs)
        self.config = declare_config(self, PlannerNodeConfig)
        refuse_changes(self)
        self.mpc = load_planner(self.config)
        self.rejections = RejectionCounter()
        self.inputs = InputGuard(self.config.safety, self.rejections)
        self.commands = CommandGuard(self.config.safety)
        self.running = self.config.autostart
        self.steps = 0
        self.last_command_s: float | None = None  # stamp of the previous target pose

        self.create_subscription(Image, "image", self._on_image, SENSOR_QOS)
        self.create_subscription(PoseStamped, "ee_pose", self._on_pose, SENSOR_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, SENSOR_QOS)
        self.create_subscription(Image, "goal_image", self._on_goal, GOAL_QOS)
        self.target_pub = self.create_publisher(PoseStamped, "target_pose", COMMAND_QOS)
        self.gripper_pub = self.create_publisher(Float64, "gripper_command", COMMAND_QOS)
        self.status_pub = self.create_publisher(String, "~/diagnostics", 10)
        self.latency_pub = self.create_publisher(Float64, "~/planning_latency", 10)
        self.energy_pub = self.create_publisher(Float64, "~/energy", 10)
        self.spread_pub = self.create_publisher(Float64, "~/energy_spread", 10)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/capture_goal", self._on_capture_goal)
        if self.config.goal_file:
            # A bad file is a start-up error (the user named it), unlike a bad message at run time.
            self._set_goal(load_goal_image(self.config.goal_file), self._now())
            self.get_logger().info(f"goal image from {self.config.goal_file}")
        self.create_timer(1.0 / self.config.rate_hz, self._on_tick)
        self.get_logger().info(
            f"planning at {self.config.rate_hz} Hz on {self.mpc.device}, "
            f"{'running' if self.running else 'stopped (call ~/start)'}; workspace "
            f"{list(self.config.safety.workspace_low)}..{list(self.config.safety.workspace_high)} m, "
            f"max step {self.config.safety.max_step} m, stale timeout {self.config.safety.stale_timeout_s} s"
        )

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, rejection: InputRejected, input_name: str | None = None) -> None:
        """Count a rejection (and clear ``input_name``'s sample if a message was malformed); log new reasons."""
        if input_name is None:
            first = self.rejections.record(rejection)
        else:
            first = self.inputs.reject(input_name, rejection)
        if first:  # each reason once; diagnostics count all of them
            self.get_logger().warning(f"rejected ({rejection.reason}): {rejection.detail}")

    def _on_image(self, msg: Image) -> None:
        try:
            frame = conversions.image_to_rgb(msg, min_side=self.config.safety.min_image_side)
        except InputRejected as rejection:
            self._reject(rejection, "image")
            return
        self.inputs.accept("image", frame, conversions.stamp_to_seconds(msg.header.stamp))

    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            pose = conversions.pose_to_vector(msg, base_frame=self.config.safety.base_frame)
        except InputRejected as rejection:
            self._reject(rejection, "pose")
            return
        self.inputs.accept("pose", pose, conversions.stamp_to_seconds(msg.header.stamp))

    def _on_joint_state(self, msg: JointState) -> None:
        # A robot may publish arm and gripper joints in separate JointState messages on one topic:
        # only messages that carry a finger joint are gripper readings.
        if not set(self.config.gripper_joints) & set(msg.name):
            return
        try:
            closedness = conversions.joint_state_to_closedness(
                msg, self.config.gripper_joints, self.config.gripper_max_width
            )
        except InputRejected as rejection:
            self._reject(rejection, "gripper")
            return
        self.inputs.accept("gripper", np.array(closedness), conversions.stamp_to_seconds(msg.header.stamp))

    def _on_goal(self, msg: Image) -> None:
        try:
            goal = conversions.image_to_rgb(msg, min_side=self.config.safety.min_image_side)
            self._set_goal(goal, conversions.stamp_to_seconds(msg.header.stamp))
        except InputRejected as rejection:
            self._reject(rejection, "goal")
            return
        self.get_logger().info(f"new goal image {goal.shape[1]} x {goal.shape[0]}")

    def _set_goal(self, goal: np.ndarray, stamp_s: float) -> None:
        """Encode ``goal`` (uint8 [H, W, 3]) as the planner's goal; InputRejected if the model cannot."""
        try:
            self.mpc.set_goal(goal)  # encoded once; also forgets the previous plan
        except Exception as exc:  # the node stays up; no goal means no commands
            raise InputRejected("planner_error", f"encoding the goal image failed: {type(exc).__name__}: {exc}") from exc
        self.inputs.accept("goal", goal, stamp_s)

    # ---------------------------------------------------------------- control
    def _on_tick(self) -> None:
        status: dict = {"state": "running" if self.running else "stopped"}
        if self.running:
            status.update(self._control_step())
        status.update(
            steps=self.steps,
            rejections=dict(self.rejections.counts),
            rejections_total=self.rejections.total,
            last_rejection=str(self.rejections.last) if self.rejections.last else "",
        )
        self.status_pub.publish(String(data=json.dumps(status)))

    def _control_step(self) -> dict:
        """Plan and publish one command, or record why not; returns the diagnostics of this step."""
        try:
            values = self.inputs.ready(self._now(), last_command_s=self.last_command_s)
            state = np.concatenate([values["pose"], [float(values["gripper"])]])  # [7]
            try:
                step = self.mpc.act(values["image"], state)
            except Exception as exc:  # a planner bug must not kill the node or move the robot
                raise InputRejected("planner_error", f"{type(exc).__name__}: {exc}") from exc
            command = self.commands.target_from_action(state, step.action)
        except InputRejected as rejection:
            self._reject(rejection)
            return {"command": False, "reason": rejection.reason}

        stamp = self._now()
        frame_id = self.config.safety.base_frame
        # Gripper first: a robot that acts on each pose then finds the matching gripper command.
        self.gripper_pub.publish(Float64(data=float(command.target[6])))
        self.target_pub.publish(conversions.vector_to_pose(command.target, stamp, frame_id))
        self.last_command_s = stamp
        self.latency_pub.publish(Float64(data=step.latency_s))
        self.energy_pub.publish(Float64(data=step.energy))
        self.spread_pub.publish(Float64(data=step.energy_spread))
        self.steps += 1
        return {
            "command": True,
            "target": [round(float(v), 5) for v in command.target],
            "latency_s": step.latency_s,
            "energy": step.energy,
            "energy_spread": step.energy_spread,
            "step_limited": command.step_limited,
            "clipped_to_workspace": command.clipped_to_workspace,
        }

    # ---------------------------------------------------------------- services
    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.running = True
        response.success = True
        response.message = "started" + ("" if self.inputs.samples["goal"] is not None else "; waiting for a goal image")
        self.get_logger().info(response.message)
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.running = False
        response.success, response.message = True, "stopped: no more commands until ~/start"
        self.get_logger().info(response.message)
        return response

    def _on_capture_goal(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """The newest camera frame becomes the goal (and is saved under ``goal_dir``)."""
        sample = self.inputs.samples["image"]
        response.success = False
        if sample is None:
            response.message = "no camera image received yet: check the image topic (remap image:=...)"
            return response
        try:
            check_fresh("image", sample.stamp_s, self._now(), self.config.safety.stale_timeout_s)
            self._set_goal(sample.value, sample.stamp_s)
        except InputRejected as rejection:
            response.message = f"goal not captured ({rejection.reason}): {rejection.detail}"
            return response
        saved = ""
        if self.config.goal_dir:
            try:
                saved = f", saved to {save_goal_image(sample.value, self.config.goal_dir, sample.stamp_s).resolve()}"
            except OSError as exc:  # the goal is set all the same; only the copy on disk is missing
                saved = f", NOT saved to {self.config.goal_dir} ({exc})"
        response.success = True
        response.message = f"goal captured from the camera ({sample.value.shape[1]} x {sample.value.shape[0]}){saved}"
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.mpc.reset()
        self.last_command_s = None
        self.rejections.reset()  # reasons are logged once more after a reset
        self.steps = 0
        response.success, response.message = True, "reset: plan, step count and rejection counts cleared"
        self.get_logger().info(response.message)
        return response


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [PlannerNode()], args)


if __name__ == "__main__":
    raise SystemExit(main())
