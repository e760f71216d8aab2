"""Behaviour of the world model: sizes of the released presets, causality, cached rollouts, pose math."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_mpc_foundation.pose import action_between, apply_action, euler_xyz_to_matrix, matrix_to_euler_xyz
from worldmodel import (
    ActionConditionedPredictor,
    PredictorConfig,
    VideoEncoder,
    count_parameters,
    encoder_preset,
)


@pytest.mark.parametrize(
    "preset, expected",
    [("vit_large", 303_885_312), ("vit_huge", 631_648_000), ("vit_giant", 1_012_173_952)],
)
def test_encoder_parameter_counts_equal_reference(preset, expected):
    with torch.device("meta"):
        assert count_parameters(VideoEncoder(encoder_preset(preset))) == expected


def test_released_predictor_parameter_count():
    with torch.device("meta"):
        assert count_parameters(ActionConditionedPredictor(PredictorConfig())) == 305_220_992


def _random_inputs(model, T=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    N, D = model.config.predictor.tokens_per_frame, model.config.encoder.dim
    return (
        torch.randn(1, T, N, D, generator=g),
        torch.randn(1, T, 7, generator=g) * 0.05,
        torch.randn(1, T, 7, generator=g),
    )


@pytest.mark.parametrize("changed", ["frame", "action", "state"])
def test_predictor_is_causal_in_time(tiny_world_model, changed):
    tokens, actions, states = _random_inputs(tiny_world_model)
    predictor = tiny_world_model.predictor
    with torch.no_grad():
        before = predictor(tokens, actions, states)
        tokens2, actions2, states2 = tokens.clone(), actions.clone(), states.clone()
        {"frame": tokens2, "action": actions2, "state": states2}[changed][:, 2] += 1.0
        after = predictor(tokens2, actions2, states2)
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6), "steps <= t changed when step t+1 did"
    assert not torch.allclose(before[:, 2], after[:, 2], atol=1e-4), "the changed step itself must change"


def test_cached_and_uncached_rollouts_agree(tiny_world_model):
    tokens, _, states = _random_inputs(tiny_world_model, T=2, seed=1)
    tokens = torch.nn.functional.layer_norm(tokens, tokens.shape[-1:])
    g = torch.Generator().manual_seed(2)
    actions = torch.randn(5, 3, 7, generator=g) * 0.05
    cached = tiny_world_model.rollout(tokens, states, actions)
    uncached = tiny_world_model.rollout_uncached(tokens, states, actions)
    assert cached.shape == (5, 3, tiny_world_model.config.predictor.tokens_per_frame, 48)
    assert (cached - uncached).abs().max().item() < 1e-4


def test_rollout_samples_are_independent(tiny_world_model):
    tokens, _, states = _random_inputs(tiny_world_model, T=1, seed=3)
    actions = torch.randn(4, 2, 7, generator=torch.Generator().manual_seed(4)) * 0.05
    together = tiny_world_model.rollout(tokens, states, actions)
    alone = tiny_world_model.rollout(tokens, states, actions[2:3])
    assert (together[2:3] - alone).abs().max().item() < 1e-5


def test_rollout_rejects_wrong_shapes(tiny_world_model):
    tokens, _, states = _random_inputs(tiny_world_model, T=1)
    with pytest.raises(ValueError, match="actions must be"):
        tiny_world_model.rollout(tokens, states, torch.zeros(4, 2, 6))
    with pytest.raises(ValueError, match="context_tokens"):
        tiny_world_model.rollout(tokens[:, :, :2], states, torch.zeros(4, 2, 7))


def test_encode_frames_accepts_any_size_and_rejects_bad_frames(tiny_world_model):
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 255, size=(2, 90, 160, 3), dtype=np.uint8)
    tokens = tiny_world_model.encode_frames(frames)
    assert tokens.shape == (1, 2, 4, 48)
    # layer-normed over features
    assert torch.allclose(tokens.mean(-1), torch.zeros(1, 2, 4), atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        tiny_world_model.encode_frames(frames.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        tiny_world_model.encode_frames(frames[..., :2])


def test_euler_round_trip_and_roll_across_pi():
    g = torch.Generator().manual_seed(0)
    euler = (torch.rand(100, 3, generator=g) - 0.5) * torch.tensor([2 * math.pi, math.pi * 0.98, 2 * math.pi])
    assert torch.allclose(matrix_to_euler_xyz(euler_xyz_to_matrix(euler)), euler, atol=1e-5)
    # gripper pointing down: roll just below +pi -> just above -pi is a small rotation, not 2 pi
    a = torch.tensor([0.5, 0.0, 0.2, math.pi - 0.01, 0.0, 0.0, 0.0])
    b = torch.tensor([0.5, 0.0, 0.2, -math.pi + 0.01, 0.0, 0.0, 0.0])
    delta = action_between(a, b)
    assert abs(delta[3].item() - 0.02) < 1e-5
    assert torch.allclose(apply_action(a, delta)[:6], b[:6], atol=1e-5)


def test_gripper_is_clipped():
    state = torch.tensor([0, 0, 0, 0, 0, 0, 0.9])
    assert apply_action(state, torch.tensor([0, 0, 0, 0, 0, 0, 0.5]))[6].item() == 1.0


def test_configs_reject_bad_sizes_naming_the_field():
    from worldmodel import EncoderConfig, WorldModelConfig

    with pytest.raises(ValueError, match="EncoderConfig.dim 100 is not divisible by num_heads 3"):
        EncoderConfig(dim=100, num_heads=3)
    with pytest.raises(ValueError, match="PredictorConfig.depth must be positive"):
        PredictorConfig(depth=0)
    with pytest.raises(ValueError, match="predictor.encoder_dim 1408 != encoder.dim 96"):
        WorldModelConfig(encoder=EncoderConfig(dim=96, depth=2, num_heads=2))


@pytest.mark.parametrize("method", ["rollout", "rollout_uncached"])
def test_rollout_moves_poses_in_float32_under_bf16_autocast(tiny_world_model, monkeypatch, method):
    """On CUDA the rollout runs under bf16 autocast, which would round apply_action's rotation matmuls
    to bf16 (and the error compounds over the horizon); the states it feeds the predictor must be the
    float32 ones. CPU bf16 autocast stands in for CUDA's here."""
    import worldmodel.world_model as world_model_module

    monkeypatch.setattr(
        world_model_module, "autocast", lambda device, enabled=True: torch.autocast("cpu", dtype=torch.bfloat16)
    )
    tokens, _, _ = _random_inputs(tiny_world_model, T=1, seed=5)
    states = torch.tensor([[[0.4, -0.1, 0.3, 3.1, 0.2, -0.7, 0.5]]])
    g = torch.Generator().manual_seed(6)
    actions = torch.randn(3, 4, 7, generator=g) * torch.tensor([0.05, 0.05, 0.05, 0.3, 0.3, 0.3, 0.2])
    expected = [states.expand(3, -1, -1)]
    for h in range(3):
        expected.append(apply_action(expected[-1], actions[:, h : h + 1]))
    seen = []
    handle = tiny_world_model.predictor.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    try:
        with torch.no_grad():
            getattr(tiny_world_model, method)(tokens, states, actions)
    finally:
        handle.remove()
    if method == "rollout":
        assert all(torch.equal(s, e) for s, e in zip(seen, expected, strict=True))
    else:
        assert torch.equal(seen[-1], torch.cat(expected, dim=1))
