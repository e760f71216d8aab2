"""``jepa-mpc render-tasks``: one PNG strip per task from the exterior camera, for the README and docs.

    jepa-mpc render-tasks --out docs/images

Each strip shows ``--frames`` evenly spaced frames of a scripted-expert episode (no noise) followed,
after a gap, by the episode's goal image. ``tasks.png`` stacks all strips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jepa_mpc_foundation.atomic_files import atomic_path
from sim import ENV_IDS, env_id
from sim.config import SimConfig

GAP = 6  # pixels of white between frames (twice that before the goal image)


def task_strip(task: str, image_size: int, frames: int, seed: int) -> np.ndarray:
    """uint8 [H, W_total, 3]: ``frames`` expert frames then the goal image, exterior camera."""
    import gymnasium

    from sim.env import EXTERIOR_IMAGE
    from sim.experts import make_expert

    env = gymnasium.make(ENV_IDS[task][0], config=SimConfig(image_size=image_size))
    expert = make_expert(task, env, np.random.default_rng(seed))
    obs, info = env.reset(seed=seed)
    expert.reset()
    images, done = [obs[EXTERIOR_IMAGE]], False
    while not done:
        obs, _, terminated, truncated, _ = env.step(expert.act(obs))
        images.append(obs[EXTERIOR_IMAGE])
        done = terminated or truncated
    env.close()
    picks = np.linspace(0, len(images) - 1, frames).round().astype(int)
    white = np.full((image_size, GAP, 3), 255, np.uint8)
    parts = []
    for i in picks:
        parts += [images[i], white]
    parts += [white, info["goal_image"]]
    return np.concatenate(parts, axis=1)


def save_png(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png")


@dataclass
class GalleryConfig:
    """``jepa-mpc render-tasks``: which tasks, at which size, into which folder."""

    out: str = field(default="docs/images", metadata={"help": "output folder"})
    image_size: int = field(default=192, metadata={"help": "pixels per frame"})
    frames: int = field(default=4, metadata={"help": "expert frames per strip"})
    seed: int = field(default=0, metadata={"help": "episode seed"})
    tasks: tuple[str, ...] = field(default=tuple(ENV_IDS), metadata={"help": "tasks to draw"})

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        for task in self.tasks:
            env_id(task)  # ValueError naming the valid tasks


def render_tasks(config: GalleryConfig) -> None:
    """Write ``sim_<task>.png`` per task and ``sim_tasks.png`` (all strips stacked) to ``config.out``."""
    out = Path(config.out)
    strips = []
    for task in tqdm(config.tasks, desc="render-tasks", unit="task"):
        strip = task_strip(task, config.image_size, config.frames, config.seed)
        save_png(out / f"sim_{task}.png", strip)
        strips.append(strip)
    gap = np.full((GAP, strips[0].shape[1], 3), 255, np.uint8)
    save_png(out / "sim_tasks.png", np.concatenate([part for s in strips for part in (s, gap)][:-1], axis=0))
    print(f"render-tasks: wrote {', '.join(f'sim_{t}.png' for t in config.tasks)} and sim_tasks.png to {out}")
