"""A training config from its dataclass defaults, an optional ``--config`` YAML and ``--section.field`` flags.

Later sources win: defaults < YAML < flags. The defaults are taken from an instance of the top-level
dataclass, so a section whose default differs per command (the pretraining optimizer) keeps it when
only one of its fields is overridden.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import TypeVar

from foundation.configuration import add_dataclass_arguments, build_dataclass, dataclass_to_dict, flags_to_nested, load_yaml, merge_nested

T = TypeVar("T")


def add_run_arguments(parser: argparse.ArgumentParser, checkpoint_name: str) -> None:
    """The flags every training command shares: data, run folder (holding ``checkpoint_name``), resume, stop."""
    parser.add_argument("--data", required=True, nargs="+", help="one or more LeRobot dataset folders (sim or DROID) or .npz files of episodes, read as one")
    parser.add_argument("--out", required=True, help=f"run folder ({checkpoint_name}, train_state.pt, metrics, summary.json)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its train_state.pt")
    parser.add_argument("--stop-at", type=int, default=None, help="stop after this step, saving the state (resume later)")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """``--config FILE`` and one ``--section.field`` flag per leaf of every section of ``cls``."""
    parser.add_argument("--config", default=None, help="YAML file with any of the sections below (flags override it)")
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        add_dataclass_arguments(parser, hints[field.name], field.name)


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    values = dataclass_to_dict(cls())
    if args.config:
        values = merge_nested(values, load_yaml(args.config))
    for field in dataclasses.fields(cls):
        values = merge_nested(values, {field.name: flags_to_nested(args, field.name)})
    return build_dataclass(cls, values, where=args.config or "flags")
