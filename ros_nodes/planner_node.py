"""The planner as a ROS 2 lifecycle node: camera + pose + gripper + goal image(s) -> absolute target pose.

Run::

    ros2 run jepa_mpc planner_node --ros-args --params-file config/robot.yaml -p checkpoint:=model.pt
    planner_node --ros-args --params-file config/sim.yaml        # pip install, no ROS workspace

Lifecycle (``rclpy.lifecycle``, the states of ``lifecycle_msgs/State``, as ROS 2's ``lifecycle_py``
demo): *configure* loads the checkpoint and the goal files and encodes the first goal; *activate*
starts the control timer and the command publishers; *deactivate* stops them (the controller holds
the last target); *cleanup* frees the model. A configure that fails (a missing checkpoint, an
unreadable goal file) leaves the node unconfigured, with the reason in the log and on
``/diagnostics``. ``configure_at_start`` (default true) configures at start, where a failure is a
one-line error and exit 2 as for any bad parameter; ``autostart`` also activates. ``~/start``
(configure if needed, then activate) and ``~/stop`` (deactivate) are std_srvs/Trigger aliases for
set-ups without the ``ros2 lifecycle`` CLI.

Topics (relative names: remap them with ``-r image:=/camera/color/image_raw``):

- subscribes ``image`` (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, any size), ``wrist_image``
  (the same; needed only by a model with two views, ``PredictorConfig.views``, which plans from both
  side by side and whose goal images are both views side by side too), ``ee_pose``
  (geometry_msgs/PoseStamped, base frame), ``joint_states`` (sensor_msgs/JointState with the
  finger joints), ``goal_image`` (sensor_msgs/Image) twice: reliable + transient local, so that a
  latched goal published before this node started arrives, and best effort + volatile, which every
  publisher matches (``ros2 topic pub`` without QoS flags, a camera remapped to the goal topic);
  a message both deliver is taken once;
- publishes ``target_pose`` (geometry_msgs/PoseStamped, absolute, base frame: what a Cartesian
  impedance controller takes), ``gripper_command`` (std_msgs/Float64, closedness 0 open .. 1 closed),
  ``~/planned_path`` (nav_msgs/Path: the whole plan applied to the measured pose, for RViz),
  ``~/planning_latency``, ``~/energy``, ``~/energy_spread`` (std_msgs/Float64, every plan), and
  ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, every tick while active, every second
  otherwise; see :mod:`ros_nodes.diagnostics`: WARN while the camera view is unlike the model's
  training data, when the checkpoint holds its token statistics);
- services ``~/start``, ``~/stop``, ``~/reset`` (plan, step count, rejection counts, back to the
  first goal image; the response says when no valid goal is held), ``~/capture_goal`` (the newest
  camera frame is appended to the goal images, with the pose measured with it, and saved as PNG
  under ``goal_dir``) and ``~/clear_goals`` (std_srvs/Trigger), and the lifecycle services
  (``~/change_state``, ``~/get_state``, ...);
- records (``record_path`` set) the run to an MCAP file, from start to exit: every camera, pose, joint state and
  goal image taken, every command, plan and diagnostics message sent (:mod:`ros_nodes.run_recording`).

Goal images are reached in turn (:mod:`ros_nodes.goal_sequence`, the rule of ``jepa-mpc eval``); a
``goal_image`` message replaces them all with itself (a malformed one with nothing: no goal is held
until a valid one arrives), ``~/capture_goal`` appends.

Threads: the node plans on its own thread, not on the executor's. The control timer only wakes
that thread; the executor keeps taking camera frames and poses while a plan is computed, so a
plan longer than ``stale_timeout_s`` is followed by one that starts from the newest data (when the
plan ran in the timer callback, the overdue tick ran before the frames that had arrived meanwhile,
and half the ticks were refused as ``stale_image``). Ticks that fall due during a plan merge into
one, which starts as soon as the plan ends. Any executor works (single- or multi-threaded).

Stop means stop: only the planning thread uses the planner (plans, goal encodings, resets of its
plan), so no callback ever waits for a plan. Callbacks change the goal images, the inputs and the
counts under one lock held for a few statements (it also wakes a tick waiting for the first frame
after its previous command), and services, lifecycle transitions and sensors are answered within
milliseconds while a plan runs. A command is published through a :class:`ros_nodes.command_gate.CommandGate`:
deactivate (``~/stop``), shutdown, an error transition, destroying the node and Ctrl-C / SIGTERM
(:meth:`PlannerNode.halt`) close it, and a plan that ends after that is dropped; a plan that ends
after the goal images changed or a ``~/reset`` is dropped too, and the next tick plans anew. The
node only converts messages and calls library code: :mod:`ros_nodes.safety` decides whether a
command may be computed and makes it safe, :class:`planner.mpc.GoalImageMPC` plans.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from jepa_mpc_foundation.user_errors import one_line
from planner.mpc import GoalImageMPC
from ros_nodes import conversions, run_recording
from ros_nodes.command_gate import CommandGate
from ros_nodes.config import PlannerNodeConfig, planning_threads
from ros_nodes.diagnostics import RESTART_ADVICE, TickReport, out_of_distribution, planner_status
from ros_nodes.goal_images import load_goal_image, save_goal_image
from ros_nodes.goal_sequence import RepeatedGoalFilter, RobotGoals, goal_message_key
from ros_nodes.parameters import declare_config, refuse_changes
from ros_nodes.runtime import SHUTDOWN_TIMEOUT_S, run_nodes
from ros_nodes.safety import (
    CommandGuard,
    InputGuard,
    InputRejected,
    RejectionCounter,
    Sample,
    check_fresh,
    check_goal_views,
    planner_frame,
)

# Sensors: best effort, newest only. A best-effort subscription accepts reliable and best-effort
# publishers alike, so any camera driver connects.
SENSOR_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
# Goal image, as publishers should send it: latched, so a goal published before the planner started
# still arrives. The planner's latched subscription matches only such (transient-local) publishers...
GOAL_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# ...and its second goal subscription every publisher (volatile, best effort: the weakest request).
GOAL_ANY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
DIAGNOSTICS_TOPIC = "/diagnostics"  # absolute: where diagnostic_aggregator and rqt_robot_monitor look
HEARTBEAT_S = 1.0  # diagnostics period while not active (REP 107 asks for about 1 Hz)
NEW_DATA_WAIT_PERIODS = 0.25
"""How long (in control periods) a tick waits for a frame and pose stamped after the previous command
before refusing with ``awaiting_new_data``: after a plan longer than the period the next tick starts
at once, a few ms after that command; a 30 Hz camera needs up to 33 ms for the next frame."""


def load_planner(config: PlannerNodeConfig) -> GoalImageMPC:
    """The world model of ``config.checkpoint`` (empty: the shipped default model) wrapped in the MPC.

    Raises the checkpoint loader's errors (``CheckpointError``, ``FileNotFoundError``: user errors).
    """
    from worldmodel import load_world_model
    from worldmodel.checkpoint import resolve_checkpoint

    device = None if config.device == "auto" else config.device  # None: cuda if present
    torch.set_num_threads(planning_threads(config.torch_threads, os.cpu_count()))
    return GoalImageMPC(load_world_model(resolve_checkpoint(config.checkpoint), device=device), config.planner)


def model_views(mpc: GoalImageMPC) -> int:
    """Camera views the planner's model plans from (``PredictorConfig.views``; 1 for models without one)."""
    config = getattr(mpc.world_model, "config", None)
    return int(getattr(getattr(config, "predictor", None), "views", 1))


