"""Where the models run and in which precision: the device a user names, and bf16 on CUDA only.

bf16 on GPUs is the reference's speed setting (the planner's rollouts and training steps); on CPU
everything stays float32, so CPU runs (tests, resumed runs compared bit for bit) are exact.
"""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """A context for the forward passes on ``device``: bf16 autocast on CUDA when ``enabled``, else nothing."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compute_dtype(device: torch.device, enabled: bool = True) -> torch.dtype:
    """The dtype :func:`autocast` runs matrix products in on ``device``: bf16 on CUDA when ``enabled``, else float32."""
    return torch.bfloat16 if enabled and device.type == "cuda" else torch.float32


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device a user named: ``""``/``None``/``"auto"`` -> ``cuda`` when present, else ``cpu``.

    Raises:
        ValueError: ``name`` is not a device torch knows, or names a CUDA device this machine lacks
            (the message says how to run on the CPU instead).
    """
    if not name or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device {name!r} is not a torch device; use cpu, cuda or cuda:<index>") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            found = "no CUDA GPU" if count == 0 else f"{count} CUDA GPU(s)"
            raise ValueError(
                f"device {name!r} asked for, but torch sees {found}; "
                "use cpu (or a CUDA build of torch on a GPU machine)"
            )
    return device
