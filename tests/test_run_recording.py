"""Run recordings (issue 30 part 2, ``ros_nodes/run_recording.py``): MCAP files of what the robot did, read back.

Every file is read the ways its users read it: rosbags' ``AnyReader`` (what ``jepa-mpc import-bag`` reads
with; it opens only a complete file), the mcap library with mcap_ros2's decoder (the messages decoded from the
schemas stored in the file, as Foxglove decodes them), and :func:`ros_nodes.run_recording.read_recording`
(rclpy's decoder; also a file cut short). The crash tests signal real recording processes
(``tests/recording_process.py``); the eval test runs ``jepa-mpc eval --record`` on one short episode; the
bringup test records a real planner node (``jepa-mpc bringup --record``, sim and planner in one process).
"""

from __future__ import annotations

import array
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from mcap.reader import make_reader  # noqa: E402
from mcap_ros2.decoder import DecoderFactory  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64, String  # noqa: E402

from command_helpers import eval_argv  # noqa: E402
from jepa_mpc.cli import main as cli_main  # noqa: E402
from jepa_mpc_dataset import LeRobotDataset  # noqa: E402
from jepa_mpc_foundation.ros_messages import FRANKA_FINGER_JOINTS, FRANKA_MAX_WIDTH  # noqa: E402
from process_helpers import environment, small_bringup, wait_until  # noqa: E402
from ros_nodes import conversions, run_recording as rr  # noqa: E402
from ros_nodes.diagnostics import Status  # noqa: E402

EXTERIOR = "observation.images.exterior_1_left"  # the dataset feature of the first camera topic


def assert_same(decoded, original, where: str = "message") -> None:
    """``decoded`` (rclpy, rosbags or mcap_ros2's message) holds the values of the rclpy message ``original``."""
    if hasattr(original, "get_fields_and_field_types"):
        for name in original.get_fields_and_field_types():
            assert_same(getattr(decoded, name), getattr(original, name), f"{where}.{name}")
    elif isinstance(original, list) and original and hasattr(original[0], "get_fields_and_field_types"):
        assert len(decoded) == len(original), where
        for index, (item, expected) in enumerate(zip(decoded, original)):
            assert_same(item, expected, f"{where}[{index}]")
    elif isinstance(original, bytes) and len(original) == 1:  # a ROS byte: rclpy bytes, the others a number
        assert (decoded[0] if isinstance(decoded, bytes) else int(decoded)) == original[0], where
    elif isinstance(original, (array.array, np.ndarray, list)):
        values = np.frombuffer(decoded, np.uint8) if isinstance(decoded, bytes) else np.asarray(decoded)
        np.testing.assert_array_equal(values, np.asarray(original), err_msg=where)
    else:
        assert decoded == original, where


