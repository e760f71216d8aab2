"""The ``jepa-mpc`` command lines the tests run on tiny models and data: the few settings that make a command
quick on the CPU, written once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

TINY_PLANNER = ("--planner.samples", "8", "--planner.iterations", "1", "--planner.topk", "2")
"""One search iteration of 8 samples: the cheapest plan an evaluation test makes."""


def eval_argv(
    checkpoint: str | Path,
    task: str = "reach",
    episodes: int = 1,
    max_steps: int = 2,
    videos: int = 0,
    policies: Sequence[str] = (),
    planner: Sequence[str] = TINY_PLANNER,
) -> list[str]:
    """``jepa-mpc eval`` of the model ``checkpoint`` on the CPU: ``episodes`` episodes of ``task``, ``max_steps``
    planner steps each, ``videos`` GIFs per policy, of ``policies`` (empty: every policy), planning with the
    ``planner`` flags. The test adds ``--out`` and its own flags."""
    argv = ["eval", "--task", task, "--episodes", str(episodes), "--max_steps", str(max_steps), "--videos", str(videos)]
    if policies:
        argv += ["--policies", *policies]
    return [*argv, "--checkpoint", str(checkpoint), "--device", "cpu", *planner]
