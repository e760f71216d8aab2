"""Typed config dataclasses <-> ROS parameters and ROS parameter files.

One leaf field of a node's config (``ros_nodes.config``) is one ROS parameter, with dotted names for
nested configs (``planner.samples``). A node declares them all from the dataclass defaults
(:func:`declare_config`), so ``ros2 param list`` shows the whole schema with each field's help as the
description; then it reads them back into the dataclass, whose ``__post_init__`` validates them.

Parameters are declared with dynamic typing and decoded by the field's type
(:func:`jepa_mpc_foundation.configuration.from_dict`, as flags, YAML files and checkpoints are), so a YAML
``rate_hz: 4`` is read as 4.0 instead of failing on ROS's integer-vs-double rule; a value of the
wrong form (text or a bool for a number, a bare string for a list, null, NaN) is a ValueError of one
line naming the node or file, the parameter, the value and the form expected.

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

from pathlib import Path
from typing import Any, TypeVar

from jepa_mpc_foundation.configuration import from_dict, leaf_fields, load_yaml, unflatten

T = TypeVar("T")


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
    names = sorted(leaf.name for leaf in leaf_fields(cls))
    unknown = sorted(set(flat) - set(names))
    if unknown:  # listed here in full: ROS users see the flat names, not the nested sections
        raise ValueError(f"{where}: unknown parameter(s) {unknown}; valid parameters are {names}")
    return from_dict(cls, unflatten(flat), source=where)


def declare_config(node: Any, cls: type[T]) -> T:
    """Declare one ROS parameter per leaf field of ``cls`` on ``node`` and return the config they give."""
    from rcl_interfaces.msg import ParameterDescriptor

    flat: dict[str, Any] = {}
    for leaf in leaf_fields(cls):
        default = list(leaf.default) if isinstance(leaf.default, tuple) else leaf.default
        descriptor = ParameterDescriptor(description=leaf.help, dynamic_typing=True)
        value = node.declare_parameter(leaf.name, default, descriptor).value
        if value is not None:
            flat[leaf.name] = value
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
