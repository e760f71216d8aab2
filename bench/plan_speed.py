"""Planning-step latency: planner config x model size x device -> ms per planning step.

One planning step is what the robot waits for: :meth:`planner.GoalImageMPC.act` on one 256 x 256
frame (encode it, run CEM, return the action), with random-weight models (no weights needed). The
first call of each row is a warm-up; the table gives the median and the minimum of ``--repeats``.

Rows on the CPU are kept cheap: the full-size model (ViT-g encoder + 24 x 1024 predictor, 256 px)
runs only with ``--full-cpu`` and only with the ``cheap`` planner (N=8, I=1), since the reference
setting takes minutes per step there. On a CUDA device every model runs every planner config, in
float32 and in bf16 autocast (the reference's 52.7 s / 11.1 s for the full model on one H100).

    python bench/plan_speed.py                 # CPU rows (and CUDA rows when a GPU is present)
    python bench/plan_speed.py --full-cpu      # also the full-size model on the CPU (slow)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from planner import GoalImageMPC, PlannerConfig  # noqa: E402
from planner.analytic import AnalyticWorldModel  # noqa: E402
from worldmodel import EncoderConfig, PredictorConfig, WorldModelConfig, build_world_model, encoder_preset  # noqa: E402

PLANNERS = {
    "reference (N=400 H=2 I=10)": PlannerConfig(samples=400, horizon=2, iterations=10, topk=10),
    "cheap (N=8 H=2 I=1)": PlannerConfig(samples=8, horizon=2, iterations=1, topk=4),
}


@dataclass(frozen=True)
class ModelSize:
    name: str
    config: WorldModelConfig | None  # None: the analytic model (planner overhead only)


def _model_sizes() -> list[ModelSize]:
    def sized(img: int, encoder: EncoderConfig, dim: int, depth: int, heads: int) -> WorldModelConfig:
        predictor = PredictorConfig(img_size=img, encoder_dim=encoder.dim, dim=dim, depth=depth, num_heads=heads)
        return WorldModelConfig(encoder=encoder, predictor=predictor)

    return [
        ModelSize("analytic (no network)", None),
        ModelSize("micro: vit_micro + 4x128, 64 px", sized(64, encoder_preset("vit_micro", img_size=64), 128, 4, 4)),
        ModelSize("small: vit_small + 6x384, 128 px", sized(128, encoder_preset("vit_small", img_size=128), 384, 6, 6)),
        ModelSize("full: ViT-g + 24x1024, 256 px", WorldModelConfig()),
    ]


def _cpu_rows_allowed(size: ModelSize, planner: str, full_cpu: bool) -> str | None:
    """None if the row runs on the CPU, else the reason it is skipped."""
    if size.name.startswith("full"):
        if not full_cpu:
            return "skipped on CPU (minutes per step); --full-cpu runs the cheap planner"
        if not planner.startswith("cheap"):
            return "skipped on CPU: only the cheap planner"
    if size.name.startswith("small") and not planner.startswith("cheap"):
        return "skipped on CPU (about a minute per step)"
    return None


def _time_steps(mpc: GoalImageMPC, frame: np.ndarray, state: np.ndarray, repeats: int) -> list[float]:
    mpc.act(frame, state)  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        mpc.reset()  # every timed step is a cold (not warm-started) plan
        start = time.perf_counter()
        mpc.act(frame, state)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed planning steps per row")
    parser.add_argument("--full-cpu", action="store_true", help="also time the full-size model on the CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    goal_frame = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    state = np.array([0.45, -0.05, 0.30, 3.10, 0.10, -0.20, 0.0], dtype=np.float32)

    header = "| planner | model | device | precision | ms / planning step (median) | min | note |"
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU")
    )
    print(header)
    print("|" + "---|" * 7)
    for size in _model_sizes():
        for device in devices:
            model = None
            precisions = ["fp32"] if device.type == "cpu" or size.config is None else ["fp32", "bf16"]
            for precision in precisions:
                for planner_name, config in PLANNERS.items():
                    skip = _cpu_rows_allowed(size, planner_name, args.full_cpu) if device.type == "cpu" else None
                    row = f"| {planner_name} | {size.name} | {device.type} | {precision} |"
                    if skip:
                        print(f"{row} - | - | {skip} |", flush=True)
                        continue
                    if model is None and size.config is None:
                        model = AnalyticWorldModel(device=device)
                    elif model is None:
                        model = build_world_model(size.config, seed=0).eval().to(device)
                    if size.config is not None:
                        model.bf16 = precision == "bf16"
                    mpc = GoalImageMPC(model, config)
                    goal = model.render(state + 0.05) if size.config is None else goal_frame
                    now = model.render(state) if size.config is None else frame
                    mpc.set_goal(goal)
                    times = _time_steps(mpc, now, state, args.repeats)
                    print(f"{row} {1000 * statistics.median(times):.1f} | {1000 * min(times):.1f} | |", flush=True)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
