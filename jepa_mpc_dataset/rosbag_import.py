"""rosbag2 bags -> a LeRobot v3.0 dataset with DROID's meaning of each column: ``jepa-mpc import-bag``.

    jepa-mpc import-bag bags/run1 bags/run2 --out data/real --task "put the cube in the bowl"
    jepa-mpc import-bag bags/day1 --out data/day1 --task "push the cube" --pose_topic /tf \\
        --base_frame panda_link0 --ee_frame panda_hand_tcp --camera_topics /cam/image_raw /wrist/image_raw/compressed
    jepa-mpc import-bag runs/*.mcap --out data/told    # each episode's task: the instruction its run recorded

Three steps, settings in :class:`jepa_mpc_dataset.bag_config.ImportBagConfig`:

1. every bag is read once without decoding images (:func:`jepa_mpc_dataset.bag_reader.read_bag_streams`) and
   aligned on the frame clock (:func:`jepa_mpc_dataset.bag_alignment.align_span`): one episode per bag or per
   marked span, split or dropped at gaps, each gap and each piece left out reported as a warning. Every
   problem of every bag is found here, before anything is written;
2. each episode's picked images are decoded (:func:`jepa_mpc_dataset.bag_reader.read_frames`) and written by
   :class:`~jepa_mpc_dataset.writer.LeRobotDatasetWriter`, as ``jepa-mpc collect`` writes sim episodes: the 7-D
   state of ``jepa_mpc_foundation.pose`` (xyz, extrinsic xyz Euler, gripper closedness), action row t =
   ``actions_from_states`` of states t and t+1 (last row zeros), the arm's joints if ``--joint_topic`` names them;
3. ``meta/`` is built (``finalize``) and the dataset folder, written beside ``--out`` under a temporary name,
   is renamed into place: ``--out`` holds a complete dataset or nothing.

``jepa-mpc train --data OUT`` reads the result as it reads collected data.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jepa_mpc_dataset.bag_alignment import NS, Clock, align_span
from jepa_mpc_dataset.bag_config import ImportBagConfig
from jepa_mpc_dataset.bag_reader import BagError, BagStreams, read_bag_streams, read_frames
from jepa_mpc_dataset.format import DatasetError
from jepa_mpc_foundation.pose import actions_from_states, matrix_to_euler_xyz

EPISODE_SEED = -1
"""``episode_seed`` of an imported episode: no simulator seed reproduces it."""


@dataclass(frozen=True)
class PlannedEpisode:
    """One episode to write: which bag, which span, which frames of that span's alignment, and the picks."""

    bag: Path
    span: int
    times: np.ndarray  # int64 [T] frame times, ns
    picks: list[np.ndarray]  # per stream of BagStreams.streams(): int64 [T] message indices
    task: str  # the language instruction written for it


@dataclass
class ImportedEpisode:
    """What was written: the episode index, its bag and span, its frames and when its first frame lies."""

    index: int
    bag: Path
    span: int
    length: int
    start_s: float  # s after the bag's first message


@dataclass
class ImportSummary:
    """What ``import-bag`` wrote and what it left out."""

    out: Path
    episodes: list[ImportedEpisode]
    notes: list[str]  # gaps, pieces and messages left out (each also a warning)
    frames_left_out: int
    seconds: float
    frames_per_second: float = field(init=False)

    def __post_init__(self) -> None:
        frames = sum(episode.length for episode in self.episodes)
        self.frames_per_second = frames / self.seconds if self.seconds > 0 else float("inf")

    def text(self) -> str:
        frames = sum(episode.length for episode in self.episodes)
        bags = len({episode.bag for episode in self.episodes})
        left = f"; {self.frames_left_out} frame(s) left out at gaps (warnings above)" if self.frames_left_out else ""
        return (
            f"import-bag: {len(self.episodes)} episode(s), {frames} frames from {bags} bag(s) in {self.seconds:.1f} s "
            f"= {self.frames_per_second:.1f} frames/s{left}; dataset at {self.out}"
        )


def _clocks(streams: BagStreams, config: ImportBagConfig) -> list[Clock]:
    ages = {
        "camera": config.max_age.camera,
        "pose": config.max_age.pose,
        "gripper": config.max_age.gripper,
        "joints": config.max_age.joints,
    }
    return [Clock(s.label, s.stamps, int(round(ages[s.role] * NS))) for s in streams.streams()]


