"""``jepa-mpc collect``: record episodes of a sim task as a LeRobot v3.0 dataset (dataset/writer.py).

    jepa-mpc collect --task pickplace --episodes 200 --out data/pickplace --workers 2
    jepa-mpc collect --task push --episodes 50 --out data/push64 --sim.image_size 64 --policy random

Episode ``i`` is fully determined by ``(--seed, i)``: the env is reset with seed ``seed + i`` and the
policy draws from ``np.random.default_rng([seed, i])``, whichever worker runs it. Episodes already on
disk are kept (the run resumes), each episode appears atomically, and ``meta/`` is rebuilt from the
files on disk at the end, also after Ctrl-C, so an interrupted run leaves a readable dataset.

Recorded per frame t = 0..T (T = the task's episode length in control steps): both camera images and
the 7-D state actually reached; action row t = ``action_between(state_t, state_t+1)`` (last row
zeros), the convention of the 4 fps predictor.
"""
from __future__ import annotations

import argparse
import concurrent.futures as futures
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from foundation.configuration import add_dataclass_arguments, build_dataclass, dataclass_to_dict, flags_to_nested
from foundation.pose import actions_from_states
from sim import ENV_IDS
from sim.config import SimConfig


@dataclass
class EpisodeResult:
    index: int
    length: int  # frames
    success: bool


def record_episode(env, policy, seed: int) -> dict:
    """Run one episode; {"frames": {cam: uint8 [T+1, H, W, 3]}, "state": float32 [T+1, 7],
    "action": float32 [T+1, 7] (action_between consecutive states, last row zeros), "success": bool}."""
    from sim.env import CAMERAS

    obs, info = env.reset(seed=seed)
    policy.reset()
    frames = {key: [obs[key]] for key in CAMERAS}
    states = [obs["state"]]
    done = False
    while not done:
        action = policy.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        states.append(obs["state"])
        for key in CAMERAS:
            frames[key].append(obs[key])
        done = terminated or truncated
    state = np.stack(states).astype(np.float32)
    action = np.zeros_like(state)
    # The function dataset/reader.py recomputes actions with (float64: rotations composed exactly).
    action[:-1] = actions_from_states(torch.from_numpy(state.astype(np.float64))).numpy()
    return {
        "frames": {key: np.stack(images) for key, images in frames.items()},
        "state": state,
        "action": action,
        "success": bool(info["is_success"]),
    }


class _Collector:
    """One env + one dataset writer; lives in each worker process (or in the main one)."""

    def __init__(self, task: str, sim_config: dict, out: str, policy: str, noise: float, failure_prob: float, seed: int):
        import gymnasium

        from dataset.reader import LeRobotDatasetWriter

        self.config = build_dataclass(SimConfig, sim_config, where="--sim")
        self.env = gymnasium.make(ENV_IDS[task][0], config=self.config)
        self.task, self.policy_kind, self.noise, self.failure_prob, self.seed = task, policy, noise, failure_prob, seed
        self.writer = LeRobotDatasetWriter(out, **writer_arguments(self.config))

    def collect(self, index: int) -> EpisodeResult:
        from sim.experts import make_policy

        rng = np.random.default_rng([self.seed, index])
        policy = make_policy(self.policy_kind, self.task, self.env, rng, noise=self.noise, failure_prob=self.failure_prob)
        episode = record_episode(self.env, policy, seed=self.seed + index)
        self.writer.write_episode(
            index,
            frames=episode["frames"],
            state=episode["state"],
            action=episode["action"],
            task=self.env.unwrapped.instruction,
            success=episode["success"],
            seed=self.seed + index,
        )
        return EpisodeResult(index, len(episode["state"]), episode["success"])


