"""The scripted experts of the language tasks: success, wrong object moved, steps, per family and split.

Runs each language task's expert (``sim.experts.make_expert``, noise 0.002 m as tests/test_sim_experts.py,
no failure episodes) render-free on seeds ``--seed`` .. ``--seed + --episodes - 1``, with the instructions of
each split (``train``: what ``jepa-mpc collect`` records; ``heldout``: what an evaluation asks for later),
to the end of the episode (as ``collect`` records it), and prints one Markdown row per task and split:
successes at the last step, episodes in which a cube other than the named one moved (>= 2 cm) or was
touched, and the mean step of the first success::

    MUJOCO_GL=egl python bench/language_experts.py --episodes 20 --seed 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402

import sim  # noqa: E402
from sim.config import SimConfig  # noqa: E402
from sim.experts import make_expert  # noqa: E402


def run(task: str, split: str, seeds: range, noise: float) -> dict:
    env = gymnasium.make(sim.env_id(task), config=SimConfig(render_images=False), instructions=split)
    expert = make_expert(task, env, np.random.default_rng(0), noise=noise)
    success, wrong, first_success, failed = 0, 0, [], []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        expert.reset()
        touched_wrong, step, first, done = False, 0, None, False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            step += 1
            touched_wrong |= any(body != info["target_object"] for body in info["touched_objects"])
            if info["is_success"] and first is None:
                first = step
            done = terminated or truncated
        success += info["is_success"]
        wrong += info["wrong_object_moved"] or touched_wrong
        if first is not None:
            first_success.append(first)
        if not info["is_success"]:
            failed.append(f"{seed}: {info['instruction']!r}")
    env.close()
    return {"success": success, "wrong": wrong, "first": first_success, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.002)
    parser.add_argument("--tasks", nargs="+", default=list(sim.LANGUAGE_TASKS))
    parser.add_argument("--splits", nargs="+", default=["train", "heldout"])
    args = parser.parse_args()
    seeds = range(args.seed, args.seed + args.episodes)
    print("| task | instructions | success | wrong object moved or touched | mean step of first success | s |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        for split in args.splits:
            start = time.perf_counter()
            result = run(task, split, seeds, args.noise)
            n = len(seeds)
            print(
                f"| {task} | {split} | {result['success']}/{n} | {result['wrong']}/{n} | "
                f"{np.mean(result['first']):.1f} | {time.perf_counter() - start:.0f} |",
                flush=True,
            )
            for failure in result["failed"]:
                print(f"  failed: {task} seed {failure}", file=sys.stderr)


if __name__ == "__main__":
    main()
