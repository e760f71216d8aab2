"""Soak test of the ROS planner node: camera images, poses and gripper states at 30 Hz for N minutes.

The planner runs as its own process (``python -m ros_nodes.planner_node``) with the planner section
of ``config/sim.yaml``: the shipped default model at the documented CPU settings (128 samples x 6
iterations, 2 Hz, stale timeout 0.5 s). This script is the robot: it publishes rgb8 frames of the
exterior and wrist cameras (a few pre-made ones in turn, 640 x 480 by default, as a RealSense colour
stream; a two-view model such as the default one plans from both), the end-effector pose and the finger
joints at ``--rate_hz``, a latched goal image (both views side by side), and moves its pose to each target
the planner sends (a robot that reaches every target). It records:

- the planner process's resident memory (VmRSS, every second) and its slope (MiB per minute) by a
  least-squares line over the whole run and over the run after its first ``--warmup_minutes``
  (model load, allocator and thread-pool growth), which is what a leak would show in;
- every control tick from ``/diagnostics`` (diagnostic_msgs/DiagnosticArray): the share that sent
  a command, the refusals by reason, the planning latency.

It writes ``soak.json`` and ``soak.png`` (RSS over time with the fitted line; commanding share and
latency per minute) to ``--out`` and prints the summary. Run it on an otherwise idle machine::

    nice -n 19 .venv/bin/python bench/ros_soak.py --minutes 30 --out soak_out

Needs the ``ros`` extra (``make venv``); the planner's stderr goes to ``--out``/planner.log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from ros_nodes import conversions  # noqa: E402
from ros_nodes.planner_node import GOAL_QOS  # noqa: E402

FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
START_STATE = np.array([0.5, 0.0, 0.2, np.pi, 0.0, 0.0])  # inside config/sim.yaml's workspace, gripper down
PLANNER_STATUS = "planner_node: planner"


def rss_mib(pid: int) -> float | None:
    """Resident memory (MiB) of process ``pid`` from /proc, None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def slope_per_minute(times_s: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of ``values`` over ``times_s`` (s), per minute; NaN with fewer than 2 points."""
    if len(times_s) < 2:
        return float("nan")
    return float(np.polyfit(times_s / 60.0, values, 1)[0])


class Robot(Node):
    """Publishes frames, pose and fingers at ``rate_hz``; follows the planner's targets; records its ticks."""

    def __init__(self, context: Context, rate_hz: float, height: int, width: int) -> None:
        super().__init__("soak_robot", context=context)
        rng = np.random.default_rng(0)
        self.frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
        self.wrist_frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
        # The shipped model plans from the exterior and wrist cameras: its goal holds both side by side.
        self.goal = rng.integers(0, 256, (height, 2 * width, 3), dtype=np.uint8)
        self.state = START_STATE.copy()
        self.count = 0
        self.lock = threading.Lock()
        self.ticks: list[dict] = []  # one per control tick: wall time, command, reason, latency
        self.image_pub = self.create_publisher(Image, "image", 1)
        self.wrist_image_pub = self.create_publisher(Image, "wrist_image", 1)
        self.pose_pub = self.create_publisher(PoseStamped, "ee_pose", 1)
        self.joint_pub = self.create_publisher(JointState, "joint_states", 1)
        self.goal_pub = self.create_publisher(Image, "goal_image", GOAL_QOS)
        self.create_subscription(PoseStamped, "target_pose", self._on_target, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.goal_pub.publish(conversions.rgb_to_image(self.goal, self._now(), "camera"))
        self.create_timer(1.0 / rate_hz, self._publish)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _publish(self) -> None:
        now = self._now()
        self.count += 1
        self.image_pub.publish(conversions.rgb_to_image(self.frames[self.count % len(self.frames)], now, "camera"))
        self.wrist_image_pub.publish(conversions.rgb_to_image(self.wrist_frames[self.count % 4], now, "wrist_camera"))
        self.pose_pub.publish(conversions.vector_to_pose(self.state, now, "panda_link0"))
        joints = JointState(name=FINGERS, position=[0.03, 0.03])
        joints.header.stamp = conversions.seconds_to_stamp(now)
        self.joint_pub.publish(joints)

    def _on_target(self, msg: PoseStamped) -> None:
        self.state = conversions.pose_to_vector(msg)  # the robot reaches every target within the period

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name != PLANNER_STATUS or "command" not in values:
                continue  # not the planner, or not a control tick (heartbeat while inactive)
            with self.lock:
                self.ticks.append(
                    {
                        "t": time.monotonic(),
                        "command": values["command"] == "true",
                        "reason": values.get("reason", "") + (f" <- {values['cause']}" if "cause" in values else ""),
                        "latency_s": float(values["latency_s"]) if "latency_s" in values else None,
                    }
                )


def plot(path: Path, rss: np.ndarray, ticks: list[dict], start: float, fit_from_s: float, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_ticks) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    minutes = rss[:, 0] / 60.0
    ax_rss.plot(minutes, rss[:, 1], lw=1, label="planner VmRSS")
    late = rss[rss[:, 0] >= fit_from_s]
    if len(late) >= 2:
        coefficients = np.polyfit(late[:, 0] / 60.0, late[:, 1], 1)
        ax_rss.plot(
            late[:, 0] / 60.0,
            np.polyval(coefficients, late[:, 0] / 60.0),
            "r--",
            label=f"fit after warm-up: {coefficients[0]:+.2f} MiB/min",
        )
    ax_rss.set_ylabel("MiB")
    ax_rss.legend(loc="lower right")
    ax_rss.set_title(f"ROS planner soak: {summary['ticks']} ticks, {100 * summary['commanding_share']:.1f}% commanding")

    times = np.array([t["t"] - start for t in ticks]) / 60.0
    if len(times):
        edges = np.arange(0.0, max(times.max(), 1e-9) + 1.0, 1.0)
        share = [
            np.mean([t["command"] for t, m in zip(ticks, times) if lo <= m < lo + 1.0] or [np.nan]) for lo in edges[:-1]
        ]
        ax_ticks.step(edges[:-1], 100 * np.array(share), where="post", label="commanding ticks (%) per minute")
        ax_ticks.set_ylim(0, 105)
        latency = [(m, t["latency_s"]) for t, m in zip(ticks, times) if t["latency_s"] is not None]
        if latency:
            ax_latency = ax_ticks.twinx()
            ax_latency.plot(*zip(*latency), ".", ms=2, color="tab:orange", label="plan latency (s)")
            ax_latency.set_ylabel("plan latency (s)")
    ax_ticks.set_ylabel("% of ticks")
    ax_ticks.set_xlabel("minutes")
    ax_ticks.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to publish after the first command")
    parser.add_argument("--rate_hz", type=float, default=30.0, help="camera, pose and gripper rate")
    parser.add_argument("--height", type=int, default=480, help="camera image height (px)")
    parser.add_argument("--width", type=int, default=640, help="camera image width (px)")
    parser.add_argument("--warmup_minutes", type=float, default=1.0, help="RSS before this is left out of the slope")
    parser.add_argument("--params_file", default=str(ROOT / "config" / "sim.yaml"), help="the planner's parameters")
    parser.add_argument("--out", default="soak_out", help="folder for soak.json, soak.png, planner.log")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    domain = random.randint(101, 200)  # away from the tests' 1..100
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOCALHOST_ONLY": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    # Only the planner's section of the file is read: the planner node ignores the sim's.
    command = [
        sys.executable,
        "-m",
        "ros_nodes.planner_node",
        "--ros-args",
        "--params-file",
        args.params_file,
        "-p",
        "device:=cpu",
        "-p",
        "autostart:=true",
        "-p",
        "goal_dir:=''",
    ]
    log = open(out / "planner.log", "w")
    planner = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    robot = Robot(context, args.rate_hz, args.height, args.width)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(robot)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()

    rss: list[tuple[float, float]] = []
    begin = time.monotonic()
    try:
        while not any(t["command"] for t in list(robot.ticks)):  # model loaded, goal encoded, first plan
            if planner.poll() is not None or time.monotonic() - begin > 300:
                raise SystemExit(f"the planner gave no command (exit {planner.poll()}); see {out / 'planner.log'}")
            time.sleep(0.5)
        start = time.monotonic()
        print(f"first command after {start - begin:.1f} s; soaking {args.minutes} min", flush=True)
        while time.monotonic() - start < args.minutes * 60.0:
            value = rss_mib(planner.pid)
            if value is None:
                raise SystemExit(f"the planner exited ({planner.poll()}); see {out / 'planner.log'}")
            rss.append((time.monotonic() - start, value))
            time.sleep(1.0)
    finally:
        planner.send_signal(2)  # Ctrl-C: the node's clean exit path
        try:
            planner.wait(timeout=20)
        except subprocess.TimeoutExpired:
            planner.kill()
        stop.set()
        spinner.join(timeout=5)
        executor.shutdown(timeout_sec=5)
        robot.destroy_node()
        rclpy.shutdown(context=context)
        log.close()

    samples = np.array(rss)
    with robot.lock:
        ticks = [t for t in robot.ticks if t["t"] >= start]
    fit_from_s = min(args.warmup_minutes * 60.0, samples[-1, 0] / 2)
    late = samples[samples[:, 0] >= fit_from_s]
    latencies = [t["latency_s"] for t in ticks if t["latency_s"] is not None]
    reasons: dict[str, int] = {}
    for tick in ticks:
        if not tick["command"]:
            reasons[tick["reason"]] = reasons.get(tick["reason"], 0) + 1
    summary = {
        "minutes": samples[-1, 0] / 60.0,
        "input_rate_hz": args.rate_hz,
        "image": [args.height, args.width],
        "rss_start_mib": float(samples[0, 1]),
        "rss_end_mib": float(samples[-1, 1]),
        "rss_max_mib": float(samples[:, 1].max()),
        "rss_slope_mib_per_min": slope_per_minute(samples[:, 0], samples[:, 1]),
        "rss_slope_after_warmup_mib_per_min": slope_per_minute(late[:, 0], late[:, 1]),
        "warmup_minutes": fit_from_s / 60.0,
        "ticks": len(ticks),
        "commands": sum(t["command"] for t in ticks),
        "commanding_share": (sum(t["command"] for t in ticks) / len(ticks)) if ticks else 0.0,
        "refusals": reasons,
        "latency_p50_s": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_p90_s": float(np.percentile(latencies, 90)) if latencies else None,
        "planner_exit_code": planner.returncode,
        "command": " ".join(sys.argv),
    }
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    plot(out / "soak.png", samples, ticks, start, fit_from_s, summary)
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'soak.json'} and {out / 'soak.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
