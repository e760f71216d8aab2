"""Checkpoint files: which layouts the project reads, the released V-JEPA 2 layout and the project's own.

:data:`CHECKPOINT_LAYOUTS` lists every layout a user may hold (the README's "Checkpoint layouts"
table says the same); a file that is none of them is refused with that list. Hugging Face
``VJEPA2Model`` files (safetensors) are read by :mod:`worldmodel.hf_checkpoint`.

Released files (``vitl.pt``, ``vith.pt``, ``vitg.pt``, ``vjepa2-ac-vitg.pt``) are dicts with
``encoder``, ``target_encoder`` and (AC) ``predictor`` state dicts whose keys carry ``module.``
(DDP) and ``backbone.`` (wrapper) prefixes, and no config: the encoder config is matched against
:data:`ENCODER_PRESETS` by its weight shapes, the predictor's from its own shapes.

The project's own files add ``format: "jepa_mpc"`` and ``config`` (a :class:`WorldModelConfig` as a
dict), so one path loads them. A world model may also hold a goal-conditioned policy
(``goal_policy`` weights and ``goal_policy_config``, :mod:`worldmodel.goal_policy`), written by
``jepa-mpc train-policy`` and loaded with the model, strictly, whenever it is there; and the
statistics of its training frames' tokens with the out-of-distribution threshold (``token_statistics``
buffers and ``token_statistics_config``, :mod:`worldmodel.token_statistics`), written by
``jepa-mpc ood-stats`` or ``train-policy`` and loaded the same way (:func:`save_token_statistics` adds
them to any checkpoint a world model loads from, its other entries unchanged); and a language-goal
predictor (``language_goal`` weights and ``language_goal_config`` with its words,
:mod:`worldmodel.language_goal`), written by ``jepa-mpc train-language-goal``.

Loading is strict: a missing, unexpected or mis-shaped weight is an error that lists them, never a
warning over a half-loaded model. Every torch file is read with ``weights_only=True``: a file that
holds Python objects beyond tensors and plain containers is refused, never executed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jepa_mpc_foundation.atomic_files import atomic_path
from jepa_mpc_foundation.configuration import dataclass_to_dict, from_dict

from .config import (
    ENCODER_PRESETS,
    EncoderConfig,
    GoalPolicyConfig,
    LanguageGoalConfig,
    PredictorConfig,
    TokenStatisticsConfig,
    WorldModelConfig,
)

PROJECT_FORMAT = "jepa_mpc"  # a world model: encoder + predictor + WorldModelConfig
ENCODER_FORMAT = "jepa_mpc_encoder"  # an encoder alone, as `jepa-mpc pretrain` writes it
# The model that ships with the package (made by `make default-model`, see its README).
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
DEFAULT_CHECKPOINT = DEFAULT_MODEL_DIR / "model.pt"
# The shipped language model: the default model with a goal policy and a language-goal predictor for the
# language tasks (jepa_mpc/language_model_recipe.py, `make language-model`).
LANGUAGE_MODEL_DIR = Path(__file__).parent / "language_model"
LANGUAGE_CHECKPOINT = LANGUAGE_MODEL_DIR / "model.pt"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the reason and the fix in the message."""


@dataclass(frozen=True)
class CheckpointLayout:
    """One kind of checkpoint file a user may hold: its name, how it is recognised, what is loaded."""

    name: str
    recognised_by: str
    loaded: str