def anyreader_messages(path: Path) -> list[tuple[str, str, int, object]]:
    """(topic, type, log time ns, message) of every message, as import-bag reads them (rosbags' AnyReader)."""
    with AnyReader([path]) as reader:
        return [(c.topic, c.msgtype, t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()]


def one_of_each() -> list[tuple[str, object]]:
    """(topic, rclpy message): one message on every topic, in the order a tick of the node would record them."""
    rng = np.random.default_rng(0)
    camera, wrist = (rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(2))
    state = np.array([0.5, -0.1, 0.2, np.pi, 0.1, -0.2, 0.25])
    status = Status(1, "no command (stale_image)", [("rejections.stale_image", "3"), ("state", "active")])
    messages = [
        (rr.IMAGE, conversions.rgb_to_image(camera, 1.25, "exterior_camera")),
        (rr.WRIST_IMAGE, conversions.rgb_to_image(wrist, 1.25, "wrist_camera")),
        (rr.EE_POSE, conversions.vector_to_pose(state, 1.25, "panda_link0")),
        # no velocities: rclpy's serialize_message pads this message with 8 bytes that rosbags refuses
        (
            rr.JOINT_STATES,
            JointState(header=conversions.make_header(1.25, ""), name=["j1", "j2"], position=[0.01, 0.02]),
        ),
        (rr.GOAL_IMAGE, conversions.rgb_to_image(camera[::-1].copy(), 1.0, "goal_1")),
        (rr.GOAL_TEXT, String(data="put the red cube in the blue zone")),
        (rr.GRIPPER_COMMAND, Float64(data=0.75)),
        (rr.TARGET_POSE, conversions.vector_to_pose(state + 0.01, 1.5, "panda_link0")),
        (rr.PLANNED_PATH, conversions.plan_to_path(state, np.full((2, 7), 0.01), 1.5, "panda_link0")),
        (rr.ENERGY, Float64(data=0.5)),
        (rr.ENERGY_SPREAD, Float64(data=0.05)),
        (rr.PLANNING_LATENCY, Float64(data=0.2)),
        (rr.SURPRISE, Float64(data=0.01)),
        (rr.DIAGNOSTICS, conversions.status_to_diagnostics(status, "planner_node: planner", "jepa_mpc", 1.5)),
    ]
    return messages


def test_every_topic_reads_back_as_recorded_with_its_schema(tmp_path):
    clock = iter(np.arange(100) * 0.1 + 1000.0)
    path = tmp_path / "run.mcap"
    recorded = one_of_each()
    with rr.RunRecorder(path, clock=lambda: next(clock)) as recorder:
        for topic, message in recorded:
            assert recorder.write(topic, message)
    assert {topic for topic, _ in recorded} == set(rr.TOPICS)
    assert rr.recording_is_complete(path)

    # import-bag's reader: topics, ROS 2 types, log times from the clock, values
    read = anyreader_messages(path)
    assert [(topic, kind) for topic, kind, _, _ in read] == [(t, rr.type_name(type(m))) for t, m in recorded]
    assert [t for _, _, t, _ in read] == [round((1000.0 + 0.1 * i) * 1e9) for i in range(len(recorded))]
    for (topic, _, _, message), (_, original) in zip(read, recorded):
        assert_same(message, original, topic)

    # Foxglove's way: the profile, schemas and encodings rosbag2 writes; decoded from the stored schema text
    with open(path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        decoded = list(reader.iter_decoded_messages())
    assert len(decoded) == len(recorded)
    for (schema, channel, _, message), (topic, original) in zip(decoded, recorded):
        assert channel.topic == topic and channel.message_encoding == "cdr"
        assert schema.encoding == "ros2msg" and schema.name == rr.type_name(type(original))
        assert schema.data.decode() == rr.message_definition(schema.name)
        assert_same(message, original, topic)

    # rclpy's decoder gives back equal messages
    assert [(m.topic, m.decode()) for m in rr.read_recording(path)] == recorded

    # a recording is not replaced by accident; a folder gets a new file per run
    with pytest.raises(ValueError, match="exists already"):
        rr.RunRecorder(path)
    assert rr.run_file(tmp_path / "runs", 0.5).name == "run_19700101_000000_500.mcap"
    assert rr.run_file(path) == path
    rr.RunRecorder(tmp_path / "empty.mcap").close()  # a run that recorded nothing (a failed start) leaves no file
    assert not (tmp_path / "empty.mcap").exists()
    off = rr.RunRecorder.for_run("")
    assert not off.recording and not off.write(rr.ENERGY, Float64(data=1.0))
    off.record_state(np.zeros(7), 0.0)
    off.close()


def test_goal_changes_record_the_instruction_in_force_and_its_end(tmp_path):
    """/goal_text holds each instruction taken; once the goals change without one, a single empty message says
    that none is in force; image goals alone record no /goal_text at all."""
    image = np.zeros((4, 6, 3), np.uint8)
    with rr.RunRecorder(tmp_path / "run.mcap") as recorder:
        recorder.record_goals([image], 0.0)  # configured with a goal image
        recorder.record_goals([], 1.0, "touch the red cube")
        recorder.record_goals([], 2.0, "lift the red cube")
        recorder.record_goals([image, image], 3.0)  # goal images replace the instruction
        recorder.record_goals([image], 4.0)
    recorded = [m.decode().data if m.topic == rr.GOAL_TEXT else "image" for m in rr.read_recording(recorder.path)]
    assert recorded == ["image", "touch the red cube", "lift the red cube", "image", "image", "", "image"]


def test_a_file_cut_anywhere_reads_up_to_its_last_complete_message(tmp_path, capsys):
    """A process killed while writing leaves a file that ends anywhere, also inside a record."""
    path = tmp_path / "run.mcap"
    recorder = rr.RunRecorder(path, clock=lambda: 2.0)
    ends = []  # the file's size after each message: what a kill just after it leaves
    for topic, message in one_of_each():  # written, not closed: as a kill leaves it
        recorder.write(topic, message)
        ends.append(path.stat().st_size)
    assert ends == sorted(ends) and ends[-1] == path.stat().st_size
    data = path.read_bytes()
    expected = [m.data for m in rr.read_recording(path)]
    assert len(expected) == len(ends)

    cut = tmp_path / "cut.mcap"
    # around every message's end, at every byte of the header and of the last message record, and every 31st byte
    sizes = {end + d for end in ends for d in (-1, 0, 1)} | set(range(40)) | set(range(ends[-1] - 120, len(data)))
    sizes |= set(range(0, len(data), 31))
    for size in sorted(sizes - {len(data) + 1}):
        cut.write_bytes(data[:size])
        complete = sum(end <= size for end in ends)
        assert [m.data for m in rr.read_recording(cut)] == expected[:complete], f"cut at {size} of {len(data)} bytes"
    assert not rr.recording_is_complete(cut)
    with pytest.raises(Exception, match="magic"):  # rosbags reads the footer first: import-bag needs a repair
        anyreader_messages(cut)

    cut.write_bytes(data[: ends[6] + 5])  # seven messages and 5 bytes of the eighth
    assert cli_main(["repair-recording", str(cut)]) == 0
    repaired = tmp_path / "cut.repaired.mcap"
    assert f"{cut} was cut short: 7 complete messages written to {repaired}" in capsys.readouterr().out
    assert rr.recording_is_complete(repaired)
    assert [m.data for m in rr.read_recording(repaired)] == expected[:7]
    assert [topic for topic, *_ in anyreader_messages(repaired)] == [topic for topic, _ in one_of_each()[:7]]
    recorder.close()
    assert rr.recording_is_complete(path)


def start_recording_process(path: Path) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    """tests/recording_process.py recording to ``path``; its stdout lines are collected in the returned list by
    the returned thread, which ends with the process."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("recording_process.py")), str(path)],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a suite started in the background inherits SIGINT ignored; the process under test must see it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    return process, lines, reader


@pytest.mark.timeout(90)
def test_a_killed_or_interrupted_recording_keeps_every_message_written_before(tmp_path):
    """SIGKILL and Ctrl-C (SIGINT) of two recording processes (run side by side: each takes seconds to start)."""
    runs = {signum: tmp_path / f"{signum.name}.mcap" for signum in (signal.SIGKILL, signal.SIGINT)}
    started = {signum: start_recording_process(path) for signum, path in runs.items()}
    returncodes = {}
    try:
        for signum, (process, lines, _) in started.items():
            wait_until(
                lambda lines=lines, process=process: (
                    sum(line.startswith("wrote") for line in lines) >= 300 or process.poll() is not None
                ),
                60,
                "300 messages recorded",
            )
            process.send_signal(signum)
        for signum, (process, _, _) in started.items():
            returncodes[signum] = process.wait(timeout=20)
    finally:
        for process, _, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for signum, (_, lines, reader) in started.items():
        reader.join(timeout=10)
        check_recording_after(signum, runs[signum], lines, returncodes[signum])


def check_recording_after(signum: signal.Signals, path: Path, lines: list[str], returncode: int) -> None:
    """The file of a recording process ended by ``signum`` holds every message it reported written, intact."""
    output = "".join(lines)
    reported = max(int(line.split()[1]) for line in lines if line.startswith("wrote"))
    messages = list(rr.read_recording(path))
    # Every message reported written is there, and at most the one being reported when the signal came.
    assert reported <= len(messages) <= reported + 1, (signum.name, output[-500:])
    topics = [rr.IMAGE, rr.EE_POSE, rr.ENERGY]
    log_times = [message.log_time_ns for message in messages]
    assert log_times == sorted(log_times)
    for index, message in enumerate(messages):  # in order and intact: the number index // 3, on its topic
        number = index // 3
        assert message.topic == topics[index % 3], index
        value = message.decode()
        if message.topic == rr.IMAGE:
            assert bytes(value.data) == bytes([number % 256]) * (24 * 32 * 3)
        elif message.topic == rr.EE_POSE:
            assert value.pose.position.x == pytest.approx(0.3 + number / 1e4)
        else:
            assert value.data == number
    if signum == signal.SIGKILL:
        assert returncode == -signal.SIGKILL
        assert not rr.recording_is_complete(path)  # no summary: read_recording reads it, import-bag after a repair
        repaired = path.with_name("repaired.mcap")
        assert rr.repair_recording(path, repaired) == len(messages)
        assert len(anyreader_messages(repaired)) == len(messages)
    else:
        assert returncode == 0 and "Traceback" not in output, output[-2000:]
        closed = int(next(line for line in lines if line.startswith("closed")).split()[1])
        assert closed == len(messages)
        assert rr.recording_is_complete(path)  # closed properly: rosbags opens it as it is
        assert [topic for topic, *_ in anyreader_messages(path)] == [m.topic for m in messages]


@pytest.mark.timeout(120)
def test_eval_record_writes_one_recording_per_episode_in_sim_time(tmp_path, tiny_checkpoint):
    out = tmp_path / "eval"
    argv = [*eval_argv(tiny_checkpoint, videos=1, policies=["world_model", "random"]), "--record", "--out", str(out)]
    assert cli_main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    for summary in report["summaries"]:
        policy, (episode,) = summary["policy"], summary["per_episode"]
        path = out / f"reach_{policy}_seed1000.mcap"
        assert (out / f"reach_{policy}_seed1000.gif").exists() and rr.recording_is_complete(path)
        steps = episode["steps"]
        read = anyreader_messages(path)
        counts = {topic: sum(t == topic for t, *_ in read) for topic in {t for t, *_ in read}}
        expected = {rr.GOAL_IMAGE: 1, rr.DIAGNOSTICS: steps, rr.TARGET_POSE: steps, rr.GRIPPER_COMMAND: steps}
        expected |= {topic: steps + 1 for topic in (rr.IMAGE, rr.WRIST_IMAGE, rr.EE_POSE, rr.JOINT_STATES)}
        if policy == "world_model":
            expected |= {rr.PLANNED_PATH: steps, rr.ENERGY: steps, rr.ENERGY_SPREAD: steps, rr.PLANNING_LATENCY: steps}
            surprises = sum(s is not None for s in episode["surprises"])
            expected |= {rr.SURPRISE: surprises} if surprises else {}
            energies = [m.data for t, _, _, m in read if t == rr.ENERGY]
            assert energies == pytest.approx(episode["energies"])
        assert counts == expected
        # sim time: 0.5 s per step from the reset, in the log times and the stamps
        poses = [(t, m) for topic, _, t, m in read if topic == rr.EE_POSE]
        assert [t for t, _ in poses] == [round(k * 0.5e9) for k in range(steps + 1)]
        assert [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in poses] == [
            k * 0.5 for k in range(steps + 1)
        ]
        # the state reads back through the node's conversions (what import-bag takes as the 7-D state)
        joints = [m for topic, _, _, m in read if topic == rr.JOINT_STATES]
        closedness = conversions.joint_state_to_closedness(
            JointState(name=list(joints[-1].name), position=joints[-1].position.tolist()),
            FRANKA_FINGER_JOINTS,
            FRANKA_MAX_WIDTH,
        )
        assert 0.0 <= closedness <= 1.0
        image = next(m for topic, _, _, m in read if topic == rr.IMAGE)
        assert (image.encoding, image.height, image.width) == ("rgb8", 32, 32)
        status = [m for topic, _, _, m in read if topic == rr.DIAGNOSTICS][0].status[0]
        assert status.name == f"jepa-mpc eval: {policy}" and {"step", "goal_image", "distance"} <= {
            kv.key for kv in status.values
        }


@pytest.mark.timeout(120)
def test_bringup_record_writes_the_planner_nodes_run_and_ctrl_c_closes_it(tmp_path, tiny_checkpoint):
    """``jepa-mpc bringup --record`` passes the folder to the planner node (record_path), whose run file holds
    what it took and sent, readable while it is written; Ctrl-C closes it complete; ``jepa-mpc import-bag``
    makes a dataset of it."""
    runs = tmp_path / "runs"
    with small_bringup(tmp_path, tiny_checkpoint, "--record", str(runs)) as (process, lines):

        def commands_recorded() -> int:
            assert process.poll() is None, "bringup exited early:\n" + "".join(lines)
            files = list(runs.glob("run_*.mcap"))
            return sum(m.topic == rr.TARGET_POSE for m in rr.read_recording(files[0])) if files else 0

        wait_until(lambda: commands_recorded() >= 3, 90, "3 commands in the recording being written")
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=20)
    output = "".join(lines)
    assert returncode == 0 and "Traceback" not in output, output
    (path,) = runs.glob("run_*.mcap")
    assert f"recording the run to {path.resolve()}" in output
    assert rr.recording_is_complete(path)
    read = anyreader_messages(path)
    counts = {topic: sum(t == topic for t, *_ in read) for topic in rr.TOPICS}
    for topic in (rr.IMAGE, rr.WRIST_IMAGE, rr.EE_POSE, rr.JOINT_STATES, rr.GOAL_IMAGE, rr.DIAGNOSTICS):
        assert counts[topic] >= 1, (topic, counts)
    sent = counts[rr.TARGET_POSE]  # every command with its gripper command, path and numbers
    assert sent >= 3 and all(counts[t] == sent for t in (rr.GRIPPER_COMMAND, rr.PLANNED_PATH, rr.ENERGY)), counts
    goal = next(m for t, _, _, m in read if t == rr.GOAL_IMAGE)
    assert (goal.height, goal.width, goal.header.frame_id) == (48, 48, "goal_1")  # the sim's goal, as the node took it
    commanding = [m.status[0] for t, _, _, m in read if t == rr.DIAGNOSTICS]
    assert any(s.message.startswith("commanding toward goal image 1/1") for s in commanding)
    for (topic, _, _, target), (next_topic, _, _, path_msg) in zip(read, read[1:]):
        if topic == rr.TARGET_POSE:  # its plan follows it, from the measured pose; the target is one safe step on
            assert next_topic == rr.PLANNED_PATH
            start, aim = path_msg.poses[0].pose.position, target.pose.position
            assert np.linalg.norm([aim.x - start.x, aim.y - start.y, aim.z - start.z]) <= 0.05 + 1e-6  # max_step

    # Record on the robot, post-train on it: import-bag reads the run file into a dataset as it reads a bag.
    dataset_root = tmp_path / "imported"
    argv = ["import-bag", str(path), "--out", str(dataset_root), "--task", "reach", "--min_frames", "2"]
    assert cli_main([*argv, "--camera_topics", rr.IMAGE, rr.WRIST_IMAGE, "--progress", "false"]) == 0
    dataset = LeRobotDataset(dataset_root)
    episode = dataset.episode(0)
    assert len(episode.state) >= 2 and episode.frames[EXTERIOR].shape[1:] == (48, 48, 3)
    poses = {
        (np.float32(m.pose.position.x), np.float32(m.pose.position.y), np.float32(m.pose.position.z))
        for t, _, _, m in read
        if t == rr.EE_POSE
    }
    assert all(tuple(np.float32(v) for v in state[:3]) in poses for state in episode.state)  # each a measured pose
