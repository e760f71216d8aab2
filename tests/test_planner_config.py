"""PlannerConfig: validation, and use as nested CLI flags / YAML through jepa_mpc_foundation.configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
import yaml

from jepa_mpc_foundation.configuration import ConfigError, dataclass_to_dict, from_dict, parse_config
from planner import PlannerConfig


@dataclass
class WithPlanner:
    planner: PlannerConfig = field(default_factory=PlannerConfig)


def test_defaults_are_the_reference_planning_setting():
    config = PlannerConfig()
    assert (config.samples, config.horizon, config.iterations, config.topk) == (400, 2, 10, 10)
    assert (config.momentum_mean, config.momentum_std, config.momentum_gripper) == (0.15, 0.75, 0.15)
    assert config.max_translation == 0.05 and not config.plan_rotation


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"samples": 0}, "samples"),
        ({"topk": 500}, "topk"),
        ({"momentum_std": 1.0}, "momentum_std"),
        ({"max_translation": -0.1}, "max_translation"),
        ({"min_std": float("nan")}, "min_std"),
        ({"energy": "l2"}, "energy"),
        ({"fixed_dims": (1, 9), "fixed_values": (0.0, 0.0)}, "dimension 9"),
        ({"fixed_dims": (1,), "fixed_values": ()}, "same length"),
        ({"fixed_dims": (0, 1), "fixed_values": (0.04, 0.04)}, "max_translation"),
        ({"fixed_dims": (6,), "fixed_values": (0.9,)}, "max_gripper"),
        ({"init_std_gripper": 0.0}, "init_std_gripper"),
    ],
)
def test_bad_values_raise_errors_naming_them(changes, named):
    with pytest.raises(ValueError, match=named):
        PlannerConfig(**changes)


def test_nested_cli_flags_and_yaml_build_the_config(tmp_path):
    yaml_path = tmp_path / "planner.yaml"
    yaml_path.write_text(yaml.safe_dump({"planner": {"samples": 128, "iterations": 4, "seed": 3}}))
    argv = [
        "--config",
        str(yaml_path),
        "--planner.samples",
        "64",
        "--planner.fixed_dims",
        "2",
        "6",
        "--planner.fixed_values",
        "0",
        "0.5",
        "--planner.plan_rotation",
        "true",
        "--planner.energy",
        "terminal+intermediate",
    ]
    config = parse_config(WithPlanner, argv, prog="test").planner
    assert (config.samples, config.iterations, config.seed) == (64, 4, 3)  # flags override YAML
    assert config.fixed == {2: 0.0, 6: 0.5} and config.plan_rotation
    assert config.energy == "terminal+intermediate"
    # Round trip through a plain dict (what a checkpoint or the ROS parameter file stores).
    assert from_dict(PlannerConfig, dataclass_to_dict(config), source="test") == config
    with pytest.raises(ConfigError, match="planner: The fields `sample` are not valid"):
        from_dict(PlannerConfig, {"sample": 10}, source="planner")


def test_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PlannerConfig().samples = 3  # type: ignore[misc]
