"""Reading rosbag2 bags (MCAP and sqlite3 storage, through ``rosbags``' ``AnyReader``; no ROS install) for the import.

Two passes over a bag. :func:`read_bag_streams` reads every message of the topics the import uses and keeps, per
stream, the message stamps (int64 ns) and a small value per message: the end-effector pose (x, y, z and the
quaternion), the gripper closedness, the arm joints, and for the cameras only each message's size and position
in the bag, not its pixels. The alignment (:mod:`jepa_mpc_dataset.bag_alignment`) then picks one message per
stream and frame, and :func:`read_frames` decodes only the camera messages picked.

Messages mean what they mean for our ROS nodes (``ros_nodes/conversions.py``):

- ``sensor_msgs/Image`` in rgb8, bgr8, rgba8, bgra8 or mono8 -> RGB uint8 ``[H, W, 3]``; ``CompressedImage``
  (JPEG, PNG: whatever Pillow decodes) -> RGB.
- ``geometry_msgs/PoseStamped``: position (m) and quaternion (x, y, z, w); ``tf2_msgs/TFMessage``: the transforms
  between two named frames, composed along the tree that ``/tf`` and ``/tf_static`` describe (no tf2 needed).
- gripper: ``sensor_msgs/JointState`` fingers -> closedness ``1 - sum(positions) / max_width`` clipped to [0, 1];
  or ``std_msgs/Float64`` holding the closedness, or the opening width (m) read the same way.
- arm joints: ``sensor_msgs/JointState`` positions (rad) of 7 named joints, in the order named.

Every problem is a :class:`BagError` naming the bag, the topic and the fix (``jepa-mpc`` prints it as one line).
A message whose values are unusable (NaN, a quaternion of norm far from 1) is left out and counted in
``BagStreams.notes``, never silently.
"""

from __future__ import annotations

import difflib
import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jepa_mpc_dataset.bag_config import ImportBagConfig
from jepa_mpc_dataset.format import DatasetError
from jepa_mpc_foundation.ros_messages import IMAGE_ENCODINGS, rgb_pixels

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
JOINT_STATE = "sensor_msgs/msg/JointState"
FLOAT64 = "std_msgs/msg/Float64"
BOOL = "std_msgs/msg/Bool"
STRING = "std_msgs/msg/String"

ROLE_TYPES = {
    "camera": (IMAGE, COMPRESSED_IMAGE),
    "pose": (POSE_STAMPED, TF_MESSAGE),
    "gripper": (JOINT_STATE, FLOAT64),
    "joints": (JOINT_STATE,),
    "span": (BOOL,),
    "tf_static": (TF_MESSAGE,),
    "task": (STRING,),
}
ROLE_FLAGS = {
    "camera": "--camera_topics",
    "pose": "--pose_topic",
    "gripper": "--gripper_topic",
    "joints": "--joint_topic",
    "span": "--span_topic",
    "tf_static": "--tf_static_topic",
    "task": "--task_topic",
}
QUATERNION_NORM_TOLERANCE = 1e-2  # as ros_nodes/conversions.py: float32 rounding passes, a zero quaternion does not
MAX_POSITION_M = 100.0  # as ros_nodes/conversions.py: no arm reaches further; a larger value is a bad message
CORRUPT_FIX = (
    "a corrupt or truncated bag: if its recording was interrupted, rebuild its index with `ros2 bag reindex BAG`, "
    "else copy it again"
)


class BagError(DatasetError):
    """A bag the import cannot use; the message names the bag, the topic and the fix."""


@dataclass
class Stream:
    """The messages of one input that the alignment samples, in stamp order.

    ``stamps`` int64 [N] (ns, non-decreasing); ``values`` float64 [N, D]: pose [x, y, z, qx, qy, qz, qw] (m),
    gripper [closedness], joints [7] (rad), cameras [height, width]. A camera stream also keeps where each
    message lies in the bag (``log_ns`` int64 [N], the recorder's receive time, and ``rank`` [N], its place among
    messages of its topic received in the same nanosecond), so that :func:`read_frames` finds the picked ones.
    """

    label: str  # as the warnings name it: the topic, or "/tf panda_link0 -> panda_hand"
    topic: str
    role: str  # camera, pose, gripper or joints
    stamps: np.ndarray
    values: np.ndarray
    log_ns: np.ndarray | None = None
    rank: np.ndarray | None = None
    compressed: bool = False


