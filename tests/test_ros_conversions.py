"""ros_nodes.conversions with real ROS messages, and ros_nodes.parameters (config <-> parameters), no ROS graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import Image, JointState

from jepa_mpc_foundation.configuration import leaf_fields
from ros_nodes import conversions
from ros_nodes.config import PlannerNodeConfig, SimNodeConfig
from ros_nodes.parameters import config_from_flat, flatten
from ros_nodes.safety import InputRejected


def euler_to_matrix(euler: np.ndarray) -> np.ndarray:
    return Rotation.from_euler("xyz", euler).as_matrix()  # extrinsic xyz


def _quaternion(msg: PoseStamped) -> np.ndarray:
    o = msg.pose.orientation
    return np.array([o.x, o.y, o.z, o.w])


def _random_rotations(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    rotations = [euler_to_matrix(rng.uniform(-math.pi, math.pi, 3)) for _ in range(n)]
    # Rotations by (nearly) pi, where naive quaternion extraction divides by ~0.
    rotations += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    return rotations


def test_quaternion_matrix_round_trip():
    for rotation in _random_rotations(200):
        euler = Rotation.from_matrix(rotation).as_euler("xyz")
        msg = conversions.vector_to_pose(np.concatenate([np.zeros(3), euler]), 0.0, "panda_link0")
        quaternion = _quaternion(msg)
        assert np.linalg.norm(quaternion) == pytest.approx(1.0) and quaternion[3] >= 0
        np.testing.assert_allclose(euler_to_matrix(conversions.pose_to_vector(msg)[3:]), rotation, atol=1e-9)


def test_quaternion_matches_a_known_rotation():
    # 90 degrees about z: q = (0, 0, sin 45, cos 45), in ROS's (x, y, z, w) order.
    msg = conversions.vector_to_pose(np.array([0.0, 0.0, 0.0, 0.0, 0.0, math.pi / 2]), 0.0, "panda_link0")
    np.testing.assert_allclose(_quaternion(msg), [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
    msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z, msg.pose.orientation.w = 0.0, 0.0, 1.0, 0.0
    np.testing.assert_allclose(conversions.pose_to_vector(msg)[3:], [0.0, 0.0, math.pi], atol=1e-12)  # 180 deg about z


def test_pose_message_round_trip_with_the_gripper_pointing_down():
    rng = np.random.default_rng(1)
    for euler in [np.array([math.pi, 0.0, 0.3]), np.array([-3.1, 0.2, -1.0]), *rng.uniform(-1.5, 1.5, (20, 3))]:
        pose = np.concatenate([[0.4, -0.1, 0.25], euler])
        msg = conversions.vector_to_pose(pose, stamp_s=12.5, frame_id="panda_link0")
        assert isinstance(msg, PoseStamped) and msg.header.frame_id == "panda_link0"
        assert conversions.stamp_to_seconds(msg.header.stamp) == pytest.approx(12.5)
        back = conversions.pose_to_vector(msg, base_frame="panda_link0")
        np.testing.assert_allclose(back[:3], pose[:3])
        # Compare rotations, not Euler angles (roll may come back as -pi for +pi).
        np.testing.assert_allclose(euler_to_matrix(back[3:]), euler_to_matrix(euler), atol=1e-9)


def test_pose_message_rejections():
    msg = conversions.vector_to_pose(np.zeros(6), 1.0, "panda_link0")
    with pytest.raises(InputRejected) as info:
        conversions.pose_to_vector(msg, base_frame="fr3_link0")
    assert info.value.reason == "wrong_frame"
    msg.pose.position.x = float("nan")
    with pytest.raises(InputRejected) as info:
        conversions.pose_to_vector(msg)
    assert info.value.reason == "nonfinite_pose"
    msg = conversions.vector_to_pose(np.zeros(6), 1.0, "panda_link0")
    msg.pose.orientation.w = 0.0  # all-zero quaternion, as an uninitialised message has
    with pytest.raises(InputRejected) as info:
        conversions.pose_to_vector(msg)
    assert info.value.reason == "bad_quaternion"


def test_image_message_round_trip_and_bgr():
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    msg = conversions.rgb_to_image(frame, 3.0, "camera")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 48, 64, 192)
    np.testing.assert_array_equal(conversions.image_to_rgb(msg), frame)
    bgr = Image(height=48, width=64, encoding="bgr8", step=192, data=frame[..., ::-1].tobytes())
    np.testing.assert_array_equal(conversions.image_to_rgb(bgr), frame)
    with pytest.raises(InputRejected) as info:
        conversions.image_to_rgb(Image(height=48, width=64, encoding="mono8", step=64, data=bytes(48 * 64)))
    assert info.value.reason == "bad_encoding"


def test_gripper_joint_state_to_closedness_and_back():
    joints = ("panda_finger_joint1", "panda_finger_joint2")
    for closedness in [0.0, 0.25, 0.6, 1.0]:
        fingers = conversions.closedness_to_finger_positions(closedness, 2, 0.08)
        msg = JointState(name=["panda_joint1", *joints], position=[0.3, *fingers])
        assert conversions.joint_state_to_closedness(msg, joints, 0.08) == pytest.approx(closedness)
    wide_open = JointState(name=list(joints), position=[0.041, 0.041])  # a little beyond 0.08: clipped
    assert conversions.joint_state_to_closedness(wide_open, joints, 0.08) == 0.0
    for msg, reason in [
        (JointState(name=["fr3_finger_joint1", "fr3_finger_joint2"], position=[0.01, 0.01]), "gripper_joints_missing"),
        (JointState(name=list(joints), position=[0.01]), "gripper_joints_missing"),
        (JointState(name=list(joints), position=[float("nan"), 0.01]), "nonfinite_gripper"),
    ]:
        with pytest.raises(InputRejected) as info:
            conversions.joint_state_to_closedness(msg, joints, 0.08)
        assert info.value.reason == reason


def test_parameters_follow_the_dataclasses_and_refuse_unknown_names():
    names = {spec.name for spec in leaf_fields(PlannerNodeConfig)}
    assert {"rate_hz", "planner.samples", "planner.fixed_dims", "safety.workspace_low", "safety.max_step"} <= names
    assert {"task", "sim.image_size", "sim.controller.damping"} <= {s.name for s in leaf_fields(SimNodeConfig)}

    flat = flatten({"rate_hz": 4, "planner": {"samples": 16, "topk": 4}, "safety": {"workspace_low": [0, -1, 0]}})
    config = config_from_flat(PlannerNodeConfig, flat, where="test")
    assert config.rate_hz == 4.0 and isinstance(config.rate_hz, float)  # YAML int accepted for a float
    assert config.planner.samples == 16 and config.safety.workspace_low == (0.0, -1.0, 0.0)

    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['safety.max_stpe'\]"):
        config_from_flat(PlannerNodeConfig, {"safety.max_stpe": 0.1}, where="test")
    with pytest.raises(
        ValueError, match=r"test: planner.samples is 1.5, a number with a decimal point; expected an integer$"
    ):
        config_from_flat(PlannerNodeConfig, {"planner.samples": 1.5}, where="test")
    with pytest.raises(ValueError, match="max_step"):
        config_from_flat(PlannerNodeConfig, {"safety.max_step": -1.0}, where="test")
    with pytest.raises(ValueError, match="unknown task"):
        config_from_flat(SimNodeConfig, {"task": "juggle"}, where="test")


@pytest.mark.parametrize("pitch", [math.pi / 2, -math.pi / 2, math.pi / 2 - 1e-7, -math.pi / 2 + 1e-4, 1.0])
@pytest.mark.parametrize("roll, yaw", [(0.0, 0.5), (math.pi, -1.2), (0.3, 2.9)])
def test_pose_message_at_and_near_gimbal_lock_keeps_the_rotation_without_warnings(roll, pitch, yaw, recwarn):
    """A tool pointing sideways (pitch +-90 deg): the angles may trade roll for yaw, the rotation may not change."""
    truth = Rotation.from_euler("xyz", [roll, pitch, yaw])
    msg = conversions.vector_to_pose(np.array([0.5, 0.0, 0.2, roll, pitch, yaw]), 1.0, "panda_link0")
    vector = conversions.pose_to_vector(msg, base_frame="panda_link0")
    # scipy treats a pitch within 1e-7 rad of +-pi/2 as locked (yaw 0): an error of that order, 1e-5 deg
    assert (Rotation.from_euler("xyz", vector[3:]) * truth.inv()).magnitude() < 1e-6
    assert abs(vector[4]) <= math.pi / 2 + 1e-12
    assert not [w for w in recwarn if "Gimbal" in str(w.message)]  # one warning per message at 30 Hz would bury the log
    # and back: the published quaternion is the same rotation
    back = conversions.vector_to_pose(vector, 1.0, "panda_link0")
    assert (Rotation.from_quat(_quaternion(back)) * truth.inv()).magnitude() < 1e-6


@pytest.mark.parametrize("x", [1e308, -1e308, 101.0])
def test_a_pose_kilometres_away_is_rejected_as_a_bad_pose(x):
    msg = conversions.vector_to_pose(np.array([0.5, 0.0, 0.2, math.pi, 0.0, 0.0]), 1.0, "panda_link0")
    msg.pose.position.x = x
    with pytest.raises(InputRejected) as info:
        conversions.pose_to_vector(msg, base_frame="panda_link0")
    assert info.value.reason == "pose_out_of_range"
    msg.pose.position.x = 99.0
    assert conversions.pose_to_vector(msg)[0] == 99.0


def test_the_planner_node_leaves_the_executor_a_core_unless_told_otherwise():
    from ros_nodes.config import planning_threads

    assert planning_threads(0, 2) == 1  # the 2-core box: torch's default (2) starved the executor
    assert planning_threads(0, 16) == 15
    assert planning_threads(0, 1) == planning_threads(0, None) == 1
    assert planning_threads(3, 2) == 3  # a user's choice stands
    assert PlannerNodeConfig().torch_threads == 0
    with pytest.raises(ValueError, match="torch_threads"):
        PlannerNodeConfig(torch_threads=-1)
