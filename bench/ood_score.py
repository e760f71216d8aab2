"""How well the out-of-distribution score tells scenes beyond the training ranges from scenes in them (ROC AUC).

Renders episodes of the scripted experts (reach, push, grasp, pickplace in turn; seeds from 1000, the
evaluation's) twice: in the sim's default scene ranges, where the training data was collected (in
range), and with the ranges widened (beyond range; the issue's settings, ``BEYOND``: object and table
colours +-0.2, camera eye and target +-0.05 m, key light +-0.3 m and intensity 0.35-0.95). The
randomisation's uniform draws take the same stream whatever their ranges, so a seed is the same
layout in both, its visuals drawn further out. Every frame the model would plan from (both views side
by side for a two-view model) is scored with the checkpoint's token statistics
(:mod:`worldmodel.token_statistics`), and the script prints:

- the ROC AUC of beyond-range against in-range, per frame (all frames) and per episode (each
  episode's mean score), for the frame's score and for each view's; 95% intervals by resampling
  episodes (1000 bootstrap draws);
- the share of frames and of episodes (by their mean) above the model's threshold in each group.

The AUC is the Mann-Whitney U statistic of the beyond-range scores against the in-range ones divided by
the product of the two counts: the probability that a random beyond-range frame scores higher than a
random in-range one, ties counted half (Hanley & McNeil 1982, Radiology 143: 29-36; scipy's
``mannwhitneyu``). The beyond-range draws include scenes that fall inside the training ranges (a light
intensity of 0.7 is in both), so an AUC of 1 is not to be expected::

    MUJOCO_GL=egl python bench/ood_score.py --checkpoint model_ood.pt --episodes 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402
import torch  # noqa: E402
from scipy.stats import mannwhitneyu  # noqa: E402

import sim  # noqa: E402
from jepa_mpc_foundation.configuration import from_dict  # noqa: E402
from sim.collect import record_episode  # noqa: E402
from sim.config import SimConfig  # noqa: E402
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from worldmodel import load_world_model  # noqa: E402
from worldmodel.preprocess import model_view  # noqa: E402

TASKS = ("reach", "push", "grasp", "pickplace")
# --sim.randomization beyond the training ranges (sim.config.RandomizationConfig's defaults are the in-range ones)
BEYOND = {
    "colour": 0.2,
    "camera_position": 0.05,
    "camera_target": 0.05,
    "light_position": 0.3,
    "light_intensity": (0.35, 0.95),
}


def episode_scores(model, task: str, seed: int, image_size: int, randomization: dict) -> np.ndarray:
    """``[T, 1 + V]``: each frame's score and its V views' scores, of one expert episode of ``task``."""
    config = from_dict(SimConfig, {"image_size": image_size, "randomization": randomization}, "ood_score")
    env = gymnasium.make(sim.env_id(task), config=config)
    try:
        episode = record_episode(env, make_expert(task, env, np.random.default_rng(seed)), seed)
    finally:
        env.close()
    frames = model_view(
        episode["frames"][EXTERIOR_IMAGE], episode["frames"][WRIST_IMAGE], model.config.predictor.views
    )  # [T, H, V * W, 3]
    tokens = model.encode_frames(frames)[0]  # [T, N, D]
    statistics = model.token_statistics
    with torch.no_grad():
        return torch.cat([statistics(tokens)[:, None], statistics.view_scores(tokens)], dim=1).numpy()


def auc(beyond: np.ndarray, in_range: np.ndarray) -> float:
    """P(a beyond-range score > an in-range one), ties half: Mann-Whitney U / (n1 n0) (module docstring)."""
    return float(mannwhitneyu(beyond, in_range, alternative="greater").statistic / (len(beyond) * len(in_range)))


def bootstrap_interval(
    beyond: list[np.ndarray], in_range: list[np.ndarray], reduce, draws: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% interval of ``auc(reduce(beyond episodes), reduce(in-range episodes))`` over episodes resampled."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        b = [beyond[i] for i in rng.integers(len(beyond), size=len(beyond))]
        r = [in_range[i] for i in rng.integers(len(in_range), size=len(in_range))]
        values.append(auc(reduce(b), reduce(r)))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a world model with token statistics (jepa-mpc ood-stats)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per group (the tasks in turn)")
    parser.add_argument("--image_size", type=int, default=64, help="camera pixels (the shipped model's data: 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    if args.episodes < 2:
        raise SystemExit(f"--episodes must be >= 2, got {args.episodes}")
    torch.set_num_threads(args.threads)
    model = load_world_model(args.checkpoint, device="cpu")
    if model.token_statistics is None:
        raise SystemExit(f"{args.checkpoint} holds no token statistics: add them with jepa-mpc ood-stats")
    views = model.config.predictor.views
    names = ["frame"] + (["exterior", "wrist"] if views == 2 else [f"view {v}" for v in range(views)])

    start = time.perf_counter()
    groups: dict[str, list[np.ndarray]] = {}
    for group, randomization in (("in range", {}), ("beyond range", BEYOND)):
        groups[group] = [
            episode_scores(model, TASKS[i % len(TASKS)], 1000 + i, args.image_size, randomization)
            for i in range(args.episodes)
        ]
    beyond, in_range = groups["beyond range"], groups["in range"]
    threshold = model.ood_threshold
    frames = {group: sum(len(e) for e in episodes) for group, episodes in groups.items()}
    print(
        f"{args.checkpoint}: threshold {threshold:.4g}; {args.episodes} + {args.episodes} expert episodes "
        f"({', '.join(TASKS)} in turn, seeds 1000-{999 + args.episodes}), {frames['in range']} + "
        f"{frames['beyond range']} frames at {args.image_size} px; beyond range: "
        + ", ".join(f"{k} {v}" for k, v in BEYOND.items())
        + f"; {time.perf_counter() - start:.0f} s"
    )
    print()
    print("| score | AUC per frame (95% CI) | AUC per episode (95% CI) | median in / beyond |")
    print("|---|---|---|---|")
    for column, name in enumerate(names):

        def per_frame(episodes, c=column):
            return np.concatenate([e[:, c] for e in episodes])

        def per_episode(episodes, c=column):
            return np.array([e[:, c].mean() for e in episodes])

        cells = []
        for reduce in (per_frame, per_episode):
            low, high = bootstrap_interval(beyond, in_range, reduce)
            cells.append(f"{auc(reduce(beyond), reduce(in_range)):.3f} ({low:.2f}-{high:.2f})")
        medians = f"{np.median(per_frame(in_range)):.3g} / {np.median(per_frame(beyond)):.3g}"
        print(f"| {name} | {cells[0]} | {cells[1]} | {medians} |")
    print()
    print("| group | frames above the threshold | episodes whose mean is above it |")
    print("|---|---|---|")
    for group, episodes in groups.items():
        scores = np.concatenate([e[:, 0] for e in episodes])
        means = np.array([e[:, 0].mean() for e in episodes])
        print(
            f"| {group} | {np.mean(scores > threshold):.0%} ({np.sum(scores > threshold)}/{len(scores)}) | "
            f"{np.mean(means > threshold):.0%} ({np.sum(means > threshold)}/{len(means)}) |"
        )


if __name__ == "__main__":
    main()
