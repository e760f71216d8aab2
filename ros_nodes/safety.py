"""Input and command safety for running the planner on a robot: pure Python, no ROS.

The ROS planner node (``ros_nodes/planner_node.py``) puts every message and every command through
this module, so the rules are tested without a ROS graph:

- :func:`decode_image` turns raw image fields (encoding, size, step, bytes) into RGB uint8
  ``[H, W, 3]`` or rejects them (unsupported encoding, inconsistent or too small size).
- :func:`check_finite` rejects NaN/inf poses and gripper readings.
- :class:`InputGuard` holds the latest valid sample of each input (image, wrist image, pose, gripper,
  goal) and decides whether a command may be computed now: every input the model needs (the wrist
  image only for a two-view model, :meth:`InputGuard.set_views`) present and, except the goal, fresh
  (its stamp within ``stale_timeout_s`` of now). A malformed message *clears* its input, so the
  planner never falls back on an older frame after a bad one.
- :func:`planner_frame` tiles the two camera images for a two-view model; :func:`check_goal_views`
  refuses a goal image that holds another number of views than the model plans from.
- :class:`CommandGuard` turns the planner's 7-D action into an absolute target that moves at most
  ``max_step`` / ``max_rotation_step`` from the current pose and lies inside the workspace box;
  its :meth:`CommandGuard.check_reachable`, called before planning, refuses a pose from which no
  such target exists (further than ``max_step`` from the box), so nothing is planned in vain.
- :class:`RejectionCounter` counts every rejection by reason and tells the caller which reasons are
  new, so each reason is logged once (not at every control tick) and every one is counted.

Every refusal is an :class:`InputRejected` carrying a short machine-readable ``reason`` (the key in
the diagnostics' counts, one of :data:`REASONS`) and a human ``detail`` that says what to fix.
Poses follow ``jepa_mpc_foundation/pose.py``: ``[x, y, z, rx, ry, rz, g]`` (m, extrinsic xyz Euler in rad,
gripper closedness in [0, 1]); rotations are scipy ``Rotation`` objects, ``"xyz"`` being scipy's
name of extrinsic xyz, and a target's rotation is ``R_delta @ R`` as in ``jepa_mpc_foundation.pose.apply_action``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from jepa_mpc_foundation.pose import ACTION_DIM, STATE_DIM
from jepa_mpc_foundation.ros_messages import COLOUR_ENCODINGS, rgb_pixels

REASONS: dict[str, str] = {
    "no_image": "no camera image received yet",
    "no_wrist_image": "no wrist camera image received yet (a two-view model plans from both cameras)",
    "no_pose": "no end-effector pose received yet",
    "no_gripper": "no gripper joint state received yet",
    "no_goal": "no goal image or goal instruction received yet",
    "stale_image": "the latest camera image is older than the stale timeout",
    "stale_wrist_image": "the latest wrist camera image is older than the stale timeout",
    "view_mismatch": "the two camera views differ in size, or the goal image does not hold the model's views",
    "stale_pose": "the latest end-effector pose is older than the stale timeout",
    "stale_gripper": "the latest gripper joint state is older than the stale timeout",
    "future_stamp": "a message is stamped further in the future than the stale timeout (clock skew)",
    "awaiting_new_data": "no image or pose stamped after the previous command yet (the planner outpaced the sensors)",
    "bad_encoding": "image encoding not supported",
    "bad_image_size": "image size, step and data length do not agree, or the image is too small",
    "nonfinite_pose": "pose with NaN or inf",
    "pose_out_of_range": "pose position implausibly far from the base frame (e.g. 1e308 m)",
    "bad_quaternion": "pose orientation quaternion is not unit length",
    "wrong_frame": "pose expressed in another frame than the base frame",
    "gripper_joints_missing": "gripper joint state without the configured finger joints",
    "nonfinite_gripper": "gripper joint state with NaN or inf",
    "nonfinite_command": "the planner returned NaN or inf",
    "pose_outside_workspace": "the robot is further than one step outside the workspace box (refused before planning)",
    "planner_error": "the planner raised an exception",
    "goal_text_refused": "the goal instruction was refused (no words, naming nothing the model knows, not fitting the "
    "scene in view, or a model that reads no instructions)",
}
"""Every rejection reason and what it means; the keys are what diagnostics count."""

REFUSALS = frozenset({"goal_text_refused"})
"""Reasons for a well-formed message refused for what it says (not malformed): the causes name them so."""
INPUTS = ("image", "wrist_image", "pose", "gripper", "goal")
FRESHNESS_CHECKED = ("image", "wrist_image", "pose", "gripper")  # the goal is latched: it may be old on purpose
AFTER_COMMAND_CHECKED = ("image", "wrist_image", "pose")  # must show the effect of the previous command
VIEW_IMAGES = ("image", "wrist_image")  # a model with V views plans from the first V, side by side


class InputRejected(ValueError):
    """A message or command refused for ``reason`` (a key of :data:`REASONS`), with a ``detail`` for the log.

    ``cause``: the earlier rejection behind this one, e.g. the ``bad_encoding`` image that left a
    tick with ``no_image``; diagnostics name it, since "no image" alone hides a camera that sends
    the wrong encoding.
    """

    def __init__(self, reason: str, detail: str, cause: InputRejected | None = None) -> None:
        if reason not in REASONS:
            raise KeyError(f"unknown rejection reason {reason!r}; add it to ros_nodes.safety.REASONS")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.cause = cause


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of what the planner may command and of the data it may command from."""

    stale_timeout_s: float = field(
        default=0.5, metadata={"help": "max age (s) of the image, pose and gripper stamps when a command is computed"}
    )
    workspace_low: tuple[float, float, float] = field(
        default=(0.3, -0.3, 0.02),
        metadata={"help": "lower corner (m, base frame) of the box every target lies in", "metavar": "X Y Z"},
    )
    workspace_high: tuple[float, float, float] = field(
        default=(0.7, 0.3, 0.45), metadata={"help": "upper corner (m, base frame) of that box", "metavar": "X Y Z"}
    )
    max_step: float = field(default=0.05, metadata={"help": "max distance (m) of a target from the current position"})
    max_rotation_step: float = field(
        default=0.3, metadata={"help": "max angle (rad) of a target's rotation from the current orientation"}
    )
    min_image_side: int = field(default=16, metadata={"help": "images with a smaller height or width are rejected"})
    base_frame: str = field(
        default="panda_link0",
        metadata={"help": "frame_id the pose must carry and the targets are sent in; empty = accept any frame"},
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "workspace_low", tuple(float(v) for v in self.workspace_low))
        object.__setattr__(self, "workspace_high", tuple(float(v) for v in self.workspace_high))
        if not (math.isfinite(self.stale_timeout_s) and self.stale_timeout_s > 0):
            raise ValueError(f"safety.stale_timeout_s must be a finite number > 0 s, got {self.stale_timeout_s!r}")
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ValueError(
                "safety.workspace_low/high must have 3 entries (x, y, z), "
                f"got {self.workspace_low} and {self.workspace_high}"
            )
        if not all(
            math.isfinite(lo) and math.isfinite(hi) and lo < hi
            for lo, hi in zip(self.workspace_low, self.workspace_high)
        ):
            raise ValueError(
                f"safety.workspace_low {self.workspace_low} must be finite and below workspace_high "
                f"{self.workspace_high} on every axis"
            )
        if not (math.isfinite(self.max_step) and self.max_step > 0):
            raise ValueError(f"safety.max_step must be a finite distance > 0 m, got {self.max_step!r}")
        if not 0 < self.max_rotation_step <= math.pi:
            raise ValueError(f"safety.max_rotation_step must lie in (0, pi] rad, got {self.max_rotation_step!r}")
        if not (isinstance(self.min_image_side, int) and self.min_image_side >= 1):
            raise ValueError(f"safety.min_image_side must be an integer >= 1, got {self.min_image_side!r}")


