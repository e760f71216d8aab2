"""Building blocks of the V-JEPA 2 encoder and predictor, one small module each."""

from .attention import KVCacheLayer, RoPEAttention
from .block import LAYER_NORM_EPS, Block
from .mlp import Mlp
from .patch_embed import PatchEmbed3D
from .rope import apply_rope, grid_positions, rope_cos_sin, rope_part_dim

__all__ = [
    "Block",
    "KVCacheLayer",
    "LAYER_NORM_EPS",
    "Mlp",
    "PatchEmbed3D",
    "RoPEAttention",
    "apply_rope",
    "grid_positions",
    "rope_cos_sin",
    "rope_part_dim",
]
