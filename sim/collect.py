"""``jepa-mpc collect``: record episodes of a sim task as a LeRobot v3.0 dataset (dataset/writer.py).

    jepa-mpc collect --task pickplace --episodes 200 --out data/pickplace --workers 2
    jepa-mpc collect --task push --episodes 50 --out data/push64 --sim.image_size 64 --policy random

Episode ``i`` is fully determined by ``(--seed, i)``: the env is reset with seed ``seed + i`` and the
policy draws from ``np.random.default_rng([seed, i])``, whichever worker runs it. Episodes already on
disk are kept (the run resumes), each episode appears atomically, and ``meta/`` is rebuilt from the
files on disk at the end, also after Ctrl-C, so an interrupted run leaves a readable dataset.

Recorded per frame t = 0..T (T = the task's episode length in control steps): both camera images,
the 7-D state actually reached (``observation.state.cartesian_position`` + ``gripper_position``) and
the arm's 7 joint angles (``observation.state.joint_position``; ``observation.state`` = joints +
gripper, as DROID); action row t = ``action_between(state_t, state_t+1)`` (last row zeros), the
convention of the 4 fps predictor.
"""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from foundation.pose import actions_from_states
from sim import ENV_IDS, env_id
from sim.config import SimConfig


@dataclass
class CollectConfig:
    """``jepa-mpc collect``: which task, policy and episodes to record, where, and the sim's settings."""

    task: str = field(metadata={"help": f"which task to record: one of {sorted(ENV_IDS)}"})
    episodes: int = field(metadata={"help": "episode indices 0..N-1 to have on disk"})
    out: str = field(metadata={"help": "dataset root folder (created, or resumed if it exists)"})
    workers: int = field(default=1, metadata={"help": "processes collecting in parallel"})
    policy: str = field(default="expert", metadata={"help": "expert (scripted) or random exploration"})
    noise: float = field(default=0.005, metadata={"help": "expert action noise std, m"})
    failure_prob: float = field(default=0.1, metadata={"help": "share of deliberately failing expert episodes"})
    seed: int = field(default=0, metadata={"help": "episode i uses env seed SEED + i"})
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        env_id(self.task)  # ValueError naming the valid tasks
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.policy not in ("expert", "random"):
            raise ValueError(f"policy must be expert or random, got {self.policy!r}")
        if not self.sim.render_images:
            raise ValueError("collect records camera images: sim.render_images must stay true")


@dataclass
class RecordedEpisode:
    """One episode written to the dataset: its index, frames (T + 1) and whether the task was solved."""

    index: int
    length: int  # frames
    success: bool


@dataclass
class CollectSummary:
    """What a ``collect`` run recorded (episodes already on disk are not in ``recorded``)."""

    config: CollectConfig
    already_on_disk: int
    recorded: list[RecordedEpisode]
    seconds: float

    def text(self) -> str:
        if not self.recorded:
            return f"collect: all {self.config.episodes} episodes already in {self.config.out}"
        frames = sum(r.length for r in self.recorded)
        rate = np.mean([r.success for r in self.recorded])
        return (f"collect: recorded {len(self.recorded)} episodes ({frames} frames) in {self.seconds:.1f} s = "
                f"{frames / self.seconds:.1f} frames/s; success rate {rate:.0%}; dataset at {self.config.out}")


def record_episode(env, policy, seed: int) -> dict:
    """Run one episode; {"frames": {cam: uint8 [T+1, H, W, 3]}, "state": float32 [T+1, 7],
    "joint_position": float32 [T+1, 7] (rad), "action": float32 [T+1, 7] (action_between consecutive
    states, last row zeros), "success": bool}."""
    from sim.env import CAMERAS

    obs, info = env.reset(seed=seed)
    policy.reset()
    frames = {key: [obs[key]] for key in CAMERAS}
    states = [obs["state"]]
    joints = [info["joint_position"]]
    done = False
    while not done:
        action = policy.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        states.append(obs["state"])
        joints.append(info["joint_position"])
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
        "joint_position": np.stack(joints).astype(np.float32),
        "action": action,
        "success": bool(info["is_success"]),
    }


