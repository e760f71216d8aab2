"""Encoder and predictor trained end to end with SIGReg (``--loss.sigreg_weight``), as LeWorldModel does."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from worldmodel import load_world_model
from worldmodel.training.config import (
    DataConfig,
    OptimConfig,
    PredictorLossConfig,
    PredictorRecipe,
    RunConfig,
    TrainPredictorConfig,
)
from worldmodel.training.episodes import InMemoryEpisodes
from worldmodel.training.metrics import read_csv_rows
from worldmodel.training.sigreg import sigreg
from worldmodel.training.synthetic import moving_square_episodes
from worldmodel.training.train_predictor import train_predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def squares() -> InMemoryEpisodes:
    return InMemoryEpisodes(moving_square_episodes(12, 16, img_size=32, seed=0, step_size=0.08), fps=4, sample_fps=4)


def end_to_end_config(tmp_path, steps: int, **run) -> TrainPredictorConfig:
    return TrainPredictorConfig(
        data=DataConfig(cache_dir=str(tmp_path / "cache"), val_fraction=0.2),
        predictor=PredictorRecipe(dim=48, depth=2, num_heads=2),
        loss=PredictorLossConfig(sigreg_weight=0.1, sigreg_directions=32),
        optim=OptimConfig(lr=2e-3, start_lr=2e-4, warmup_steps=2, weight_decay=0.01, final_weight_decay=0.01),
        run=RunConfig(steps=steps, batch_size=8, val_clips=16, **{"val_every": 0, "save_every": 0, **run}),
    )


def test_sigreg_is_small_for_gaussian_embeddings_and_large_for_collapsed_ones():
    generator = torch.Generator().manual_seed(0)
    gaussian = torch.randn(2048, 64, generator=generator)
    collapsed = torch.randn(1, 64, generator=generator) + 0.01 * torch.randn(2048, 64, generator=generator)
    low_rank = torch.randn(2048, 2, generator=generator) @ torch.randn(2, 64, generator=generator)
    g = sigreg(gaussian, generator=torch.Generator().manual_seed(1)).item()
    assert g < 2.0  # the statistic's finite-sample floor (about 0.9 at M = 2048)
    assert sigreg(collapsed, generator=torch.Generator().manual_seed(1)).item() > 100 * g
    assert sigreg(low_rank, generator=torch.Generator().manual_seed(1)).item() > 10 * g
    with pytest.raises(ValueError, match=r"\[M >= 2, D\]"):
        sigreg(torch.zeros(1, 64))


def test_gradient_descent_on_sigreg_spreads_collapsed_embeddings():
    torch.manual_seed(0)
    embeddings = (torch.randn(1, 16) + 0.05 * torch.randn(512, 16)).requires_grad_(True)
    optimizer = torch.optim.Adam([embeddings], lr=0.05)
    start = sigreg(embeddings.detach()).item()
    for _ in range(200):
        optimizer.zero_grad()
        sigreg(embeddings, directions=64).backward()
        optimizer.step()
    assert sigreg(embeddings.detach()).item() < 0.05 * start


def test_end_to_end_training_updates_the_encoder_logs_sigreg_and_resumes_bit_for_bit(tmp_path, squares, encoder_path):
    config = end_to_end_config(tmp_path, steps=12, val_every=6, save_every=4)
    whole = train_predictor(config, squares, encoder_path, tmp_path / "whole")
    assert whole.cache_folder == "" and "end to end" in whole.text()
    assert not (tmp_path / "cache").exists()  # nothing cached: the encoder changes every step
    rows = read_csv_rows(tmp_path / "whole" / "train.csv")
    assert all(np.isfinite(r["sigreg"]) and r["sigreg"] > 0 for r in rows)

    frozen = torch.load(encoder_path, weights_only=True)["encoder"]
    trained = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["encoder"]
    assert any(not torch.equal(frozen[k], trained[k]) for k in frozen)  # the planner gets the trained encoder
    model = load_world_model(tmp_path / "whole" / "model.pt", device="cpu")
    assert model.encode_frames(squares.episodes[0].frames[:2]).shape == (1, 2, 4, 32)

    train_predictor(config, squares, encoder_path, tmp_path / "split", stop_at=7)
    train_predictor(config, squares, encoder_path, tmp_path / "split", resume=True)
    split = read_csv_rows(tmp_path / "split" / "train.csv")
    assert [r["loss"] for r in split] == [r["loss"] for r in rows]  # exact: encoder, RNG and directions restored
    resumed = torch.load(tmp_path / "split" / "model.pt", weights_only=True)["encoder"]
    assert all(torch.equal(trained[k], resumed[k]) for k in trained)


def test_a_frozen_run_and_an_end_to_end_run_differ_only_by_the_weight(tmp_path, squares, encoder_path):
    config = end_to_end_config(tmp_path, steps=3)
    frozen = train_predictor(
        replace(config, loss=replace(config.loss, sigreg_weight=0.0)), squares, encoder_path, tmp_path / "frozen"
    )
    assert frozen.cache_folder  # cached tokens, the encoder untouched
    encoder = torch.load(encoder_path, weights_only=True)["encoder"]
    saved = torch.load(tmp_path / "frozen" / "model.pt", weights_only=True)["encoder"]
    assert all(torch.equal(encoder[k], saved[k]) for k in encoder)
    with pytest.raises(ValueError, match="loss.sigreg_weight must be >= 0"):
        PredictorLossConfig(sigreg_weight=-1.0)
