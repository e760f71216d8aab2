"""``jepa-mpc collect`` writes a dataset the reader reads back; runs resume, also after a kill; the same
command writes the same bytes; ``render-tasks`` draws strips."""

import hashlib
import os
import signal

import numpy as np
import pytest
import torch

import process_helpers
from jepa_mpc.cli import parse_command_config, run_command
from jepa_mpc_dataset import LeRobotDataset
from jepa_mpc_foundation.pose import action_between
from sim import collect as collect_module, gallery

REACH_FRAMES = 17  # 16 control steps + the first observation


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "reach"
    argv = ["--task", "reach", "--episodes", "2", "--out", str(root), "--sim.image_size", "64", "--seed", "5"]
    assert run_command("collect", argv) == 0
    return root, argv


def test_collected_dataset_round_trips(reach_dataset):
    root, _ = reach_dataset
    dataset = LeRobotDataset(root)
    assert dataset.num_episodes == 2
    episode = dataset.episode(1)
    assert episode.length == REACH_FRAMES and episode.seed == 6 and episode.task
    assert isinstance(episode.success, bool)
    assert episode.words_in_scene == () and "words_in_scene" not in dataset.features  # the language tasks' only
    for frames in episode.frames.values():
        assert frames.shape == (REACH_FRAMES, 64, 64, 3) and frames.dtype == np.uint8 and frames.std() > 5
    # Stored action rows are the reached-state deltas (last row zeros), as the reader recomputes them.
    states = torch.from_numpy(episode.state.astype(np.float64))
    expected = action_between(states[:-1], states[1:]).numpy()
    np.testing.assert_allclose(episode.commanded_action[:-1], expected, atol=1e-5)
    np.testing.assert_array_equal(episode.commanded_action[-1], 0)
    np.testing.assert_allclose(episode.action, episode.commanded_action, atol=1e-5)
    assert np.abs(episode.state[-1, :3] - episode.state[0, :3]).max() > 0.05  # the arm moved


def test_collect_resumes_and_keeps_existing_episodes(reach_dataset):
    root, argv = reach_dataset
    first = next(root.glob("data/chunk-000/file-000.parquet")).stat().st_mtime_ns
    argv = list(argv)
    argv[argv.index("--episodes") + 1] = "3"
    assert run_command("collect", argv) == 0
    assert LeRobotDataset(root).num_episodes == 3
    assert next(root.glob("data/chunk-000/file-000.parquet")).stat().st_mtime_ns == first


def test_parallel_workers_record_the_same_episodes(reach_dataset, tmp_path):
    """Episode i is seeded SEED + i whichever process records it: 2 workers write what 1 wrote."""
    root, argv = reach_dataset
    argv = list(argv)
    argv[argv.index("--out") + 1] = str(tmp_path / "parallel")
    assert run_command("collect", [*argv, "--workers", "2"]) == 0
    serial, parallel = LeRobotDataset(root), LeRobotDataset(tmp_path / "parallel")
    assert parallel.num_episodes == 2
    for index in range(2):
        a, b = serial.episode(index), parallel.episode(index)
        assert a.seed == b.seed
        np.testing.assert_array_equal(a.state, b.state)
        for camera, frames in a.frames.items():
            np.testing.assert_array_equal(frames, b.frames[camera])


