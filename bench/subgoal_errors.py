"""Where a policy's hand is when each sub-goal's time runs out: the stage at which an episode goes wrong.

Runs ``jepa-mpc eval``'s policy (world model or true-state oracle, same planner, sub-goals and holds)
and, at the last step of every sub-goal window, compares the robot's state with the state shown in
that sub-goal's image: position error (cm), rotation error (deg), gripper closedness error. Prints the
median and 90th percentile per sub-goal over the episodes, and the success rate::

    MUJOCO_GL=egl python bench/subgoal_errors.py --task grasp --episodes 10 [--checkpoint model.pt] [--policies oracle]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402

import sim  # noqa: E402
from jepa_mpc.evaluation.config import EvalConfig, task_defaults  # noqa: E402
from jepa_mpc.evaluation.policies import make_policy  # noqa: E402
from jepa_mpc_foundation.configuration import parse_config  # noqa: E402
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE  # noqa: E402
from worldmodel.preprocess import model_view  # noqa: E402


def stage_errors(state: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """(position error cm, rotation error deg, gripper error) of 7-D ``state`` against 7-D ``target``."""
    position = float(np.linalg.norm(state[:3] - target[:3])) * 100
    relative = Rotation.from_euler("xyz", target[3:6]) * Rotation.from_euler("xyz", state[3:6]).inv()
    return position, float(np.degrees(relative.magnitude())), float(abs(state[6] - target[6]))


def main() -> None:
    config = parse_config(
        EvalConfig, sys.argv[1:], "bench/subgoal_errors.py", __doc__.splitlines()[0], defaults=task_defaults
    )
    policy_name = config.policies[0]  # the first of --policies (default: world_model)
    if config.threads:
        torch.set_num_threads(config.threads)
    world_model = None
    if policy_name == "world_model":
        from worldmodel.checkpoint import resolve_checkpoint
        from worldmodel.world_model import load_world_model

        world_model = load_world_model(resolve_checkpoint(config.checkpoint), device=config.device or "cpu")
    env = gymnasium.make(sim.env_id(config.task), config=config.sim).unwrapped
    policy = make_policy(policy_name, config, world_model)
    per_stage: dict[int, list[tuple[float, float, float]]] = {}
    successes = 0
    for seed in tqdm(
        range(config.seed, config.seed + config.episodes), desc=f"{config.task}/{policy_name}", unit="episode"
    ):
        obs, info = env.reset(seed=seed)
        goals = config.episode_goals(info, obs["state"], policy.views)
        policy.reset(goals)
        ends = np.cumsum(goals.steps)  # the step after which each window ends
        for step in range(config.steps_per_episode(goals)):
            action, _ = policy.act(model_view(obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE], policy.views), obs["state"])
            obs, _, _, _, info = env.step(action)
            index = goals.index_at(step)
            last = index == goals.num_subgoals  # the final goal's window lasts to the episode's end
            if step + 1 == (config.steps_per_episode(goals) if last else ends[index]):
                per_stage.setdefault(index, []).append(stage_errors(obs["state"], goals.states[index]))
        successes += bool(info["is_success"])
    env.close()
    print(f"{config.task}/{policy_name}: {successes}/{config.episodes} successes")
    print("sub-goal | episodes | position cm (median, p90) | rotation deg (median, p90) | gripper (median, p90)")
    for index in sorted(per_stage):
        errors = np.array(per_stage[index])
        cells = " | ".join(f"{np.median(errors[:, k]):.2f}, {np.percentile(errors[:, k], 90):.2f}" for k in range(3))
        print(f"{index} | {len(errors)} | {cells}")


if __name__ == "__main__":
    main()
