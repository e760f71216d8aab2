"""Shared test set-up: headless rendering, fixture paths, tiny random models."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import pytest  # noqa: E402
import torch  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: with two shared cores, more threads stall each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_reference_config():
    """The sizes of the reference fixture checkpoint (64 px, dim 96, depth 2, 2 heads)."""
    from worldmodel import EncoderConfig, PredictorConfig, WorldModelConfig

    return WorldModelConfig(
        encoder=EncoderConfig(img_size=64, dim=96, depth=2, num_heads=2),
        predictor=PredictorConfig(img_size=64, encoder_dim=96, dim=96, depth=2, num_heads=2),
    )


@pytest.fixture(scope="session")
def tiny_world_model():
    """A random-weight world model small enough for behaviour tests (32 px, 4 tokens per frame)."""
    from model_helpers import tiny_config
    from worldmodel import build_world_model

    return build_world_model(tiny_config(), seed=0).eval()


@pytest.fixture(scope="session")
def encoder_path(tmp_path_factory) -> Path:
    """A random-weight tiny encoder checkpoint for training: 32 px, patch 16 (4 tokens per frame), dim 32, one block."""
    from worldmodel.config import EncoderConfig
    from worldmodel.encoder import VideoEncoder, init_vit_weights
    from worldmodel.training.encoder_checkpoint import save_encoder_checkpoint

    torch.manual_seed(0)
    config = EncoderConfig(img_size=32, patch_size=16, dim=32, depth=1, num_heads=2)
    encoder = VideoEncoder(config)
    init_vit_weights(encoder)
    path = tmp_path_factory.mktemp("encoder") / "encoder.pt"
    save_encoder_checkpoint(path, config, encoder)
    return path


@pytest.fixture(scope="session")
def ros_domain() -> int:
    """An isolated DDS domain for this test session (and pytest-xdist worker), discovery limited to this machine."""
    from process_helpers import random_ros_domain

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # Jazzy and later
    os.environ["ROS_LOCALHOST_ONLY"] = "1"  # older distributions
    return random_ros_domain()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """The ``tiny_world_model`` saved as a checkpoint file, for the ROS planner node and the commands."""
    from model_helpers import save_tiny_model

    return str(save_tiny_model(tmp_path_factory.mktemp("ros") / "tiny.pt"))


@pytest.fixture
def graph(ros_domain):
    """A ROS graph on loopback DDS (tests/ros_helpers.py); every node is shut down at the end of the test."""
    from ros_helpers import Graph

    graph = Graph(ros_domain)
    yield graph
    graph.close()