# Every layout the project reads, in the order the README's "Checkpoint layouts" table lists them.
# A new layout (a reader in its own module) adds one entry here, so that refusals name it too.
CHECKPOINT_LAYOUTS: tuple[CheckpointLayout, ...] = (
    CheckpointLayout(
        "released V-JEPA 2 .pt (vitl.pt, vith.pt, vitg.pt)",
        "torch file, a dict with `encoder` / `target_encoder` state dicts (keys `module.backbone.*`), no `format`",
        "the encoder (config matched against the presets by its weight shapes): `jepa-mpc train --encoder`",
    ),
    CheckpointLayout(
        "released V-JEPA 2-AC .pt (vjepa2-ac-vitg.pt)",
        "as V-JEPA 2, plus a `predictor` state dict with `action_encoder.*`",
        "encoder + action-conditioned predictor: a world model to plan with",
    ),
    CheckpointLayout(
        "jepa_mpc world model .pt (model.pt of `jepa-mpc train` or `train-policy`)",
        "torch file with `format: jepa_mpc`, `config`, `encoder`, `predictor` (and `goal_policy_config`, "
        "`goal_policy`; `token_statistics_config`, `token_statistics`; `language_goal_config`, `language_goal`)",
        "the world model with its stored config (and its goal-conditioned policy, its training frames' token "
        "statistics, its language-goal predictor)",
    ),
    CheckpointLayout(
        "jepa_mpc encoder .pt (encoder.pt of `jepa-mpc pretrain`)",
        "torch file with `format: jepa_mpc_encoder`, `encoder_config`, `encoder`",
        "the encoder with its stored config: `jepa-mpc train --encoder`",
    ),
    CheckpointLayout(
        "released V-JEPA 2.1 .pt (vjepa2_1_vitb/vitl_dist_vitG_384.pt, vjepa2_1_vitg/vitG_384.pt)",
        "torch file, `ema_encoder` (distilled B/L) or `target_encoder` (g/G) with per-level `norms_block.*`, "
        "no `format`",
        "the encoder (config from weight shapes and the released sizes; 384 px): `jepa-mpc train --encoder`",
    ),
    CheckpointLayout(
        "Hugging Face VJEPA2Model safetensors (a folder, or model.safetensors with config.json beside it)",
        "`config.json` with `model_type: vjepa2` and `model.safetensors` (or its shards), keys `encoder.layer.*`",
        "the encoder (config from config.json): `jepa-mpc train --encoder`",
    ),
)


def supported_layouts() -> str:
    """The names of :data:`CHECKPOINT_LAYOUTS` on one line, for error messages."""
    return "; ".join(layout.name for layout in CHECKPOINT_LAYOUTS)