@dataclass
class PoseChain:
    """The end-effector pose in the base frame as a product of transforms, left to right.

    Each link is a dynamic stream (an index into ``streams``) or a static transform [7] (x, y, z, qx, qy, qz, qw),
    and whether it is used inverted. A ``PoseStamped`` topic is one link of one stream; ``/tf`` gives the chain
    from the base frame up to the common ancestor (inverted) and down to the end-effector frame.
    """

    streams: list[Stream]
    links: list[tuple[int | np.ndarray, bool]]

    def poses(self, picks: list[np.ndarray], frames: int) -> np.ndarray:
        """The poses of ``frames`` frames at the picked messages of each stream (``picks[i]`` int [T] indexes
        ``streams[i]``): positions (m) [T, 3] and rotation matrices [T, 3, 3], float64, as one array [T, 12]
        (xyz, then R row-major)."""
        from scipy.spatial.transform import Rotation

        position = np.zeros((frames, 3))
        rotation = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        for link, inverted in self.links:
            value = self.streams[link].values[picks[link]] if isinstance(link, int) else np.tile(link, (frames, 1))
            r = Rotation.from_quat(value[:, 3:7]).as_matrix()  # [T, 3, 3]
            p = value[:, :3]
            if inverted:
                r = r.transpose(0, 2, 1)
                p = -np.einsum("tij,tj->ti", r, p)
            position = position + np.einsum("tij,tj->ti", rotation, p)
            rotation = rotation @ r
        return np.concatenate([position, rotation.reshape(frames, 9)], axis=1)


@dataclass
class BagStreams:
    """What the first pass read from one bag: each input's stream and the episode spans (ns, stamps' clock)."""

    path: Path
    cameras: list[Stream]  # in the order of ImportBagConfig.camera_topics
    pose: PoseChain
    gripper: Stream
    joints: Stream | None
    spans: list[tuple[int, int]]
    first_ns: int  # the earliest stamp of any stream: the warnings count seconds from it
    notes: list[str] = field(default_factory=list)  # messages left out, one line per stream
    # Without --task: (receive ns, text) of each --task_topic message; an empty text ends the instruction in force.
    instructions: list[tuple[int, str]] = field(default_factory=list)

    def streams(self) -> list[Stream]:
        """Every stream a frame needs a recent message of: cameras, the pose's dynamic links, gripper, joints."""
        return [*self.cameras, *self.pose.streams, self.gripper, *([self.joints] if self.joints else [])]

    def picks_by_input(self, picks: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
        """Picks in the order of :meth:`streams` -> ``{"camera": [...], "pose": [...], "gripper": [one],
        "joints": [one] or []}``."""
        cameras, poses = len(self.cameras), len(self.pose.streams)
        return {
            "camera": picks[:cameras],
            "pose": picks[cameras : cameras + poses],
            "gripper": picks[cameras + poses : cameras + poses + 1],
            "joints": picks[cameras + poses + 1 :],
        }


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.LATEST)


@contextmanager
def open_bag(path: Path) -> Iterator[object]:
    """An open ``rosbags.highlevel.AnyReader`` on the bag at ``path`` (a rosbag2 folder, or one .mcap / .db3 file).

    Raises:
        BagError: no such bag, or a bag that cannot be opened (unreadable metadata, a truncated file).
    """
    from rosbags.highlevel import AnyReader

    if not path.exists():
        raise BagError(
            f"bag {path}: no such folder or file; name a rosbag2 folder (with metadata.yaml) or its .mcap/.db3"
        )
    if path.is_file() and path.suffix not in (".mcap", ".db3"):
        raise BagError(
            f"bag {path}: not a rosbag2 bag (a folder with metadata.yaml, or an .mcap or .db3 file); ROS 1 .bag files "
            "are not supported: convert them with `rosbags-convert`"
        )
    try:
        reader = AnyReader([path], default_typestore=_typestore())
        reader.open()
    except PermissionError:
        raise  # one line already, and not the bag's fault
    except Exception as error:  # anything else rosbags raises while reading the user's file is about the file
        raise BagError(f"bag {path}: cannot be opened ({_reason(error)}): {CORRUPT_FIX}") from error
    try:
        yield reader
    finally:
        reader.close()


