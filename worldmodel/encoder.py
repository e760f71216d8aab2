"""The V-JEPA 2 video encoder: a ViT over 3-D tubelet patches with 3-D rotary positions."""

from __future__ import annotations

from torch import Tensor, nn

from .config import EncoderConfig
from .layers import LAYER_NORM_EPS, Block, PatchEmbed3D, grid_positions, rope_cos_sin
from .vjepa2_1_encoder import VJEPA21Encoder


class VideoEncoder(nn.Module):
    """``[B, 3, T, H, W]`` normalized video -> tokens ``[B, (T/2) * (H/16) * (W/16), dim]``.

    Parameter names follow the released checkpoints (``patch_embed.proj``, ``blocks.{i}``, ``norm``).
    Any H, W that tile into patches work: positions are rotary, nothing is tied to ``img_size``.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.architecture != "vjepa2":
            raise ValueError(
                f"VideoEncoder is the V-JEPA 2 encoder; got architecture {config.architecture!r} (use build_encoder)"
            )
        self.config = config
        self.patch_embed = PatchEmbed3D(config.dim, config.patch_size, config.tubelet_size)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.num_heads, config.mlp_hidden_dim, qkv_bias=config.qkv_bias)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(self, video: Tensor) -> Tensor:
        _, _, T, H, W = video.shape
        x = self.patch_embed(video)  # [B, N, dim]
        c = self.config
        positions = grid_positions(T // c.tubelet_size, H // c.patch_size, W // c.patch_size, device=x.device)
        cos, sin = rope_cos_sin(positions, c.dim // c.num_heads)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.norm(x)


def build_encoder(config: EncoderConfig) -> nn.Module:
    """The encoder module of ``config.architecture``: :class:`VideoEncoder` or ``VJEPA21Encoder``."""
    if config.architecture == "vjepa2_1":
        return VJEPA21Encoder(config)
    return VideoEncoder(config)


def init_vit_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal linear/conv weights, zero biases, unit LayerNorms (the V-JEPA init)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
