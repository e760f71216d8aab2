"""How well does each model's goal policy read scenes beyond its training ranges? (issue 28, offline)

Scores the first action each checkpoint's goal policy proposes on every frame of the given datasets, with the
episode's last frame as the goal (what ``jepa-mpc train-policy`` scores on its held-out episodes): the L1 in
units of the policy's action spread, the zero action's L1 (what it must beat) and the hand's translation error.
Run it on demonstrations recorded in the training ranges and beyond them (``--sim.randomization.*``) to see
how much of the policy's reading the scene takes, before any 20-minute evaluation.

    python bench/policy_scenes.py --checkpoints worldmodel/default_model/model.pt runs/policy/model.pt \\
        --data in=runs/in/pickplace_expert,runs/in/push_expert wide=runs/wide/pickplace_expert,runs/wide/push_expert

Results: docs/benchmarks.md, "The goal policy trained in wider scenes".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from worldmodel.training.config import TrainGoalPolicyConfig
from worldmodel.training.episodes import open_episodes
from worldmodel.training.feature_cache import cache_frozen_tokens, load_frozen_world_model
from worldmodel.training.train_goal_policy import HindsightSamples, validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", required=True, help="world models holding a goal policy")
    parser.add_argument(
        "--data", nargs="+", required=True, help="NAME=DIR[,DIR...]: a named group of datasets (LeRobot folders)"
    )
    args = parser.parse_args()

    torch.set_num_threads(2)
    data = TrainGoalPolicyConfig().data
    groups = {}
    for spec in args.data:
        name, sep, folders = spec.partition("=")
        if not sep or not folders:
            raise SystemExit(f"--data {spec!r}: write NAME=DIR[,DIR...]")
        groups[name] = folders.split(",")
    print("| checkpoint | data | frames | first-action L1 | zero action | hand error (mm) |")
    print("|---|---|---|---|---|---|")
    for checkpoint in map(Path, args.checkpoints):
        world_model = load_frozen_world_model(checkpoint, data)
        if world_model.goal_policy is None:
            raise SystemExit(f"--checkpoints {checkpoint}: holds no goal policy (jepa-mpc train-policy)")
        policy = world_model.goal_policy
        tubelet = world_model.config.encoder.tubelet_size
        for name, folders in groups.items():
            source = open_episodes(folders, data.camera, data.sample_fps, wrist_camera=data.wrist_camera)
            cache = cache_frozen_tokens(source, world_model, checkpoint, data, "cpu")
            samples = HindsightSamples(cache, list(range(len(cache.episodes))), tubelet, policy.config.chunk)
            scores = validate(policy, samples, 1024, torch.device("cpu"))
            print(
                f"| {checkpoint} | {name} | {scores.frames} | {scores.l1:.4f} | {scores.zero_action_l1:.4f} | "
                f"{1000 * scores.translation_error_m:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
