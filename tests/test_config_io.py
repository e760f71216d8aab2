"""Dataclass configs <-> flags, YAML and nested dicts (jepa_mpc_foundation/configuration.py, over draccus)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from jepa_mpc_foundation.configuration import ConfigError, dataclass_to_dict, from_dict, leaf_fields, parse_config


@dataclass
class Inner:
    samples: int = field(default=400, metadata={"help": "how many"})
    scale: float = 1.0
    dims: tuple[int, ...] = ()


@dataclass
class Outer:
    name: str = "x"
    flag: bool = False
    stop_at: int | None = None
    inner: Inner = field(default_factory=lambda: Inner(samples=128))


def test_nested_overrides_start_from_the_fields_own_default():
    assert from_dict(Outer, {"inner": {}}, source="t").inner.samples == 128
    built = from_dict(Outer, {"inner": {"scale": 2.0}}, source="t")
    assert (built.inner.samples, built.inner.scale) == (128, 2.0)
    assert [(leaf.name, leaf.default) for leaf in leaf_fields(Outer)][-3] == ("inner.samples", 128)


def test_unknown_keys_and_bad_values_are_named_with_their_source():
    with pytest.raises(ConfigError, match=r"cfg: inner: The fields `sampels` are not valid"):
        from_dict(Outer, {"inner": {"sampels": 3}}, source="cfg")
    with pytest.raises(ConfigError, match=r"^--inner.samples is 'abc', text; expected an integer$"):
        parse_config(Outer, ["--inner.samples", "abc"], prog="t")
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) --nope"):
        parse_config(Outer, ["--nope", "1"], prog="t")


def test_a_bad_value_names_the_flag_or_the_file_it_came_from(tmp_path):
    (tmp_path / "c.yaml").write_text("inner:\n  samples: abc\n  sampels: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: inner.samples is 'abc', text; expected an integer$"):
        parse_config(Outer, ["--config", str(tmp_path / "c.yaml")], prog="t")
    (tmp_path / "c.yaml").write_text("nmae: x\n")
    with pytest.raises(ConfigError, match=r"c.yaml: The fields `nmae` are not valid"):
        parse_config(Outer, ["--config", str(tmp_path / "c.yaml")], prog="t")


def test_defaults_then_yaml_then_flags(tmp_path):
    (tmp_path / "c.yaml").write_text("name: file\ninner:\n  samples: 7\n  scale: 3.0\n")
    argv = [
        "--config",
        str(tmp_path / "c.yaml"),
        "--inner.scale",
        "2",
        "--flag",
        "--inner.dims",
        "1",
        "2",
        "--stop-at",
        "5",
    ]
    built = parse_config(Outer, argv, prog="t")
    assert built == Outer(name="file", flag=True, stop_at=5, inner=Inner(samples=7, scale=2.0, dims=(1, 2)))
    assert parse_config(Outer, ["--config_path", str(tmp_path / "c.yaml")], prog="t").name == "file"
    assert dataclass_to_dict(built)["inner"]["dims"] == [1, 2]
    with pytest.raises(ConfigError, match="flag"):
        parse_config(Outer, ["--flag", "maybe"], prog="t")


def test_help_lists_nested_flags_with_their_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Outer, ["--help"], prog="t")
    assert exit_info.value.code == 0
    assert "--inner.samples" in (text := capsys.readouterr().out) and "how many (default: 400)" not in text
    assert "how many (default: 128)" in " ".join(text.split())


@dataclass
class Light:
    """Where the light is.

    Indented as docstrings are, with ``markup`` and a :class:`Outer` role.
    """

    intensity: tuple[float, float] = field(default=(0.55, 0.85), metadata={"help": "range", "metavar": "LOW HIGH"})
    weights: tuple[int, ...] = ()
    names: tuple[str, ...] = ()


@dataclass
class Scene:
    light: Light = field(default_factory=Light)


@pytest.mark.parametrize("typed", [["0.3", "1.0"], ["0.3,1.0"], ["(0.3,1.0)"], ["[0.3, 1.0]"], ["[0.3,", "1.0]"]])
def test_a_number_pair_flag_takes_the_spellings_a_user_tries(typed):
    """Before, every spelling but ``0.3 1.0`` failed with 'a list of 1 item'."""
    assert parse_config(Scene, ["--light.intensity", *typed], prog="t").light.intensity == (0.3, 1.0)


def test_a_sequence_flag_keeps_text_and_empties():
    built = parse_config(Scene, ["--light.names", "a,b", "(c)", "--light.weights", "[]"], prog="t")
    assert built.light.names == ("a,b", "(c)") and built.light.weights == ()
    assert parse_config(Scene, ["--light.weights", "1,2", "3"], prog="t").light.weights == (1, 2, 3)


def test_a_pair_flag_of_the_wrong_length_shows_the_spelling_that_works():
    with pytest.raises(ConfigError) as error:
        parse_config(Scene, ["--light.intensity", "0.3"], prog="t")
    assert str(error.value) == (
        "--light.intensity is [0.3], a list of 1 item; expected a list of 2 numbers "
        "(write LOW HIGH, e.g. --light.intensity 0.55 0.85)"
    )


def test_help_shows_plain_docstrings_and_how_many_values_a_flag_takes(capsys):
    """Before, a section was titled by its class and described by its raw docstring (indentation, RST markup)."""
    with pytest.raises(SystemExit):
        parse_config(Scene, ["--help"], prog="t")
    text = "\n".join(line.rstrip() for line in capsys.readouterr().out.splitlines())
    assert "Scene" not in text
    assert "light:\n  Where the light is.\n\n  Indented as docstrings are, with markup and a Outer role.\n" in text
    assert "``" not in text and ":class:" not in text and "Light ['light']" not in text
    assert "--light.intensity LOW HIGH" in text and "--light.weights int [int ...]" in text
