"""The simulator's numpy pose convention (sim/rotations.py) agrees with foundation/pose.py."""
import numpy as np
import pytest
import torch

from sim import rotations
from foundation import pose


@pytest.fixture
def states() -> np.ndarray:
    rng = np.random.default_rng(0)
    states = np.concatenate([rng.uniform(-1, 1, (64, 3)), rng.uniform(-np.pi, np.pi, (64, 3)), rng.uniform(0, 1, (64, 1))], 1)
    states[:8, 3] = np.pi - 1e-3  # roll at the +-pi seam, as with the gripper pointing down
    states[8:16, 3] = -np.pi + 1e-3
    states[:, 4] = np.clip(states[:, 4], -1.4, 1.4)  # away from the pitch singularity
    return states


def test_numpy_twin_matches_torch_convention(states):
    rng = np.random.default_rng(1)
    actions = np.concatenate([rng.normal(0, 0.05, (64, 3)), rng.normal(0, 0.3, (64, 3)), rng.normal(0, 0.5, (64, 1))], 1)
    t_states, t_actions = torch.from_numpy(states), torch.from_numpy(actions)
    np.testing.assert_allclose(rotations.euler_xyz_to_matrix(states[:, 3:6]),
                               pose.euler_xyz_to_matrix(t_states[:, 3:6]).numpy(), atol=1e-12)
    np.testing.assert_allclose(rotations.apply_action(states, actions), pose.apply_action(t_states, t_actions).numpy(), atol=1e-10)
    moved = rotations.apply_action(states, actions)
    np.testing.assert_allclose(rotations.action_between(states, moved),
                               pose.action_between(t_states, torch.from_numpy(moved)).numpy(), atol=1e-10)


def test_rotvec_round_trip_including_near_pi():
    rng = np.random.default_rng(2)
    for angle in [0.0, 1e-8, 0.3, 2.0, np.pi - 1e-5, np.pi]:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        matrix = rotations.rotvec_to_matrix(axis * angle)
        back = rotations.rotvec_to_matrix(rotations.matrix_to_rotvec(matrix))
        np.testing.assert_allclose(back, matrix, atol=1e-6)