class RejectionCounter:
    """Counts rejections by reason; :meth:`record` is True the first time a reason occurs (log it then)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: InputRejected | None = None

    def record(self, rejection: InputRejected) -> bool:
        first = rejection.reason not in self.counts
        self.counts[rejection.reason] = self.counts.get(rejection.reason, 0) + 1
        self.last = rejection
        return first

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        self.counts.clear()
        self.last = None


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | np.ndarray,
    min_side: int = 1,
) -> np.ndarray:
    """Raw image fields (as in ``sensor_msgs/Image``) -> RGB uint8 ``[H, W, 3]`` (a copy).

    Raises :class:`InputRejected` (``bad_encoding`` / ``bad_image_size``) instead of guessing.
    """
    if encoding not in COLOUR_ENCODINGS:
        raise InputRejected(
            "bad_encoding",
            f"image encoding {encoding!r} is not one of {sorted(COLOUR_ENCODINGS)}; "
            "publish 8-bit colour images (e.g. the camera driver's rgb8/bgr8 stream, not depth or mono)",
        )
    channels, _ = COLOUR_ENCODINGS[encoding]
    if height < min_side or width < min_side:
        raise InputRejected(
            "bad_image_size", f"image is {height} x {width} pixels, smaller than min_image_side={min_side}"
        )
    row_bytes = width * channels
    buffer = (
        np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    )
    if step < row_bytes or buffer.size != step * height:
        raise InputRejected(
            "bad_image_size",
            f"{encoding} image of {height} x {width} needs step >= {row_bytes} and step * height bytes; "
            f"got step {step} and {buffer.size} bytes",
        )
    return rgb_pixels(encoding, height, width, step, buffer)


def check_finite(reason: str, name: str, values: np.ndarray) -> np.ndarray:
    """``values`` as float64, or :class:`InputRejected` (``reason``) if any entry is NaN or inf."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputRejected(reason, f"{name} contains NaN or inf: {values.tolist()}")
    return values


