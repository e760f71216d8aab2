"""Checkpoint files: the released V-JEPA 2 layout and the project's own.

Released files (``vitl.pt``, ``vith.pt``, ``vitg.pt``, ``vjepa2-ac-vitg.pt``) are dicts with
``encoder``, ``target_encoder`` and (AC) ``predictor`` state dicts whose keys carry ``module.``
(DDP) and ``backbone.`` (wrapper) prefixes, and no config: the encoder config is matched against
:data:`ENCODER_PRESETS` by its weight shapes, the predictor's from its own shapes.

The project's own files add ``format: "jepa_mpc"`` and ``config`` (a :class:`WorldModelConfig` as a
dict), so one path loads them.

Loading is strict: a missing, unexpected or mis-shaped weight is an error that lists them, never a
warning over a half-loaded model.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foundation.atomic_files import atomic_path
from foundation.configuration import dataclass_to_dict, from_dict

from .config import ENCODER_PRESETS, EncoderConfig, PredictorConfig, WorldModelConfig

PROJECT_FORMAT = "jepa_mpc"  # a world model: encoder + predictor + WorldModelConfig
ENCODER_FORMAT = "jepa_mpc_encoder"  # an encoder alone, as `jepa-mpc pretrain` writes it
# The model that ships with the package (made by `make default-model`, see its README).
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
DEFAULT_CHECKPOINT = DEFAULT_MODEL_DIR / "model.pt"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the reason and the fix in the message."""


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``path``, or the shipped default model when empty.

    Raises:
        FileNotFoundError: the file does not exist; the message says how to get one.
    """
    chosen = Path(path) if path else DEFAULT_CHECKPOINT
    if not chosen.is_file():
        hint = "run `make default-model` to rebuild it" if not path else "check the path"
        raise FileNotFoundError(f"world model checkpoint {chosen} does not exist: {hint}")
    return chosen


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, not a torch file at all
        reason = _load_failure(exc)
        raise CheckpointError(
            f"checkpoint {path} could not be read as tensors ({reason}). The file is truncated, not a torch "
            "checkpoint, or holds Python objects beyond tensors and plain containers: download or copy it again."
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(data).__name__}, expected a dict of state dicts")
    return data


def _load_failure(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a few words.

    torch's own message suggests ``weights_only=False``, which would run whatever code the file
    holds; this project never loads a file that way, so that advice is left out.
    """
    text = str(exc)
    if "Weights only load failed" in text:
        unsupported = re.search(r"Unsupported global: GLOBAL [\w.]+", text)
        return unsupported.group(0) if unsupported else "not a file of tensors and plain containers"
    first_sentence = re.split(r"(?<=\w)\.\s", text.strip())[0]
    return first_sentence or type(exc).__name__


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` (DDP) and ``backbone.`` (wrapper) prefixes of released keys."""
    return {re.sub(r"^(module\.)?(backbone\.)?", "", k): v for k, v in state_dict.items()}


def _block_count(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(m.group(1)) for k in state_dict if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def infer_encoder_config(state_dict: dict[str, torch.Tensor], img_size: int = 256, where: str = "encoder") -> EncoderConfig:
    """Match an encoder state dict against the presets by dim, depth and MLP width.

    The number of heads is not visible in the weights, hence the presets; a state dict that fits
    none is an error that says what it looks like and how to pass a config instead.
    """
    try:
        conv = state_dict["patch_embed.proj.weight"]  # [dim, 3, tubelet, patch, patch]
        hidden = state_dict["blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(
            f"{where}: no {exc.args[0]!r}; this is not a V-JEPA 2 encoder state dict "
            f"(first keys: {sorted(state_dict)[:5]})"
        ) from None
    dim, _, tubelet, patch, _ = conv.shape
    depth = _block_count(state_dict, "blocks")
    for name, preset in ENCODER_PRESETS.items():
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
        raise CheckpointError(f"predictor: no {exc.args[0]!r}; this is not a V-JEPA 2-AC predictor state dict") from None
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


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Load every weight or fail with the missing, unexpected and mis-shaped keys listed."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mis_shaped:
        config = getattr(module, "config", None)
        lines = [f"{where}: the checkpoint does not fit the model ({type(module).__name__} {config})"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                lines.append(f"  {title}: {shown}")
        lines.append("  Check that the preset/config matches the file (or that this is the right file).")
        raise CheckpointError("\n".join(lines))
    module.load_state_dict(state_dict, strict=True)


def world_model_config_from_checkpoint(
    data: dict[str, Any], img_size: int = 256, encoder_key: str = "encoder", predictor_heads: int = 16
) -> WorldModelConfig:
    """The stored config of a project checkpoint, or one inferred from a released file."""
    if data.get("format") == PROJECT_FORMAT:
        return from_dict(WorldModelConfig, data["config"], source="checkpoint config")
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
        raise CheckpointError(f"checkpoint has no {key!r} state dict (it has {present})")
    return data[key]


def encoder_state_dict(data: dict[str, Any], encoder_key: str = "encoder") -> dict[str, torch.Tensor]:
    return strip_prefixes(_section(data, encoder_key))


def predictor_state_dict(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    return strip_prefixes(_section(data, "predictor"))


def save_world_model_checkpoint(
    path: str | Path,
    config: WorldModelConfig,
    encoder: nn.Module,
    predictor: nn.Module,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write config + weights (+ ``extra`` metadata such as the recipe) atomically."""
    data = {
        "format": PROJECT_FORMAT,
        "config": dataclass_to_dict(config),
        "encoder": encoder.state_dict(),
        "predictor": predictor.state_dict(),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
