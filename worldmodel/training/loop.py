"""The optimisation loop ``jepa-mpc train`` and ``jepa-mpc pretrain`` share, with resume and Ctrl-C.

Per step, on every process::

    set the step's learning rate and weight decay          (schedules are functions of the step)
    loss = objective.loss(step)                            (the command's batch and forward pass)
    zero_grad, backward, clip the gradient norm, AdamW step (DDP averages the gradients in backward)
    objective.after_step(step)                             (e.g. the EMA target-encoder update)
    average the loss over the processes, stop on NaN/inf
    rank 0: log to the MetricsWriter, advance the progress bar,
            validate every ``val_every`` steps, save the training state every ``save_every`` steps

What differs between the commands is an :class:`Objective` (callables), never a flag inside the loop.

``--resume`` reloads modules, optimizer, step and RNG states from ``OUT/train_state.pt`` (checked to fit
the run first, :mod:`.train_state`); batches and schedules are functions of the step, so a resumed run
is bit for bit the uninterrupted one.

Ctrl-C (SIGINT) does not stop a step halfway (an AdamW or EMA update cut in two would save weights
that no step produced): it is recorded, the request is averaged over the processes with the step's
loss (so every rank stops after the same step), the step in progress finishes, rank 0 saves the
training state of that step, prints where and how to continue, and ``KeyboardInterrupt`` is raised on
every rank. Every SIGINT only asks for that stop (torchrun forwards the terminal's Ctrl-C to the
workers a second time); SIGTERM or SIGKILL end a process at once, losing the steps since the last save.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from .config import OptimConfig, RunConfig
from .distributed import DistributedContext
from .metrics import MetricsWriter
from .optimization import set_schedules
from .train_state import STATE_FILE, restore_train_state, save_train_state, set_rng_states


def _no_metrics(step: int) -> dict[str, float]:
    return {}


@dataclass
class Objective:
    """What one command trains; the loop does the rest.

    modules: the trained (and EMA) modules by name: saved in ``train_state.pt``, restored by
        ``--resume``, compared across processes at the end. Their trainable parameters, in this
        order, are the ones whose gradient norm is clipped.
    loss: step -> (the loss to minimise, a scalar tensor with gradient; its parts to log by name,
        scalar tensors). It reads the step's batch and runs the forward pass (under
        :func:`worldmodel.precision.autocast`) on this process's share of the batch.
    after_step: work after the optimizer step (step -> scalars to log), e.g. the EMA update.
    validate: held-out metrics by name and a one-line report of them; called on rank 0 alone, under
        ``torch.no_grad()``, every ``run.val_every`` steps and after the last step. None: no held-out data.
    """

    modules: dict[str, nn.Module]
    loss: Callable[[int], tuple[Tensor, dict[str, Tensor]]]
    after_step: Callable[[int], dict[str, float]] = _no_metrics
    validate: Callable[[], tuple[dict[str, float], str]] | None = None


@dataclass
class LoopResult:
    start_step: int  # 0, or the step --resume continued from
    end_step: int  # run.steps, or stop_at
    train_seconds: float  # wall time of the training steps (validation and saving excluded)
    clips_per_second: float  # over all processes
    final_train_loss: float  # mean of the last 10 steps' losses (NaN when no step ran)
    metrics: str = ""  # what the MetricsWriter writes (rank 0), "" on the other ranks


def train_loop(
    ctx: DistributedContext,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    run: RunConfig,
    optim: OptimConfig,
    out: Path,
    resume_key: dict,
    state: dict | None = None,
    stop_at: int | None = None,
    desc: str = "train",
) -> LoopResult:
    """Run steps ``start..min(run.steps, stop_at)``; rank 0 writes metrics and ``out/train_state.pt``.

    Args:
        resume_key: what must not change between a run and its resumption (saved as the state's config).
        state: the training state to continue from, as :func:`.train_state.open_run_folder` returned it
            (read from ``out/train_state.pt`` and checked against ``resume_key`` and ``run.steps``), or
            None for a fresh run.
        stop_at: stop after this step, saving the training state (as a job time limit would).
    Raises:
        CheckpointError: ``state`` does not fit the modules or the optimizer (:func:`.train_state.restore_train_state`).
        FloatingPointError: the loss became NaN/inf (naming the step).
        KeyboardInterrupt: after Ctrl-C, once the state of the last finished step is saved.
    """
    params = [p for module in objective.modules.values() for p in module.parameters() if p.requires_grad]
    max_norm = optim.grad_clip if optim.grad_clip > 0 else float("inf")

    start_step = 0
    if state is not None:
        restore_train_state(state, out / STATE_FILE, objective.modules, optimizer)
        start_step = state["step"]
    # Steps draw their random numbers from generators seeded by (seed, step, rank); the global RNGs
    # are restored (rank 0) or seeded per rank for anything that draws from them.
    if state is not None and ctx.is_main:
        set_rng_states(state["rng"])
    else:
        torch.manual_seed(run.seed + ctx.rank + start_step)

    def save_state(step: int) -> None:
        if ctx.is_main:
            save_train_state(out, resume_key, step, objective.modules, optimizer)

    end = run.steps if stop_at is None else min(run.steps, stop_at)
    writer = MetricsWriter(out, start_step=start_step) if ctx.is_main else None
    progress = tqdm(
        total=run.steps, initial=start_step, desc=desc, unit="step", disable=not ctx.is_main or None, dynamic_ncols=True
    )
    last_losses: list[float] = []
    train_seconds = 0.0
    try:
        with _sigint_requests_stop() as interrupted:
            for step in range(start_step, end):
                t0 = time.perf_counter()
                lr, wd = set_schedules(optimizer, step, run.steps, optim)
                loss, parts = objective.loss(step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
                optimizer.step()
                extras = objective.after_step(step)
                # One all-reduce per step: the losses, and whether any process was interrupted.
                loss_value, *part_values, stop = ctx.mean(
                    [loss.item(), *(p.item() for p in parts.values()), float(interrupted.is_set())]
                )
                if not np.isfinite(loss_value):
                    raise FloatingPointError(f"step {step}: the loss is {loss_value}; lower optim.lr or check the data")
                elapsed = time.perf_counter() - t0
                train_seconds += elapsed
                last_losses = (last_losses + [loss_value])[-10:]
                clips_per_s = run.batch_size * ctx.world_size / elapsed
                if writer is not None:
                    writer.log(
                        "train",
                        step,
                        {
                            "loss": loss_value,
                            **dict(zip(parts, part_values)),
                            "lr": lr,
                            "weight_decay": wd,
                            **extras,
                            "grad_norm": float(grad_norm),
                            "clips_per_s": clips_per_s,
                        },
                    )
                progress.set_postfix(loss=f"{loss_value:.4f}", clips_s=f"{clips_per_s:.0f}", refresh=False)
                progress.update(1)

                done = step + 1
                if (
                    ctx.is_main
                    and objective.validate is not None
                    and ((run.val_every and done % run.val_every == 0) or done == run.steps)
                ):
                    with torch.no_grad():
                        metrics, report = objective.validate()
                    writer.log("val", done, metrics)
                    progress.write(f"step {done}: {report}")
                saved = (run.save_every and done % run.save_every == 0) or done == end
                if saved:
                    save_state(done)
                if stop and done < end:
                    if not saved:
                        save_state(done)
                    if ctx.is_main:
                        progress.write(
                            f"interrupted: saved the training state after step {done} in {out / STATE_FILE}; "
                            "run the same command with --resume to continue",
                            file=sys.stderr,
                        )
                    ctx.barrier()  # the other ranks exit only once rank 0's save is on disk
                    raise KeyboardInterrupt
    finally:
        progress.close()
        if writer is not None:
            writer.close()
    for module in objective.modules.values():
        ctx.check_replicas(module)
    return LoopResult(
        start_step=start_step,
        end_step=end,
        train_seconds=train_seconds,
        clips_per_second=(end - start_step) * run.batch_size * ctx.world_size / max(train_seconds, 1e-9),
        final_train_loss=float(np.mean(last_losses)) if last_losses else float("nan"),
        metrics=writer.kind if writer is not None else "",
    )


@contextmanager
def _sigint_requests_stop() -> Iterator[threading.Event]:
    """While inside: SIGINT sets the yielded event instead of raising KeyboardInterrupt mid-step.

    Python handles signals in the main thread only; elsewhere (a training run in a worker thread)
    the event is never set and SIGINT keeps its usual meaning for the main thread.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    try:
        yield interrupted
    finally:
        # None: the previous handler was not set from Python; the default one is the closest.
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