class _Collector:
    """One env + one dataset writer; lives in each worker process (or in the main one)."""

    def __init__(self, config: CollectConfig):
        import gymnasium

        from dataset import LeRobotDatasetWriter

        self.config = config
        self.env = gymnasium.make(env_id(config.task), config=config.sim)
        self.writer = LeRobotDatasetWriter(config.out, **writer_arguments(config.sim))

    def collect(self, index: int) -> RecordedEpisode:
        from sim.experts import make_policy

        c = self.config
        rng = np.random.default_rng([c.seed, index])
        policy = make_policy(c.policy, c.task, self.env, rng, noise=c.noise, failure_prob=c.failure_prob)
        episode = record_episode(self.env, policy, seed=c.seed + index)
        self.writer.write_episode(
            index,
            frames=episode["frames"],
            state=episode["state"],
            action=episode["action"],
            task=self.env.unwrapped.instruction,
            success=episode["success"],
            seed=c.seed + index,
            joint_position=episode["joint_position"],
        )
        return RecordedEpisode(index, len(episode["state"]), episode["success"])


def writer_arguments(config: SimConfig) -> dict:
    from sim.env import CAMERAS

    if config.control_hz != int(config.control_hz):
        raise ValueError(f"sim.control_hz must be a whole number of frames/s for the dataset, got {config.control_hz}")
    size = (config.image_size, config.image_size)
    return {"fps": int(config.control_hz), "cameras": {key: size for key in CAMERAS}, "robot_type": "franka_sim"}


_WORKER: _Collector | None = None


def _init_worker(config: CollectConfig) -> None:
    global _WORKER
    _WORKER = _Collector(config)


def _collect_in_worker(index: int) -> RecordedEpisode:
    return _WORKER.collect(index)


def collect(config: CollectConfig) -> CollectSummary:
    """Record the episodes of ``config`` missing from ``config.out`` and rebuild the dataset's ``meta/``.

    ``meta/`` is rebuilt also when the run is interrupted (KeyboardInterrupt propagates after it),
    so the episodes written so far stay readable and a rerun resumes after them.
    """
    # The main process opens (or creates) the dataset first, so that workers only ever re-open it.
    from dataset import LeRobotDatasetWriter

    writer = LeRobotDatasetWriter(config.out, **writer_arguments(config.sim))
    todo = [i for i in range(config.episodes) if not writer.has_episode(i)]
    print(f"collect: {config.task}, {config.episodes - len(todo)} of {config.episodes} episodes already in {config.out}, "
          f"recording {len(todo)} with {config.workers} worker(s)")
    recorded: list[RecordedEpisode] = []
    start = time.perf_counter()
    try:
        with tqdm(total=len(todo), desc=f"collect {config.task}", unit="episode") as progress:
            if config.workers == 1 or len(todo) <= 1:
                _collect_here(config, todo, recorded, progress)
            else:
                _collect_in_workers(config, todo, recorded, progress)
    finally:
        if recorded or any(writer.has_episode(i) for i in range(config.episodes)):
            writer.finalize()
    return CollectSummary(config, config.episodes - len(todo), recorded, time.perf_counter() - start)


def _collect_here(config: CollectConfig, todo: list[int], recorded: list[RecordedEpisode], progress: tqdm) -> None:
    collector = _Collector(config) if todo else None
    for index in todo:
        recorded.append(collector.collect(index))
        progress.update()


def _collect_in_workers(config: CollectConfig, todo: list[int], recorded: list[RecordedEpisode], progress: tqdm) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh GL context per process
    with futures.ProcessPoolExecutor(config.workers, mp_context=context, initializer=_init_worker,
                                     initargs=(config,)) as pool:
        pending = [pool.submit(_collect_in_worker, index) for index in todo]
        try:
            for future in futures.as_completed(pending):
                recorded.append(future.result())
                progress.update()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # episodes in flight finish (or clean up)
            recorded += [f.result() for f in pending if f.done() and not f.cancelled() and f.exception() is None
                         and f.result() not in recorded]
            raise
