"""The gymnasium tasks: API conformance, determinism, safety, rendering and goal images (64 x 64)."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.config import SimConfig
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE

SMALL = SimConfig(image_size=64)


def make(task: str, config: SimConfig = SMALL):
    return gymnasium.make(sim.env_id(task), config=config)


@pytest.mark.parametrize("task", sorted(sim.ENV_IDS))
def test_check_env_and_shapes(task):
    env = make(task, SimConfig(image_size=64, shadows=False))  # the same API at half the rendering time
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs["state"].shape == (7,) and obs["state"].dtype == np.float32
    for key in (EXTERIOR_IMAGE, WRIST_IMAGE):
        assert obs[key].shape == (64, 64, 3) and obs[key].dtype == np.uint8
    assert info["goal_image"].shape == (64, 64, 3) and info["goal_state"].shape == (7,)
    np.testing.assert_array_equal(info["goal_image"], env.unwrapped.goal_image())
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.isfinite(obs["state"]).all() and np.isfinite(reward) and isinstance(info["is_success"], bool)
    env.close()


def test_registered_on_import_with_episode_lengths():
    for env_id, _, steps in sim.ENV_IDS.values():
        assert gymnasium.spec(env_id).max_episode_steps == steps
    with pytest.raises(ValueError, match="unknown task"):
        sim.env_id("juggle")


def test_reset_is_deterministic_by_seed_and_seeds_differ():
    env_a, env_b = make("pickplace"), make("pickplace")
    actions = np.random.default_rng(0).uniform(-0.03, 0.03, (3, 7))
    obs_a, info_a = env_a.reset(seed=11)
    obs_b, info_b = env_b.reset(seed=11)
    for action in actions:
        obs_a, *_ = env_a.step(action)
        obs_b, *_ = env_b.step(action)
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    np.testing.assert_array_equal(info_a["goal_image"], info_b["goal_image"])
    obs_c, info_c = env_b.reset(seed=12)
    assert not np.array_equal(info_a["goal_image"], info_c["goal_image"])


def test_images_are_not_blank_and_differ_between_scenes():
    env = make("push")
    obs_1, info_1 = env.reset(seed=1)
    obs_2, _ = env.reset(seed=2)
    for key in (EXTERIOR_IMAGE, WRIST_IMAGE):
        image = obs_1[key].astype(float)
        assert image.std() > 10 and 20 < image.mean() < 235, key
        assert np.abs(obs_1[key].astype(int) - obs_2[key].astype(int)).mean() > 1.0, key
    # The goal image shows another scene than the first frame (cube moved into the zone, arm moved).
    assert np.abs(info_1["goal_image"].astype(int) - obs_1[EXTERIOR_IMAGE].astype(int)).mean() > 1.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_and_does_not_step(bad):
    env = make("reach", SimConfig(render_images=False))
    env.reset(seed=0)
    before = env.unwrapped.data.qpos.copy()
    action = np.zeros(7)
    action[3] = bad
    action[6] = bad
    with pytest.raises(ValueError, match=r"drx \(index 3\).*dgripper \(index 6\)"):
        env.step(action)
    np.testing.assert_array_equal(env.unwrapped.data.qpos, before)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6))


def test_actions_are_clipped_to_step_norms_and_workspace():
    config = SimConfig(render_images=False)
    env = make("reach", config)
    obs, _ = env.reset(seed=0)
    state = obs["state"]
    obs, _, _, _, info = env.step(np.array([1.0, 1.0, 0.0, 0.0, 0.0, 2.0, 5.0]))
    assert info["action_clipped"]
    assert np.linalg.norm(obs["state"][:3] - state[:3]) <= config.max_position_step + 2e-3
    for _ in range(8):  # drive down and sideways: the target stays in the workspace box
        obs, *_ = env.step(np.array([0.0, -0.08, -0.08, 0.0, 0.0, 0.0, 0.0]))
    low, high = np.array(config.workspace_low), np.array(config.workspace_high)
    assert np.all(obs["state"][:3] >= low - 3e-3) and np.all(obs["state"][:3] <= high + 3e-3)
    assert obs["state"][2] == pytest.approx(low[2], abs=3e-3) and obs["state"][1] == pytest.approx(low[1], abs=3e-3)


def test_render_free_mode_and_config_validation():
    env = make("grasp", SimConfig(render_images=False))
    obs, info = env.reset(seed=0)
    assert set(obs) == {"state"} and "goal_image" not in info and info["goal_state"].shape == (7,)
    with pytest.raises(RuntimeError, match="render_images"):
        env.unwrapped.goal_image()
    with pytest.raises(ValueError, match="image_size"):
        SimConfig(image_size=8)
    with pytest.raises(ValueError, match="whole multiple"):
        SimConfig(control_hz=3.0, physics_dt=0.004)
    with pytest.raises(ValueError, match="workspace_low"):
        SimConfig(workspace_low=(0.8, -0.3, 0.0))


@pytest.mark.skipif(bool(__import__("ctypes.util").util.find_library("OSMesa")), reason="OSMesa is installed here")
def test_missing_gl_library_gives_a_clear_message_and_physics_still_runs():
    import os
    import subprocess
    import sys

    code = (
        "import gymnasium, sim\n"
        "from sim.config import SimConfig\n"
        "env = gymnasium.make(sim.env_id('reach'), config=SimConfig(render_images=False))\n"
        "env.reset(seed=0)\n"
        "gymnasium.make(sim.env_id('reach'), config=SimConfig(image_size=64))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"},
    )
    assert result.returncode != 0
    assert "Could not create an OpenGL context" in result.stderr and "render_images=False" in result.stderr


@pytest.mark.parametrize("task, count", [("reach", 0), ("push", 4), ("grasp", 3), ("pickplace", 6)])
def test_multi_stage_tasks_render_their_subgoals(task, count):
    env = make(task)
    obs, info = env.reset(seed=5)
    images, states = info["subgoal_images"], info["subgoal_states"]
    assert images.shape == (count, 64, 64, 3) and images.dtype == np.uint8 and states.shape == (count, 7)
    # the wrist camera's view of each scene too (a two-view model's goals), another camera than the exterior
    wrist = np.concatenate([info["subgoal_wrist_images"], info["goal_wrist_image"][None]])
    assert wrist.shape == (count + 1, 64, 64, 3) and wrist.dtype == np.uint8
    assert np.abs(wrist.astype(int) - np.concatenate([images, info["goal_image"][None]])).mean() > 10
    # each image shows a new scene (consecutive images differ), and the env is back at the start afterwards
    sequence = np.concatenate([images, info["goal_image"][None]]).astype(int)
    assert all(np.abs(sequence[i + 1] - sequence[i]).max() > 30 for i in range(count))
    np.testing.assert_allclose(env.unwrapped.robot.state(), obs["state"], atol=1e-5)
    if task in ("grasp", "pickplace"):  # around the cube, open; then closed on it, where the cube is
        cube = env.unwrapped.cube_position()
        np.testing.assert_allclose(states[1, :3], cube, atol=0.01)
        assert states[1, 6] < 0.1 < states[2, 6]
    env.close()


def test_push_sets_the_fingers_first_then_pushes_with_them_across_the_line():
    # Fingers across the line put both fingertips on the cube's back face; along it, one finger's 2 cm
    # edge pushes and the cube slides off (docs/benchmarks.md, "Planner fixes", "Push").
    from planner.config import PlannerConfig
    from planner.subgoals import GoalSequence
    from sim.tasks.push import PUSH_CLOSEDNESS, push_rotation

    for heading in np.linspace(-np.pi, np.pi, 13):
        direction = np.array([np.cos(heading), np.sin(heading)])
        rotation = push_rotation(direction)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        assert abs(rotation[:2, 1] @ direction) < 1e-9  # the fingers slide along the hand's y axis
        assert rotation[2, 2] == pytest.approx(-1.0)  # pointing down
        assert rotation[0, 0] >= -1e-9  # within +-90 degrees of the unturned hand
    env = make("push")
    obs, info = env.reset(seed=3)
    states = np.concatenate([info["subgoal_states"], info["goal_state"][None]])
    np.testing.assert_allclose(states[:, 6], PUSH_CLOSEDNESS, atol=0.03)  # the gripper as shown in every image
    # The fingers are set first, the hand where it starts: the planner then holds the hand and plans the
    # gripper alone, and holds the gripper after (set during the approach, it drifted shut). Then the
    # turned hand above the cube, as a grasp approaches it, before the spot behind it.
    cube = env.unwrapped.cube_position()
    np.testing.assert_allclose(states[1, :2], cube[:2], atol=0.01)
    assert states[1, 2] > states[2, 2] > states[3, 2]  # above the cube, above the spot behind it, lowered there
    goals = GoalSequence.from_poses(np.zeros((len(states), 8, 8, 3), np.uint8), states, obs["state"], PlannerConfig())
    assert goals.keeps_pose(0) and not goals.keeps_gripper(0)
    assert all(goals.keeps_gripper(i) and not goals.keeps_pose(i) for i in range(1, len(states)))
    env.close()


def test_the_exterior_camera_is_configurable():
    from sim.config import CameraConfig

    wide = make("reach").reset(seed=4)[0][EXTERIOR_IMAGE]
    tight = make("reach", SimConfig(image_size=64, camera=CameraConfig(fovy=36.0, target=(0.5, 0.0, 0.08))))
    assert tight.unwrapped.model.cam_fovy[tight.unwrapped.scene.exterior_camera] == 36.0
    assert np.abs(tight.reset(seed=4)[0][EXTERIOR_IMAGE].astype(int) - wide.astype(int)).mean() > 5
    with pytest.raises(ValueError, match="camera.fovy"):
        CameraConfig(fovy=200.0)
    with pytest.raises(ValueError, match="5 cm"):
        CameraConfig(eye=(0.5, 0.0, 0.1), target=(0.5, 0.0, 0.08))


def test_pushing_fingertips_are_not_squeezed_shut():
    """The gripper squeezes what it pinches, not what its fingertips push: squeezing the push contact
    closed the 3 cm push fingers step by step until the cube slid off one edge (docs/benchmarks.md)."""
    from sim.experts import make_expert
    from sim.tasks.push import PUSH_CLOSEDNESS, PUSH_HEIGHT

    env = make("push", SimConfig(render_images=False)).unwrapped
    obs, _ = env.reset(seed=1014)
    expert = make_expert("push", env, np.random.default_rng(0))
    expert.reset()
    pushing = []  # closedness while the hand is down at push height and the cube moves
    for _ in range(40):
        cube = env.cube_position().copy()
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        if obs["state"][2] < PUSH_HEIGHT + 0.01 and np.linalg.norm(env.cube_position() - cube) > 0.005:
            pushing.append(obs["state"][6])
        if terminated or truncated:
            break
    env.close()
    assert len(pushing) >= 3 and info["is_success"]
    assert max(pushing) < PUSH_CLOSEDNESS + 0.05, pushing