def plan_bag(streams: BagStreams, config: ImportBagConfig) -> tuple[list[PlannedEpisode], list[str], int]:
    """The episodes of one bag (per span, split or dropped at gaps), the notes on what was left out, and how
    many frames were left out."""
    clocks = _clocks(streams, config)
    planned, notes, left_out = [], list(streams.notes), 0
    for number, span in enumerate(streams.spans):
        where = f"bag {streams.path}" + (f", span {number} ({config.span_topic})" if config.span_topic else "")
        alignment = align_span(
            clocks, span, config.fps, config.on_gap, config.min_frames, streams.first_ns, where=where
        )
        notes += alignment.notes
        kept = sum(piece.length for piece in alignment.pieces)
        left_out += len(alignment.times) - kept
        for piece in alignment.pieces:
            frames = slice(piece.start, piece.stop)
            picks = [pick[frames] for pick in alignment.picks]
            task, task_notes = episode_task(streams, alignment.times[frames], config, where)
            notes += task_notes
            planned.append(PlannedEpisode(streams.path, number, alignment.times[frames], picks, task))
    return planned, notes, left_out


def episode_task(streams: BagStreams, times: np.ndarray, config: ImportBagConfig, where: str) -> tuple[str, list[str]]:
    """The task of the episode of frame ``times`` (int64 [T], ns), and notes: ``--task``; without it the instruction
    in force at its first frame (the last ``--task_topic`` message received by then, unless an empty one ended it),
    else the first one given during the episode. A dataset episode holds one task: other instructions given during
    it are named in a note.

    Raises:
        BagError: without ``--task``, an episode with no instruction in force at its start nor given during it.
    """
    if config.task:
        return config.task, []
    start, end = int(times[0]), int(times[-1])
    before = [text for ns, text in streams.instructions if ns <= start]
    during = [text for ns, text in streams.instructions if start < ns <= end and text]
    task = (before[-1] if before else "") or (during[0] if during else "")
    at = f"{(start - streams.first_ns) / NS:.3f} s"
    if not task:
        raise BagError(
            f"{where}: the episode from {at} has no instruction on {config.task_topic}, neither in force at its first "
            "frame nor given during it: pass its task with --task"
        )
    others = sorted(set(during) - {task})
    if not others:
        return task, []
    return task, [
        f"{where}: the episode from {at} was also told {', '.join(map(repr, others))}; it is written with the task "
        f"{task!r}: mark each instruction's episode with --span_topic to keep them apart"
    ]


def episode_arrays(streams: BagStreams, episode: PlannedEpisode) -> dict[str, np.ndarray]:
    """The state, action and joints of a planned episode, as ``jepa-mpc collect`` computes them.

    Returns ``state`` float32 [T, 7] (x, y, z in m; extrinsic xyz Euler in rad; gripper closedness),
    ``action`` float32 [T, 7] (``actions_from_states`` in float64, last row zeros) and ``joint_position``
    float32 [T, 7] (rad) or None.
    """
    picks = streams.picks_by_input(episode.picks)
    pose = streams.pose.poses(picks["pose"], len(episode.times))  # [T, 12]: xyz, row-major rotation matrix
    euler = matrix_to_euler_xyz(torch.from_numpy(pose[:, 3:].reshape(-1, 3, 3))).numpy()  # [T, 3]
    gripper = streams.gripper.values[picks["gripper"][0]]  # [T, 1]
    state = np.concatenate([pose[:, :3], euler, gripper], axis=1).astype(np.float32)
    action = np.zeros_like(state)
    # As sim/collect.py's record_episode: the actions of the float32 states, computed in float64.
    action[:-1] = actions_from_states(torch.from_numpy(state.astype(np.float64))).numpy()
    joints = None
    if streams.joints is not None:
        joints = streams.joints.values[picks["joints"][0]].astype(np.float32)
    return {"state": state, "action": action, "joint_position": joints}


