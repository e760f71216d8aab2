"""Recording what the robot did: one run as an MCAP file that Foxglove opens and ``jepa-mpc import-bag`` reads.

A :class:`RunRecorder` writes one run (the planner node from its start to its exit, one ``jepa-mpc eval``
episode) to one ``.mcap`` file, the format and profile rosbag2 writes (``ros2``): every topic a channel whose
schema is its ROS 2 message definition with the definitions it uses (``ros2msg``, as rosbag2 writes and Foxglove
reads it), and every message in CDR. Both come from rosbags' type store, the one ``import-bag`` reads with: an
rclpy message is copied field by field into the store's class and serialized there (rclpy's own
``serialize_message`` pads a message that ends in an empty sequence, a JointState without velocities, with 8
bytes that rosbags refuses as a size mismatch). So Foxglove shows it with
no set-up, ``ros2 bag info/play run.mcap`` take it (Jazzy and later open a bare .mcap file), and rosbags'
``AnyReader`` / ``Reader`` (what ``jepa-mpc import-bag`` reads with) and the mcap library read it back.

Topics (:data:`TOPICS`), named as the planner node's topics are without remapping or namespace, whatever a
robot remaps them to, so that every recording reads alike:

=============================== ============================== =============================================
topic                           type                           what
=============================== ============================== =============================================
``/image``, ``/wrist_image``    sensor_msgs/msg/Image          camera frames as received (eval: rgb8)
``/ee_pose``                    geometry_msgs/msg/PoseStamped  end-effector pose, base frame
``/joint_states``               sensor_msgs/msg/JointState     joint states as received (eval: the two
                                                               finger joints, from the gripper closedness)
``/goal_image``                 sensor_msgs/msg/Image          the goal images in order (frame ``goal_1``,
                                                               ``goal_2``...), again each time they change
``/goal_text``                  std_msgs/msg/String            the goal instruction taken ("touch the red
                                                               cube"); an empty one once it is no longer in
                                                               force (other goals, or refused by the model)
``/target_pose``                geometry_msgs/msg/PoseStamped  commanded absolute pose
``/gripper_command``            std_msgs/msg/Float64           commanded closedness, 0 open .. 1 closed
``/planner_node/planned_path``  nav_msgs/msg/Path              the plan applied to the measured pose
``/planner_node/energy``,       std_msgs/msg/Float64           one per plan
``.../energy_spread``,
``.../planning_latency``,
``.../surprise``
``/diagnostics``                diagnostic_msgs/msg/           the planner's status
                                DiagnosticArray
=============================== ============================== =============================================

Times: each message keeps its own ``header.stamp`` (acquisition time for sensors); the MCAP log time is the
recorder's ``clock`` when the message was written (the node: its ROS clock, i.e. receive time; eval: sim
time from 0 at the episode's reset), never going backwards (rosbags refuses an unindexed file whose log
times do).

A crash leaves a readable file: messages are written unchunked and each is flushed to the operating system
as it is written, so a process killed at any moment (SIGKILL, the out-of-memory killer) leaves every message
written before it, plus at most one partial record at the end (not fsync'ed: a power cut may lose the last
seconds). A clean close (:meth:`RunRecorder.close`, the end of a ``with``, Ctrl-C through the node's or the
evaluation's shutdown) adds the summary and footer. A file without them opens in the mcap library's
streaming reader; :func:`read_recording` reads it up to its last complete message, and
:func:`repair_recording` (``jepa-mpc repair-recording``) writes a complete copy, which rosbags (and so
import-bag) needs: it reads the footer first.
"""

from __future__ import annotations

import array
import functools
import importlib
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from mcap.exceptions import McapError
from mcap.records import Channel, Footer, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer
from nav_msgs.msg import Path as PathMsg
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String

from jepa_mpc_foundation.ros_messages import FRANKA_FINGER_JOINTS, FRANKA_MAX_WIDTH
from ros_nodes import conversions
from ros_nodes.config import SimNodeConfig
from ros_nodes.diagnostics import Status