def _reason(error: Exception) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def _seconds(ns: int) -> str:
    return f"{ns * 1e-9:.3f} s"


def _topic_list(reader) -> str:
    return ", ".join(f"{name} ({info.msgtype}, {info.msgcount} msgs)" for name, info in sorted(reader.topics.items()))


def check_topic(reader, path: Path, topic: str, role: str) -> str:
    """The message type of ``topic`` in the bag, once it is there, of a type ``role`` takes, and not empty.

    Raises:
        BagError: a missing or misspelt topic (listing the bag's topics and the closest names), a type the role
            does not take, or a topic without messages.
    """
    flag = ROLE_FLAGS[role]
    topics = reader.topics
    if topic not in topics:
        close = difflib.get_close_matches(topic, list(topics), n=2, cutoff=0.5)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise BagError(
            f"bag {path} has no topic {topic!r}{hint}; its topics: {_topic_list(reader)}: "
            f"pass the right one with {flag}"
        )
    msgtype = topics[topic].msgtype
    if msgtype not in ROLE_TYPES[role]:
        raise BagError(
            f"bag {path}, topic {topic}: {msgtype} is not a type {flag} takes ({', '.join(ROLE_TYPES[role])}); "
            f"its topics: {_topic_list(reader)}: pass a topic of one of those types with {flag}"
        )
    if topics[topic].msgcount == 0:
        raise BagError(f"bag {path}, topic {topic} has no messages: record it, or pass another topic with {flag}")
    return msgtype


def _messages(reader, path: Path, connections) -> Iterator[tuple[object, int, object]]:
    """``(connection, receive time ns, message)`` in receive order; a storage or decoding failure is a BagError."""
    iterator = reader.messages(connections=connections)
    while True:
        try:
            connection, log_ns, raw = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # rosbags reading the file: sqlite3, mcap, zstd errors are all the file's
            raise BagError(f"bag {path}: reading it failed ({_reason(error)}): {CORRUPT_FIX}") from error
        try:
            message = reader.deserialize(raw, connection.msgtype)
        except Exception as error:
            raise BagError(
                f"bag {path}, topic {connection.topic}: a message at receive time {_seconds(log_ns)} cannot be "
                f"decoded ({_reason(error)}): {CORRUPT_FIX}"
            ) from error
        yield connection, log_ns, message


class _StreamBuilder:
    """Collects one stream's stamps and values while the bag is read; checks the stamps on the way."""

    def __init__(self, path: Path, label: str, topic: str, role: str, header_stamps: bool) -> None:
        self.path, self.label, self.topic, self.role = path, label, topic, role
        self.header_stamps = header_stamps
        self.stamps: list[int] = []
        self.values: list = []
        self.log_ns: list[int] = []
        self.rank: list[int] = []
        self.left_out: list[tuple[int, str]] = []  # (stamp, why)

    def stamp(self, header, log_ns: int) -> int:
        """The message's time (ns): its header stamp, or the receive time; refuses zero and backward stamps."""
        if not self.header_stamps:
            return log_ns
        stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
        if stamp == 0:
            raise BagError(
                f"bag {self.path}, topic {self.topic}: message {len(self.stamps) + len(self.left_out)} (received at "
                f"{_seconds(log_ns)}) has a zero header stamp, i.e. its publisher does not stamp it: fix the "
                "publisher, or import with --time_source receive to align by the times the recorder received them"
            )
        return stamp

    def add(self, stamp: int, value, log_ns: int = 0, rank: int = 0) -> None:
        if self.stamps and stamp < self.stamps[-1]:
            raise BagError(
                f"bag {self.path}, topic {self.label}: stamps go backwards at message {len(self.stamps)} "
                f"({_seconds(stamp)} after {_seconds(self.stamps[-1])}; a restarted driver or a clock jump?): "
                "import with --time_source receive to align by the times the recorder received them, or cut the "
                "bag at the jump (`ros2 bag convert`) and import the parts"
            )
        self.stamps.append(stamp)
        self.values.append(value)
        self.log_ns.append(log_ns)
        self.rank.append(rank)

    def leave_out(self, stamp: int, why: str) -> None:
        self.left_out.append((stamp, why))

    def note(self) -> str | None:
        if not self.left_out:
            return None
        stamp, why = self.left_out[0]
        return (
            f"bag {self.path}, topic {self.label}: {len(self.left_out)} message(s) left out ({why}; the first stamped "
            f"{_seconds(stamp)})"
        )

    def build(self, width: int) -> Stream:
        if not self.stamps:
            raise BagError(
                f"bag {self.path}, topic {self.label}: no usable message"
                + (f" ({self.left_out[0][1]})" if self.left_out else "")
                + f": check the topic with `ros2 bag info`, or pass another with {ROLE_FLAGS[self.role]}"
            )
        camera = self.role == "camera"
        return Stream(
            label=self.label,
            topic=self.topic,
            role=self.role,
            stamps=np.asarray(self.stamps, dtype=np.int64),
            values=np.asarray(self.values, dtype=np.float64).reshape(len(self.stamps), width),
            log_ns=np.asarray(self.log_ns, dtype=np.int64) if camera else None,
            rank=np.asarray(self.rank, dtype=np.int64) if camera else None,
        )


