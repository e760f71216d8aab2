"""jepa_mpc_foundation/pose.py against scipy's ``Rotation`` ("xyz" = extrinsic) and MuJoCo's ``mju_euler2Quat``
("XYZ" = extrinsic there), in float64: the one convention the planner (torch), the simulator
(MuJoCo, scipy) and the ROS nodes (scipy) share."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import sim  # noqa: F401  (chooses the GL backend before mujoco is imported)
from jepa_mpc_foundation import pose

import mujoco  # isort: skip  (after sim, which chooses the GL backend first)

N = 64


@pytest.fixture
def states() -> np.ndarray:
    rng = np.random.default_rng(0)
    states = np.concatenate(
        [rng.uniform(-1, 1, (N, 3)), rng.uniform(-np.pi, np.pi, (N, 3)), rng.uniform(0, 1, (N, 1))], 1
    )
    states[:8, 3] = np.pi - 1e-3  # roll at the +-pi seam, as with the gripper pointing down (DROID)
    states[8:16, 3] = -np.pi + 1e-3
    states[16:20, 3] = np.pi  # exactly on the seam
    states[:, 4] = np.clip(states[:, 4], -1.4, 1.4)  # away from the pitch singularity (gimbal lock)
    return states


@pytest.fixture
def actions() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.concatenate([rng.normal(0, 0.05, (N, 3)), rng.normal(0, 0.3, (N, 3)), rng.normal(0, 0.5, (N, 1))], 1)


def test_dimensions():
    assert pose.STATE_DIM == pose.ACTION_DIM == 7
    dims = (*pose.TRANSLATION_DIMS, *pose.ROTATION_DIMS, pose.GRIPPER_DIM)
    assert sorted(dims) == list(range(pose.ACTION_DIM))


def test_euler_to_matrix_is_scipys_extrinsic_xyz(states):
    euler = states[:, 3:6]
    matrices = pose.euler_xyz_to_matrix(torch.from_numpy(euler))
    assert matrices.dtype == torch.float64 and matrices.shape == (N, 3, 3)
    np.testing.assert_allclose(matrices.numpy(), Rotation.from_euler("xyz", euler).as_matrix(), atol=1e-12)
    # R = Rz @ Ry @ Rx, as the docstring says
    rx, ry, rz = (Rotation.from_euler(axis, euler[:, i : i + 1]).as_matrix() for i, axis in enumerate("xyz"))
    np.testing.assert_allclose(matrices.numpy(), rz @ ry @ rx, atol=1e-12)


def test_mujoco_spells_extrinsic_xyz_in_upper_case(states):
    # MuJoCo's mju_euler2Quat: lower case = intrinsic, upper case = extrinsic (the opposite of scipy).
    for euler in states[:, 3:6]:
        quat = np.zeros(4)  # [w, x, y, z]
        mujoco.mju_euler2Quat(quat, euler, "XYZ")
        matrix = np.zeros(9)
        mujoco.mju_quat2Mat(matrix, quat)
        np.testing.assert_allclose(
            matrix.reshape(3, 3), pose.euler_xyz_to_matrix(torch.from_numpy(euler)).numpy(), atol=1e-12
        )


def test_matrix_to_euler_is_scipys_as_euler(states):
    matrices = Rotation.from_euler("xyz", states[:, 3:6]).as_matrix()
    euler = pose.matrix_to_euler_xyz(torch.from_numpy(matrices)).numpy()
    # Angles agree except on the roll seam, where +pi and -pi are the same rotation.
    difference = (euler - Rotation.from_matrix(matrices).as_euler("xyz") + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(difference, 0.0, atol=1e-9)
    np.testing.assert_allclose(pose.euler_xyz_to_matrix(torch.from_numpy(euler)).numpy(), matrices, atol=1e-12)
    assert np.all(np.abs(euler[:, 1]) <= np.pi / 2)


def test_apply_action_composes_on_the_left_as_scipy(states, actions):
    moved = pose.apply_action(torch.from_numpy(states), torch.from_numpy(actions)).numpy()
    rotation = Rotation.from_euler("xyz", actions[:, 3:6]) * Rotation.from_euler("xyz", states[:, 3:6])  # R_delta @ R
    np.testing.assert_allclose(moved[:, :3], states[:, :3] + actions[:, :3], atol=1e-15)
    np.testing.assert_allclose(Rotation.from_euler("xyz", moved[:, 3:6]).as_matrix(), rotation.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(moved[:, 6], np.clip(states[:, 6] + actions[:, 6], 0.0, 1.0), atol=1e-15)


def test_action_between_inverts_apply_action_across_the_roll_seam(states, actions):
    actions[:, 6] = np.clip(states[:, 6] + actions[:, 6], 0.0, 1.0) - states[:, 6]  # no gripper clipping
    t_states, t_actions = torch.from_numpy(states), torch.from_numpy(actions)
    moved = pose.apply_action(t_states, t_actions)
    recovered = pose.action_between(t_states, moved)
    np.testing.assert_allclose(recovered.numpy(), actions, atol=1e-10)
    np.testing.assert_allclose(pose.apply_action(t_states, recovered).numpy(), moved.numpy(), atol=1e-10)
    # Across the seam the rotation delta is small although the roll angles differ by ~2 pi.
    seam = torch.tensor(
        [[0.0, 0.0, 0.0, np.pi - 0.01, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -np.pi + 0.01, 0.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    delta = pose.actions_from_states(seam)
    np.testing.assert_allclose(delta.numpy(), [[0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0]], atol=1e-12)
    expected = Rotation.from_euler("xyz", seam[1, 3:6].numpy()) * Rotation.from_euler("xyz", seam[0, 3:6].numpy()).inv()
    np.testing.assert_allclose(delta[0, 3:6].numpy(), expected.as_euler("xyz"), atol=1e-12)


def test_actions_from_states_is_batched(states):
    trajectories = torch.from_numpy(states).reshape(4, N // 4, 7)
    actions = pose.actions_from_states(trajectories)
    assert actions.shape == (4, N // 4 - 1, 7) and actions.dtype == torch.float64
    np.testing.assert_allclose(
        actions[2, 5].numpy(), pose.action_between(trajectories[2, 5], trajectories[2, 6]).numpy()
    )


# ---------------------------------------------------------------- gimbal lock (pitch +-pi/2)
# Property tests: whatever roll and yaw, at, near or away from the singularity, the angles torch
# returns must give back the rotation (scipy's matrices are the reference), in float64 and float32.
from hypothesis import given, settings, strategies as st  # noqa: E402

HALF_PI = np.pi / 2
angle = st.floats(-np.pi, np.pi, allow_nan=False)
sign = st.sampled_from([-1.0, 1.0])
exact_pitch = sign.map(lambda s: s * HALF_PI)
near_pitch = st.tuples(sign, st.floats(1.0, 15.0)).map(
    lambda p: p[0] * (HALF_PI - 10.0 ** -p[1])
)  # 0.1 .. 1e-15 rad off
away_pitch = st.floats(-1.5, 1.5)
any_pitch = st.one_of(exact_pitch, near_pitch, away_pitch)
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-5}  # rad, angle of the residual rotation


def residual_angle(euler: np.ndarray, matrix: np.ndarray) -> float:
    """Angle (rad) of the rotation between ``Rotation.from_euler("xyz", euler)`` and ``matrix``."""
    return float((Rotation.from_euler("xyz", euler) * Rotation.from_matrix(matrix).inv()).magnitude())


@settings(max_examples=300, deadline=None)
@given(roll=angle, pitch=any_pitch, yaw=angle, dtype=st.sampled_from([torch.float64, torch.float32]))
def test_matrix_to_euler_gives_back_the_rotation_at_near_and_away_from_gimbal_lock(roll, pitch, yaw, dtype):
    matrix = Rotation.from_euler("xyz", [roll, pitch, yaw]).as_matrix()
    euler = pose.matrix_to_euler_xyz(torch.from_numpy(matrix).to(dtype)).double().numpy()
    assert np.all(np.isfinite(euler)) and abs(euler[1]) <= HALF_PI + 1e-6
    assert residual_angle(euler, matrix) < TOLERANCE[dtype]


@settings(max_examples=100, deadline=None)
@given(roll=angle, yaw=angle, pitch=exact_pitch)
def test_at_gimbal_lock_the_angles_are_scipys(roll, yaw, pitch):
    # Only roll - sin(pitch) yaw is defined there; both conventions put it all in roll, yaw 0.
    matrix = Rotation.from_euler("xyz", [roll, pitch, yaw]).as_matrix()
    euler = pose.matrix_to_euler_xyz(torch.from_numpy(matrix)).numpy()
    with pytest.warns(UserWarning, match="Gimbal lock"):
        expected = Rotation.from_matrix(matrix).as_euler("xyz")
    difference = (euler - expected + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(difference, 0.0, atol=1e-9)


def test_the_issue_example_roll_0_pitch_90_yaw_half_is_exact():
    # Issue 14: this pose came back 51-70 degrees off before the singular branch.
    matrix = Rotation.from_euler("xyz", [0.0, HALF_PI, 0.5]).as_matrix()
    for dtype in (torch.float64, torch.float32):
        euler = pose.matrix_to_euler_xyz(torch.from_numpy(matrix).to(dtype)).double().numpy()
        assert residual_angle(euler, matrix) < TOLERANCE[dtype]


@settings(max_examples=200, deadline=None)
@given(
    state=st.tuples(angle, any_pitch, angle),
    action=st.tuples(*[st.floats(-0.3, 0.3)] * 3),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_apply_action_composes_like_scipy_near_gimbal_lock(state, action, dtype):
    """The planner's rollouts (apply_action, float32 on CPU) stay exact when the tool points sideways."""
    state7 = torch.tensor([0.5, 0.0, 0.2, *state, 0.0], dtype=dtype)
    action7 = torch.tensor([0.0, 0.0, 0.0, *action, 0.0], dtype=dtype)
    moved = pose.apply_action(state7, action7).double().numpy()
    expected = (Rotation.from_euler("xyz", action) * Rotation.from_euler("xyz", state)).as_matrix()  # R_delta @ R
    assert residual_angle(moved[3:6], expected) < 2 * TOLERANCE[dtype]