def unsupported_layout(path: str | Path, what: str) -> CheckpointError:
    """The error for a file that is none of the supported layouts: ``what`` it is, and the list."""
    return CheckpointError(
        f'{path}: {what}. Supported checkpoint layouts: {supported_layouts()}; see the README, "Checkpoint layouts"'
    )


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``path``, or the shipped default model when empty.

    Raises:
        FileNotFoundError: the file does not exist; the message says how to get one.
    """
    chosen = Path(path) if path else DEFAULT_CHECKPOINT
    if not chosen.exists():  # a folder is left to the loader, which says what it is
        hint = "run `make default-model` to rebuild it" if not path else "check the path"
        raise FileNotFoundError(f"world model checkpoint {chosen} does not exist: {hint}")
    return chosen


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A torch checkpoint as a dict, its structure checked against the torch layouts of :data:`CHECKPOINT_LAYOUTS`.

    Read with ``torch.load(weights_only=True)``: tensors and plain containers only, no code runs.
    Hugging Face safetensors files are not torch files: callers route them to
    :mod:`worldmodel.hf_checkpoint` first.

    Raises:
        CheckpointError: naming the file and what is wrong: it does not exist, is a folder, is not a
            torch file of tensors (truncated, pickled objects), is not a dict, a project file lacks its
            config, a state dict is not a dict of tensors, or it is none of the supported layouts.
    """
    path = Path(path)
    if path.is_dir():
        raise unsupported_layout(
            path,
            "a folder without config.json + model.safetensors; a folder is read only as a Hugging Face "
            "VJEPA2Model checkpoint, otherwise pass the checkpoint file itself",
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, not a torch file at all
        reason = load_failure_reason(exc, path)
        raise CheckpointError(
            f"checkpoint {path} could not be read as tensors ({reason}). The file is truncated, not a torch "
            "checkpoint, or holds Python objects beyond tensors and plain containers (refused: loading it "
            f"could run code): download or copy it again. Supported layouts: {supported_layouts()}"
        ) from exc
    check_structure(data, path)
    return data


# the state dicts a checkpoint may hold
STATE_DICT_KEYS = (
    "encoder",
    "target_encoder",
    "ema_encoder",
    "predictor",
    "goal_policy",
    "language_goal",
    "token_statistics",
)
# worldmodel.token_statistics: its buffers and its config
TOKEN_STATISTICS_ENTRIES = ("token_statistics", "token_statistics_config")


def check_structure(data: Any, path: str | Path) -> None:
    """Refuse ``data`` (a loaded torch file) unless it has the structure of one torch layout.

    Raises:
        CheckpointError: one line naming ``path``, the entry that is wrong and the fix.
    """
    if not isinstance(data, dict):
        raise unsupported_layout(path, f"holds a {type(data).__name__}, not a dict of state dicts")
    fmt = data.get("format")
    if fmt == PROJECT_FORMAT:
        _check_config_entry(data, "config", path, "save it again with `save_world_model_checkpoint`")
        required = ("encoder", "predictor")
        if "goal_policy" in data or "goal_policy_config" in data:
            _check_config_entry(data, "goal_policy_config", path, "write it again with `jepa-mpc train-policy`")
            required += ("goal_policy",)
        if "language_goal" in data or "language_goal_config" in data:
            _check_config_entry(
                data, "language_goal_config", path, "write it again with `jepa-mpc train-language-goal`"
            )
            required += ("language_goal",)
    elif fmt == ENCODER_FORMAT:
        _check_config_entry(data, "encoder_config", path, "save it again with `save_encoder_checkpoint`")
        required = ("encoder",)
    elif fmt is not None:
        raise unsupported_layout(path, f"has format {fmt!r} (known: {PROJECT_FORMAT!r}, {ENCODER_FORMAT!r})")
    else:  # a released file: no format, no config
        required = ()
        if not any(key in data for key in ("encoder", "target_encoder", "ema_encoder")):  # ema_encoder: V-JEPA 2.1
            entries = ", ".join(f"{k!r}" for k in list(data)[:8]) or "nothing"
            raise unsupported_layout(path, f"holds no `format` and no `encoder` state dict (its entries: {entries})")
    if any(key in data for key in TOKEN_STATISTICS_ENTRIES):  # any layout a world model loads from may hold them
        _check_config_entry(data, "token_statistics_config", path, "write them again with `jepa-mpc ood-stats`")
        required += ("token_statistics",)
    for key in required:
        if key not in data:
            raise CheckpointError(
                f"{path}: a {fmt or 'released'} checkpoint without its {key!r} state dict: the file "
                "is damaged or was written by other code; write it again with jepa_mpc"
            )
    for key in STATE_DICT_KEYS:
        if key in data:
            _check_state_dict(data[key], f"{path} [{key}]")


def _check_config_entry(data: dict, key: str, path: str | Path, fix: str) -> None:
    if key not in data:
        fmt = data.get("format") or "released"
        raise CheckpointError(f"{path}: a {fmt} checkpoint without its {key!r} entry; {fix}")
    if not isinstance(data[key], dict):
        raise CheckpointError(
            f"{path}: {key!r} is a {type(data[key]).__name__}, expected a dict of config fields; {fix}"
        )


def _check_state_dict(value: Any, where: str) -> None:
    """A state dict is a dict of parameter name -> tensor."""
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{where}: a {type(value).__name__} where a state dict (parameter name -> tensor) belongs: save "
            "`module.state_dict()`, not the module, a tensor or a list"
        )
    for name, tensor in value.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise CheckpointError(
                f"{where}: entry {name!r} is a {type(tensor).__name__}, expected a tensor: save `module.state_dict()`"
            )


TORCH_FILE_MAGIC = (b"PK", b"\x80")  # a zip archive (torch.save since 1.6) or a legacy pickle stream


