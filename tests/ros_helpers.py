"""What the ROS node tests share: a graph of rclpy contexts spun by executor threads, a fake robot,
the planner's and the sim's parameters, and reading the planner's DiagnosticArray back into a dict.

Each node runs in its own rclpy context (its own DDS participant, as separate processes would be),
spun by a single-threaded executor as ``ros_nodes.runtime.spin_nodes`` spins it; the session uses a
random ROS_DOMAIN_ID and localhost-only discovery (``ros_domain`` in conftest.py) so that parallel
test runs and other machines never see each other.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from nav_msgs.msg import Path
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from ros_nodes import conversions
from ros_nodes.planner_node import GOAL_QOS

WORKSPACE_LOW = np.array([0.3, -0.3, 0.02])
WORKSPACE_HIGH = np.array([0.7, 0.3, 0.45])
MAX_STEP = 0.05
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
PLANNER_STATUS = "planner_node: planner"  # DiagnosticStatus.name of the planner node


class Graph:
    """rclpy contexts, each with its nodes spun by an executor thread; ``close`` shuts everything down."""

    def __init__(self, domain_id: int) -> None:
        self.domain_id = domain_id
        self._spinners: list[tuple[Context, SingleThreadedExecutor, threading.Event, threading.Thread, list[Node]]] = []

    def start(self, make_node: Callable[[Context], Node]) -> Node:
        """Create ``make_node(context)`` in a fresh context (a separate DDS participant) and spin it."""
        context = Context()
        rclpy.init(context=context, domain_id=self.domain_id)
        try:
            node = make_node(context)
        except BaseException:
            rclpy.shutdown(context=context)
            raise
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.05)

        thread = threading.Thread(target=spin, daemon=True)
        thread.start()
        self._spinners.append((context, executor, stop, thread, [node]))
        return node

    def close(self) -> None:
        for context, executor, stop, thread, nodes in reversed(self._spinners):
            stop.set()
            thread.join(timeout=5.0)  # no new callbacks are dispatched after this
            executor.shutdown(timeout_sec=10.0)  # waits for the callbacks still running
            for node in nodes:
                node.destroy_node()
            rclpy.shutdown(context=context)
        self._spinners.clear()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def call(node: Node, service_type, name: str, request=None, timeout: float = 10.0, graph: Graph | None = None):
    """Call service ``name`` from ``node`` (spun by a Graph; a client as :func:`ready_client` makes it) and
    return the response, waiting ``timeout`` s for it."""
    client = ready_client(node, service_type, name, graph)
    future = client.call_async(request if request is not None else service_type.Request())
    wait_until(future.done, timeout, f"the {name} service")
    return future.result()


def ready_client(node, service_type, name: str, graph: Graph | None = None):
    """A client of service ``name`` on ``node``, matched with the server.

    On the loaded 2-core box a new client was, in four full test runs, still unmatched after 30-50 s
    although the services answer in ms (always a lifecycle service, ``change_state``; docs/benchmarks.md,
    "Test suite"): three clients are tried on ``node``, then, with ``graph``, two on a fresh participant,
    which discovers the server anew. The failure says whether ``node``'s graph knew the service at all.
    """
    tries = 3 if graph is None else 5
    fresh: Node | None = None  # the fresh participant's node, made only when the first three clients failed
    for attempt in range(tries):
        if attempt == 3:
            fresh = graph.start(lambda ctx: rclpy.create_node("service_client", context=ctx))
        owner = node if fresh is None else fresh
        client = owner.create_client(service_type, name)
        if client.wait_for_service(timeout_sec=10):
            if attempt:  # shown in pytest's warnings summary: how often discovery needs this
                warnings.warn(f"service {name}: client {attempt + 1} of {tries} matched", stacklevel=2)
            return client
        owner.destroy_client(client)
    known = name in dict(node.get_service_names_and_types())
    raise AssertionError(
        f"service {name} not available: {tries} clients, 10 s each "
        f"({'listed' if known else 'not listed'} in the first client node's graph)"
    )


def lifecycle_client(graph: Graph) -> tuple[Node, Callable[[], str], Callable[[int], bool]]:
    """A client node and two functions: the planner's lifecycle state label, and a transition (True: succeeded)."""
    node = graph.start(lambda ctx: rclpy.create_node("lifecycle_client", context=ctx))

    def get_state() -> str:
        # Asking the state changes nothing, so a request whose answer DDS lost (the client matched, no response
        # came) is asked again once, from a new client; change_state is not retried (a transition twice fails).
        try:
            return call(node, GetState, "/planner_node/get_state", graph=graph).current_state.label
        except AssertionError:
            warnings.warn("service /planner_node/get_state: no answer in 10 s, asked again", stacklevel=2)
            return call(node, GetState, "/planner_node/get_state", graph=graph).current_state.label

    def change(transition: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition))
        return call(node, ChangeState, "/planner_node/change_state", request, timeout=30, graph=graph).success

    return node, get_state, change


