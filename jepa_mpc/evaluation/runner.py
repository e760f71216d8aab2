"""Seeded episodes of every policy on the same scenes; results, tables and GIFs to a folder."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foundation.atomic_files import write_json_atomic, write_text_atomic
from jepa_mpc.evaluation.config import EvalConfig
from jepa_mpc.evaluation.policies import make_policy
from jepa_mpc.evaluation.report import markdown_table, summarize


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    final_distance: float
    energies: list[float]
    latencies_s: list[float]
    surprises: list[float | None] = dataclasses.field(default_factory=list)
    """Per planner step: mean L1 per token between the frame and the plan's prediction of it (None: none)."""
    replanned: list[bool] = dataclasses.field(default_factory=list)
    """Per planner step: searched (True) or kept the plan's next step (surprise gating)."""


def run_episode(
    env, policy, seed: int, config: EvalConfig, record: bool = False, progress: bool = False
) -> tuple[EpisodeResult, list[np.ndarray]]:
    """One seeded episode; stops at success. Returns the result and (if ``record``) the video frames,
    each showing the camera (both views for a two-view model: ``policy.views``) beside the image the
    policy aimed at."""
    from tqdm import tqdm

    from jepa_mpc.episode_video import compose_frame
    from jepa_mpc.evaluation.config import model_view
    from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE

    def camera(obs: dict) -> np.ndarray:
        return model_view(obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE], policy.views)

    obs, info = env.reset(seed=seed)
    goals = config.episode_goals(info, obs["state"], policy.views)
    max_steps = config.steps_per_episode(goals)
    policy.reset(goals)
    energies: list[float] = []
    latencies: list[float] = []
    surprises: list[float | None] = []
    replanned: list[bool] = []
    frames = [compose_frame(camera(obs), policy.goal_image, energies, max_steps)] if record else []
    steps = 0
    bar = tqdm(total=max_steps, desc=f"seed {seed}", unit="step", disable=not progress)
    while steps < max_steps and not info["is_success"]:
        action, diagnostics = policy.act(camera(obs), obs["state"])
        obs, _, _, _, info = env.step(action)
        steps += 1
        bar.update(1)
        if "energy" in diagnostics:
            energies.append(float(diagnostics["energy"]))
            latencies.append(float(diagnostics["latency_s"]))
            surprises.append(diagnostics.get("surprise"))
            replanned.append(bool(diagnostics.get("replanned", True)))
        if record:
            frames.append(compose_frame(camera(obs), policy.goal_image, energies, max_steps))
    bar.close()
    result = EpisodeResult(seed, bool(info["is_success"]), steps, float(info["distance"]), energies, latencies,
                           surprises, replanned)
    return result, frames


def make_env_for_model(config: EvalConfig, model_config):
    """The task env of ``config.sim``, checked against the model: one env step per predictor step.

    Raises:
        ValueError: ``sim.control_hz`` is not one action per predictor step of the model (the
            message gives the rate to use).
    """
    import math

    import gymnasium

    import sim

    step_hz = 1.0 / model_config.step_seconds
    if not math.isclose(config.sim.control_hz, step_hz, rel_tol=1e-6):
        raise ValueError(
            f"--sim.control_hz {config.sim.control_hz:g} does not match the model's predictor step of "
            f"{model_config.step_seconds:g} s: use --sim.control_hz {step_hz:g}"
        )
    if config.sim.image_size != model_config.encoder.img_size:
        print(f"eval: the camera renders {config.sim.image_size} px, the model sees {model_config.encoder.img_size} px "
              "(frames are resized as a real camera's are; --sim.image_size sets the camera)")
    return gymnasium.make(sim.env_id(config.task), config=config.sim).unwrapped


def evaluate_one_episode_setup(config: EvalConfig):
    """Env, world-model policy and checkpoint path for a single-episode run (the demo)."""
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel import load_world_model

    checkpoint = resolve_checkpoint(config.checkpoint)
    world_model = load_world_model(checkpoint, device=config.device or None)
    env = make_env_for_model(config, world_model.config)
    return env, make_policy("world_model", config, world_model), checkpoint


def evaluate(config: EvalConfig) -> list[dict]:
    """Run every policy of ``config`` on the same seeded episodes; write results and GIFs to ``config.out``."""
    from tqdm import tqdm

    from worldmodel.checkpoint import resolve_checkpoint
    from jepa_mpc.episode_video import write_gif
    from worldmodel import load_world_model

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    world_model = load_world_model(resolve_checkpoint(config.checkpoint), device=config.device or None)
    env = make_env_for_model(config, world_model.config)
    out = Path(config.out)
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
    write_json_atomic(out / "results.json", report)
    write_text_atomic(out / "results.md", markdown_table(config.task, summaries))
    return summaries


def run_evaluation(config: EvalConfig) -> None:
    """``jepa-mpc eval``: evaluate, then print the results table and where the files are."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    summaries = evaluate(config)
    print(markdown_table(config.task, summaries))
    print(f"results: {Path(config.out).resolve()}/results.md, results.json" + (" and GIFs" if config.videos else ""))
