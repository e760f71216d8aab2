"""A generated trajectory dataset: a square that moves as the 7-D actions say.

The state's x, y (m) place the square in the image, its gripper value sets the square's colour;
actions are smooth random walks. What the next frame looks like follows from the current frame and
the action, so a trained predictor beats one that copies the last frame (the no-motion baseline).
Made with numpy in milliseconds, for tests, benchmarks and a first look at training.
"""

from __future__ import annotations

import numpy as np

from jepa_mpc_foundation.pose import STATE_DIM

from .episodes import SampledEpisode

WORKSPACE_HALF_WIDTH = 0.3  # m: x, y in [-0.3, 0.3] span the image


def render_square(state: np.ndarray, img_size: int) -> np.ndarray:
    """One uint8 ``[img_size, img_size, 3]`` frame for a 7-D state: a soft square on a colour ramp.

    The square's edges are blurred over a few pixels so that the image (and its tokens) change
    smoothly with the position, which a small predictor learns quickly.
    """
    # A fixed colour ramp: every image patch looks different, so a token's content says where it is.
    ramp = np.linspace(30, 120, img_size, dtype=np.float32)
    background = np.stack(
        np.broadcast_arrays(ramp[None, :], np.full((img_size, img_size), 60.0), ramp[:, None]), axis=-1
    )
    half_side = img_size / 6
    centre = (state[:2] / WORKSPACE_HALF_WIDTH + 1.0) / 2.0 * (img_size - 2 * half_side) + half_side  # (x, y) px
    pixels = np.arange(img_size) + 0.5
    soft = max(1.0, img_size / 16)  # edge width (px)
    cover_x = np.clip((half_side - np.abs(pixels - centre[0])) / soft + 0.5, 0, 1)  # [W]
    cover_y = np.clip((half_side - np.abs(pixels - centre[1])) / soft + 0.5, 0, 1)  # [H]
    cover = (cover_y[:, None] * cover_x[None, :])[..., None]  # [H, W, 1]
    gripper = float(np.clip(state[6], 0.0, 1.0))
    colour = np.array([230 * (1 - gripper) + 20, 220, 230 * gripper + 20], dtype=np.float32)
    return np.round(background * (1 - cover) + colour * cover).astype(np.uint8)


def moving_square_episodes(
    num_episodes: int, length: int, img_size: int = 32, seed: int = 0, step_size: float = 0.04
) -> list[SampledEpisode]:
    """``num_episodes`` episodes of ``length`` frames: frames uint8 ``[length, S, S, 3]``, states ``[length, 7]``."""
    rng = np.random.default_rng(seed)
    episodes = []
    for e in range(num_episodes):
        state = np.zeros(STATE_DIM, dtype=np.float64)
        state[:2] = rng.uniform(-WORKSPACE_HALF_WIDTH, WORKSPACE_HALF_WIDTH, size=2)
        state[2] = 0.2
        state[6] = rng.uniform(0, 1)
        velocity = rng.normal(0, step_size, size=2)
        states = []
        for _ in range(length):
            states.append(state.copy())
            velocity = 0.7 * velocity + 0.3 * rng.normal(0, step_size, size=2)
            nxt = state[:2] + velocity
            bounce = np.abs(nxt) > WORKSPACE_HALF_WIDTH  # reflect off the image border
            velocity[bounce] *= -1
            state[:2] = np.clip(state[:2] + velocity, -WORKSPACE_HALF_WIDTH, WORKSPACE_HALF_WIDTH)
            if rng.uniform() < 0.1:
                state[6] = 1.0 - state[6]
        states_array = np.asarray(states, dtype=np.float32)
        frames = np.stack([render_square(s, img_size) for s in states_array])
        episodes.append(SampledEpisode(f"square_{e:03d}", frames, states_array))
    return episodes
