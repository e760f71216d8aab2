"""The training-state checkpoint of a run folder: everything ``--resume`` needs to continue bit for bit.

``train_state.pt`` holds the run's config (as a dict), the step, the trainable modules' weights, the
optimizer state and the RNG states, written atomically by rank 0. Batches and schedules are pure
functions of the step, so nothing else is needed. The planner's file (``model.pt``) is separate.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from foundation.atomic_files import atomic_path
from worldmodel.checkpoint import CheckpointError

STATE_FILE = "train_state.pt"


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_train_state(run_dir: str | Path, config: dict, step: int, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, extra: dict | None = None) -> Path:
    path = Path(run_dir) / STATE_FILE
    data = {
        "config": config,
        "step": step,
        "modules": {name: m.state_dict() for name, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "rng": rng_states(),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path


def load_train_state(run_dir: str | Path, config: dict) -> dict:
    """The saved state of ``run_dir``; its config must equal ``config`` (the same run, continued)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"--resume: {path} does not exist (no training state was saved in {run_dir})")
    try:
        # RNG states hold numpy/python objects: this is our own file, written by save_train_state.
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"--resume: {path} could not be read ({type(exc).__name__}: {exc})") from exc
    differences = _differences(data["config"], config)
    if differences:
        raise CheckpointError(
            f"--resume: the run in {run_dir} was started with another config; differences (saved -> now): "
            + "; ".join(differences[:10])
            + ". Resume with the same flags, or start a new --out folder."
        )
    return data


def _differences(saved: Any, now: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(saved) | set(now)):
            out += _differences(saved.get(key), now.get(key), f"{prefix}{key}.")
        return out
    return [] if saved == now else [f"{prefix.rstrip('.')}: {saved!r} -> {now!r}"]
