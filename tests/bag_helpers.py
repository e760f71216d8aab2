"""Writing real rosbag2 bags (MCAP or sqlite3) with ``rosbags``' own writer, as a robot's recording would hold them.

:class:`BagRecorder` buffers messages and writes them in receive order on close. :func:`record_episode` publishes
one episode (frames at 4 fps, 7-D states, arm joints) the way a robot's drivers would: cameras at 12 Hz, the pose
at 40 Hz, joint states and a Float64 gripper at 20 Hz, ``/tf`` at 40 Hz and ``/tf_static`` once, each message
stamped a little before it is received, with the episode's own samples at its 4 fps frame times (stamped up to
2 ms early; the first and last exactly) and the messages between them interpolated (or, for the cameras, other
images), which an import on the 4 fps clock must never pick.
Used by tests/test_import_bag.py and bench/import_bag_speed.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation, Slerp

NS = 1_000_000_000
ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FINGER_JOINTS = ["panda_finger_joint1", "panda_finger_joint2"]
MAX_WIDTH = 0.08
# The tf tree of the recordings: world -> panda_link0 (static), world -> panda_hand (dynamic), panda_hand ->
# panda_hand_tcp (static). The pose of panda_hand_tcp in panda_link0 is the episode's state, so an import with
# --base_frame panda_link0 --ee_frame panda_hand_tcp composes an inverted link, a dynamic one and a static one.
WORLD_T_BASE = np.array([0.1, -0.2, 0.05, *Rotation.from_euler("z", 0.3).as_quat()])
HAND_T_TCP = np.array([0.0, 0.0, 0.1034, *Rotation.from_euler("z", -np.pi / 4).as_quat()])


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


class BagRecorder:
    """Messages for one bag, written on :meth:`close` sorted by receive time (ns)."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        self.path = Path(path)
        self.storage = storage
        self.store = _typestore()
        self.messages: list[tuple[int, int, str, str, object]] = []  # (receive ns, order, topic, type, message)

    def _types(self, name: str):
        return self.store.types[name]

    def header(self, stamp_ns: int, frame_id: str = ""):
        Header, Time = self._types("std_msgs/msg/Header"), self._types("builtin_interfaces/msg/Time")
        return Header(stamp=Time(sec=int(stamp_ns // NS), nanosec=int(stamp_ns % NS)), frame_id=frame_id)

    def add(self, topic: str, msgtype: str, message, receive_ns: int) -> None:
        self.messages.append((int(receive_ns), len(self.messages), topic, msgtype, message))

    def image(self, topic: str, stamp_ns: int, rgb: np.ndarray, receive_ns: int, encoding: str = "rgb8") -> None:
        """``rgb`` uint8 [H, W, 3] as a sensor_msgs/Image in ``encoding`` (rgb8 or bgr8)."""
        pixels = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
        height, width, _ = rgb.shape
        message = self._types("sensor_msgs/msg/Image")(
            header=self.header(stamp_ns, "camera"),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=0,
            step=width * 3,
            data=np.ascontiguousarray(pixels).reshape(-1),
        )
        self.add(topic, "sensor_msgs/msg/Image", message, receive_ns)

    def compressed(self, topic: str, stamp_ns: int, rgb: np.ndarray, receive_ns: int) -> None:
        """``rgb`` uint8 [H, W, 3] as a JPEG (quality 95) sensor_msgs/CompressedImage."""
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=95)
        message = self._types("sensor_msgs/msg/CompressedImage")(
            header=self.header(stamp_ns, "camera"),
            format="rgb8; jpeg compressed bgr8",
            data=np.frombuffer(buffer.getvalue(), dtype=np.uint8),
        )
        self.add(topic, "sensor_msgs/msg/CompressedImage", message, receive_ns)

    def pose(self, topic: str, stamp_ns: int, pose7: np.ndarray, receive_ns: int, frame_id="panda_link0") -> None:
        """``pose7`` [x, y, z, qx, qy, qz, qw] as a geometry_msgs/PoseStamped."""
        Pose, Point, Quaternion = (self._types(f"geometry_msgs/msg/{n}") for n in ("Pose", "Point", "Quaternion"))
        message = self._types("geometry_msgs/msg/PoseStamped")(
            header=self.header(stamp_ns, frame_id),
            pose=Pose(position=Point(*map(float, pose7[:3])), orientation=Quaternion(*map(float, pose7[3:]))),
        )
        self.add(topic, "geometry_msgs/msg/PoseStamped", message, receive_ns)

    def joint_state(self, topic: str, stamp_ns: int, names: list[str], positions, receive_ns: int) -> None:
        message = self._types("sensor_msgs/msg/JointState")(
            header=self.header(stamp_ns),
            name=list(names),
            position=np.asarray(positions, dtype=np.float64),
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )
        self.add(topic, "sensor_msgs/msg/JointState", message, receive_ns)

    def tf(self, topic: str, stamp_ns: int, transforms: list[tuple[str, str, np.ndarray]], receive_ns: int) -> None:
        """``transforms`` [(parent, child, [x, y, z, qx, qy, qz, qw])] as one tf2_msgs/TFMessage."""
        T, V, Q = (self._types(f"geometry_msgs/msg/{n}") for n in ("Transform", "Vector3", "Quaternion"))
        stamped = [
            self._types("geometry_msgs/msg/TransformStamped")(
                header=self.header(stamp_ns, parent),
                child_frame_id=child,
                transform=T(translation=V(*map(float, value[:3])), rotation=Q(*map(float, value[3:]))),
            )
            for parent, child, value in transforms
        ]
        self.add(topic, "tf2_msgs/msg/TFMessage", self._types("tf2_msgs/msg/TFMessage")(transforms=stamped), receive_ns)

    def scalar(self, topic: str, msgtype: str, value, receive_ns: int) -> None:
        """A std_msgs/Float64 or std_msgs/Bool (no header: its time is the receive time)."""
        self.add(topic, msgtype, self._types(msgtype)(data=value), receive_ns)

    def close(self) -> Path:
        """Write the bag (rosbags' Writer, rosbag2 version 9) and return its folder."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(self.path, version=9, storage_plugin=plugin) as writer:
            connections = {}
            for receive_ns, _, topic, msgtype, message in sorted(self.messages, key=lambda m: m[:2]):
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=self.store)
                writer.write(connections[topic], receive_ns, self.store.serialize_cdr(message, msgtype))
        return self.path


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Transforms [x, y, z, qx, qy, qz, qw]: a * b."""
    ra, rb = Rotation.from_quat(a[3:]), Rotation.from_quat(b[3:])
    return np.concatenate([a[:3] + ra.apply(b[:3]), (ra * rb).as_quat()])


def _inverse(a: np.ndarray) -> np.ndarray:
    r = Rotation.from_quat(a[3:]).inv()
    return np.concatenate([-r.apply(a[:3]), r.as_quat()])


def state_to_pose7(state: np.ndarray) -> np.ndarray:
    """7-D states [T, 7] (xyz, extrinsic xyz Euler, gripper) -> poses [T, 7] (xyz, quaternion x, y, z, w)."""
    state = np.asarray(state, dtype=np.float64)
    return np.concatenate([state[:, :3], Rotation.from_euler("xyz", state[:, 3:6]).as_quat()], axis=1)


def _between(pose7: np.ndarray, k: int, fraction: float) -> np.ndarray:
    """The pose a fraction of the way from frame k to frame k + 1 (position lerp, rotation slerp)."""
    slerp = Slerp([0.0, 1.0], Rotation.from_quat(pose7[k : k + 2, 3:]))
    position = (1 - fraction) * pose7[k, :3] + fraction * pose7[k + 1, :3]
    return np.concatenate([position, slerp([fraction]).as_quat()[0]])


def record_episode(
    recorder: BagRecorder,
    frames: dict[str, np.ndarray],
    state: np.ndarray,
    joints: np.ndarray,
    start_ns: int,
    fps: int = 4,
    compressed: tuple[str, ...] = (),
    bgr: tuple[str, ...] = (),
    seed: int = 0,
    skip: dict[str, tuple[float, float]] | None = None,
) -> None:
    """Publish one episode into ``recorder`` from ``start_ns`` on (frame k at ``start_ns + k / fps``).

    ``frames`` {topic: uint8 [T, H, W, 3]}, published at 3 x ``fps`` (the frame, then two inverted copies);
    ``state`` [T, 7] as /ee_pose (PoseStamped), /tf + /tf_static and the gripper (finger joints in /joint_states
    with the arm's ``joints`` [T, 7], and a Float64 closedness on /gripper); ``compressed`` / ``bgr`` name the
    camera topics published as JPEG CompressedImage / bgr8 Image. ``skip`` {topic: (from s, to s)} leaves a
    topic's messages out over a stretch of the episode (a gap). The first and last frames' messages are stamped
    exactly at their frame time, the others up to 2 ms before it; all are received 1-5 ms after their stamp.
    """
    rng = np.random.default_rng(seed)
    length = len(state)
    period = NS // fps
    pose7 = state_to_pose7(state)
    skip = skip or {}

    def stamped(k: int, offset_ns: int = 0) -> tuple[int, int]:
        """(stamp, receive time) of a message ``offset_ns`` after frame k; a frame's own sample up to 2 ms early."""
        early = int(rng.integers(0, 2_000_000)) if offset_ns == 0 and 0 < k < length - 1 else 0
        stamp = start_ns + k * period + offset_ns - early
        return stamp, stamp + int(rng.integers(1_000_000, 5_000_000))

    def skipped(topic: str, stamp: int) -> bool:
        if topic not in skip:
            return False
        low, high = skip[topic]
        return start_ns + low * NS <= stamp <= start_ns + high * NS

    recorder.tf(
        "/tf_static",
        start_ns,
        [("world", "panda_link0", WORLD_T_BASE), ("panda_hand", "panda_hand_tcp", HAND_T_TCP)],
        start_ns,
    )
    for k in range(length):
        last = k == length - 1
        for topic, video in frames.items():
            for m in range(1 if last else 3):
                stamp, receive = stamped(k, m * period // 3)
                image = video[k] if m == 0 else 255 - video[k]
                if skipped(topic, stamp):
                    continue
                if topic in compressed:
                    recorder.compressed(topic, stamp, image, receive)
                else:
                    recorder.image(topic, stamp, image, receive, "bgr8" if topic in bgr else "rgb8")
        for m in range(1 if last else 10):
            stamp, receive = stamped(k, m * period // 10)
            pose = pose7[k] if m == 0 else _between(pose7, k, m / 10)
            if not skipped("/ee_pose", stamp):
                recorder.pose("/ee_pose", stamp, pose, receive)
            world_hand = _compose(_compose(WORLD_T_BASE, pose), _inverse(HAND_T_TCP))
            if not skipped("/tf", stamp):
                recorder.tf("/tf", stamp, [("world", "panda_hand", world_hand)], receive)
        for m in range(1 if last else 5):
            stamp, receive = stamped(k, m * period // 5)
            fraction = m / 5
            closedness = state[k, 6] if m == 0 else (1 - fraction) * state[k, 6] + fraction * state[k + 1, 6]
            arm = joints[k] if m == 0 else (1 - fraction) * joints[k] + fraction * joints[k + 1]
            finger = (1.0 - float(closedness)) * MAX_WIDTH / 2
            if not skipped("/joint_states", stamp):
                names = ARM_JOINTS + FINGER_JOINTS
                recorder.joint_state(
                    "/joint_states", stamp, names, [*np.asarray(arm, np.float64), finger, finger], receive
                )
            if not skipped("/gripper", stamp):
                # No header: the receive time is its time, so it is received at the stamp the others carry.
                recorder.scalar("/gripper", "std_msgs/msg/Float64", float(closedness), stamp)
