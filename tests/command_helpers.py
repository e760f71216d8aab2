"""The ``jepa-mpc`` command lines the tests run on tiny models and data: the few settings that make a command
quick on the CPU, written once."""

from __future__ import annotations

import sys
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


SMALL_PREDICTOR = ("--predictor.dim", "48", "--predictor.depth", "2", "--predictor.num_heads", "2")
"""The predictor of conftest's ``tiny_world_model``: 48 features, 2 blocks, 2 heads."""
TINY_PREDICTOR = ("--predictor.dim", "32", "--predictor.depth", "1", "--predictor.num_heads", "2")
"""The cheapest predictor a test trains: 32 features, 1 block, 2 heads."""
SHORT_TRAIN_RUN = (
    *SMALL_PREDICTOR,
    *("--optim.warmup_steps", "1"),
    *("--run.steps", "3", "--run.batch_size", "8", "--run.val_clips", "8"),
)
"""The cheapest ``jepa-mpc train`` run with the small predictor: 3 steps of 8 clips, validated on 8 clips."""


def train_argv(data: str | Path, encoder: str | Path, out: str | Path, cache: str | Path) -> list[str]:
    """``jepa-mpc train`` of a predictor on ``encoder``'s tokens of ``data`` (cached in ``cache``) into ``out``;
    the test adds the sizes and the run's length."""
    return ["train", "--data", str(data), "--encoder", str(encoder), "--out", str(out), "--data.cache_dir", str(cache)]


def frozen_tokens_argv(
    command: str, data: str | Path, checkpoint: str | Path, out: str | Path, cache: str | Path
) -> list[str]:
    """``jepa-mpc train-policy`` or ``jepa-mpc ood-stats`` (``command``) on the one-view ``data``, read through the
    frozen world model ``checkpoint`` (its tokens cached in ``cache``), writing ``out``."""
    argv = [command, "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out)]
    return [*argv, "--data.wrist_camera", "", "--data.cache_dir", str(cache)]


def torchrun(processes: int, argv: Sequence[str]) -> list[str]:
    """``jepa-mpc ARGV`` in ``processes`` processes that ``torchrun --standalone`` starts on this machine."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    return [*launcher, "-m", "jepa_mpc", *argv]