def _file_hashes(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_same_command_writes_the_same_bytes_on_one_cpu_or_two(tmp_path):
    """Every file of two runs of one command is byte-identical, though the first may use one CPU and the
    second every CPU. (From 128 px up libx264 slices each frame for as many threads as the process
    has CPUs: the videos' bytes then depended on the machine and its load.)"""
    argv = ["--task", "reach", "--episodes", "2", "--sim.image_size", "128", "--seed", "3"]
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        assert run_command("collect", [*argv, "--out", str(tmp_path / "a")]) == 0
    finally:
        os.sched_setaffinity(0, cpus)
    assert run_command("collect", [*argv, "--out", str(tmp_path / "b")]) == 0
    first, second = _file_hashes(tmp_path / "a"), _file_hashes(tmp_path / "b")
    assert sum(".mp4" in name for name in first) == 4 and any(".parquet" in name for name in first)
    assert first == second


def test_an_episode_another_process_completes_meanwhile_is_taken_as_done(tmp_path, monkeypatch):
    """An episode that appears complete on disk while this process records it (an orphaned worker of an
    earlier run wrote it) is taken as done, not an error."""
    config = parse_command_config(
        "collect", ["--task", "reach", "--episodes", "1", "--sim.image_size", "32", "--out", str(tmp_path / "reach")]
    )
    this, other = collect_module._Collector(config), collect_module._Collector(config)
    record = collect_module.record_episode

    def record_while_another_process_writes(env, policy, seed):
        episode = record(env, policy, seed)
        if env is this.env:
            assert other.collect(0) is not None  # the other process finishes the same episode first
        return episode

    monkeypatch.setattr(collect_module, "record_episode", record_while_another_process_writes)
    assert this.collect(0) is None
    monkeypatch.undo()
    assert this.collect(0) is None  # found before recording, too
    this.writer.finalize()
    assert LeRobotDataset(tmp_path / "reach").num_episodes == 1


COLLECT_6 = ["collect", "--task", "reach", "--episodes", "6", "--workers", "2", "--sim.image_size", "32"]


@pytest.mark.timeout(300)
def test_workers_end_when_collect_is_killed_and_a_rerun_at_once_completes_the_dataset(tmp_path):
    """kill -9 of ``collect --workers 2`` (as the out-of-memory killer does): its workers end with it,
    their episodes in progress leave no file, and a rerun started at once completes the dataset."""
    root = tmp_path / "reach"
    argv = [*COLLECT_6, "--out", str(root)]
    process = process_helpers.start_command(argv, tmp_path / "killed.log")
    workers: list[int] = []
    try:
        process_helpers.wait_until(lambda: any(root.glob("data/*/*.parquet")), 150, "a first episode on disk")
        workers = process_helpers.children(process.pid)
        assert sum(map(process_helpers.is_pool_worker, workers)) == 2
        process.kill()
        process.wait()
        process_helpers.wait_until(
            lambda: not any(map(process_helpers.alive, workers)), 10, f"the workers {workers} end with their parent"
        )
    finally:
        process.kill()
        process_helpers.kill_all(workers)
    assert not list(root.rglob("*.tmp"))  # the episodes in progress unwound
    # At once, in this process and with one worker (a shorter test): no orphan writes beside it.
    assert (
        run_command("collect", ["--task", "reach", "--episodes", "6", "--sim.image_size", "32", "--out", str(root)])
        == 0
    )
    assert LeRobotDataset(root).num_episodes == 6


@pytest.mark.timeout(300)
def test_a_killed_worker_is_told_in_one_line_and_the_episodes_written_stay_readable(tmp_path):
    root = tmp_path / "reach"
    log = tmp_path / "collect.log"
    process = process_helpers.start_command([*COLLECT_6, "--out", str(root)], log)
    workers: list[int] = []
    try:
        process_helpers.wait_until(lambda: any(root.glob("data/*/*.parquet")), 150, "a first episode on disk")
        workers = [pid for pid in process_helpers.children(process.pid) if process_helpers.is_pool_worker(pid)]
        os.kill(workers[0], signal.SIGKILL)  # as the out-of-memory killer picks the largest process
        returncode = process.wait(timeout=60)
    finally:
        process.kill()
        process_helpers.kill_all(workers)
    output = log.read_text()
    assert returncode == 2 and "Traceback" not in output, output[-3000:]
    assert "jepa-mpc collect: error: a worker process ended abruptly" in output
    assert "run the same command again to resume" in output
    assert 1 <= LeRobotDataset(root).num_episodes < 6  # meta/ was rebuilt from the episodes written


def test_record_matches_a_replay_of_the_same_seed(reach_dataset):
    """Episode i is reproducible from its stored seed: reset(seed) gives the stored first state."""
    import gymnasium

    import sim
    from sim.config import SimConfig

    root, _ = reach_dataset
    episode = LeRobotDataset(root).episode(0)
    env = gymnasium.make(sim.env_id("reach"), config=SimConfig(render_images=False))
    obs, _ = env.reset(seed=episode.seed)
    np.testing.assert_allclose(obs["state"], episode.state[0], atol=1e-6)


def test_observation_state_is_droids_joint_positions_and_gripper(reach_dataset):
    """observation.state [8] = the arm's 7 joint angles + the gripper, as DROID; the joints are the arm's
    real ones: forward kinematics of the recorded joints gives the recorded TCP position."""
    import gymnasium
    import mujoco
    import pyarrow.parquet as pq

    import sim
    from sim.config import SimConfig

    root, _ = reach_dataset
    dataset = LeRobotDataset(root)
    assert dataset.features["observation.state"]["shape"] == [8] and dataset.pose_feature is None
    table = pq.read_table(dataset.data_file(1), columns=["observation.state", "observation.state.joint_position"])
    observation_state = table.column(0).combine_chunks().flatten().to_numpy().reshape(-1, 8)
    joints = table.column(1).combine_chunks().flatten().to_numpy().reshape(-1, 7)
    episode = dataset.episode(1)
    np.testing.assert_array_equal(observation_state[:, :7], joints)
    np.testing.assert_array_equal(observation_state[:, 7], episode.state[:, 6])
    assert np.abs(joints[-1] - joints[0]).max() > 0.01  # the arm moved
    robot = gymnasium.make(sim.env_id("reach"), config=SimConfig(render_images=False)).unwrapped.robot
    for t in (0, len(joints) - 1):
        robot.data.qpos[robot.arm_qpos] = joints[t]
        mujoco.mj_forward(robot.model, robot.data)
        np.testing.assert_allclose(robot.tcp_position(), episode.state[t, :3], atol=1e-5)


def test_render_tasks_writes_png_strips(tmp_path):
    import imageio.v3 as iio

    assert (
        run_command("render-tasks", ["--out", str(tmp_path), "--tasks", "reach", "--image-size", "32", "--frames", "2"])
        == 0
    )
    strip = iio.imread(tmp_path / "sim_reach.png")
    assert strip.shape[0] == 32 and strip.shape[1] == 3 * 32 + 3 * gallery.GAP  # 2 frames, the goal, gaps
    assert (tmp_path / "sim_tasks.png").is_file()
