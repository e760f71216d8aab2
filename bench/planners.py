"""Optimisers x budgets: ms per planning step and final energy relative to CEM 400 x 10 (issue 16).

Problems: the first frame and the goal image of held-out reach episodes (seeds 1000...), rendered
by the simulator at 64 px. Models: the shipped default model (``worldmodel/default_model/model.pt``)
and a random-weight model of the reference's layout at the size of the issue's side-by-side
measurement (``vit_micro`` encoder 128 x 4, predictor 128 x 4, 64 px; bench/plan_speed.py's "micro").

Per planner row and model: every problem is planned cold (no warm start) ``--repeats`` times with
different planner seeds; ``ms`` is the p50 of :meth:`planner.GoalImageMPC.act` (encode + optimise);
``energy / CEM`` is the mean ratio of the plan's energy to CEM 400 x 10's on the same problem and
seed; ``gain vs CEM`` is the mean of ``(E_stay - E) / (E_stay - E_cem)``, the share of CEM 400 x 10's
improvement over not moving that the row achieves (100% = as good as CEM 400 x 10; >100% better).

``--closed-loop N`` also runs N reach episodes with the evaluation's planner (128 x 6) without and
with surprise gating (threshold: the median surprise of the ungated run, or ``--threshold``) and
reports planning ms per executed step, the share of steps that searched, and successes.

    nice -n 19 python bench/planners.py --threads 1 --repeats 2 --problems 3
    nice -n 19 python bench/planners.py --threads 1 --closed-loop 3 --rows none
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from planner import GoalImageMPC, PlannerConfig, bind_context, goal_objective  # noqa: E402
from planner.presets import CPU_PRESET  # noqa: E402
from worldmodel import (  # noqa: E402
    PredictorConfig,
    WorldModelConfig,
    build_world_model,
    encoder_preset,
    load_world_model,
)

BASELINE = "cem 400x10"
ROWS: dict[str, PlannerConfig] = {
    BASELINE: PlannerConfig(samples=400, iterations=10, topk=10),
    "cem 128x6 (eval)": PlannerConfig(**CPU_PRESET),
    "cem 160x5": PlannerConfig(samples=160, iterations=5, topk=10),
    "cem 80x5": PlannerConfig(samples=80, iterations=5, topk=10),
    "icem 200x5": PlannerConfig(optimizer="icem", samples=200, iterations=5, topk=10),
    "icem 128x4": PlannerConfig(optimizer="icem", samples=128, iterations=4, topk=10),
    "icem 64x4": PlannerConfig(optimizer="icem", samples=64, iterations=4, topk=8),
    "mppi 160x5": PlannerConfig(optimizer="mppi", samples=160, iterations=5, topk=10),
    "grad 8x10": PlannerConfig(optimizer="grad", grad_starts=8, grad_steps=10),
    "grad 16x20": PlannerConfig(optimizer="grad", grad_starts=16, grad_steps=20),
    "cem+grad 64x3+8x5": PlannerConfig(
        optimizer="cem+grad", samples=64, iterations=3, topk=8, grad_starts=8, grad_steps=5
    ),
    "cem+grad 128x3+8x10": PlannerConfig(
        optimizer="cem+grad", samples=128, iterations=3, topk=8, grad_starts=8, grad_steps=10
    ),
}


def reach_problems(count: int, image_size: int = 64, views: int = 1) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(frame uint8 [S, S, 3], state [7], goal image [S, S, 3]) of reach episodes, seeds 1000..."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium

    import sim
    from jepa_mpc.model_settings import needs_of, sim_for_planning
    from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE
    from worldmodel.preprocess import model_view

    env = gymnasium.make(sim.env_id("reach"), config=sim_for_planning(needs_of(), image_size=image_size)).unwrapped
    problems = []
    for seed in range(1000, 1000 + count):
        obs, info = env.reset(seed=seed)
        problems.append(
            (
                model_view(obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE], views),
                obs["state"].astype(np.float32),
                model_view(info["goal_image"], info["goal_wrist_image"], views),
            )
        )
    env.close()
    return problems


def models() -> dict[str, object]:
    default = load_world_model(Path(__file__).resolve().parents[1] / "worldmodel/default_model/model.pt", device="cpu")
    encoder = encoder_preset("vit_micro", img_size=64)
    layout = WorldModelConfig(
        encoder=encoder, predictor=PredictorConfig(img_size=64, encoder_dim=encoder.dim, dim=128, depth=4, num_heads=4)
    )
    return {
        "default model": default,
        "reference layout 128x4, 64 px (random weights)": build_world_model(layout, seed=0).eval(),
    }


def stay_energy(model, frame, state, goal_tokens, config) -> float:
    tokens = model.encode_frames(frame[None])
    rollout = bind_context(model, tokens, torch.from_numpy(state)[None, None])
    zeros = torch.zeros(1, config.horizon, 7)
    return float(goal_objective(goal_tokens, config.energy)(rollout(zeros)).detach()[0])


def bench_rows(model, problems, rows: list[str], repeats: int) -> list[dict]:
    results: dict[str, dict] = {}
    for name in rows:
        times, energies = [], []
        for index, (frame, state, goal) in enumerate(problems):
            for seed in range(repeats):
                mpc = GoalImageMPC(model, dataclasses.replace(ROWS[name], seed=seed))
                mpc.set_goal(goal)
                if index == 0 and seed == 0:
                    mpc.act(frame, state)  # warm-up of each row (allocations; autograd's first backward)
                    mpc.reset()
                start = time.perf_counter()
                step = mpc.act(frame, state)
                times.append(time.perf_counter() - start)
                energies.append(step.energy)
        results[name] = {"times": times, "energies": energies}
        print(f"  {name}: {1000 * statistics.median(times):.0f} ms p50", flush=True)
    stays = []
    for frame, state, goal in problems:
        mpc = GoalImageMPC(model, ROWS[BASELINE])
        mpc.set_goal(goal)
        stays += [stay_energy(model, frame, state, mpc.goal_tokens, ROWS[BASELINE])] * repeats
    base = np.array(results[BASELINE]["energies"]) if BASELINE in results else None
    table = []
    for name in rows:
        energies = np.array(results[name]["energies"])
        row = {
            "planner": name,
            "ms_p50": 1000 * statistics.median(results[name]["times"]),
            "energy_mean": float(energies.mean()),
        }
        if base is not None:
            row["energy_ratio"] = float(np.mean(energies / base))
            row["gain_vs_cem"] = float(np.mean((np.array(stays) - energies) / (np.array(stays) - base)))
        table.append(row)
    return table


def closed_loop(model, episodes: int, threshold: float | None) -> list[str]:
    """Reach episodes with the eval planner, ungated then gated: planning ms per executed step."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium

    import sim
    from jepa_mpc.model_settings import needs_of, planner_preset, sim_for_planning
    from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE
    from worldmodel.preprocess import model_view

    needs = needs_of()  # the shipped default model's
    env = gymnasium.make(sim.env_id("reach"), config=sim_for_planning(needs)).unwrapped
    base = PlannerConfig(**planner_preset(needs))
    views = model.config.predictor.views
    lines = []
    for gated in (False, True):
        config = dataclasses.replace(base, surprise_gating=gated, surprise_threshold=threshold or 1.0)
        latencies, replans, surprises, successes = [], [], [], 0
        for seed in range(1000, 1000 + episodes):
            obs, info = env.reset(seed=seed)
            mpc = GoalImageMPC(model, config)
            mpc.set_goal(model_view(info["goal_image"], info["goal_wrist_image"], views))
            for _ in range(sim.episode_steps("reach")):
                step = mpc.act(model_view(obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE], views), obs["state"])
                latencies.append(step.latency_s)
                replans.append(step.replanned)
                if step.surprise is not None:
                    surprises.append(step.surprise)
                obs, _, _, _, info = env.step(step.action)
                if info["is_success"]:
                    successes += 1
                    break
        if not gated and threshold is None:
            threshold = float(np.median(surprises))
        lines.append(
            f"| {f'gated, threshold {threshold:.4g}' if gated else 'every step searches'} | {episodes} | {successes} | "
            f"{len(latencies)} | {1000 * np.median(latencies):.0f} | {1000 * np.mean(latencies):.0f} | "
            f"{100 * np.mean(replans):.0f}% | {np.median(surprises):.4g} |"
        )
    env.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=3, help="reach episodes (seeds 1000...) to plan for")
    parser.add_argument("--repeats", type=int, default=2, help="planner seeds per problem")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--rows", nargs="*", default=list(ROWS), help=f"planner rows (first must be {BASELINE!r}); 'none'"
    )
    parser.add_argument("--models", nargs="*", default=None, help="model names (default: both)")
    parser.add_argument(
        "--closed-loop", type=int, default=0, help="reach episodes with and without gating (default model)"
    )
    parser.add_argument("--threshold", type=float, default=None, help="surprise threshold of the gated closed loop")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    all_models = models()
    rows = [] if args.rows == ["none"] else args.rows
    for model_name, model in all_models.items():
        if not rows or (args.models and model_name not in args.models):
            continue
        print(f"{model_name}:", flush=True)
        problems = reach_problems(args.problems, views=model.config.predictor.views)  # a two-view model's frames tiled
        table = bench_rows(model, problems, rows, args.repeats)
        print("| planner | model | ms / planning step (p50) | energy / CEM 400x10 | gain vs CEM 400x10 |")
        print("|---|---|---|---|---|")
        for row in table:
            print(
                f"| {row['planner']} | {model_name} | {row['ms_p50']:.0f} | "
                f"{row.get('energy_ratio', float('nan')):.4f} | "
                f"{100 * row.get('gain_vs_cem', float('nan')):.0f}% |",
                flush=True,
            )
    if args.closed_loop:
        print(
            "| reach, default model, eval planner 128x6 | episodes | successes | executed steps | "
            "plan ms / executed step (p50) | mean | steps that searched | surprise p50 |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for line in closed_loop(all_models["default model"], args.closed_loop, args.threshold):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
