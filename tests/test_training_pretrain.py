"""V-JEPA pretraining of a small encoder: masks, visible-token encoding, learning, no collapse, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from command_helpers import TINY_PREDICTOR, torchrun, train_argv
from jepa_mpc.cli import main as jepa_mpc
from worldmodel.config import EncoderConfig
from worldmodel.encoder import VideoEncoder, init_vit_weights
from worldmodel.training.config import (
    EncoderRecipe,
    MaskConfig,
    OptimConfig,
    PretrainConfig,
    PretrainModelConfig,
    RunConfig,
    VideoDataConfig,
)
from worldmodel.training.encoder_checkpoint import load_encoder
from worldmodel.training.episodes import InMemoryEpisodes, save_episodes_npz
from worldmodel.training.masked_model import encode_visible
from worldmodel.training.masking import sample_masks
from worldmodel.training.metrics import read_csv_rows
from worldmodel.training.pretrain_encoder import pretrain_encoder
from worldmodel.training.synthetic import moving_square_episodes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_PRETRAIN = (
    *("--encoder.img_size", "32", "--encoder.patch_size", "8"),
    *("--model.predictor_dim", "32", "--model.predictor_depth", "1", "--model.predictor_heads", "2"),
    *("--mask.long_scale", "0.4", "--data.clip_frames", "4", "--optim.warmup_steps", "2"),
)
"""The command line's flags for the sizes the tests pretrain with (vit_micro at 32 px, 8 px patches)."""


@pytest.fixture(scope="module")
def squares() -> InMemoryEpisodes:
    return InMemoryEpisodes(moving_square_episodes(20, 16, img_size=32, seed=1), fps=4, sample_fps=4)


def tiny_config(steps: int, **run) -> PretrainConfig:
    return PretrainConfig(
        encoder=EncoderRecipe(preset="vit_micro", img_size=32, patch_size=8),
        model=PretrainModelConfig(predictor_dim=32, predictor_depth=1, predictor_heads=2),
        mask=MaskConfig(short_blocks=4, short_scale=0.15, long_blocks=2, long_scale=0.4),
        data=VideoDataConfig(clip_frames=4, val_fraction=0.2),
        optim=OptimConfig(
            lr=1e-3, start_lr=1e-4, final_lr=1e-6, warmup_steps=5, weight_decay=0.04, final_weight_decay=0.4
        ),
        run=RunConfig(steps=steps, batch_size=8, val_clips=16, **{"val_every": 0, "save_every": 0, **run}),
    )


def test_masks_split_every_time_step_into_context_and_targets():
    generator = torch.Generator().manual_seed(0)
    context, target = sample_masks(5, (2, 4, 4), num_blocks=2, scale=0.3, aspect_ratio=(0.75, 1.5), generator=generator)
    assert context.shape[0] == target.shape[0] == 5 and context.shape[1] > 0 and target.shape[1] > 0
    for c, t in zip(context, target):
        assert not set(c.tolist()) & set(t.tolist())  # disjoint
        # 3-D tubes: a masked patch is masked at both time steps.
        spatial = [i % 16 for i in t.tolist()]
        assert all(spatial.count(p) in (1, 2) for p in spatial)
    with pytest.raises(ValueError, match="cover the whole"):
        sample_masks(1, (1, 2, 2), num_blocks=4, scale=0.99, aspect_ratio=(1.0, 1.0), generator=generator)


def test_encode_visible_with_every_token_equals_the_encoder():
    torch.manual_seed(0)
    encoder = VideoEncoder(EncoderConfig(img_size=32, patch_size=8, dim=48, depth=2, num_heads=2)).eval()
    init_vit_weights(encoder)
    video = torch.randn(2, 3, 4, 32, 32)
    everything = torch.arange(32).expand(2, -1)
    torch.testing.assert_close(encode_visible(encoder, video, everything), encoder(video), atol=1e-5, rtol=1e-5)
    # Dropping tokens changes the others (they attend to fewer tokens) but keeps their positions.
    kept = torch.tensor([[0, 5, 17, 30], [1, 2, 3, 31]])
    assert encode_visible(encoder, video, kept).shape == (2, 4, 48)