def check_fresh(name: str, stamp_s: float, now_s: float, timeout_s: float) -> None:
    """Raise ``stale_<name>`` if ``stamp_s`` is older than ``timeout_s``, ``future_stamp`` if it lies ahead by more."""
    age = now_s - stamp_s
    if age > timeout_s:
        raise InputRejected(
            f"stale_{name}",
            f"the latest {name} is {age:.3f} s old (stamp {stamp_s:.3f}, now {now_s:.3f}), more than "
            f"stale_timeout_s={timeout_s}; check that the publisher runs, stamps its messages with the current "
            "time, and that the clocks of both machines are synchronised",
        )
    if -age > timeout_s:
        raise InputRejected(
            "future_stamp",
            f"the latest {name} is stamped {-age:.3f} s in the future (stamp {stamp_s:.3f}, now {now_s:.3f}); "
            "synchronise the clocks (chrony/PTP) of the robot, camera and planner machines",
        )


@dataclass(frozen=True)
class Sample:
    """A validated input value and the time (s) its message was stamped with."""

    value: np.ndarray
    stamp_s: float


class InputGuard:
    """The latest valid sample of each input, and the rule for when a command may be computed."""

    def __init__(self, config: SafetyConfig, counter: RejectionCounter | None = None, views: int = 1) -> None:
        self.config = config
        self.counter = counter if counter is not None else RejectionCounter()
        self.samples: dict[str, Sample | None] = {name: None for name in INPUTS}
        self.cleared_by: dict[str, InputRejected | None] = {name: None for name in INPUTS}
        self.set_views(views)

    def set_views(self, views: int) -> None:
        """Which camera images a command needs: ``image`` (1 view) or also ``wrist_image`` (2 views).

        Raises:
            ValueError: ``views`` is not 1 or 2.
        """
        if views not in (1, 2):
            raise ValueError(f"a model plans from 1 or 2 camera views (image, wrist_image), got {views}")
        self.required = tuple(name for name in INPUTS if name not in VIEW_IMAGES[views:])

    def accept(self, name: str, value: np.ndarray, stamp_s: float) -> None:
        """Store a validated sample of input ``name`` (one of :data:`INPUTS`)."""
        if name not in self.samples:
            raise KeyError(f"unknown input {name!r}; inputs are {INPUTS}")
        self.samples[name] = Sample(value, stamp_s)
        self.cleared_by[name] = None

    def clear(self, name: str) -> None:
        """Forget input ``name`` without a rejection (e.g. the goals were cleared on purpose)."""
        if name not in self.samples:
            raise KeyError(f"unknown input {name!r}; inputs are {INPUTS}")
        self.samples[name] = None
        self.cleared_by[name] = None

    def reject(self, name: str, rejection: InputRejected) -> bool:
        """A malformed message of input ``name``: forget its previous sample and count the rejection.

        The rejection is kept as the cause that :meth:`ready` names while the input stays missing.
        Returns True when the reason is new (the caller logs it).
        """
        if name not in self.samples:
            raise KeyError(f"unknown input {name!r}; inputs are {INPUTS}")
        self.samples[name] = None
        self.cleared_by[name] = rejection
        return self.counter.record(rejection)

    def ready(self, now_s: float, last_command_s: float | None = None) -> dict[str, np.ndarray]:
        """The input values to plan from now, or :class:`InputRejected` for the first missing/stale one.

        A missing input that was cleared by a malformed message raises ``no_<input>`` with that
        rejection as its ``cause``.

        ``last_command_s``: when the previous command was sent. The image and pose must be stamped
        after it, so that no two commands are planned from the same observation (which would add
        two steps to a pose the robot has already left).
        """
        values: dict[str, np.ndarray] = {}
        for name in self.required:
            sample = self.samples[name]
            if sample is None:
                cause = self.cleared_by[name]
                if cause is None:
                    raise InputRejected(f"no_{name}", REASONS[f"no_{name}"])
                what = "refused" if cause.reason in REFUSALS else "malformed"
                raise InputRejected(
                    f"no_{name}", f"the last {name} message was {what} ({cause.reason}; {cause.detail})", cause=cause
                )
            if name in FRESHNESS_CHECKED:
                check_fresh(name, sample.stamp_s, now_s, self.config.stale_timeout_s)
            if last_command_s is not None and name in AFTER_COMMAND_CHECKED and sample.stamp_s <= last_command_s:
                raise InputRejected(
                    "awaiting_new_data",
                    f"the latest {name} (stamp {sample.stamp_s:.3f}) is not newer than the previous command "
                    f"({last_command_s:.3f}); waiting for the next one. Frequent: the control rate is higher than "
                    "the sensor rates",
                )
            values[name] = sample.value
        return values


