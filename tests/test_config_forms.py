"""A bool is never a number and a string never a list, wherever a config is decoded (issue 29, part 2).

Before, draccus read ``max_step: true`` (or ``yes``, YAML 1.1) as 1.0 m, a bare joint name as the list of
its letters, and null as a number field's None. The property tests go over every leaf field of every
config dataclass of the project (found by walking its packages, so a new config is covered the day
it is written) with values of the wrong form: a bool, text, a list, null and NaN, in the spellings
hypothesis draws; each must be refused with one line naming the source, the parameter, the value and
the form expected. The paths: plain dicts (what a checkpoint stores), ROS parameter files (what the
bringup checks and the nodes read), YAML files read by ``--config``, command-line flags and the
stored config of a real checkpoint. The ROS nodes' own parameters are in test_ros_parameter_forms.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from jepa_mpc_foundation.configuration import ConfigError, from_dict, leaf_fields, load_yaml, unflatten

PACKAGES = ("jepa_mpc_foundation", "jepa_mpc_dataset", "worldmodel", "planner", "sim", "ros_nodes", "jepa_mpc")
KINDS = ("bool", "text", "list", "null", "nan")


def _all_configs() -> list[type]:
    """Every dataclass named ``*Config`` defined in the project's packages (modules needing rclpy skipped without
    it)."""
    configs: dict[str, type] = {}
    for package in PACKAGES:
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            if info.name.endswith("__main__"):
                continue
            try:
                module = importlib.import_module(info.name)
            except ImportError as exc:
                if "rclpy" in str(exc) or "rcl_interfaces" in str(exc):
                    continue
                raise
            for name, obj in vars(module).items():
                if (
                    isinstance(obj, type)
                    and dataclasses.is_dataclass(obj)
                    and name.endswith("Config")
                    and obj.__module__ == module.__name__
                ):
                    configs[f"{obj.__module__}.{name}"] = obj
    return [configs[name] for name in sorted(configs)]


CONFIGS = _all_configs()
LEAVES = [(cls, leaf) for cls in CONFIGS for leaf in leaf_fields(cls)]


def _unoptional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def wrong_kinds(tp: Any) -> list[str]:
    """The kinds of value (of KINDS) that are not of the form of the field type ``tp``."""
    inner, optional = _unoptional(tp)
    right = {"null"} if optional else set()
    if inner is str:
        right.add("text")
    if inner is bool:
        right.add("bool")
    if typing.get_origin(inner) is tuple:
        right.add("list")
    return [kind for kind in KINDS if kind not in right]


def test_the_walk_finds_the_configs_every_path_decodes():
    names = {cls.__name__ for cls in CONFIGS}
    assert {
        "PlannerNodeConfig",
        "SimNodeConfig",
        "SafetyConfig",
        "PlannerConfig",
        "SimConfig",
        "WorldModelConfig",
        "EncoderConfig",
        "EvalConfig",
        "CollectConfig",
        "TrainPredictorConfig",
        "BringupConfig",
    } <= names
    assert len(LEAVES) > 400


# A word that YAML reads as text and that is no number: what a user types for a name.
WORDS = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda w: isinstance(yaml.safe_load(w), str) and not _is_number_text(w)
)


def _is_number_text(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


# What each kind of wrong value looks like in YAML (a file, a ROS parameter file, a flag).
YAML_SPELLINGS = {
    "bool": st.sampled_from(["true", "false", "True", "FALSE", "yes", "no", "Yes", "NO", "on", "off", "On", "OFF"]),
    "text": WORDS,
    "list": st.lists(st.one_of(WORDS, st.integers(-5, 5).map(str)), min_size=1, max_size=3).map(
        lambda items: "[" + ", ".join(items) + "]"
    ),
    "null": st.sampled_from(["null", "~", "Null", "NULL"]),
    "nan": st.sampled_from([".nan", ".NaN", ".NAN"]),
}


def _python_value(kind: str, spelling: str) -> Any:
    value = yaml.safe_load(spelling)
    assert (kind == "nan") == (isinstance(value, float) and math.isnan(value))
    return value


def _shown(value: Any) -> str:
    """How the one-line error shows the value (the YAML a user would write)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


def _assert_one_line_naming(message: str, source: str, name: str, value: Any) -> None:
    assert "\n" not in message, message
    assert message.startswith(f"{source}: {name} is {_shown(value)}, "), message
    assert "; expected " in message, message


@settings(max_examples=10, deadline=None)
@given(spellings=st.fixed_dictionaries(YAML_SPELLINGS))
def test_every_field_of_every_config_refuses_a_value_of_the_wrong_form(spellings):
    """What a checkpoint's stored config and the ROS nodes' parameters go through: ``from_dict``."""
    for cls, leaf in LEAVES:
        for kind in wrong_kinds(leaf.type):
            value = _python_value(kind, spellings[kind])
            with pytest.raises(ConfigError) as info:
                from_dict(cls, unflatten({leaf.name: value}), source="stored config")
            _assert_one_line_naming(str(info.value), "stored config", leaf.name, value)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spellings=st.fixed_dictionaries(YAML_SPELLINGS))
