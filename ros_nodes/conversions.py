"""ROS messages <-> numpy, with no node and no state: what the nodes translate, tested with real messages.

Conventions (the project's 7-D state, ``jepa_mpc_foundation/pose.py``):

- pose: ``geometry_msgs/PoseStamped`` position (m) and orientation quaternion (x, y, z, w) <->
  ``[x, y, z, rx, ry, rz]`` with extrinsic xyz Euler angles (``R = Rz @ Ry @ Rx``), converted by
  scipy's ``Rotation``: ``from_quat``/``as_quat`` use ROS's (x, y, z, w) order (scalar last), and
  ``"xyz"`` is scipy's name of extrinsic xyz. Published quaternions are canonical (w >= 0).
- gripper: the Franka hand's two finger joints each open 0 .. max_width / 2 (0.04 m), so the
  opening width is their sum, and closedness = 1 - width / max_width, clipped to [0, 1]
  (0 = fully open, 1 = closed). The inverse puts (1 - closedness) * max_width / 2 on each finger.
- image: ``sensor_msgs/Image`` in rgb8, bgr8, rgba8 or bgra8, any size <-> RGB uint8 ``[H, W, 3]``.
- planned path: the plan ``[H, 7]`` applied to the current state (``jepa_mpc_foundation.pose.apply_action``)
  -> ``nav_msgs/Path`` of H + 1 poses, for RViz.
- diagnostics: :class:`ros_nodes.diagnostics.Status` -> ``diagnostic_msgs/DiagnosticArray``.

Malformed messages raise :class:`ros_nodes.safety.InputRejected` with the reason the diagnostics count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from jepa_mpc_foundation.pose import apply_action
from ros_nodes.diagnostics import Status
from ros_nodes.safety import InputRejected, check_finite, decode_image, euler_xyz

QUATERNION_NORM_TOLERANCE = 1e-2  # a driver's float32 rounding passes; a zero or garbage quaternion does not
MAX_POSITION_M = 100.0
"""An end-effector further than this (m, on any axis) from the base frame's origin is a bad message, not a pose: the
planner computes in float32 (a 1e308 m pose overflowed inside it), and no arm reaches 100 m."""


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    sec = math.floor(seconds)
    return Time(sec=int(sec), nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))


def make_header(seconds: float, frame_id: str) -> Header:
    return Header(stamp=seconds_to_stamp(seconds), frame_id=frame_id)


def image_to_rgb(msg: Image, min_side: int = 1) -> np.ndarray:
    """``sensor_msgs/Image`` -> RGB uint8 ``[H, W, 3]``; ``InputRejected`` for an unusable image."""
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, min_side=min_side)


def rgb_to_image(frame: np.ndarray, stamp_s: float, frame_id: str) -> Image:
    """RGB uint8 ``[H, W, 3]`` -> ``sensor_msgs/Image`` (rgb8)."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be RGB uint8 [H, W, 3], got shape {frame.shape}")
    height, width, _ = frame.shape
    return Image(
        header=make_header(stamp_s, frame_id),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=frame.tobytes(),
    )


def pose_to_vector(msg: PoseStamped, base_frame: str = "") -> np.ndarray:
    """``geometry_msgs/PoseStamped`` -> ``[x, y, z, rx, ry, rz]`` float64.

    ``InputRejected``: ``nonfinite_pose`` (NaN/inf), ``pose_out_of_range`` (position further than
    :data:`MAX_POSITION_M` from the origin on an axis), ``bad_quaternion`` (norm off 1 by more than 1e-2),
    ``wrong_frame`` (``base_frame`` given and the header names another frame). At gimbal lock
    (pitch +-pi/2) yaw is 0 and roll carries the rotation about the vertical axis (scipy's choice;
    the angles give back the same rotation).
    """
    if base_frame and msg.header.frame_id != base_frame:
        raise InputRejected(
            "wrong_frame",
            f"pose is in frame {msg.header.frame_id!r}, expected {base_frame!r}; publish the end-effector pose in "
            "the robot base frame or set the safety.base_frame parameter",
        )
    p, o = msg.pose.position, msg.pose.orientation
    position = check_finite("nonfinite_pose", "pose position", [p.x, p.y, p.z])
    quaternion = check_finite("nonfinite_pose", "pose orientation", [o.x, o.y, o.z, o.w])
    if np.abs(position).max() > MAX_POSITION_M:  # per coordinate: a norm of 1e308 would overflow
        raise InputRejected(
            "pose_out_of_range",
            f"pose position {position.tolist()} lies more than {MAX_POSITION_M} m from the origin of the base frame "
            "on some axis: publish the end-effector pose in metres in the robot base frame",
        )
    norm = float(np.linalg.norm(quaternion))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise InputRejected(
            "bad_quaternion", f"pose orientation {quaternion.tolist()} has norm {norm:.4f}, expected a unit quaternion"
        )
    euler = euler_xyz(Rotation.from_quat(quaternion / norm))  # (x, y, z, w), as ROS orders it
    return np.concatenate([position, euler])


