"""Tiny random-weight world models for the tests: 32 px images cut into 16 px patches (4 tokens per frame)."""

from __future__ import annotations

from pathlib import Path

from worldmodel import EncoderConfig, PredictorConfig, WorldModelConfig, build_world_model, save_world_model_checkpoint


def tiny_config(dim: int = 48, depth: int = 2, views: int = 1) -> WorldModelConfig:
    """Encoder and predictor of ``dim`` features, ``depth`` blocks and 2 heads; the default is conftest's
    ``tiny_world_model``, ``dim`` 32 and ``depth`` 1 the cheapest model an evaluation plans with."""
    return WorldModelConfig(
        encoder=EncoderConfig(img_size=32, dim=dim, depth=depth, num_heads=2),
        predictor=PredictorConfig(img_size=32, encoder_dim=dim, dim=dim, depth=depth, num_heads=2, views=views),
    )


def save_tiny_model(path: Path, dim: int = 48, depth: int = 2, views: int = 1) -> Path:
    """The world model of :func:`tiny_config` built with seed 0, saved as a checkpoint file at ``path``."""
    model = build_world_model(tiny_config(dim, depth, views), seed=0)
    save_world_model_checkpoint(path, model.config, model.encoder, model.predictor)
    return path