def planner_parameters(checkpoint: str, **overrides) -> list[Parameter]:
    values = {
        "checkpoint": checkpoint,
        "device": "cpu",
        "rate_hz": 5.0,
        "autostart": True,
        "planner.samples": 16,
        "planner.iterations": 2,
        "planner.topk": 4,
        "safety.workspace_low": WORKSPACE_LOW.tolist(),
        "safety.workspace_high": WORKSPACE_HIGH.tolist(),
        "safety.max_step": MAX_STEP,
        "safety.stale_timeout_s": 0.5,
        **overrides,
    }
    return [Parameter(name, value=value) for name, value in values.items()]


def sim_parameters(**overrides) -> list[Parameter]:
    """The sim node's parameters in the tests: 64 px cameras published at 10 Hz, the state at 20 Hz;
    ``overrides`` by parameter name (``**{"sim.control_hz": 2.0}`` for a dotted one)."""
    values = {"sim.image_size": 64, "camera_hz": 10.0, "state_hz": 20.0, **overrides}
    return [Parameter(name, value=value) for name, value in values.items()]


def diagnostic_dict(msg: DiagnosticArray) -> dict | None:
    """The planner's DiagnosticStatus as ``{"level", "message", key: value..., "rejections": {reason: n}}``."""
    for status in msg.status:
        if status.name != PLANNER_STATUS:
            continue
        values = {kv.key: kv.value for kv in status.values}
        result = {
            "level": status.level[0] if isinstance(status.level, bytes) else int(status.level),
            "message": status.message,
            **values,
        }
        result["rejections"] = {k.split(".", 1)[1]: int(v) for k, v in values.items() if k.startswith("rejections.")}
        if "command" in values:
            result["command"] = values["command"] == "true"
        return result
    return None


class FakeRobot(Node):
    """A robot for the planner: publishes camera, pose and gripper at ``rate_hz``, in one of several faults."""

    def __init__(self, context: Context, rate_hz: float = 20.0, state: np.ndarray | None = None) -> None:
        super().__init__("fake_robot", context=context)
        self.mode = "ok"
        self.state = np.array([0.5, 0.0, 0.2, np.pi, 0.0, 0.0]) if state is None else np.asarray(state, dtype=float)
        rng = np.random.default_rng(0)
        self.frame = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)  # any size: not square, not the model's
        self.goal = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        self.targets: list[PoseStamped] = []
        self.target_times: list[float] = []  # time.monotonic() at which each target arrived
        self.paths: list[Path] = []
        self.gripper_commands: list[float] = []
        self.diagnostics: list[dict] = []
        self.latencies: list[float] = []
        self.goal_pub = self.create_publisher(Image, "goal_image", GOAL_QOS)
        self.image_pub = self.create_publisher(Image, "image", 1)
        self.pose_pub = self.create_publisher(PoseStamped, "ee_pose", 1)
        self.joint_pub = self.create_publisher(JointState, "joint_states", 1)
        self.create_subscription(PoseStamped, "target_pose", self._on_target, 10)
        self.create_subscription(Path, "/planner_node/planned_path", self.paths.append, 10)
        self.create_subscription(Float64, "gripper_command", lambda m: self.gripper_commands.append(m.data), 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.create_subscription(Float64, "/planner_node/planning_latency", lambda m: self.latencies.append(m.data), 10)
        self.create_timer(1.0 / rate_hz, self.publish_sensors)

    def _on_target(self, msg: PoseStamped) -> None:
        self.target_times.append(time.monotonic())
        self.targets.append(msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        status = diagnostic_dict(msg)
        if status is not None:
            self.diagnostics.append(status)

    def call(self, name: str) -> Trigger.Response:
        return call(self, Trigger, name)

    def publish_goal(self) -> None:
        self.goal_pub.publish(conversions.rgb_to_image(self.goal, self.now(), "camera"))

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish_sensors(self) -> None:
        now, mode = self.now(), self.mode
        image = conversions.rgb_to_image(self.frame, now - 2.0 if mode == "stale" else now, "camera")
        if mode == "mono8":
            image.encoding, image.step = "mono8", image.width
        if mode == "truncated":
            image.data = bytes(image.data)[:-10]
        pose = conversions.vector_to_pose(self.state, now, "panda_link0")
        if mode == "nan_pose":
            pose.pose.position.y = float("nan")
        if mode == "huge_pose":
            pose.pose.position.x = 1e308
        joints = JointState(name=["panda_joint1", *FINGERS], position=[0.0, 0.03, 0.03])
        joints.header.stamp = conversions.seconds_to_stamp(now)
        self.image_pub.publish(image)
        self.pose_pub.publish(pose)
        self.joint_pub.publish(joints)
