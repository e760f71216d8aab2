"""Why the true-state oracle fails push: where the hand and the cube end in each failed episode.

The oracle plans with the true end-effector state and the evaluation's settings (sub-goals, holds),
exactly as ``jepa-mpc eval --policies oracle`` does. For each episode this prints nothing; at the end,
over the failures: how far the hand ended from its goal pose, how far the cube ended off the
start -> zone line (m), and which share of that line it travelled. A hand at its goal with the cube
off the line means the cube slid off the fingers: a ceiling of a hand-only oracle, not of the planner.

    MUJOCO_GL=egl python bench/push_oracle_failures.py [--episodes 50] [--seed 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402

import sim  # noqa: E402
from jepa_mpc.evaluation.config import EvalConfig  # noqa: E402
from jepa_mpc.evaluation.policies import make_policy  # noqa: E402
from sim.env import EXTERIOR_IMAGE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first episode")
    args = parser.parse_args()

    config = EvalConfig.for_task("push", policies=("oracle",))
    env = gymnasium.make(sim.env_id("push"), config=config.sim).unwrapped
    policy = make_policy("oracle", config, world_model=None)
    failures = []  # (hand to goal, cube off the line, share of the line travelled)
    for seed in tqdm(range(args.seed, args.seed + args.episodes), desc="push/oracle", unit="episode"):
        obs, info = env.reset(seed=seed)
        goals = config.episode_goals(info, obs["state"])
        policy.reset(goals)
        start = env.cube_position()[:2].copy()
        for _ in range(config.steps_per_episode(goals)):
            action, _ = policy.act(obs[EXTERIOR_IMAGE], obs["state"])
            obs, _, _, _, info = env.step(action)
            if info["is_success"]:
                break
        if info["is_success"]:
            continue
        line = env.zone - start  # [2] m, start -> zone
        moved = env.cube_position()[:2] - start
        lateral = abs(moved[0] * line[1] - moved[1] * line[0]) / np.linalg.norm(line)
        failures.append(
            (np.linalg.norm(obs["state"][:3] - goals.states[-1][:3]), lateral, moved @ line / (line @ line))
        )
    env.close()
    print(f"{len(failures)} of {args.episodes} episodes failed")
    if failures:
        hand, lateral, travelled = np.array(failures).T
        print(f"hand to its goal: median {np.median(hand):.3f} m, max {hand.max():.3f} m")
        print(f"cube off the push line: median {np.median(lateral):.3f} m")
        print(f"share of the line the cube travelled: median {np.median(travelled):.2f}")


if __name__ == "__main__":
    main()
