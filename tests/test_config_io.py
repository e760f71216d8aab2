"""Dataclass configs <-> flags, YAML and nested dicts (foundation/configuration.py)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from foundation.configuration import add_dataclass_arguments, build_dataclass, dataclass_to_dict, flags_to_nested


@dataclass
class Inner:
    samples: int = 400
    scale: float = 1.0
    dims: tuple[int, ...] = ()


@dataclass
class Outer:
    name: str = "x"
    flag: bool = False
    inner: Inner = field(default_factory=lambda: Inner(samples=128))


def test_nested_overrides_start_from_the_fields_own_default():
    assert build_dataclass(Outer, {"inner": {}}).inner.samples == 128
    built = build_dataclass(Outer, {"inner": {"scale": 2.0}})
    assert (built.inner.samples, built.inner.scale) == (128, 2.0)


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match=r"cfg.inner: unknown key\(s\) \['sampels'\]"):
        build_dataclass(Outer, {"inner": {"sampels": 3}}, where="cfg")


def test_flags_round_trip_through_argparse():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Outer, prefix="cfg")
    args = parser.parse_args(["--cfg.flag", "true", "--cfg.inner.samples", "7", "--cfg.inner.dims", "1", "2"])
    nested = flags_to_nested(args, "cfg")
    assert nested == {"flag": True, "inner": {"samples": 7, "dims": [1, 2]}}
    built = build_dataclass(Outer, nested)
    assert built.inner == Inner(samples=7, dims=(1, 2)) and built.flag is True
    assert dataclass_to_dict(built)["inner"]["dims"] == [1, 2]
    with pytest.raises(SystemExit):
        parser.parse_args(["--cfg.flag", "maybe"])
