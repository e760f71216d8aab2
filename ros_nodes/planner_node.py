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
  a message both deliver is taken once; ``goal_text`` (std_msgs/String: a goal in words, "touch the
  red cube", for a model that holds a language-goal predictor), subscribed the same two ways;
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
- records (``record_path`` set) the run to an MCAP file, from start to exit: every camera, pose, joint state,
  goal image and goal instruction taken, every command, plan and diagnostics message sent
  (:mod:`ros_nodes.run_recording`).

Goal images are reached in turn (:mod:`ros_nodes.goal_sequence`, the rule of ``jepa-mpc eval``); a
``goal_image`` message replaces them all with itself (a malformed one with nothing: no goal is held
until a valid one arrives), ``~/capture_goal`` appends. A ``goal_text`` message replaces them (and a
goal image replaces it): its goal is predicted from the camera frame the next tick plans from; a
refused instruction leaves no goal (:meth:`PlanningSession.take_goal_text`).

Threads: the node plans on its own thread, not on the executor's. The control timer only wakes
that thread; the executor keeps taking camera frames and poses while a plan is computed, so a
plan longer than ``stale_timeout_s`` is followed by one that starts from the newest data (when the
plan ran in the timer callback, the overdue tick ran before the frames that had arrived meanwhile,
and half the ticks were refused as ``stale_image``). Ticks that fall due during a plan merge into
one, which starts as soon as the plan ends. Any executor works (single- or multi-threaded).

The node is a thin adapter, as ROS 2's ``lifecycle_py`` demo is: it declares the parameters, makes the
subscriptions, publishers, services and timers, converts messages (:mod:`ros_nodes.conversions`),
runs the planning thread and maps the lifecycle onto a :class:`ros_nodes.planning_session.PlanningSession`,
which holds the state and makes every decision without ROS: which input is accepted, when a command may
be computed (:mod:`ros_nodes.safety`), the goal images, what each service does, the control step
(:class:`planner.mpc.GoalImageMPC` plans) and the command gate.

Stop means stop: only the planning thread uses the planner (plans, goal encodings, resets of its
plan), so no callback ever waits for a plan; the session's lock is held for a few statements, and
services, lifecycle transitions and sensors are answered within milliseconds while a plan runs.
Deactivate (``~/stop``), shutdown, an error transition, destroying the node and Ctrl-C / SIGTERM
(:meth:`PlannerNode.halt`) close the command gate, and a plan that ends after that is dropped; a plan
that ends after the goal images changed or a ``~/reset`` is dropped too, and the next tick plans anew.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from planner.mpc import GoalImageMPC
from ros_nodes import conversions, run_recording
from ros_nodes.config import PlannerNodeConfig
from ros_nodes.diagnostics import RESTART_ADVICE
from ros_nodes.goal_sequence import goal_message_key
from ros_nodes.parameters import declare_config, refuse_changes
from ros_nodes.planning_session import Answer, Command, PlanningSession, load_planner
from ros_nodes.runtime import SHUTDOWN_TIMEOUT_S, run_nodes
from ros_nodes.safety import InputRejected

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


def _session_state(name: str, doc: str) -> property:
    """A read-only view of the session's attribute ``name`` on the node (for tests and tools)."""
    return property(lambda node: getattr(node.session, name), doc=doc)


class PlannerNode(LifecycleNode):
    """See the module docstring.

    ``make_planner``: builds the planner from the config on configure (default
    :func:`ros_nodes.planning_session.load_planner`; tests pass a slower or failing one). ``node_kwargs``
    go to ``rclpy.node.Node`` (context, parameter_overrides, cli_args). Raises ValueError (one line, the
    reason) when ``configure_at_start`` is set and configuring fails.
    """

    # The session's state, read through the node by tests and tools: the node keeps no planning state of its own.
    mpc = _session_state("mpc", "The planner (None while unconfigured).")
    inputs = _session_state("inputs", "The latest valid sample of each input (ros_nodes.safety.InputGuard).")
    goals = _session_state("goals", "The goal images, in order (ros_nodes.goal_sequence.RobotGoals).")
    rejections = _session_state("rejections", "Rejections by reason since the last ~/reset.")
    steps = _session_state("steps", "Commands sent since the last ~/reset.")
    views = _session_state("views", "Camera views the model plans from (1 or 2).")
    configure_error = _session_state("configure_error", "Why the last configure failed; empty if it did not.")
    _encoded_index = _session_state("encoded_index", "Which goal image the planner holds encoded (-1: none).")

    def __init__(self, make_planner: Callable[[PlannerNodeConfig], GoalImageMPC] = load_planner, **node_kwargs) -> None:
        # Before Node.__init__: rclpy destroys a node whose constructor failed when its context shuts down.
        self.session: PlanningSession | None = None  # made once the parameters are read
        self._tick = threading.Event()  # set by the control timer, taken by the planning thread
        self._closing = threading.Event()
        self._planning_thread = threading.Thread(target=self._plan_loop, name="planner", daemon=True)
        self._quiet_configure = False  # True while configuring at start: a failure is raised, not also logged
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
        self.session = PlanningSession(
            self.config, now=self._now, log=self.get_logger(), on_goals_changed=self.recorder.record_goals
        )
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
        self.create_subscription(String, "goal_text", self._on_goal_text, GOAL_QOS, event_callbacks=quiet)
        self.create_subscription(String, "goal_text", self._on_goal_text, GOAL_ANY_QOS)
        self.goal_topics = (self.resolve_topic_name("goal_image"), self.resolve_topic_name("goal_text"))
        self.target_pub = self.create_lifecycle_publisher(PoseStamped, "target_pose", COMMAND_QOS)
        self.gripper_pub = self.create_lifecycle_publisher(Float64, "gripper_command", COMMAND_QOS)
        self.path_pub = self.create_lifecycle_publisher(Path, "~/planned_path", 10)
        self.latency_pub = self.create_lifecycle_publisher(Float64, "~/planning_latency", 10)
        self.energy_pub = self.create_lifecycle_publisher(Float64, "~/energy", 10)
        self.spread_pub = self.create_lifecycle_publisher(Float64, "~/energy_spread", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)  # in every state
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/reset", self._answer(self.session.reset))
        self.create_service(Trigger, "~/capture_goal", self._answer(self.session.capture_goal))
        self.create_service(Trigger, "~/clear_goals", self._answer(self.session.clear_goals))
        self.create_timer(HEARTBEAT_S, self._on_heartbeat)

        if self.config.configure_at_start or self.config.autostart:
            self._quiet_configure = True
            try:
                configured = self.trigger_configure() == TransitionCallbackReturn.SUCCESS
            finally:
                self._quiet_configure = False
            if not configured:
                raise ValueError(self.session.configure_error)  # at start: a user error, one line, exit 2
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
        if self.session.configure(self.make_planner):
            return TransitionCallbackReturn.SUCCESS
        if not self._quiet_configure:
            self.get_logger().error(self.session.configure_error)
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._control_timer = self.create_timer(1.0 / self.config.rate_hz, self._tick.set)
        result = super().on_activate(state)  # enables the lifecycle publishers
        self.session.start()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.session.stop()  # first: a plan still running publishes nothing from here on
        self._stop_timer()
        self.get_logger().info("inactive: no more commands until activate or ~/start")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.session.free_planner()
        self.get_logger().info("unconfigured: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding(state)
        self.session.free_planner()
        self.get_logger().info(f"finalized: no more commands; {RESTART_ADVICE}")
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding(state)
        self.session.free_planner()
        self.get_logger().error(f"a transition from {state.label} failed: no more commands; unconfigured, model freed")
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def halt(self) -> None:
        """No command from now on, not even from a plan that is running (returns at once, not when it ends).

        Every way of stopping calls it: deactivate (``~/stop``), shutdown, an error transition,
        destroying the node, and ``ros_nodes.runtime.spin_nodes`` on Ctrl-C or SIGTERM.
        """
        if self.session is not None:  # None: the constructor failed before any command could be sent
            self.session.halt()

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
        self.session.stop()
        self._stop_timer()
        LifecycleNode.on_deactivate(self, state)  # the publishers: rclpy's shutdown and error leave them enabled

    def _stop_timer(self) -> None:
        if self._control_timer is not None:
            self.destroy_timer(self._control_timer)
            self._control_timer = None

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, msg: Image, name: str = "image") -> None:
        self.recorder.write(run_recording.RECEIVED[name], msg)
        try:
            frame = conversions.image_to_rgb(msg, min_side=self.config.safety.min_image_side)
        except InputRejected as rejection:
            self.session.reject(rejection, name)
            return
        self.session.accept(name, frame, conversions.stamp_to_seconds(msg.header.stamp))

    def _on_wrist_image(self, msg: Image) -> None:
        self._on_image(msg, "wrist_image")

    def _on_pose(self, msg: PoseStamped) -> None:
        self.recorder.write(run_recording.EE_POSE, msg)
        try:
            pose = conversions.pose_to_vector(msg, base_frame=self.config.safety.base_frame)
        except InputRejected as rejection:
            self.session.reject(rejection, "pose")
            return
        self.session.accept("pose", pose, conversions.stamp_to_seconds(msg.header.stamp))

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
            self.session.reject(rejection, "gripper")
            return
        self.session.accept("gripper", np.array(closedness), conversions.stamp_to_seconds(msg.header.stamp))

    def _on_goal(self, msg: Image) -> None:
        """A goal image message replaces the goal images with itself, unless it is the one that set them
        (:meth:`PlanningSession.take_goal_message`)."""
        stamp = msg.header.stamp
        key = goal_message_key(
            (stamp.sec, stamp.nanosec), msg.header.frame_id, msg.height, msg.width, msg.encoding, msg.data
        )
        self.session.take_goal_message(
            key,
            conversions.stamp_to_seconds(stamp),
            lambda: conversions.image_to_rgb(msg, min_side=self.config.safety.min_image_side),
        )

    def _on_goal_text(self, msg: String) -> None:
        """A goal instruction replaces the goals (:meth:`PlanningSession.take_goal_text`: refusals are said, never
        raised)."""
        self.session.take_goal_text(msg.data, self._now())

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
                if self.session.control_step(self._publish_command) is not None:
                    self._publish_diagnostics()
            except Exception as exc:  # noqa: BLE001  a bug here must not end planning for good
                if self._closing.is_set():  # ROS shut down under a running plan at exit
                    return
                self.get_logger().error(f"control step failed: {type(exc).__name__}: {exc}")

    def _publish_command(self, command: Command) -> None:
        """The command's messages; called by the session under its lock, only while the gate is open."""
        frame_id, stamp, target = self.config.safety.base_frame, command.stamp_s, command.safe.target
        gripper, pose = Float64(data=float(target[6])), conversions.vector_to_pose(target, stamp, frame_id)
        # Gripper first: a robot that acts on each pose then finds the matching gripper command.
        self.gripper_pub.publish(gripper)
        self.target_pub.publish(pose)
        path = conversions.plan_to_path(command.state, command.step.plan, stamp, frame_id)
        self.path_pub.publish(path)
        self.latency_pub.publish(Float64(data=command.step.latency_s))
        self.energy_pub.publish(Float64(data=command.step.energy))
        self.spread_pub.publish(Float64(data=command.step.energy_spread))
        self.recorder.record_tick(gripper, pose, path, command.step)

    def _publish_diagnostics(self) -> None:
        publishers = sum(self.count_publishers(topic) for topic in self.goal_topics)
        status = self.session.status(self.lifecycle_state(), goal_publishers=publishers)
        diagnostics = conversions.status_to_diagnostics(status, f"{self.get_name()}: planner", "jepa_mpc", self._now())
        self.diagnostics_pub.publish(diagnostics)
        self.recorder.write(run_recording.DIAGNOSTICS, diagnostics)

    # ---------------------------------------------------------------- services
    def _answer(self, service: Callable[[], Answer]) -> Callable[[Trigger.Request, Trigger.Response], Trigger.Response]:
        """A Trigger callback answering with ``service()``."""

        def callback(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            answer = service()
            response.success, response.message = answer.success, answer.message
            return response

        return callback

    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Alias of configure (if unconfigured) + activate."""
        configured = True
        if self.lifecycle_state() == "unconfigured":
            configured = self.trigger_configure() == TransitionCallbackReturn.SUCCESS
        if configured and self.lifecycle_state() == "inactive":
            self.trigger_activate()
        answer = self.session.start_answer(self.lifecycle_state(), configured)
        response.success, response.message = answer.success, answer.message
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Alias of deactivate."""
        if self.lifecycle_state() == "active":
            self.trigger_deactivate()
        answer = self.session.stop_answer(self.lifecycle_state())
        response.success, response.message = answer.success, answer.message
        return response


def main(args: list[str] | None = None) -> int:
    return run_nodes(lambda: [PlannerNode()], args)


if __name__ == "__main__":
    raise SystemExit(main())
