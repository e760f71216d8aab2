"""The frozen encoder of post-training: read from any checkpoint the project knows, hashed for the cache.

``--encoder`` accepts four kinds of checkpoint (:data:`worldmodel.checkpoint.CHECKPOINT_LAYOUTS`):

- ``jepa-mpc pretrain`` output (``format: "jepa_mpc_encoder"``): the EMA target encoder and its config;
- a project world-model checkpoint (``format: "jepa_mpc"``, e.g. a previous ``jepa-mpc train``);
- a released V-JEPA 2 file (``vitl.pt``, ``vjepa2-ac-vitg.pt``): its ``encoder``, the config matched
  against the presets (``img_size`` must then be given; 256 for the released models);
- a Hugging Face ``VJEPA2Model`` folder or ``model.safetensors`` (:mod:`worldmodel.hf_checkpoint`):
  its encoder, the config from its ``config.json``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foundation.atomic_files import atomic_path
from foundation.configuration import dataclass_to_dict, from_dict
from worldmodel.checkpoint import (
    ENCODER_FORMAT,
    PROJECT_FORMAT,
    CheckpointError,
    encoder_state_dict,
    infer_encoder_config,
    load_state_dict_strict,
    read_checkpoint,
    unsupported_layout,
    world_model_config_from_checkpoint,
)
from worldmodel.config import EncoderConfig
from worldmodel.encoder import VideoEncoder
from worldmodel.hf_checkpoint import find_hf_files, is_hf_checkpoint, load_hf_encoder


def save_encoder_checkpoint(path: str | Path, config: EncoderConfig, encoder: nn.Module, extra: dict[str, Any] | None = None) -> None:
    """Write an encoder with its config atomically; ``extra`` adds entries (context encoder, predictor, recipe)."""
    data = {"format": ENCODER_FORMAT, "encoder_config": dataclass_to_dict(config), "encoder": encoder.state_dict(), **(extra or {})}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def file_digest(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """sha256 of a checkpoint's bytes (the encoder's identity in the feature-cache key).

    A Hugging Face checkpoint is hashed over its ``config.json`` and weight files, in that order.
    """
    files = find_hf_files(path).all_files if is_hf_checkpoint(path) else (Path(path),)
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as f:
            while chunk := f.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()


def load_encoder(path: str | Path, img_size: int = 256) -> tuple[EncoderConfig, VideoEncoder]:
    """The encoder stored in ``path`` (eval mode, on CPU, gradients off) and its config.

    ``img_size`` is used only for released files, which carry no config. The encoder maps
    ``[B, 3, T, H, W]`` normalized video to tokens ``[B, N, dim]``.

    Raises:
        CheckpointError: the file is none of the layouts above, or its weights do not fit; the
            message names the file and the fix.
    """
    if is_hf_checkpoint(path):
        return load_hf_encoder(path)
    data = read_checkpoint(path)
    fmt = data.get("format")
    if fmt == ENCODER_FORMAT:
        config = from_dict(EncoderConfig, data["encoder_config"], source=f"{path} encoder_config")
        state_dict = data["encoder"]
    elif fmt == PROJECT_FORMAT:
        try:
            config = world_model_config_from_checkpoint(data).encoder
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
        state_dict = encoder_state_dict(data)
    elif "encoder" in data:
        state_dict = encoder_state_dict(data, "encoder")
        config = infer_encoder_config(state_dict, img_size=img_size, where=f"{path} [encoder]")
    else:
        raise unsupported_layout(path, f"holds no `encoder` state dict (entries {sorted(map(str, data))[:8]})")
    encoder = VideoEncoder(config)
    load_state_dict_strict(encoder, state_dict, where=f"{path} [encoder]")
    encoder.eval().requires_grad_(False)
    return config, encoder