PROFILE = "ros2"  # the MCAP profile rosbag2 writes and rosbags requires
SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
SUFFIX = ".mcap"

IMAGE, WRIST_IMAGE, GOAL_IMAGE, GOAL_TEXT = "/image", "/wrist_image", "/goal_image", "/goal_text"
EE_POSE, JOINT_STATES = "/ee_pose", "/joint_states"
TARGET_POSE, GRIPPER_COMMAND = "/target_pose", "/gripper_command"
PLANNED_PATH = "/planner_node/planned_path"
ENERGY, ENERGY_SPREAD = "/planner_node/energy", "/planner_node/energy_spread"
PLANNING_LATENCY, SURPRISE = "/planner_node/planning_latency", "/planner_node/surprise"
DIAGNOSTICS = "/diagnostics"

TOPICS: dict[str, type] = {
    IMAGE: Image,
    WRIST_IMAGE: Image,
    EE_POSE: PoseStamped,
    JOINT_STATES: JointState,
    GOAL_IMAGE: Image,
    GOAL_TEXT: String,
    TARGET_POSE: PoseStamped,
    GRIPPER_COMMAND: Float64,
    PLANNED_PATH: PathMsg,
    ENERGY: Float64,
    ENERGY_SPREAD: Float64,
    PLANNING_LATENCY: Float64,
    SURPRISE: Float64,
    DIAGNOSTICS: DiagnosticArray,
}
"""Every recorded topic and its message type (module docstring)."""
RECEIVED = {"image": IMAGE, "wrist_image": WRIST_IMAGE, "ee_pose": EE_POSE, "joint_states": JOINT_STATES}
"""The planner node's input topics (relative, before remapping) -> the topic their messages are recorded on."""

# The simulated robot's frames, as the sim node names them (its parameters' defaults).
BASE_FRAME = SimNodeConfig.base_frame
CAMERA_FRAMES = {IMAGE: SimNodeConfig.camera_frame, WRIST_IMAGE: SimNodeConfig.wrist_camera_frame}
MESSAGE_DEFINITIONS_STORE = "ROS2_JAZZY"
"""rosbags' type store the schemas and the CDR come from; the recorded types are the same in every ROS 2
distribution since Humble (tests/test_run_recording.py reads the bytes back with the installed rclpy types)."""


def type_name(message_type: type) -> str:
    """An rclpy message class's ROS 2 name: ``sensor_msgs.msg.Image`` -> ``sensor_msgs/msg/Image``."""
    return f"{message_type.__module__.split('.')[0]}/msg/{message_type.__name__}"


def message_type(name: str) -> type:
    """The rclpy message class of a ROS 2 type name (``sensor_msgs/msg/Image``); ValueError if not installed."""
    package, kind, cls = name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), cls)
    except (ImportError, AttributeError):
        raise ValueError(f"message type {name} is not installed (its ROS message package is missing)") from None


