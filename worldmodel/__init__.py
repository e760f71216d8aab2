"""V-JEPA 2 world model: video encoder, action-conditioned predictor, checkpoints, training.

Checkpoint-compatible with the released V-JEPA 2 files (:mod:`worldmodel.checkpoint`) and V-JEPA 2.1
encoders (:mod:`worldmodel.vjepa2_1_encoder`).
"""

from .checkpoint import CheckpointError, save_world_model_checkpoint
from .config import (
    ENCODER_PRESETS,
    VJEPA2_1_ENCODER_PRESETS,
    EncoderConfig,
    PredictorConfig,
    TokenStatisticsConfig,
    WorldModelConfig,
    encoder_preset,
    vjepa2_1_encoder_preset,
)
from .encoder import VideoEncoder, build_encoder, count_parameters
from .predictor import ActionConditionedPredictor, PredictorCache
from .token_statistics import TokenStatistics, fit_token_statistics
from .vjepa2_1_encoder import VJEPA21Encoder
from .world_model import WorldModel, build_world_model, load_world_model, normalize_tokens

__all__ = [
    "ActionConditionedPredictor",
    "CheckpointError",
    "ENCODER_PRESETS",
    "EncoderConfig",
    "PredictorCache",
    "PredictorConfig",
    "TokenStatistics",
    "TokenStatisticsConfig",
    "VJEPA21Encoder",
    "VJEPA2_1_ENCODER_PRESETS",
    "VideoEncoder",
    "WorldModel",
    "WorldModelConfig",
    "build_encoder",
    "build_world_model",
    "count_parameters",
    "encoder_preset",
    "fit_token_statistics",
    "load_world_model",
    "normalize_tokens",
    "save_world_model_checkpoint",
    "vjepa2_1_encoder_preset",
]
