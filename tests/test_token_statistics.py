"""The out-of-distribution score (issue 29 part 6): the training frames' token statistics, their place in the
checkpoint, the planner's per-step score, ``jepa-mpc ood-stats`` and the evaluation's report of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from command_helpers import eval_argv, frozen_tokens_argv
from model_helpers import tiny_config
from planner import GoalImageMPC, PlannerConfig
from worldmodel import (
    TokenStatistics,
    TokenStatisticsConfig,
    build_world_model,
    fit_token_statistics,
    load_world_model,
    save_world_model_checkpoint,
)
from worldmodel.checkpoint import CheckpointError, save_token_statistics

TINY = tiny_config()  # conftest's tiny_world_model sizes: 32 px, 4 tokens of 48 features per frame
PLANNER = PlannerConfig(samples=8, iterations=1, topk=2)
STATE = np.array([0.5, 0.0, 0.2, np.pi, 0.0, 0.0, 0.0], dtype=np.float32)


def scene(rng: np.random.Generator, frames: int, table=(120, 110, 100)) -> np.ndarray:
    """uint8 ``[frames, 32, 32, 3]``: a table of colour ``table`` with a red cube at a random place, pixel noise."""
    images = np.empty((frames, 32, 32, 3))
    images[:] = table
    for image in images:
        x, y = rng.integers(4, 24, 2)
        image[y : y + 6, x : x + 6] = (200, 60, 40)
    return np.clip(images + rng.normal(0, 5, images.shape), 0, 255).astype(np.uint8)


def gaussian_tokens(rng: np.random.Generator, frames: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Layer-normed tokens ``[frames, N, D]`` drawn around ``mean`` / ``std`` ``[N, D]``."""
    tokens = torch.from_numpy(mean + std * rng.normal(size=(frames, *mean.shape)))
    return torch.nn.functional.layer_norm(tokens, (mean.shape[-1],)).float().numpy()


def test_the_score_is_about_one_on_training_like_tokens_and_high_on_shifted_ones():
    rng = np.random.default_rng(0)
    N, D = 8, 16  # two views of 4 tokens
    mean, std = rng.normal(size=(N, D)), rng.uniform(0.3, 1.0, (N, D))
    tokens = gaussian_tokens(rng, 3000, mean, std).astype(np.float16)  # as a feature cache stores them
    statistics = fit_token_statistics(tokens, np.arange(2000), np.arange(2000, 3000), views=2)
    config = statistics.config
    assert (config.training_frames, config.held_out_frames, config.views) == (2000, 1000, 2)
    assert config.threshold_quantile == 0.99
    assert 0.53 < config.threshold < 0.8  # the 99th percentile of held-out in-range scores (Gaussian features: 0.53)

    in_range = torch.from_numpy(gaussian_tokens(rng, 200, mean, std))
    scores = statistics(in_range)  # [200]
    assert scores.shape == (200,) and 0.45 < float(scores.mean()) < 0.62
    assert float((scores > statistics.threshold).float().mean()) < 0.05

    # The formula: the mean log(1 + z^2) of the layer-normed tokens' features (a Student-t's negative log-likelihood).
    frame = in_range[0]
    z2 = (frame - statistics.mean) ** 2 / (statistics.std**2 + config.variance_floor)
    assert torch.allclose(statistics(frame), torch.log1p(z2).mean(), rtol=1e-4)

    # The first view's tokens moved by two training stds along a random sign pattern: its view scores high.
    shifted = gaussian_tokens(
        rng, 200, mean + 2 * std * np.where(np.arange(N) < 4, 1.0, 0.0)[:, None] * rng.choice([-1.0, 1.0], (N, D)), std
    )
    shifted_scores = statistics(torch.from_numpy(shifted))
    assert bool((shifted_scores > statistics.threshold).all()), shifted_scores.min()
    per_view = statistics.view_scores(torch.from_numpy(shifted)).mean(0)  # [2]
    assert per_view[0] > 1.0 and 0.45 < per_view[1] < 0.62, per_view

    with pytest.raises(ValueError, match=r"tokens must be \[\.\.\., 8, 16\]"):
        statistics(torch.zeros(4, 16))
    with pytest.raises(ValueError, match="at least 2 training frames"):
        fit_token_statistics(tokens, np.arange(1), np.arange(2))
    with pytest.warns(UserWarning, match="no held-out frames"):
        fit_token_statistics(tokens[:100], np.arange(100), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="threshold_quantile"):
        TokenStatisticsConfig(threshold_quantile=1.0)


