"""The V-JEPA 2.1 encoder and its released checkpoints (``vjepa2_1_*.pt``).

Source: facebookresearch/vjepa2 ``app/vjepa_2_1/models/vision_transformer.py`` (``VisionTransformer``
as ``src/hub/backbones.py`` ``_make_vjepa2_1_model`` builds it: ``use_rope``, ``img_temporal_dim_size=1``,
``interpolate_rope``, ``modality_embedding``) and ``app/vjepa_2_1/models/utils/modules.py``
(``RoPEAttention``, ``Block``). What differs from V-JEPA 2 (:class:`worldmodel.encoder.VideoEncoder`):

- two patch embeddings: ``patch_embed`` (3-D, ``tubelet x patch x patch``) for video and
  ``patch_embed_img`` (``1 x patch x patch``) for a single frame (an input of ``T == 1``);
- a learned modality embedding added to every token after the patch embedding: ``video_mod_embed``
  or ``img_mod_embed`` (``[1, 1, dim]``);
- RoPE frequencies interleaved per pair (:func:`worldmodel.layers.rope_cos_sin` ``interleave=True``)
  and row/column positions rescaled to the pretraining grid: ``h * (G - 1) / (H' - 1)`` with ``G = 16``
  for 16-px patches (256 px), so any input size lands on the positions seen in pretraining;
- no final ``norm``: four per-level LayerNorms ``norms_block[i]``, applied after the blocks of
  :data:`worldmodel.config.VJEPA2_1_LEVEL_BLOCKS`. The encoder's output (``forward(x)`` of the reference
  in eval) is ``norms_block[-1]`` of the last block; :meth:`VJEPA21Encoder.levels` gives the four
  levels concatenated (``forward(x, training=True)``, the distillation target).

Released files hold the encoder under ``ema_encoder`` (distilled ViT-B/L) or ``target_encoder``
(ViT-g/G), keys prefixed ``module.`` / ``backbone.``, and no config: the config is read from the weight
shapes and matched against :data:`worldmodel.config.VJEPA2_1_ENCODER_PRESETS` for the head count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint import (
    VJEPA2_1_ENCODER_SECTIONS,
    CheckpointError,
    encoder_weight_sizes,
    load_state_dict_strict,
    strip_prefixes,
)
from .config import VJEPA2_1_ENCODER_PRESETS, VJEPA2_1_LEVEL_BLOCKS, VJEPA2_1_ROPE_GRID, EncoderConfig
from .layers import LAYER_NORM_EPS, Block, PatchEmbed3D, grid_positions, rope_cos_sin


def interpolated_positions(time_steps: int, height: int, width: int, rope_grid: int, device=None) -> Tensor:
    """(t, h, w) of a ``[T', H', W']`` token grid in raster order, rows/columns rescaled to ``rope_grid``.

    ``h * (rope_grid - 1) / (H' - 1)`` (``RoPEAttention.forward``, ``interpolate_rope``) -> ``[N, 3]`` float32.

    Raises:
        ValueError: a grid one patch high or wide (the reference divides by zero there).
    """
    if height < 2 or width < 2:
        raise ValueError(f"a V-JEPA 2.1 input must be at least 2 patches high and wide, got {height} x {width} patches")
    positions = grid_positions(time_steps, height, width, device=device).to(torch.float32)  # [N, 3]
    positions[:, 1] = positions[:, 1] * (rope_grid - 1) / (height - 1)
    positions[:, 2] = positions[:, 2] * (rope_grid - 1) / (width - 1)
    return positions


class VJEPA21Encoder(nn.Module):
    """``[B, 3, T, H, W]`` normalized video -> tokens ``[B, (T/tubelet) * (H/patch) * (W/patch), dim]``.

    ``T == 1`` takes the image path (``patch_embed_img``, ``img_mod_embed``; ``H/patch * W/patch``
    tokens), any other ``T`` (a multiple of the tubelet) the video path. Parameter names follow the
    released checkpoints.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.architecture != "vjepa2_1":
            raise ValueError(f"VJEPA21Encoder needs EncoderConfig.architecture 'vjepa2_1', got {config.architecture!r}")
        self.config = config
        self.level_blocks = VJEPA2_1_LEVEL_BLOCKS[config.depth]
        self.rope_grid = VJEPA2_1_ROPE_GRID[config.patch_size]
        self.patch_embed = PatchEmbed3D(config.dim, config.patch_size, config.tubelet_size)
        self.patch_embed_img = PatchEmbed3D(config.dim, config.patch_size, tubelet_size=1)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.num_heads, config.mlp_hidden_dim, qkv_bias=config.qkv_bias)
            for _ in range(config.depth)
        )
        self.norms_block = nn.ModuleList(nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS) for _ in self.level_blocks)
        self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, config.dim))

    def forward(self, video: Tensor) -> Tensor:
        """The encoder output: the last level's norm after the last block, ``[B, N, dim]``."""
        return self._encode(video, keep_levels=False)

    def levels(self, video: Tensor) -> Tensor:
        """The four per-level normed outputs concatenated on features, ``[B, N, 4 * dim]`` (shallow first)."""
        return self._encode(video, keep_levels=True)

    def _encode(self, video: Tensor, keep_levels: bool) -> Tensor:
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be [B, 3, T, H, W], got {tuple(video.shape)}")
        _, _, T, H, W = video.shape
        c = self.config
        if T == 1:
            x = self.patch_embed_img(video) + self.img_mod_embed  # [B, H' * W', dim]
            time_steps = 1
        else:
            x = self.patch_embed(video) + self.video_mod_embed  # [B, T' * H' * W', dim]
            time_steps = T // c.tubelet_size
        positions = interpolated_positions(time_steps, H // c.patch_size, W // c.patch_size, self.rope_grid, x.device)
        cos, sin = rope_cos_sin(positions, c.dim // c.num_heads, interleave=True)  # [N, head_dim] each
        levels = []
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin)
            if keep_levels and i in self.level_blocks:
                levels.append(self.norms_block[self.level_blocks.index(i)](x))
        if keep_levels:
            return torch.cat(levels, dim=-1)  # [B, N, 4 * dim]
        return self.norms_block[-1](x)


def vjepa2_1_encoder_state_dict(data: dict[str, Any], where: str) -> tuple[str, dict[str, Tensor]]:
    """The encoder section of a released 2.1 file (first of :data:`VJEPA2_1_ENCODER_SECTIONS`), prefixes stripped.

    Returns ``(section name, state dict)``. Raises :class:`CheckpointError` if there is none.
    """
    for section in VJEPA2_1_ENCODER_SECTIONS:
        if isinstance(data.get(section), dict):
            return section, strip_prefixes(data[section])
    raise CheckpointError(
        f"{where}: no encoder section (expected one of {VJEPA2_1_ENCODER_SECTIONS}, has {sorted(data)})"
    )


def vjepa2_1_config_from_state_dict(
    state_dict: dict[str, Tensor], img_size: int = 384, num_heads: int | None = None, where: str = "encoder"
) -> EncoderConfig:
    """The :class:`EncoderConfig` of a 2.1 encoder from its weight shapes.

    dim, patch and tubelet come from ``patch_embed.proj.weight`` ``[dim, 3, tubelet, patch, patch]``, depth
    from ``blocks.{i}``, the MLP width from ``blocks.0.mlp.fc1.weight``; the head count (not in the
    weights) from ``num_heads`` or else the released preset of the same sizes.

    Raises:
        CheckpointError: a weight needed is missing, or no preset fits and ``num_heads`` is not given.
    """
    dim, depth, hidden, patch, tubelet = encoder_weight_sizes(state_dict, where, "V-JEPA 2.1")
    ratio = hidden / dim if int(dim * (hidden / dim)) == hidden else (hidden + 0.5) / dim  # int(dim * ratio) == hidden
    sizes = dict(img_size=img_size, patch_size=patch, tubelet_size=tubelet, dim=dim, depth=depth, mlp_ratio=ratio)
    if num_heads is None:
        for preset in VJEPA2_1_ENCODER_PRESETS.values():
            if (preset["dim"], preset["depth"], int(dim * preset["mlp_ratio"])) == (dim, depth, hidden):
                num_heads = preset["num_heads"]
                sizes["mlp_ratio"] = preset["mlp_ratio"]
                break
        else:
            raise CheckpointError(
                f"{where}: a V-JEPA 2.1 encoder of dim {dim}, depth {depth}, MLP width {hidden} matches no released "
                f"size ({sorted(VJEPA2_1_ENCODER_PRESETS)}); pass its head count (`--encoder_num_heads N`)"
            )
    try:
        return EncoderConfig(num_heads=num_heads, architecture="vjepa2_1", **sizes)
    except ValueError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def load_vjepa2_1_encoder(
    data: dict[str, Any], path: str | Path, img_size: int = 384, num_heads: int | None = None
) -> tuple[EncoderConfig, VJEPA21Encoder]:
    """The encoder of a released 2.1 file already read (``read_checkpoint``), strictly loaded, eval mode, on CPU.

    Raises:
        CheckpointError: no encoder section, sizes that fit no preset without ``num_heads``, or a weight
            missing, unexpected or mis-shaped (all listed).
    """
    section, state_dict = vjepa2_1_encoder_state_dict(data, where=str(path))
    where = f"{path} [{section}]"
    config = vjepa2_1_config_from_state_dict(state_dict, img_size=img_size, num_heads=num_heads, where=where)
    encoder = VJEPA21Encoder(config)
    load_state_dict_strict(encoder, state_dict, where=where)
    return config, encoder.eval()
