"""The frozen encoder of post-training: read from any checkpoint the project knows, hashed for the cache.

``--encoder`` accepts four kinds of checkpoint (:data:`worldmodel.checkpoint.CHECKPOINT_LAYOUTS`):

- ``jepa-mpc pretrain`` output (``format: "jepa_mpc_encoder"``): the EMA target encoder and its config;
- a project world-model checkpoint (``format: "jepa_mpc"``, e.g. a previous ``jepa-mpc train``);
- a released V-JEPA 2 file (``vitl.pt``, ``vjepa2-ac-vitg.pt``): its ``encoder``, the config matched
  against the presets (``img_size`` must then be given; 256 for the released models);
- a Hugging Face ``VJEPA2Model`` folder or ``model.safetensors`` (:mod:`worldmodel.hf_checkpoint`):
  its encoder, the config from its ``config.json``.
- a released V-JEPA 2.1 file (``vjepa2_1_vitl_dist_vitG_384.pt``, ...), recognised by
  :func:`worldmodel.checkpoint.is_vjepa2_1_checkpoint`: its ``ema_encoder`` / ``target_encoder``
  (:func:`worldmodel.vjepa2_1_encoder.load_vjepa2_1_encoder`; released at 384 px, any size tiling into
  at least 2 x 2 patches works).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jepa_mpc_foundation.atomic_files import atomic_path
from jepa_mpc_foundation.configuration import dataclass_to_dict, from_dict
from worldmodel.checkpoint import (
    ENCODER_FORMAT,
    PROJECT_FORMAT,
    CheckpointError,
    cpu_state_dict,
    encoder_state_dict,
    infer_encoder_config,
    is_vjepa2_1_checkpoint,
    load_state_dict_strict,
    read_checkpoint,
    unsupported_layout,
    world_model_config_from_checkpoint,
)
from worldmodel.config import EncoderConfig
from worldmodel.encoder import build_encoder
from worldmodel.hf_checkpoint import find_hf_files, is_hf_checkpoint, load_hf_encoder
from worldmodel.vjepa2_1_encoder import load_vjepa2_1_encoder


def save_encoder_checkpoint(
    path: str | Path, config: EncoderConfig, encoder: nn.Module, extra: dict[str, Any] | None = None
) -> None:
    """Write an encoder with its config atomically; ``extra`` adds entries (context encoder, predictor, recipe)."""
    data = {
        "format": ENCODER_FORMAT,
        "encoder_config": dataclass_to_dict(config),
        "encoder": cpu_state_dict(encoder),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def weights_digest(module: nn.Module) -> str:
    """sha256 of a module's weights (every state-dict entry's name, dtype, shape and bytes, in order): the
    identity of the encoder that made a feature cache, the same whichever checkpoint file holds it."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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


def load_encoder(
    path: str | Path, img_size: int = 256, num_heads: int | None = None
) -> tuple[EncoderConfig, nn.Module]:
    """The encoder stored in ``path`` (eval mode, on CPU, gradients off) and its config.

    ``img_size`` is used only for released files, which carry no config; ``num_heads`` only for a
    released V-JEPA 2.1 file whose sizes match none of the released ones. The encoder maps
    ``[B, 3, T, H, W]`` normalized video to tokens ``[B, N, dim]``.

    Raises:
        CheckpointError: the file is none of the layouts above, its weights do not fit, or
            ``num_heads`` is given for a file that is not a released V-JEPA 2.1 one; the message
            names the file and the fix.
    """
    if is_hf_checkpoint(path):
        if num_heads is not None:
            raise CheckpointError(f"{path}: the encoder head count applies to released V-JEPA 2.1 files only; drop it")
        return load_hf_encoder(path)
    data = read_checkpoint(path)
    fmt = data.get("format")
    if num_heads is not None and not is_vjepa2_1_checkpoint(data):
        raise CheckpointError(f"{path}: the encoder head count applies to released V-JEPA 2.1 files only; drop it")
    if fmt == ENCODER_FORMAT:
        config = from_dict(EncoderConfig, data["encoder_config"], source=f"{path} encoder_config")
        state_dict = data["encoder"]
    elif fmt == PROJECT_FORMAT:
        try:
            config = world_model_config_from_checkpoint(data).encoder
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
        state_dict = encoder_state_dict(data)
    elif is_vjepa2_1_checkpoint(data):
        config, encoder = load_vjepa2_1_encoder(data, path, img_size=img_size, num_heads=num_heads)
        encoder.requires_grad_(False)
        return config, encoder
    elif "encoder" in data:
        state_dict = encoder_state_dict(data, "encoder")
        config = infer_encoder_config(state_dict, img_size=img_size, where=f"{path} [encoder]")
    else:
        raise unsupported_layout(path, f"holds no `encoder` state dict (entries {sorted(map(str, data))[:8]})")
    encoder = build_encoder(config)
    load_state_dict_strict(encoder, state_dict, where=f"{path} [encoder]")
    encoder.eval().requires_grad_(False)
    return config, encoder
