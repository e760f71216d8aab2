"""``jepa-mpc eval``: success rate of goal-image planning in the MuJoCo tasks, with baselines.

Each episode is seeded (``seed``, ``seed + 1``, ...), so every policy meets the same scenes:

- ``world_model``: CEM MPC in the world model's embedding space toward the episode's goal image;
- ``random``: uniform random actions within the planner's limits (the floor);
- ``oracle``: the same CEM planner with a perfect model of the end-effector state, planning toward the
  goal image's true 7-D state (the ceiling: what a perfect world model would reach with this planner).

Multi-stage tasks (push, grasp, pickplace) are planned through the task's sub-goal images, each
the goal for a number of steps (``planner.subgoals``), as the reference plans pick-and-place;
``--subgoals false`` plans toward the final goal image alone.

The world-model share of the gap is ``oracle - world_model``. One env step is one predictor step
(``config.step_seconds`` of robot time, 0.5 s for 4 fps / 2-frame tubelets), so the env runs at
``1 / step_seconds`` Hz. Writes ``results.json``, ``results.md`` and a few GIFs to ``--out``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jepa_mpc.atomic import write_text_atomic
from jepa_mpc.config_io import add_dataclass_arguments, build_dataclass, flags_to_nested, load_yaml, merge_nested
from planner.config import GRIPPER_DIM, PlannerConfig
from planner.subgoals import GoalSequence

POLICIES = ("world_model", "random", "oracle")
# Planner steps (one per predictor step) an episode may take, per task.
DEFAULT_MAX_STEPS = {"reach": 16, "push": 40, "grasp": 24, "pickplace": 40}
# The evaluation's planner: cheaper than the reference's 400 x 10, so that 50 episodes fit a CPU.
EVAL_PLANNER = {"samples": 128, "iterations": 6, "topk": 12}
# Planner settings of the multi-stage tasks, under the flags and the YAML file. With sub-goals a
# few centimetres apart, the terminal energy alone lets the first of two planned steps wander (the
# second step comes back), and a grasp needs the hand turned to the cube: both stop a true-state
# oracle from grasping (docs/benchmarks.md has the numbers).
TASK_PLANNER = {
    "push": {"energy": "terminal+intermediate"},
    "grasp": {"energy": "terminal+intermediate", "plan_rotation": True},
    "pickplace": {"energy": "terminal+intermediate", "plan_rotation": True},
}


def task_planner_values(task: str) -> dict:
    """The PlannerConfig fields the evaluation uses for ``task``: ``EVAL_PLANNER`` with ``TASK_PLANNER`` over it."""
    return {**EVAL_PLANNER, **TASK_PLANNER.get(task, {})}


@dataclass
class EvalConfig:
    task: str = field(default="reach", metadata={"help": "reach, push, grasp or pickplace"})
    episodes: int = field(default=50, metadata={"help": "seeded episodes per policy"})
    seed: int = field(default=1000, metadata={"help": "seed of the first episode (held out from training data)"})
    checkpoint: str = field(default="", metadata={"help": "world model checkpoint; empty = the shipped default model"})
    device: str = field(default="", metadata={"help": "cpu or cuda; empty = cuda when present"})
    policies: tuple[str, ...] = field(default=POLICIES, metadata={"help": "which policies to run"})
    max_steps: int = field(
        default=0, metadata={"help": "planner steps per episode; 0 = the task's default or the sub-goal schedule's"}
    )
    subgoals: bool = field(default=True, metadata={"help": "plan through the task's sub-goal images (if it has any)"})
    hold_gripper: bool = field(
        default=False,
        metadata={"help": "with sub-goals: hold the gripper still while a sub-goal keeps the previous one's gripper state"},
    )
    threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = torch's default (1 when running two evals side by side)"})
    videos: int = field(default=3, metadata={"help": "episodes per policy saved as GIF"})
    planner: PlannerConfig = field(default_factory=lambda: PlannerConfig(**EVAL_PLANNER))

    def __post_init__(self) -> None:
        if self.task not in DEFAULT_MAX_STEPS:
            raise ValueError(f"task must be one of {sorted(DEFAULT_MAX_STEPS)}, got {self.task!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        unknown = set(self.policies) - set(POLICIES)
        if unknown:
            raise ValueError(f"unknown policies {sorted(unknown)}; choose from {POLICIES}")

    @classmethod
    def for_task(cls, task: str, **fields) -> "EvalConfig":
        """The evaluation config of ``task`` with its planner settings (``TASK_PLANNER``) and ``fields``."""
        return cls(task=task, planner=PlannerConfig(**task_planner_values(task)), **fields)

    def steps_per_episode(self, goals: GoalSequence) -> int:
        """The step limit of an episode with ``goals``: the given one, else long enough for the whole schedule."""
        return self.max_steps or max(DEFAULT_MAX_STEPS[self.task], goals.total_steps)

    def episode_goals(self, info: dict, start_state: np.ndarray) -> GoalSequence:
        """The goal images of an episode from the env's reset ``info``: sub-goals (if used) and the goal."""
        goal_image, goal_state = info["goal_image"], info["goal_state"]
        if not self.subgoals or len(info["subgoal_states"]) == 0:
            return GoalSequence.single(goal_image, goal_state, start_state, self.planner)
        images = np.concatenate([info["subgoal_images"], goal_image[None]])
        states = np.concatenate([info["subgoal_states"], goal_state[None]])
        return GoalSequence.from_poses(images, states, start_state, self.planner)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%, unlike the normal one)."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


