"""Fingerprints of the single-cube tasks' first observations, so that a test can tell that a seed still gives
the scene it gave (tests/test_sim_language.py). Made with the code of the commit to compare with:

    PYTHONPATH=<that checkout>:tests MUJOCO_GL=egl python -m first_frames tests/fixtures/single_cube_first_frames.npz

Nothing here imports more than the gymnasium ids and ``SimConfig``, which every commit since the tasks has.
"""

from __future__ import annotations

import sys

import numpy as np

SINGLE_CUBE_TASKS = ("reach", "push", "grasp", "pickplace")
SEED = 7


def first_frame_fingerprints(tasks=SINGLE_CUBE_TASKS, seed: int = SEED) -> dict[str, np.ndarray]:
    """Per task: the numbers a reset decides (state, goal and sub-goal states, object and zone poses, colours,
    camera and light; float64) and 16 x 16 thumbnails (float32 [3, 16, 16, 3]: exterior and wrist camera, goal
    image) of the 64 px images."""
    import gymnasium

    import sim
    from sim.config import SimConfig

    fingerprints = {}
    for task in tasks:
        env = gymnasium.make(sim.env_id(task), config=SimConfig(image_size=64))
        obs, info = env.reset(seed=seed)
        model, data = env.unwrapped.model, env.unwrapped.data
        numbers = [obs["state"], info["goal_state"], info["subgoal_states"], data.qpos, data.mocap_pos]
        numbers += [
            model.geom_rgba,
            model.mat_rgba,
            model.cam_pos,
            model.cam_quat,
            model.light_pos,
            model.light_diffuse,
        ]
        fingerprints[f"{task}_numbers"] = np.concatenate([np.ravel(n) for n in numbers]).astype(np.float64)
        images = np.stack([obs["exterior_image_1_left"], obs["wrist_image_left"], info["goal_image"]])
        fingerprints[f"{task}_thumbnails"] = images.reshape(3, 16, 4, 16, 4, 3).mean(axis=(2, 4)).astype(np.float32)
        env.close()
    return fingerprints


if __name__ == "__main__":
    np.savez_compressed(sys.argv[1], **first_frame_fingerprints())
