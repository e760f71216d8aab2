"""A MuJoCo task as a ROS 2 robot: cameras, end-effector pose, joint states, success and the goal image.

Run::

    ros2 run jepa_mpc sim_node --ros-args --params-file config/sim.yaml
    sim_node --ros-args -p task:=push -p seed:=3               # pip install, no ROS workspace

Topics (relative names, remappable):

- publishes ``image`` and ``wrist_image`` (sensor_msgs/Image rgb8, at ``camera_hz``), ``ee_pose``
  (geometry_msgs/PoseStamped of the tool centre point in ``base_frame``) and ``joint_states``
  (sensor_msgs/JointState, arm and finger joints; at ``state_hz``), ``success`` (std_msgs/Bool, at
  ``state_hz``), ``goal_image`` (sensor_msgs/Image, reliable + transient local, once per episode; with
  ``goal_views`` 2 the exterior and wrist views of the goal side by side, for a two-view model);
- subscribes ``target_pose`` (geometry_msgs/PoseStamped, absolute, base frame) and
  ``gripper_command`` (std_msgs/Float64, closedness 0 open .. 1 closed);
- service ``~/reset`` (std_srvs/Trigger): a new episode of the ``task`` and ``seed`` parameters,
  which are re-read at every reset (``ros2 param set /sim_node task push``, then call ``~/reset``).

Time: the simulation advances one control period (``1 / sim.control_hz`` of physics) per received
target pose, using the latest gripper command: the controller tracks the target from the state it
measures, exactly as ``env.step`` does with the action ``action_between(state, target)``. Between
commands the simulated robot stands still, and its sensors keep publishing the current state with
current stamps, so a planner sees live data while it thinks. The images published after a command
show the state that command reached.

MuJoCo's EGL rendering context belongs to the thread that created it, while an executor may run
callbacks on any of its threads: every env call therefore runs on one dedicated thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium
import numpy as np
import torch
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64
from std_srvs.srv import Trigger

from jepa_mpc_foundation.configuration import from_dict
from jepa_mpc_foundation.pose import action_between
from ros_nodes import conversions
from ros_nodes.config import SimNodeConfig
from ros_nodes.parameters import declare_config, refuse_changes
from ros_nodes.runtime import run_nodes
from ros_nodes.safety import InputRejected, RejectionCounter
from sim import env_id
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE
from sim.franka import ARM_JOINTS, FINGER_JOINTS

RELIABLE = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SimNode(Node):
    """See the module docstring; ``node_kwargs`` go to ``rclpy.node.Node`` (context, parameter_overrides)."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__("sim_node", **node_kwargs)
        # What destroy_node releases exists first: rclpy destroys the node when a bad parameter stops it here.
        self.env: gymnasium.Env | None = None
        self._sim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mujoco")
        self.config = declare_config(self, SimNodeConfig)
        refuse_changes(self, allowed=("task", "seed"))  # re-read by ~/reset
        self.joint_names = [f"{self.config.joint_prefix}{name}" for name in ARM_JOINTS + FINGER_JOINTS]
        self.rejections = RejectionCounter()
        self.env_task = ""
        self.observation: dict[str, np.ndarray] = {}
        self.success = False
        self.gripper_command: float | None = None  # None: hold the current closedness
        self.executed_commands = 0

        self.image_pub = self.create_publisher(Image, "image", RELIABLE)
        self.wrist_image_pub = self.create_publisher(Image, "wrist_image", RELIABLE)
        self.pose_pub = self.create_publisher(PoseStamped, "ee_pose", RELIABLE)
        self.joint_pub = self.create_publisher(JointState, "joint_states", RELIABLE)
        self.success_pub = self.create_publisher(Bool, "success", RELIABLE)
        self.goal_pub = self.create_publisher(Image, "goal_image", LATCHED)
        self.create_subscription(PoseStamped, "target_pose", self._on_target, RELIABLE)
        self.create_subscription(Float64, "gripper_command", self._on_gripper, RELIABLE)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(1.0 / self.config.camera_hz, self.publish_images)
        self.create_timer(1.0 / self.config.state_hz, self.publish_state)
        self.reset_episode(self.config)

    def _in_sim_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the env's own thread and return its result (see the module docstring)."""
        return self._sim_thread.submit(fn, *args).result()

    def _make_env(self, config: SimNodeConfig) -> None:
        if self.env is not None:
            self.env.close()
        self.env = gymnasium.make(env_id(config.task), config=config.sim)
        self.env_task = config.task

    # ---------------------------------------------------------------- episodes
    def reset_episode(self, config: SimNodeConfig) -> None:
        """Start an episode of ``config.task`` with ``config.seed`` and publish its goal image."""
        if self.env is None or config.task != self.env_task:
            self._in_sim_thread(self._make_env, config)
        self.config = config
        self.observation, info = self._in_sim_thread(lambda: self.env.reset(seed=config.seed))
        self.success = bool(info["is_success"])
        self.gripper_command = None
        self.executed_commands = 0
        stamp = self._now()
        goal = info["goal_image"]
        if config.goal_views == 2:  # a two-view model's goal: exterior | wrist (worldmodel.preprocess.tile_views)
            goal = np.concatenate([goal, info["goal_wrist_image"]], axis=1)
        self.goal_pub.publish(conversions.rgb_to_image(goal, stamp, self.config.camera_frame))
        self.publish_state()
        self.publish_images()
        self.get_logger().info(f"episode: task {config.task}, seed {config.seed}")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:  # decoded as at start, so `ros2 param set /sim_node seed true` is refused, not seed 1
            values = {name: self.get_parameter(name).value for name in ("task", "seed")}
            config = from_dict(SimNodeConfig, values, source=f"node {self.get_name()}", defaults=self.config)
        except (ValueError, TypeError) as exc:
            response.success, response.message = False, f"not reset: {exc}"
            return response
        self.reset_episode(config)
        response.success, response.message = True, f"reset: task {config.task}, seed {config.seed}"
        return response

    # ---------------------------------------------------------------- commands
    def _reject(self, rejection: InputRejected) -> None:
        if self.rejections.record(rejection):
            self.get_logger().warning(f"command rejected ({rejection.reason}): {rejection.detail}")

    def _on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            self._reject(InputRejected("nonfinite_command", f"gripper command {msg.data}"))
            return
        self.gripper_command = float(np.clip(msg.data, 0.0, 1.0))

    def _on_target(self, msg: PoseStamped) -> None:
        """Execute one control period towards the absolute target ``msg``."""
        try:
            pose = conversions.pose_to_vector(msg, base_frame=self.config.base_frame)
        except InputRejected as rejection:
            self._reject(rejection)
            return
        state = self.observation["state"].astype(np.float64)  # [7]
        gripper = state[6] if self.gripper_command is None else self.gripper_command
        target = np.concatenate([pose, [gripper]])
        # The env moves the measured state by the action, so this action makes it track `target`;
        # the env still applies its own step limits and workspace box.
        action = action_between(torch.from_numpy(state), torch.from_numpy(target)).numpy()  # float64 [7]
        self.observation, _, _, _, info = self._in_sim_thread(self.env.step, action)
        self.success = bool(info["is_success"])
        self.executed_commands += 1
        self.publish_state()
        self.publish_images()

    # ---------------------------------------------------------------- sensors
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish_images(self) -> None:
        stamp = self._now()
        self.image_pub.publish(
            conversions.rgb_to_image(self.observation[EXTERIOR_IMAGE], stamp, self.config.camera_frame)
        )
        self.wrist_image_pub.publish(
            conversions.rgb_to_image(self.observation[WRIST_IMAGE], stamp, self.config.wrist_camera_frame)
        )

    def publish_state(self) -> None:
        stamp = self._now()
        state = self.observation["state"]
        self.pose_pub.publish(conversions.vector_to_pose(state, stamp, self.config.base_frame))
        robot = self.env.unwrapped.robot
        positions = np.concatenate([robot.data.qpos[robot.arm_qpos], robot.data.qpos[robot.finger_qpos]])
        velocities = np.concatenate([robot.data.qvel[robot.arm_dof], robot.data.qvel[robot.finger_dof]])
        self.joint_pub.publish(
            JointState(
                header=conversions.make_header(stamp, ""),
                name=self.joint_names,
                position=positions.tolist(),
                velocity=velocities.tolist(),
            )
        )
        self.success_pub.publish(Bool(data=self.success))

    def destroy_node(self) -> None:
        if self.env is not None:
            self._in_sim_thread(self.env.close)
            self.env = None
        self._sim_thread.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [SimNode()], args)


if __name__ == "__main__":
    raise SystemExit(main())