@functools.cache
def type_store():
    """rosbags' type store of :data:`MESSAGE_DEFINITIONS_STORE` (built once: it takes a fraction of a second)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(getattr(Stores, MESSAGE_DEFINITIONS_STORE))


@functools.cache
def message_definition(name: str) -> str:
    """The ``ros2msg`` schema text of type ``name``: its definition, then each type it uses after a separator
    line (``MSG: std_msgs/Header``), as rosbag2 writes it."""
    return type_store().generate_msgdef(name, ros_version=2)[0]


def _in_store(message):
    """An rclpy message as the type store's message of the same type, field by field (nested messages, lists of
    them, numeric sequences as numpy arrays without a copy, a ``byte`` as its number)."""
    values = {}
    for name, kind in message.get_fields_and_field_types().items():
        value = getattr(message, name)
        if hasattr(value, "get_fields_and_field_types"):
            value = _in_store(value)
        elif isinstance(value, list) and value and hasattr(value[0], "get_fields_and_field_types"):
            value = [_in_store(item) for item in value]
        elif isinstance(value, array.array):
            value = np.frombuffer(value, dtype=value.typecode)
        elif isinstance(value, bytes) and kind == "octet":
            value = value[0]
        values[name] = value
    return type_store().types[type_name(type(message))](**values)


def serialize(message) -> bytes:
    """An rclpy message in CDR (little endian), exactly as long as its content (see the module docstring)."""
    return bytes(type_store().serialize_cdr(_in_store(message), type_name(type(message))))


def _nanoseconds(seconds: float) -> int:
    return max(0, int(round(seconds * 1e9)))


def run_file(record_path: str | os.PathLike, start_s: float | None = None) -> Path:
    """Where a run recorded to ``record_path`` goes: the file itself when it ends in ``.mcap``, else
    ``run_<UTC time>.mcap`` in that folder (a new file at each start; ``start_s`` default now)."""
    path = Path(record_path)
    if path.suffix == SUFFIX:
        return path
    start_s = time.time() if start_s is None else start_s
    name = time.strftime("run_%Y%m%d_%H%M%S", time.gmtime(start_s)) + f"_{int(start_s * 1000) % 1000:03d}{SUFFIX}"
    return path / name


class RunRecorder:
    """One run written to an MCAP file as it happens (module docstring); thread-safe, each message flushed.

    ``path`` None records nothing (every method does nothing), so a caller need not check whether recording
    is on. ``overwrite`` False refuses an existing file (ValueError, a user error: a robot's recording is not
    replaced by a restart); ``clock`` gives the log time in seconds. A write that fails (disk full) is
    reported once through ``on_error`` and ends the recording: the file keeps what was written before, and
    the robot goes on (a recording never stops the robot).
    """

    def __init__(
        self,
        path: str | os.PathLike | None,
        overwrite: bool = False,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.clock, self.on_error = clock, on_error
        self.counts: Counter[str] = Counter()  # messages written per topic
        self.error: str | None = None  # why the recording ended early
        self._lock = threading.Lock()
        self._channels: dict[str, int] = {}
        self._schemas: dict[str, int] = {}
        self._last_log_ns = 0
        self._writing = False
        self._left_out_topics: set[str] = set()
        self._instruction_recorded = False  # the last /goal_text written holds an instruction
        self._file = self._writer = None
        if self.path is None:
            return
        if self.path.suffix != SUFFIX:
            raise ValueError(f"a run recording is an MCAP file: name it <name>{SUFFIX}, got {self.path}")
        if self.path.is_dir():
            raise ValueError(f"recording {self.path} is a directory; give a file <name>{SUFFIX} or a folder")
        if self.path.exists() and not overwrite:
            raise ValueError(
                f"recording {self.path} exists already: move it away, or record to a folder, where each run "
                f"gets a new run_<UTC time>{SUFFIX}"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        # Unchunked: each record reaches the file when written (a chunk would sit in memory until full).
        self._writer = Writer(self._file, use_chunking=False, compression=CompressionType.NONE)
        self._writer.start(profile=PROFILE, library="jepa_mpc ros_nodes.run_recording")
        self._writer.flush()
        self._complete_end = self._file.tell()  # where the last complete message ends

    @classmethod
    def for_run(cls, record_path: str, **kwargs) -> RunRecorder:
        """The recorder of a run to ``record_path`` (:func:`run_file`); empty: one that records nothing."""
        return cls(run_file(record_path) if record_path else None, **kwargs)

    @property
    def recording(self) -> bool:
        """Writing to a file (on, not closed, no failed write)."""
        return self._writer is not None and self.error is None

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def write(self, topic: str, message) -> bool:
        """Record ``message`` (an rclpy message of :data:`TOPICS` [topic]) at the clock's time; False if not
        written (recording off or ended)."""
        expected = TOPICS.get(topic)
        if expected is None:
            raise ValueError(f"topic {topic!r} is not recorded; the recorded topics are {sorted(TOPICS)}")
        if not isinstance(message, expected):
            raise TypeError(f"{topic} records {type_name(expected)}, got {type(message).__name__}")
        if not self.recording:
            return False
        try:
            data = serialize(message)
        except Exception as exc:  # noqa: BLE001  such a message is left out; the robot and the recording go on
            self._left_out(topic, exc)
            return False
        log_ns = _nanoseconds(self.clock())
        with self._lock:
            if not self.recording:
                return False
            self._writing = True  # until the message is flushed: still set, a Ctrl-C (KeyboardInterrupt) cut it short
            try:
                channel = self._channel(topic, expected)
                log_ns = self._last_log_ns = max(log_ns, self._last_log_ns)
                self._writer.add_message(channel, log_ns, data, log_ns, sequence=self.counts[topic])
                self._writer.flush()  # to the OS: a killed process loses nothing written before
                self._complete_end = self._file.tell()
            except OSError as exc:
                self._fail(f"recording to {self.path} stopped: {exc}; the file holds the run up to here")
                return False
            self.counts[topic] += 1  # (recounted from the file if an interrupt comes before the next line)
            self._writing = False
        return True

    def _channel(self, topic: str, message_type: type) -> int:
        """The channel id of ``topic``, registering its schema and channel (written at once) on first use."""
        if topic not in self._channels:
            name = type_name(message_type)
            if name not in self._schemas:
                definition = message_definition(name).encode()
                self._schemas[name] = self._writer.register_schema(name, SCHEMA_ENCODING, definition)
            self._channels[topic] = self._writer.register_channel(topic, MESSAGE_ENCODING, self._schemas[name])
        return self._channels[topic]

    def _left_out(self, topic: str, exc: Exception) -> None:
        """Report (once per topic) a message that could not be serialized."""
        with self._lock:
            first = topic not in self._left_out_topics
            self._left_out_topics.add(topic)
        if first and self.on_error is not None:
            self.on_error(
                f"a {topic} message could not be recorded ({type(exc).__name__}: {exc}); such messages are left "
                f"out of {self.path}, the rest is recorded"
            )

    def _fail(self, reason: str) -> None:
        self.error = reason
        if self.on_error is not None:
            self.on_error(reason)

    def close(self) -> None:
        """Write the summary and footer and close the file; idempotent. A run that recorded no message (a node
        that failed to start) leaves no file, so that the same file name can be given again.

        After a write that an exception (Ctrl-C in the writing thread) cut short, the file is cut back to the
        last complete message and rewritten complete (:func:`repair_recording`); after a failed write (disk
        full) it is left as it is, readable by :func:`read_recording`.
        """
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is None:
                return
            interrupted = self._writing and self.error is None
            try:
                if self.error is None and not interrupted:
                    writer.finish()
            except OSError as exc:
                self._fail(f"closing the recording {self.path} failed: {exc}; repair it with jepa-mpc repair-recording")
            finally:
                self._file.close()
            if interrupted:
                self._complete_after_interruption()
            elif not self.counts and self.error is None:
                self.path.unlink(missing_ok=True)

    def _complete_after_interruption(self) -> None:
        """Cut the file back to its last complete message and rewrite it with a summary and footer."""
        repaired = self.path.with_name(f"{self.path.stem}.closing{SUFFIX}")
        try:
            os.truncate(self.path, self._complete_end)
            repaired.unlink(missing_ok=True)
            repair_recording(self.path, repaired)
            os.replace(repaired, self.path)
            self.counts = Counter(message.topic for message in read_recording(self.path))
        except OSError as exc:
            self._fail(f"closing the recording {self.path} failed: {exc}; repair it with jepa-mpc repair-recording")

    # ------------------------------------------------------------------ from numpy (what eval records)
    def record_image(self, topic: str, rgb: np.ndarray, stamp_s: float, frame_id: str | None = None) -> None:
        """An RGB uint8 ``[H, W, 3]`` frame as ``sensor_msgs/Image`` (rgb8) on ``topic``."""
        if self.recording:
            self.write(topic, conversions.rgb_to_image(rgb, stamp_s, frame_id or CAMERA_FRAMES.get(topic, "")))

    def record_goals(self, images: Sequence[np.ndarray], stamp_s: float, instruction: str | None = None) -> None:
        """The goals now in force: the images in order on ``/goal_image``, frames ``goal_1``, ``goal_2``...
        (stamped ``stamp_s``), then the goal ``instruction`` on ``/goal_text``. With no instruction (None), an
        empty ``/goal_text`` only if the last one recorded held one: its instruction is no longer in force."""
        if not self.recording:
            return
        for index, image in enumerate(images):
            self.write(GOAL_IMAGE, conversions.rgb_to_image(image, stamp_s, f"goal_{index + 1}"))
        if instruction is not None or self._instruction_recorded:
            self.write(GOAL_TEXT, String(data=instruction or ""))
            self._instruction_recorded = bool(instruction)

    def record_state(
        self,
        state: np.ndarray,
        stamp_s: float,
        frame_id: str = BASE_FRAME,
        finger_joints: tuple[str, ...] = FRANKA_FINGER_JOINTS,
        max_width: float = FRANKA_MAX_WIDTH,
    ) -> None:
        """A 7-D state as the robot publishes it: ``/ee_pose`` and ``/joint_states`` with the finger joints
        (each ``(1 - closedness) * max_width / fingers``: :func:`ros_nodes.conversions.joint_state_to_closedness`
        reads the closedness back)."""
        if not self.recording:
            return
        self.write(EE_POSE, conversions.vector_to_pose(state, stamp_s, frame_id))
        fingers = conversions.closedness_to_finger_positions(float(state[6]), len(finger_joints), max_width)
        joints = JointState(header=conversions.make_header(stamp_s, ""), name=list(finger_joints), position=fingers)
        self.write(JOINT_STATES, joints)

    def record_command(self, target: np.ndarray, stamp_s: float, frame_id: str = BASE_FRAME) -> None:
        """A 7-D absolute target: ``/gripper_command`` (its closedness), then ``/target_pose``, as the node sends."""
        if self.recording:
            self.write(GRIPPER_COMMAND, Float64(data=float(target[6])))
            self.write(TARGET_POSE, conversions.vector_to_pose(target, stamp_s, frame_id))

    def record_plan(self, state: np.ndarray, plan: np.ndarray, stamp_s: float, frame_id: str = BASE_FRAME) -> None:
        """The plan ``[H, 7]`` from ``state`` as ``/planner_node/planned_path`` (H + 1 poses)."""
        if self.recording:
            self.write(PLANNED_PATH, conversions.plan_to_path(state, plan, stamp_s, frame_id))

    def record_values(
        self,
        energy: float | None = None,
        energy_spread: float | None = None,
        planning_latency: float | None = None,
        surprise: float | None = None,
    ) -> None:
        """A plan's numbers on their ``std_msgs/Float64`` topics; None (unknown) is not written."""
        values = {ENERGY: energy, ENERGY_SPREAD: energy_spread, PLANNING_LATENCY: planning_latency, SURPRISE: surprise}
        for topic, value in values.items():
            if value is not None and self.recording:
                self.write(topic, Float64(data=float(value)))

    def record_tick(self, gripper: Float64, target: PoseStamped, path: PathMsg, step) -> None:
        """What the planner node sends at a commanding tick: the gripper command, the target pose, the planned path,
        and the energy, spread, latency and surprise of ``step`` (a :class:`planner.mpc.MPCStep`)."""
        if self.recording:
            self.write(GRIPPER_COMMAND, gripper)
            self.write(TARGET_POSE, target)
            self.write(PLANNED_PATH, path)
            self.record_values(step.energy, step.energy_spread, step.latency_s, step.surprise)

    def record_status(self, status: Status, name: str, stamp_s: float, hardware_id: str = "jepa_mpc") -> None:
        """A :class:`ros_nodes.diagnostics.Status` as ``/diagnostics``."""
        if self.recording:
            self.write(DIAGNOSTICS, conversions.status_to_diagnostics(status, name, hardware_id, stamp_s))