def _pose_value(builder: _StreamBuilder, stamp: int, position, orientation) -> None:
    p = np.array([position.x, position.y, position.z], dtype=np.float64)
    q = np.array([orientation.x, orientation.y, orientation.z, orientation.w], dtype=np.float64)
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        builder.leave_out(stamp, "NaN or inf in the pose")
    elif np.abs(p).max() > MAX_POSITION_M:
        builder.leave_out(stamp, f"a position further than {MAX_POSITION_M} m from the base frame")
    elif abs(float(np.linalg.norm(q)) - 1.0) > QUATERNION_NORM_TOLERANCE:
        builder.leave_out(stamp, "a quaternion whose norm is not 1")
    else:
        builder.add(stamp, np.concatenate([p, q / np.linalg.norm(q)]))


def _joint_positions(message, joints: tuple[str, ...]) -> np.ndarray | None:
    """The positions of ``joints`` in a JointState, in that order; None if it lacks one of them."""
    names = list(message.name)
    if len(message.position) != len(names) or not all(joint in names for joint in joints):
        return None
    return np.array([message.position[names.index(joint)] for joint in joints], dtype=np.float64)


def _image_size(message, compressed: bool, path: Path, topic: str) -> tuple[int, int]:
    """(height, width) of an image message, without decoding a compressed one's pixels."""
    if not compressed:
        if message.encoding not in IMAGE_ENCODINGS:
            raise BagError(
                f"bag {path}, topic {topic}: image encoding {message.encoding!r} is not one of "
                f"{sorted(IMAGE_ENCODINGS)}: record the camera's 8-bit colour stream (not depth), or its compressed one"
            )
        return int(message.height), int(message.width)
    from PIL import Image, UnidentifiedImageError

    if "compressedDepth" in message.format:
        raise BagError(
            f"bag {path}, topic {topic}: a compressedDepth image ({message.format!r}); record the colour camera's "
            "topic (sensor_msgs/Image or its /compressed JPEG)"
        )
    try:
        with Image.open(io.BytesIO(message.data.tobytes())) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise BagError(
            f"bag {path}, topic {topic}: a CompressedImage of format {message.format!r} that Pillow cannot read "
            f"({_reason(error)}): record JPEG or PNG images"
        ) from error
    return height, width


def read_bag_streams(path: str | Path, config: ImportBagConfig, progress: bool = True) -> BagStreams:
    """First pass over one bag: every stream the import needs, and the spans its episodes come from.

    Raises:
        BagError: a missing topic or one of the wrong type, zero or backward stamps, a corrupt or truncated bag
            (fewer messages than its metadata lists, or a storage error), an unsupported image encoding, poses in
            another frame than ``--base_frame``, no tf chain between the frames, a JointState without the joints.
    """
    from tqdm import tqdm

    path = Path(path)
    with open_bag(path) as reader:
        first_pass = _FirstPass(reader, path, config)
        connections = [c for c in reader.connections if c.topic in first_pass.types]
        total = sum(reader.topics[topic].msgcount for topic in first_pass.types)
        with tqdm(total=total, desc=f"read {path.name}", unit="msg", disable=not progress or None, leave=False) as bar:
            for connection, log_ns, message in _messages(reader, path, connections):
                first_pass.handle(connection, log_ns, message)
                bar.update()
        return first_pass.result()