def test_every_parameter_of_a_ros_parameter_file_refuses_a_value_of_the_wrong_form(spellings):
    """The bringup's file check (``check_parameter_file``), on real files, for every parameter of both nodes."""
    from ros_nodes.bringup import NODE_TYPES
    from ros_nodes.parameters import check_parameter_file

    node_configs = {name: cls for name, (cls, _) in NODE_TYPES.items()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "params.yaml"
        for node, cls in node_configs.items():
            for leaf in leaf_fields(cls):
                for kind in wrong_kinds(leaf.type):
                    *parents, last = leaf.name.split(".")
                    lines = [f"{node}:", "  ros__parameters:"]
                    lines += [f"    {'  ' * depth}{parent}:" for depth, parent in enumerate(parents)]
                    lines.append(f"    {'  ' * len(parents)}{last}: {spellings[kind]}")
                    path.write_text("\n".join(lines) + "\n")
                    with pytest.raises(ValueError) as info:
                        check_parameter_file(path, node_configs)
                    value = load_yaml(path)[node]["ros__parameters"]
                    for part in leaf.name.split("."):
                        value = value[part]
                    _assert_one_line_naming(str(info.value), f"{path} [{node}]", leaf.name, value)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("max_step: true", "safety.max_step is true, a bool"),
        ("max_step: yes", "safety.max_step is true, a bool"),
        ("workspace_low: [0.3, on, 0.02]", "safety.workspace_low is [0.3, true, 0.02], whose item 2, true, is a bool"),
        ("max_step: .nan", "safety.max_step is .nan, not a number"),
        ("max_step:", "safety.max_step is null, no value"),
    ],
)
def test_a_config_file_names_itself_the_parameter_the_value_and_the_form(tmp_path, text, shown):
    """``--config FILE``: the same check, naming the file."""
    from jepa_mpc.cli import parse_command_config

    (tmp_path / "robot.yaml").write_text(f"planner_node:\n  ros__parameters:\n    safety:\n      {text}\n")
    (tmp_path / "eval.yaml").write_text(f"planner:\n  max_translation: {text.split(':', 1)[1].strip()}\n")
    with pytest.raises(ConfigError, match=r"^.*eval.yaml: planner.max_translation is .*; expected a number$"):
        parse_command_config("eval", ["--config", str(tmp_path / "eval.yaml")])
    from ros_nodes.bringup import NODE_TYPES
    from ros_nodes.parameters import check_parameter_file

    with pytest.raises(ValueError) as info:
        check_parameter_file(tmp_path / "robot.yaml", {name: cls for name, (cls, _) in NODE_TYPES.items()})
    assert str(info.value).startswith(f"{tmp_path / 'robot.yaml'} [planner_node]: {shown}"), info.value


def test_a_bare_string_is_never_a_list_of_its_characters(tmp_path):
    from ros_nodes.bringup import NODE_TYPES
    from ros_nodes.parameters import check_parameter_file

    path = tmp_path / "robot.yaml"
    for text, name in [("gripper_joints: fr3_finger_joint1", "gripper_joints"), ("goal_files: goal.png", "goal_files")]:
        path.write_text(f"planner_node:\n  ros__parameters:\n    {text}\n")
        with pytest.raises(ValueError) as info:
            check_parameter_file(path, {name: cls for name, (cls, _) in NODE_TYPES.items()})
        value = text.split(": ")[1]
        assert str(info.value) == (
            f"{path} [planner_node]: {name} is '{value}', text (write a list: [{value}]); expected a list of texts"
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--planner.max-translation", "yes"], "--planner.max_translation is true, a bool"),
        (["--planner.samples", "on"], "--planner.samples is true, a bool"),
        (["--planner.max-translation", "nan"], "--planner.max_translation is 'nan', not a number"),
        (["--planner.fixed-dims", "off"], "--planner.fixed_dims is [false], whose item 1, false, is a bool"),
        (["--episodes", "1.5"], "--episodes is 1.5, a number with a decimal point; expected an integer"),
    ],
)
def test_a_flag_of_the_wrong_form_is_named_as_typed(argv, message):
    from jepa_mpc.cli import parse_command_config

    with pytest.raises(ConfigError) as info:
        parse_command_config("eval", argv)
    assert str(info.value).startswith(message) and "\n" not in str(info.value), info.value


def test_the_right_forms_still_decode(tmp_path):
    """Numbers for numbers (an integer for a float, YAML 1.1's ``1e-3`` text), text kept as typed, lists, null where
    allowed."""
    from jepa_mpc.cli import parse_command_config

    (tmp_path / "eval.yaml").write_text("planner:\n  max_translation: 1e-2\n  seed: null\n  max_rotation: 1\n")
    config = parse_command_config(
        "eval", ["--config", str(tmp_path / "eval.yaml"), "--planner.fixed-dims", "6", "--planner.fixed-values", "0"]
    )
    assert config.planner.max_translation == 0.01 and config.planner.seed is None
    assert config.planner.max_rotation == 1.0 and isinstance(config.planner.max_rotation, float)
    assert config.planner.fixed_dims == (6,) and config.planner.fixed_values == (0.0,)
    from ros_nodes.bringup import BringupConfig

    assert parse_command_config("bringup", ["yes", "--ros-args", "-p", "x:=1"]) == BringupConfig("yes", ("-p", "x:=1"))


def test_a_checkpoint_whose_stored_config_holds_a_bool_for_a_number_is_refused_naming_the_file(
    tmp_path, tiny_checkpoint
):
    """Before, ``frame_rate_hz: true`` loaded as a 1 Hz model without a word."""
    import torch

    from worldmodel import CheckpointError, load_world_model

    data = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    data["config"]["frame_rate_hz"] = True
    path = tmp_path / "bool_rate.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_world_model(path, device="cpu")
    assert str(info.value).startswith(f"{path}: stored config: frame_rate_hz is true, a bool"), info.value
    assert "\n" not in str(info.value)
