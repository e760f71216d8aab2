"""The training-state checkpoint of a run folder: everything ``--resume`` needs to continue bit for bit.

``train_state.pt`` holds the run's config (as a dict), the step, the trainable modules' weights, the
optimizer state and the RNG states, written atomically by rank 0. Batches and schedules are pure
functions of the step, so nothing else is needed. The planner's file (``model.pt``) is separate.

Everything in it is tensors and plain containers (numpy's RNG state is stored as a tensor and plain
numbers, not an ``ndarray``), so it is read with ``torch.load(weights_only=True)``: a crafted
``train_state.pt`` in a run folder is refused on ``--resume``, never executed. What it holds is then
checked against the run before anything is restored (:func:`restore_train_state`): a state that does
not fit (other module keys or shapes, another optimizer layout, a broken RNG entry, a step outside
``0..run.steps``) is a :class:`~worldmodel.checkpoint.CheckpointError` naming the file and what is wrong.

Before a run does any work, :func:`open_run_folder` decides what the folder allows: a fresh run
into a folder holding an earlier run is refused (unless overwriting), ``--resume`` of a finished run
raises :class:`RunFinished` (nothing to do, nothing touched).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepa_mpc_foundation.atomic_files import atomic_path
from jepa_mpc_foundation.configuration import ConfigError
from worldmodel.checkpoint import CheckpointError, load_failure_reason, state_dict_differences

STATE_FILE = "train_state.pt"
SUMMARY_FILE = "summary.json"
# What to do about a training state that does not fit the run.
STATE_FIX = "start a new run with another --out, or resume with the version of jepa_mpc that wrote it"
# The optimizer's per-parameter tensors, shaped like their parameter (AdamW; amsgrad's max too).
PARAMETER_SHAPED = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


class RunFinished(Exception):
    """``--resume`` of a run that already reached its last step: nothing to train, nothing was touched.

    Not an error: the commands print the message and exit 0, so a script that resumes until done
    (or ``make default-model`` rerun) goes on.
    """


def rng_states() -> dict[str, Any]:
    """The global RNG states as tensors and plain containers (``weights_only``-safe).

    ``torch``: uint8 tensor; ``cuda``: a list of them; ``numpy``: ``np.random.get_state()`` as a dict
    (``keys``: int64 tensor [624] of the MT19937 words); ``python``: ``random.getstate()`` (a tuple of ints).
    """
    algorithm, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "algorithm": str(algorithm),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the states :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(
        (n["algorithm"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        # One state per GPU the saving process saw; a machine with fewer GPUs restores those it has
        # (set_rng_state_all would fail on the first missing device).
        torch.cuda.set_rng_state_all(states["cuda"][: torch.cuda.device_count()])


def save_train_state(
    run_dir: str | Path,
    config: dict,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    extra: dict | None = None,
) -> Path:
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


def load_train_state(run_dir: str | Path, config: dict, steps: int | None = None) -> dict:
    """The saved state of ``run_dir``; its config must equal ``config`` (the same run, continued).

    Read with ``weights_only=True``: tensors and plain containers only, no code runs.

    Args:
        steps: the run's ``run.steps``: the saved step must lie in ``0..steps`` (None: any int >= 0).
    Raises:
        CheckpointError: the file is missing, a folder, unreadable (truncated, or holding Python objects,
            which are refused), not a training state, was saved with another config, or its step is
            not a whole number in ``0..steps``.
    """
    path = Path(run_dir) / STATE_FILE
    if path.is_dir():
        raise CheckpointError(f"--resume: {path} is a folder, not a training state file; {STATE_FIX}")
    if not path.is_file():
        raise CheckpointError(f"--resume: {path} does not exist (no training state was saved in {run_dir})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"--resume: {path} could not be read as tensors ({load_failure_reason(exc, path)}); "
            "it is truncated or holds Python "
            "objects (refused: loading it could run code). Start a new --out folder, or resume from a state "
            "this version of jepa_mpc wrote"
        ) from exc
    missing = [
        key
        for key in ("config", "step", "modules", "optimizer", "rng")
        if not isinstance(data, dict) or key not in data
    ]
    if missing:
        raise CheckpointError(f"--resume: {path} is not a training state (no {missing}); start a new --out folder")
    differences = _differences(data["config"], config)
    if differences:
        raise CheckpointError(
            f"--resume: the run in {run_dir} was started with another config; differences (saved -> now): "
            + "; ".join(differences[:10])
            + ". Resume with the same flags, or start a new --out folder."
        )
    step = data["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or (steps is not None and step > steps):
        within = f"0..{steps} (run.steps)" if steps is not None else ">= 0"
        raise CheckpointError(
            f"--resume: {path}: field 'step' is {step!r}, not a whole number in {within}; {STATE_FIX}"
        )
    return data


def open_run_folder(
    out: str | Path,
    resume_key: dict,
    steps: int,
    resume: bool,
    overwrite: bool,
    product: str,
    stop_at: int | None = None,
) -> dict | None:
    """What the run folder ``out`` allows, decided before a run does any work (all ranks call it).

    Args:
        resume_key: the run's config (:func:`load_train_state`); steps: ``run.steps``.
        product: the file the run writes at its last step (``model.pt``, ``encoder.pt``).
        stop_at: the step the run is asked to stop after (must lie after the step it starts from).
    Returns:
        The saved state to continue from (``resume``), read and checked by :func:`load_train_state`;
        None for a fresh run. With ``overwrite`` (and no ``resume``), rank 0's caller is expected to
        call :func:`clear_run_folder`.
    Raises:
        RunFinished: ``resume`` of a run whose state is at its last step (its ``product`` written).
        ConfigError: a fresh run into a folder holding an earlier run (``train_state.pt`` or
            ``product``) without ``overwrite``; ``resume`` and ``overwrite`` together; a ``stop_at``
            not after the starting step.
        CheckpointError: ``resume`` with a state that is missing or does not fit (:func:`load_train_state`).
    """
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume true and --overwrite true contradict each other: choose one")
    state = None
    start = 0
    if resume:
        state = load_train_state(out, resume_key, steps)
        start = state["step"]
        if start == steps:
            if (out / product).is_file():
                raise RunFinished(
                    f"the run in {out} already finished (step {start} of {steps}; {out / product} is its result): "
                    "nothing to train, nothing changed; to train again or longer, start a new run with another "
                    "--out (or --overwrite true)"
                )
            raise CheckpointError(
                f"--resume: {out / STATE_FILE} is at the last step ({start} of {steps}) but {out / product} is missing "
                "(deleted, or the run stopped while writing it): start the run again with --overwrite true, "
                "or with another --out"
            )
    elif not overwrite:
        held = [name for name in (STATE_FILE, product) if (out / name).exists()]
        if held:
            raise ConfigError(
                f"{out} holds a run ({_progress(out)}{', '.join(held)}): resume it with --resume true, "
                "or choose another --out "
                "(or replace it with --overwrite true)"
            )
    if stop_at is not None and stop_at <= start:
        where = f"the saved state is at step {start}" if resume else "a run starts at step 0"
        raise ConfigError(f"--stop_at {stop_at} is not after the step the run starts from ({where}): give a later step")
    return state


def clear_run_folder(out: str | Path, product: str) -> None:
    """Remove an earlier run's state, result and summary from ``out`` (``--overwrite true``), so that the
    folder never mixes two runs (a stopped new run beside the old result)."""
    for name in (STATE_FILE, product, SUMMARY_FILE):
        path = Path(out) / name
        if path.is_file():
            path.unlink()


def _progress(out: Path) -> str:
    """``"step N of M; "`` from ``out/train_state.pt``, or "" when it cannot be read."""
    try:
        data = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
        step, steps = data["step"], data["config"]["config"]["run"]["steps"]
    except Exception:  # noqa: BLE001 - only a hint in a message; the refusal stands either way
        return ""
    return f"step {step} of {steps}; " if isinstance(step, int) and isinstance(steps, int) else ""


def restore_train_state(
    state: dict, path: str | Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer
) -> None:
    """Check that ``state`` (from :func:`load_train_state`) fits the run (its RNG entries included), then
    load it into ``modules`` and ``optimizer``, strictly; the caller restores the RNGs (:func:`set_rng_states`).

    Nothing is changed unless everything fits.

    Raises:
        CheckpointError: naming ``path``, what does not fit (module keys missing, unexpected or of
            another shape; another optimizer layout or a per-parameter tensor of another shape; an RNG
            entry of the wrong type) and the fix.
    """
    problems = (
        _module_problems(state["modules"], modules)
        or _optimizer_problems(state["optimizer"], optimizer)
        or _rng_problems(state["rng"])
    )
    if problems:
        raise CheckpointError(f"--resume: {path} does not fit this run: {problems}; {STATE_FIX}")
    try:
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name], strict=True)
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as error:  # what the checks above did not foresee
        raise CheckpointError(
            f"--resume: {path} does not fit this run ({' '.join(str(error).split())[:300]}); {STATE_FIX}"
        ) from error


def _listed(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _module_problems(saved: Any, modules: dict[str, torch.nn.Module]) -> str:
    if not isinstance(saved, dict) or set(saved) != set(modules):
        held = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        return f"'modules' holds {held}, this run trains {sorted(modules)}"
    for name, module in modules.items():
        expected, got = module.state_dict(), saved[name]
        if not isinstance(got, dict):
            return f"module '{name}' is a {type(got).__name__}, not a state dict"
        missing, unexpected, wrong = state_dict_differences(expected, got)
        shapes = [
            f"{key} {list(got[key].shape) if isinstance(got[key], torch.Tensor) else type(got[key]).__name__} "
            f"(this run: {list(expected[key].shape)})"
            for key in wrong
        ]
        parts = [
            f"missing keys {_listed(missing)}" if missing else "",
            f"unexpected keys {_listed(unexpected)}" if unexpected else "",
            f"other shapes: {_listed(shapes, 3)}" if shapes else "",
        ]
        if any(parts):
            return f"module '{name}': " + "; ".join(p for p in parts if p)
    return ""


def _optimizer_problems(saved: Any, optimizer: torch.optim.Optimizer) -> str:
    expected = optimizer.state_dict()
    if (
        not isinstance(saved, dict)
        or not isinstance(saved.get("param_groups"), list)
        or not isinstance(saved.get("state"), dict)
    ):
        return "'optimizer' is not an optimizer state (param_groups, state)"
    groups = saved["param_groups"]
    if len(groups) != len(expected["param_groups"]):
        return (
            f"the optimizer state has {len(groups)} parameter group(s), "
            f"this run's optimizer {len(expected['param_groups'])}"
        )
    parameters: dict[Any, torch.Tensor] = {}
    for number, (group, mine, live) in enumerate(zip(groups, expected["param_groups"], optimizer.param_groups)):
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            return f"optimizer parameter group {number} is not a group (no 'params' list)"
        if len(group["params"]) != len(mine["params"]):
            return (
                f"optimizer parameter group {number} holds {len(group['params'])} parameter(s), "
                f"this run's {len(mine['params'])}"
            )
        missing = sorted(set(mine) - set(group))
        if missing:
            return f"optimizer parameter group {number} lacks {missing}"
        parameters.update(zip(group["params"], live["params"]))
    for key, values in saved["state"].items():
        if key not in parameters:
            return f"the optimizer state has an entry {key!r} for no parameter of its groups"
        if not isinstance(values, dict):
            return f"the optimizer state of parameter {key!r} is a {type(values).__name__}, not a dict"
        for name in PARAMETER_SHAPED:
            if name in values and not (
                isinstance(values[name], torch.Tensor) and values[name].shape == parameters[key].shape
            ):
                got = (
                    list(values[name].shape) if isinstance(values[name], torch.Tensor) else type(values[name]).__name__
                )
                return (
                    f"the optimizer's {name} of parameter {key!r} is {got}, the parameter {list(parameters[key].shape)}"
                )
        step = values.get("step")
        if step is not None and not (
            isinstance(step, (int, float)) or (isinstance(step, torch.Tensor) and step.numel() == 1)
        ):
            return f"the optimizer's step of parameter {key!r} is {type(step).__name__}, not a number"
    return ""


def _rng_problems(states: Any) -> str:
    if not isinstance(states, dict):
        return f"'rng' is a {type(states).__name__}, not the RNG states"
    missing = [name for name in ("torch", "numpy", "python") if name not in states]
    if missing:
        return f"'rng' lacks {missing}"
    checks = {
        "torch": lambda s: torch.Generator().set_state(s),
        "numpy": lambda n: np.random.RandomState().set_state(
            (n["algorithm"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        ),
        "python": lambda s: random.Random().setstate(s),
    }
    for name, check in checks.items():
        try:
            check(states[name])  # on a fresh generator: the global ones are untouched
        except Exception as error:  # noqa: BLE001 - any failure means the entry is unusable
            return (
                f"rng entry '{name}' is not a {name} RNG state "
                f"({type(error).__name__}: {' '.join(str(error).split())[:120]})"
            )
    cuda = states.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, list) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)
    ):
        return "rng entry 'cuda' is not a list of uint8 tensors"
    return ""


def _differences(saved: Any, now: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(saved) | set(now)):
            out += _differences(saved.get(key), now.get(key), f"{prefix}{key}.")
        return out
    return [] if saved == now else [f"{prefix.rstrip('.')}: {saved!r} -> {now!r}"]
