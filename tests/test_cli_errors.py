"""The ``jepa-mpc`` error policy, from real processes: a user error is one line on stderr and exit 2.

Each case is a ``jepa-mpc`` process of its own, as a user starts it; :func:`ahead` starts the processes of the
selected cases when the first of them runs, two at a time, each case reading its own process's result: a process
spends its seconds importing torch on one core, and the suite runs on two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from process_helpers import ros_environment

FRAMES = os.path.join(os.path.dirname(__file__), "fixtures", "franka_example_traj.npz")
USER_ERRORS = [
    (["train", "--data", "/nonexistent", "--encoder", "x", "--out", "y"], "/nonexistent"),
    (["eval", "--planner.samples", "abc"], "planner.samples"),
    (["collect", "--task", "nope", "--episodes", "1", "--out", "y"], "nope"),
    (["eval", "--no-such-flag", "1"], "--no_such_flag"),
    (["eval", "--config", "/nonexistent.yaml"], "/nonexistent.yaml"),
    (["train", "--encoder", "x"], "datasets"),
    (["eval", "--device", "cuda:99", "--episodes", "1", "--policies", "random"], "cuda:99"),
]
WRONG_STRUCTURES = ["folder", "list", "tensor as state dict", "no config"]
BROKEN_HUGGING_FACE_FOLDERS = ["config only", "weights only", "truncated weights"]


def jepa_mpc(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    return subprocess.run(
        [sys.executable, "-m", "jepa_mpc", *argv], capture_output=True, text=True, timeout=120, env=env
    )


def wrong_structure(folder: Path, case: str) -> Path:
    """A checkpoint of the wrong structure ``case`` (WRONG_STRUCTURES), written in ``folder``."""
    import torch

    folder.mkdir(parents=True)
    path = folder / "ckpt" if case == "folder" else folder / "ckpt.pt"
    if case == "folder":
        path.mkdir()
    else:
        data = {
            "list": [torch.zeros(2)],
            "tensor as state dict": {"encoder": torch.zeros(2)},
            "no config": {"format": "jepa_mpc", "encoder": {}, "predictor": {}},
        }[case]
        torch.save(data, path)
    return path


def broken_hugging_face_folder(folder: Path, case: str) -> Path:
    """A Hugging Face folder broken as ``case`` (BROKEN_HUGGING_FACE_FOLDERS) says, written as ``folder``."""
    import json

    folder.mkdir(parents=True)
    if case != "weights only":
        (folder / "config.json").write_text(json.dumps({"model_type": "vjepa2"}))
    if case != "config only":
        (folder / "model.safetensors").write_bytes((64).to_bytes(8, "little") + b"{" + b" " * 40)
    return folder


def command_of(item: pytest.Item, folder: Path) -> list[str] | None:
    """The ``jepa-mpc`` arguments of the test ``item`` (None: it starts no ``jepa-mpc``); the files it reads are
    written under ``folder``."""
    name, params = item.originalname, getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    if name == "test_a_user_error_is_one_line_naming_the_input":
        return params["argv"]
    if name == "test_debug_shows_the_traceback":
        return ["eval", "--planner.samples", "abc", "--debug"]
    if name == "test_help_lists_the_nested_flags_with_their_help":
        return ["train", "--help"]
    if name == "test_a_checkpoint_of_the_wrong_structure_is_one_line":
        return [
            "encode",
            "--checkpoint",
            str(wrong_structure(folder / params["case"].replace(" ", "_"), params["case"])),
            "--frames",
            FRAMES,
        ]
    if name == "test_a_broken_hugging_face_folder_names_its_real_problem_not_train":
        checkpoint = broken_hugging_face_folder(folder / params["case"].replace(" ", "_") / "hf", params["case"])
        return ["encode", "--checkpoint", str(checkpoint), "--frames", FRAMES]
    return None


@pytest.fixture(scope="module")
def ahead(request, tmp_path_factory) -> Iterator[dict[str, tuple[list[str], Future]]]:
    """Test name -> (its ``jepa-mpc`` arguments, the future of its process's result), for this module's selected
    tests, started in their order two at a time. Those not started when the module ends are cancelled."""
    folder = tmp_path_factory.mktemp("cli")
    items = [item for item in request.session.items if item.module is request.module]
    commands = {item.name: argv for item in items if (argv := command_of(item, folder)) is not None}
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        yield {name: (argv, pool.submit(jepa_mpc, *argv)) for name, argv in commands.items()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def result_of(ahead, request) -> tuple[list[str], subprocess.CompletedProcess]:
    """This test's ``jepa-mpc`` arguments and its process's result."""
    argv, future = ahead[request.node.name]
    return argv, future.result()


@pytest.mark.parametrize("argv, named", USER_ERRORS)
def test_a_user_error_is_one_line_naming_the_input(argv, named, ahead, request):
    _, result = result_of(ahead, request)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"jepa-mpc {argv[0]}: error: ") and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(ahead, request):
    _, result = result_of(ahead, request)
    assert result.returncode != 0 and "Traceback" in result.stderr and "planner.samples" in result.stderr


def test_help_lists_the_nested_flags_with_their_help(ahead, request):
    _, result = result_of(ahead, request)
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


@pytest.mark.parametrize("case", WRONG_STRUCTURES)
def test_a_checkpoint_of_the_wrong_structure_is_one_line(case, ahead, request):
    argv, result = result_of(ahead, request)
    path = argv[argv.index("--checkpoint") + 1]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("jepa-mpc encode: error: ") and path in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", BROKEN_HUGGING_FACE_FOLDERS)
def test_a_broken_hugging_face_folder_names_its_real_problem_not_train(case, ahead, request):
    """The planner's loader refuses any Hugging Face folder (no predictor); a broken one is refused for
    what is broken first, since `jepa-mpc train --encoder` would refuse it too."""
    _, result = result_of(ahead, request)
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