class PlannerNode(LifecycleNode):
    """See the module docstring.

    ``make_planner``: builds the planner from the config on configure (default :func:`load_planner`;
    tests pass a slower or failing one). ``node_kwargs`` go to ``rclpy.node.Node`` (context,
    parameter_overrides, cli_args). Raises ValueError (one line, the reason) when
    ``configure_at_start`` is set and configuring fails.
    """

    def __init__(self, make_planner: Callable[[PlannerNodeConfig], GoalImageMPC] = load_planner, **node_kwargs) -> None:
        # Before Node.__init__: rclpy destroys a node whose constructor failed when its context shuts down.
        self._tick = threading.Event()  # set by the control timer, taken by the planning thread
        self._closing = threading.Event()
        self._planning_thread = threading.Thread(target=self._plan_loop, name="planner", daemon=True)
        self._quiet_configure = False  # True while configuring at start: a failure is raised, not also logged
        # One lock, held only for short steps, never during a plan or a goal encoding: the node's
        # state, the inputs (a condition, notified on new samples) and the command gate, which
        # destroy_node closes (also for a node whose constructor failed).
        self._lock = threading.RLock()
        self._inputs_changed = threading.Condition(self._lock)
        self.gate = CommandGate(self._lock)  # open while active; closed by every way of stopping
        self.recorder = run_recording.RunRecorder(None)  # records nothing until the config says where
        super().__init__("planner_node", **node_kwargs)
        self.config = declare_config(self, PlannerNodeConfig)
        refuse_changes(self)
        self.recorder = run_recording.RunRecorder.for_run(
            self.config.record_path, clock=self._now, on_error=self.get_logger().error
        )
        if self.recorder.recording:
            self.get_logger().info(f"recording the run to {self.recorder.path.resolve()}")
        self.make_planner = make_planner
        self.mpc: GoalImageMPC | None = None
        self.configure_error = ""
        self.rejections = RejectionCounter()
        self.inputs = InputGuard(self.config.safety, self.rejections)
        self.views = 1  # camera views of the model (set on configure): 2 also needs wrist_image
        self.commands = CommandGuard(self.config.safety)
        self.goals = RobotGoals(self.config.planner, self.config.subgoal_steps)
        self.steps = 0
        self.last_command_s: float | None = None  # stamp of the previous target pose
        self.last_report: TickReport | None = None
        self._encoded_index = -1  # which goal image the planner holds encoded
        self._reset_pending = False  # ~/reset asked the planning thread to forget its plan
        self._goal_messages = RepeatedGoalFilter()  # both goal subscriptions deliver a latched message
        self._unlike_training = False  # the last commanding tick's view scored above the model's OOD threshold
        self._control_timer = None

        self.create_subscription(Image, "image", self._on_image, SENSOR_QOS)
        self.create_subscription(Image, "wrist_image", self._on_wrist_image, SENSOR_QOS)
        self.create_subscription(PoseStamped, "ee_pose", self._on_pose, SENSOR_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, SENSOR_QOS)
        # A volatile publisher is "incompatible" with the latched subscription; the other one takes
        # its messages, so rclpy's default warning about it would only mislead.
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
        self.create_subscription(Image, "goal_image", self._on_goal, GOAL_QOS, event_callbacks=quiet)
        self.create_subscription(Image, "goal_image", self._on_goal, GOAL_ANY_QOS)
        self.goal_topic = self.resolve_topic_name("goal_image")
        self.target_pub = self.create_lifecycle_publisher(PoseStamped, "target_pose", COMMAND_QOS)
        self.gripper_pub = self.create_lifecycle_publisher(Float64, "gripper_command", COMMAND_QOS)
        self.path_pub = self.create_lifecycle_publisher(Path, "~/planned_path", 10)
        self.latency_pub = self.create_lifecycle_publisher(Float64, "~/planning_latency", 10)
        self.energy_pub = self.create_lifecycle_publisher(Float64, "~/energy", 10)
        self.spread_pub = self.create_lifecycle_publisher(Float64, "~/energy_spread", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)  # in every state
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/capture_goal", self._on_capture_goal)
        self.create_service(Trigger, "~/clear_goals", self._on_clear_goals)
        self.create_timer(HEARTBEAT_S, self._on_heartbeat)

        if self.config.configure_at_start or self.config.autostart:
            self._quiet_configure = True
            try:
                configured = self.trigger_configure() == TransitionCallbackReturn.SUCCESS
            finally:
                self._quiet_configure = False
            if not configured:
                raise ValueError(self.configure_error)  # at start: a user error, one line, exit 2
            if self.config.autostart:
                self.trigger_activate()
        self._planning_thread.start()
        self.get_logger().info(
            f"{self.lifecycle_state()}; planning at {self.config.rate_hz} Hz; workspace "
            f"{list(self.config.safety.workspace_low)}..{list(self.config.safety.workspace_high)} m, "
            f"max step {self.config.safety.max_step} m, stale timeout {self.config.safety.stale_timeout_s} s"
        )

    # ---------------------------------------------------------------- lifecycle
    def lifecycle_state(self) -> str:
        """The current lifecycle state's label: unconfigured, inactive, active, finalized (or a transition)."""
        return self._state_machine.current_state[1]

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and the goal files, encode the first goal; FAILURE (unconfigured) with the reason if not."""
        files = self.config.goal_files or ((self.config.goal_file,) if self.config.goal_file else ())
        try:
            images = [load_goal_image(path) for path in files]
            checked = RobotGoals(self.config.planner, self.config.subgoal_steps)  # sizes, before the model loads
            for path, image in zip(files, images):
                try:
                    checked.append(image)
                except ValueError as exc:
                    raise ValueError(f"goal file {path}: {exc}") from None
            mpc = self.make_planner(self.config)
        except Exception as exc:  # the node stays up, unconfigured, and says why
            return self._configure_failed(f"configure failed: {one_line(exc)}")
        # Unconfigured: no plan uses the new planner yet, so the goal is encoded here, once.
        with self._lock:
            if images:
                self.goals.clear()
                for image in images:
                    self.goals.append(image)
                self._goal_messages.goals_changed()
            self._goals_changed(self._now())
            if self.goals.count:
                try:
                    self._encode_goal(mpc, self.goals.images[0])
                except InputRejected as rejection:
                    return self._configure_failed(f"configure failed: {rejection}")
                self._encoded_index = 0
            self.mpc = mpc
            self.views = model_views(mpc)
            self.inputs.set_views(self.views)
        self.configure_error = ""
        threshold = getattr(mpc, "ood_threshold", None)
        self.get_logger().info(
            f"configured: model on {mpc.device}, {'image + wrist_image' if self.views == 2 else 'image'}, "
            f"{self.goals.count} goal image(s)"
            + (f" from {list(files)}" if files else "")
            + (
                f"; out-of-distribution threshold {threshold:.4g}"
                if threshold is not None
                else "; no token statistics in the checkpoint, so no out-of-distribution score (jepa-mpc ood-stats)"
            )
        )
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, error: str) -> TransitionCallbackReturn:
        self.configure_error = error
        if not self._quiet_configure:
            self.get_logger().error(error)
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._control_timer = self.create_timer(1.0 / self.config.rate_hz, self._tick.set)
        result = super().on_activate(state)  # enables the lifecycle publishers
        self.gate.open()
        self.get_logger().info("active: commanding" + ("" if self.goals.count else "; waiting for a goal image"))
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.halt()  # first: a plan still running publishes nothing from here on
        self._stop_timer()
        self.last_report = None
        self.get_logger().info("inactive: no more commands until activate or ~/start")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free_planner()
        self.get_logger().info("unconfigured: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding(state)
        self._free_planner()
        self.get_logger().info(f"finalized: no more commands; {RESTART_ADVICE}")
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding(state)
        self._free_planner()
        self.get_logger().error(f"a transition from {state.label} failed: no more commands; unconfigured, model freed")
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def halt(self) -> None:
        """No command from now on, not even from a plan that is running (returns at once, not when it ends).

        Every way of stopping calls it: deactivate (``~/stop``), shutdown, an error transition,
        destroying the node, and ``ros_nodes.runtime.spin_nodes`` on Ctrl-C or SIGTERM.
        """
        if self.gate.close():
            self.get_logger().info("halted: no more commands; a plan still running is discarded")

    def destroy_node(self) -> None:
        """Halt, stop the planning thread (waiting up to SHUTDOWN_TIMEOUT_S for a running plan), then the node."""
        self.halt()
        self._closing.set()
        self._tick.set()
        if self._planning_thread.ident is not None:  # started (the constructor may have failed before)
            self._planning_thread.join(timeout=SHUTDOWN_TIMEOUT_S)
        self.recorder.close()
        super().destroy_node()

    def _stop_commanding(self, state: LifecycleState) -> None:
        """Halt, stop the control timer and disable the command publishers, from any state (shutdown, error)."""
        self.halt()
        self._stop_timer()
        self.last_report = None
        LifecycleNode.on_deactivate(self, state)  # the publishers: rclpy's shutdown and error leave them enabled

    def _stop_timer(self) -> None:
        if self._control_timer is not None:
            self.destroy_timer(self._control_timer)
            self._control_timer = None

    def _free_planner(self) -> None:
        """Drop the model; a plan still running keeps it until it ends (and is discarded: the node is not active)."""
        with self._lock:
            self.mpc = None
            self._encoded_index = -1

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, rejection: InputRejected, input_name: str | None = None) -> None:
        """Count a rejection (and clear ``input_name``'s sample if a message was malformed); log new reasons."""
        with self._inputs_changed:
            first = (
                self.rejections.record(rejection) if input_name is None else self.inputs.reject(input_name, rejection)
            )
        self._log_rejection(rejection, first)

    def _log_rejection(self, rejection: InputRejected, first: bool) -> None:
        if first:  # each reason once; diagnostics count all of them
            self.get_logger().warning(f"rejected ({rejection.reason}): {rejection.detail}")

    def _accept(self, name: str, value: np.ndarray, stamp_s: float) -> None:
        with self._inputs_changed:
            self.inputs.accept(name, value, stamp_s)
            self._inputs_changed.notify_all()

    def _on_image(self, msg: Image, name: str = "image") -> None:
        self.recorder.write(run_recording.RECEIVED[name], msg)
        try:
            frame = conversions.image_to_rgb(msg, min_side=self.config.safety.min_image_side)
        except InputRejected as rejection:
            self._reject(rejection, name)
            return
        self._accept(name, frame, conversions.stamp_to_seconds(msg.header.stamp))

    def _on_wrist_image(self, msg: Image) -> None:
        self._on_image(msg, "wrist_image")

    def _on_pose(self, msg: PoseStamped) -> None:
        self.recorder.write(run_recording.EE_POSE, msg)
        try:
            pose = conversions.pose_to_vector(msg, base_frame=self.config.safety.base_frame)
        except InputRejected as rejection:
            self._reject(rejection, "pose")
            return
        self._accept("pose", pose, conversions.stamp_to_seconds(msg.header.stamp))

    def _on_joint_state(self, msg: JointState) -> None:
        self.recorder.write(run_recording.JOINT_STATES, msg)
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
        self._accept("gripper", np.array(closedness), conversions.stamp_to_seconds(msg.header.stamp))

    def _on_goal(self, msg: Image) -> None:
        """A goal image message replaces the goal images with itself, unless it is the one that set them.

        The message that set the goals in force is dropped when it comes again (through the other
        goal subscription, or repeated by its publisher), and the first such drop is logged; once
        the goals changed otherwise (cleared, captured), the same message is taken again. Never
        waits for a plan: the planning thread encodes the goal.
        """
        key = goal_message_key(
            (msg.header.stamp.sec, msg.header.stamp.nanosec),
            msg.header.frame_id,
            msg.height,
            msg.width,
            msg.encoding,
            msg.data,
        )
        with self._lock:
            take = self._goal_messages.offer(key)
            repeats = self._goal_messages.repeats
        if not take:
            if repeats == 1:
                self.get_logger().info(
                    "goal image message dropped: the same as the one that set the current goal (delivered by both "
                    "goal subscriptions, or sent again); ~/clear_goals to take it again. Logged once per goal"
                )
            return
        try:
            goal = conversions.image_to_rgb(msg, min_side=self.config.safety.min_image_side)
        except InputRejected as rejection:
            with self._lock:
                # It was sent to replace the goals, so the old ones are void: the robot must not go back to
                # a goal it was told to leave, and goals, ticks (no_goal <- the rejection) and ~/reset agree.
                self.goals.clear()
                self._goals_changed(conversions.stamp_to_seconds(msg.header.stamp))
                self._goal_messages.goals_changed()  # sent again, it is refused (and counted) again
                first = self.inputs.reject("goal", rejection)  # after _goals_changed: the cause no_goal names
            self._log_rejection(rejection, first)
            return
        with self._lock:
            self.goals.replace(goal)
            self._goals_changed(conversions.stamp_to_seconds(msg.header.stamp))
        self.get_logger().info(f"new goal image {goal.shape[1]} x {goal.shape[0]}")

    def _goals_changed(self, stamp_s: float) -> None:
        """After the goal images changed: the sequence restarts, a plan toward the old ones is not sent.

        Call with the lock held. The first image is encoded by the planning thread (or on configure).
        """
        self._encoded_index = -1
        self.gate.invalidate()
        self.recorder.record_goals(self.goals.images, stamp_s)
        if self.goals.count == 0:
            self.inputs.clear("goal")
        else:
            self.inputs.accept("goal", self.goals.images[0], stamp_s)

    @staticmethod
    def _encode_goal(mpc: GoalImageMPC, image: np.ndarray) -> None:
        """Make ``image`` ``mpc``'s goal (one encoder pass; also forgets its plan); InputRejected if the model
        cannot."""
        try:
            mpc.set_goal(image)
        except Exception as exc:  # the node stays up; no goal means no commands
            raise InputRejected(
                "planner_error", f"encoding the goal image failed: {type(exc).__name__}: {exc}"
            ) from exc

    # ---------------------------------------------------------------- control
    def _on_heartbeat(self) -> None:
        if self.lifecycle_state() != "active":  # while active, every tick publishes
            self._publish_diagnostics()

    def _plan_loop(self) -> None:
        """The planning thread: one control step per tick while active, until the node is destroyed."""
        while not self._closing.is_set():
            if not self._tick.wait(timeout=0.1):
                continue
            self._tick.clear()
            if self._closing.is_set() or self.lifecycle_state() != "active":
                continue
            try:
                report = self._control_step()
                if report is not None:
                    self.last_report = report
                    self._publish_diagnostics()
            except Exception as exc:  # noqa: BLE001  a bug here must not end planning for good
                if self._closing.is_set():  # ROS shut down under a running plan at exit
                    return
                self.get_logger().error(f"control step failed: {type(exc).__name__}: {exc}")

    def _publish_diagnostics(self) -> None:
        with self._inputs_changed:
            status = planner_status(
                self.lifecycle_state(),
                self.last_report,
                self.rejections,
                self.steps,
                self.goals.count,
                configure_error=self.configure_error,
                goal_publishers=self.count_publishers(self.goal_topic),
            )
        diagnostics = conversions.status_to_diagnostics(status, f"{self.get_name()}: planner", "jepa_mpc", self._now())
        self.diagnostics_pub.publish(diagnostics)
        self.recorder.write(run_recording.DIAGNOSTICS, diagnostics)

    def _fresh_inputs(self) -> dict[str, np.ndarray]:
        """The newest inputs (InputGuard.ready), waiting up to NEW_DATA_WAIT_PERIODS for a frame after the last
        command."""
        deadline = time.monotonic() + NEW_DATA_WAIT_PERIODS / self.config.rate_hz
        with self._inputs_changed:
            while True:
                try:
                    return self.inputs.ready(self._now(), last_command_s=self.last_command_s)
                except InputRejected as rejection:
                    remaining = deadline - time.monotonic()
                    if rejection.reason != "awaiting_new_data" or remaining <= 0:
                        raise
                    self._inputs_changed.wait(remaining)

    def _control_step(self) -> TickReport | None:
        """Plan and publish one command, or record why not; None if the plan was dropped or there is none to make.

        Runs on the planning thread, which alone uses the planner (``self.mpc``): the lock is held
        only to read the state and to publish, never while encoding or planning. The command is sent
        through the gate: not at all if the node was stopped meanwhile (deactivate, shutdown, an
        error transition, a signal) or the goals or the plan were reset (then the next tick plans anew).
        """
        with self._lock:
            ticket, mpc = self.gate.ticket(), self.mpc
            if ticket is None or mpc is None:
                return None
            reset, self._reset_pending = self._reset_pending, False
        if reset:
            mpc.reset()
        aim = None
        try:
            values = self._fresh_inputs()
            state = np.concatenate([values["pose"], [float(values["gripper"])]])  # [7]
            self.commands.check_reachable(state)  # no target could be sent from here: neither encode nor plan
            with self._lock:
                if not self.gate.valid(ticket):
                    return None
                aim = self.goals.aim(state)
                encoded = self._encoded_index
            if aim is None:  # the goals were cleared after the inputs were read
                raise InputRejected("no_goal", "the goal images were cleared")
            if aim.index != encoded:  # a new goal, or the next sub-goal's turn
                self._encode_goal(mpc, aim.image)
                with self._lock:
                    if self.gate.valid(ticket):  # else the goals changed meanwhile: encode again next tick
                        self._encoded_index = aim.index
            frame = planner_frame(values, self.views)  # [H, V * W, 3]
            check_goal_views(aim.image, frame, self.views)
            try:
                step = mpc.act(frame, state)
            except Exception as exc:  # a planner bug must not kill the node or move the robot
                raise InputRejected("planner_error", f"{type(exc).__name__}: {exc}") from exc
            command = self.commands.target_from_action(state, step.action)
            frame_id = self.config.safety.base_frame

            def publish() -> None:  # under the lock, only if the gate is still open for this plan
                stamp = self._now()
                gripper = Float64(data=float(command.target[6]))
                target = conversions.vector_to_pose(command.target, stamp, frame_id)
                # Gripper first: a robot that acts on each pose then finds the matching gripper command.
                self.gripper_pub.publish(gripper)
                self.target_pub.publish(target)
                self.goals.advance()
                self.last_command_s = stamp
                self.steps += 1
                path = conversions.plan_to_path(state, step.plan, stamp, frame_id)
                self.path_pub.publish(path)
                self.latency_pub.publish(Float64(data=step.latency_s))
                self.energy_pub.publish(Float64(data=step.energy))
                self.spread_pub.publish(Float64(data=step.energy_spread))
                self.recorder.record_tick(gripper, target, path, step)

            if not self.gate.send(ticket, publish):
                return None
        except InputRejected as rejection:
            if not self.gate.valid(ticket):  # stopped or reset meanwhile: not this node's state any more
                return None
            self._reject(rejection)
            return TickReport(command=False, rejection=rejection, aim=aim)
        report = TickReport(
            command=True,
            latency_s=step.latency_s,
            energy=step.energy,
            energy_spread=step.energy_spread,
            surprise=step.surprise,
            replanned=step.replanned,
            ood_score=getattr(step, "ood_score", None),
            ood_threshold=getattr(mpc, "ood_threshold", None),
            step_limited=command.step_limited,
            clipped_to_workspace=command.clipped_to_workspace,
            target=command.target,
            aim=aim,
        )
        self._log_distribution_change(report)
        return report

    def _log_distribution_change(self, report: TickReport) -> None:
        """Log once when the view becomes unlike the model's training data (diagnostics: WARN every such tick),
        and once when it is like it again."""
        unlike = out_of_distribution(report)
        if unlike == self._unlike_training:
            return
        self._unlike_training = unlike
        if unlike:
            self.get_logger().warning(
                f"the scene is unlike the model's training data (OOD score {report.ood_score:.3g} > threshold "
                f"{report.ood_threshold:.3g}): expect plans to fail; check the camera, light and objects"
            )
        elif report.ood_score is not None and report.ood_threshold is not None:
            self.get_logger().info(
                f"the scene is like the model's training data again (OOD score "
                f"{report.ood_score:.3g} <= {report.ood_threshold:.3g})"
            )

    # ---------------------------------------------------------------- services
    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Alias of configure (if unconfigured) + activate."""
        if self.lifecycle_state() == "unconfigured" and self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            response.success, response.message = False, f"not started: {self.configure_error}"
            return response
        if self.lifecycle_state() == "inactive":
            self.trigger_activate()
        state = self.lifecycle_state()
        response.success = state == "active"
        response.message = "started" if response.success else f"not started: the node is {state}"
        if state == "finalized":
            response.message += f" (shut down): {RESTART_ADVICE}"
        if response.success and not self.goals.count:
            response.message += "; waiting for a goal image"
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Alias of deactivate."""
        if self.lifecycle_state() == "active":
            self.trigger_deactivate()
        state = self.lifecycle_state()
        response.success = state != "active"
        if state == "finalized":
            response.message = f"stopped: finalized, no more commands; {RESTART_ADVICE}"
        else:
            response.message = "stopped: no more commands until ~/start" if response.success else "not stopped"
        return response

    def _on_capture_goal(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """The newest camera frame (and the pose measured with it) becomes the next goal image; saved under
        ``goal_dir``."""
        now = self._now()
        with self._inputs_changed:
            sample, wrist, pose, gripper = (
                self.inputs.samples[name] for name in ("image", "wrist_image", "pose", "gripper")
            )
        response.success = False
        if sample is None:
            response.message = "no camera image received yet: check the image topic (remap image:=...)"
            return response
        if self.views == 2 and wrist is None:
            response.message = "no wrist camera image received yet (this model plans from both): remap wrist_image:=..."
            return response
        try:
            check_fresh("image", sample.stamp_s, now, self.config.safety.stale_timeout_s)
            if self.views == 2:
                check_fresh("wrist_image", wrist.stamp_s, now, self.config.safety.stale_timeout_s)
                sample = Sample(planner_frame({"image": sample.value, "wrist_image": wrist.value}, 2), sample.stamp_s)
        except InputRejected as rejection:
            response.message = f"goal not captured ({rejection.reason}): {rejection.detail}"
            return response
        state = None  # the pose shown in the image, if measured with it: times the leg to it as eval does
        if (
            pose is not None
            and gripper is not None
            and all(abs(s.stamp_s - sample.stamp_s) <= self.config.safety.stale_timeout_s for s in (pose, gripper))
        ):
            state = np.concatenate([pose.value, [float(gripper.value)]])
        try:
            with self._lock:
                self.goals.append(sample.value, state)
                self._goals_changed(sample.stamp_s)
                self._goal_messages.goals_changed()  # the same goal message sent again is taken
                count = self.goals.count
        except ValueError as exc:
            response.message = f"goal not captured: {exc}"
            return response
        saved = ""
        if self.config.goal_dir:
            try:
                saved = f", saved to {save_goal_image(sample.value, self.config.goal_dir, sample.stamp_s).resolve()}"
            except OSError as exc:  # the goal is set all the same; only the copy on disk is missing
                saved = f", NOT saved to {self.config.goal_dir} ({exc})"
        response.success = True
        response.message = (
            f"goal image {count} captured from the camera ({sample.value.shape[1]} x {sample.value.shape[0]}"
            f"{', pose recorded' if state is not None else ', no pose'}){saved}"
        )
        self.get_logger().info(response.message)
        return response

    def _on_clear_goals(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self.goals.clear()
            self._goals_changed(self._now())
            self._goal_messages.goals_changed()  # the same goal message sent again is taken
        response.success, response.message = True, "goal images cleared: no commands until a new goal"
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Back to the first goal image, if one is held; the planning thread forgets its plan before the next
        one (never waited for). The response says whether a goal is held, and if not, why and what to send."""
        with self._lock:
            self.goals.restart()
            self._reset_pending = True
            self.gate.invalidate()  # a plan running now is not sent
            self.rejections.reset()  # reasons are logged once more after a reset
            self.last_command_s = None
            self.steps = 0
            count, malformed = self.goals.count, self.inputs.cleared_by["goal"]
        response.success = True
        response.message = "reset: plan, step count and rejection counts cleared; "
        if count:
            response.message += f"back to goal image 1/{count}"
        else:
            why = (
                f"the last goal image message was malformed ({malformed.reason})"
                if malformed is not None
                else "none received, loaded or captured since the goals last changed"
            )
            response.message += (
                f"no valid goal image held ({why}): no commands until you publish a goal image "
                "on the goal topic or call ~/capture_goal"
            )
        self.get_logger().info(response.message)
        return response


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [PlannerNode()], args)


if __name__ == "__main__":
    raise SystemExit(main())
