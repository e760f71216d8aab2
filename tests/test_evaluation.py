"""The evaluation and the demo, end to end on real MuJoCo episodes (tiny random-weight model, few steps)."""

from __future__ import annotations

import json
import os
import signal

import imageio.v2 as imageio
import pytest

import process_helpers
from command_helpers import eval_argv
from jepa_mpc.cli import main as cli_main, parse_command_config
from jepa_mpc.evaluation import EvalConfig, wilson_interval
from model_helpers import save_tiny_model
from worldmodel import (
    load_world_model,
)
from worldmodel.checkpoint import DEFAULT_CHECKPOINT

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """The cheapest model an evaluation plans with (in place of conftest's larger one)."""
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.pt", dim=32, depth=1)


def test_wilson_interval():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.25 < high < 0.35
    low, high = wilson_interval(50, 50)
    assert 0.9 < low < 0.95 and high == 1.0
    low, high = wilson_interval(25, 50)
    assert low < 0.5 < high
    # Published Wilson score intervals (Newcombe 1998, Statistics in Medicine 17:857, Table I, method 3).
    for (successes, trials), expected in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        assert wilson_interval(successes, trials) == pytest.approx(expected, abs=5e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_multi_stage_tasks_plan_with_their_own_settings_unless_told_otherwise(tmp_path):
    reach = parse_command_config("eval", ["--task", "reach"])
    assert reach.planner == EvalConfig().planner and reach.planner.energy == "terminal"
    grasp = parse_command_config("eval", ["--task", "grasp", "--planner.samples", "64", "--out", str(tmp_path)])
    assert grasp.planner.energy == "terminal+intermediate" and grasp.planner.plan_rotation
    assert grasp.planner.samples == 64 and grasp.planner.iterations == 6 and grasp.out == str(tmp_path)
    (tmp_path / "eval.yaml").write_text("task: pickplace\nplanner:\n  energy: terminal\n")
    pickplace = parse_command_config("eval", ["--config", str(tmp_path / "eval.yaml")])
    assert pickplace.planner.energy == "terminal" and pickplace.planner.plan_rotation  # the file wins
    assert EvalConfig.for_task("pickplace").planner.energy == "terminal+intermediate"


def test_eval_writes_tables_and_videos_for_every_policy(tmp_path, tiny_checkpoint):
    out = tmp_path / "eval"
    argv = [*eval_argv(tiny_checkpoint, episodes=2, videos=1), "--out", str(out)]
    # iCEM, and a gate that keeps every plan while it lasts (H = 2): search, keep, search...
    argv += ["--planner.optimizer", "icem", "--planner.surprise_gating", "true", "--planner.surprise_threshold", "1e9"]
    assert cli_main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["config"]["planner"]["samples"] == 8 and report["config"]["episodes"] == 2
    assert report["config"]["planner"]["optimizer"] == "icem"
    policies = [s["policy"] for s in report["summaries"]]
    assert policies == ["world_model", "random", "oracle"]
    for summary in report["summaries"]:
        assert summary["episodes"] == 2
        low, high = summary["success_ci95"]
        assert 0.0 <= low <= summary["success_rate"] <= high <= 1.0
        # the same seeded scenes for every policy
        assert [e["seed"] for e in summary["per_episode"]] == [1000, 1001]
    world_model = report["summaries"][0]
    assert world_model["latency_ms_p50"] > 0 and len(world_model["per_episode"][0]["energies"]) >= 1
    episode = world_model["per_episode"][0]
    assert episode["replanned"] == [True, False] and world_model["replan_fraction"] == 0.5
    assert episode["surprises"][0] is None and episode["surprises"][1] > 0  # the surprise of each step
    # A model without token statistics: no out-of-distribution score, as before they existed.
    assert episode["ood_scores"] == [None, None] and world_model["ood_score_mean"] is None
    assert report["ood_threshold"] is None
    table = (out / "results.md").read_text()
    assert table.count("| reach |") == 3
    gif = imageio.mimread(out / "reach_world_model_seed1000.gif")
    assert len(gif) >= 2 and gif[0].shape[1] > gif[0].shape[0]  # view | goal side by side


def test_eval_in_worker_processes_gives_the_results_of_one_process(tmp_path, tiny_checkpoint):
    """``--workers 2`` spreads the episodes over two spawned processes; each episode is seeded by its index
    alone, so every policy's per-episode results are those of one process (latencies aside)."""
    argv = [*eval_argv(tiny_checkpoint, episodes=3, videos=1), "--threads", "1"]
    reports = {}
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        assert cli_main([*argv, "--workers", str(workers), "--out", str(out)]) == 0
        reports[workers] = json.loads((out / "results.json").read_text())
        assert sorted(p.name for p in out.glob("*.gif")) == [
            f"reach_{name}_seed1000.gif" for name in ("oracle", "random", "world_model")
        ]
    for one, two in zip(reports[1]["summaries"], reports[2]["summaries"], strict=True):
        assert one["policy"] == two["policy"] and one["successes"] == two["successes"]
        for a, b in zip(one["per_episode"], two["per_episode"], strict=True):
            a.pop("latencies_s"), b.pop("latencies_s")
            assert a == b


@pytest.mark.timeout(300)
def test_ctrl_c_during_eval_in_workers_writes_the_finished_episodes_and_stops_the_workers(tmp_path, tiny_checkpoint):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) during ``eval --workers 2``: the
    workers stop at once, the finished episodes are written in place of an earlier run's results,
    marked as interrupted, their table is printed, and the command exits 130."""
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.json").write_text('{"status": "complete", "summaries": []}')  # an earlier run's
    (out / "results.md").write_text("an earlier run's table\n")
    planner = ["--planner.samples", "16", "--planner.iterations", "2", "--planner.topk", "2"]
    argv = eval_argv(tiny_checkpoint, episodes=12, max_steps=12, videos=12, planner=planner)
    argv += ["--workers", "2", "--out", str(out)]
    process = process_helpers.start_command(argv, tmp_path / "eval.log")
    workers: list[int] = []
    try:
        process_helpers.wait_until(lambda: len(list(out.glob("*.gif"))) >= 3, 200, "three finished episodes")
        workers = [pid for pid in process_helpers.children(process.pid) if process_helpers.is_pool_worker(pid)]
        assert len(workers) == 2
        gifs_at_interrupt = len(list(out.glob("*.gif")))
        os.killpg(process.pid, signal.SIGINT)
        # "At once": no queued episode is taken after Ctrl-C; the GIF count tells a queue that kept running,
        # the time bound a stop that waited for it.
        process_helpers.wait_until(lambda: not any(map(process_helpers.alive, workers)), 5, "the workers stop at once")
        assert len(list(out.glob("*.gif"))) <= gifs_at_interrupt + len(workers)  # at most the episodes in flight
        returncode = process.wait(timeout=60)
    finally:
        process.kill()
        process_helpers.kill_all(workers)
    output = (tmp_path / "eval.log").read_text()
    assert returncode == 130, output[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert report["status"] == "interrupted" and report["episodes_planned"] == 36
    finished = [(s["policy"], e["seed"]) for s in report["summaries"] for e in s["per_episode"]]
    assert 1 <= len(finished) == report["episodes_finished"] < 36
    assert all((out / f"reach_{policy}_seed{seed}.gif").is_file() for policy, seed in finished)
    table = (out / "results.md").read_text()
    assert table.startswith(f"Interrupted: {len(finished)} of 36 episodes finished")
    assert table.count("| reach |") == len(report["summaries"]) and table.split("\n\n", 1)[1] in output
    assert f"interrupted after {len(finished)} of 36 episodes" in output
    assert output.rstrip().endswith("jepa-mpc eval: interrupted") and "Traceback" not in output


def test_eval_takes_the_simulators_settings_as_collect_does(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "eval"
    argv = [*eval_argv(tiny_checkpoint, "push", max_steps=1, policies=["world_model"]), "--out", str(out)]
    argv += ["--sim.randomization.colour", "0.2"]
    assert cli_main(argv) == 0
    sim = json.loads((out / "results.json").read_text())["config"]["sim"]
    # the camera renders the model's 32 px (its checkpoint states it), one env step per 0.5 s predictor step
    assert sim["image_size"] == 32 and sim["randomization"]["colour"] == 0.2 and sim["control_hz"] == 2.0
    # another control rate is refused, naming both values and the fix
    assert cli_main([*argv, "--sim.control_hz", "4"]) == 2
    assert (
        f"--sim.control_hz 4 contradicts the model {tiny_checkpoint}, which needs one action per predictor step "
        "of 0.5 s: use --sim.control_hz 2" in capsys.readouterr().err
    )


def test_eval_aims_at_each_subgoal_image_in_turn(tmp_path, tiny_checkpoint):
    out = tmp_path / "eval"
    argv = eval_argv(tiny_checkpoint, "grasp", max_steps=12, videos=1, policies=["world_model"])
    assert cli_main([*argv, "--out", str(out)]) == 0
    frames = imageio.mimread(out / "grasp_world_model_seed1000.gif")
    assert len(frames) == 13
    half = frames[0].shape[1] // 2
    goal_panels = {frame[: frames[0].shape[0] // 2, half:].tobytes() for frame in frames}
    assert len(goal_panels) >= 2  # the first sub-goal, then the next one


def oracle_successes(tmp_path, checkpoint, task: str, *flags: str) -> int:
    """Successes of the true-state oracle on one episode (seed 1000 unless ``flags`` say otherwise) of ``task``."""
    out = tmp_path / "eval"
    argv = [
        "eval",
        "--task",
        task,
        "--episodes",
        "1",
        "--videos",
        "0",
        "--policies",
        "oracle",
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
        "--out",
        str(out),
        *flags,
    ]
    assert cli_main(argv) == 0
    return json.loads((out / "results.json").read_text())["summaries"][0]["successes"]


@pytest.mark.parametrize("subgoals, solved", [("true", True), ("false", False)])
def test_true_state_oracle_grasps_only_through_subgoals(tmp_path, tiny_checkpoint, subgoals, solved):
    """The planner can grasp (the oracle shows it) once it has sub-goals; toward the final image alone
    it closes the hand before it reaches the cube (the default holds act on sub-goals only)."""
    assert oracle_successes(tmp_path, tiny_checkpoint, "grasp", "--subgoals", subgoals) == int(solved)


@pytest.mark.parametrize("hold, solved", [("false", False), ("true", True)])
def test_holding_the_gripper_through_the_carry_keeps_the_cube_in_hand(tmp_path, tiny_checkpoint, hold, solved):
    """Seed 1000 of pick-and-place: with the gripper searched over during the carry, the oracle opens the
    hand and drops the cube; holding it still (the carry keeps the grasp's gripper state) places it."""
    flags = ["--hold_gripper", hold, "--hold_pose", "false"]
    assert oracle_successes(tmp_path, tiny_checkpoint, "pickplace", *flags) == int(solved)


def test_demo_with_the_shipped_model_writes_a_video_and_a_summary(tmp_path, capsys):
    """`make demo` in a reduced form: the default model, one short episode."""
    out = tmp_path / "demo"
    assert cli_main(["demo", "--max-steps", "2", "--device", "cpu", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] >= 1 and isinstance(summary["success"], bool)
    assert summary["planning_latency_ms"]["p50"] > 0
    assert len(imageio.mimread(out / "episode.gif")) == summary["steps"] + 1
    assert str((out / "episode.gif").resolve()) in capsys.readouterr().out


def test_shipped_default_model_loads_and_states_its_time_base():
    model = load_world_model(DEFAULT_CHECKPOINT, device="cpu")
    assert model.config.step_seconds == pytest.approx(0.5)
    assert DEFAULT_CHECKPOINT.stat().st_size < 30 * 2**20


def test_default_model_recipe_is_a_list_of_registered_commands(capsys):
    from jepa_mpc.cli import COMMANDS
    from jepa_mpc.default_model_recipe import COLLECTION, POLICY_COLLECTION, WIDE_POLICY_COLLECTION

    assert cli_main(["make-default-model", "--print", "--work", "runs/x"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ jepa-mpc ")]
    names = [line.split()[2] for line in lines]
    collects = len(COLLECTION) + len(POLICY_COLLECTION) + len(WIDE_POLICY_COLLECTION)
    trainers = ["init-encoder", "train", "train-policy", "ood-stats"]
    assert names[:collects] == ["collect"] * collects and names[collects : collects + 4] == trainers
    evals = lines[collects + 4 :]
    assert [line.split()[2] for line in evals] == ["eval"] * 8  # through the sub-goals, then from one goal photo
    assert all("--subgoals false" in line for line in evals[4:]) and not any("--subgoals" in line for line in evals[:4])
    # the model evaluated is the one with the token statistics
    assert all("--checkpoint runs/x/model/model.pt" in line for line in evals)
    # on the CPU, the evaluations run one process per training thread, one thread each
    assert all(line.endswith("--workers 2 --threads 1") for line in evals)
    assert set(names) <= set(COMMANDS)
    # one flag moves the whole recipe to a GPU
    assert cli_main(["make-default-model", "--print", "--work", "runs/x", "--device", "cuda"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ jepa-mpc ")]
    assert all("--run.device cuda" in line for line in lines if line.split()[2] == "train")
    assert all("--device cuda" in line and "--workers" not in line for line in lines if line.split()[2] == "eval")
    # many cores collect in parallel; 0 evaluation episodes = train only
    assert (
        cli_main(["make-default-model", "--print", "--work", "runs/x", "--workers", "16", "--eval_episodes", "0"]) == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ jepa-mpc ")]
    assert [line.split()[2] for line in lines] == ["collect"] * collects + trainers
    assert all(line.endswith("--workers 16") for line in lines[:collects])


def test_default_model_recipe_collects_in_the_scene_the_evaluation_renders(tmp_path):
    """The default model's data and its evaluation share image size, shadows and scene ranges, parsed
    from the recipe's own collect commands; only the control rate differs (4 Hz recorded, 2 Hz
    planned: one action per two-frame tubelet). The goal policy's wide scenes hold the default ones."""
    from jepa_mpc.default_model_recipe import IMAGE_SIZE, WIDE_POLICY_COLLECTION, recipe
    from jepa_mpc.evaluation.config import EvalConfig
    from jepa_mpc_foundation.configuration import parse_config
    from sim.collect import CollectConfig

    collects = [step for step in recipe(tmp_path, threads=1, eval_episodes=1) if step[0] == "collect"]
    evaluation = EvalConfig.for_task("push").sim  # the shipped model's, read from its checkpoint
    assert evaluation.image_size == IMAGE_SIZE
    wide = [step for step in collects if "--sim.randomization.colour" in step]
    assert len(wide) == len(WIDE_POLICY_COLLECTION)
    for step in collects:
        scene = parse_config(CollectConfig, step[1:], "collect").sim
        assert (scene.image_size, scene.shadows) == (evaluation.image_size, evaluation.shadows)
        assert scene.control_hz == 2 * evaluation.control_hz
        ranges, default = scene.randomization, evaluation.randomization
        if step not in wide:
            assert ranges == default
            continue
        for name in ("colour", "camera_position", "camera_target", "light_position"):
            assert getattr(ranges, name) > getattr(default, name), name
        assert (
            ranges.light_intensity[0]
            < default.light_intensity[0]
            < default.light_intensity[1]
            < ranges.light_intensity[1]
        )


def test_default_model_recipe_resumes_a_training_step_that_left_a_state(tmp_path):
    """Training refuses a folder holding a run unless resumed: a rerun of the recipe resumes (or, for a
    finished step, is told so and goes on)."""
    from jepa_mpc.default_model_recipe import recipe

    (train,) = [step for step in recipe(tmp_path, threads=1, eval_episodes=1) if step[0] == "train"]
    assert "--resume" not in train
    (tmp_path / "predictor").mkdir()
    (tmp_path / "predictor" / "train_state.pt").write_bytes(b"")
    (train,) = [step for step in recipe(tmp_path, threads=1, eval_episodes=1) if step[0] == "train"]
    assert train[-2:] == ["--resume", "true"]


def test_episode_video_panels_upscale_by_nearest_neighbour():
    import numpy as np

    from jepa_mpc.episode_video import PANEL, _upscale, compose_frame

    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    panel = _upscale(image)
    assert panel.shape == (PANEL, PANEL, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(panel, image.repeat(PANEL // 64, axis=0).repeat(PANEL // 64, axis=1))  # 3 x 3 blocks
    frame = compose_frame(image, image, energies=[1.0, 0.5], total_steps=4)
    assert frame.shape[1] == 2 * PANEL and frame.shape[0] > PANEL


@pytest.mark.parametrize("hold_pose, solved", [("false", False), ("true", True)])
def test_holding_the_hand_still_while_the_fingers_close_keeps_the_cube_between_them(
    tmp_path, tiny_checkpoint, hold_pose, solved
):
    """Seed 1006 of grasp, gripper held through the approach: with the hand's motion searched over while the
    fingers close, planning noise (a few cm) pushes the cube out from between them; holding the hand still
    closes them on it."""
    flags = ["--seed", "1006", "--hold_gripper", "true", "--hold_pose", hold_pose]
    assert oracle_successes(tmp_path, tiny_checkpoint, "grasp", *flags) == int(solved)