def test_pretraining_learns_without_collapse_and_resumes_bit_for_bit(tmp_path, squares):
    config = tiny_config(steps=30, val_every=15, save_every=7)
    whole = pretrain_encoder(config, squares, tmp_path / "whole")
    rows = read_csv_rows(tmp_path / "whole" / "train.csv")
    assert np.mean([r["loss"] for r in rows[-5:]]) < 0.8 * np.mean([r["loss"] for r in rows[:5]])
    spread = whole.features_final
    assert spread.dead_dims == 0 and spread.clip_std_mean > 0.25 * whole.features_at_init.clip_std_mean

    stopped = pretrain_encoder(config, squares, tmp_path / "split", stop_at=12)
    assert "stopped at step 12 of 30: state in" in stopped.text() and "encoder:" not in stopped.text()
    resumed = pretrain_encoder(config, squares, tmp_path / "split", resume=True)
    assert resumed.start_step == 12
    assert [r["loss"] for r in read_csv_rows(tmp_path / "split" / "train.csv")] == [r["loss"] for r in rows]
    a = torch.load(tmp_path / "whole" / "encoder.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "encoder.pt", weights_only=True)
    assert all(torch.equal(a["encoder"][k], b["encoder"][k]) for k in a["encoder"])

    # The finished run: resuming it changes nothing, a fresh run into its folder is refused.
    from jepa_mpc_foundation.configuration import ConfigError
    from worldmodel.training.train_state import RunFinished

    kept = (tmp_path / "whole" / "encoder.pt").read_bytes()
    with pytest.raises(RunFinished, match=r"already finished \(step 30 of 30"):
        pretrain_encoder(config, squares, tmp_path / "whole", resume=True)
    with pytest.raises(
        ConfigError, match=r"holds a run \(step 30 of 30; train_state\.pt, encoder\.pt\): resume it with --resume true"
    ):
        pretrain_encoder(config, squares, tmp_path / "whole")
    assert (tmp_path / "whole" / "encoder.pt").read_bytes() == kept


def test_pretrain_cli_output_feeds_train_cli(tmp_path, squares, capsys):
    data = tmp_path / "squares.npz"
    save_episodes_npz(data, squares.episodes, fps=4)
    argv = ["pretrain", "--data", str(data), "--preset", "vit_micro", "--out", str(tmp_path / "enc"), *TINY_PRETRAIN]
    assert jepa_mpc([*argv, "--run.steps", "6", "--run.batch_size", "4", "--run.val_clips", "8"]) == 0
    printed = capsys.readouterr().out
    assert "feature std per dim across held-out clips (trained)" in printed and "0 collapsed dims" in printed
    config, encoder = load_encoder(tmp_path / "enc" / "encoder.pt")
    assert (config.dim, config.depth, config.img_size, config.patch_size) == (128, 4, 32, 8)

    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text(
        "predictor: {dim: 32, depth: 1, num_heads: 2}\noptim: {warmup_steps: 1}\nrun: {steps: 50, batch_size: 4}\n"
    )
    out = tmp_path / "ac"
    argv = train_argv(data, tmp_path / "enc" / "encoder.pt", out, tmp_path / "cache")
    assert jepa_mpc([*argv, "--config", str(yaml_file), "--run.steps", "3"]) == 0  # flags win
    printed = capsys.readouterr().out
    assert "trained steps 0..3 on 1 process(es)" in printed and "no-motion baseline" in printed
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
    assert (out / "train.csv").is_file() and (out / "model.pt").is_file()
    assert torch.load(out / "model.pt", weights_only=True)["config"]["predictor"]["dim"] == 32


def test_init_encoder_writes_a_seeded_random_encoder_that_train_takes(tmp_path, squares, capsys):
    """The default model's encoder: the same seed gives the same weights, a rerun leaves the file as it
    is (its bytes key the feature cache), another seed is refused without --overwrite."""
    flags = ["--preset", "vit_micro", "--encoder.img_size", "32", "--encoder.patch_size", "8"]
    assert jepa_mpc(["init-encoder", "--out", str(tmp_path / "enc"), *flags]) == 0
    config, encoder = load_encoder(tmp_path / "enc" / "encoder.pt")
    torch.manual_seed(0)
    expected = VideoEncoder(config)
    init_vit_weights(expected)
    assert all(torch.equal(value, expected.state_dict()[key]) for key, value in encoder.state_dict().items())

    written = (tmp_path / "enc" / "encoder.pt").read_bytes()
    assert jepa_mpc(["init-encoder", "--out", str(tmp_path / "enc"), *flags]) == 0
    assert "unchanged" in capsys.readouterr().out and (tmp_path / "enc" / "encoder.pt").read_bytes() == written
    assert jepa_mpc(["init-encoder", "--out", str(tmp_path / "enc"), *flags, "--seed", "1"]) == 2
    assert "holds another encoder" in capsys.readouterr().err
    assert jepa_mpc(["init-encoder", "--out", str(tmp_path / "enc"), *flags, "--seed", "1", "--overwrite", "true"]) == 0
    _, reseeded = load_encoder(tmp_path / "enc" / "encoder.pt")
    assert not torch.equal(
        reseeded.state_dict()["patch_embed.proj.weight"], encoder.state_dict()["patch_embed.proj.weight"]
    )

    data = tmp_path / "squares.npz"
    save_episodes_npz(data, squares.episodes, fps=4)
    argv = train_argv(data, tmp_path / "enc" / "encoder.pt", tmp_path / "ac", tmp_path / "cache")
    argv += [*TINY_PREDICTOR, "--optim.warmup_steps", "1", "--run.steps", "2", "--run.batch_size", "4"]
    assert jepa_mpc(argv) == 0
    assert (tmp_path / "ac" / "model.pt").is_file()


def test_two_process_gloo_ddp_pretrain(tmp_path, squares):
    import os
    import subprocess

    data = tmp_path / "squares.npz"
    save_episodes_npz(data, squares.episodes, fps=4)
    argv = ["pretrain", "--data", str(data), "--preset", "vit_micro", "--out", str(tmp_path / "enc"), *TINY_PRETRAIN]
    argv += ["--run.steps", "10", "--run.batch_size", "4", "--run.val_clips", "8", "--run.threads", "1"]
    command = torchrun(2, argv)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("pretrained steps 0..10 on 2 process(es)") == 1  # rank 0 alone reports
    summary = json.loads((tmp_path / "enc" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["features_final"]["dead_dims"] == 0
    config, _ = load_encoder(tmp_path / "enc" / "encoder.pt")
    assert config.dim == 128
