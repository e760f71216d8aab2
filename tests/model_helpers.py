"""Tiny random-weight world models for the tests: 32 px images cut into 16 px patches (4 tokens per frame)."""

from __future__ import annotations

from pathlib import Path

import torch

from worldmodel import EncoderConfig, PredictorConfig, WorldModelConfig, build_world_model, save_world_model_checkpoint
from worldmodel.config import LanguageGoalConfig
from worldmodel.language_goal import LanguageGoalPredictor

WORDS = ("touch", "the", "red", "green", "cube")
"""The tiny language-goal predictor's vocabulary; "red" and "green" are its object words."""


def tiny_config(dim: int = 48, depth: int = 2, views: int = 1) -> WorldModelConfig:
    """Encoder and predictor of ``dim`` features, ``depth`` blocks and 2 heads; the default is conftest's
    ``tiny_world_model``, ``dim`` 32 and ``depth`` 1 the cheapest model an evaluation plans with."""
    return WorldModelConfig(
        encoder=EncoderConfig(img_size=32, dim=dim, depth=depth, num_heads=2),
        predictor=PredictorConfig(img_size=32, encoder_dim=dim, dim=dim, depth=depth, num_heads=2, views=views),
    )


def tiny_language_goal(config: WorldModelConfig) -> LanguageGoalPredictor:
    """A random-weight language-goal predictor for a model of ``config``, reading :data:`WORDS`.

    Its match threshold is 0: the match head never refuses, so only the word rule does (an instruction naming
    neither "red" nor "green" is refused; "touch the red cube" is read)."""
    language = LanguageGoalConfig(
        encoder_dim=config.encoder.dim,
        tokens_per_frame=config.predictor.tokens_per_frame,
        vocabulary=WORDS,
        object_words=("red", "green"),
        width=32,
        depth=1,
        num_heads=2,
        match_threshold=0.0,
    )
    with torch.random.fork_rng():  # the same weights every time, the tests' random state untouched
        torch.manual_seed(0)
        return LanguageGoalPredictor(language).eval()


def save_tiny_model(path: Path, dim: int = 48, depth: int = 2, views: int = 1, language_goal: bool = False) -> Path:
    """The world model of :func:`tiny_config` built with seed 0, saved as a checkpoint file at ``path`` (with
    :func:`tiny_language_goal`'s predictor when ``language_goal``)."""
    model = build_world_model(tiny_config(dim, depth, views), seed=0)
    reader = tiny_language_goal(model.config) if language_goal else None
    save_world_model_checkpoint(path, model.config, model.encoder, model.predictor, language_goal=reader)
    return path
