"""Training clips from LeRobot datasets: episodes sampled on the training clock, cached, read as clips.

The path training uses (LeRobotEpisodes -> feature cache -> ClipReader) must give the reference's
V-JEPA 2-AC clips: on real DROID data (15 fps) every 4th frame, one state per 2-frame tubelet and
the actions between them (tests/fixtures/lerobot_droid_mini/truth.npz), and on 4 fps data every frame.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_mpc_dataset import LeRobotDatasetWriter
from jepa_mpc_foundation.pose import actions_from_states
from worldmodel.training.clips import ClipReader, clip_span, clip_starts
from worldmodel.training.encoder_checkpoint import file_digest, load_encoder
from worldmodel.training.episodes import LeRobotEpisodes
from worldmodel.training.feature_cache import FeatureCache, build_feature_cache
from worldmodel.training.synthetic import moving_square_episodes

DROID = Path(__file__).parent / "fixtures" / "lerobot_droid_mini"
EXTERIOR = "observation.images.exterior_1_left"
CLIP_STEPS, TUBELET = 4, 2  # the reference's 8-frame clip: 4 states, 3 actions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def cache_of(source: LeRobotEpisodes, encoder_path: Path, cache_root: Path) -> FeatureCache:
    _, encoder = load_encoder(encoder_path)
    return build_feature_cache(
        source, encoder, file_digest(encoder_path), cache_root, min_length=clip_span(CLIP_STEPS, TUBELET)
    )


@pytest.mark.skipif(not (DROID / "dataset").is_dir(), reason="DROID LeRobot fixture not copied")
def test_droid_clips_are_the_reference_clips(tmp_path, encoder_path):
    source = LeRobotEpisodes(DROID / "dataset", camera=EXTERIOR, sample_fps=4)
    truth = np.load(DROID / "truth.npz")
    assert source.frame_step == 4  # ceil(15 / 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = cache_of(source, encoder_path, tmp_path / "cache")
    # Episode 2 has 10 source frames = 3 sampled, fewer than one clip's 7: skipped and counted, never padded.
    assert [s.name for s in cache.skipped] == [
        f"2 of {DROID / 'dataset'}"
    ] and "shorter than one clip" in cache.skipped[0].reason
    assert any("shorter than one clip" in str(w.message) for w in caught)
    # 40 and 33 source frames = 10 and 9 sampled frames: 10 - 7 + 1 and 9 - 7 + 1 clip starts.
    assert len(clip_starts(cache, [0, 1], clip_span(CLIP_STEPS, TUBELET))) == 4 + 3

    reader = ClipReader(cache, CLIP_STEPS, TUBELET)
    for e in (0, 1):
        _, states, actions = reader.read(
            np.array([cache.episodes[e]["offset"]]), torch.device("cpu")
        )  # the clip from frame 0
        np.testing.assert_allclose(states[0].numpy(), truth[f"ep{e}_clip8_states"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(actions[0].numpy(), truth[f"ep{e}_clip8_actions"], atol=1e-5, rtol=0)
        # The clip's 8 sampled frames are the reference's source frames (an off-by-one would lower PSNR).
        frames = source.load(e).frames[: CLIP_STEPS * TUBELET]
        assert frames.shape == (8, 180, 320, 3) and frames.dtype == np.uint8
        assert psnr(frames, truth[f"ep{e}_exterior"][truth[f"ep{e}_clip8_frame_indices"]]) > 30.0


def test_clips_at_4fps_take_every_frame(tmp_path, encoder_path):
    episodes = moving_square_episodes(2, 12, img_size=32, seed=5)
    writer = LeRobotDatasetWriter(
        tmp_path / "sim", fps=4, cameras={"exterior_image_1_left": (32, 32)}, record_joints=False
    )
    for e, episode in enumerate(episodes):
        writer.write_episode(
            e, {"exterior_image_1_left": episode.frames}, episode.states, np.zeros_like(episode.states), "push", True, e
        )
    writer.finalize()
    source = LeRobotEpisodes(tmp_path / "sim", camera="exterior_image_1_left", sample_fps=4)
    assert source.frame_step == 1 and source.load(0).length == 12
    cache = cache_of(source, encoder_path, tmp_path / "cache")
    _, states, actions = ClipReader(cache, CLIP_STEPS, TUBELET).read(
        np.array([cache.episodes[0]["offset"] + 2]), torch.device("cpu")
    )
    expected = episodes[0].states[[2, 4, 6, 8]]  # the clip from frame 2: one state per tubelet
    np.testing.assert_allclose(states[0].numpy(), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        actions[0].numpy(), actions_from_states(torch.from_numpy(expected).double()).numpy(), atol=1e-6, rtol=0
    )


def test_features_encoded_in_bf16_on_a_gpu_are_cached_apart_from_float32_ones():
    """A cache built on CUDA (bf16 autocast) must not be read by a CPU run (float32), nor the reverse."""
    from worldmodel.config import EncoderConfig
    from worldmodel.precision import compute_dtype
    from worldmodel.training.feature_cache import cache_key

    cpu, gpu = compute_dtype(torch.device("cpu")), compute_dtype(torch.device("cuda"))
    assert (cpu, gpu) == (torch.float32, torch.bfloat16)
    assert compute_dtype(torch.device("cuda"), enabled=False) == torch.float32
    config = EncoderConfig()
    assert cache_key("digest", config, "data", cpu) != cache_key("digest", config, "data", gpu)
    assert cache_key("digest", config, "data", cpu) == cache_key("digest", config, "data", torch.float32)
