"""Typed dataclass configs from defaults, a YAML file and flags; and to/from plain dicts (over draccus).

Every configuration in the project is a (possibly nested) dataclass whose field defaults are the
single source of defaults. `draccus <https://github.com/dlwh/draccus>`_ (the library LeRobot uses)
turns dicts into such dataclasses and back; this module adds what the project's commands need on top:

- :func:`parse_config` reads a command's config from argv, with one precedence order for every
  command: defaults < ``--config FILE`` (YAML; draccus's ``--config_path`` works too) < flags.
  Nested fields are dotted flags (``--planner.samples 400``); a sequence field takes several values
  after one flag (``--data a b``), and a number sequence also one value with commas or brackets
  (``0.3,1.0``, ``(0.3,1.0)``, ``[0.3, 1.0]``); a bool flag alone means true (``--resume``); dashes
  and underscores are the same (``--stop-at`` = ``--stop_at``); a field's ``metadata`` may add
  ``"help"`` (shown by ``--help``), ``"metavar"`` (how ``--help`` names its values, ``LOW HIGH``),
  ``"aliases"`` (extra flags), ``"positional": True`` (the value may come first, without a flag) and
  ``"after": TOKEN`` (every argument after TOKEN, verbatim). ``--help`` shows each config class's
  docstring as plain text (:func:`help_text`).
- :func:`from_dict` / :func:`dataclass_to_dict` convert configs for checkpoints and parameter files, with
  missing keys taken from the defaults and every bad key or value a :class:`ConfigError` naming
  the source and the key.
- Every value is checked against its field's form before draccus converts it (:func:`check_form`),
  since draccus alone turns a bool into a number (``max_step: true`` -> 1.0 m; YAML 1.1 reads
  ``yes``/``no``/``on``/``off`` as bools too), a bare string into the list of its characters and a
  null into a number field's None. A number field takes a number (or its text: YAML 1.1 reads
  ``1e-3`` as text), never a bool, null or NaN; an integer field takes no fraction; a text field
  takes text (or a number, as its text), never a bool, null or list; a list field takes a list of
  items of those forms, never a bare string; ``X | None`` also takes null.
- :func:`leaf_fields` lists the leaf fields (dotted name, type, default, help), e.g. to declare
  one ROS parameter per field.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
import re
import shutil
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import draccus
import yaml
from draccus.argparsing import ArgumentParser as DraccusArgumentParser
from draccus.utils import DecodingError, ParsingError

T = TypeVar("T")

CONFIG_FILE_FLAGS = ("--config", "--config_path")


class ConfigError(ValueError):
    """A config source (flags, a YAML file, a checkpoint, a parameter file) holds a bad key or value."""


@dataclasses.dataclass(frozen=True)
class LeafField:
    """One leaf of a config: ``name`` dotted for nested fields (``planner.samples``)."""

    name: str
    type: Any
    default: Any  # dataclasses.MISSING for a required field
    help: str
    metadata: typing.Mapping[str, Any]


def leaf_fields(cls: type) -> list[LeafField]:
    """The leaf fields of the dataclass ``cls``, depth first, nested defaults from the parent's factory.

    A nested field's default comes from its parent's ``default_factory`` (``PretrainConfig.optim``
    has other learning rates than ``OptimConfig()``), which is the default that config really has.
    """
    return _leaves(cls, _field_defaults(cls), prefix="")


def _field_defaults(cls: type) -> dict[str, Any]:
    """``{field name: default value}`` of the fields of ``cls`` that have one (nested ones as instances)."""
    defaults = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


def _leaves(cls: type, defaults: dict[str, Any], prefix: str) -> list[LeafField]:
    hints = typing.get_type_hints(cls)
    leaves: list[LeafField] = []
    for field in dataclasses.fields(cls):
        name, tp = prefix + field.name, hints[field.name]
        default = defaults.get(field.name, dataclasses.MISSING)
        if dataclasses.is_dataclass(tp):
            nested = _field_defaults(tp) if default is dataclasses.MISSING else vars(default)
            leaves += _leaves(tp, nested, prefix=f"{name}.")
        else:
            leaves.append(LeafField(name, tp, default, field.metadata.get("help", ""), field.metadata))
    return leaves


def dataclass_to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of ``config`` (tuples as lists) that YAML, JSON and ``torch.save`` accept."""
    return draccus.encode(config)