# ---------------------------------------------------------------------- reading
@dataclass(frozen=True)
class RecordedMessage:
    """One message of a recording, as stored: topic, ROS 2 type, schema text, log time and CDR bytes."""

    topic: str
    type_name: str
    schema: str
    log_time_ns: int
    publish_time_ns: int
    sequence: int
    data: bytes

    def decode(self):
        """The rclpy message (the installed type of :attr:`type_name`)."""
        return deserialize_message(self.data, message_type(self.type_name))


def read_recording(path: str | os.PathLike) -> Iterator[RecordedMessage]:
    """Every complete message of a recording, in file order, also of one cut short by a killed process.

    Reads the records one after the other (the mcap library's stream reader) and stops at the end of the
    file or at the partial record a killed writer left there: the messages before it are all there is.
    """
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    with open(path, "rb") as stream:
        records = StreamReader(stream).records
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except (McapError, struct.error, ValueError):  # the partial last record (EndOfFile is an McapError)
                return
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                channel = channels[record.channel_id]
                schema = schemas[channel.schema_id]
                yield RecordedMessage(
                    channel.topic,
                    schema.name,
                    schema.data.decode(),
                    record.log_time,
                    record.publish_time,
                    record.sequence,
                    record.data,
                )
            elif isinstance(record, Footer):
                return


