"""The one numeric-precision rule of the project: bf16 autocast on CUDA, exact float32 on CPU.

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