def planner_frame(values: dict[str, np.ndarray], views: int) -> np.ndarray:
    """The frame a model with ``views`` camera views plans from: ``values["image"]`` alone, or it and
    ``values["wrist_image"]`` side by side ``[H, 2W, 3]`` (``worldmodel.preprocess.tile_views``'s layout).

    Raises:
        InputRejected: ``view_mismatch`` when the two images differ in size (the model needs them tiled).
    """
    images = [values[name] for name in VIEW_IMAGES[:views]]
    if any(image.shape != images[0].shape for image in images):
        sizes = " and ".join(f"{image.shape[1]} x {image.shape[0]}" for image in images)
        raise InputRejected(
            "view_mismatch", f"the camera and wrist camera images are {sizes}: publish both at one size"
        )
    return np.concatenate(images, axis=1)


def check_goal_views(goal: np.ndarray, frame: np.ndarray, views: int) -> None:
    """Refuse a goal image whose shape says it holds another number of views than ``frame`` (:func:`planner_frame`).

    A two-view model's goal is its two views side by side, twice as wide for its height as one
    camera image; a single camera image given as its goal (or a tiled pair given to a single-view
    model) would be centre-cropped into a goal the robot cannot reach. Aspect ratios (W / H) within a
    factor 1.5 pass (a 16:9 goal photo for a 4:3 camera is not a view mismatch).

    Raises:
        InputRejected: ``view_mismatch`` with both sizes and what a goal for this model looks like.
    """
    ratio = (goal.shape[1] / goal.shape[0]) / (frame.shape[1] / frame.shape[0])
    if not 1 / 1.5 <= ratio <= 1.5:
        wanted = "the exterior and wrist views side by side" if views == 2 else "one camera image"
        raise InputRejected(
            "view_mismatch",
            f"the goal image is {goal.shape[1]} x {goal.shape[0]} but the model plans from {views} view(s), "
            f"{frame.shape[1]} x {frame.shape[0]} together: its goal is {wanted} (sim_node: goal_views {views})",
        )


def euler_xyz(rotation: Rotation) -> np.ndarray:
    """``rotation`` as extrinsic xyz Euler angles (rad, ``[..., 3]``), scipy's ``as_euler("xyz")``, quietly.

    At gimbal lock (pitch +-pi/2, the tool pointing sideways) scipy sets yaw to 0 and puts the
    rotation about the vertical axis into roll, which keeps the rotation (``jepa_mpc_foundation.pose`` does
    the same); it also warns, which at every 30 Hz pose message would bury the log.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected", category=UserWarning)
        return rotation.as_euler("xyz")


def limit_rotation(rotation: Rotation, max_angle: float) -> Rotation:
    """``rotation`` with its angle (rad, in [0, pi]) cut to ``max_angle`` about the same axis; itself if within."""
    angle = rotation.magnitude()
    if angle <= max_angle:
        return rotation
    return Rotation.from_rotvec(rotation.as_rotvec() * (max_angle / angle))


@dataclass(frozen=True)
class SafeCommand:
    """An absolute target the robot may be sent."""

    target: np.ndarray
    """[7] float64: x, y, z (m, base frame), rx, ry, rz (extrinsic xyz Euler, rad), gripper closedness [0, 1]."""
    step_limited: bool
    """The planner's step was longer than max_step / max_rotation_step and was shortened."""
    clipped_to_workspace: bool
    """The target position was moved onto the workspace box."""


