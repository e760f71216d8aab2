"""Hugging Face ``VJEPA2Model`` files load strictly into our encoder and give transformers' own tokens.

The model is a tiny random ``VJEPA2Config`` (64 px, patch 16, tubelet 2, dim 48, 2 layers, 2 heads)
written by ``save_pretrained`` into a temporary folder, every weight perturbed so that a mapping
that swaps or skips a norm, a bias or q/k/v is caught. Tolerance: max abs error 1e-4 (float32, CPU).
"""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="a test dependency: pip install -e .[test]")

from command_helpers import TINY_PREDICTOR, train_argv  # noqa: E402
from worldmodel import CheckpointError, load_world_model  # noqa: E402
from worldmodel.hf_checkpoint import load_hf_encoder  # noqa: E402
from worldmodel.training.encoder_checkpoint import file_digest, load_encoder  # noqa: E402

TOLERANCE = 1e-4
HF_SIZES = dict(
    crop_size=64,
    patch_size=16,
    tubelet_size=2,
    frames_per_clip=4,
    hidden_size=48,
    num_attention_heads=2,
    num_hidden_layers=2,
    pred_hidden_size=24,
    pred_num_attention_heads=2,
    pred_num_hidden_layers=1,
)


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory, one_torch_thread):
    """A saved tiny VJEPA2Model: (folder, the transformers model in eval mode)."""
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(transformers.VJEPA2Config(**HF_SIZES)).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # LayerNorms start at (1, 0), biases at 0: perturb every weight
            parameter.add_(0.05 * torch.randn_like(parameter))
    folder = tmp_path_factory.mktemp("hf") / "vjepa2-tiny"
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def clip():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, 4, 64, 64, generator=generator)  # [B, C, T, H, W], normalized pixels


@pytest.mark.parametrize("which", ["folder", "model.safetensors"])
def test_hf_encoder_tokens_equal_transformers_last_hidden_state(hf_model, clip, which):
    folder, model = hf_model
    config, encoder = load_hf_encoder(folder if which == "folder" else folder / "model.safetensors")
    assert (config.img_size, config.patch_size, config.tubelet_size, config.dim, config.depth, config.num_heads) == (
        64,
        16,
        2,
        48,
        2,
        2,
    )
    with torch.no_grad():
        ours = encoder(clip)  # [1, 2 * 4 * 4, 48]
        theirs = model(pixel_values_videos=clip.permute(0, 2, 1, 3, 4), skip_predictor=True).last_hidden_state
    assert ours.shape == theirs.shape == (1, 32, 48)
    assert (ours - theirs).abs().max().item() <= TOLERANCE


def test_training_reads_an_hf_encoder_and_hashes_its_files(hf_model):
    folder, _ = hf_model
    config, encoder = load_encoder(folder)
    assert config.dim == 48 and not any(p.requires_grad for p in encoder.parameters())
    digest = file_digest(folder)
    assert digest == file_digest(folder) and len(digest) == 64


def test_a_left_over_encoder_weight_is_refused(hf_model, tmp_path):
    from safetensors.torch import load_file, save_file

    folder, _ = hf_model
    tensors = load_file(folder / "model.safetensors")
    tensors["encoder.layer.0.attention.extra.weight"] = torch.zeros(2)
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"left over: encoder\.layer\.0\.attention\.extra\.weight"):
        load_hf_encoder(tmp_path)


def test_a_config_that_does_not_fit_the_weights_lists_the_shapes(hf_model, tmp_path):
    folder, _ = hf_model
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "mlp_ratio": 2.0}))
    with pytest.raises(CheckpointError, match=r"wrong shape: blocks\.0\.mlp\.fc1\.weight: checkpoint \(192, 48\)"):
        load_hf_encoder(tmp_path)


def test_weights_without_config_json_say_what_to_add(hf_model, tmp_path):
    folder, _ = hf_model
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"needs config\.json beside its weights"):
        load_encoder(tmp_path / "model.safetensors")


def test_a_truncated_safetensors_file_is_a_clear_error(hf_model, tmp_path):
    folder, _ = hf_model
    data = (folder / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"model\.safetensors: could not be read as safetensors.*truncated"):
        load_encoder(tmp_path)


def test_another_model_type_is_refused(hf_model, tmp_path):
    folder, _ = hf_model
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(CheckpointError, match=r"model_type 'vit', expected 'vjepa2'"):
        load_encoder(tmp_path)


def test_planning_with_an_hf_encoder_says_to_post_train_it(hf_model):
    folder, _ = hf_model
    with pytest.raises(CheckpointError, match=r"no action-conditioned predictor.*jepa-mpc train --encoder"):
        load_world_model(folder, device="cpu")


def test_jepa_mpc_train_takes_an_hf_folder_as_its_encoder(tmp_path):
    """`jepa-mpc train --encoder <folder>` end to end (2 steps); model.pt carries the HF encoder's weights."""
    import os
    import subprocess
    import sys

    from worldmodel.training.episodes import save_episodes_npz
    from worldmodel.training.synthetic import moving_square_episodes

    torch.manual_seed(2)
    sizes = {**HF_SIZES, "crop_size": 32, "hidden_size": 32, "num_hidden_layers": 1}
    transformers.VJEPA2Model(transformers.VJEPA2Config(**sizes)).save_pretrained(tmp_path / "hf")
    save_episodes_npz(tmp_path / "squares.npz", moving_square_episodes(6, 12, img_size=32, seed=0), fps=4)
    argv = train_argv(tmp_path / "squares.npz", tmp_path / "hf", tmp_path / "run", tmp_path / "cache")
    argv += ["--data.val_fraction", "0.2", *TINY_PREDICTOR, "--optim.warmup_steps", "1"]
    argv += ["--run.steps", "2", "--run.batch_size", "4", "--run.val_every", "0", "--run.save_every", "0"]
    command = [sys.executable, "-m", "jepa_mpc", *argv, "--run.threads", "1"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _, hf_encoder = load_hf_encoder(tmp_path / "hf")
    trained = load_world_model(tmp_path / "run" / "model.pt", device="cpu")
    for name, weight in hf_encoder.state_dict().items():
        assert torch.equal(trained.encoder.state_dict()[name], weight), name
