"""The Cartesian controller reaches commanded poses within the tolerance stated in docs/sim.md."""

import gymnasium
import numpy as np
import torch
from scipy.spatial.transform import Rotation

import sim
from jepa_mpc_foundation.pose import apply_action
from sim.config import SimConfig

# docs/sim.md: after one control step the TCP is within 5 mm (2 mm on average) and 0.01 rad of the
# commanded pose, and the gripper within 0.01 of the commanded closedness (in free air).
POSITION_TOL, MEAN_POSITION_TOL, ROTATION_TOL, GRIPPER_TOL = 5e-3, 2e-3, 1e-2, 1e-2


def test_one_control_step_reaches_the_commanded_pose():
    env = gymnasium.make(sim.env_id("reach"), config=SimConfig(render_images=False))
    rng = np.random.default_rng(0)
    position_errors = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(10):
            action = np.concatenate([rng.uniform(-0.05, 0.05, 3), rng.uniform(-0.2, 0.2, 3), [rng.uniform(-1, 1)]])
            commanded = apply_action(
                torch.from_numpy(obs["state"].astype(np.float64)), torch.from_numpy(action)
            ).numpy()
            obs, _, _, _, info = env.step(action)
            assert not info["action_clipped"]
            # The safe target differs from the plain one only where the workspace box clipped it.
            inside = np.allclose(env.unwrapped.commanded_state[:3], commanded[:3])
            commanded = env.unwrapped.commanded_state
            reached = obs["state"].astype(np.float64)
            position_errors.append(np.linalg.norm(reached[:3] - commanded[:3]))
            assert position_errors[-1] < POSITION_TOL, (
                f"seed {seed}: {position_errors[-1]:.4f} m (inside box: {inside})"
            )
            rotation_error = Rotation.from_euler("xyz", commanded[3:6]) * Rotation.from_euler("xyz", reached[3:6]).inv()
            assert rotation_error.magnitude() < ROTATION_TOL
            assert abs(reached[6] - commanded[6]) < GRIPPER_TOL
    assert np.mean(position_errors) < MEAN_POSITION_TOL


def test_zero_action_holds_pose_and_gripper_points_down():
    env = gymnasium.make(sim.env_id("reach"), config=SimConfig(render_images=False))
    obs, _ = env.reset(seed=4)
    start = obs["state"].copy()
    for _ in range(8):
        obs, *_ = env.step(np.zeros(7))
    np.testing.assert_allclose(obs["state"][:3], start[:3], atol=2e-3)
    tcp_z_axis = Rotation.from_euler("xyz", obs["state"][3:6].astype(np.float64)).as_matrix()[:, 2]
    assert tcp_z_axis[2] < -0.99  # approach axis points down