class _FirstPass:
    """The state of :func:`read_bag_streams`: the topics' types, a stream builder per input, the span marks."""

    def __init__(self, reader, path: Path, config: ImportBagConfig) -> None:
        self.reader, self.path, self.config = reader, path, config
        self.types = {topic: check_topic(reader, path, topic, "camera") for topic in config.camera_topics}
        self.types[config.pose_topic] = check_topic(reader, path, config.pose_topic, "pose")
        self.types[config.gripper_topic] = check_topic(reader, path, config.gripper_topic, "gripper")
        if config.joint_topic:
            self.types[config.joint_topic] = check_topic(reader, path, config.joint_topic, "joints")
        if config.span_topic:
            self.types[config.span_topic] = check_topic(reader, path, config.span_topic, "span")
        self.read_tasks = not config.task
        if self.read_tasks:
            if config.task_topic not in reader.topics:
                raise BagError(
                    f"bag {path} records no instruction (no topic {config.task_topic!r}; its topics: "
                    f"{_topic_list(reader)}): pass the task's instruction with --task, or its topic with --task_topic"
                )
            self.types[config.task_topic] = check_topic(reader, path, config.task_topic, "task")
        self.instructions: list[tuple[int, str]] = []
        self.use_tf = self.types[config.pose_topic] == TF_MESSAGE
        if self.use_tf:
            if not config.base_frame or not config.ee_frame:
                raise BagError(
                    f"bag {path}, topic {config.pose_topic}: a tf2_msgs/TFMessage topic needs --base_frame and "
                    f"--ee_frame (the frames the end-effector pose lies between); frames in the bag: "
                    f"{_tf_frames_hint(reader, path, config)}"
                )
            if config.tf_static_topic in reader.topics:
                self.types[config.tf_static_topic] = check_topic(reader, path, config.tf_static_topic, "tf_static")
        header = config.time_source == "header"
        self.header_stamps = header
        self.cameras = {topic: _StreamBuilder(path, topic, topic, "camera", header) for topic in config.camera_topics}
        self.gripper_is_float = self.types[config.gripper_topic] == FLOAT64
        # A Float64 has no header: its receive time is its time.
        self.gripper = _StreamBuilder(
            path, config.gripper_topic, config.gripper_topic, "gripper", header and not self.gripper_is_float
        )
        joint_topic = config.joint_topic
        self.joints = _StreamBuilder(path, joint_topic, joint_topic, "joints", header) if joint_topic else None
        self.pose = None if self.use_tf else _StreamBuilder(path, config.pose_topic, config.pose_topic, "pose", header)
        self.tf_edges: dict[tuple[str, str], _StreamBuilder] = {}
        self.tf_static: dict[tuple[str, str], np.ndarray] = {}
        self.span_marks: list[tuple[int, bool]] = []
        self.last_receive: dict[str, tuple[int, int]] = {}  # topic -> (receive ns, its messages received then)
        self.counts = dict.fromkeys(self.types, 0)
        self.joint_names_seen: set[str] = set()
        self.saw_gripper_joints = self.saw_arm_joints = False

    def handle(self, connection, log_ns: int, message) -> None:
        """Take one message into the stream(s) of its topic (one topic may feed several: /joint_states)."""
        topic, config = connection.topic, self.config
        self.counts[topic] += 1
        if topic in self.cameras:
            self._camera(topic, connection.msgtype == COMPRESSED_IMAGE, log_ns, message)
        if topic == config.pose_topic and not self.use_tf:
            self._pose(topic, log_ns, message)
        if self.use_tf and topic in (config.pose_topic, config.tf_static_topic):
            self._tf(topic, topic == config.tf_static_topic, log_ns, message)
        if topic == config.gripper_topic:
            self._gripper(log_ns, message)
        if self.joints is not None and topic == config.joint_topic:
            self._joints(log_ns, message)
        if topic == config.span_topic:
            self.span_marks.append((log_ns, bool(message.data)))
        if self.read_tasks and topic == config.task_topic:
            self.instructions.append((log_ns, str(message.data).strip()))

    def _camera(self, topic: str, compressed: bool, log_ns: int, message) -> None:
        builder = self.cameras[topic]
        stamp = builder.stamp(message.header, log_ns)
        previous, same = self.last_receive.get(topic, (-1, 0))
        rank = same if log_ns == previous else 0
        self.last_receive[topic] = (log_ns, rank + 1)
        builder.add(stamp, _image_size(message, compressed, self.path, topic), log_ns, rank)

    def _pose(self, topic: str, log_ns: int, message) -> None:
        stamp = self.pose.stamp(message.header, log_ns)
        base = self.config.base_frame
        if base and _frame(message.header.frame_id) != _frame(base):
            raise BagError(
                f"bag {self.path}, topic {topic}: the poses are in frame {message.header.frame_id!r}, not "
                f"--base_frame {base!r}: name their frame with --base_frame, or leave it empty to take the poses "
                "as they are"
            )
        _pose_value(self.pose, stamp, message.pose.position, message.pose.orientation)

    def _tf(self, topic: str, static: bool, log_ns: int, message) -> None:
        for transform in message.transforms:
            key = (_frame(transform.header.frame_id), _frame(transform.child_frame_id))
            t, r = transform.transform.translation, transform.transform.rotation
            if static:
                self.tf_static[key] = np.array([t.x, t.y, t.z, r.x, r.y, r.z, r.w], dtype=np.float64)
                continue
            if key not in self.tf_edges:
                label = f"{topic} {key[0]} -> {key[1]}"
                self.tf_edges[key] = _StreamBuilder(self.path, label, topic, "pose", self.header_stamps)
            builder = self.tf_edges[key]
            _pose_value(builder, builder.stamp(transform.header, log_ns), t, r)

    def _gripper(self, log_ns: int, message) -> None:
        config = self.config
        if self.gripper_is_float:
            value = float(message.data)
            width = value if config.gripper_value == "width" else None
            _gripper_value(self.gripper, log_ns, value, width, config.gripper_max_width)
            return
        self.joint_names_seen.update(message.name)
        positions = _joint_positions(message, config.gripper_joints)
        if positions is not None:
            self.saw_gripper_joints = True
            stamp = self.gripper.stamp(message.header, log_ns)
            _gripper_value(self.gripper, stamp, None, float(positions.sum()), config.gripper_max_width)

    def _joints(self, log_ns: int, message) -> None:
        self.joint_names_seen.update(message.name)
        positions = _joint_positions(message, self.config.arm_joints)
        if positions is None:
            return
        self.saw_arm_joints = True
        stamp = self.joints.stamp(message.header, log_ns)
        if np.isfinite(positions).all():
            self.joints.add(stamp, positions)
        else:
            self.joints.leave_out(stamp, "NaN or inf in the joint positions")

    def result(self) -> BagStreams:
        """The streams read, once the bag held every message its metadata lists and the joints asked for."""
        path, config = self.path, self.config
        for topic, count in self.counts.items():
            listed = self.reader.topics[topic].msgcount
            if count < listed:
                raise BagError(
                    f"bag {path}, topic {topic}: {count} of the {listed} messages its metadata lists could be read: "
                    f"{CORRUPT_FIX}"
                )
        if not self.gripper_is_float and not self.saw_gripper_joints:
            raise BagError(
                f"bag {path}, topic {config.gripper_topic}: no message has the finger joints "
                f"{list(config.gripper_joints)} (its joints: {sorted(self.joint_names_seen)}): name them with "
                "--gripper_joints"
            )
        if self.joints is not None and not self.saw_arm_joints:
            raise BagError(
                f"bag {path}, topic {config.joint_topic}: no message has the arm joints {list(config.arm_joints)} "
                f"(its joints: {sorted(self.joint_names_seen)}): name them with --arm_joints, or leave --joint_topic "
                "empty"
            )
        cameras = [self.cameras[topic].build(2) for topic in config.camera_topics]
        for stream, topic in zip(cameras, config.camera_topics):
            stream.compressed = self.types[topic] == COMPRESSED_IMAGE
        if self.use_tf:
            chain = _tf_chain(self.tf_edges, self.tf_static, config, path)
        else:
            chain = PoseChain([self.pose.build(7)], [(0, False)])
        builders = [*self.cameras.values(), self.gripper, *([self.joints] if self.joints else [])]
        builders += [*([self.pose] if self.pose else []), *self.tf_edges.values()]
        streams = BagStreams(
            path=path,
            cameras=cameras,
            pose=chain,
            gripper=self.gripper.build(1),
            joints=self.joints.build(7) if self.joints else None,
            spans=[],
            first_ns=0,
            notes=[note for builder in builders if (note := builder.note())],
            instructions=self.instructions,
        )
        everything = streams.streams()
        streams.first_ns = min(int(s.stamps[0]) for s in everything)
        last_ns = max(int(s.stamps[-1]) for s in everything)
        streams.spans = _spans(self.span_marks, streams.first_ns, last_ns, path, config.span_topic)
        return streams


