"""How much the key light's position changes what the cameras see, with its shadows and without.

For each seed, renders the first frame of a task episode (both cameras, the evaluation's 64 px) three
times: with the key light at its nominal position, and moved as ``--sim.randomization.light_position``
0.15 m (the training range) and 0.3 m (beyond it) would move it. The randomisation's uniform draws take
the same stream whatever their ranges, so the three frames of a seed differ only in where the light
stands, along one direction (the same scenes ``jepa-mpc eval --seed S`` renders with those flags).
Prints the mean absolute pixel change (0-255, both views) against the nominal frame, with the light's
shadows and without (``SimConfig.shadows``); saves the first seed's frames as a PNG strip
(rows: shadows on / off; columns: nominal, 0.15 m, 0.3 m; each exterior | wrist)::

    MUJOCO_GL=egl python bench/light_offsets.py --seeds 20 --image docs/images/light_offsets.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402

import sim  # noqa: E402
from jepa_mpc.model_settings import needs_of, sim_for_planning  # noqa: E402
from jepa_mpc_foundation.configuration import from_dict  # noqa: E402
from sim.config import SimConfig  # noqa: E402
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE  # noqa: E402

OFFSETS = (0.0, 0.15, 0.3)  # --sim.randomization.light_position, m per axis


def first_frames(task: str, seeds: list[int], shadows: bool, light_position: float) -> np.ndarray:
    """``[len(seeds), H, 2H, 3]`` uint8 (H = the default model's 64 px): each seed's first frame, exterior | wrist."""
    settings = {"shadows": shadows, "randomization": {"light_position": light_position}}
    scene = from_dict(SimConfig, settings, "light_offsets", defaults=sim_for_planning(needs_of()))
    env = gymnasium.make(sim.env_id(task), config=scene).unwrapped
    frames = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        frames.append(np.concatenate([obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE]], axis=1))
    env.close()
    return np.stack(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="push", help="sim task whose episodes are rendered (default push)")
    parser.add_argument("--seeds", type=int, default=20, help="episodes from seed 1000 (the evaluation's)")
    parser.add_argument("--image", type=Path, help="write the first seed's frames here (PNG)")
    args = parser.parse_args()
    if args.seeds < 1:
        raise SystemExit(f"--seeds must be >= 1, got {args.seeds}")

    seeds = list(range(1000, 1000 + args.seeds))
    strip = []
    print(
        f"{args.task}, seeds {seeds[0]}-{seeds[-1]}: mean |pixel change| (0-255, both views) against the nominal light"
    )
    print("| shadows | light moved <= 0.15 m (training range) | <= 0.3 m (beyond) |")
    print("|---|---|---|")
    for shadows in (True, False):
        frames = [first_frames(args.task, seeds, shadows, offset).astype(np.float32) for offset in OFFSETS]
        change = [np.abs(moved - frames[0]).mean() for moved in frames[1:]]
        print(f"| {'on' if shadows else 'off'} | {change[0]:.1f} | {change[1]:.1f} |")
        strip.append(np.concatenate([f[0] for f in frames], axis=1))
    if args.image:
        from PIL import Image

        image = np.concatenate(strip, axis=0).astype(np.uint8)
        args.image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).resize((image.shape[1] * 3, image.shape[0] * 3), Image.NEAREST).save(args.image)
        print(f"wrote {args.image}")


if __name__ == "__main__":
    main()
