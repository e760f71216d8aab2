"""V-JEPA 2 world model: video encoder, action-conditioned predictor, checkpoints, training.

Checkpoint-compatible with the released V-JEPA 2 files; see :mod:`worldmodel.checkpoint`.
"""
from .checkpoint import CheckpointError, save_world_model_checkpoint
from .config import ENCODER_PRESETS, EncoderConfig, PredictorConfig, WorldModelConfig, encoder_preset
from .encoder import VideoEncoder, count_parameters
from .predictor import ActionConditionedPredictor, PredictorCache
from .world_model import WorldModel, build_world_model, load_world_model, normalize_tokens

__all__ = [
    "ActionConditionedPredictor",
    "CheckpointError",
    "ENCODER_PRESETS",
    "EncoderConfig",
    "PredictorCache",
    "PredictorConfig",
    "VideoEncoder",
    "WorldModel",
    "WorldModelConfig",
    "build_world_model",
    "count_parameters",
    "encoder_preset",
    "load_world_model",
    "normalize_tokens",
    "save_world_model_checkpoint",
]