def recording_is_complete(path: str | os.PathLike) -> bool:
    """Whether the file ends with an MCAP footer and magic (closed cleanly), as rosbags needs to open it."""
    magic = b"\x89MCAP0\r\n"
    with open(path, "rb") as stream:
        head = stream.read(len(magic))
        stream.seek(0, os.SEEK_END)
        if head != magic or stream.tell() < 2 * len(magic) + 37:
            return False
        stream.seek(-(37), os.SEEK_END)
        tail = stream.read()
    return tail[0] == 0x02 and tail[-8:] == magic  # footer opcode, then the closing magic


def repair_recording(path: str | os.PathLike, out: str | os.PathLike) -> int:
    """Write the complete messages of recording ``path`` (one cut short) to a closed, complete file ``out``.

    Returns the number of messages written. Schemas, channels and times are kept; ``out`` must not exist.
    """
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} exists already: give a new file name for the repaired recording")
    out.parent.mkdir(parents=True, exist_ok=True)
    schemas: dict[str, int] = {}
    channels: dict[str, int] = {}
    count = 0
    with open(out, "xb") as stream:
        writer = Writer(stream, use_chunking=False, compression=CompressionType.NONE)
        writer.start(profile=PROFILE, library="jepa_mpc ros_nodes.run_recording (repaired)")
        for message in read_recording(path):
            if message.type_name not in schemas:
                schemas[message.type_name] = writer.register_schema(
                    message.type_name, SCHEMA_ENCODING, message.schema.encode()
                )
            if message.topic not in channels:
                channels[message.topic] = writer.register_channel(
                    message.topic, MESSAGE_ENCODING, schemas[message.type_name]
                )
            writer.add_message(
                channels[message.topic], message.log_time_ns, message.data, message.publish_time_ns, message.sequence
            )
            count += 1
        writer.finish()
    return count


@dataclass
class RepairConfig:
    """``jepa-mpc repair-recording RUN.mcap [--out FIXED.mcap]``."""

    recording: str = field(metadata={"help": "a run recording cut short (the process was killed)", "positional": True})
    out: str = field(
        default="",
        metadata={"help": f"the complete copy to write; empty: <recording>.repaired{SUFFIX} beside it"},
    )


def repair(config: RepairConfig) -> None:
    """``jepa-mpc repair-recording``: write the complete copy and say where, with how many messages."""
    source = Path(config.recording)
    if not source.is_file():
        raise FileNotFoundError(f"recording {source} does not exist")
    out = Path(config.out) if config.out else source.with_name(f"{source.stem}.repaired{SUFFIX}")
    count = repair_recording(source, out)
    state = "was complete" if recording_is_complete(source) else "was cut short"
    print(f"{source} {state}: {count} complete messages written to {out}")
