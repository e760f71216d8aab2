"""``jepa-mpc collect``: record episodes of a sim task as a LeRobot v3.0 dataset (jepa_mpc_dataset/writer.py).

    jepa-mpc collect --task pickplace --episodes 200 --out data/pickplace --workers 2
    jepa-mpc collect --task push --episodes 50 --out data/push64 --policy random
    jepa-mpc collect --task push --episodes 50 --out data/push_for_mine --for_model runs/mine/model.pt
    jepa-mpc collect --task reach --episodes 1000 --out /shared/reach --backend ray --ray.address auto

Episode ``i`` is fully determined by ``(--seed, i)``: the env is reset with seed ``seed + i`` and the
policy draws from ``np.random.default_rng([seed, i])``, whichever worker runs it (a process here, or a
Ray task on a cluster: ``--backend ray``, docs/cluster.md). Episodes already on disk are kept (the run
resumes), each episode appears atomically, and ``meta/`` is rebuilt from the files on disk at the end,
also after Ctrl-C, so an interrupted run leaves a readable dataset.

Recorded per frame t = 0..T (T = the task's episode length in control steps): both camera images,
the 7-D state actually reached (``observation.state.cartesian_position`` + ``gripper_position``) and
the arm's 7 joint angles (``observation.state.joint_position``; ``observation.state`` = joints +
gripper, as DROID); action row t = ``action_between(state_t, state_t+1)`` (last row zeros), the
convention of the 4 fps predictor.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from jepa_mpc_foundation.episode_backends import EpisodeBackend, EpisodeWork, RayConfig, run_episodes
from jepa_mpc_foundation.pose import actions_from_states
from jepa_mpc_foundation.user_errors import WorkerLost
from sim import ENV_IDS, env_id, is_language_task
from sim.config import SimConfig


@dataclass
class CollectConfig:
    """``jepa-mpc collect``: which task, policy and episodes to record, where, and the sim's settings."""

    task: str = field(metadata={"help": f"which task to record: one of {sorted(ENV_IDS)}"})
    episodes: int = field(metadata={"help": "episode indices 0..N-1 to have on disk"})
    out: str = field(metadata={"help": "dataset root folder (created, or resumed if it exists)"})
    workers: int = field(default=1, metadata={"help": "processes collecting in parallel (--backend local)"})
    backend: str = field(
        default="local",
        metadata={
            "help": "where the episodes run: local (--workers processes on this machine) or ray (a Ray cluster, "
            "--ray.address, or a Ray instance on this machine; --out must be a folder every node writes to)"
        },
    )
    policy: str = field(default="expert", metadata={"help": "expert (scripted) or random exploration"})
    noise: float = field(default=0.005, metadata={"help": "expert action noise std, m"})
    failure_prob: float = field(default=0.1, metadata={"help": "share of deliberately failing expert episodes"})
    seed: int = field(default=0, metadata={"help": "episode i uses env seed SEED + i"})
    for_model: str = field(
        default="",
        metadata={
            "help": "a world model checkpoint: record what it needs to see (its image size and frame rate; a "
            "--sim flag that contradicts them is refused); empty: the shipped default model's, which --sim flags change"
        },
    )
    # Its image size and control rate default to the model's (jepa_mpc.collect_command.collect_defaults).
    sim: SimConfig = field(default_factory=SimConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        env_id(self.task)  # ValueError naming the valid tasks
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        self.episode_backend()  # ValueError for bad --workers, --backend or --ray.* flags
        if self.policy not in ("expert", "random"):
            raise ValueError(f"policy must be expert or random, got {self.policy!r}")
        if not self.sim.render_images:
            raise ValueError("collect records camera images: sim.render_images must stay true")

    def episode_backend(self) -> EpisodeBackend:
        return EpisodeBackend(self.backend, self.workers, self.ray)


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
    interrupted: bool = False

    def text(self) -> str:
        if self.interrupted:
            on_disk = self.already_on_disk + len(self.recorded)
            return (
                f"collect: interrupted; {on_disk} of {self.config.episodes} episodes are in {self.config.out} "
                f"({len(self.recorded)} recorded by this run): run the same command again to record the rest"
            )
        if not self.recorded:
            return f"collect: all {self.config.episodes} episodes already in {self.config.out}"
        frames = sum(r.length for r in self.recorded)
        rate = np.mean([r.success for r in self.recorded])
        return (
            f"collect: recorded {len(self.recorded)} episodes ({frames} frames) in {self.seconds:.1f} s = "
            f"{frames / self.seconds:.1f} frames/s; success rate {rate:.0%}; dataset at {self.config.out}"
        )


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
    # The function jepa_mpc_dataset/reader.py recomputes actions with (float64: rotations composed exactly).
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

        from jepa_mpc_dataset import LeRobotDatasetWriter

        self.config = config
        self.env = gymnasium.make(env_id(config.task), config=config.sim)
        self.writer = LeRobotDatasetWriter(config.out, **writer_arguments(config))

    def collect(self, index: int) -> RecordedEpisode | None:
        """Record and write episode ``index``; None if it is already complete on disk, before or after
        recording it (another process wrote it: the same seed gives the same bytes, so it is taken as done)."""
        from sim.experts import make_policy

        c = self.config
        if self.writer.has_episode(index):
            return None
        rng = np.random.default_rng([c.seed, index])
        policy = make_policy(c.policy, c.task, self.env, rng, noise=c.noise, failure_prob=c.failure_prob)
        episode = record_episode(self.env, policy, seed=c.seed + index)
        if self.writer.has_episode(index):
            return None
        self.writer.write_episode(
            index,
            frames=episode["frames"],
            state=episode["state"],
            action=episode["action"],
            task=self.env.unwrapped.instruction,
            success=episode["success"],
            seed=c.seed + index,
            joint_position=episode["joint_position"],
            words_in_scene=self.env.unwrapped.words_in_scene if self.writer.record_words_in_scene else None,
        )
        return RecordedEpisode(index, len(episode["state"]), episode["success"])


def writer_arguments(config: CollectConfig) -> dict:
    """The dataset writer's settings for ``config``'s scene; a language task's episodes also carry the words
    naming what is on the table (sim/tasks/language.py)."""
    from sim.env import CAMERAS

    sim = config.sim
    if sim.control_hz != int(sim.control_hz):
        raise ValueError(f"sim.control_hz must be a whole number of frames/s for the dataset, got {sim.control_hz}")
    size = (sim.image_size, sim.image_size)
    arguments = {"fps": int(sim.control_hz), "cameras": {key: size for key in CAMERAS}, "robot_type": "franka_sim"}
    return arguments | {"record_words_in_scene": is_language_task(config.task)}


class CollectInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`collect`, raised once the workers are stopped and ``meta/`` is rebuilt;
    ``summary`` says what is on disk."""

    def __init__(self, summary: CollectSummary) -> None:
        super().__init__(summary.text())
        self.summary = summary


def collect(config: CollectConfig) -> CollectSummary:
    """Record the episodes of ``config`` missing from ``config.out`` and rebuild the dataset's ``meta/``.

    ``meta/`` is rebuilt also when the run is interrupted or fails, so the episodes written so far stay
    readable and a rerun resumes after them. An episode found complete on disk is taken as done.

    Raises:
        CollectInterrupted: on Ctrl-C (the workers are stopped at once; episodes in progress leave no file).
        WorkerLost: a worker process was killed (e.g. by the out-of-memory killer).
    """
    # The main process opens (or creates) the dataset first, so that workers only ever re-open it.
    from jepa_mpc_dataset import LeRobotDatasetWriter

    writer = LeRobotDatasetWriter(config.out, **writer_arguments(config))
    todo = [i for i in range(config.episodes) if not writer.has_episode(i)]
    backend = config.episode_backend()
    print(
        f"collect: {config.task}, {config.episodes - len(todo)} of {config.episodes} episodes already in {config.out}, "
        f"recording {len(todo)} in {backend.describe()}"
    )
    results: list[RecordedEpisode | None] = []  # None: found complete on disk
    start = time.perf_counter()

    def summary(interrupted: bool = False) -> CollectSummary:
        recorded = [r for r in results if r is not None]
        return CollectSummary(
            config,
            config.episodes - len(recorded) - _missing(writer, config),
            recorded,
            time.perf_counter() - start,
            interrupted,
        )

    try:
        with tqdm(total=len(todo), desc=f"collect {config.task}", unit="episode") as progress:

            def recorded(index: int, result: RecordedEpisode | None) -> None:
                results.append(result)
                progress.update()

            # Workers elsewhere (a Ray node) resolve a relative path from their own folder: give them this one's.
            work = EpisodeWork(
                _Collector, _Collector.collect, dataclasses.replace(config, out=os.path.abspath(config.out))
            )
            run_episodes(work, todo, backend, recorded)
    except KeyboardInterrupt:
        raise CollectInterrupted(summary(interrupted=True)) from None
    except WorkerLost as error:
        hint = "fewer --workers need less memory" if backend.name == "local" else "more --ray.max_retries"
        raise WorkerLost(
            f"{error}; the episodes written are kept in {config.out}: run the same command again to resume ({hint})"
        ) from error
    finally:
        if any(writer.has_episode(i) for i in range(config.episodes)):
            writer.finalize()
    return summary()


def _missing(writer, config: CollectConfig) -> int:
    return sum(not writer.has_episode(i) for i in range(config.episodes))