def _frame_sizes(plans: list[tuple[BagStreams, list[PlannedEpisode]]], config: ImportBagConfig) -> dict[str, tuple]:
    """The frame size (H, W) of each camera, the same in every picked message of every bag.

    Raises:
        BagError: a camera whose picked images change size, or whose size is odd (H.264 needs even sizes).
    """
    sizes: dict[str, tuple[int, int, Path]] = {}
    for streams, episodes in plans:
        for c, (topic, name) in enumerate(config.camera_map().items()):
            stream = streams.cameras[c]
            for episode in episodes:
                picked = stream.values[streams.picks_by_input(episode.picks)["camera"][c]].astype(np.int64)  # [T, 2]
                first = (int(picked[0, 0]), int(picked[0, 1]))
                sizes.setdefault(name, (*first, streams.path))
                expected = sizes[name][:2]
                changed = np.flatnonzero((picked != np.array(expected)).any(axis=1))
                if changed.size:
                    k = int(changed[0])
                    seen = f"bag {sizes[name][2]}'s earlier frames" if sizes[name][2] != streams.path else "before"
                    raise BagError(
                        f"bag {streams.path}, topic {topic}: the image at stamp {episode.times[k] / NS:.3f} is "
                        f"{picked[k, 0]} x {picked[k, 1]}, {expected[0]} x {expected[1]} {seen}: a dataset's camera "
                        "keeps one image size; record the camera at one resolution, or import the bags of each "
                        "resolution into their own dataset"
                    )
    for topic, name in config.camera_map().items():
        height, width, path = sizes[name]
        if height % 2 or width % 2:
            raise BagError(
                f"bag {path}, topic {topic}: images of {height} x {width}; the dataset's H.264 video needs an even "
                "height and width: record the camera at an even resolution"
            )
    return {name: size[:2] for name, size in sizes.items()}


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(
            f"--out {out} already exists and is not an empty folder: import into a new folder (import-bag writes "
            "whole datasets, it does not add to one)"
        )


def import_bags(config: ImportBagConfig) -> ImportSummary:
    """Import ``config.bags`` into a new dataset at ``config.out``; see the module docstring.

    Raises:
        BagError: a bag the import cannot use (named with its topic and the fix), found before anything is written.
        DatasetError: ``--out`` holds something already, or no episode is left after the gaps.
    """
    start = time.perf_counter()
    out = Path(config.out)
    _check_out(out)
    plans: list[tuple[BagStreams, list[PlannedEpisode]]] = []
    notes: list[str] = []
    left_out = 0
    for bag in config.bags:
        streams = read_bag_streams(bag, config, progress=config.progress)
        planned, bag_notes, bag_left_out = plan_bag(streams, config)
        plans.append((streams, planned))
        notes += bag_notes
        left_out += bag_left_out
    for note in notes:
        warnings.warn(note, stacklevel=2)
    if not any(episodes for _, episodes in plans):
        raise DatasetError(
            f"nothing to import from {len(config.bags)} bag(s): every span was left out (warnings above); raise "
            "--max_age.* for streams that publish slowly, lower --min_frames, or use --on_gap split"
        )
    sizes = _frame_sizes(plans, config)
    from jepa_mpc_dataset.writer import LeRobotDatasetWriter

    staging = out.with_name(f".{out.name}.importing-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    written: list[ImportedEpisode] = []
    try:
        writer = LeRobotDatasetWriter(
            staging,
            fps=config.fps,
            cameras={name: sizes[name] for name in config.camera_names[: len(config.camera_topics)]},
            robot_type=config.robot_type,
            record_joints=bool(config.joint_topic),
        )
        todo = [(streams, episode) for streams, episodes in plans for episode in episodes]
        for streams, episode in tqdm(todo, desc="import-bag", unit="episode", disable=not config.progress or None):
            camera_picks = streams.picks_by_input(episode.picks)["camera"]
            frames = read_frames(streams.path, streams.cameras, camera_picks, progress=config.progress)
            arrays = episode_arrays(streams, episode)
            writer.write_episode(
                len(written),
                frames=dict(zip(config.camera_names, frames)),
                state=arrays["state"],
                action=arrays["action"],
                task=episode.task,
                success=config.success,
                seed=EPISODE_SEED,
                joint_position=arrays["joint_position"],
            )
            start_s = (int(episode.times[0]) - streams.first_ns) / NS
            written.append(ImportedEpisode(len(written), streams.path, episode.span, len(episode.times), start_s))
        writer.finalize()
        if out.exists():
            out.rmdir()  # empty (checked above)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportSummary(out, written, notes, left_out, time.perf_counter() - start)