def test_statistics_round_trip_through_a_checkpoint_and_load_strictly(tmp_path):
    model = build_world_model(TINY, seed=0)
    rng = np.random.default_rng(1)
    tokens = gaussian_tokens(rng, 40, rng.normal(size=(4, 48)), np.ones((4, 48)))
    statistics = fit_token_statistics(tokens, np.arange(30), np.arange(30, 40))
    path = tmp_path / "model.pt"
    save_world_model_checkpoint(
        path, model.config, model.encoder, model.predictor, extra={"recipe": "test"}, token_statistics=statistics
    )
    loaded = load_world_model(path, device="cpu")
    assert loaded.token_statistics.config == statistics.config and loaded.ood_threshold == statistics.threshold
    for name, buffer in statistics.state_dict().items():
        assert torch.equal(loaded.token_statistics.state_dict()[name], buffer)

    # Added to a checkpoint without them: every other entry is written back as it was.
    plain = tmp_path / "plain.pt"
    save_world_model_checkpoint(plain, model.config, model.encoder, model.predictor, extra={"recipe": "test"})
    save_token_statistics(plain, statistics, tmp_path / "added.pt")
    before, after = torch.load(plain, weights_only=True), torch.load(tmp_path / "added.pt", weights_only=True)
    assert set(after) == set(before) | {"token_statistics", "token_statistics_config"}
    for key in ("encoder", "predictor"):
        assert before[key].keys() == after[key].keys()
        assert all(torch.equal(before[key][k], after[key][k]) for k in before[key])
    assert after["config"] == before["config"] and after["recipe"] == "test"
    assert load_world_model(tmp_path / "added.pt", device="cpu").ood_threshold == statistics.threshold

    # Strict: what does not fit is refused, naming the file, the entry and the fix.
    def broken(change) -> str:
        data = torch.load(path, weights_only=True)
        change(data)
        target = tmp_path / "broken.pt"
        torch.save(data, target)
        with pytest.raises(CheckpointError) as error:
            load_world_model(target, device="cpu")
        return str(error.value)

    assert "missing: std" in broken(lambda data: data["token_statistics"].pop("std"))
    assert "without its 'token_statistics' state dict" in broken(lambda data: data.pop("token_statistics"))
    assert "token_statistics_config" in broken(lambda data: data.pop("token_statistics_config"))
    assert "jepa-mpc ood-stats" in broken(lambda data: data["token_statistics_config"].update(encoder_dim=64))
    assert "NaN or inf" in broken(lambda data: data["token_statistics"]["mean"].fill_(float("nan")))


def test_the_planner_reports_each_steps_score_and_none_for_a_model_without_statistics(tiny_checkpoint):
    rng = np.random.default_rng(0)
    model = build_world_model(TINY, seed=0).eval()
    assert model.ood_score(torch.zeros(4, 48)) is None and model.ood_threshold is None
    frames = scene(rng, 60)
    tokens = model.encode_frames(frames)[0]  # [60, 4, 48]
    model.token_statistics = fit_token_statistics(tokens, np.arange(40), np.arange(40, 60))

    mpc = GoalImageMPC(model, PLANNER)
    assert mpc.ood_threshold == model.ood_threshold
    mpc.set_goal(scene(rng, 1)[0])
    like = mpc.act(scene(rng, 1)[0], STATE)
    unlike = mpc.act(scene(rng, 1, table=(60, 140, 200))[0], STATE)  # another table colour
    assert like.ood_score < mpc.ood_threshold < unlike.ood_score, (like.ood_score, mpc.ood_threshold, unlike.ood_score)
    assert unlike.ood_score == pytest.approx(
        model.ood_score(model.encode_frames(scene(rng, 1, (60, 140, 200)))[0, 0]), rel=0.1
    )
    gated = GoalImageMPC(
        model, PlannerConfig(samples=8, iterations=1, topk=2, surprise_gating=True, surprise_threshold=1e9)
    )
    gated.set_goal(scene(rng, 1)[0])
    steps = [gated.act(scene(rng, 1)[0], STATE) for _ in range(2)]
    assert not steps[1].replanned and steps[1].ood_score is not None  # a kept step is scored too

    # A checkpoint written before the statistics existed loads and plans as before: no score, no threshold.
    old = load_world_model(tiny_checkpoint, device="cpu")
    assert old.token_statistics is None
    mpc = GoalImageMPC(old, PLANNER)
    mpc.set_goal(scene(rng, 1)[0])
    step = mpc.act(scene(rng, 1)[0], STATE)
    assert step.ood_score is None and mpc.ood_threshold is None and np.isfinite(step.action).all()


