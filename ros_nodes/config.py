"""Typed configs of the two nodes: the single source of every ROS parameter's name, type and default.

Each leaf field becomes one ROS parameter, nested dataclasses giving dotted names
(``planner.samples``, ``safety.workspace_low``, ``sim.image_size``); ``config/*.yaml`` and
``ros2 run ... --ros-args -p name:=value`` use the same names (see :mod:`ros_nodes.parameters`).
The planner's and the simulator's own settings are their packages' configs, nested here unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jepa_mpc_foundation.ros_messages import FRANKA_FINGER_JOINTS, FRANKA_MAX_WIDTH
from planner.config import PlannerConfig
from ros_nodes.safety import SafetyConfig
from sim import env_id
from sim.config import SimConfig


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _check_rate(where: str, value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 1000):
        raise ValueError(f"{where} must be a rate in (0, 1000] Hz, got {value!r}")


def _check_gripper(where: str, joints: tuple[str, ...], max_width: float) -> None:
    if not joints or not all(isinstance(j, str) and j for j in joints):
        raise ValueError(f"{where}.gripper_joints must be a non-empty list of joint names, got {joints!r}")
    if not (math.isfinite(max_width) and max_width > 0):
        raise ValueError(f"{where}.gripper_max_width must be a width > 0 m, got {max_width!r}")


@dataclass(frozen=True)
class PlannerNodeConfig:
    """The planner node: model, control rate, gripper reading, and the nested planner and safety configs."""

    checkpoint: str = field(
        default="", metadata=_help("world-model checkpoint (.pt); empty: the shipped default model")
    )
    device: str = field(default="auto", metadata=_help("torch device: auto (cuda if present), cpu, cuda, cuda:1"))
    torch_threads: int = field(
        default=0,
        metadata=_help(
            "torch CPU threads for planning; 0: all cores but one (at least one), so that camera, pose and "
            "service callbacks keep a core while a plan runs"
        ),
    )
    rate_hz: float = field(
        default=2.0,
        metadata=_help("control rate: one plan and one command per period; 2 Hz = one predictor step (0.5 s)"),
    )
    autostart: bool = field(
        default=False,
        metadata=_help(
            "configure and activate at start (commands from the start); false waits for ~/start or activate"
        ),
    )
    configure_at_start: bool = field(
        default=True,
        metadata=_help(
            "load the model and goal at start (lifecycle configure); false: stay unconfigured for a "
            "lifecycle manager or ~/start"
        ),
    )
    gripper_joints: tuple[str, ...] = field(
        default=FRANKA_FINGER_JOINTS,
        metadata=_help("finger joints in the gripper's JointState; their sum is the opening"),
    )
    gripper_max_width: float = field(default=FRANKA_MAX_WIDTH, metadata=_help("opening (m) that reads as closedness 0"))
    goal_file: str = field(
        default="", metadata=_help("goal image (PNG/JPEG) to start with; empty: wait for goal_image or ~/capture_goal")
    )
    goal_files: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "goal images to reach in turn (sub-goals, then the goal), loaded on configure; instead of goal_file"
        ),
    )
    subgoal_steps: int = field(
        default=8,
        metadata=_help(
            "control steps each goal image without a recorded pose (files, goal_image) is aimed at "
            "before the next; captured goals are timed from the distance, as in jepa-mpc eval"
        ),
    )
    goal_dir: str = field(
        default="goals", metadata=_help("folder where ~/capture_goal saves each captured goal image; empty: not saved")
    )
    record_path: str = field(
        default="",
        metadata=_help(
            "record the run to this MCAP file (cameras, pose, joints, goal images, commands, plans, energies, "
            "diagnostics; Foxglove and jepa-mpc import-bag read it); a path without .mcap is a folder that gets "
            "a new run_<UTC time>.mcap at each start; empty: no recording"
        ),
    )
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gripper_joints", tuple(self.gripper_joints))
        object.__setattr__(self, "goal_files", tuple(self.goal_files))
        _check_rate("rate_hz", self.rate_hz)
        _check_gripper("planner_node", self.gripper_joints, self.gripper_max_width)
        if self.goal_file and self.goal_files:
            raise ValueError("set goal_file (one goal) or goal_files (a sequence), not both")
        if not all(isinstance(f, str) and f for f in self.goal_files):
            raise ValueError(f"goal_files must be a list of image file names, got {list(self.goal_files)!r}")
        if not (isinstance(self.torch_threads, int) and self.torch_threads >= 0):
            raise ValueError(
                f"torch_threads must be an integer >= 0 (0: all cores but one), got {self.torch_threads!r}"
            )
        if not (isinstance(self.subgoal_steps, int) and self.subgoal_steps >= 1):
            raise ValueError(f"subgoal_steps must be an integer >= 1, got {self.subgoal_steps!r}")
        if not (self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:<index>, got {self.device!r}")


@dataclass(frozen=True)
class SimNodeConfig:
    """The simulated robot: which task, publishing rates, frames and joint names."""

    task: str = field(default="reach", metadata=_help("sim task: reach, push, grasp, pickplace or lang-*"))
    seed: int = field(default=0, metadata=_help("episode seed used by reset (set it, then call ~/reset)"))
    camera_hz: float = field(default=15.0, metadata=_help("rate of the camera images"))
    state_hz: float = field(default=50.0, metadata=_help("rate of the end-effector pose and joint states"))
    base_frame: str = field(default="panda_link0", metadata=_help("frame_id of the pose (the robot base)"))
    camera_frame: str = field(default="exterior_camera", metadata=_help("frame_id of the exterior camera image"))
    wrist_camera_frame: str = field(default="wrist_camera", metadata=_help("frame_id of the wrist camera image"))
    joint_prefix: str = field(default="panda_", metadata=_help("prefix of the published joint names (panda_joint1...)"))
    goal_views: int = field(
        default=1,
        metadata=_help(
            "camera views in goal_image: 1 (the exterior camera) or 2 (exterior and wrist side by side, "
            "for a model that plans from both, such as the default model)"
        ),
    )
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        env_id(self.task)  # ValueError naming the valid tasks
        _check_rate("camera_hz", self.camera_hz)
        _check_rate("state_hz", self.state_hz)
        if not self.sim.render_images:
            raise ValueError("sim.render_images must be true for the sim node: it publishes the camera images")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.goal_views not in (1, 2):
            raise ValueError(
                f"goal_views must be 1 (exterior camera) or 2 (exterior and wrist), got {self.goal_views!r}"
            )


def planning_threads(requested: int, cores: int | None) -> int:
    """Torch CPU threads the planner node plans with: ``requested`` if set (> 0), else all ``cores`` but one.

    Why one fewer: torch's threads spin on every core while a plan runs, and the executor thread that takes
    camera frames, poses and service calls then waits for one, so frames go stale (docs/benchmarks.md, "ROS
    planner soak"). ``cores`` None (unknown) counts as 1.
    """
    if requested > 0:
        return requested
    return max(1, (cores or 1) - 1)