def writer_arguments(config: SimConfig) -> dict:
    from sim.env import CAMERAS

    if config.control_hz != int(config.control_hz):
        raise ValueError(f"--sim.control_hz must be a whole number of frames/s for the dataset, got {config.control_hz}")
    size = (config.image_size, config.image_size)
    return {"fps": int(config.control_hz), "cameras": {key: size for key in CAMERAS}, "robot_type": "franka_sim"}


_WORKER: _Collector | None = None


def _init_worker(*args) -> None:
    global _WORKER
    _WORKER = _Collector(*args)


def _collect_in_worker(index: int) -> EpisodeResult:
    return _WORKER.collect(index)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jepa-mpc collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(ENV_IDS), help="which task to record")
    parser.add_argument("--episodes", type=int, required=True, help="episode indices 0..N-1 to have on disk")
    parser.add_argument("--out", required=True, help="dataset root folder (created, or resumed if it exists)")
    parser.add_argument("--workers", type=int, default=1, help="processes collecting in parallel (default: 1)")
    parser.add_argument("--policy", choices=["expert", "random"], default="expert", help="scripted expert or random exploration")
    parser.add_argument("--noise", type=float, default=0.005, help="expert action noise std, m (default: 0.005)")
    parser.add_argument("--failure-prob", type=float, default=0.1, help="share of deliberately failing expert episodes (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED + i (default: 0)")
    add_dataclass_arguments(parser, SimConfig, "sim")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1, got {args.episodes}")
    if args.workers < 1:
        raise SystemExit(f"--workers must be >= 1, got {args.workers}")
    sim_config = dataclass_to_dict(build_dataclass(SimConfig, flags_to_nested(args, "sim"), where="--sim"))
    if not sim_config["render_images"]:
        raise SystemExit("collect records camera images: --sim.render_images must stay true")
    collector_args = (args.task, sim_config, str(Path(args.out)), args.policy, args.noise, args.failure_prob, args.seed)

    # The main process opens (or creates) the dataset first, so that workers only ever re-open it.
    from dataset.reader import LeRobotDatasetWriter

    writer = LeRobotDatasetWriter(args.out, **writer_arguments(build_dataclass(SimConfig, sim_config)))
    todo = [i for i in range(args.episodes) if not writer.has_episode(i)]
    print(f"collect: {args.task}, {args.episodes - len(todo)} of {args.episodes} episodes already in {args.out}, "
          f"recording {len(todo)} with {args.workers} worker(s)")
    results: list[EpisodeResult] = []
    start = time.perf_counter()
    interrupted = False
    progress = tqdm(total=len(todo), desc=f"collect {args.task}", unit="episode")
    try:
        if args.workers == 1 or len(todo) <= 1:
            collector = _Collector(*collector_args) if todo else None
            for index in todo:
                results.append(collector.collect(index))
                progress.update()
        else:
            context = multiprocessing.get_context("spawn")  # a fresh GL context per process
            with futures.ProcessPoolExecutor(args.workers, mp_context=context, initializer=_init_worker,
                                             initargs=collector_args) as pool:
                pending = [pool.submit(_collect_in_worker, index) for index in todo]
                try:
                    for future in futures.as_completed(pending):
                        results.append(future.result())
                        progress.update()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)  # episodes in flight finish (or clean up)
                    results += [f.result() for f in pending if f.done() and not f.cancelled() and f.exception() is None
                                and f.result() not in results]
                    raise
    except KeyboardInterrupt:
        interrupted = True
        print("\ncollect: interrupted; the episodes written so far are kept (run again to resume)", file=sys.stderr)
    finally:
        progress.close()
    elapsed = time.perf_counter() - start
    if any(writer.has_episode(i) for i in range(args.episodes)) or results:
        writer.finalize()
    frames = sum(r.length for r in results)
    if results:
        rate = np.mean([r.success for r in results])
        print(f"collect: recorded {len(results)} episodes ({frames} frames) in {elapsed:.1f} s = "
              f"{frames / elapsed:.1f} frames/s; success rate {rate:.0%}; dataset at {args.out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
