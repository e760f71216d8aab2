"""Typed dataclass configs <-> command-line flags, YAML files and checkpoint dicts.

Every configuration in the project is a (possibly nested) dataclass whose field defaults are the
single source of defaults. This module derives the rest from it:

- ``add_dataclass_arguments(parser, Cls, prefix)`` adds one ``--prefix.field`` flag per leaf field
  (``--planner.samples 400``); flags default to "not given" so that a YAML file can sit under them.
- ``build_dataclass(Cls, overrides)`` builds the dataclass from a nested dict (YAML, checkpoint, the
  ROS parameter server), refusing unknown keys with an error that names them.
- ``dataclass_to_dict`` is the inverse, used to store a config beside the weights it built.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _leaf_type(tp: Any) -> Any:
    """The Python type to parse a flag with: ``float | None`` -> float, ``tuple[float, ...]`` -> tuple."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _leaf_type(args[0]) if len(args) == 1 else str
    return tp


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str) -> None:
    """Add ``--{prefix}.{field}`` flags for every leaf field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        name = f"{prefix}.{field.name}" if prefix else field.name
        if dataclasses.is_dataclass(tp):
            add_dataclass_arguments(parser, tp, name)
            continue
        leaf = _leaf_type(tp)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": name}
        help_text = field.metadata.get("help", "")
        if typing.get_origin(leaf) in (tuple, list):
            (elem,) = {a for a in typing.get_args(leaf) if a is not Ellipsis} or {str}
            kwargs.update(nargs="+", type=elem)
        elif leaf is bool:
            kwargs.update(type=_parse_bool, metavar="{true,false}")
        elif leaf in (int, float, str):
            kwargs.update(type=leaf)
        else:
            kwargs.update(type=str)
        default = field.default if field.default is not dataclasses.MISSING else None
        kwargs["help"] = f"{help_text} (default: {default})".strip()
        parser.add_argument(f"--{name}", **kwargs)


def flags_to_nested(namespace: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """Collect the ``prefix.a.b`` entries of an argparse namespace into ``{"a": {"b": ...}}``."""
    nested: dict[str, Any] = {}
    for key, value in vars(namespace).items():
        if not key.startswith(prefix + "."):
            continue
        parts = key[len(prefix) + 1 :].split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def merge_nested(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_nested(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_dataclass(cls: type[T], values: dict[str, Any] | None = None, where: str = "config") -> T:
    """Build ``cls`` from a nested dict; unknown keys raise ``ValueError`` naming them and ``where``."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; valid keys are {sorted(names)}"
        )
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        value, tp = values[field.name], hints[field.name]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            # A nested dict overrides the field's own default (which may differ from tp's defaults).
            if field.default_factory is not dataclasses.MISSING:
                value = merge_nested(_shallow_fields(field.default_factory()), value)
            value = build_dataclass(tp, value, where=f"{where}.{field.name}")
        elif typing.get_origin(_leaf_type(tp)) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def _shallow_fields(obj: Any) -> dict[str, Any]:
    """The field values of a dataclass instance, nested dataclasses as dicts (tuples kept)."""
    return {
        f.name: _shallow_fields(v) if dataclasses.is_dataclass(v := getattr(obj, f.name)) else v
        for f in dataclasses.fields(obj)
    }


def dataclass_to_dict(obj: Any) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) that YAML, JSON and ``torch.save`` all accept."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(obj))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping top level is an error naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
