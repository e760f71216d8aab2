"""No file a user is handed runs code: every loader of the project refuses a crafted pickle.

The payload is an object whose ``__reduce__`` calls ``os.system("touch MARKER")`` when unpickled.
Each loader (world model, encoder, training state, Hugging Face folder, feature cache, episode and
frame ``.npz``) is handed a file carrying it; each must raise a user error (a ``ValueError``) and the
marker file must never appear. A source scan keeps it so: every ``torch.load`` passes
``weights_only=True``, no ``np.load`` passes ``allow_pickle=True``, and nothing imports pickle
(this file excepted: it builds the payload and shows that it is live).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from worldmodel import CheckpointError, load_world_model
from worldmodel.training.encoder_checkpoint import load_encoder
from worldmodel.training.train_state import STATE_FILE, load_train_state

ROOT = Path(__file__).resolve().parents[1]
SCANNED = (
    "jepa_mpc_foundation",
    "jepa_mpc_dataset",
    "worldmodel",
    "planner",
    "sim",
    "ros_nodes",
    "jepa_mpc",
    "bench",
    "tests",
)


class RunsCode:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "code_ran"
    yield path
    assert not path.exists(), "a loader ran the code in a crafted file"


def test_the_payload_is_live(tmp_path):
    """The refusals below mean something: unpickled with pickle's full power, the payload runs."""
    ran = tmp_path / "ran"
    pickle.loads(pickle.dumps(RunsCode(ran)))  # noqa: S301 - the point of the test
    assert ran.exists()


def crafted_torch_file(path: Path, marker: Path, legacy: bool, layout: dict | None = None) -> Path:
    """A torch file whose ``encoder`` entry is the payload (zip or legacy pickle serialization)."""
    data = {**(layout or {}), "encoder": {"blocks.0.norm1.weight": RunsCode(marker)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
@pytest.mark.parametrize(
    "layout",
    [None, {"format": "jepa_mpc", "config": {}}, {"format": "jepa_mpc_encoder"}],
    ids=["released", "world-model", "encoder"],
)
def test_checkpoint_loaders_refuse_code(tmp_path, marker, legacy, layout):
    path = crafted_torch_file(tmp_path / "model.pt", marker, legacy, layout)
    with pytest.raises(
        CheckpointError, match=r"model\.pt could not be read as tensors \(Unsupported global: GLOBAL posix\.system"
    ):
        load_world_model(path, device="cpu")
    with pytest.raises(CheckpointError, match="Unsupported global"):
        load_encoder(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_resume_refuses_a_crafted_training_state(tmp_path, marker, legacy):
    torch.save(
        {"config": {}, "step": 1, "modules": {}, "optimizer": {}, "rng": RunsCode(marker)},
        tmp_path / STATE_FILE,
        _use_new_zipfile_serialization=not legacy,
    )
    with pytest.raises(CheckpointError, match=r"--resume: .*train_state\.pt could not be read as tensors.*refused"):
        load_train_state(tmp_path, {})


def test_resume_from_a_folder_named_like_the_state_file_says_it_is_a_folder(tmp_path):
    (tmp_path / STATE_FILE).mkdir()
    with pytest.raises(CheckpointError, match=r"--resume: .*train_state\.pt is a folder, not a training state file"):
        load_train_state(tmp_path, {})


def test_a_saved_training_state_is_tensors_only_and_restores_every_rng(tmp_path):
    import random

    from worldmodel.training.train_state import save_train_state, set_rng_states

    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(module.parameters())
    module(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    np.random.standard_normal()  # numpy caches a Gaussian: its state has has_gauss = 1
    save_train_state(tmp_path, {"seed": 0}, 7, {"predictor": module}, optimizer)
    expected = (torch.rand(3), np.random.standard_normal(3), random.random())
    state = load_train_state(tmp_path, {"seed": 0})  # weights_only=True inside
    set_rng_states(state["rng"])
    assert state["step"] == 7 and state["optimizer"]["state"][0]["step"] == 1
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.standard_normal(3), expected[1])
    assert random.random() == expected[2]


@pytest.mark.parametrize("weights_name", ["model.safetensors", "pytorch_model.bin"])
def test_hugging_face_folders_refuse_code(tmp_path, marker, weights_name):
    crafted_torch_file(tmp_path / weights_name, marker, legacy=False)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vjepa2"}))
    with pytest.raises(CheckpointError, match="safetensors"):
        load_encoder(tmp_path)


def test_feature_cache_refuses_object_arrays(tmp_path, marker):
    from worldmodel.training.feature_cache import FeatureCache

    np.save(tmp_path / "states.npy", np.array([RunsCode(marker)], dtype=object), allow_pickle=True)
    (tmp_path / "tokens.f16").write_bytes(b"\0" * 8)
    (tmp_path / "index.json").write_text(json.dumps({"tokens_shape": [1, 1, 4], "skipped": [], "episodes": []}))
    with pytest.raises(ValueError):
        FeatureCache.open(tmp_path)


@pytest.fixture
def crafted_npz(tmp_path, marker) -> Path:
    """An .npz of the keys every frame/episode reader asks for, each an object array holding the payload."""
    path = tmp_path / "crafted.npz"
    payload = np.array([RunsCode(marker)], dtype=object)
    np.savez(path, frames=payload, states=payload, fps=payload, observations=payload)
    return path


def test_episode_and_frame_files_refuse_object_arrays(crafted_npz, tmp_path):
    from jepa_mpc.encode_command import EncodeConfig, encode
    from jepa_mpc.energy_landscape import EnergyConfig, draw_energy_landscape
    from worldmodel.training.episodes import NpzEpisodes

    with pytest.raises(ValueError, match="allow_pickle=False"):
        NpzEpisodes(crafted_npz)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        encode(EncodeConfig(checkpoint=str(tmp_path / "unused.pt"), frames=str(crafted_npz)))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        draw_energy_landscape(EnergyConfig(checkpoint=str(tmp_path / "unused.pt"), frames=(str(crafted_npz),)))


def _calls(tree: ast.AST, module: str, function: str):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == function
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == module
        ):
            yield node


def _keyword(call: ast.Call, name: str):
    return next((k.value.value for k in call.keywords if k.arg == name and isinstance(k.value, ast.Constant)), None)


def test_every_loader_in_the_source_is_tensors_only():
    problems = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            where = path.relative_to(ROOT)
            problems += [
                f"{where}:{c.lineno}: torch.load without weights_only=True"
                for c in _calls(tree, "torch", "load")
                if _keyword(c, "weights_only") is not True
            ]
            problems += [
                f"{where}:{c.lineno}: np.load with allow_pickle=True"
                for c in _calls(tree, "np", "load")
                if _keyword(c, "allow_pickle") is True
            ]
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                problems += [
                    f"{where}:{node.lineno}: imports {n}"
                    for n in names
                    if n.split(".")[0] in {"pickle", "dill", "joblib", "cloudpickle", "marshal"}
                ]
    assert not problems, "\n".join(problems)
