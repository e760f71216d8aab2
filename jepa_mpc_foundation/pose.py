"""The 7-D pose convention shared with DROID and V-JEPA 2-AC, in torch.

State ``[x, y, z, rx, ry, rz, g]``: end-effector position (m, robot base frame), orientation as
*extrinsic* xyz Euler angles (rad; ``R = Rz(rz) @ Ry(ry) @ Rx(rx)``, scipy's ``"xyz"``), gripper
closedness in [0, 1].

Action ``[dx, dy, dz, drx, dry, drz, dg]``: position delta, rotation delta ``R_delta = R_next @ R^T``
written as extrinsic xyz Euler angles (applied on the left: ``R_next = R_delta @ R``), gripper delta.

Rotations are always composed as matrices, never by subtracting Euler angles: DROID's roll sits at
+-pi when the gripper points down, where Euler differences jump by 2 pi.
All functions take any leading batch shape ``[..., 7]`` and run on the tensors' device, in the
tensors' dtype (float64 for exact round trips; tests/test_pose.py checks them against scipy's
``Rotation.from_euler("xyz")``). This is the one implementation of the convention: code on numpy
arrays outside the planner (sim, ROS) uses ``scipy.spatial.transform.Rotation`` with ``"xyz"``
(lower case = extrinsic in scipy; MuJoCo's ``mju_euler2Quat`` spells the same convention ``"XYZ"``).
"""

from __future__ import annotations

import torch
from torch import Tensor

STATE_DIM = 7
"""``[x, y, z, rx, ry, rz, g]``."""
ACTION_DIM = 7
"""``[dx, dy, dz, drx, dry, drz, dg]``."""
TRANSLATION_DIMS = (0, 1, 2)
"""Indices of the position (m) in a state and of its delta in an action."""
ROTATION_DIMS = (3, 4, 5)
"""Indices of the extrinsic xyz Euler angles (rad) in a state and of the rotation delta in an action."""
GRIPPER_DIM = 6
"""Index of the gripper closedness in [0, 1] (state) and of its delta (action)."""


def euler_xyz_to_matrix(euler: Tensor) -> Tensor:
    """Extrinsic xyz Euler angles ``[..., 3]`` -> rotation matrices ``[..., 3, 3]``."""
    rx, ry, rz = euler.unbind(-1)
    cx, sx = torch.cos(rx), torch.sin(rx)
    cy, sy = torch.cos(ry), torch.sin(ry)
    cz, sz = torch.cos(rz), torch.sin(rz)
    # R = Rz @ Ry @ Rx, written out.
    rows = [
        cz * cy,
        cz * sy * sx - sz * cx,
        cz * sy * cx + sz * sx,
        sz * cy,
        sz * sy * sx + cz * cx,
        sz * sy * cx - cz * sx,
        -sy,
        cy * sx,
        cy * cx,
    ]
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))


def matrix_to_euler_xyz(matrix: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` -> extrinsic xyz Euler angles ``[..., 3]`` (rad, pitch in [-pi/2, pi/2]).

    With ``R = Rz Ry Rx``: pitch from ``R[2, 0] = -sin(ry)``, roll from the last row, and yaw from
    the first two columns *given that roll* (M. Day, "Extracting Euler angles from a rotation
    matrix", Insomniac Games, 2014): near gimbal lock (pitch +-pi/2, the tool pointing sideways)
    roll and yaw are badly determined one by one, but a yaw computed after the roll makes up for the
    roll's error, so the angles always give back ``matrix`` to rounding (an independent
    ``atan2(R[1, 0], R[0, 0])`` for yaw was tens of degrees off there). At the singularity itself
    (``cos(pitch)`` below a few ulps of the dtype) yaw is set to 0 and roll carries the whole
    rotation about the vertical axis: scipy's ``as_euler("xyz")`` convention, so the planner (torch)
    and the ROS nodes (scipy) write the same angles. tests/test_pose.py checks them against scipy
    at, near and away from the singularity.
    """
    r00, r01, r02 = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    r10, r11, r12 = matrix[..., 1, 0], matrix[..., 1, 1], matrix[..., 1, 2]
    r20, r21, r22 = matrix[..., 2, 0], matrix[..., 2, 1], matrix[..., 2, 2]
    cos_pitch = torch.sqrt(r00 * r00 + r10 * r10)
    ry = torch.atan2(-r20, cos_pitch)
    rx = torch.atan2(r21, r22)
    sx, cx = torch.sin(rx), torch.cos(rx)
    # sin(rz) = sx R02 - cx R01 and cos(rz) = cx R11 - sx R12 hold for any pitch once rx is fixed.
    rz = torch.atan2(sx * r02 - cx * r01, cx * r11 - sx * r12)
    # At the singularity R = [[0, sin(rx - s rz), ...], [0, cos(rx - s rz), ...], [-s, 0, 0]] with
    # s = sin(ry) = -R20: only rx - s rz is defined; rz = 0 gives rx = atan2(s R01, R11).
    locked = cos_pitch < 4 * torch.finfo(matrix.dtype).eps
    rx = torch.where(locked, torch.atan2(-r20 * r01, r11), rx)
    rz = torch.where(locked, torch.zeros_like(rz), rz)
    return torch.stack([rx, ry, rz], dim=-1)


def apply_action(state: Tensor, action: Tensor) -> Tensor:
    """Move 7-D states by 7-D actions: xyz added, ``R_next = R_delta @ R``, gripper added and clipped to [0, 1]."""
    position = state[..., :3] + action[..., :3]
    rotation = euler_xyz_to_matrix(action[..., 3:6]) @ euler_xyz_to_matrix(state[..., 3:6])
    gripper = (state[..., 6:7] + action[..., 6:7]).clamp(0.0, 1.0)
    return torch.cat([position, matrix_to_euler_xyz(rotation), gripper], dim=-1)


def action_between(state: Tensor, next_state: Tensor) -> Tensor:
    """The 7-D action that takes ``state`` to ``next_state`` (the inverse of :func:`apply_action`)."""
    rotation = euler_xyz_to_matrix(next_state[..., 3:6]) @ euler_xyz_to_matrix(state[..., 3:6]).transpose(-1, -2)
    return torch.cat(
        [
            next_state[..., :3] - state[..., :3],
            matrix_to_euler_xyz(rotation),
            next_state[..., 6:7] - state[..., 6:7],
        ],
        dim=-1,
    )


def actions_from_states(states: Tensor) -> Tensor:
    """States ``[..., T, 7]`` -> actions ``[..., T - 1, 7]`` with action t taking state t to state t+1."""
    return action_between(states[..., :-1, :], states[..., 1:, :])
