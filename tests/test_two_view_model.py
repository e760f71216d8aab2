"""The wrist camera as a second view: tokens of both views per step, from training data to planning."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model_helpers import tiny_config
from worldmodel import build_world_model, load_world_model
from worldmodel.preprocess import split_views, tile_views
from worldmodel.training.config import DataConfig, OptimConfig, PredictorRecipe, RunConfig, TrainPredictorConfig
from worldmodel.training.episodes import LeRobotEpisodes
from worldmodel.training.synthetic import moving_square_episodes
from worldmodel.training.train_predictor import train_predictor
from worldmodel.world_model import encode_each_frame, normalize_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def two_view_model():
    return build_world_model(tiny_config(views=2), seed=0).eval()


def random_frames(seed: int, count: int = 3, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_each_view_is_encoded_alone_and_the_wrist_tokens_follow_the_exterior(two_view_model):
    exterior, wrist = random_frames(0), random_frames(1)
    single = build_world_model(tiny_config(views=1), seed=0).eval()
    single.encoder.load_state_dict(two_view_model.encoder.state_dict())
    tokens = two_view_model.encode_frames(tile_views([exterior, wrist]))  # [1, 3, 2 * 4, 48]
    assert tokens.shape == (1, 3, 8, 48)
    torch.testing.assert_close(tokens[:, :, :4], single.encode_frames(exterior))
    torch.testing.assert_close(tokens[:, :, 4:], single.encode_frames(wrist))
    # training encodes (feature cache, end to end) through the same function, in other batch sizes
    with torch.no_grad():
        cached = normalize_tokens(
            encode_each_frame(two_view_model.encoder, tile_views([exterior, wrist]), views=2, batch_size=2)
        )
    torch.testing.assert_close(cached, tokens[0], atol=1e-5, rtol=0)


def test_the_predictor_sees_the_wrist_below_the_exterior_and_mixes_the_views(two_view_model):
    predictor = two_view_model.predictor
    positions = predictor.token_positions(0, 1, torch.device("cpu"))  # [2 + 8, 3]
    grid = predictor.config.grid_size
    assert positions[2:6, 1].tolist() == [0, 0, 1, 1] and positions[6:, 1].tolist() == [2, 2, 3, 3]
    assert positions[2:, 2].tolist() == [0, 1] * 4 and grid == 2
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(1, 1, 8, 48, generator=generator)
    actions, states = torch.randn(1, 1, 7, generator=generator), torch.randn(1, 1, 7, generator=generator)
    with torch.no_grad():
        before = predictor(tokens, actions, states)
        changed = tokens.clone()
        changed[:, :, 4:] += 1.0  # the wrist view only
        after = predictor(changed, actions, states)
    assert (after[:, :, :4] - before[:, :, :4]).abs().max() > 1e-3  # the exterior's prediction sees the wrist


def test_two_view_rollouts_with_and_without_the_cache_agree(two_view_model):
    context = two_view_model.encode_frames(tile_views([random_frames(2, count=2), random_frames(3, count=2)]))
    states = torch.zeros(1, 2, 7)
    states[0, 1, 0] = 0.02
    actions = 0.05 * torch.randn(4, 3, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cached = two_view_model.rollout(context, states, actions)
    assert cached.shape == (4, 3, 8, 48)
    torch.testing.assert_close(cached, two_view_model.rollout_uncached(context, states, actions), atol=1e-4, rtol=1e-4)


def test_frames_that_cannot_hold_the_views_are_refused_naming_the_layout(two_view_model):
    with pytest.raises(ValueError, match=r"width 33 px cannot hold 2 views side by side.*tile_views"):
        split_views(torch.zeros(1, 32, 33, 3, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match=r"camera views must have one shape"):
        tile_views([random_frames(0), random_frames(0, size=16)])


def test_trains_on_both_cameras_of_a_lerobot_dataset_and_plans_from_both(tmp_path, encoder_path):
    from jepa_mpc_dataset import LeRobotDatasetWriter

    cameras = {"exterior_image_1_left": (32, 32), "wrist_image_left": (32, 32)}
    writer = LeRobotDatasetWriter(tmp_path / "sim", fps=4, cameras=cameras, record_joints=False)
    episodes = moving_square_episodes(4, 12, img_size=32, seed=3)
    for e, episode in enumerate(episodes):
        frames = {"exterior_image_1_left": episode.frames, "wrist_image_left": episode.frames[:, ::-1].copy()}
        writer.write_episode(e, frames, episode.states, np.zeros_like(episode.states), "push", True, e)
    writer.finalize()
    source = LeRobotEpisodes(
        tmp_path / "sim", camera="exterior_image_1_left", sample_fps=4, wrist_camera="wrist_image_left"
    )
    single = LeRobotEpisodes(tmp_path / "sim", camera="exterior_image_1_left", sample_fps=4)
    tiled, exterior = source.load(0).frames, single.load(0).frames
    assert tiled.shape == (12, 32, 64, 3) and np.array_equal(tiled[:, :, :32], exterior)
    assert np.abs(tiled[:, :, 32:].astype(int) - exterior).max() > 30  # the wrist video, not the exterior again
    assert source.fingerprint() != single.fingerprint()

    config = TrainPredictorConfig(
        data=DataConfig(cache_dir=str(tmp_path / "cache"), val_fraction=0.25, wrist_camera="wrist_image_left"),
        predictor=PredictorRecipe(dim=48, depth=2, num_heads=2),
        optim=OptimConfig(lr=1e-2, start_lr=1e-3, warmup_steps=1),
        run=RunConfig(steps=3, batch_size=4, val_every=0, save_every=0),
    )
    summary = train_predictor(config, source, encoder_path, tmp_path / "run")
    assert summary.validation is not None and np.isfinite(summary.validation.loss)
    model = load_world_model(tmp_path / "run" / "model.pt", device="cpu")
    assert model.config.predictor.views == 2
    assert model.encode_frames(tiled[:2]).shape == (1, 2, 8, 32)
    # a single-view run on the same data and encoder has its own cache entry and a single-view model
    single_run = train_predictor(
        replace(config, data=replace(config.data, wrist_camera="")), single, encoder_path, tmp_path / "one"
    )
    assert single_run.cache_folder != summary.cache_folder
    assert load_world_model(tmp_path / "one" / "model.pt").config.predictor.views == 1


def test_eval_gives_a_two_view_model_both_cameras():
    from jepa_mpc.evaluation.config import EvalConfig
    from jepa_mpc.evaluation.policies import make_policy
    from jepa_mpc.evaluation.runner import make_env_for_model, run_episode
    from jepa_mpc.model_settings import sim_for_planning
    from worldmodel.model_needs import ModelNeeds

    model = build_world_model(tiny_config(views=2), seed=0).eval()
    needs = ModelNeeds.of(model.config)
    config = EvalConfig.for_task("grasp", episodes=1, max_steps=2, sim=sim_for_planning(needs))
    config = replace(config, planner=replace(config.planner, samples=8, topk=4, iterations=1))
    env = make_env_for_model(config, needs)
    try:
        policy = make_policy("world_model", config, model)
        result, frames = run_episode(env, policy, 1000, config, record=True)
    finally:
        env.close()
    assert policy.views == 2 and result.steps == 2 and len(result.energies) == 2
    goals = policy.goals.images  # [K + 1, 32, 64, 3]: each sub-goal's exterior | wrist view, at the model's size
    assert goals.shape == (4, 32, 64, 3)
    assert np.abs(goals[:, :, :32].astype(int) - goals[:, :, 32:]).mean() > 10
    single = make_policy("oracle", config, model)
    assert single.views == 1