def square_episodes(rng: np.random.Generator, episodes: int, length: int):
    from worldmodel.training.episodes import SampledEpisode

    states = np.repeat(STATE[None], length, axis=0)
    return [SampledEpisode(f"scene_{e}", scene(rng, length), states.copy()) for e in range(episodes)]


def test_ood_stats_command_adds_statistics_that_load_strictly_and_keeps_the_rest(tmp_path, tiny_checkpoint, capsys):
    from jepa_mpc.cli import main
    from worldmodel.training.episodes import save_episodes_npz

    data = tmp_path / "scenes.npz"
    save_episodes_npz(data, square_episodes(np.random.default_rng(0), 10, 8), fps=4)
    out = tmp_path / "model_ood.pt"
    argv = [*frozen_tokens_argv("ood-stats", data, tiny_checkpoint, out, tmp_path / "cache"), "--threads", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "out-of-distribution threshold" in printed and "episodes: 9 train, 1 held out" in printed, printed
    model = load_world_model(out, device="cpu")
    assert model.token_statistics.config.training_frames == 9 * 8 and model.token_statistics.config.held_out_frames == 8
    original, written = torch.load(tiny_checkpoint, weights_only=True), torch.load(out, weights_only=True)
    assert set(written) - set(original) == {"token_statistics", "token_statistics_config"}
    assert all(torch.equal(original["predictor"][k], written["predictor"][k]) for k in original["predictor"])

    assert main(argv) == 2 and "--overwrite true" in capsys.readouterr().err  # an existing --out is kept
    assert main([*argv, "--overwrite", "true"]) == 0
    # The checkpoint it wrote holds the same encoder: its tokens are read from the cache already built.
    again = frozen_tokens_argv("ood-stats", data, out, tmp_path / "again.pt", tmp_path / "cache")
    assert main([*again, "--threads", "1"]) == 0
    assert len(list((tmp_path / "cache").iterdir())) == 1
    capsys.readouterr()
    code = main(["ood-stats", "--data", str(data), "--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "wrist_camera" in capsys.readouterr().err  # a two-view data setting for a one-view model


def test_eval_reports_each_steps_score_and_the_episodes(tmp_path, tiny_checkpoint):
    from jepa_mpc.cli import main

    model = load_world_model(tiny_checkpoint, device="cpu")
    statistics = TokenStatistics(TokenStatisticsConfig(encoder_dim=48, tokens_per_frame=4, threshold=0.0))
    path = tmp_path / "model.pt"
    save_world_model_checkpoint(path, model.config, model.encoder, model.predictor, token_statistics=statistics)
    out = tmp_path / "eval"
    assert main([*eval_argv(path, policies=["world_model", "random"]), "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["ood_threshold"] == 0.0
    world_model, random = report["summaries"]
    episode = world_model["per_episode"][0]
    assert len(episode["ood_scores"]) == 2 and all(score > 0 for score in episode["ood_scores"])
    assert episode["ood_score_mean"] == pytest.approx(np.mean(episode["ood_scores"]))
    assert episode["ood_steps_above"] == 2 and world_model["ood_fraction_above"] == 1.0
    assert random["ood_score_mean"] is None and random["per_episode"][0]["ood_scores"] == []
    table = (out / "results.md").read_text()
    assert "| OOD score / above |" in table and " / 100% |" in table and "threshold 0." in table
