"""``jepa-mpc import-bag``: real rosbag2 bags (written by ``rosbags``' own writer, MCAP and sqlite3) of sim episodes
give the states, actions and joints ``jepa-mpc collect`` wrote for the same episodes, and their frames within the
codec's tolerance; gaps split or drop episodes with a message; each bad input is one line naming the bag, the topic
and the fix; ``jepa-mpc train`` reads the result unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bag_helpers import NS, BagRecorder, record_episode
from command_helpers import SHORT_TRAIN_RUN, train_argv
from jepa_mpc.cli import main as cli_main, run_command
from jepa_mpc_dataset import LeRobotDataset
from jepa_mpc_dataset.bag_alignment import frame_times
from jepa_mpc_dataset.format import JOINT_STATE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXTERIOR, WRIST = "observation.images.exterior_1_left", "observation.images.wrist_left"
START_NS = 1_765_000_000 * NS  # stamps as a real robot's clock gives them (December 2025)
CAMERAS = ["--camera_topics", "/image", "/wrist_image"]
QUIET = ["--progress", "false"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def import_bag(*argv: str) -> int:
    return cli_main(["import-bag", *map(str, argv), *QUIET])


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Two reach episodes by ``jepa-mpc collect`` (64 px), read back: frames per topic, states, joints."""
    root = tmp_path_factory.mktemp("collect") / "reach"
    argv = ["--task", "reach", "--episodes", "2", "--out", str(root), "--sim.image_size", "64", "--seed", "5"]
    assert run_command("collect", argv) == 0
    dataset = LeRobotDataset(root)
    episodes = []
    for index in range(2):
        episode = dataset.episode(index)
        joints = pq.read_table(dataset.data_file(index), columns=[JOINT_STATE]).column(0).to_pylist()
        episodes.append(
            {
                "frames": {"/image": episode.frames[EXTERIOR], "/wrist_image": episode.frames[WRIST]},
                "state": episode.state,
                "joints": np.stack(joints).astype(np.float32),
            }
        )
    return dataset, episodes


@pytest.fixture(scope="module")
def bags(collected, tmp_path_factory) -> list[Path]:
    """Episode 0 in an MCAP bag (wrist camera as JPEG CompressedImage), episode 1 in a sqlite3 bag (bgr8 images)."""
    _, episodes = collected
    folder = tmp_path_factory.mktemp("bags")
    paths = []
    for index, (storage, options) in enumerate(
        [("mcap", {"compressed": ("/wrist_image",)}), ("sqlite3", {"bgr": ("/image",)})]
    ):
        recorder = BagRecorder(folder / f"episode{index}_{storage}", storage)
        episode = episodes[index]
        record_episode(
            recorder,
            episode["frames"],
            episode["state"],
            episode["joints"],
            START_NS + index * 60 * NS,
            seed=index,
            **options,
        )
        paths.append(recorder.close())
    return paths


@pytest.fixture(scope="module")
def imported_with_output(bags, tmp_path_factory) -> tuple[Path, str]:
    """Both bags imported with two cameras and the arm joints; the dataset and what the command printed."""
    out = tmp_path_factory.mktemp("imported") / "reach"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        argv = [*bags, "--out", out, "--task", "reach the target", *CAMERAS, "--joint_topic", "/joint_states"]
        assert import_bag(*argv) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def imported(imported_with_output) -> Path:
    return imported_with_output[0]


def test_imported_bags_give_what_collect_wrote(collected, imported_with_output):
    """States, stored actions, commanded poses and joints exactly; frames within the codec's tolerance."""
    dataset, _ = collected
    imported, summary = imported_with_output
    result = LeRobotDataset(imported)
    assert result.num_episodes == 2 and result.fps == 4
    assert set(result.camera_names) == {EXTERIOR, WRIST}
    columns = ["action", "action.cartesian_position", "action.gripper_position", JOINT_STATE, "observation.state"]
    for index in range(2):
        ours, theirs = result.episode(index), dataset.episode(index)
        assert ours.length == theirs.length == 17 and ours.task == "reach the target" and ours.seed == -1
        np.testing.assert_array_equal(ours.state, theirs.state)
        np.testing.assert_array_equal(ours.action, theirs.action)
        np.testing.assert_array_equal(ours.commanded_action, theirs.commanded_action)
        ours_table = pq.read_table(result.data_file(index), columns=columns)
        theirs_table = pq.read_table(dataset.data_file(index), columns=columns)
        for column in columns:
            assert ours_table.column(column).equals(theirs_table.column(column)), column
        # The bags carry collect's decoded frames; the import encodes them again (H.264 CRF 18), JPEG 95 before
        # that for episode 0's wrist camera. Measured 2026-12-07: 41.0 and 40.9 dB; the JPEG camera 37.4 dB.
        for camera in (EXTERIOR, WRIST):
            assert psnr(ours.frames[camera], theirs.frames[camera]) > 35, (index, camera)
    assert "import-bag: 2 episode(s), 34 frames from 2 bag(s)" in summary and "frames/s" in summary
    assert f"jepa-mpc train --data {imported}" in summary


