"""Pool workers on Ctrl-C (jepa_mpc_foundation/worker_processes.py): a worker given SIGINT finishes its call
but starts no queued one until its parent stops it, however slow the parent is; a SIGINT sent to the workers
alone holds their queue for HOLD_AFTER_INTERRUPT_S, then the work goes on."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent import futures
from pathlib import Path

import pytest

from jepa_mpc_foundation.worker_processes import (
    HOLD_AFTER_INTERRUPT_S,
    die_with_parent,
    stop_on_sigterm,
    stop_workers,
    stoppable,
)

JOBS = 20


def _init(parent_pid: int) -> None:
    die_with_parent(parent_pid)
    stop_on_sigterm()


@stoppable
def _write_after(path: str, seconds: float) -> str:
    time.sleep(seconds)
    Path(path).write_text(str(os.getpid()))
    return path


def _pool() -> futures.ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")
    return futures.ProcessPoolExecutor(2, mp_context=context, initializer=_init, initargs=(os.getpid(),))


def _written(folder: Path) -> int:
    return len(list(folder.iterdir()))


def _both_workers_ran(folder: Path) -> bool:
    """Both workers finished a call, so both are built (a SIGINT before that would end one as Python's default)."""
    return len({pid for path in folder.iterdir() if (pid := path.read_text())}) == 2  # (a file being written: "")


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.timeout(120)
def test_workers_given_sigint_start_no_queued_call_until_the_parent_stops_them(tmp_path):
    pool = _pool()
    try:
        done = [pool.submit(_write_after, str(tmp_path / f"{i}.txt"), 0.2) for i in range(JOBS)]
        _wait_for(lambda: _both_workers_ran(tmp_path), 60, "a call finished in each worker")
        workers = list(pool._processes.values())
        for worker in workers:  # the terminal's Ctrl-C, before the parent acts on it
            os.kill(worker.pid, signal.SIGINT)
        at_interrupt = _written(tmp_path)
        time.sleep(1.5)  # a slow parent: seven calls' time
        assert _written(tmp_path) <= at_interrupt + len(workers)  # only the calls in progress finished
        stop_workers(pool)
        # Dead once stop_workers returns; the pool's own thread may reap one first, and until it has stored the exit
        # status, is_alive() in this thread still says True.
        _wait_for(lambda: not any(worker.is_alive() for worker in workers), 10, "the workers stopped")
        finished = [future for future in done if future.done() and not future.cancelled() and not future.exception()]
        assert len(finished) == _written(tmp_path) < JOBS  # every file written was a call reported
    finally:
        stop_workers(pool)


@pytest.mark.timeout(120)
def test_a_sigint_to_the_workers_alone_holds_their_queue_for_a_while_then_the_calls_go_on(tmp_path):
    with _pool() as pool:
        done = [pool.submit(_write_after, str(tmp_path / f"{i}.txt"), 0.05) for i in range(JOBS)]
        _wait_for(lambda: _both_workers_ran(tmp_path), 60, "a call finished in each worker")
        for worker in list(pool._processes.values()):
            os.kill(worker.pid, signal.SIGINT)
        interrupted = time.monotonic()
        results = [future.result(timeout=60) for future in done]  # no parent stops them: they go on
        assert time.monotonic() - interrupted >= HOLD_AFTER_INTERRUPT_S - 0.5
    assert len(results) == JOBS == _written(tmp_path)
