"""Hugging Face ``VJEPA2Model`` files: the encoder read strictly into :class:`~worldmodel.encoder.VideoEncoder`.

``VJEPA2Model.save_pretrained`` (transformers >= 4.53; e.g. ``facebook/vjepa2-vitl-fpc64-256``)
writes a folder with ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``). Either the folder or its ``model.safetensors`` (with
``config.json`` beside it) is accepted. Only the encoder is loaded: its
``VJEPA2Model.encoder.*`` weights map one to one onto ours (:data:`HF_ENCODER_RENAMES`), except
that the separate ``query`` / ``key`` / ``value`` projections are concatenated, in that order, into
our fused ``qkv`` (the inverse of ``convert_encoder_keys`` in transformers'
``src/transformers/models/vjepa2/convert_vjepa2_to_hf.py``). The ``predictor.*`` weights are
V-JEPA 2's mask-denoising predictor, not an action-conditioned one, and are set aside by name.

Both models compute the same function: the same 3-D RoPE (``rotate_queries_or_keys`` and
``VJEPA2RopeAttention`` in ``modeling_vjepa2.py``: head dim split in three parts of
``2 * ((head_dim // 3) // 2)`` channels for time, height and width, frequencies repeated per part),
pre-norm blocks, exact GELU and a final LayerNorm (``encoder.layernorm``), so ``last_hidden_state``
of ``VJEPA2Model`` equals our encoder's output. Two differences in the inputs: transformers takes
``pixel_values_videos`` as ``[B, T, C, H, W]``, we take ``[B, C, T, H, W]``; and transformers places
RoPE positions on a ``crop_size`` grid whatever the input size, we on the input's own grid (the same
for inputs of ``crop_size`` pixels, the only size the released models were trained at).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, load_state_dict_strict
from .config import EncoderConfig
from .encoder import VideoEncoder
from .layers import LAYER_NORM_EPS

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
MODEL_TYPE = "vjepa2"

# The defaults of transformers' VJEPA2Config (configuration_vjepa2.py) for the fields the encoder
# uses: a config.json written with only the fields that differ from them still loads.
HF_CONFIG_DEFAULTS: dict[str, Any] = {
    "patch_size": 16,
    "crop_size": 256,
    "tubelet_size": 2,
    "hidden_size": 1024,
    "in_chans": 3,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "mlp_ratio": 4.0,
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "hidden_act": "gelu",
}

# Our parameter name -> the VJEPA2Model name it is copied from (modeling_vjepa2.py: VJEPA2Encoder,
# VJEPA2Embeddings, VJEPA2PatchEmbeddings3D, VJEPA2Layer, VJEPA2RopeAttention, VJEPA2MLP).
HF_ENCODER_RENAMES: tuple[tuple[str, str], ...] = (
    (r"patch_embed\.proj\.(weight|bias)", r"encoder.embeddings.patch_embeddings.proj.\1"),
    (r"blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)", r"encoder.layer.\1.\2.\3"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"encoder.layer.\1.attention.proj.\2"),
    (r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"encoder.layer.\1.mlp.\2.\3"),
    (r"norm\.(weight|bias)", r"encoder.layernorm.\1"),
)
# Our fused qkv <- transformers' three projections, concatenated along the output dim in this order.
HF_QKV = (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", ("query", "key", "value"))
# VJEPA2Model weights that are not the encoder: V-JEPA 2's mask-denoising predictor.
HF_SET_ASIDE_PREFIXES = ("predictor.",)


@dataclass(frozen=True)
class HFCheckpointFiles:
    """The files of one Hugging Face checkpoint: ``config.json`` and the safetensors weights."""

    config: Path
    weights: tuple[Path, ...]

    @property
    def all_files(self) -> tuple[Path, ...]:
        """Every file whose bytes define the model (config first), e.g. to hash it."""
        return (self.config, *self.weights)


def is_safetensors_file(path: str | Path) -> bool:
    """True when ``path`` is a file that starts like safetensors (an 8-byte header length, then ``{``)."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 0 < int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def is_hf_checkpoint(path: str | Path) -> bool:
    """True for a folder holding ``config.json`` or safetensors weights, or a safetensors file.

    Such a path is read by :func:`load_hf_encoder` (whose errors say what is missing); anything
    else is left to the torch loader of :mod:`worldmodel.checkpoint`.
    """
    path = Path(path)
    if path.is_dir():
        return any((path / name).is_file() for name in (CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE))
    return is_safetensors_file(path)


def find_hf_files(path: str | Path) -> HFCheckpointFiles:
    """The config and weight files of a Hugging Face folder, or of ``model.safetensors`` and its folder.

    Raises:
        CheckpointError: ``config.json`` or the weights are missing, or the shard index is unreadable.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(
            f"{path}: a Hugging Face checkpoint needs {CONFIG_FILE} beside its weights, and {folder} has none: "
            "copy the model's config.json there (VJEPA2Model.save_pretrained writes both)"
        )
    if not path.is_dir():
        return HFCheckpointFiles(config, (path,))
    if (folder / WEIGHTS_FILE).is_file():
        return HFCheckpointFiles(config, (folder / WEIGHTS_FILE,))
    if (folder / WEIGHTS_INDEX_FILE).is_file():
        index = _read_json(folder / WEIGHTS_INDEX_FILE)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(
                f"{folder / WEIGHTS_INDEX_FILE}: no `weight_map` of tensor name -> shard file; download the model again"
            )
        shards = tuple(folder / name for name in sorted(set(weight_map.values())))
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise CheckpointError(
                f"{folder}: shards {missing} listed in {WEIGHTS_INDEX_FILE} are missing; download them"
            )
        return HFCheckpointFiles(config, shards)
    raise CheckpointError(
        f"{path}: a Hugging Face folder without {WEIGHTS_FILE} (or {WEIGHTS_INDEX_FILE} and its shards); "
        "download the weights too (only safetensors are read: a pytorch_model.bin is a pickle and is refused)"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc}); download it again") from exc


def encoder_config_from_hf(hf_config: dict[str, Any], where: str | Path) -> EncoderConfig:
    """Our :class:`EncoderConfig` from a ``VJEPA2Config`` dict (``config.json``).

    ``crop_size`` -> ``img_size``, ``hidden_size`` -> ``dim``, ``num_hidden_layers`` -> ``depth``,
    ``num_attention_heads`` -> ``num_heads``; ``patch_size``, ``tubelet_size``, ``mlp_ratio``,
    ``qkv_bias`` as they are. Missing fields take :data:`HF_CONFIG_DEFAULTS`.

    Raises:
        CheckpointError: not a V-JEPA 2 config, or one this encoder cannot compute (another
            activation, LayerNorm eps, channel count, a non-square patch, a size refused by
            :class:`EncoderConfig`), naming ``where`` and the field.
    """
    if not isinstance(hf_config, dict):
        raise CheckpointError(f"{where}: holds a {type(hf_config).__name__}, expected a JSON object")
    if hf_config.get("model_type") != MODEL_TYPE:
        raise CheckpointError(
            f"{where}: model_type {hf_config.get('model_type')!r}, expected {MODEL_TYPE!r} (a V-JEPA 2 model of "
            "transformers); other models are not read"
        )
    c = {**HF_CONFIG_DEFAULTS, **hf_config}
    patch = c["patch_size"]
    if isinstance(patch, (list, tuple)):
        if len(set(patch)) != 1:
            raise CheckpointError(f"{where}: patch_size {patch} is not square; the encoder takes square patches")
        patch = patch[0]
    unsupported = {
        "hidden_act": (c["hidden_act"], "gelu"),
        "in_chans": (c["in_chans"], 3),
        "layer_norm_eps": (c["layer_norm_eps"], LAYER_NORM_EPS),
    }
    for name, (value, supported) in unsupported.items():
        if value != supported:
            raise CheckpointError(
                f"{where}: {name} {value!r} is not supported (the encoder computes {name} {supported!r})"
            )
    try:
        return EncoderConfig(
            img_size=int(c["crop_size"]),
            patch_size=int(patch),
            tubelet_size=int(c["tubelet_size"]),
            dim=int(c["hidden_size"]),
            depth=int(c["num_hidden_layers"]),
            num_heads=int(c["num_attention_heads"]),
            mlp_ratio=float(c["mlp_ratio"]),
            qkv_bias=bool(c["qkv_bias"]),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from exc


def encoder_state_dict_from_hf(
    tensors: dict[str, torch.Tensor], config: EncoderConfig, where: str | Path
) -> dict[str, torch.Tensor]:
    """``VJEPA2Model`` weights -> our encoder's state dict (names of :class:`VideoEncoder`).

    Every one of our parameters is taken from its named source (:data:`HF_ENCODER_RENAMES`,
    :data:`HF_QKV`); every ``encoder.*`` tensor of the file must be used and anything else must be
    set aside by name (:data:`HF_SET_ASIDE_PREFIXES`). Shapes are checked by
    :func:`worldmodel.checkpoint.load_state_dict_strict` when the result is loaded.

    Raises:
        CheckpointError: weights missing from the file, left over in it, or q/k/v of different shapes.
    """
    expected = VideoEncoder(config).state_dict().keys()
    state_dict, used, missing = {}, set(), []
    for key in expected:
        sources = _hf_sources(key)
        absent = [s for s in sources if s not in tensors]
        if absent:
            missing += absent
            continue
        parts = [tensors[s] for s in sources]  # one, or query/key/value each [dim(, dim)]
        if len({p.shape for p in parts}) > 1:
            raise CheckpointError(f"{where}: {', '.join(sources)} differ in shape {[tuple(p.shape) for p in parts]}")
        state_dict[key] = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)  # [3 * dim(, dim)]
        used.update(sources)
    left_over = sorted(k for k in tensors if k not in used and not k.startswith(HF_SET_ASIDE_PREFIXES))
    if missing or left_over:
        lines = [f"{where}: the Hugging Face weights do not fit a V-JEPA 2 encoder of {config}"]
        for title, items in (("missing", missing), ("left over", left_over)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                lines.append(f"  {title}: {shown}")
        lines.append(f"  Check that {CONFIG_FILE} belongs to these weights and that they were written by VJEPA2Model.")
        raise CheckpointError("\n".join(lines))
    return state_dict


def _hf_sources(key: str) -> tuple[str, ...]:
    """The ``VJEPA2Model`` tensor names our parameter ``key`` is made of."""
    pattern, projections = HF_QKV
    if m := re.fullmatch(pattern, key):
        block, kind = m.groups()
        return tuple(f"encoder.layer.{block}.attention.{p}.{kind}" for p in projections)
    for pattern, replacement in HF_ENCODER_RENAMES:
        if re.fullmatch(pattern, key):
            return (re.sub(pattern, replacement, key),)
    raise AssertionError(f"no Hugging Face source for encoder parameter {key}")  # a new parameter needs a rule


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file on CPU (a format without code: nothing can run)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: could not be read as safetensors ({exc}); the file is truncated or damaged: download it again"
        ) from exc


def check_hf_checkpoint(path: str | Path) -> EncoderConfig:
    """The encoder config of a Hugging Face folder or ``model.safetensors``, once its files are found,
    its ``config.json`` is a supported V-JEPA 2 config and each weights file's header reads: what
    :func:`load_hf_encoder` needs, checked without reading the weights.

    Raises:
        CheckpointError: as :func:`load_hf_encoder`, for those checks.
    """
    from safetensors import SafetensorError, safe_open

    files = find_hf_files(path)
    config = encoder_config_from_hf(_read_json(files.config), files.config)
    for weights in files.weights:
        try:
            with safe_open(str(weights), framework="pt", device="cpu") as f:
                f.keys()
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{weights}: could not be read as safetensors ({exc}); "
                "the file is truncated or damaged: download it again"
            ) from exc
    return config


def load_hf_encoder(path: str | Path) -> tuple[EncoderConfig, VideoEncoder]:
    """The encoder of a Hugging Face ``VJEPA2Model`` folder or ``model.safetensors`` (eval mode, CPU, no gradients).

    The encoder maps ``[B, 3, T, H, W]`` normalized video to tokens ``[B, (T/tubelet) * (H/patch) * (W/patch), dim]``,
    equal to transformers' ``VJEPA2Model(...).last_hidden_state`` for the same clip (given as ``[B, T, 3, H, W]``
    there) at ``H = W = crop_size``.

    Raises:
        CheckpointError: a file is missing or unreadable, the config is not a supported V-JEPA 2 one,
            or a weight is missing, left over or mis-shaped; each names the file.
    """
    files = find_hf_files(path)
    config = encoder_config_from_hf(_read_json(files.config), files.config)
    tensors: dict[str, torch.Tensor] = {}
    for weights in files.weights:
        tensors.update(read_safetensors(weights))
    state_dict = encoder_state_dict_from_hf(tensors, config, path)
    encoder = VideoEncoder(config)
    load_state_dict_strict(encoder, state_dict, where=f"{path} [encoder]")
    encoder.eval().requires_grad_(False)
    return config, encoder
