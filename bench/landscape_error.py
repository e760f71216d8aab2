"""How far the world model's one-step energy minimum lies from the true displacement (cm).

For each held-out episode (seeds 1000+, never trained on) the task's scripted expert acts in the
evaluation's scene (``jepa-mpc eval``'s ``--sim`` settings: 64 px, 2 Hz, so one env step is one
predictor step of 0.5 s). For every step whose hand moves at least 1 cm and whose gripper stays still, the frame
before is the context,
the frame after is the goal, and the energy of every translation of a grid (dx, dy in [-6, 6] cm,
dz in [-4, 4] cm, 1 cm apart) is the planner's (mean L1 between predicted and goal tokens, as
``jepa-mpc energy``). The error is the distance between the grid's minimum and the true displacement
(the expert's executed end-effector translation). A perfect predictor scores <= 0.9 cm (half a grid
diagonal); "standing still" (a zero displacement) scores the mean true step length, printed beside.

Prints the mean and median error per task and writes ``OUT.json``::

    MUJOCO_GL=egl python bench/landscape_error.py --checkpoint runs/x/predictor/model.pt --out runs/x/landscape
    MUJOCO_GL=egl python bench/landscape_error.py --checkpoint ... --sim.camera.fovy 36   # any --sim.* flag
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402

import sim  # noqa: E402
from jepa_mpc.energy_landscape import energy_grid  # noqa: E402
from jepa_mpc.model_settings import needs_of, sim_for_planning  # noqa: E402
from jepa_mpc_foundation.atomic_files import write_text_atomic  # noqa: E402
from jepa_mpc_foundation.configuration import parse_config  # noqa: E402
from sim.config import SimConfig  # noqa: E402
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from worldmodel.preprocess import model_view  # noqa: E402
from worldmodel.world_model import load_world_model  # noqa: E402

GRID_XY = np.linspace(-0.06, 0.06, 13)  # m
GRID_Z = np.linspace(-0.04, 0.04, 9)  # m
GRIPPER_STILL = 0.05  # a step whose gripper state changes more than this is left out (the grid holds it)
MIN_MOTION = 0.01  # m; a step whose hand moves less is left out (standing still is the easy case)


def episode_pairs(task: str, seed: int, sim_config: SimConfig, max_steps: int, views: int = 1) -> list[tuple]:
    """(frame before [H, W, 3], frame after, state before [7], true translation [3] m) of one expert episode.

    ``views`` 2: each frame is the exterior and wrist views side by side (``model_view``), [H, 2W, 3].
    """
    env = gymnasium.make(sim.env_id(task), config=sim_config).unwrapped
    expert = make_expert(task, env, np.random.default_rng(seed))
    obs, _ = env.reset(seed=seed)
    expert.reset()
    pairs = []
    for _ in range(max_steps):
        next_obs, _, terminated, truncated, _ = env.step(expert.act(obs))
        moved = np.linalg.norm(next_obs["state"][:3] - obs["state"][:3])
        if abs(next_obs["state"][6] - obs["state"][6]) < GRIPPER_STILL and moved >= MIN_MOTION:
            before, after = (model_view(o[EXTERIOR_IMAGE], o[WRIST_IMAGE], views) for o in (obs, next_obs))
            pairs.append(
                (
                    before,
                    after,
                    obs["state"].astype(np.float32),
                    (next_obs["state"][:3] - obs["state"][:3]).astype(np.float64),
                )
            )
        obs = next_obs
        if terminated or truncated:
            break
    env.close()
    return pairs


@dataclass
class LandscapeBenchConfig:
    """The checkpoint, the held-out episodes and the evaluation's scene (any ``--sim.*`` flag of ``jepa-mpc eval``)."""

    checkpoint: str = field(metadata={"help": "world model checkpoint"})
    tasks: tuple[str, ...] = field(default=("reach", "grasp"), metadata={"help": "tasks whose expert moves"})
    episodes: int = field(default=10, metadata={"help": "episodes per task"})
    seed: int = field(default=1000, metadata={"help": "seed of the first episode"})
    max_steps: int = field(default=12, metadata={"help": "expert steps per episode"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    device: str = field(
        default="cpu", metadata={"help": "cpu or cuda (cuda plans in bf16, so its numbers differ slightly from cpu's)"}
    )
    out: str = field(default="landscape_error", metadata={"help": "output path (.json)"})
    sim: SimConfig = field(default_factory=lambda: sim_for_planning(needs_of()))  # the shipped model's scene


def main() -> None:
    args = parse_config(LandscapeBenchConfig, sys.argv[1:], "bench/landscape_error.py", __doc__.splitlines()[0])
    torch.set_num_threads(args.threads)
    sim_config = args.sim

    model = load_world_model(args.checkpoint, device=args.device)
    results = {"checkpoint": args.checkpoint, "episodes": args.episodes, "seed": args.seed, "tasks": {}}
    for task in args.tasks:
        errors, steps = [], []
        for seed in tqdm(range(args.seed, args.seed + args.episodes), desc=f"{task} landscapes", unit="episode"):
            for before, after, state, true in episode_pairs(
                task, seed, sim_config, args.max_steps, model.config.predictor.views
            ):
                tokens = model.encode_frames(np.stack([before, after]))  # [1, 2, N, D]
                context_states = torch.as_tensor(state)[None, None]  # [1, 1, 7]; energy_grid moves it to the model
                energies = energy_grid(
                    model,
                    tokens[:, :1],
                    context_states,
                    tokens[0, 1],
                    GRID_XY,
                    GRID_XY,
                    GRID_Z,
                    batch_size=512,
                    progress=False,
                )  # [Z, Y, X]
                z, y, x = np.unravel_index(np.nanargmin(energies), energies.shape)
                minimum = np.array([GRID_XY[x], GRID_XY[y], GRID_Z[z]])
                errors.append(float(np.linalg.norm(minimum - true)) * 100)
                steps.append(float(np.linalg.norm(true)) * 100)
        errors, steps = np.array(errors), np.array(steps)
        results["tasks"][task] = {
            "pairs": len(errors),
            "mean_cm": float(errors.mean()),
            "median_cm": float(np.median(errors)),
            "step_cm": float(steps.mean()),
            "errors_cm": errors.round(2).tolist(),
        }
        print(
            f"{task}: {len(errors)} steps, energy minimum {errors.mean():.2f} cm (mean), "
            f"{np.median(errors):.2f} cm (median) from the true displacement; mean step {steps.mean():.2f} cm"
        )
    out = Path(args.out).with_suffix(".json")
    write_text_atomic(out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
