"""Success rates with confidence intervals, and the results table of ``jepa-mpc eval``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jepa_mpc.evaluation.runner import EpisodeResult


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval (low, high) of a success rate, by scipy's ``binomtest(...).proportion_ci``
    (sensible at 0% and 100%, unlike the normal approximation). No trials: (0, 1), nothing is known."""
    if trials == 0:
        return (0.0, 1.0)
    # Imported here: scipy.stats takes ~1 s to import, which every process importing jepa_mpc.evaluation paid
    # (each eval worker, a command refused at its flags) for a call made once per policy at the end of a run.
    from scipy.stats import binomtest

    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(interval.low), float(interval.high))


def summarize(name: str, results: list[EpisodeResult], ood_threshold: float | None = None) -> dict:
    """One policy's summary over its episodes; ``ood_threshold``: the world model's threshold on the
    out-of-distribution score (None: it holds no token statistics), stated beside the scores counted against it."""
    successes = sum(r.success for r in results)
    ood_scores = [x for r in results for x in r.ood_scores if x is not None]
    above = [r.ood_steps_above for r in results if r.ood_steps_above is not None]
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
        # What gating saves shows in the mean over executed steps (a kept step costs an encode only).
        "latency_ms_mean": float(np.mean(latencies) * 1e3) if latencies is not None else None,
        # Planner steps that searched (1.0 unless surprise gating kept plans), and the mean surprise.
        "replan_fraction": float(np.mean(replans)) if (replans := [x for r in results for x in r.replanned]) else None,
        "surprise_mean": float(np.mean(known))
        if (known := [x for r in results for x in r.surprises if x is not None])
        else None,
        # The median is what a gating threshold is set from (docs/planner.md, "Surprise-gated replanning").
        "surprise_p50": float(np.median(known)) if known else None,
        # How unlike the model's training frames the views were (per planner step, higher is less alike), and the
        # share of steps above the model's threshold: beyond it, success is not to be expected from this model.
        "ood_threshold": ood_threshold if ood_scores else None,
        "ood_score_mean": float(np.mean(ood_scores)) if ood_scores else None,
        "ood_score_p95": float(np.percentile(ood_scores, 95)) if ood_scores else None,
        "ood_fraction_above": sum(above) / len(ood_scores) if ood_scores and above else None,
        # Language tasks: episodes where another cube than the named one moved; text goals: instructions refused.
        "wrong_object": sum(bool(r.wrong_object) for r in results)
        if any(r.wrong_object is not None for r in results)
        else None,
        "refused": sum(bool(r.refused) for r in results) if any(r.instruction for r in results) else None,
    }


def _ood_cell(summary: dict) -> str:
    """``1.23 / 4%``: the mean out-of-distribution score and the share of steps above the threshold; ``-`` if none."""
    mean, above = summary.get("ood_score_mean"), summary.get("ood_fraction_above")
    if mean is None:
        return "-"
    return f"{mean:.3g} / {100 * above:.0f}%" if above is not None else f"{mean:.3g}"


def markdown_table(task: str, summaries: list[dict]) -> str:
    lines = [
        "| task | policy | episodes | success | 95% CI | final distance (m) | steps | plan ms p50 / p95 "
        "| OOD score / above |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        latency = "-" if s["latency_ms_p50"] is None else f"{s['latency_ms_p50']:.0f} / {s['latency_ms_p95']:.0f}"
        low, high = s["success_ci95"]
        lines.append(
            f"| {task} | {s['policy']} | {s['episodes']} | {100 * s['success_rate']:.0f}% | "
            f"{100 * low:.0f}-{100 * high:.0f}% | {s['final_distance_mean']:.3f} | {s['steps_mean']:.1f} | {latency} "
            f"| {_ood_cell(s)} |"
        )
    for s in summaries:
        counts = [
            f"{s[key]} of {s['episodes']} episodes {what}"
            for key, what in (
                ("wrong_object", "moved another cube than the named one"),
                ("refused", "refused the instruction"),
            )
            if s.get(key) is not None
        ]
        if counts:
            lines.append(f"\n{s['policy']}: " + "; ".join(counts) + ".")
    threshold = next((s["ood_threshold"] for s in summaries if s.get("ood_threshold") is not None), None)
    if threshold is not None:
        lines += [
            "",
            f"OOD: the mean per-step out-of-distribution score of the camera view (higher: less like the "
            f"model's training data) / the share of steps above the model's threshold {threshold:.3g}.",
        ]
    return "\n".join(lines) + "\n"
