"""The ``jepa-mpc`` error policy, from real processes: a user error is one line on stderr and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from process_helpers import ros_environment


def jepa_mpc(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    return subprocess.run(
        [sys.executable, "-m", "jepa_mpc", *argv], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize(
    "argv, named",
    [
        (["train", "--data", "/nonexistent", "--encoder", "x", "--out", "y"], "/nonexistent"),
        (["eval", "--planner.samples", "abc"], "planner.samples"),
        (["collect", "--task", "nope", "--episodes", "1", "--out", "y"], "nope"),
        (["eval", "--no-such-flag", "1"], "--no_such_flag"),
        (["eval", "--config", "/nonexistent.yaml"], "/nonexistent.yaml"),
        (["train", "--encoder", "x"], "datasets"),
        (["eval", "--device", "cuda:99", "--episodes", "1", "--policies", "random"], "cuda:99"),
    ],
)
def test_a_user_error_is_one_line_naming_the_input(argv, named):
    result = jepa_mpc(*argv)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"jepa-mpc {argv[0]}: error: ") and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = jepa_mpc("eval", "--planner.samples", "abc", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr and "planner.samples" in result.stderr


def test_help_lists_the_nested_flags_with_their_help():
    result = jepa_mpc("train", "--help")
    assert result.returncode == 0
    assert "--run.steps" in result.stdout and "optimizer steps in all" in result.stdout and "--data" in result.stdout


@pytest.mark.parametrize(
    "parameter, named",
    [("rate_hz:=-1.0", "rate_hz"), ("checkpoint:=/nonexistent/model.pt", "/nonexistent/model.pt")],
)
def test_a_node_started_with_a_bad_parameter_says_so_in_one_line(parameter, named):
    pytest.importorskip("rclpy")
    command = [sys.executable, "-m", "ros_nodes.planner_node", "--ros-args", "-p", parameter]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ros_environment())
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and named in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["folder", "list", "tensor as state dict", "no config"])
def test_a_checkpoint_of_the_wrong_structure_is_one_line(tmp_path, case):
    import torch

    path = tmp_path / "ckpt" if case == "folder" else tmp_path / "ckpt.pt"
    if case == "folder":
        path.mkdir()
    else:
        data = {
            "list": [torch.zeros(2)],
            "tensor as state dict": {"encoder": torch.zeros(2)},
            "no config": {"format": "jepa_mpc", "encoder": {}, "predictor": {}},
        }[case]
        torch.save(data, path)
    frames = os.path.join(os.path.dirname(__file__), "fixtures", "franka_example_traj.npz")
    result = jepa_mpc("encode", "--checkpoint", str(path), "--frames", frames)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("jepa-mpc encode: error: ") and str(path) in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["config only", "weights only", "truncated weights"])
def test_a_broken_hugging_face_folder_names_its_real_problem_not_train(tmp_path, case):
    """The planner's loader refuses any Hugging Face folder (no predictor); a broken one is refused for
    what is broken first, since `jepa-mpc train --encoder` would refuse it too."""
    import json

    folder = tmp_path / "hf"
    folder.mkdir()
    if case != "weights only":
        (folder / "config.json").write_text(json.dumps({"model_type": "vjepa2"}))
    if case != "config only":
        (folder / "model.safetensors").write_bytes((64).to_bytes(8, "little") + b"{" + b" " * 40)
    frames = os.path.join(os.path.dirname(__file__), "fixtures", "franka_example_traj.npz")
    result = jepa_mpc("encode", "--checkpoint", str(folder), "--frames", frames)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "train --encoder" not in lines[0], lines[0]
    expected = {
        "config only": "a Hugging Face folder without model.safetensors",
        "weights only": "needs config.json beside its weights",
        "truncated weights": "could not be read as safetensors",
    }[case]
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("path", ["", None])
def test_load_world_model_without_a_path_says_so(path):
    from worldmodel import CheckpointError, load_world_model

    with pytest.raises(
        CheckpointError, match=r"no checkpoint given .*resolve_checkpoint\(''\) for the shipped default"
    ):
        load_world_model(path, device="cpu")
