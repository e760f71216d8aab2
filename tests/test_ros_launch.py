"""Launch files and parameter files, checked without the ``launch`` package (pip cannot install it).

Each launch file declares its nodes as a plain ``NODES`` literal, read here with ``ast``: every
executable must be a console script of the installed jepa_mpc distribution, and every parameter file
must exist in config/ and build valid node configs (unknown parameters are errors).
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

from ros_nodes.bringup import NODE_TYPES
from ros_nodes.parameters import check_parameter_file

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
CONFIG_FILES = sorted((ROOT / "config").glob("*.yaml"))
NODE_CONFIGS = {name: cls for name, (cls, _) in NODE_TYPES.items()}


def _declared_nodes(path: Path) -> list[dict]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(getattr(t, "id", None) == "NODES" for t in statement.targets):
            return ast.literal_eval(statement.value)
    raise AssertionError(f"{path} declares no NODES literal")


def _console_scripts() -> dict[str, str]:
    distribution = importlib.metadata.distribution("jepa_mpc")
    return {ep.name: ep.value for ep in distribution.entry_points if ep.group == "console_scripts"}


def test_both_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"sim_planning.launch.py", "robot_planning.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_nodes_are_installed_executables_with_valid_parameter_files(path):
    nodes = _declared_nodes(path)
    assert nodes, f"{path.name} starts no node"
    scripts = _console_scripts()
    for spec in nodes:
        assert spec["executable"] in scripts, f"{path.name}: {spec['executable']} is not a console script of jepa_mpc"
        module, _, function = scripts[spec["executable"]].partition(":")
        assert callable(getattr(importlib.import_module(module), function))
        assert spec["name"] in NODE_CONFIGS
        for name in spec["parameters"]:
            params_file = ROOT / "config" / name
            assert params_file.is_file(), f"{path.name}: parameter file config/{name} is missing"
            configs = check_parameter_file(params_file, NODE_CONFIGS)
            assert spec["name"] in configs, f"config/{name} has no section for {spec['name']}"
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in spec["remappings"].items())
    # The launch file itself must be valid Python that imports launch only when launching.
    source = path.read_text()
    compile(source, str(path), "exec")
    top_imports = [s for s in ast.parse(source).body if isinstance(s, (ast.Import, ast.ImportFrom))]
    assert not top_imports, f"{path.name} imports at module level; keep launch imports inside functions"


def test_robot_launch_remaps_every_planner_topic():
    (planner,) = _declared_nodes(ROOT / "launch" / "robot_planning.launch.py")
    assert set(planner["remappings"]) == {
        "image",
        "wrist_image",
        "ee_pose",
        "joint_states",
        "goal_image",
        "target_pose",
        "gripper_command",
    }


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_parameter_files_parse_into_valid_configs(path):
    configs = check_parameter_file(path, NODE_CONFIGS)
    assert configs
    if "planner_node" in configs and "sim_node" in configs:
        # In sim, the planner's box should not reach beyond the sim's own box.
        safety, sim = configs["planner_node"].safety, configs["sim_node"].sim
        assert all(p >= s for p, s in zip(safety.workspace_low, sim.workspace_low))
        assert all(p <= s for p, s in zip(safety.workspace_high, sim.workspace_high))


def test_parameter_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("planner_node:\n  ros__parameters:\n    safety:\n      max_stpe: 0.1\n")
    with pytest.raises(ValueError, match="max_stpe"):
        check_parameter_file(bad, NODE_CONFIGS)
    bad.write_text("camera_node:\n  ros__parameters: {}\n")
    with pytest.raises(ValueError, match="camera_node"):
        check_parameter_file(bad, NODE_CONFIGS)


def test_bringup_refuses_a_bad_file_before_starting_ros(tmp_path, capsys):
    from jepa_mpc.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("planner_node:\n  ros__parameters:\n    rate_hz: fast\n")
    assert main(["bringup", str(bad)]) == 2
    assert "rate_hz" in capsys.readouterr().err