# ---------------------------------------------------------------------------------------- policies
class RandomPolicy:
    """Uniform random actions inside the planner's translation/gripper limits (rotation held)."""

    def __init__(self, config: PlannerConfig, seed: int) -> None:
        self.config, self.rng = config, np.random.default_rng(seed)

    def reset(self, goals: GoalSequence) -> None:
        self.goal_image = goals.images[-1]

    def act(self, image: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, dict]:
        direction = self.rng.normal(size=3)
        translation = direction / np.linalg.norm(direction) * self.config.max_translation * self.rng.uniform() ** (1 / 3)
        gripper = self.rng.uniform(-self.config.max_gripper, self.config.max_gripper)
        return np.concatenate([translation, np.zeros(3), [gripper]]).astype(np.float32), {}


class PlannerPolicy:
    """Goal-image MPC with a world model (``world_model``) or with the true state (``oracle``), aiming at
    each image of a :class:`GoalSequence` in turn."""

    def __init__(self, world_model, config: PlannerConfig, state_oracle: bool = False, hold_gripper: bool = False) -> None:
        from planner.mpc import GoalImageMPC

        self.world_model = world_model
        self.free_gripper = GoalImageMPC(world_model, config)
        self.held_gripper = None  # the same planner with the gripper delta fixed at 0 (--hold_gripper)
        if hold_gripper and GRIPPER_DIM not in config.fixed_dims:
            held = dataclasses.replace(
                config, fixed_dims=(*config.fixed_dims, GRIPPER_DIM), fixed_values=(*config.fixed_values, 0.0)
            )
            self.held_gripper = GoalImageMPC(world_model, held)
        self.mpc = self.free_gripper
        self.state_oracle = state_oracle

    def _view(self, image: np.ndarray, state: np.ndarray) -> np.ndarray:
        # The oracle's "camera" is the analytic model's exact encoding of the true state.
        return self.world_model.render(state) if self.state_oracle else image

    def reset(self, goals: GoalSequence) -> None:
        self.goals, self.steps_taken, self.goal_index = goals, 0, -1
        self._aim(0)

    def _aim(self, index: int) -> None:
        if index != self.goal_index:
            self.goal_index = index
            self.goal_image = self.goals.images[index]
            hold = self.held_gripper is not None and self.goals.keeps_gripper(index)
            self.mpc = self.held_gripper if hold else self.free_gripper
            self.mpc.set_goal(self._view(self.goal_image, self.goals.states[index]))

    def act(self, image: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, dict]:
        self._aim(self.goals.index_at(self.steps_taken))
        step = self.mpc.act(self._view(image, state), state)
        self.steps_taken += 1
        return step.action, {
            "energy": step.energy,
            "energy_spread": step.energy_spread,
            "latency_s": step.latency_s,
            "goal_index": self.goal_index,
        }


def make_policy(name: str, config: EvalConfig, world_model):
    if name == "random":
        return RandomPolicy(config.planner, seed=config.seed)
    if name == "oracle":
        from planner.analytic import AnalyticWorldModel

        return PlannerPolicy(AnalyticWorldModel(), config.planner, state_oracle=True, hold_gripper=config.hold_gripper)
    return PlannerPolicy(world_model, config.planner, hold_gripper=config.hold_gripper)


# ---------------------------------------------------------------------------------------- episodes
@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    final_distance: float
    energies: list[float]
    latencies_s: list[float]


def run_episode(
    env, policy, seed: int, config: EvalConfig, record: bool = False, progress: bool = False
) -> tuple[EpisodeResult, list[np.ndarray]]:
    """One seeded episode; stops at success. Returns the result and (if ``record``) the video frames,
    each showing the camera beside the image the policy aimed at."""
    from tqdm import tqdm

    from jepa_mpc.episode_video import compose_frame
    from sim.env import EXTERIOR_IMAGE

    obs, info = env.reset(seed=seed)
    goals = config.episode_goals(info, obs["state"])
    max_steps = config.steps_per_episode(goals)
    policy.reset(goals)
    energies: list[float] = []
    latencies: list[float] = []
    frames = [compose_frame(obs[EXTERIOR_IMAGE], policy.goal_image, energies, max_steps)] if record else []
    steps = 0
    bar = tqdm(total=max_steps, desc=f"seed {seed}", unit="step", disable=not progress)
    while steps < max_steps and not info["is_success"]:
        action, diagnostics = policy.act(obs[EXTERIOR_IMAGE], obs["state"])
        obs, _, _, _, info = env.step(action)
        steps += 1
        bar.update(1)
        if "energy" in diagnostics:
            energies.append(float(diagnostics["energy"]))
            latencies.append(float(diagnostics["latency_s"]))
        if record:
            frames.append(compose_frame(obs[EXTERIOR_IMAGE], policy.goal_image, energies, max_steps))
    bar.close()
    result = EpisodeResult(seed, bool(info["is_success"]), steps, float(info["distance"]), energies, latencies)
    return result, frames