def load_failure_reason(exc: Exception, path: str | Path | None = None) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a few words.

    torch's own message suggests ``weights_only=False``, which would run whatever code the file
    holds; this project never loads a file that way, so that advice is left out. A file that does
    not start like a torch file is named so (torch itself answers such files with e.g. ``KeyError: 101``).
    """
    if path is not None:
        with open(path, "rb") as f:
            head = f.read(8)
        if not head.startswith(TORCH_FILE_MAGIC):
            return f"not a torch file: it starts with {head!r}"
    text = str(exc)
    if "Weights only load failed" in text:
        # "Unsupported global: GLOBAL fractions.Fraction", or for a blocked module (os, posix,
        # subprocess, ...) "unsupported GLOBAL posix.system whose module posix is blocked"
        unsupported = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", text)
        return (
            f"Unsupported global: GLOBAL {unsupported.group(1)}"
            if unsupported
            else "not a file of tensors and plain containers"
        )
    first_sentence = re.split(r"(?<=\w)\.\s", text.strip())[0]
    return first_sentence or type(exc).__name__


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` (DDP) and ``backbone.`` (wrapper) prefixes of released keys."""
    return {re.sub(r"^(module\.)?(backbone\.)?", "", k): v for k, v in state_dict.items()}


def _block_count(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(m.group(1)) for k in state_dict if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def encoder_weight_sizes(state_dict: dict[str, torch.Tensor], where: str, kind: str) -> tuple[int, int, int, int, int]:
    """(dim, depth, MLP width, patch, tubelet) of a ViT encoder state dict, read from its weight shapes.

    ``patch_embed.proj.weight`` is ``[dim, 3, tubelet, patch, patch]``; the depth counts ``blocks.{i}``;
    the MLP width is ``blocks.0.mlp.fc1.weight``'s rows. Shared by V-JEPA 2 and 2.1 files.

    Raises:
        CheckpointError: a weight needed is missing: not a ``kind`` encoder state dict.
    """
    try:
        conv = state_dict["patch_embed.proj.weight"]  # [dim, 3, tubelet, patch, patch]
        hidden = state_dict["blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(
            f"{where}: no {exc.args[0]!r}; this is not a {kind} encoder state dict "
            f"(first keys: {sorted(state_dict)[:5]})"
        ) from None
    dim, _, tubelet, patch, _ = conv.shape
    return dim, _block_count(state_dict, "blocks"), hidden, patch, tubelet


def infer_encoder_config(
    state_dict: dict[str, torch.Tensor], img_size: int = 256, where: str = "encoder"
) -> EncoderConfig:
    """Match an encoder state dict against the presets by dim, depth and MLP width.

    The number of heads is not visible in the weights, hence the presets; a state dict that fits
    none is an error that says what it looks like and how to pass a config instead.
    """
    dim, depth, hidden, patch, tubelet = encoder_weight_sizes(state_dict, where, "V-JEPA 2")
    for preset in ENCODER_PRESETS.values():
        if preset["dim"] == dim and preset["depth"] == depth and int(dim * preset["mlp_ratio"]) == hidden:
            return EncoderConfig(img_size=img_size, patch_size=patch, tubelet_size=tubelet, **preset)
    raise CheckpointError(
        f"{where}: dim {dim}, depth {depth}, MLP width {hidden} match no preset in {sorted(ENCODER_PRESETS)}; "
        "pass the encoder config explicitly (the head count cannot be read from weights)"
    )


# Sections of a released V-JEPA 2.1 file that hold an encoder, in the order src/hub/backbones.py reads
# them: ``ema_encoder`` (distilled ViT-B/L), ``target_encoder`` (ViT-g/G), ``encoder``.
VJEPA2_1_ENCODER_SECTIONS = ("ema_encoder", "target_encoder", "encoder")


def is_vjepa2_1_checkpoint(data: dict[str, Any]) -> bool:
    """A released V-JEPA 2.1 file (``vjepa2_1_*.pt``): an encoder section with per-level norms.

    The distinctive keys are ``norms_block.{i}.*`` (V-JEPA 2 has a single ``norm``); the weights are
    read by :func:`worldmodel.vjepa2_1_encoder.load_vjepa2_1_encoder`.
    """
    if data.get("format") is not None:
        return False
    return any(
        isinstance(data.get(section), dict) and any(re.search(r"(^|\.)norms_block\.\d+\.", k) for k in data[section])
        for section in VJEPA2_1_ENCODER_SECTIONS
    )


def infer_predictor_config(
    state_dict: dict[str, torch.Tensor], img_size: int = 256, num_heads: int = 16, use_extrinsics: bool = False
) -> PredictorConfig:
    """The predictor config from its weight shapes (heads and extrinsics use are not in the weights)."""
    try:
        dim, encoder_dim = state_dict["predictor_embed.weight"].shape
        action_dim = state_dict["action_encoder.weight"].shape[1]
        hidden = state_dict["predictor_blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(
            f"predictor: no {exc.args[0]!r}; this is not a V-JEPA 2-AC (action-conditioned) predictor (a released "
            "V-JEPA 2 file's mask predictor?): plan with a V-JEPA 2-AC or jepa_mpc world model, or post-train "
            "one with `jepa-mpc train --encoder <this file>`"
        ) from None
    return PredictorConfig(
        img_size=img_size,
        encoder_dim=encoder_dim,
        dim=dim,
        depth=_block_count(state_dict, "predictor_blocks"),
        num_heads=num_heads,
        mlp_ratio=hidden / dim,
        action_dim=action_dim,
        use_extrinsics=use_extrinsics,
    )


def state_dict_differences(
    expected: dict[str, torch.Tensor], got: dict[str, Any]
) -> tuple[list[str], list[str], list[str]]:
    """The keys of ``got`` against ``expected`` (a module's ``state_dict()``): missing from it, unexpected
    in it, and present but of another shape (or not a tensor), each sorted or in ``expected``'s order."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    mis_shaped = [
        k
        for k, v in expected.items()
        if k in got and not (isinstance(got[k], torch.Tensor) and got[k].shape == v.shape)
    ]
    return missing, unexpected, mis_shaped


def _shape_of(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def non_finite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors of ``state_dict`` that hold a NaN or an infinity."""
    return [
        name
        for name, tensor in state_dict.items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Load every weight or fail with the missing, unexpected and mis-shaped keys listed.

    ``where`` names the file and its state dict (``model.pt [predictor]``) in the messages.

    Raises:
        CheckpointError: the keys or shapes do not fit the module (one line per kind of mismatch),
            or a weight holds NaN or inf (one line naming the tensors: a model with them would plan
            with NaN energies, so every plan would be arbitrary).
    """
    expected = module.state_dict()
    missing, unexpected, wrong = state_dict_differences(expected, state_dict)
    mis_shaped = [f"{k}: checkpoint {_shape_of(state_dict[k])} vs model {tuple(expected[k].shape)}" for k in wrong]
    if missing or unexpected or mis_shaped:
        config = getattr(module, "config", None)
        lines = [f"{where}: the checkpoint does not fit the model ({type(module).__name__} {config})"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                lines.append(f"  {title}: {shown}")
        lines.append("  Check that the preset/config matches the file (or that this is the right file).")
        raise CheckpointError("\n".join(lines))
    non_finite = non_finite_tensors(state_dict)
    if non_finite:
        shown = ", ".join(non_finite[:8]) + (f", ... ({len(non_finite)} in all)" if len(non_finite) > 8 else "")
        raise CheckpointError(
            f"{where}: NaN or inf in the weights {shown}: the training run that wrote the file diverged or the "
            "file is damaged; use an earlier checkpoint of the run or copy the file again"
        )
    module.load_state_dict(state_dict, strict=True)


def world_model_config_from_checkpoint(
    data: dict[str, Any], img_size: int = 256, encoder_key: str = "encoder", predictor_heads: int = 16
) -> WorldModelConfig:
    """The stored config of a project checkpoint, or one inferred from a released file.

    Raises:
        CheckpointError: the stored config does not fit :class:`WorldModelConfig`, the file is an
            encoder alone, or a released file's sizes fit no preset (the caller adds the file name).
    """
    if data.get("format") == PROJECT_FORMAT:
        try:
            return from_dict(WorldModelConfig, data["config"], source="stored config")
        except ValueError as exc:  # ConfigError: an unknown key, a wrong type, a refused value
            raise CheckpointError(f"{exc}; the file was written by another version or other code") from exc
    if data.get("format") == ENCODER_FORMAT:
        raise CheckpointError(
            "an encoder file of `jepa-mpc pretrain`, without an action-conditioned predictor: plan with the "
            "model.pt that `jepa-mpc train --encoder <this file>` writes"
        )
    if is_vjepa2_1_checkpoint(data):
        raise CheckpointError(
            "a released V-JEPA 2.1 encoder, without an action-conditioned predictor: post-train one with "
            "`jepa-mpc train --encoder <this file>` and plan with the model.pt it writes"
        )
    encoder_sd = strip_prefixes(_section(data, encoder_key))
    encoder = infer_encoder_config(encoder_sd, img_size=img_size, where=encoder_key)
    predictor_sd = strip_prefixes(_section(data, "predictor"))
    predictor = infer_predictor_config(predictor_sd, img_size=img_size, num_heads=predictor_heads)
    return WorldModelConfig(encoder=encoder, predictor=dataclasses.replace(predictor, patch_size=encoder.patch_size))


def _section(data: dict[str, Any], key: str) -> dict[str, torch.Tensor]:
    if key not in data:
        present = [k for k, v in data.items() if isinstance(v, dict)]
        hint = (
            ": an encoder alone (a released V-JEPA 2 file?) cannot plan; use it with `jepa-mpc train --encoder`"
            if key == "predictor"
            else ""
        )
        raise CheckpointError(f"checkpoint has no {key!r} state dict (it has {present}){hint}")
    return data[key]


def goal_policy_config_from_checkpoint(data: dict[str, Any], path: str | Path) -> GoalPolicyConfig | None:
    """The stored :class:`GoalPolicyConfig` of a project checkpoint, None when it holds no policy.

    Raises:
        CheckpointError: the stored config does not fit :class:`GoalPolicyConfig` (naming ``path``).
    """
    if "goal_policy_config" not in data:
        return None
    try:
        return from_dict(GoalPolicyConfig, data["goal_policy_config"], source=f"{path} goal_policy_config")
    except ValueError as exc:
        raise CheckpointError(f"{exc}; the file was written by another version or other code") from exc


def language_goal_config_from_checkpoint(data: dict[str, Any], path: str | Path) -> LanguageGoalConfig | None:
    """The stored :class:`LanguageGoalConfig` of a project checkpoint, None when it holds no language-goal predictor.

    Raises:
        CheckpointError: the stored config does not fit :class:`LanguageGoalConfig` (naming ``path``).
    """
    if "language_goal_config" not in data:
        return None
    try:
        return from_dict(LanguageGoalConfig, data["language_goal_config"], source=f"{path} language_goal_config")
    except ValueError as exc:
        raise CheckpointError(f"{exc}; the file was written by another version or other code") from exc


def token_statistics_config_from_checkpoint(data: dict[str, Any], path: str | Path) -> TokenStatisticsConfig | None:
    """The stored :class:`TokenStatisticsConfig` of a checkpoint, None when it holds no token statistics.

    Raises:
        CheckpointError: the stored config does not fit :class:`TokenStatisticsConfig` (naming ``path``).
    """
    if "token_statistics_config" not in data:
        return None
    try:
        return from_dict(
            TokenStatisticsConfig, data["token_statistics_config"], source=f"{path} token_statistics_config"
        )
    except ValueError as exc:
        raise CheckpointError(
            f"{exc}; the file was written by another version or other code: write the statistics "
            "again with `jepa-mpc ood-stats`"
        ) from exc


def encoder_state_dict(data: dict[str, Any], encoder_key: str = "encoder") -> dict[str, torch.Tensor]:
    """The encoder's weights of a checkpoint read by :func:`read_checkpoint`, released prefixes stripped."""
    return strip_prefixes(_section(data, encoder_key))


def predictor_state_dict(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The predictor's weights of a checkpoint read by :func:`read_checkpoint`, released prefixes stripped."""
    return strip_prefixes(_section(data, "predictor"))


def cpu_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` with every tensor on the CPU (the same tensors when already there).

    A checkpoint written from a GPU otherwise holds CUDA storages: ``torch.load`` without
    ``map_location`` then fails on a machine without a GPU, and the file's bytes (the feature-cache
    key of an ``--encoder``) differ from a CPU-written file of the same weights.
    """
    state = module.state_dict()  # a fresh OrderedDict (its _metadata kept, so a CPU file is byte for byte as before)
    for key, value in state.items():
        state[key] = value.cpu()
    return state


def save_world_model_checkpoint(
    path: str | Path,
    config: WorldModelConfig,
    encoder: nn.Module,
    predictor: nn.Module,
    extra: dict[str, Any] | None = None,
    goal_policy: nn.Module | None = None,
    token_statistics: nn.Module | None = None,
    language_goal: nn.Module | None = None,
) -> None:
    """Write config + weights (+ a goal-conditioned policy with its config, + the training frames' token
    statistics with theirs, + a language-goal predictor with its config and words, + ``extra`` metadata
    such as the recipe) atomically."""
    data = {
        "format": PROJECT_FORMAT,
        "config": dataclass_to_dict(config),
        "encoder": cpu_state_dict(encoder),
        "predictor": cpu_state_dict(predictor),
        **(extra or {}),
    }
    if goal_policy is not None:
        data["goal_policy_config"] = dataclass_to_dict(goal_policy.config)
        data["goal_policy"] = cpu_state_dict(goal_policy)
    if token_statistics is not None:
        data |= token_statistics_entries(token_statistics)
    if language_goal is not None:
        data["language_goal_config"] = dataclass_to_dict(language_goal.config)
        data["language_goal"] = cpu_state_dict(language_goal)
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def token_statistics_entries(token_statistics: nn.Module) -> dict[str, Any]:
    """The two checkpoint entries of :class:`worldmodel.token_statistics.TokenStatistics`: its config and buffers."""
    return {
        "token_statistics_config": dataclass_to_dict(token_statistics.config),
        "token_statistics": cpu_state_dict(token_statistics),
    }


def save_language_goal(
    checkpoint: str | Path, language_goal: nn.Module, out: str | Path, train_config: dict | None = None
) -> None:
    """Write ``checkpoint`` to ``out`` (atomically) with a language-goal predictor and its config added, or
    replacing the one it holds (and ``train_config`` as ``language_goal_train_config``); every other entry is
    written back unchanged.

    Raises:
        CheckpointError: ``checkpoint`` cannot be read (:func:`read_checkpoint`).
    """
    data = read_checkpoint(checkpoint)
    data["language_goal_config"] = dataclass_to_dict(language_goal.config)
    data["language_goal"] = cpu_state_dict(language_goal)
    if train_config is not None:
        data["language_goal_train_config"] = train_config
    with atomic_path(out) as tmp:
        torch.save(data, tmp)


def save_token_statistics(checkpoint: str | Path, token_statistics: nn.Module, out: str | Path) -> None:
    """Write ``checkpoint`` to ``out`` (atomically: a reader never sees half a file) with the token statistics
    added, or replacing the ones it holds; every other entry is written back unchanged.

    Raises:
        CheckpointError: ``checkpoint`` cannot be read (:func:`read_checkpoint`).
    """
    data = read_checkpoint(checkpoint)
    data |= token_statistics_entries(token_statistics)
    with atomic_path(out) as tmp:
        torch.save(data, tmp)
