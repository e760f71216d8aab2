"""Checkpoint loading is strict and its errors say what is wrong."""

from __future__ import annotations

import pytest
import torch

from worldmodel import CheckpointError, load_world_model, save_world_model_checkpoint


@pytest.fixture(scope="module")
def released_layout(fixtures_dir):
    return torch.load(fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt", map_location="cpu", weights_only=True)


def test_truncated_file_is_a_clear_error(tmp_path, fixtures_dir):
    data = (fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_world_model(bad, device="cpu")


def test_a_file_with_python_objects_is_refused_without_advice_to_unpickle_it(tmp_path):
    import fractions

    path = tmp_path / "objects.pt"
    torch.save({"encoder": fractions.Fraction(1, 2)}, path)
    with pytest.raises(CheckpointError, match="Unsupported global: GLOBAL fractions.Fraction") as info:
        load_world_model(path, device="cpu")
    assert "weights_only" not in str(info.value)  # never suggest loading with pickle's full power


def test_an_encoder_file_is_not_a_world_model_and_the_error_says_which_file_to_use(tmp_path):
    from worldmodel import EncoderConfig, VideoEncoder
    from worldmodel.training.encoder_checkpoint import save_encoder_checkpoint

    config = EncoderConfig(img_size=32, dim=48, depth=1, num_heads=2)
    path = tmp_path / "encoder.pt"
    save_encoder_checkpoint(path, config, VideoEncoder(config))
    with pytest.raises(
        CheckpointError, match=r"encoder.pt: an encoder file of `jepa-mpc pretrain`.*`jepa-mpc train --encoder"
    ):
        load_world_model(path, device="cpu")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_world_model(tmp_path / "nope.pt", device="cpu")


def test_missing_and_unexpected_keys_are_listed(tmp_path, released_layout, tiny_reference_config):
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in released_layout.items()}
    del data["predictor"]["module.backbone.predictor_norm.bias"]
    data["predictor"]["module.backbone.surprise.weight"] = torch.zeros(3)
    path = tmp_path / "wrong_keys.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_world_model(path, device="cpu", config=tiny_reference_config)
    message = str(info.value)
    assert "missing: predictor_norm.bias" in message
    assert "unexpected: surprise.weight" in message


def test_wrong_shapes_are_listed(tmp_path, released_layout, tiny_reference_config):
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in released_layout.items()}
    data["encoder"]["module.backbone.blocks.0.mlp.fc1.weight"] = torch.zeros(100, 96)
    path = tmp_path / "wrong_shape.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=r"wrong shape: blocks\.0\.mlp\.fc1\.weight: checkpoint \(100, 96\)"):
        load_world_model(path, device="cpu", config=tiny_reference_config)


