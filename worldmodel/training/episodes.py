"""Episode sources for training: one camera's frames (or two views side by side) and the 7-D states,
sampled on the training clock.

A source yields :class:`SampledEpisode` records already sampled at the clip rate (the reference's
4 fps: every ceil(fps / 4)-th source frame), so the rest of training never deals with source frame
rates. Two sources exist:

- :class:`InMemoryEpisodes`: arrays held in memory (generated data, tests, notebooks).
- :class:`LeRobotEpisodes`: a LeRobot v3.0 or v2.1 folder (our sim datasets, DROID converted by
  LeRobot), read with :class:`jepa_mpc_dataset.reader.LeRobotDataset`.

Every episode is checked (:func:`check_episode`); bad data raises :class:`EpisodeError`, which names
the episode, so the caller can stop or skip it and count it, never train on a wrong batch. Problems
the reader finds when it opens a dataset (frames without a metadata row, unreadable data files) are
raised there, or with ``skip_bad`` become the source's ``skipped_at_open`` and are counted with the rest.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from jepa_mpc_foundation.pose import STATE_DIM
from worldmodel.preprocess import tile_views


class EpisodeError(ValueError):
    """An episode that cannot be used for training; the message names the episode and the problem."""

    def __init__(self, episode: str, problem: str) -> None:
        super().__init__(f"episode {episode}: {problem}")
        self.episode = episode
        self.problem = problem


@dataclass
class SampledEpisode:
    """One episode on the training clock.

    frames: uint8 ``[T, H, W, 3]`` (one camera), states: float32 ``[T, 7]``, frame k of both at the
    same instant; consecutive entries are ``1 / sample_fps`` seconds apart. ``task``: what the episode
    was asked to do (a LeRobot dataset's task, e.g. an instruction; "" when unknown). ``words_in_scene``:
    the words naming what is on the table (the language tasks' datasets record them; () when unknown).
    """

    name: str
    frames: np.ndarray
    states: np.ndarray
    task: str = ""
    words_in_scene: tuple[str, ...] = ()

    @property
    def length(self) -> int:
        return len(self.states)


def check_episode(episode: SampledEpisode) -> None:
    """Raise :class:`EpisodeError` for wrong dtypes/shapes, mismatched lengths or non-finite states."""
    frames, states, name = episode.frames, episode.states, episode.name
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        raise EpisodeError(
            name, f"frames must be uint8 [T, H, W, 3], got {getattr(frames, 'dtype', type(frames))} {shape}"
        )
    if not isinstance(states, np.ndarray) or states.ndim != 2 or states.shape[1] != STATE_DIM:
        raise EpisodeError(name, f"states must be [T, {STATE_DIM}], got {getattr(states, 'shape', type(states))}")
    if len(frames) != len(states):
        raise EpisodeError(name, f"{len(frames)} frames but {len(states)} states")
    bad = np.flatnonzero(~np.isfinite(states).all(axis=1))
    if bad.size:
        raise EpisodeError(name, f"NaN/inf in the states at sampled step(s) {bad[:10].tolist()}")


class EpisodeSource(Protocol):
    """What training reads: named episodes on the training clock, and a fingerprint of the data."""

    sample_fps: int  # the training clock: sampled frames per second
    # Optional: episodes left out when the source was opened (bad_episodes skip); usable_episodes counts them.
    # skipped_at_open: list[SkippedEpisode]

    def __len__(self) -> int: ...

    def name(self, i: int) -> str: ...

    def num_sampled(self, i: int) -> int:
        """Sampled steps of episode i without decoding it (for skipping short episodes)."""
        ...

    def load(self, i: int) -> SampledEpisode:
        """The sampled episode; bad data raises :class:`EpisodeError`."""
        ...

    def fingerprint(self) -> str:
        """Changes whenever the data or the sampling change (part of the feature-cache key)."""
        ...


class InMemoryEpisodes:
    """Episodes given as arrays at ``fps``, sampled every ceil(fps / sample_fps)-th frame."""

    def __init__(self, episodes: list[SampledEpisode], fps: float, sample_fps: int = 4) -> None:
        if not episodes:
            raise ValueError("InMemoryEpisodes needs at least one episode")
        self.episodes = episodes
        self.sample_fps = sample_fps
        self.frame_step = math.ceil(fps / sample_fps)
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.episodes)

    def name(self, i: int) -> str:
        return self.episodes[i].name

    def num_sampled(self, i: int) -> int:
        return math.ceil(len(self.episodes[i].states) / self.frame_step)

    def load(self, i: int) -> SampledEpisode:
        episode = self.episodes[i]
        check_episode(episode)
        step = self.frame_step
        states = episode.states[::step].astype(np.float32)
        return SampledEpisode(episode.name, episode.frames[::step], states, episode.task, episode.words_in_scene)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(f"in-memory step={self.frame_step}".encode())
            for episode in self.episodes:
                digest.update(episode.name.encode())
                if episode.task:  # episodes without one keep the fingerprints (and caches) they had
                    digest.update(f"task={episode.task}".encode())
                if episode.words_in_scene:
                    digest.update(f"words_in_scene={' '.join(episode.words_in_scene)}".encode())
                for array in (episode.frames, episode.states):
                    digest.update(str((getattr(array, "dtype", None), getattr(array, "shape", None))).encode())
                    digest.update(np.ascontiguousarray(array).tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class LeRobotEpisodes:
    """A LeRobot v3.0 or v2.1 dataset folder, one camera, sampled at ``sample_fps`` (reference sampling).

    ``wrist_camera``: a second view; each frame is then ``camera``'s and ``wrist_camera``'s images side
    by side, ``[T, H, 2 * W, 3]`` (:func:`worldmodel.preprocess.tile_views`), for a two-view predictor.

    Sampled frame k is source frame ``k * ceil(fps / sample_fps)``: the reference's 8-frame DROID clip
    from source frame 0 (15 fps sampled at 4 fps: source frames 0, 4, ..., 28) is sampled frames 0..7.

    ``skip_bad``: episodes the reader cannot use at open (frames without a metadata row, unreadable data
    files) are warned about and listed in ``skipped_at_open`` instead of raising DatasetError.
    Raises DatasetError when the dataset's fps is below ``sample_fps`` (clips would span more time than
    the model's steps assume).
    """

    def __init__(
        self, root: str | Path, camera: str, sample_fps: int = 4, skip_bad: bool = False, wrist_camera: str = ""
    ) -> None:
        from jepa_mpc_dataset import DatasetError, LeRobotDataset, LeRobotReaderConfig

        self.root = Path(root)
        self.sample_fps = sample_fps
        config = LeRobotReaderConfig(camera=camera, sample_fps=sample_fps, bad_episodes="skip" if skip_bad else "error")
        self.dataset = LeRobotDataset(self.root, config)
        if self.dataset.fps < sample_fps:
            raise DatasetError(
                f"{self.root / 'meta' / 'info.json'}: fps {self.dataset.fps} is below the training clock "
                "data.sample_fps "
                f"{sample_fps}: each sampled step would be 1/{self.dataset.fps} s, not 1/{sample_fps} s; record at >= "
                f"{sample_fps} fps, or set --data.sample_fps {self.dataset.fps} for a model trained on that clock"
            )
        self.camera = self.dataset.resolve_camera(camera)
        self.wrist_camera = self.dataset.resolve_camera(wrist_camera) if wrist_camera else ""
        self.frame_step = self.dataset.frame_step()
        self.indices = self.dataset.episode_indices
        self.skipped_at_open = [SkippedEpisode(name, reason) for name, reason in self.dataset.skipped.items()]

    def __len__(self) -> int:
        return len(self.indices)

    def name(self, i: int) -> str:
        return f"{self.indices[i]} of {self.root}"

    def num_sampled(self, i: int) -> int:
        return math.ceil(self.dataset.episode_length(self.indices[i]) / self.frame_step)

    def load(self, i: int) -> SampledEpisode:
        from jepa_mpc_dataset import DatasetError

        index, name = self.indices[i], self.name(i)
        try:
            episode = self.dataset.episode(index)
            sampled = np.arange(0, episode.length, self.frame_step)
            frames = episode.frames.select(self.camera, sampled)
            if self.wrist_camera:  # a two-view model's frames: exterior | wrist (worldmodel.preprocess)
                frames = tile_views([frames, episode.frames.select(self.wrist_camera, sampled)])
            states = episode.state[sampled]
        except (DatasetError, OSError, KeyError) as error:
            raise EpisodeError(name, str(error)) from error
        result = SampledEpisode(name, frames, states.astype(np.float32), episode.task, episode.words_in_scene)
        check_episode(result)
        return result

    def fingerprint(self) -> str:
        """meta/ file contents + size and modification time of every data and video file."""
        digest = hashlib.sha256(
            json.dumps(
                [str(self.root.resolve()), self.camera, self.frame_step]
                + ([self.wrist_camera] if self.wrist_camera else [])
            ).encode()
        )
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            relative = str(path.relative_to(self.root))
            if relative.startswith("meta/"):
                digest.update(relative.encode() + path.read_bytes())
            else:
                stat = path.stat()
                digest.update(f"{relative}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()


class NpzEpisodes(InMemoryEpisodes):
    """An ``.npz`` with ``frames`` uint8 [E, T, H, W, 3], ``states`` [E, T, 7] and ``fps`` (a scalar), and optionally
    ``tasks`` [E] (each episode's task, e.g. its instruction) and ``words_in_scene`` [E] (each episode's words
    naming what is on the table, space-separated)."""

    def __init__(self, path: str | Path, sample_fps: int = 4) -> None:
        path = Path(path)
        with np.load(path) as data:
            missing = [k for k in ("frames", "states", "fps") if k not in data]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}; expected frames [E,T,H,W,3], states [E,T,7], fps")
            frames, states, fps = data["frames"], data["states"], float(data["fps"])
            tasks = [str(t) for t in data["tasks"]] if "tasks" in data else [""] * len(frames)
            scenes = [tuple(str(w).split()) for w in data["words_in_scene"]] if "words_in_scene" in data else None
        episodes = [
            SampledEpisode(f"{e} of {path}", frames[e], states[e], tasks[e], scenes[e] if scenes else ())
            for e in range(len(frames))
        ]
        super().__init__(episodes, fps=fps, sample_fps=sample_fps)


def check_sample_fps(source: EpisodeSource, sample_fps: int) -> None:
    """The source must be sampled on the clock the config (and so the saved model) declares."""
    if source.sample_fps != sample_fps:
        raise ValueError(
            f"the episodes are sampled at {source.sample_fps} fps but data.sample_fps is {sample_fps}: "
            "build the source with the config's sample_fps"
        )


@dataclass
class SkippedEpisode:
    name: str
    reason: str


def split_report(train_episodes: int, val_episodes: int, skipped: list[dict], shown: int = 10) -> list[str]:
    """Summary lines of a run's episodes: the train / held-out split and the first ``shown`` skipped ones (as dicts)."""
    lines = [f"episodes: {train_episodes} train, {val_episodes} held out, {len(skipped)} skipped"]
    return lines + [f"  skipped {s['name']}: {s['reason']}" for s in skipped[:shown]]


def usable_episodes(
    source: EpisodeSource, min_length: int, skip_bad: bool, skipped: list[SkippedEpisode], desc: str
) -> Iterator[SampledEpisode]:
    """The episodes of ``source`` long enough for one clip and with good data, loaded one by one.

    Short episodes are appended to ``skipped`` (never padded); an episode with bad data raises its
    :class:`EpisodeError`, or with ``skip_bad`` is appended to ``skipped`` too, and so are the
    episodes the source left out when it was opened (``skipped_at_open``).
    """
    for problem in getattr(source, "skipped_at_open", ()):
        if not skip_bad:
            raise EpisodeError(problem.name, problem.reason)
        skipped.append(problem)
    for i in tqdm(range(len(source)), desc=desc, unit="ep", disable=None):
        name = source.name(i)
        if source.num_sampled(i) < min_length:
            skipped.append(
                SkippedEpisode(name, f"shorter than one clip ({source.num_sampled(i)} < {min_length} sampled frames)")
            )
            continue
        try:
            episode = source.load(i)
        except EpisodeError as error:
            if not skip_bad:
                raise
            skipped.append(SkippedEpisode(name, error.problem))
            continue
        yield episode


def no_usable_episode(skipped: list[SkippedEpisode], min_length: int, clip_flag: str) -> ValueError:
    """The error when no episode is left for training: how many were skipped and why, and what to do.

    ``clip_flag`` is the command's flag for the clip length (``--data.clip_steps``, ``--data.clip_frames``).
    """
    short = sum(1 for s in skipped if s.reason.startswith("shorter than one clip"))
    reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
    fixes = []
    if short:
        fixes.append(
            f"record longer episodes or sample shorter clips ({clip_flag}; one clip needs {min_length} sampled frames)"
        )
    if len(skipped) > short:
        fixes.append("repair or re-collect the bad episodes (each skip above says what is wrong)")
    if not skipped:
        fixes.append("point --data at datasets that hold episodes")
    return ValueError(f"no usable episode in the data ({len(skipped)} skipped: {reasons}): {'; '.join(fixes)}")


class ConcatEpisodes:
    """Several sources read as one, e.g. one dataset per task or per policy."""

    def __init__(self, sources: Sequence[EpisodeSource]) -> None:
        if not sources:
            raise ValueError("ConcatEpisodes needs at least one source")
        rates = {source.sample_fps for source in sources}
        if len(rates) != 1:
            raise ValueError(f"the sources are sampled at different rates {sorted(rates)}; use one sample_fps")
        self.sources = list(sources)
        self.sample_fps = rates.pop()
        self.skipped_at_open = [s for source in self.sources for s in getattr(source, "skipped_at_open", ())]
        self.index = [(s, i) for s, source in enumerate(self.sources) for i in range(len(source))]

    def __len__(self) -> int:
        return len(self.index)

    def name(self, i: int) -> str:
        s, j = self.index[i]
        return self.sources[s].name(j)

    def num_sampled(self, i: int) -> int:
        s, j = self.index[i]
        return self.sources[s].num_sampled(j)

    def load(self, i: int) -> SampledEpisode:
        s, j = self.index[i]
        return self.sources[s].load(j)

    def fingerprint(self) -> str:
        return hashlib.sha256("".join(source.fingerprint() for source in self.sources).encode()).hexdigest()


def open_one_source(
    data: str | Path, camera: str, sample_fps: int, skip_bad: bool = False, wrist_camera: str = ""
) -> EpisodeSource:
    """A LeRobot dataset folder (with ``meta/info.json``) or an ``.npz`` of episodes (``skip_bad``,
    ``wrist_camera``: see LeRobotEpisodes). Raises ValueError for ``wrist_camera`` with an ``.npz`` (one camera)."""
    path = Path(data)
    if path.is_dir():
        return LeRobotEpisodes(path, camera=camera, sample_fps=sample_fps, skip_bad=skip_bad, wrist_camera=wrist_camera)
    if path.suffix == ".npz" and path.is_file():
        if wrist_camera:
            raise ValueError(
                f"--data {data}: an .npz of episodes holds one camera; --data.wrist_camera needs LeRobot datasets"
            )
        return NpzEpisodes(path, sample_fps=sample_fps)
    raise FileNotFoundError(
        f"--data {data}: not a LeRobot dataset folder (meta/info.json, data/, videos/) nor an .npz file of episodes"
    )


def open_episodes(
    data: str | Path | Sequence[str | Path],
    camera: str,
    sample_fps: int,
    skip_bad: bool = False,
    wrist_camera: str = "",
) -> EpisodeSource:
    """``--data``: one or more LeRobot dataset folders / ``.npz`` files, read as one source.

    ``skip_bad`` (``--data.bad_episodes skip``): problems found when a dataset is opened are warned
    about and counted as skipped episodes instead of raising DatasetError. ``wrist_camera``
    (``--data.wrist_camera``): frames are both views side by side (:class:`LeRobotEpisodes`).
    """
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    sources = [open_one_source(path, camera, sample_fps, skip_bad, wrist_camera) for path in paths]
    return sources[0] if len(sources) == 1 else ConcatEpisodes(sources)


def save_episodes_npz(path: str | Path, episodes: list[SampledEpisode], fps: float) -> None:
    """Write equal-length episodes as the ``.npz`` :class:`NpzEpisodes` reads (atomically)."""
    from jepa_mpc_foundation.atomic_files import atomic_path

    lengths = {len(episode.states) for episode in episodes}
    if len(lengths) != 1:
        raise ValueError(f"an .npz of episodes needs equal lengths, got {sorted(lengths)}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                frames=np.stack([np.asarray(e.frames) for e in episodes]),
                states=np.stack([np.asarray(e.states, dtype=np.float32) for e in episodes]),
                fps=np.float64(fps),
                **({"tasks": np.array([e.task for e in episodes])} if any(e.task for e in episodes) else {}),
                **(
                    {"words_in_scene": np.array([" ".join(e.words_in_scene) for e in episodes])}
                    if any(e.words_in_scene for e in episodes)
                    else {}
                ),
            )