def summarize(name: str, results: list[EpisodeResult]) -> dict:
    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, len(results))
    latencies = np.array([t for r in results for t in r.latencies_s]) if any(r.latencies_s for r in results) else None
    return {
        "policy": name,
        "episodes": len(results),
        "successes": successes,
        "success_rate": successes / len(results),
        "success_ci95": [low, high],
        "final_distance_mean": float(np.mean([r.final_distance for r in results])),
        "steps_mean": float(np.mean([r.steps for r in results])),
        "latency_ms_p50": float(np.percentile(latencies, 50) * 1e3) if latencies is not None else None,
        "latency_ms_p95": float(np.percentile(latencies, 95) * 1e3) if latencies is not None else None,
    }


def markdown_table(task: str, summaries: list[dict]) -> str:
    lines = [
        "| task | policy | episodes | success | 95% CI | final distance (m) | steps | plan ms p50 / p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        latency = "-" if s["latency_ms_p50"] is None else f"{s['latency_ms_p50']:.0f} / {s['latency_ms_p95']:.0f}"
        low, high = s["success_ci95"]
        lines.append(
            f"| {task} | {s['policy']} | {s['episodes']} | {100 * s['success_rate']:.0f}% | "
            f"{100 * low:.0f}-{100 * high:.0f}% | {s['final_distance_mean']:.3f} | {s['steps_mean']:.1f} | {latency} |"
        )
    return "\n".join(lines) + "\n"


def make_env_for_model(task: str, model_config):
    """The task env rendering at the model's input size, one env step per predictor step."""
    import gymnasium

    import sim
    from sim.config import SimConfig

    sim_config = SimConfig(image_size=model_config.encoder.img_size, control_hz=1.0 / model_config.step_seconds)
    return gymnasium.make(sim.env_id(task), config=sim_config).unwrapped


def evaluate_one_episode_setup(config: EvalConfig):
    """Env, world-model policy and checkpoint path for a single-episode run (the demo)."""
    from jepa_mpc.default_model import resolve_checkpoint
    from worldmodel import load_world_model

    checkpoint = resolve_checkpoint(config.checkpoint)
    world_model = load_world_model(checkpoint, device=config.device or None)
    env = make_env_for_model(config.task, world_model.config)
    return env, make_policy("world_model", config, world_model), checkpoint


def evaluate(config: EvalConfig, out: Path) -> list[dict]:
    """Run every policy of ``config`` on the same seeded episodes; write results and GIFs to ``out``."""
    from tqdm import tqdm

    from jepa_mpc.default_model import resolve_checkpoint
    from jepa_mpc.episode_video import write_gif
    from worldmodel import load_world_model

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    world_model = load_world_model(resolve_checkpoint(config.checkpoint), device=config.device or None)
    env = make_env_for_model(config.task, world_model.config)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    try:
        for name in config.policies:
            policy = make_policy(name, config, world_model)
            results = []
            for i in tqdm(range(config.episodes), desc=f"{config.task}/{name}", unit="episode"):
                record = i < config.videos
                result, frames = run_episode(env, policy, config.seed + i, config, record)
                results.append(result)
                if record:
                    write_gif(out / f"{config.task}_{name}_seed{result.seed}.gif", frames, fps=2.0)
            summaries.append(summarize(name, results) | {"per_episode": [r.__dict__ for r in results]})
    finally:
        env.close()
    report = {
        "task": config.task,
        "checkpoint": str(resolve_checkpoint(config.checkpoint)),
        "config": dataclasses.asdict(config),
        "summaries": summaries,
    }
    write_text_atomic(out / "results.json", json.dumps(report, indent=1))
    write_text_atomic(out / "results.md", markdown_table(config.task, summaries))
    return summaries


def parse_eval_args(argv: list[str]) -> tuple[EvalConfig, Path]:
    """The config and output folder of ``jepa-mpc eval ARGV``: flags over ``--config`` YAML over the
    task's planner settings (``TASK_PLANNER``) over the defaults."""
    parser = argparse.ArgumentParser(prog="jepa-mpc eval", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML file with EvalConfig fields (flags override it)")
    parser.add_argument("--out", default="eval_out", help="folder for results.json, results.md and GIFs")
    add_dataclass_arguments(parser, EvalConfig, prefix="")
    args = parser.parse_args(argv)
    values = load_yaml(args.config) if args.config else {}
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "out") and "." not in k}
    values = merge_nested(values, flags)
    values = merge_nested(values, {"planner": flags_to_nested(args, "planner")})
    task = values.get("task", EvalConfig.task)
    values = merge_nested({"planner": task_planner_values(task)}, values)
    return build_dataclass(EvalConfig, values, where="eval config"), Path(args.out)


def main(argv: list[str]) -> int:
    config, out = parse_eval_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    summaries = evaluate(config, out)
    print(markdown_table(config.task, summaries))
    print(f"results: {out.resolve()}/results.md, results.json and GIFs")
    return 0
