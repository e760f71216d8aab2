"""``jepa-mpc demo`` (what ``make demo`` runs): one goal-image episode in MuJoCo with the default model.

The robot is shown the episode's goal image (one photo: ``--subgoals false``, the default; or the
task's sub-goal images with ``--subgoals true``), plans in the world model's embedding space (from
one photo its goal-conditioned policy proposes each plan; through sub-goals CEM searches),
executes the first action, observes and plans again. Writes to ``--out``:

- ``episode.gif``: the camera (both views for a two-view model) beside the goal image, with the energy over time;
- ``summary.json``: success, steps, final distance, planning latency percentiles, energies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jepa_mpc_foundation.atomic_files import write_json_atomic

# The hardest task, from one goal photo, on a held-out episode the default model solves (its success
# rate and failures: worldmodel/default_model/README.md).
DEMO_TASK = "pickplace"
DEMO_SEED = 1001


@dataclass
class DemoConfig:
    """``jepa-mpc demo``: which episode, which model, where to write."""

    task: str = field(default=DEMO_TASK, metadata={"help": "sim task"})
    seed: int = field(default=DEMO_SEED, metadata={"help": "episode seed (held out from training data)"})
    checkpoint: str = field(default="", metadata={"help": "world model checkpoint; empty = the shipped model"})
    max_steps: int = field(default=0, metadata={"help": "planner steps (0 = the task's default)"})
    subgoals: bool = field(
        default=False,
        metadata={"help": "false: from the final goal photo alone; true: through the task's sub-goal images"},
    )
    device: str = field(default="", metadata={"help": "cpu or cuda; empty = cuda when present"})
    out: str = field(default="demo_out", metadata={"help": "output folder"})


def demo(config: DemoConfig) -> None:
    """Run the episode of ``config`` and write ``episode.gif`` and ``summary.json`` to ``config.out``."""
    os.environ.setdefault("MUJOCO_GL", "egl")

    from jepa_mpc.episode_video import write_gif
    from jepa_mpc.evaluation.config import EvalConfig
    from jepa_mpc.evaluation.runner import EpisodeWorker, run_episode

    eval_config = EvalConfig.for_task(
        config.task,
        config.subgoals,
        episodes=1,
        seed=config.seed,
        checkpoint=config.checkpoint,
        device=config.device,
        max_steps=config.max_steps,
        policies=("world_model",),
    )
    worker = EpisodeWorker(eval_config)
    checkpoint = worker.checkpoint
    mode = "through its sub-goal images" if config.subgoals else "from one goal photo"
    print(f"demo: task {config.task} {mode}, seed {config.seed}, model {checkpoint}")
    try:
        result, frames = run_episode(
            worker.env, worker.policy("world_model", config.seed), config.seed, eval_config, record=True, progress=True
        )
    finally:
        worker.close()

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    gif = write_gif(out / "episode.gif", frames, fps=2.0)
    latencies = np.array(result.latencies_s or [float("nan")])
    summary = {
        "task": config.task,
        "seed": config.seed,
        "subgoals": config.subgoals,
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
    write_json_atomic(out / "summary.json", summary)
    status = "success" if result.success else "not solved"
    print(
        f"demo: {status} after {result.steps} steps, final distance {result.final_distance:.3f} m, "
        f"planning {summary['planning_latency_ms']['p50']:.0f} ms/step (p50)"
    )
    print(f"demo: wrote {gif.resolve()} and {(out / 'summary.json').resolve()}")
