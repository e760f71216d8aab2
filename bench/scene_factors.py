"""Which scene factors an evaluation's successes hang on: light, camera offset, colour, per seed.

Rebuilds the scene of every episode in one or more ``jepa-mpc eval`` results (``results.json``: its
task, seeds and ``--sim.*`` settings, so each run's own randomisation ranges) without rendering,
reads what ``Scene.randomize_visuals`` drew, and prints per seed:

- the key light's diffuse intensity (``sim.config.RandomizationConfig.light_intensity``) and its
  position's offset from nominal (m);
- the exterior camera eye's offset from its nominal pose (m);
- the RGB distance between the task cube's and the table's colours;
- each run's world-model success.

Then the Pearson correlation of each factor with the number of runs that succeeded on the seed,
and the successes below and inside the sim's default light range. All runs must share the task,
seeds and scene settings (else their seeds are different scenes). Writes a scatter plot (the
light's offset against its intensity, success filled) with ``--plot``::

    MUJOCO_GL=egl python bench/scene_factors.py runs/a/results.json runs/b/results.json --plot factors.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import gymnasium  # noqa: E402

import sim  # noqa: E402
from jepa_mpc_foundation.configuration import from_dict  # noqa: E402
from sim.config import RandomizationConfig, SimConfig  # noqa: E402


def world_model_successes(results: dict) -> dict[int, bool]:
    """``{seed: success}`` of the world-model policy in one ``results.json``; ValueError if it did not run."""
    (summary,) = [s for s in results["summaries"] if s["policy"] == "world_model"]
    return {episode["seed"]: bool(episode["success"]) for episode in summary["per_episode"]}


def scene_factors(task: str, sim_settings: dict, seeds: list[int]) -> np.ndarray:
    """``[len(seeds), 4]``: light intensity, light offset (m), camera eye offset (m), cube-table RGB distance."""
    config = from_dict(SimConfig, {**sim_settings, "render_images": False}, "results.json: config.sim")
    env = gymnasium.make(sim.env_id(task), config=config).unwrapped
    nominal_light = env.scene.model.light_pos[env.scene.key_light].copy()  # the MJCF's: no reset has drawn yet
    rows = []
    for seed in seeds:
        env.reset(seed=seed)  # draws the visuals first, as the evaluation's reset did
        scene, model = env.scene, env.scene.model
        cube = model.geom_rgba[scene.objects["cube"].geoms[0], :3]
        table = model.mat_rgba[scene.table_material, :3]
        eye_offset = np.linalg.norm(model.cam_pos[scene.exterior_camera] - np.asarray(scene.camera.eye))
        light_offset = np.linalg.norm(model.light_pos[scene.key_light] - nominal_light)
        rows.append(
            (
                float(model.light_diffuse[scene.key_light][0]),
                float(light_offset),
                float(eye_offset),
                float(np.linalg.norm(cube - table)),
            )
        )
    env.close()
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json files of jepa-mpc eval runs")
    parser.add_argument("--labels", nargs="+", help="one name per results file, for the plot (default: its folder)")
    parser.add_argument("--plot", type=Path, help="write a scatter plot (PNG) here")
    args = parser.parse_args()

    labels = args.labels or [path.parent.name for path in args.results]
    if len(labels) != len(args.results):
        raise SystemExit(f"--labels: {len(labels)} names for {len(args.results)} results files; give one per file")
    runs = [json.loads(path.read_text()) for path in args.results]
    first = runs[0]["config"]
    for path, run in zip(args.results, runs):
        if (run["config"]["task"], run["config"]["sim"]) != (first["task"], first["sim"]):
            raise SystemExit(f"{path}: another task or scene settings than {args.results[0]}; compare like with like")
    successes = [world_model_successes(run) for run in runs]
    seeds = sorted(set.intersection(*(set(s) for s in successes)))
    factors = scene_factors(first["task"], first["sim"], seeds)
    wins = np.array([[s[seed] for s in successes] for seed in seeds])  # [seeds, runs]

    print(
        "seed  light  light offset (m)  eye offset (m)  cube-table rgb  "
        + "  ".join(f"run{i}" for i in range(len(runs)))
    )
    for seed, (light, light_offset, offset, contrast), row in zip(seeds, factors, wins):
        print(
            f"{seed}  {light:5.2f}  {light_offset:16.3f}  {offset:14.3f}  {contrast:14.2f}  "
            + "  ".join(f"{int(w):4d}" for w in row)
        )
    total = wins.sum(axis=1)
    for column, name in enumerate(("light", "light offset", "eye offset", "cube-table rgb")):
        print(f"corr({name}, successes) = {np.corrcoef(factors[:, column], total)[0, 1]:+.2f}")
    low = RandomizationConfig().light_intensity[0]
    dim = factors[:, 0] < low
    for i, label in enumerate(labels):
        print(
            f"run{i} {label}: light < {low}: {wins[dim, i].sum()}/{dim.sum()}, "
            f"light >= {low}: {wins[~dim, i].sum()}/{(~dim).sum()}"
        )

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.0), sharey=True, squeeze=False)
        for i, ax in enumerate(axes[0]):
            ok = wins[:, i]
            ax.scatter(factors[ok, 1], factors[ok, 0], c="tab:green", label="success")
            ax.scatter(factors[~ok, 1], factors[~ok, 0], facecolors="none", edgecolors="tab:red", label="failure")
            ax.axhspan(*RandomizationConfig().light_intensity, color="0.9", zorder=0, label="default intensity range")
            ax.set_title(labels[i], fontsize=9)
            ax.set_xlabel("key light offset (m)")
        axes[0][0].set_ylabel("key light intensity")
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
