"""V-JEPA 2.1 encoders: parity with the reference on its tiny fixture (max abs error 1e-4), strict loading
of the released layout, and post-training the predictor on their features with `jepa-mpc train`."""

from __future__ import annotations

import pytest
import torch

from command_helpers import TINY_PREDICTOR, train_argv
from jepa_mpc.cli import main as cli_main
from worldmodel import load_world_model
from worldmodel.checkpoint import (
    CheckpointError,
    is_vjepa2_1_checkpoint,
    read_checkpoint,
    world_model_config_from_checkpoint,
)
from worldmodel.config import VJEPA2_1_ENCODER_PRESETS, EncoderConfig, vjepa2_1_encoder_preset
from worldmodel.training.encoder_checkpoint import load_encoder
from worldmodel.training.episodes import save_episodes_npz
from worldmodel.training.synthetic import moving_square_episodes
from worldmodel.vjepa2_1_encoder import VJEPA21Encoder, interpolated_positions

TOL = 1e-4
CHECKPOINT = "vjepa2_1_tiny_checkpoint.pt"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def reference_io(fixtures_dir):
    return torch.load(fixtures_dir / "vjepa2_1_tiny_io.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def fixture_config(reference_io) -> EncoderConfig:
    """Our config from the reference constructor arguments stored in the fixture."""
    c = reference_io["config"]
    return EncoderConfig(
        img_size=c["img_size"],
        patch_size=c["patch_size"],
        tubelet_size=c["tubelet_size"],
        dim=c["embed_dim"],
        depth=c["depth"],
        num_heads=c["num_heads"],
        mlp_ratio=c["mlp_ratio"],
        qkv_bias=c["qkv_bias"],
        architecture="vjepa2_1",
    )


@pytest.fixture(scope="module")
def encoder(fixtures_dir, reference_io, fixture_config) -> VJEPA21Encoder:
    c = reference_io["config"]
    config, encoder = load_encoder(fixtures_dir / CHECKPOINT, img_size=c["img_size"], num_heads=c["num_heads"])
    assert config == fixture_config  # the sizes read from the weights are the reference's
    return encoder


def max_err(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize(
    "inputs, outputs",
    [("video", "video_tokens"), ("image", "image_tokens"), ("video_wide", "video_wide_tokens")],
    ids=["video-3d-patches", "image-2d-patches", "non-square-video"],
)
def test_tokens_match_reference(encoder, reference_io, inputs, outputs):
    with torch.no_grad():
        tokens = encoder(reference_io[inputs])
    assert tokens.shape == reference_io[outputs].shape
    assert max_err(tokens, reference_io[outputs]) < TOL


def test_per_level_outputs_match_reference(encoder, reference_io):
    with torch.no_grad():
        levels = encoder.levels(reference_io["video"])  # [1, N, 4 * dim]
    assert max_err(levels, reference_io["video_levels"]) < TOL
    dim = encoder.config.dim
    assert max_err(levels[..., -dim:], encoder(reference_io["video"])) < TOL  # the output is the last level


def test_released_layout_is_recognised(fixtures_dir, reference_io):
    data = read_checkpoint(fixtures_dir / CHECKPOINT)
    assert reference_io["checkpoint_key"] in data and is_vjepa2_1_checkpoint(data)
    assert not is_vjepa2_1_checkpoint(read_checkpoint(fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt"))
    with pytest.raises(CheckpointError, match="V-JEPA 2.1 encoder, without an action-conditioned predictor"):
        world_model_config_from_checkpoint(data)


def test_ema_encoder_is_read_before_target_encoder(tmp_path, fixtures_dir, reference_io):
    """The hub reads ``ema_encoder`` of the distilled ViT-B/L files and ``target_encoder`` of ViT-g/G."""
    c = reference_io["config"]
    data = read_checkpoint(fixtures_dir / CHECKPOINT)
    ema = data["ema_encoder"]
    other = {k: torch.zeros_like(v) for k, v in ema.items()}
    torch.save({"target_encoder": other, "ema_encoder": ema}, tmp_path / "both.pt")
    torch.save({"target_encoder": ema}, tmp_path / "target_only.pt")
    for name in ("both.pt", "target_only.pt"):
        _, encoder = load_encoder(tmp_path / name, img_size=c["img_size"], num_heads=c["num_heads"])
        with torch.no_grad():
            assert max_err(encoder(reference_io["video"]), reference_io["video_tokens"]) < TOL, name


@pytest.mark.parametrize("change", ["missing", "extra", "shape"])
def test_strict_loading_names_the_bad_key(tmp_path, fixtures_dir, reference_io, change):
    c = reference_io["config"]
    data = read_checkpoint(fixtures_dir / CHECKPOINT)
    state = dict(data["ema_encoder"])
    if change == "missing":
        del state["module.backbone.norms_block.1.bias"]
        key = "norms_block.1.bias"
    elif change == "extra":
        state["module.backbone.pos_embed"] = torch.zeros(1, 4, c["embed_dim"])
        key = "pos_embed"
    else:
        state["module.backbone.img_mod_embed"] = torch.zeros(1, 2, c["embed_dim"])
        key = "img_mod_embed"
    torch.save({"ema_encoder": state}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=rf"bad\.pt \[ema_encoder\].*\n.*{key}"):
        load_encoder(tmp_path / "bad.pt", img_size=c["img_size"], num_heads=c["num_heads"])


def test_head_count_comes_from_the_released_sizes_or_must_be_given(tmp_path, fixtures_dir, reference_io):
    with pytest.raises(CheckpointError, match=r"matches no released size.*--encoder_num_heads"):
        load_encoder(fixtures_dir / CHECKPOINT, img_size=reference_io["config"]["img_size"])
    with pytest.raises(CheckpointError, match="V-JEPA 2.1 files only"):
        load_encoder(fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt", num_heads=2)
    # a released size (ViT-B, built on the meta device: no memory) is matched to its preset, heads included
    with torch.device("meta"):
        base = VJEPA21Encoder(vjepa2_1_encoder_preset("vjepa2_1_vit_base_384"))
    from worldmodel.vjepa2_1_encoder import vjepa2_1_config_from_state_dict

    config = vjepa2_1_config_from_state_dict(base.state_dict(), img_size=384)
    assert config == vjepa2_1_encoder_preset("vjepa2_1_vit_base_384")
    assert config.num_heads == VJEPA2_1_ENCODER_PRESETS["vjepa2_1_vit_base_384"]["num_heads"]


def test_rope_positions_are_interpolated_to_the_pretraining_grid():
    positions = interpolated_positions(1, 24, 24, rope_grid=16)  # 384 px, 16-px patches
    assert positions[:, 1].max().item() == pytest.approx(15.0) and positions[1, 2].item() == pytest.approx(15 / 23)
    with pytest.raises(ValueError, match="at least 2 patches"):
        interpolated_positions(1, 1, 4, rope_grid=16)


def test_train_on_vjepa2_1_features_writes_a_model_that_loads(tmp_path, fixtures_dir, reference_io):
    c = reference_io["config"]
    data = tmp_path / "squares.npz"
    save_episodes_npz(data, moving_square_episodes(6, 12, img_size=32, seed=0, step_size=0.08), fps=4)
    out = tmp_path / "run"
    argv = train_argv(data, fixtures_dir / CHECKPOINT, out, tmp_path / "cache")
    argv += ["--encoder_img_size", str(c["img_size"]), "--encoder_num_heads", str(c["num_heads"])]
    argv += ["--data.val_fraction", "0.2", *TINY_PREDICTOR, "--optim.warmup_steps", "1"]
    argv += ["--run.steps", "3", "--run.batch_size", "2", "--run.val_every", "0", "--run.save_every", "0"]
    argv += ["--run.val_clips", "4", "--run.threads", "1"]
    assert cli_main(argv) == 0
    model = load_world_model(out / "model.pt", device="cpu")
    assert isinstance(model.encoder, VJEPA21Encoder) and model.config.encoder.architecture == "vjepa2_1"
    with torch.no_grad():  # the frozen encoder's weights went into the model unchanged
        assert max_err(model.encoder(reference_io["video"]), reference_io["video_tokens"]) < TOL
    frames = moving_square_episodes(1, 2, img_size=32, seed=1)[0].frames
    grid = c["img_size"] // c["patch_size"]
    assert model.encode_frames(frames).shape == (1, 2, grid * grid, c["embed_dim"])