def _gripper_value(builder: _StreamBuilder, stamp: int, closedness: float | None, width: float | None, max_width):
    value = closedness if width is None else 1.0 - width / max_width
    if not math.isfinite(value):
        builder.leave_out(stamp, "NaN or inf in the gripper value")
    else:
        builder.add(stamp, min(max(value, 0.0), 1.0))


def _frame(name: str) -> str:
    return name.lstrip("/")


def _tf_chain(edges, static_edges, config: ImportBagConfig, path: Path) -> PoseChain:
    """The chain of transforms from ``--base_frame`` to ``--ee_frame`` in the tf tree of the bag."""
    parent_of: dict[str, tuple[str, tuple[str, str]]] = {}
    for key in [*static_edges, *edges]:
        parent, child = key
        if child in parent_of and parent_of[child][0] != parent:
            raise BagError(
                f"bag {path}, topic {config.pose_topic}: frame {child!r} has two parents ({parent_of[child][0]!r} and "
                f"{parent!r}): the tf tree is inconsistent; record one robot description's transforms"
            )
        parent_of[child] = (parent, key)

    def up(frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in parent_of and len(chain) <= len(parent_of):
            chain.append(parent_of[chain[-1]][0])
        return chain

    base, ee = _frame(config.base_frame), _frame(config.ee_frame)
    from_base, from_ee = up(base), up(ee)
    common = next((frame for frame in from_ee if frame in from_base), None)
    if common is None:
        frames = sorted({f for key in [*static_edges, *edges] for f in key})
        raise BagError(
            f"bag {path}, topic {config.pose_topic}: no chain of transforms links {base!r} to {ee!r} in /tf and "
            f"{config.tf_static_topic}; frames in the bag: {frames}: name two of them with --base_frame and --ee_frame"
        )
    streams: list[Stream] = []
    stream_index: dict[tuple[str, str], int] = {}

    def link(key: tuple[str, str], inverted: bool) -> tuple[int | np.ndarray, bool]:
        if key in static_edges and key not in edges:
            return static_edges[key], inverted
        if key not in stream_index:
            stream_index[key] = len(streams)
            streams.append(edges[key].build(7))
        return stream_index[key], inverted

    links = [link(parent_of[frame][1], True) for frame in from_base[: from_base.index(common)]]
    links += [link(parent_of[frame][1], False) for frame in reversed(from_ee[: from_ee.index(common)])]
    return PoseChain(streams, links)


def _tf_frames_hint(reader, path: Path, config: ImportBagConfig) -> str:
    """The frames named in the first /tf and /tf_static messages (for an error that asks for two of them)."""
    frames: set[str] = set()
    connections = [c for c in reader.connections if c.topic in (config.pose_topic, config.tf_static_topic)]
    for count, (_, _, message) in enumerate(_messages(reader, path, connections)):
        for transform in message.transforms:
            frames.update((_frame(transform.header.frame_id), _frame(transform.child_frame_id)))
        if count >= 50:
            break
    return str(sorted(frames))


def _spans(marks: list[tuple[int, bool]], first_ns: int, last_ns: int, path: Path, topic: str) -> list[tuple[int, int]]:
    """Episode spans [start, end] (ns): the whole bag, or each stretch from a true to the next false on ``topic``."""
    if not topic:
        return [(first_ns, last_ns)]
    spans, start = [], None
    for time, on in marks:
        if on and start is None:
            start = time
        elif not on and start is not None:
            spans.append((start, time))
            start = None
    if start is not None:
        spans.append((start, max(last_ns, start)))
    if not spans:
        raise BagError(
            f"bag {path}, topic {topic}: no span is marked (no true message): mark each episode's start with true and "
            "its end with false, or leave --span_topic empty to import the whole bag as one episode"
        )
    return spans


# ------------------------------------------------------------------------------------------ frames


def decode_image(message, compressed: bool) -> np.ndarray:
    """An Image or CompressedImage message -> RGB uint8 ``[H, W, 3]`` (sizes and encodings checked by the first pass).

    Raises:
        ValueError: a buffer too short for its size, or compressed bytes Pillow cannot decode.
    """
    if compressed:
        from PIL import Image

        with Image.open(io.BytesIO(message.data.tobytes())) as image:
            return np.asarray(image.convert("RGB"))
    channels, _ = IMAGE_ENCODINGS[message.encoding]
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.asarray(message.data, dtype=np.uint8).reshape(-1)
    if step < width * channels or data.size < step * height:
        raise ValueError(f"{message.encoding} image of {height} x {width} with step {step} has {data.size} bytes")
    return rgb_pixels(message.encoding, height, width, step, data)


def read_frames(path: Path, cameras: list[Stream], picks: list[np.ndarray], progress: bool = True) -> list[np.ndarray]:
    """Second pass: decode the picked message of each camera for every frame.

    ``picks[i]`` int [T] indexes ``cameras[i]``'s messages; returns per camera uint8 [T, H, W, 3] (a message
    picked for several frames is decoded once). Reads only the stretch of the bag between the first and the last
    picked message.

    Raises:
        BagError: a picked message that cannot be read or decoded (a corrupt bag or image).
    """
    from tqdm import tqdm

    wanted: dict[tuple[str, int, int], list[tuple[int, int]]] = {}  # (topic, receive ns, rank) -> [(camera, frame)]
    for c, (stream, pick) in enumerate(zip(cameras, picks)):
        for frame, index in enumerate(pick):
            wanted.setdefault((stream.topic, int(stream.log_ns[index]), int(stream.rank[index])), []).append((c, frame))
    start = min(key[1] for key in wanted)
    stop = max(key[1] for key in wanted) + 1
    out = [
        np.zeros((len(pick), int(stream.values[pick[0], 0]), int(stream.values[pick[0], 1]), 3), np.uint8)
        for stream, pick in zip(cameras, picks)
    ]
    topics = {stream.topic: stream for stream in cameras}
    found = 0
    with open_bag(path) as reader:
        connections = [c for c in reader.connections if c.topic in topics]
        last_log: dict[str, tuple[int, int]] = {}
        total = sum(len(p) for p in picks)
        bar = tqdm(total=total, desc=f"frames {path.name}", unit="frame", disable=not progress or None, leave=False)
        with bar:
            iterator = reader.messages(connections=connections, start=start, stop=stop)
            while found < len(wanted):
                try:
                    connection, log_ns, raw = next(iterator)
                except StopIteration:
                    break
                except Exception as error:
                    raise BagError(f"bag {path}: reading it failed ({_reason(error)}): {CORRUPT_FIX}") from error
                previous_log, same = last_log.get(connection.topic, (-1, 0))
                rank = same if log_ns == previous_log else 0
                last_log[connection.topic] = (log_ns, rank + 1)
                targets = wanted.get((connection.topic, log_ns, rank))
                if not targets:
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # Pillow's warnings on odd JPEG markers
                        image = decode_image(
                            reader.deserialize(raw, connection.msgtype), topics[connection.topic].compressed
                        )
                except Exception as error:
                    raise BagError(
                        f"bag {path}, topic {connection.topic}: the image received at {_seconds(log_ns)} cannot be "
                        f"decoded ({_reason(error)}): {CORRUPT_FIX}"
                    ) from error
                found += 1
                for camera, frame in targets:
                    if image.shape != out[camera].shape[1:]:
                        raise BagError(
                            f"bag {path}, topic {connection.topic}: the image received at {_seconds(log_ns)} decodes "
                            f"to {image.shape[0]} x {image.shape[1]}, its message says "
                            f"{out[camera].shape[1]} x {out[camera].shape[2]}: {CORRUPT_FIX}"
                        )
                    out[camera][frame] = image
                bar.update(len(targets))
    if found < len(wanted):
        raise BagError(f"bag {path}: {len(wanted) - found} picked image(s) could not be read again: {CORRUPT_FIX}")
    return out