def test_the_pose_from_tf_and_a_float64_gripper_give_the_same_states(collected, bags, tmp_path):
    """/tf (world -> panda_hand) with /tf_static (world -> panda_link0, panda_hand -> panda_hand_tcp) composed without
    tf2, and a std_msgs/Float64 closedness placed at its receive time: the same states and actions."""
    dataset, _ = collected
    out = tmp_path / "tf"
    tf = ["--pose_topic", "/tf", "--base_frame", "panda_link0", "--ee_frame", "panda_hand_tcp"]
    assert import_bag(*bags, "--out", out, "--task", "reach", *tf, "--gripper_topic", "/gripper") == 0
    result = LeRobotDataset(out)
    assert result.camera_names == [EXTERIOR]
    for index in range(2):
        ours, theirs = result.episode(index), dataset.episode(index)
        # Three transforms composed in float64 (errors ~1e-16) and rounded to float32: exact (2026-12-07), roll
        # crossing +-pi (up to 3.1415925) included.
        np.testing.assert_array_equal(ours.state, theirs.state)
        np.testing.assert_array_equal(ours.commanded_action, theirs.commanded_action)


# ------------------------------------------------------------------------- small synthetic bags


def smooth_episode(length: int, size: int = 16, seed: int = 0) -> dict:
    """A synthetic episode: frames {topic: uint8 [T, size, size, 3]}, states [T, 7] (roll crossing pi), joints."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    state = np.stack(
        [0.4 + 0.1 * t, -0.1 + 0.2 * t, 0.3 + 0.05 * t, np.pi - 0.2 + 0.4 * t, 0.1 * t, 0.2 * t - 0.1, t], axis=1
    )
    state[:, 3] = (state[:, 3] + np.pi) % (2 * np.pi) - np.pi
    frames = {topic: rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8) for topic in ("/image",)}
    joints = rng.normal(size=(length, 7))
    return {"frames": frames, "state": state.astype(np.float32), "joints": joints.astype(np.float32)}


def synthetic_bag(path: Path, storage: str = "mcap", length: int = 12, spans: bool = False, **options) -> Path:
    """A small bag of one synthetic episode (or, with ``spans``, two marked on /recording, 20 s apart)."""
    recorder = BagRecorder(path, storage)
    starts = [START_NS, START_NS + 20 * NS] if spans else [START_NS]
    for number, start in enumerate(starts):
        episode = smooth_episode(length, seed=number)
        record_episode(
            recorder,
            episode["frames"],
            episode["state"],
            episode["joints"],
            start,
            seed=number,
            **(options if number == len(starts) - 1 else {}),
        )
        if spans:
            end = start + (length - 1) * NS // 4
            recorder.scalar("/recording", "std_msgs/msg/Bool", True, start)
            recorder.scalar("/recording", "std_msgs/msg/Bool", False, end + 1)
    return recorder


def test_frame_times_are_exact_nanoseconds_without_drift():
    times = frame_times(10 * NS, 10 * NS + 3 * NS, 3)
    assert times.tolist() == [10 * NS + (k * NS + 1) // 3 for k in range(10)]
    assert frame_times(5, 4, 4).size == 0


def warnings_printed(capsys) -> list[str]:
    """The warning lines ``jepa-mpc`` printed on stderr since the last call."""
    prefix = "jepa-mpc import-bag: warning: "
    return [line[len(prefix) :] for line in capsys.readouterr().err.splitlines() if line.startswith(prefix)]


def test_a_gap_splits_the_episode_and_says_which_frames_times_and_stream(tmp_path, capsys):
    bag = synthetic_bag(tmp_path / "gap", length=40, skip={"/image": (3.1, 4.1)}).close()
    assert import_bag(bag, "--out", tmp_path / "split", "--task", "t") == 0
    (gap,) = warnings_printed(capsys)
    assert gap.startswith(f"bag {bag}: gap at frames 13-16 (3.25-4.00 s after the bag's first message, ")
    assert "stamps 1765000003.250-1765000004.000): /image up to 0.917 s old (max age 0.1 s)" in gap
    result = LeRobotDataset(tmp_path / "split")
    assert [result.episode_length(i) for i in range(result.num_episodes)] == [13, 23]


def test_a_gap_in_a_marked_span_drops_that_span_or_splits_it(tmp_path, capsys):
    """Two episodes marked on a std_msgs/Bool topic; the second has a gap: --on_gap drop keeps the first alone,
    split keeps its pieces; a piece shorter than --min_frames is left out with a warning."""
    bag = synthetic_bag(tmp_path / "spans", "sqlite3", length=40, spans=True, skip={"/ee_pose": (5.6, 6.4)}).close()
    spans = ["--span_topic", "/recording"]
    assert import_bag(bag, "--out", tmp_path / "drop", "--task", "t", *spans, "--on_gap", "drop") == 0
    gap, dropped = warnings_printed(capsys)
    assert gap.startswith(f"bag {bag}, span 1 (/recording): gap at frames 23-25 (25.75-26.25 s after")
    assert gap.endswith("/ee_pose up to 0.675 s old (max age 0.05 s)")
    assert dropped == f"bag {bag}, span 1 (/recording): left out (--on_gap drop) for its gap(s): 37 frame(s) " + (
        "without a gap dropped too"
    )
    assert LeRobotDataset(tmp_path / "drop").num_episodes == 1

    assert import_bag(bag, "--out", tmp_path / "split", "--task", "t", *spans, "--min_frames", "15") == 0
    gap, short = warnings_printed(capsys)
    assert "gap at frames 23-25" in gap
    assert short.startswith(f"bag {bag}, span 1 (/recording): frames 26-39 (26.50-29.75 s after")
    assert short.endswith("left out: 14 frame(s) between gaps, fewer than --min_frames 15")
    result = LeRobotDataset(tmp_path / "split")
    assert [result.episode_length(i) for i in range(result.num_episodes)] == [40, 23]


def test_without_task_each_episode_takes_the_instruction_its_run_recorded(tmp_path, capsys):
    """No --task: the instruction on /goal_text (std_msgs/String, as run recordings hold it) in force at each
    episode's first frame, else the first given during it; another one given during it is named in a warning; an
    episode told nothing, or a bag without the topic, is one line naming the fix."""
    recorder = synthetic_bag(tmp_path / "told", length=12, spans=True)
    string = "std_msgs/msg/String"
    recorder.scalar("/goal_text", string, "touch the red cube", START_NS - NS)  # in force when span 0 starts
    recorder.scalar("/goal_text", string, "", START_NS + 10 * NS)  # ended between the spans
    recorder.scalar("/goal_text", string, "lift the red cube", START_NS + 21 * NS)  # given during span 1
    recorder.scalar("/goal_text", string, "push the cube", START_NS + 22 * NS)
    bag = recorder.close()
    spans = ["--span_topic", "/recording"]
    assert import_bag(bag, "--out", tmp_path / "out", *spans) == 0
    (note,) = warnings_printed(capsys)
    assert note == (
        f"bag {bag}, span 1 (/recording): the episode from 20.000 s was also told 'push the cube'; it is written "
        "with the task 'lift the red cube': mark each instruction's episode with --span_topic to keep them apart"
    )
    result = LeRobotDataset(tmp_path / "out")
    assert [result.episode(i).task for i in range(2)] == ["touch the red cube", "lift the red cube"]
    assert import_bag(bag, "--out", tmp_path / "given", *spans, "--task", "t") == 0  # --task wins
    assert {LeRobotDataset(tmp_path / "given").episode(i).task for i in range(2)} == {"t"}

    untold = synthetic_bag(tmp_path / "untold", length=12, spans=True)
    untold.scalar("/goal_text", string, "touch the red cube", START_NS + NS)
    untold.scalar("/goal_text", string, "", START_NS + 10 * NS)
    capsys.readouterr()
    assert import_bag(untold.close(), "--out", tmp_path / "x", *spans) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.endswith(
        "span 1 (/recording): the episode from 20.000 s has no instruction on /goal_text, neither in force at its "
        "first frame nor given during it: pass its task with --task"
    )
    assert import_bag(synthetic_bag(tmp_path / "none").close(), "--out", tmp_path / "y") == 2
    error = capsys.readouterr().err
    assert "records no instruction (no topic '/goal_text'" in error and error.strip().endswith(
        "pass the task's instruction with --task, or its topic with --task_topic"
    )


# ------------------------------------------------------------------------------- bad input


def _shift_stamp(recorder: BagRecorder, topic: str, index: int, seconds: int) -> None:
    messages = [m for m in recorder.messages if m[2] == topic]
    messages[index][4].header.stamp.sec += seconds


def _zero_stamps(recorder: BagRecorder, topic: str) -> None:
    for message in (m[4] for m in recorder.messages if m[2] == topic):
        message.header.stamp.sec = message.header.stamp.nanosec = 0


def _cut_file(bag: Path, suffix: str, keep: float) -> None:
    (storage,) = bag.glob(f"*{suffix}")
    data = storage.read_bytes()
    storage.write_bytes(data[: int(len(data) * keep)])


def _overwrite_middle(bag: Path, suffix: str) -> None:
    """Zeros over the middle third of the storage file: its length and end stay, its chunks are garbage."""
    (storage,) = bag.glob(f"*{suffix}")
    data = bytearray(storage.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(third)
    storage.write_bytes(bytes(data))


def _changing_size(path: Path) -> BagRecorder:
    recorder = synthetic_bag(path)
    for k, message in enumerate(m[4] for m in recorder.messages if m[2] == "/image"):
        if k >= 12:
            message.height = message.width = 32
            message.step = 96
            message.data = np.zeros(32 * 32 * 3, np.uint8)
    return recorder


def _bad_bag(case: str, path: Path) -> tuple[Path, list[str]]:
    """A bag with the problem ``case``, and the extra flags of the import that meets it."""
    if case == "misspelt topic":
        return synthetic_bag(path).close(), ["--camera_topics", "/imgae"]
    if case == "unsupported type":
        return synthetic_bag(path).close(), ["--pose_topic", "/image"]
    if case == "backward stamps":
        recorder = synthetic_bag(path)
        _shift_stamp(recorder, "/ee_pose", 57, -1)
        return recorder.close(), []
    if case == "zero stamps":
        recorder = synthetic_bag(path)
        _zero_stamps(recorder, "/image")
        return recorder.close(), []
    if case == "truncated mcap":
        bag = synthetic_bag(path).close()
        _cut_file(bag, ".mcap", 0.6)
        return bag, []
    if case == "corrupt mcap":
        bag = synthetic_bag(path).close()
        _overwrite_middle(bag, ".mcap")
        return bag, []
    if case == "truncated sqlite3":
        bag = synthetic_bag(path, "sqlite3").close()
        _cut_file(bag, ".db3", 0.5)
        return bag, []
    if case == "changing image size":
        return _changing_size(path).close(), []
    raise AssertionError(case)


BAD_INPUTS = {
    # case: what the one line must say besides the bag
    "misspelt topic": [
        "has no topic '/imgae' (did you mean /image?)",
        "/ee_pose (geometry_msgs/msg/PoseStamped, ",
        "pass the right one with --camera_topics",
    ],
    "unsupported type": [
        "topic /image: sensor_msgs/msg/Image is not a type --pose_topic takes",
        "geometry_msgs/msg/PoseStamped, tf2_msgs/msg/TFMessage",
    ],
    "backward stamps": ["topic /ee_pose: stamps go backwards at message 57", "--time_source receive"],
    "zero stamps": ["topic /image: message 0", "has a zero header stamp", "--time_source receive"],
    "truncated mcap": ["cannot be opened", "a corrupt or truncated bag", "ros2 bag reindex"],
    "corrupt mcap": ["a corrupt or truncated bag"],
    "truncated sqlite3": ["a corrupt or truncated bag", "ros2 bag reindex"],
    "changing image size": [
        "topic /image: the image at stamp 1765000001.000 is 32 x 32, 16 x 16 before",
        "record the camera at one resolution",
    ],
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_bag_the_topic_and_the_fix(case, tmp_path, capsys):
    bag, flags = _bad_bag(case, tmp_path / "bag")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad bag fails; it does not warn its way through
        assert import_bag(bag, "--out", tmp_path / "out", "--task", "t", *flags) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("jepa-mpc import-bag: error: "), error
    assert str(bag) in error, error
    for part in BAD_INPUTS[case]:
        assert part in error, (part, error)
    assert not (tmp_path / "out").exists()  # nothing is written from a bad bag


def test_a_bad_bag_from_a_real_process_is_exit_2_and_one_line_without_a_traceback(tmp_path):
    bag = synthetic_bag(tmp_path / "bag").close()
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "OMP_NUM_THREADS": "1"}
    argv = ["import-bag", str(bag), "--out", str(tmp_path / "out"), "--task", "t", "--gripper_topic", "/grippr"]
    result = subprocess.run([sys.executable, "-m", "jepa_mpc", *argv], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"bag {bag} has no topic '/grippr' (did you mean /gripper?)" in line
    assert line.endswith("pass the right one with --gripper_topic")


def test_an_existing_dataset_is_not_overwritten(imported, tmp_path, capsys):
    bag = synthetic_bag(tmp_path / "bag").close()
    assert import_bag(bag, "--out", imported, "--task", "t") == 2
    assert "already exists and is not an empty folder: import into a new folder" in capsys.readouterr().err
    assert LeRobotDataset(imported).num_episodes == 2


# ---------------------------------------------------------------------------------- training


def test_jepa_mpc_train_runs_on_the_imported_dataset(imported, encoder_path, tmp_path):
    """The cheapest train run in the tests (command_helpers.SHORT_TRAIN_RUN): 3 steps, dim 48."""
    argv = train_argv(imported, encoder_path, tmp_path / "run", tmp_path / "cache")
    assert cli_main([*argv, "--data.val_fraction", "0.5", *SHORT_TRAIN_RUN]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()
