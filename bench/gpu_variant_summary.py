"""One table of what ``bench/gpu_variant.sh WORK`` measured: success per model and task, planning
latency, training time and the energy-landscape error, pooled over the evaluation's parallel jobs.

    python bench/gpu_variant_summary.py WORK     # prints markdown (the script writes WORK/summary.md)

Success intervals are Wilson 95% (``jepa_mpc.evaluation.report.wilson_interval``); latency is the median
of every planning step of the pooled episodes, measured while the jobs shared one GPU and the cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from jepa_mpc.evaluation.report import wilson_interval  # noqa: E402

TASKS = ("reach", "push", "grasp", "pickplace")


def pooled(task_dir: Path) -> tuple[int, int, list[float]]:
    """(successes, episodes, planning latencies in s) of every job's ``results.json`` under ``task_dir``."""
    successes = episodes = 0
    latencies: list[float] = []
    for results in sorted(task_dir.glob("*/results.json")):
        (summary,) = [s for s in json.loads(results.read_text())["summaries"] if s["policy"] == "world_model"]
        successes += summary["successes"]
        episodes += summary["episodes"]
        latencies += [t for episode in summary["per_episode"] for t in episode["latencies_s"]]
    return successes, episodes, latencies


def main(work: Path) -> None:
    print(
        "| model | training | val. teacher forcing / copy-last | landscape reach / grasp (cm) | "
        + " | ".join(TASKS)
        + " | plan ms p50 |"
    )
    print("|---" * (5 + len(TASKS)) + "|")
    for name in ("default", "large"):
        model_dir = work / name
        if not (model_dir / "predictor" / "summary.json").is_file():
            continue
        train = json.loads((model_dir / "predictor" / "summary.json").read_text())
        validation = train["validation"]
        ratio = validation["teacher_forcing"] / validation["no_motion"]
        landscape = "not run"
        if (model_dir / "landscape.json").is_file():
            tasks = json.loads((model_dir / "landscape.json").read_text())["tasks"]
            landscape = " / ".join(f"{tasks[t]['mean_cm']:.2f}" for t in ("reach", "grasp") if t in tasks)
        cells, latencies = [], []
        for task in TASKS:
            successes, episodes, task_latencies = pooled(model_dir / "eval" / task)
            latencies += task_latencies
            if episodes == 0:
                cells.append("not run")
                continue
            low, high = wilson_interval(successes, episodes)
            cells.append(f"{successes}/{episodes} ({100 * low:.0f}-{100 * high:.0f}%)")
        p50 = f"{1000 * np.median(latencies):.0f}" if latencies else "-"
        print(
            f"| {name} | {train['steps']} steps, {train['train_seconds'] / 60:.1f} min | "
            f"{validation['teacher_forcing']:.4f} / {validation['no_motion']:.4f} ({ratio:.2f}) | {landscape} | "
            + " | ".join(cells)
            + f" | {p50} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
