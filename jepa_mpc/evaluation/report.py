"""Success rates with confidence intervals, and the results table of ``jepa-mpc eval``."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jepa_mpc.evaluation.runner import EpisodeResult

def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%, unlike the normal one)."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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
