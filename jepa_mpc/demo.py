"""``jepa-mpc demo`` (what ``make demo`` runs): one goal-image episode in MuJoCo with the default model.

The robot is shown the episode's goal image, plans with CEM in the world model's embedding space,
executes the first action, observes and plans again. Writes to ``--out``:

- ``episode.gif``: the exterior camera beside the goal image, with the energy over time;
- ``summary.json``: success, steps, final distance, planning latency percentiles, energies.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from foundation.atomic_files import write_text_atomic

DEMO_TASK = "reach"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jepa-mpc demo", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default=DEMO_TASK, help=f"sim task (default: {DEMO_TASK})")
    parser.add_argument("--seed", type=int, default=1000, help="episode seed (held out from training data)")
    parser.add_argument("--checkpoint", default="", help="world model checkpoint (default: the shipped model)")
    parser.add_argument("--max-steps", type=int, default=0, help="planner steps (0 = the task's default)")
    parser.add_argument("--device", default="", help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--out", default="demo_out", help="output folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")

    from jepa_mpc.evaluation.runner import evaluate_one_episode_setup, run_episode
    from jepa_mpc.evaluation.config import EvalConfig
    from jepa_mpc.episode_video import write_gif

    config = EvalConfig.for_task(args.task, episodes=1, seed=args.seed, checkpoint=args.checkpoint,
                                 device=args.device, max_steps=args.max_steps, policies=("world_model",))
    env, policy, checkpoint = evaluate_one_episode_setup(config)
    print(f"demo: task {args.task}, seed {args.seed}, model {checkpoint}")
    try:
        result, frames = run_episode(env, policy, args.seed, config, record=True, progress=True)
    finally:
        env.close()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gif = write_gif(out / "episode.gif", frames, fps=2.0)
    latencies = np.array(result.latencies_s or [float("nan")])
    summary = {
        "task": args.task,
        "seed": args.seed,
        "checkpoint": str(checkpoint),
        "success": result.success,
        "steps": result.steps,
        "final_distance_m": result.final_distance,
        "planning_latency_ms": {
            "p50": float(np.percentile(latencies, 50) * 1e3),
            "p90": float(np.percentile(latencies, 90) * 1e3),
            "max": float(latencies.max() * 1e3),
        },
        "energies": result.energies,
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1))
    status = "success" if result.success else "not solved"
    print(f"demo: {status} after {result.steps} steps, final distance {result.final_distance:.3f} m, "
          f"planning {summary['planning_latency_ms']['p50']:.0f} ms/step (p50)")
    print(f"demo: wrote {gif.resolve()} and {(out / 'summary.json').resolve()}")
    return 0
