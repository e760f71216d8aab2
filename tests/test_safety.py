"""ros_nodes.safety without ROS: image decoding, freshness, the input guard, command limits, counting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ros_nodes.safety import (
    REASONS,
    CommandGuard,
    InputGuard,
    InputRejected,
    RejectionCounter,
    SafetyConfig,
    check_fresh,
    check_goal_views,
    decode_image,
    limit_rotation,
    planner_frame,
)

DOWN = np.array([math.pi, 0.0, 0.0])  # gripper pointing down: roll at +-pi, where Euler differences jump


def euler_to_matrix(euler: np.ndarray) -> np.ndarray:
    return Rotation.from_euler("xyz", euler).as_matrix()  # extrinsic xyz


def rotation_angle(matrix: np.ndarray) -> float:
    return float(Rotation.from_matrix(matrix).magnitude())


def _rgb(height=20, width=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _reason(fn, *args, **kwargs) -> str:
    with pytest.raises(InputRejected) as info:
        fn(*args, **kwargs)
    assert info.value.reason in REASONS
    return info.value.reason


@pytest.mark.parametrize(
    "encoding, order, channels",
    [("rgb8", [0, 1, 2], 3), ("bgr8", [2, 1, 0], 3), ("rgba8", [0, 1, 2], 4), ("bgra8", [2, 1, 0], 4)],
)
def test_decode_image_channel_order_and_row_padding(encoding, order, channels):
    rgb = _rgb()
    raw = np.zeros((20, 30, channels), dtype=np.uint8)
    raw[..., order] = rgb  # what a driver publishes in that encoding
    raw[..., 3:] = 255
    padded = np.zeros((20, 30 * channels + 6), dtype=np.uint8)  # 6 bytes of row padding (step > width * channels)
    padded[:, : 30 * channels] = raw.reshape(20, -1)
    decoded = decode_image(encoding, 20, 30, padded.shape[1], padded.tobytes())
    np.testing.assert_array_equal(decoded, rgb)


def test_decode_image_rejects_bad_encoding_size_and_small_images():
    data = _rgb().tobytes()
    assert _reason(decode_image, "mono8", 20, 30, 90, data) == "bad_encoding"
    assert _reason(decode_image, "32FC1", 20, 30, 90, data) == "bad_encoding"
    assert _reason(decode_image, "rgb8", 20, 30, 90, data[:-1]) == "bad_image_size"  # truncated
    assert _reason(decode_image, "rgb8", 21, 30, 90, data) == "bad_image_size"  # height lies
    assert _reason(decode_image, "rgb8", 20, 30, 60, data) == "bad_image_size"  # step shorter than a row
    assert _reason(decode_image, "rgb8", 20, 30, 90, data, min_side=32) == "bad_image_size"
    assert _reason(decode_image, "rgb8", 0, 0, 0, b"") == "bad_image_size"


def test_check_fresh_rejects_old_and_future_stamps():
    check_fresh("image", stamp_s=99.8, now_s=100.0, timeout_s=0.5)
    assert _reason(check_fresh, "image", 99.0, 100.0, 0.5) == "stale_image"
    assert _reason(check_fresh, "pose", 0.0, 100.0, 0.5) == "stale_pose"  # an unstamped message
    assert _reason(check_fresh, "image", 101.0, 100.0, 0.5) == "future_stamp"


def test_input_guard_needs_every_input_fresh_and_forgets_after_a_malformed_message():
    guard = InputGuard(SafetyConfig(stale_timeout_s=0.5))
    assert _reason(guard.ready, 10.0) == "no_image"
    guard.accept("image", _rgb(), 10.0)
    guard.accept("pose", np.zeros(6), 10.0)
    guard.accept("gripper", np.array(0.0), 10.0)
    assert _reason(guard.ready, 10.0) == "no_goal"
    guard.accept("goal", _rgb(), 0.0)  # the goal is latched: an old stamp is fine
    assert set(guard.ready(10.2)) == {"image", "pose", "gripper", "goal"}
    assert _reason(guard.ready, 11.0) == "stale_image"

    guard.accept("image", _rgb(), 11.0)
    guard.accept("pose", np.zeros(6), 11.0)
    guard.accept("gripper", np.array(0.0), 11.0)
    first = guard.reject("image", InputRejected("bad_encoding", "mono8"))
    assert first
    assert _reason(guard.ready, 11.0) == "no_image"  # no fallback on the older, valid frame
    assert guard.counter.counts == {"bad_encoding": 1}
    # ... and the tick names why there is no image: the camera sends mono8 (issue 14)
    with pytest.raises(InputRejected) as info:
        guard.ready(11.0)
    assert info.value.cause is not None and info.value.cause.reason == "bad_encoding"
    assert "malformed (bad_encoding; mono8)" in info.value.detail
    guard.accept("image", _rgb(), 11.0)
    guard.clear("goal")
    with pytest.raises(InputRejected) as info:
        guard.ready(11.0)
    assert info.value.reason == "no_goal" and info.value.cause is None


def test_rejection_counter_reports_each_reason_once_and_counts_all():
    counter = RejectionCounter()
    firsts = [
        counter.record(InputRejected(reason, "x"))
        for reason in ["stale_image", "stale_image", "nonfinite_pose", "stale_image"]
    ]
    assert firsts == [True, False, True, False]
    assert counter.counts == {"stale_image": 3, "nonfinite_pose": 1} and counter.total == 4
    assert counter.last.reason == "stale_image"
    counter.reset()
    assert counter.record(InputRejected("stale_image", "x"))


def test_unknown_reason_is_a_programming_error():
    with pytest.raises(KeyError, match="unknown rejection reason"):
        InputRejected("something_new", "x")


def _state(x=0.5, y=0.0, z=0.2, gripper=0.0):
    return np.array([x, y, z, *DOWN, gripper])


def test_command_guard_limits_the_step_and_keeps_small_steps_exact():
    config = SafetyConfig(max_step=0.05)
    guard = CommandGuard(config)
    small = np.array([0.01, -0.02, 0.005, 0, 0, 0, 0.3])
    command = guard.target_from_action(_state(), small)
    np.testing.assert_allclose(command.target[:3], _state()[:3] + small[:3], atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix(command.target[3:6]), euler_to_matrix(DOWN), atol=1e-9)
    assert command.target[6] == pytest.approx(0.3)
    assert not command.step_limited and not command.clipped_to_workspace

    big = np.array([0.3, 0.4, 0.0, 0, 0, 0, 5.0])
    command = guard.target_from_action(_state(), big)
    step = command.target[:3] - _state()[:3]
    assert np.linalg.norm(step) == pytest.approx(0.05)
    np.testing.assert_allclose(step / np.linalg.norm(step), [0.6, 0.8, 0.0], atol=1e-9)  # same direction
    assert command.step_limited and command.target[6] == 1.0


def test_command_guard_clips_to_the_workspace_box():
    config = SafetyConfig(workspace_low=(0.3, -0.3, 0.05), workspace_high=(0.7, 0.3, 0.45), max_step=0.05)
    command = CommandGuard(config).target_from_action(_state(z=0.06), np.array([0, 0, -0.04, 0, 0, 0, 0]))
    assert command.target[2] == pytest.approx(0.05) and command.clipped_to_workspace


def test_command_guard_targets_stay_in_the_box_and_one_step_away_for_random_actions():
    config = SafetyConfig(max_step=0.05, max_rotation_step=0.3)
    guard = CommandGuard(config)
    rng = np.random.default_rng(0)
    low, high = np.array(config.workspace_low), np.array(config.workspace_high)
    for _ in range(300):
        state = np.concatenate([rng.uniform(low, high), rng.uniform(-math.pi, math.pi, 3), [rng.uniform()]])
        action = np.concatenate([rng.normal(0, 0.2, 3), rng.normal(0, 1.0, 3), [rng.normal(0, 2)]])
        target = guard.target_from_action(state, action).target
        assert np.all(target[:3] >= low - 1e-12) and np.all(target[:3] <= high + 1e-12)
        assert np.linalg.norm(target[:3] - state[:3]) <= config.max_step + 1e-9
        relative = euler_to_matrix(target[3:6]) @ euler_to_matrix(state[3:6]).T
        assert rotation_angle(relative) <= config.max_rotation_step + 1e-6
        assert 0.0 <= target[6] <= 1.0


def test_limit_rotation_keeps_the_axis_and_cuts_the_angle():
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + math.sin(1.2) * cross + (1 - math.cos(1.2)) * cross @ cross
    limited = limit_rotation(Rotation.from_matrix(rotation), 0.3).as_matrix()
    assert rotation_angle(limited) == pytest.approx(0.3)
    np.testing.assert_allclose(limited @ axis, axis, atol=1e-9)  # same axis
    np.testing.assert_allclose(limit_rotation(Rotation.from_matrix(rotation), 2.0).as_matrix(), rotation, atol=1e-12)
    # Near pi the axis still comes out right (where the antisymmetric part of the matrix vanishes).
    flipped = limit_rotation(Rotation.from_rotvec(axis * (math.pi - 1e-9)), 0.3)
    np.testing.assert_allclose(flipped.apply(axis), axis, atol=1e-6)
    assert flipped.magnitude() == pytest.approx(0.3)


def test_command_guard_refuses_nan_and_a_robot_far_outside_the_box():
    guard = CommandGuard(SafetyConfig())
    assert _reason(guard.target_from_action, _state(), np.array([np.nan, 0, 0, 0, 0, 0, 0])) == "nonfinite_command"
    assert _reason(guard.target_from_action, _state(z=np.inf), np.zeros(7)) == "nonfinite_pose"
    # 20 cm above the box: no target is both within 5 cm and inside the box.
    assert _reason(guard.target_from_action, _state(z=0.65), np.zeros(7)) == "pose_outside_workspace"
    # 3 cm outside: one step brings it back in.
    command = guard.target_from_action(_state(z=0.48), np.zeros(7))
    assert command.target[2] == pytest.approx(0.45) and command.clipped_to_workspace


def test_a_pose_metres_outside_the_box_is_refused_before_planning_naming_the_pose_and_the_box():
    """Issue 29 part 8: a pose 5 m away was planned in full every tick, then refused; now it is refused first."""
    guard = CommandGuard(SafetyConfig(workspace_low=(0.3, -0.3, 0.02), workspace_high=(0.7, 0.3, 0.45), max_step=0.05))
    with pytest.raises(InputRejected) as info:
        guard.check_reachable(_state(x=5.5))
    rejection = info.value
    assert rejection.reason == "pose_outside_workspace"
    for named in (
        "[5.5, 0.0, 0.2]",
        "4.800 m outside",
        "[0.3, -0.3, 0.02]..[0.7, 0.3, 0.45]",
        "max_step=0.05",
        "widen safety.workspace_low/high",
    ):
        assert named in rejection.detail, rejection.detail
    assert _reason(guard.check_reachable, _state(z=np.nan)) == "nonfinite_pose"
    guard.check_reachable(_state())  # inside the box
    guard.check_reachable(_state(z=0.49))  # 4 cm above it: one step brings it back in
    assert _reason(guard.check_reachable, _state(z=0.51)) == "pose_outside_workspace"


def test_a_robot_just_outside_the_box_is_sent_back_in_whatever_the_planned_direction():
    guard = CommandGuard(SafetyConfig(max_step=0.05))
    # 3 cm above the box, a full sideways step: clipped, it would land 5.8 cm away; the box is 3 cm away.
    command = guard.target_from_action(_state(z=0.48), np.array([0.05, 0, 0, 0, 0, 0, 0]))
    np.testing.assert_allclose(command.target[:3], [0.5, 0.0, 0.45], atol=1e-12)
    assert command.clipped_to_workspace


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stale_timeout_s": 0.0}, "stale_timeout_s"),
        ({"workspace_low": (0.8, -0.3, 0.0)}, "workspace_low"),
        ({"workspace_low": (0.3, 0.0)}, "3 entries"),
        ({"max_step": -0.01}, "max_step"),
        ({"max_rotation_step": 4.0}, "max_rotation_step"),
        ({"min_image_side": 0}, "min_image_side"),
    ],
)
def test_safety_config_names_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SafetyConfig(**kwargs)


def test_input_guard_waits_for_data_newer_than_the_previous_command():
    guard = InputGuard(SafetyConfig(stale_timeout_s=0.5))
    for name in ("image", "pose", "gripper", "goal"):
        guard.accept(name, np.zeros(3), 10.0)
    guard.ready(10.1, last_command_s=9.9)
    assert _reason(guard.ready, 10.1, last_command_s=10.0) == "awaiting_new_data"
    guard.accept("image", np.zeros(3), 10.2)
    guard.accept("pose", np.zeros(3), 10.2)
    guard.ready(10.3, last_command_s=10.0)  # the gripper reading may be older: it changes slowly


def test_a_two_view_model_needs_the_wrist_image_fresh_and_both_views_of_one_size():
    guard = InputGuard(SafetyConfig(stale_timeout_s=0.5), views=2)
    for name in ("image", "pose", "gripper", "goal"):
        guard.accept(name, _rgb(16, 16) if name in ("image", "goal") else np.zeros(6), 10.0)
    assert _reason(guard.ready, 10.0) == "no_wrist_image"
    guard.accept("wrist_image", _rgb(16, 16, seed=1), 9.0)
    assert _reason(guard.ready, 10.0) == "stale_wrist_image"
    guard.accept("wrist_image", _rgb(16, 16, seed=1), 10.0)
    values = guard.ready(10.1)
    frame = planner_frame(values, 2)
    assert frame.shape == (16, 32, 3) and np.array_equal(frame[:, 16:], _rgb(16, 16, seed=1))  # exterior | wrist
    guard.set_views(1)  # a single-view model ignores the wrist camera
    assert "wrist_image" not in guard.ready(10.1) and planner_frame(guard.ready(10.1), 1).shape == (16, 16, 3)
    with pytest.raises(InputRejected, match="16 x 16 and 32 x 16: publish both at one size") as info:
        planner_frame({"image": _rgb(16, 16), "wrist_image": np.zeros((16, 32, 3), np.uint8)}, 2)
    assert info.value.reason == "view_mismatch"
    with pytest.raises(ValueError, match="1 or 2 camera views"):
        guard.set_views(3)


def test_a_goal_holding_another_number_of_views_is_refused_naming_the_fix():
    one, two = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 128, 3), np.uint8)
    check_goal_views(two, two, 2)
    check_goal_views(np.zeros((32, 64, 3), np.uint8), two, 2)  # any size of the same shape
    check_goal_views(np.zeros((480, 640, 3), np.uint8), np.zeros((720, 1280, 3), np.uint8), 1)  # 4:3 vs 16:9
    with pytest.raises(
        InputRejected, match="64 x 64 but the model plans from 2 view.*side by side.*goal_views 2"
    ) as info:
        check_goal_views(one, two, 2)
    assert info.value.reason == "view_mismatch"
    with pytest.raises(InputRejected, match="one camera image"):
        check_goal_views(two, one, 1)
