"""AdamW with the reference's parameter groups, warmup + cosine learning rate, cosine weight decay.

Schedules are functions of the step (not stateful scheduler objects), so a resumed run sets exactly
the values the uninterrupted run had.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import OptimConfig


def build_optimizer(modules: list[nn.Module], config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; biases and 1-D parameters (norms) never get weight decay."""
    decay, no_decay = [], []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if name.endswith("bias") or p.ndim == 1 else decay).append(p)
    groups = [{"params": decay, "apply_wd": True}, {"params": no_decay, "apply_wd": False, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        groups, lr=config.start_lr, betas=tuple(config.betas), eps=config.eps, weight_decay=config.weight_decay
    )


def learning_rate(step: int, total_steps: int, config: OptimConfig) -> float:
    """Linear from ``start_lr`` to ``lr`` over the warmup, then cosine down to ``final_lr``."""
    if step < config.warmup_steps:
        return config.start_lr + (config.lr - config.start_lr) * step / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.final_lr + (config.lr - config.final_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def weight_decay(step: int, total_steps: int, config: OptimConfig) -> float:
    """Cosine from ``weight_decay`` to ``final_weight_decay`` over the run."""
    progress = min(1.0, step / max(1, total_steps))
    return config.final_weight_decay + (config.weight_decay - config.final_weight_decay) * 0.5 * (
        1.0 + math.cos(math.pi * progress)
    )


def set_schedules(
    optimizer: torch.optim.Optimizer, step: int, total_steps: int, config: OptimConfig
) -> tuple[float, float]:
    """Write this step's learning rate and weight decay into the optimizer; return them."""
    lr, wd = learning_rate(step, total_steps, config), weight_decay(step, total_steps, config)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["apply_wd"]:
            group["weight_decay"] = wd
    return lr, wd