def vector_to_pose(pose: np.ndarray, stamp_s: float, frame_id: str) -> PoseStamped:
    """``[x, y, z, rx, ry, rz]`` (more entries are ignored) -> ``geometry_msgs/PoseStamped``."""
    pose = np.asarray(pose, dtype=np.float64)
    msg = PoseStamped(header=make_header(stamp_s, frame_id))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose[:3])
    qx, qy, qz, qw = Rotation.from_euler("xyz", pose[3:6]).as_quat(canonical=True)  # (x, y, z, w), w >= 0
    msg.pose.orientation.x, msg.pose.orientation.y = float(qx), float(qy)
    msg.pose.orientation.z, msg.pose.orientation.w = float(qz), float(qw)
    return msg


def joint_state_to_closedness(msg: JointState, finger_joints: tuple[str, ...], max_width: float) -> float:
    """Finger joint positions (m) -> gripper closedness in [0, 1]: ``1 - sum(positions) / max_width``."""
    names = list(msg.name)
    missing = [joint for joint in finger_joints if joint not in names]
    if missing or len(msg.position) != len(names):
        raise InputRejected(
            "gripper_joints_missing",
            f"gripper joint state has joints {names} with {len(msg.position)} positions; "
            f"expected {list(finger_joints)}. "
            "Set the gripper_joints parameter to the finger joint names of your robot",
        )
    positions = check_finite(
        "nonfinite_gripper", "finger positions", [msg.position[names.index(joint)] for joint in finger_joints]
    )
    return float(np.clip(1.0 - positions.sum() / max_width, 0.0, 1.0))


def closedness_to_finger_positions(closedness: float, n_fingers: int, max_width: float) -> list[float]:
    """Gripper closedness [0, 1] -> each finger's position (m): ``(1 - closedness) * max_width / n_fingers``."""
    width = (1.0 - float(np.clip(closedness, 0.0, 1.0))) * max_width
    return [width / n_fingers] * n_fingers


def plan_to_path(state: np.ndarray, plan: np.ndarray, stamp_s: float, frame_id: str) -> Path:
    """The end-effector path a plan leads to, for RViz: ``nav_msgs/Path`` of H + 1 poses.

    ``state`` [7] is the measured state the plan starts from, ``plan`` [H, 7] the planner's action
    sequence (before the safety limits, which only the first, executed step goes through); pose
    k + 1 is pose k moved by action k (``jepa_mpc_foundation.pose.apply_action``: translation added, rotation
    composed on the left), in float64.
    """
    states = [torch.as_tensor(np.asarray(state, dtype=np.float64))]
    for action in torch.as_tensor(np.asarray(plan, dtype=np.float64)):
        states.append(apply_action(states[-1], action))
    header = make_header(stamp_s, frame_id)
    path = Path(header=header)
    for pose in states:
        msg = vector_to_pose(pose.numpy(), stamp_s, frame_id)
        path.poses.append(msg)
    return path


def status_to_diagnostics(status: Status, name: str, hardware_id: str, stamp_s: float) -> DiagnosticArray:
    """A :class:`ros_nodes.diagnostics.Status` as the one entry of a ``diagnostic_msgs/DiagnosticArray``."""
    entry = DiagnosticStatus(
        level=bytes([status.level]),
        name=name,
        message=status.message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in status.values],
    )
    return DiagnosticArray(header=make_header(stamp_s, ""), status=[entry])
