"""The settings of ``jepa-mpc import-bag`` (:func:`jepa_mpc_dataset.rosbag_import.import_bags`): which bags, which
topics hold what, the frame rate, how old each stream's message may be at a frame's time, and what a gap does.

The defaults read what ``ros_nodes/sim_node.py`` publishes (``ros2 bag record /image /wrist_image /ee_pose
/joint_states``) and what a Franka arm with ``franka_ros2`` names its finger joints; a real robot's bag names
its own topics with the flags (docs/dataset.md, "Importing rosbag2 bags").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jepa_mpc_foundation.ros_messages import FRANKA_ARM_JOINTS, FRANKA_FINGER_JOINTS, FRANKA_MAX_WIDTH

TIME_SOURCES = ("header", "receive")
GAP_POLICIES = ("split", "drop")
GRIPPER_VALUES = ("closedness", "width")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class MaxAge:
    """How old (s) each stream's latest message may be at a frame's time. A frame for which some stream's latest
    message is older (or that stream has none yet) lies in a gap: ``on_gap`` says what happens to it."""

    camera: float = field(default=0.1, metadata=_help("s; a 15-30 Hz camera may miss a frame or two"))
    pose: float = field(default=0.05, metadata=_help("s, for the end-effector pose (each dynamic tf edge)"))
    gripper: float = field(default=0.25, metadata=_help("s; gripper drivers often publish at 10-30 Hz"))
    joints: float = field(default=0.05, metadata=_help("s, for the arm's joint states"))

    def __post_init__(self) -> None:
        for name in ("camera", "pose", "gripper", "joints"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"max_age.{name} must be a number of seconds >= 0, got {value!r}")


@dataclass
class ImportBagConfig:
    """``jepa-mpc import-bag``: rosbag2 bags (MCAP or sqlite3) -> a LeRobot v3.0 dataset that ``jepa-mpc train`` reads.

    Every bag gives one episode, or one per span a ``span_topic`` marks; the streams are sampled at ``fps`` by
    their message stamps (each frame takes every stream's latest message at or before its time), and a frame
    where a stream is older than its ``max_age`` splits or drops the episode (``on_gap``), with a warning that
    says which frames, which times and which stream.
    """

    bags: tuple[str, ...] = field(
        metadata={
            "help": "rosbag2 bags: a bag folder (metadata.yaml + .mcap or .db3 files) or one .mcap / .db3 file",
            "positional": True,
            "aliases": ("--bag",),
        }
    )
    out: str = field(metadata=_help("dataset root folder to create (refused if it holds a dataset)"))
    task: str = field(
        default="",
        metadata=_help(
            "the task's language instruction, written for every episode; empty: each episode's own, as recorded on "
            "--task_topic"
        ),
    )
    task_topic: str = field(
        default="/goal_text",
        metadata=_help(
            "std_msgs/String with the goal instruction (a jepa-mpc run recording's /goal_text), read when --task is "
            "empty: an episode's task is the instruction in force at its first frame, else the first given in it"
        ),
    )
    fps: int = field(default=4, metadata=_help("frames per second of the dataset (the model's 4 fps by default)"))
    camera_topics: tuple[str, ...] = field(
        default=("/image",),
        metadata=_help("one or two sensor_msgs/Image or CompressedImage topics: the exterior view, then the wrist"),
    )
    camera_names: tuple[str, ...] = field(
        default=("exterior_image_1_left", "wrist_image_left"),
        metadata=_help("dataset camera of each camera topic, in order (DROID's names; training reads the first)"),
    )
    pose_topic: str = field(
        default="/ee_pose",
        metadata=_help("end-effector pose: geometry_msgs/PoseStamped, or tf2_msgs/TFMessage (/tf) with --ee_frame"),
    )
    base_frame: str = field(
        default="",
        metadata=_help(
            "robot base frame: with /tf the frame the pose is taken in (required); with PoseStamped the frame_id "
            "its header must name (empty: not checked)"
        ),
    )
    ee_frame: str = field(default="", metadata=_help("with /tf: the end-effector frame (e.g. panda_hand_tcp)"))
    tf_static_topic: str = field(
        default="/tf_static", metadata=_help("with /tf: the static transforms' topic (used if the bag has it)")
    )
    gripper_topic: str = field(
        default="/joint_states",
        metadata=_help("sensor_msgs/JointState with the finger joints, or std_msgs/Float64 (see --gripper_value)"),
    )
    gripper_joints: tuple[str, ...] = field(
        default=FRANKA_FINGER_JOINTS, metadata=_help("finger joints of a JointState gripper; their sum is the opening")
    )
    gripper_max_width: float = field(
        default=FRANKA_MAX_WIDTH, metadata=_help("m: the opening that reads as closedness 0 (fully open)")
    )
    gripper_value: str = field(
        default="closedness",
        metadata=_help("what a Float64 gripper holds: closedness (0 open .. 1 closed) or width (opening in m)"),
    )
    joint_topic: str = field(
        default="",
        metadata=_help("sensor_msgs/JointState with the arm's joints (written as DROID's joint_position); empty: none"),
    )
    arm_joints: tuple[str, ...] = field(
        default=FRANKA_ARM_JOINTS, metadata=_help("the arm's 7 joint names in --joint_topic, in DROID's order")
    )
    span_topic: str = field(
        default="",
        metadata=_help("std_msgs/Bool marking episodes (true starts one, false ends it); empty: one episode per bag"),
    )
    time_source: str = field(
        default="header",
        metadata=_help(
            "header: align by the messages' header stamps; receive: by the times the recorder received them "
            "(messages without a header, Float64 and Bool, always use these)"
        ),
    )
    max_age: MaxAge = field(default_factory=MaxAge)
    on_gap: str = field(
        default="split",
        metadata=_help("split: the frames on each side of a gap become two episodes; drop: the episode is left out"),
    )
    min_frames: int = field(
        default=8, metadata=_help("pieces shorter than this are left out, with a warning (8 = one training clip)")
    )
    robot_type: str = field(default="franka", metadata=_help("robot_type written in meta/info.json"))
    success: bool = field(default=False, metadata=_help("written as is_episode_successful for every episode"))
    progress: bool = field(default=True, metadata=_help("show tqdm progress bars"))

    def __post_init__(self) -> None:
        self.bags = tuple(self.bags)
        self.camera_topics = tuple(self.camera_topics)
        self.camera_names = tuple(self.camera_names)
        self.gripper_joints = tuple(self.gripper_joints)
        self.arm_joints = tuple(self.arm_joints)
        if not self.bags:
            raise ValueError("name at least one bag: jepa-mpc import-bag BAG [BAG ...] --out DATASET --task TEXT")
        if not self.out:
            raise ValueError("--out must name the dataset folder to create")
        if (self.task and not self.task.strip()) or not (self.task or self.task_topic):
            raise ValueError(
                "--task must be the task's instruction, e.g. --task 'put the cube in the bowl' (or, empty, "
                "--task_topic the topic that recorded it)"
            )
        if not (isinstance(self.fps, int) and self.fps > 0):
            raise ValueError(f"fps must be a whole number of frames per second > 0, got {self.fps!r}")
        if not 1 <= len(self.camera_topics) <= 2 or not all(self.camera_topics):
            raise ValueError(f"camera_topics must name one or two image topics, got {list(self.camera_topics)}")
        if len(self.camera_names) < len(self.camera_topics) or len(set(self.camera_names)) != len(self.camera_names):
            raise ValueError(
                f"camera_names {list(self.camera_names)} must give a distinct name to each of the camera topics "
                f"{list(self.camera_topics)}"
            )
        if not self.pose_topic or not self.gripper_topic:
            raise ValueError("pose_topic and gripper_topic must name topics of the bag")
        if not self.gripper_joints or not all(self.gripper_joints):
            raise ValueError(f"gripper_joints must name the finger joints, got {list(self.gripper_joints)}")
        if not (math.isfinite(self.gripper_max_width) and self.gripper_max_width > 0):
            raise ValueError(f"gripper_max_width must be a width > 0 m, got {self.gripper_max_width!r}")
        if self.gripper_value not in GRIPPER_VALUES:
            raise ValueError(f"gripper_value must be one of {list(GRIPPER_VALUES)}, got {self.gripper_value!r}")
        if len(self.arm_joints) != 7 or not all(self.arm_joints):
            raise ValueError(f"arm_joints must name the arm's 7 joints, got {list(self.arm_joints)}")
        if self.time_source not in TIME_SOURCES:
            raise ValueError(f"time_source must be one of {list(TIME_SOURCES)}, got {self.time_source!r}")
        if self.on_gap not in GAP_POLICIES:
            raise ValueError(f"on_gap must be one of {list(GAP_POLICIES)}, got {self.on_gap!r}")
        if not (isinstance(self.min_frames, int) and self.min_frames >= 1):
            raise ValueError(f"min_frames must be a whole number >= 1, got {self.min_frames!r}")

    def camera_map(self) -> dict[str, str]:
        """``{camera topic: dataset camera name}``, in the order of ``camera_topics``."""
        return dict(zip(self.camera_topics, self.camera_names))