def from_dict(
    cls: type[T],
    values: dict[str, Any],
    source: str,
    defaults: T | None = None,
    describe_key: Callable[[str], str] | None = None,
) -> T:
    """Build ``cls`` from a nested dict over ``defaults`` (an instance; else the field defaults).

    Keys missing from ``values`` keep the default, so a checkpoint written before a field existed
    still loads. Raises :class:`ConfigError`, one line, for an unknown key, a missing required
    field, a value ``__post_init__`` refuses (whose message names the field), or a value of the
    wrong form (:func:`check_form`): ``"{source}: {key} is {value}, {what it is}; expected {form}"``,
    e.g. ``"robot.yaml [planner_node]: safety.max_step is true, a bool (...); expected a number"``.
    ``describe_key`` spells a dotted key as the user gave it (``--planner.samples``, or the file and
    key) in place of ``"{source}: {key}"``.
    """

    def where(key: str) -> str:  # empty key: the top level
        return source if not key else describe_key(key) if describe_key else f"{source}: {key}"

    if not isinstance(values, dict):
        raise ConfigError(
            f"{source} is {_show(values)}, {_kind(values)}; expected a mapping of {cls.__name__}'s fields"
        )
    try:
        check_form(cls, values)
    except FormError as exc:
        raise ConfigError(f"{where(exc.key)} {exc}") from None
    base = dataclass_to_dict(defaults) if defaults is not None else draccus.encode(_field_defaults(cls))
    try:
        return draccus.decode(cls, merge(base, values))
    except DecodingError as exc:
        raise ConfigError(f"{where('.'.join(exc.key_path))}: {exc.message}") from exc
    except ParsingError as exc:  # __post_init__ refused a value: its message names the field
        raise ConfigError(f"{exc.__cause__ or exc}" if describe_key else f"{source}: {exc.__cause__ or exc}") from exc


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` recursively over a copy of ``base`` (a list in ``override`` replaces the whole list)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class FormError(ValueError):
    """A value is not of its field's form; ``key`` is the field's dotted name, ``str()`` the rest of the line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check_form(tp: Any, value: Any, key: str = "") -> None:
    """Check that ``value``, as YAML, flags or ROS parameters give it, has the form the type ``tp`` wants.

    ``tp`` is a field type (``float``, ``int``, ``bool``, ``str``, ``tuple[float, float, float]``,
    ``tuple[str, ...]``, ``dict``, ``X | None``) or a config dataclass, whose fields in the mapping ``value``
    are checked in turn (unknown keys are left to the decoder, which names them). Types of other
    kinds pass unchecked. Raises :class:`FormError` naming the dotted ``key`` and saying
    ``"is {value}, {what it is}; expected {form}"``.
    """
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return
        if not isinstance(value, dict):
            raise FormError(key, f"is {_show(value)}, {_kind(value)}; expected a mapping of its fields (name: value)")
        hints = _type_hints(tp)
        for field in dataclasses.fields(tp):
            if field.name in value:
                check_form(hints[field.name], value[field.name], f"{key}.{field.name}" if key else field.name)
        return
    problem = _form_problem(tp, value)
    if problem:
        raise FormError(key, f"is {_show(value)}, {problem}; expected {_form(tp)}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, once per class (it evaluates every annotation's text each call)."""
    return typing.get_type_hints(cls)


def _form_problem(tp: Any, value: Any) -> str | None:
    """What ``value`` is, when it is not of the form of the leaf type ``tp``; None when it is."""
    if _strip_optional(tp) is not tp:
        return None if value is None else _form_problem(_strip_optional(tp), value)
    if _is_sequence(tp):
        if not isinstance(value, (list, tuple)):
            return _kind(value) + (f" (write a list: [{value}])" if isinstance(value, str) else "")
        items = typing.get_args(tp)
        if items and items[-1] is not Ellipsis and len(items) != len(value):
            return f"a list of {len(value)} item{'s' * (len(value) != 1)}"
        for index, item in enumerate(value):
            problem = _form_problem(items[0] if items[-1:] == (Ellipsis,) else items[index], item)
            if problem:
                return f"whose item {index + 1}, {_show(item)}, is {problem}"
        return None
    if tp in (float, int):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return _kind(value)
        if isinstance(value, str):  # a number's text (YAML 1.1 reads 1e-3 as text) decodes as the number
            try:
                value = (int if tp is int else float)(value)
            except ValueError:
                return _kind(value)
        if isinstance(value, float) and math.isnan(value):
            return _kind(value)
        if tp is int and isinstance(value, float):
            return "a number with a decimal point"
        return None
    if tp is bool:
        return None if isinstance(value, bool) or value in ("true", "false") else _kind(value)
    if tp is str:
        if isinstance(value, str) or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            return None
        return _kind(value, quote_hint=True)
    if tp is dict or typing.get_origin(tp) is dict:
        return None if isinstance(value, dict) else _kind(value)
    return None  # a type the configs do not use: left to the decoder


def _kind(value: Any, quote_hint: bool = False) -> str:
    """What a decoded YAML / flag / ROS value is, in words; ``quote_hint`` tells how to write a bool's word as text."""
    if isinstance(value, bool):
        return f"a bool (YAML reads true/false, yes/no, on/off as bools{'; quote the word for text' * quote_hint})"
    if value is None:
        return "no value"
    if isinstance(value, float) and math.isnan(value):
        return "not a number"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _form(tp: Any, plural: bool = False) -> str:
    """The form the type ``tp`` wants, in words: ``a number``, ``a list of 3 numbers``, ``text or null``."""
    if _strip_optional(tp) is not tp:
        return f"{_form(_strip_optional(tp), plural)} or null"
    if _is_sequence(tp):
        items = typing.get_args(tp)
        count = f"{len(items)} " if items and items[-1] is not Ellipsis else ""
        return f"a list of {count}{_form(items[0], plural=True)}" if items else "a list"
    words = {
        float: ("a number", "numbers"),
        int: ("an integer", "integers"),
        bool: ("true or false", "bools"),
        str: ("text", "texts"),
    }
    if tp in words:
        return words[tp][plural]
    if tp is dict or typing.get_origin(tp) is dict:
        return "mappings" if plural else "a mapping"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any, limit: int = 60) -> str:
    """``value`` as a user would write it in YAML (``true``, ``null``, ``.nan``, ``'text'``, ``[a, b]``), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float) and not math.isfinite(value):
        text = ".nan" if math.isnan(value) else ("-" if value < 0 else "") + ".inf"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_show(item, limit) for item in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_show(v, limit)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"planner.samples": 16}`` -> ``{"planner": {"samples": 16}}``."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping. Raises FileNotFoundError or ConfigError (bad YAML, not a mapping) naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_config(
    cls: type[T],
    argv: list[str],
    prog: str,
    description: str = "",
    defaults: Callable[[dict[str, Any]], T] | None = None,
) -> T:
    """The config of a command from ``argv``: defaults < ``--config FILE`` < flags.

    ``defaults(overrides)``, when given, returns the defaults instance once the file and flags are
    read (the evaluation's planner defaults depend on the task those choose). ``--help`` prints the
    flags and exits (SystemExit 0). Raises ConfigError for an unknown flag, a missing required one or
    a bad value (naming the flag, or the key of the file), FileNotFoundError for a missing config file.
    """
    parser = argument_parser(cls, prog, description)
    argv, tail = _split_tail(cls, argv)
    namespace, unknown = parser.parse_known_args(_canonical_argv(cls, argv))
    if unknown:
        raise ConfigError(f"unknown argument(s) {' '.join(unknown)} (see {prog} --help)")
    leaves = {leaf.name: leaf for leaf in leaf_fields(cls)}
    flags = {
        name: _flag_value(value, leaves[name].type if name in leaves else None)
        for name, value in vars(namespace).items()
    }
    config_file = flags.pop("config_path", None)
    try:
        check_form(cls, unflatten(flags))
    except FormError as exc:  # a flag names its field as typed, and a sequence shows the spelling that works
        raise ConfigError(f"--{exc.key} {exc}{_flag_example(leaves[exc.key]) if exc.key in leaves else ''}") from None
    file_values = load_yaml(config_file) if config_file else {}
    overrides = merge(file_values, unflatten({**flags, **tail}))
    given = set(flags) | set(tail)
    missing = [
        leaf.name
        for leaf in leaf_fields(cls)
        if leaf.default is dataclasses.MISSING and not _has_key(overrides, leaf.name)
    ]
    if missing:
        raise ConfigError(f"{', '.join('--' + name for name in missing)} required (see {prog} --help)")

    def describe(key: str) -> str:  # a flag the user typed, or a key of the file
        return f"--{key}" if key in given else f"{config_file}: {key}"

    source = config_file or "command line"
    return from_dict(cls, overrides, source, defaults(overrides) if defaults else None, describe_key=describe)


def _has_key(values: dict[str, Any], dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def argument_parser(cls: type, prog: str, description: str = "") -> argparse.ArgumentParser:
    """draccus's parser of ``cls`` with the project's help text, multi-value and bool flags.

    Each group of flags is titled by its section (``data``; the top level by ``prog``) and described
    by its class docstring as plain text (:func:`help_text`), not by the class name and raw docstring.
    """
    parser = DraccusArgumentParser(cls, prog=prog, description=description, exit_on_error=False).parser
    width = max(shutil.get_terminal_size().columns - 4, 40)  # argparse's width, less the group's indent
    for group in parser._action_groups[2:]:  # after argparse's own two, draccus's: one per config class
        section = re.fullmatch(r"\S+ \['(.+)'\]", group.title or "")  # draccus titles a section "Class ['dest']"
        group.title = section.group(1) if section else prog
        group.description = help_text(group.description or "", width) or None  # "" would print an empty section
    leaves = {leaf.name: leaf for leaf in leaf_fields(cls)}
    actions = {action for group in parser._action_groups for action in group._group_actions} | set(parser._actions)
    for action in actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.dest not in leaves:  # draccus's "--section FILE" options: one config file is enough
            action.default, action.help = argparse.SUPPRESS, argparse.SUPPRESS
        if action.dest == "config_path":
            action.help = "YAML file with any of the fields below (flags override it)"
            action.default, action.metavar = argparse.SUPPRESS, "FILE"
            action.option_strings = list(CONFIG_FILE_FLAGS)
        elif action.dest in leaves:
            _describe(action, leaves[action.dest])
    return parser


def _describe(action: argparse.Action, leaf: LeafField) -> None:
    """Make ``action`` read raw text (decoded later by the field's type) and show the field's help."""
    action.type, action.default, action.required = str, argparse.SUPPRESS, False
    tp = _strip_optional(leaf.type)
    action.metavar = leaf.metadata.get("metavar") or _metavar(tp)
    if _is_sequence(tp):
        action.nargs = "+"
    elif tp is bool:
        action.nargs, action.const, action.metavar = "?", "true", "true|false"
    if leaf.default is dataclasses.MISSING:
        default = "(required)"
    elif "default" in leaf.help:  # the help already says what the default means
        default = ""
    else:
        default = f"(default: {draccus.encode(leaf.default)})"
    aliases = ", ".join(leaf.metadata.get("aliases", ()))
    parts = (help_text(leaf.help), default, f"(also {aliases})" if aliases else "")
    action.help = " ".join(part for part in parts if part)


def _metavar(tp: Any) -> str:
    """How ``--help`` writes the values of a flag of type ``tp`` (Optional stripped): ``float``, ``float float``
    for a pair, ``str [str ...]`` for any number of texts (draccus's formatter shows the metavar alone)."""
    if not _is_sequence(tp):
        return getattr(tp, "__name__", str(tp))
    items = typing.get_args(tp)
    item = getattr(items[0], "__name__", "value") if items else "value"
    if not items or items[-1] is Ellipsis:
        return f"{item} [{item} ...]"
    return " ".join(getattr(t, "__name__", "value") for t in items)


def _flag_example(leaf: LeafField) -> str:
    """For a sequence field, how its flag is written, with its default as the example; else ``""``."""
    if not _is_sequence(leaf.type):
        return ""
    metavar = leaf.metadata.get("metavar") or _metavar(_strip_optional(leaf.type))
    default = leaf.default if isinstance(leaf.default, (list, tuple)) and leaf.default else None
    example = f", e.g. --{leaf.name} {' '.join(str(v) for v in draccus.encode(default))}" if default else ""
    return f" (write {metavar}{example})"


_RST_LITERAL = re.compile(r"``(.+?)``")
_RST_ROLE = re.compile(r":[a-z]+:`~?\.?([^`]+)`")
_RST_LINK = re.compile(r"`([^`<]+?) <([^>]+)>`_")


def help_text(doc: str, width: int = 100) -> str:
    """A docstring as ``--help`` shows it: dedented, without RST markup (double backquotes, roles such as
    ``:class:``, links: ``text <url>`_`` becomes ``text (url)``), prose paragraphs refilled to ``width`` columns.

    Paragraphs holding an indented or bulleted line (a code block, a list) keep their lines.
    """
    text = _RST_LINK.sub(r"\1 (\2)", _RST_ROLE.sub(r"\1", _RST_LITERAL.sub(r"\1", inspect.cleandoc(doc))))
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = paragraph.splitlines()
        if paragraph.endswith("::"):  # RST's literal-block marker
            lines[-1] = lines[-1][:-1]
        if any(line.startswith((" ", "- ", "* ")) for line in lines):
            paragraphs.append("\n".join(lines))
        else:
            paragraphs.append(textwrap.fill(" ".join(lines), width, break_on_hyphens=False))
    return "\n\n".join(paragraphs)


def _strip_optional(tp: Any) -> Any:
    """``X | None`` -> ``X``; any other type unchanged."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return tp


def _is_sequence(tp: Any) -> bool:
    return typing.get_origin(_strip_optional(tp)) in (tuple, list)


def _flag_value(value: str | list[str], tp: Any = None) -> Any:
    """A flag's text as YAML reads it (``400`` -> int, ``true`` -> bool); a list element-wise.

    The text of a text field (``str``, ``tuple[str, ...]``) stays as typed: ``--goal-file yes`` is
    the file ``yes``, not a bool, and ``--name 007`` keeps its zeros.
    """
    text_field = _strip_optional(tp) is str or (_is_sequence(tp) and typing.get_args(_strip_optional(tp))[:1] == (str,))
    if text_field:
        return value
    if isinstance(value, list):
        return [_flag_value(v) for v in (_split_items(value) if _is_sequence(tp) else value)]
    try:
        return yaml.safe_load(value) if value else value
    except yaml.YAMLError:
        return value  # not YAML (e.g. an unbalanced bracket): the field's type decides


def _split_items(tokens: list[str]) -> list[str]:
    """The items of a number sequence's flag however typed: ``0.3 1.0``, ``0.3,1.0``, ``(0.3,1.0)``,
    ``[0.3, 1.0]`` (one token, or the shell's pieces of it) -> ``["0.3", "1.0"]``; ``[]`` -> ``[]``."""
    text = " ".join(tokens).strip()
    if text[:1] + text[-1:] in ("[]", "()"):
        text = text[1:-1]
    return [item for item in re.split(r"[\s,]+", text) if item]


def _canonical_argv(cls: type, argv: list[str]) -> list[str]:
    """``argv`` with every flag spelt as its field's dotted name: aliases, dashes and a leading positional value."""
    leaves = leaf_fields(cls)
    spelling = {alias.lstrip("-"): leaf.name for leaf in leaves for alias in leaf.metadata.get("aliases", ())}
    spelling.update({flag.lstrip("-"): "config_path" for flag in CONFIG_FILE_FLAGS})
    positional = [leaf.name for leaf in leaves if leaf.metadata.get("positional")]
    canonical = []
    if positional and argv and not argv[0].startswith("-"):
        canonical.append(f"--{positional[0]}")
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, equals, value = token[2:].partition("=")
            token = "--" + spelling.get(name, name.replace("-", "_")) + equals + value
        canonical.append(token)
    return canonical


def _split_tail(cls: type, argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split off the arguments after a field's ``"after"`` token (``--ros-args ...``): they are that field's value."""
    for leaf in leaf_fields(cls):
        token = leaf.metadata.get("after")
        if token and token in argv:
            split = argv.index(token)
            return argv[:split], {leaf.name: argv[split + 1 :]}
    return argv, {}