def test_released_file_with_unknown_size_names_the_presets(fixtures_dir):
    # the tiny fixture fits no released preset and the head count cannot be read from weights
    with pytest.raises(CheckpointError, match="match no preset"):
        load_world_model(fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt", device="cpu")


def test_target_encoder_can_be_chosen(fixtures_dir, tiny_reference_config):
    model = load_world_model(
        fixtures_dir / "vjepa2_ac_tiny_checkpoint.pt",
        device="cpu",
        config=tiny_reference_config,
        encoder_key="target_encoder",
    )
    assert model.encoder.norm.weight.shape == (96,)


def test_project_checkpoint_round_trip_carries_its_config(tmp_path, tiny_world_model):
    path = tmp_path / "model.pt"
    save_world_model_checkpoint(
        path, tiny_world_model.config, tiny_world_model.encoder, tiny_world_model.predictor, {"recipe": "test"}
    )
    loaded = load_world_model(path, device="cpu")
    assert loaded.config == tiny_world_model.config
    for (name, a), (_, b) in zip(tiny_world_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob("*.tmp")), "atomic save left a temporary file"


def _tiny_encoder_weights() -> dict:
    from worldmodel import EncoderConfig, VideoEncoder

    return VideoEncoder(EncoderConfig(img_size=32, dim=48, depth=1, num_heads=2)).state_dict()


STRUCTURE_ERRORS = {
    "no config": (
        {"format": "jepa_mpc", "encoder": {}, "predictor": {}},
        r"without its 'config' entry.*save_world_model_checkpoint",
    ),
    "string config": (
        {"format": "jepa_mpc", "config": "vit_giant", "encoder": {}, "predictor": {}},
        r"'config' is a str, expected a dict of config fields",
    ),
    "encoder config missing": ({"format": "jepa_mpc_encoder", "encoder": {}}, r"without its 'encoder_config' entry"),
    "tensor as state dict": (
        {"encoder": torch.zeros(3)},
        r"\[encoder\]: a Tensor where a state dict .* belongs.*state_dict\(\)",
    ),
    "list as state dict": ({"encoder": [torch.zeros(3)]}, r"\[encoder\]: a list where a state dict"),
    "a list, not a dict": (
        [torch.zeros(3)],
        r"holds a list, not a dict of state dicts. Supported checkpoint layouts: released V-JEPA 2",
    ),
    "unknown format": ({"format": "other_tool", "encoder": {}}, r"has format 'other_tool'"),
    "unknown dict": (
        {"weights": {}, "epoch": 3},
        r"no `format` and no `encoder` state dict \(its entries: 'weights', 'epoch'\)",
    ),
}


@pytest.mark.parametrize("loader", ["world model", "encoder"])
@pytest.mark.parametrize("case", sorted(STRUCTURE_ERRORS))
def test_a_malformed_checkpoint_names_the_file_and_what_is_wrong(tmp_path, case, loader):
    from worldmodel.training.encoder_checkpoint import load_encoder

    data, expected = STRUCTURE_ERRORS[case]
    path = tmp_path / "odd.pt"
    torch.save(data, path)
    load = (lambda p: load_world_model(p, device="cpu")) if loader == "world model" else load_encoder
    with pytest.raises(CheckpointError, match=expected) as info:
        load(path)
    assert str(path) in str(info.value)


def test_a_state_dict_entry_that_is_not_a_tensor_is_named(tmp_path):
    weights = {**_tiny_encoder_weights(), "norm.weight": [1.0, 2.0]}
    path = tmp_path / "odd.pt"
    torch.save({"encoder": weights}, path)
    with pytest.raises(CheckpointError, match=r"\[encoder\]: entry 'norm.weight' is a list, expected a tensor"):
        load_world_model(path, device="cpu")


def test_a_folder_is_not_reported_as_missing(tmp_path):
    from worldmodel.training.encoder_checkpoint import load_encoder

    for load in (lambda p: load_world_model(p, device="cpu"), load_encoder):
        with pytest.raises(
            CheckpointError,
            match=rf"{tmp_path}: a folder without config.json \+ model.safetensors; "
            r"a folder is read only as a Hugging Face",
        ) as info:
            load(tmp_path)
        assert "does not exist" not in str(info.value)


def test_a_file_of_no_known_layout_lists_every_supported_layout(tmp_path):
    from worldmodel.checkpoint import CHECKPOINT_LAYOUTS

    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError) as info:
        load_world_model(path, device="cpu")
    assert all(layout.name in str(info.value) for layout in CHECKPOINT_LAYOUTS)


def test_the_readme_table_lists_every_layout():
    from pathlib import Path

    from worldmodel.checkpoint import CHECKPOINT_LAYOUTS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Checkpoint layouts", 1)[1].split("\n## ", 1)[0]
    missing = [layout.name for layout in CHECKPOINT_LAYOUTS if layout.name not in table]
    assert not missing, f"README.md, Checkpoint layouts: add {missing}"


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf_are_refused_naming_the_file_and_the_tensors(tmp_path, tiny_world_model, poison):
    """Such a model used to load without a word and plan with NaN energies (issue 29, part 8)."""
    from worldmodel.training.encoder_checkpoint import load_encoder

    path = tmp_path / "diverged.pt"
    save_world_model_checkpoint(path, tiny_world_model.config, tiny_world_model.encoder, tiny_world_model.predictor)
    data = torch.load(path, map_location="cpu", weights_only=True)
    names = [name for name, tensor in data["predictor"].items() if tensor.is_floating_point()][:2]
    for name in names:
        data["predictor"][name].view(-1)[0] = poison
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_world_model(path, device="cpu")
    message = str(info.value)
    assert message.startswith(f"{path} [predictor]: NaN or inf in the weights {names[0]}, {names[1]}: "), message
    assert "\n" not in message
    encoder_name = next(name for name, tensor in data["encoder"].items() if tensor.is_floating_point())
    data["encoder"][encoder_name].view(-1)[-1] = poison
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=rf"^{path} \[encoder\]: NaN or inf in the weights {encoder_name}: "):
        load_encoder(path)
