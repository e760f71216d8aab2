"""Parity with the reference V-JEPA 2 implementation on its own tiny checkpoint (max abs error 1e-4)."""

from __future__ import annotations

import pytest
import torch

from jepa_mpc_foundation.pose import action_between, apply_action
from worldmodel import load_world_model
from worldmodel.predictor import block_causal_mask
from worldmodel.preprocess import frames_to_clip

TOL = 1e-4


@pytest.fixture(scope="module")
def reference_io(fixtures_dir):
    return torch.load(fixtures_dir / "vjepa2_ac_tiny_io.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference_model(fixtures_dir, tiny_reference_config):
    return load_world_model(fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt", device="cpu", config=tiny_reference_config)


def max_err(a, b) -> float:
    return (a - b).abs().max().item()


def test_preprocessing_matches_reference(reference_io):
    clip = frames_to_clip(reference_io["frames_uint8"], img_size=64)
    assert clip.shape == reference_io["clip"].shape
    assert max_err(clip, reference_io["clip"]) < TOL


def test_encoder_tokens_match_reference(reference_model, reference_io):
    clip = reference_io["clip"][0]  # [3, T, 64, 64]
    tubelets = clip.permute(1, 0, 2, 3).unsqueeze(2).expand(-1, -1, 2, -1, -1)  # [T, 3, 2, 64, 64]
    with torch.no_grad():
        tokens = reference_model.encoder(tubelets).reshape(1, -1, 96)
    assert max_err(tokens, reference_io["encoder_tokens"]) < TOL


def test_encode_frames_matches_normalized_reference_tokens(reference_model, reference_io):
    tokens = reference_model.encode_frames(reference_io["frames_uint8"])
    assert tokens.shape == (1, 3, 16, 96)
    assert max_err(tokens.reshape(1, -1, 96), reference_io["encoder_tokens_ln"]) < TOL


def test_predictor_output_matches_reference(reference_model, reference_io):
    tokens = reference_io["encoder_tokens_ln"].view(1, 3, 16, 96)
    with torch.no_grad():
        out = reference_model.predictor(tokens, reference_io["actions"], reference_io["states"])
    assert max_err(out.reshape(1, -1, 96), reference_io["predictor_out"]) < TOL


def test_block_causal_mask_matches_reference(reference_model, reference_io):
    step = reference_model.predictor.token_positions(0, 4, torch.device("cpu"))[:, 0]
    assert torch.equal(block_causal_mask(step, step), reference_io["attn_mask"])


def test_pose_convention_matches_reference(reference_io):
    states, actions = reference_io["states"], reference_io["actions"]
    moved = apply_action(states[:, :1], actions[:, :1])
    assert max_err(moved, reference_io["next_pose_from_first_action"]) < 1e-5
    # the recorded actions are the deltas between consecutive states (rotations composed)
    assert max_err(action_between(states[:, :-1], states[:, 1:]), actions[:, :-1]) < 1e-5
