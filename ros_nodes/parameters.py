"""Typed config dataclasses <-> ROS parameters and ROS parameter files.

One leaf field of a node's config (``ros_nodes.config``) is one ROS parameter, with dotted names for
nested configs (``planner.samples``). A node declares them all from the dataclass defaults
(:func:`declare_config`), so ``ros2 param list`` shows the whole schema with each field's help as the
description; then it reads them back into the dataclass, whose ``__post_init__`` validates them.

Parameters are declared with dynamic typing and converted here by the field's Python type, so a
YAML ``rate_hz: 4`` is read as 4.0 instead of failing on ROS's integer-vs-double rule; a value of the
wrong kind (text for a number) is a ValueError naming the parameter.

Parameter files are ROS 2's format (``ros2 run ... --params-file``, ``launch_ros`` ``parameters=``)::

    planner_node:
      ros__parameters:
        rate_hz: 4.0
        planner:
          samples: 400

:func:`check_parameter_file` reads one without ROS and refuses unknown nodes or parameters (ROS
itself silently ignores them, so a misspelt safety limit would otherwise go unnoticed).
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

from foundation.configuration import build_dataclass, load_yaml

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: Any
    default: Any
    help: str


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def parameter_specs(cls: type, prefix: str = "") -> list[ParameterSpec]:
    """One :class:`ParameterSpec` per leaf field of the dataclass ``cls``, nested names joined by dots."""
    hints = typing.get_type_hints(cls)
    specs: list[ParameterSpec] = []
    for field in dataclasses.fields(cls):
        name = f"{prefix}{field.name}"
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp):
            specs += parameter_specs(tp, prefix=f"{name}.")
        else:
            specs.append(ParameterSpec(name, tp, _field_default(field), field.metadata.get("help", "")))
    return specs


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """A ROS/YAML parameter value converted to the field type ``tp``; ValueError naming ``name`` otherwise."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        (tp,) = [a for a in args if a is not type(None)]
        return _coerce(value, tp, name)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"parameter {name} must be a list, got {value!r}")
        element = args[0]
        return tuple(_coerce(v, element, f"{name}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"parameter {name} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"parameter {name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"parameter {name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"parameter {name} must be a string, got {value!r}")
        return value
    raise TypeError(f"parameter {name}: field type {tp!r} has no ROS parameter mapping")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"planner": {"samples": 16}}`` -> ``{"planner.samples": 16}`` (how ROS reads nested YAML)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_from_flat(cls: type[T], flat: dict[str, Any], where: str) -> T:
    """Build ``cls`` from dotted parameter values; unknown names, wrong types and bad values raise ValueError."""
    specs = {spec.name: spec for spec in parameter_specs(cls)}
    unknown = sorted(set(flat) - set(specs))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {unknown}; valid parameters are {sorted(specs)}")
    values = {name: _coerce(value, specs[name].type, f"{where}: {name}") for name, value in flat.items()}
    try:
        return build_dataclass(cls, _nest(values), where=where)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def declare_config(node: Any, cls: type[T]) -> T:
    """Declare one ROS parameter per leaf field of ``cls`` on ``node`` and return the config they give."""
    from rcl_interfaces.msg import ParameterDescriptor

    flat: dict[str, Any] = {}
    for spec in parameter_specs(cls):
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        descriptor = ParameterDescriptor(description=spec.help, dynamic_typing=True)
        value = node.declare_parameter(spec.name, default, descriptor).value
        if value is not None:
            flat[spec.name] = value
    return config_from_flat(cls, flat, where=f"node {node.get_name()}")


def check_parameter_file(path: str | Path, node_configs: dict[str, type]) -> dict[str, Any]:
    """Read a ROS parameter file and build each node's config from it (without ROS).

    Returns ``{node name: config}``. A node not in ``node_configs``, a section without
    ``ros__parameters``, an unknown parameter or an invalid value is a ValueError naming the file.
    """
    data = load_yaml(path)
    configs: dict[str, Any] = {}
    for node_name, section in data.items():
        name = str(node_name).lstrip("/")
        if name not in node_configs:
            raise ValueError(f"{path}: node {node_name!r} is not one of {sorted(node_configs)}")
        if not isinstance(section, dict) or set(section) != {"ros__parameters"}:
            raise ValueError(f"{path}: node {node_name!r} must hold exactly one key, ros__parameters")
        params = section["ros__parameters"] or {}
        configs[name] = config_from_flat(node_configs[name], flatten(params), where=f"{path} [{name}]")
    return configs


def refuse_changes(node: Any, allowed: tuple[str, ...] = ()) -> None:
    """Make ``ros2 param set`` fail for every parameter but ``allowed``: the others are read at start only.

    Without this, setting ``safety.max_step`` on a running node would report success and change
    nothing, which is worse than an error.
    """
    from rcl_interfaces.msg import SetParametersResult

    def check(parameters: list) -> SetParametersResult:
        refused = [p.name for p in parameters if p.name not in allowed]
        if refused:
            return SetParametersResult(
                successful=False,
                reason=f"{refused} are read when the node starts; restart it with the new value"
                + (f" (changeable at run time: {list(allowed)})" if allowed else ""),
            )
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