class CommandGuard:
    """Planner action (a 7-D delta) + current state -> an absolute target within all limits."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.low = np.asarray(config.workspace_low, dtype=np.float64)
        self.high = np.asarray(config.workspace_high, dtype=np.float64)

    def check_reachable(self, state: np.ndarray) -> None:
        """Refuse to plan from ``state`` [7] (current pose) when no target could be sent from it, whatever the plan.

        A robot further than ``max_step`` (m) from the workspace box has no target both one step
        away and inside the box, so :meth:`target_from_action` would refuse every action: planning
        would only burn a tick's CPU (seconds on a CPU) before the same refusal. Call it before planning.

        Raises:
            InputRejected: ``nonfinite_pose`` for NaN/inf; ``pose_outside_workspace`` naming the pose,
                its distance (m) from the box, the box and the fix.
        """
        state = check_finite("nonfinite_pose", "state", state)
        if state.shape != (STATE_DIM,):
            raise ValueError(f"state must be [{STATE_DIM}], got {state.shape}")
        if self.distance_to_workspace(state[:3]) > self.config.max_step + 1e-9:
            raise self._outside_workspace(state)

    def distance_to_workspace(self, position: np.ndarray) -> float:
        """Distance (m) from ``position`` [3] (base frame) to the nearest point of the workspace box; 0 inside."""
        return float(np.linalg.norm(np.clip(position, self.low, self.high) - position))

    def _outside_workspace(self, state: np.ndarray) -> InputRejected:
        return InputRejected(
            "pose_outside_workspace",
            f"the end-effector at {np.round(state[:3], 3).tolist()} m is "
            f"{self.distance_to_workspace(state[:3]):.3f} m outside the workspace box "
            f"{list(self.config.workspace_low)}..{list(self.config.workspace_high)} m, more than "
            f"max_step={self.config.max_step} m: nothing is planned or sent; move the robot into the box by hand "
            "or widen safety.workspace_low/high",
        )

    def target_from_action(self, state: np.ndarray, action: np.ndarray) -> SafeCommand:
        """``state`` [7] (current pose) moved by ``action`` [7], limited to one step and the workspace box.

        A robot standing outside the box but within ``max_step`` of it is sent back into the box: to
        the clipped target when that is within one step, else to the nearest point of the box.

        Raises :class:`InputRejected` for a non-finite action or state, and when the robot stands more
        than ``max_step`` outside the box (:meth:`check_reachable`: no target can then be both one
        step away and inside the box).
        """
        state = check_finite("nonfinite_pose", "state", state)
        action = check_finite("nonfinite_command", "planned action", action)
        if state.shape != (STATE_DIM,) or action.shape != (ACTION_DIM,):
            raise ValueError(
                f"state and action must be [{STATE_DIM}] and [{ACTION_DIM}], got {state.shape} and {action.shape}"
            )
        self.check_reachable(state)
        delta_position = action[:3]
        distance = float(np.linalg.norm(delta_position))
        step_limited = distance > self.config.max_step
        if step_limited:
            delta_position = delta_position * (self.config.max_step / distance)
        delta_rotation = Rotation.from_euler("xyz", action[3:6])
        if delta_rotation.magnitude() > self.config.max_rotation_step:
            delta_rotation = limit_rotation(delta_rotation, self.config.max_rotation_step)
            step_limited = True

        unclipped = state[:3] + delta_position
        position = np.clip(unclipped, self.low, self.high)
        clipped = bool(np.any(position != unclipped))
        if np.linalg.norm(position - state[:3]) > self.config.max_step + 1e-9:
            # Just outside the box, clipping a sideways step can land more than one step away, while the
            # box's nearest point is within one step (check_reachable): back into the box first.
            position, clipped = np.clip(state[:3], self.low, self.high), True
        orientation = euler_xyz(delta_rotation * Rotation.from_euler("xyz", state[3:6]))  # R_delta @ R
        gripper = float(np.clip(state[6] + action[6], 0.0, 1.0))
        target = np.concatenate([position, orientation, [gripper]])
        return SafeCommand(target=target, step_limited=step_limited, clipped_to_workspace=clipped)
