"""``jepa-mpc render-tasks``: one PNG strip per task from the exterior camera, for the README and docs.

    jepa-mpc render-tasks --out docs/images
    jepa-mpc render-tasks --out docs/images --tasks lang-touch lang-lift lang-push lang-place

Each strip shows ``--frames`` evenly spaced frames of a scripted-expert episode (no noise) followed,
after a gap, by the episode's goal image; a language task's strip has the episode's instruction above
it. ``sim_tasks.png`` stacks the single-cube tasks' strips, ``sim_language_tasks.png`` the language
tasks', and ``sim_instructions.png`` shows a few instructions of each language task (seeds ``--seed``
onwards) with their first frame and goal image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jepa_mpc_foundation.atomic_files import atomic_path
from sim import ENV_IDS, LANGUAGE_TASKS, env_id
from sim.config import SimConfig

GAP = 6  # pixels of white between frames (twice that before the goal image)
INSTRUCTIONS_PER_TASK = 2  # episodes per language task in sim_instructions.png


def captioned(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` [H, W, 3] with a white band above it that holds ``text`` (Pillow's default font)."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(8, min(16, image.shape[1] // 24))
    band = Image.new("RGB", (image.shape[1], size + 8), "white")
    ImageDraw.Draw(band).text((4, 3), text, fill="black", font=ImageFont.load_default(size=size))
    return np.concatenate([np.asarray(band), image], axis=0)


def task_strip(task: str, image_size: int, frames: int, seed: int) -> np.ndarray:
    """uint8 [H, W_total, 3]: ``frames`` expert frames then the goal image, exterior camera; a language
    task's with its instruction above."""
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
    strip = np.concatenate(parts, axis=1)
    return captioned(strip, f"{task}: {info['instruction']}") if task in LANGUAGE_TASKS else strip


def instruction_cells(task: str, image_size: int, seed: int, count: int) -> list[np.ndarray]:
    """``count`` images [H, W, 3] of a language task, seeds ``seed`` onwards: the instruction above the first
    frame and the goal image."""
    import gymnasium

    from sim.env import EXTERIOR_IMAGE

    env = gymnasium.make(ENV_IDS[task][0], config=SimConfig(image_size=image_size))
    white = np.full((image_size, GAP, 3), 255, np.uint8)
    cells = []
    for episode in range(seed, seed + count):
        obs, info = env.reset(seed=episode)
        cells.append(
            captioned(np.concatenate([obs[EXTERIOR_IMAGE], white, info["goal_image"]], axis=1), info["instruction"])
        )
    env.close()
    return cells


def stack(images: list[np.ndarray], axis: int) -> np.ndarray:
    """``images`` side by side (axis 1) or one above the other (axis 0), GAP white pixels between them."""
    shape = list(images[0].shape)
    shape[axis] = GAP
    gap = np.full(shape, 255, np.uint8)
    return np.concatenate([part for image in images for part in (image, gap)][:-1], axis=axis)


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
    """Write ``sim_<task>.png`` per task to ``config.out``, and the stacked strips: ``sim_tasks.png`` of the
    single-cube tasks, ``sim_language_tasks.png`` of the language tasks, and with those ``sim_instructions.png``
    (each only if ``config.tasks`` has such tasks)."""
    out = Path(config.out)
    strips = {}
    for task in tqdm(config.tasks, desc="render-tasks", unit="task"):
        strips[task] = task_strip(task, config.image_size, config.frames, config.seed)
        save_png(out / f"sim_{task}.png", strips[task])
    written = [f"sim_{t}.png" for t in config.tasks]
    language = [task for task in config.tasks if task in LANGUAGE_TASKS]
    single_cube = [task for task in config.tasks if task not in LANGUAGE_TASKS]
    for name, tasks in (("sim_tasks.png", single_cube), ("sim_language_tasks.png", language)):
        if tasks:  # a language task's strip has a caption: the two kinds are not stacked together
            save_png(out / name, stack([strips[task] for task in tasks], axis=0))
            written.append(name)
    if language:
        rows = [
            stack(instruction_cells(task, config.image_size, config.seed, INSTRUCTIONS_PER_TASK), axis=1)
            for task in tqdm(language, desc="render-tasks: instructions", unit="task")
        ]
        save_png(out / "sim_instructions.png", stack(rows, axis=0))
        written.append("sim_instructions.png")
    print(f"render-tasks: wrote {', '.join(written)} to {out}")
