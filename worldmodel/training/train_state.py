"""The training-state checkpoint of a run folder: everything ``--resume`` needs to continue bit for bit.

``train_state.pt`` holds the run's config (as a dict), the step, the trainable modules' weights, the
optimizer state and the RNG states, written atomically by rank 0. Batches and schedules are pure
functions of the step, so nothing else is needed. The planner's file (``model.pt``) is separate.

Everything in it is tensors and plain containers (numpy's RNG state is stored as a tensor and plain
numbers, not an ``ndarray``), so it is read with ``torch.load(weights_only=True)``: a crafted
``train_state.pt`` in a run folder is refused on ``--resume``, never executed.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from foundation.atomic_files import atomic_path
from worldmodel.checkpoint import CheckpointError, load_failure_reason

STATE_FILE = "train_state.pt"


def rng_states() -> dict[str, Any]:
    """The global RNG states as tensors and plain containers (``weights_only``-safe).

    ``torch``: uint8 tensor; ``cuda``: a list of them; ``numpy``: ``np.random.get_state()`` as a dict
    (``keys``: int64 tensor [624] of the MT19937 words); ``python``: ``random.getstate()`` (a tuple of ints).
    """
    algorithm, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {"algorithm": str(algorithm), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the states :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["algorithm"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_train_state(run_dir: str | Path, config: dict, step: int, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, extra: dict | None = None) -> Path:
    """Write ``run_dir/train_state.pt`` atomically; ``config`` and ``extra`` must be plain containers."""
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
    """The saved state of ``run_dir``; its config must equal ``config`` (the same run, continued).

    Read with ``weights_only=True``: tensors and plain containers only, no code runs.

    Raises:
        CheckpointError: the file is missing, unreadable (truncated, or holding Python objects, which are
            refused), not a training state, or was saved with another config.
    """
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"--resume: {path} does not exist (no training state was saved in {run_dir})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"--resume: {path} could not be read as tensors ({load_failure_reason(exc, path)}); it is truncated or holds Python "
            "objects (refused: loading it could run code). Start a new --out folder, or resume from a state "
            "this version of jepa_mpc wrote"
        ) from exc
    missing = [key for key in ("config", "step", "modules", "optimizer", "rng") if not isinstance(data, dict) or key not in data]
    if missing:
        raise CheckpointError(f"--resume: {path} is not a training state (no {missing}); start a new --out folder")
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
