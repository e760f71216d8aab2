"""The 7-D pose convention of foundation/pose.py, as a numpy twin for the simulator's inner loops.

Same formulas, same conventions (extrinsic xyz Euler, ``R = Rz @ Ry @ Rx``; action rotation
``R_next = R_delta @ R``; gripper added and clipped to [0, 1]); tests/test_sim_rotations.py checks
that both agree. The simulator uses numpy here because the controller calls these functions hundreds
of times per action, where torch's per-call overhead dominates.
Shapes: any leading batch ``[..., 7]`` / ``[..., 3]`` / ``[..., 3, 3]``.
"""
from __future__ import annotations

import numpy as np


def euler_xyz_to_matrix(euler: np.ndarray) -> np.ndarray:
    """Extrinsic xyz Euler angles ``[..., 3]`` -> rotation matrices ``[..., 3, 3]``."""
    euler = np.asarray(euler, dtype=np.float64)
    rx, ry, rz = euler[..., 0], euler[..., 1], euler[..., 2]
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rows = [
        cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx,
        sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx,
        -sy, cy * sx, cy * cx,
    ]
    return np.stack(rows, axis=-1).reshape(euler.shape[:-1] + (3, 3))


def matrix_to_euler_xyz(matrix: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` -> extrinsic xyz Euler angles ``[..., 3]`` (pitch in [-pi/2, pi/2])."""
    m = np.asarray(matrix, dtype=np.float64)
    rx = np.arctan2(m[..., 2, 1], m[..., 2, 2])
    ry = np.arctan2(-m[..., 2, 0], np.sqrt(m[..., 0, 0] ** 2 + m[..., 1, 0] ** 2))
    rz = np.arctan2(m[..., 1, 0], m[..., 0, 0])
    return np.stack([rx, ry, rz], axis=-1)


def apply_action(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Move 7-D states by 7-D actions (see foundation.pose.apply_action)."""
    state, action = np.asarray(state, dtype=np.float64), np.asarray(action, dtype=np.float64)
    rotation = euler_xyz_to_matrix(action[..., 3:6]) @ euler_xyz_to_matrix(state[..., 3:6])
    gripper = np.clip(state[..., 6:7] + action[..., 6:7], 0.0, 1.0)
    return np.concatenate([state[..., :3] + action[..., :3], matrix_to_euler_xyz(rotation), gripper], axis=-1)


def action_between(state: np.ndarray, next_state: np.ndarray) -> np.ndarray:
    """The 7-D action taking ``state`` to ``next_state`` (see foundation.pose.action_between)."""
    state, next_state = np.asarray(state, dtype=np.float64), np.asarray(next_state, dtype=np.float64)
    rotation = euler_xyz_to_matrix(next_state[..., 3:6]) @ np.swapaxes(euler_xyz_to_matrix(state[..., 3:6]), -1, -2)
    return np.concatenate(
        [next_state[..., :3] - state[..., :3], matrix_to_euler_xyz(rotation), next_state[..., 6:7] - state[..., 6:7]],
        axis=-1,
    )


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """A single rotation matrix ``[3, 3]`` -> axis * angle ``[3]`` (angle in [0, pi]); the controller's error."""
    m = np.asarray(matrix, dtype=np.float64)
    cos_angle = np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    axis_sin = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / 2.0  # axis * sin(angle)
    if angle < 1e-6:
        return axis_sin
    if angle > np.pi - 1e-4:
        # Near pi, sin(angle) vanishes: read the axis from the symmetric part,
        # (R + R^T) / 2 - cos(angle) I = (1 - cos(angle)) a a^T.
        sym = ((m + m.T) / 2.0 - cos_angle * np.eye(3)) / (1.0 - cos_angle)
        column = int(np.argmax(np.diag(sym)))
        axis = sym[:, column] / np.sqrt(max(sym[column, column], 1e-12))
        if axis @ axis_sin < 0:  # keep the direction the (small) antisymmetric part still tells
            axis = -axis
        return axis * angle
    return axis_sin * (angle / np.sin(angle))


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Axis * angle ``[3]`` -> rotation matrix ``[3, 3]`` (Rodrigues)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross
