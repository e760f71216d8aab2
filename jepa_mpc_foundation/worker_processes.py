"""Pool workers that end with their parent and stop at once when told to.

``concurrent.futures.ProcessPoolExecutor`` leaves two gaps that lose or spoil work (issue 29, part 3):

- its workers outlive a parent killed with SIGKILL (the out-of-memory killer): they finish the calls
  already queued, write files no one is waiting for, then wait for ever;
- on Ctrl-C (SIGINT reaches every process of the terminal's group) each worker turns the signal into
  the failure of its current call and goes on with the next queued one, for seconds.

Here a worker finishes its call on Ctrl-C but starts no queued one: it waits for the parent, which stops
it with SIGTERM. On a loaded machine the parent may act on its own Ctrl-C only seconds later, and a queued
call started meanwhile would write files (an episode's GIF) that the interrupted run never reports.

The three pieces, used by the local backend of :mod:`jepa_mpc_foundation.episode_backends` (``jepa-mpc
collect`` and ``jepa-mpc eval`` with ``--workers``)::

    pool = ProcessPoolExecutor(n, mp_context=spawn, initializer=init, initargs=(config, os.getpid()))

    def init(config, parent_pid):
        die_with_parent(parent_pid)   # first: SIGTERM when the parent dies; SIGINT holds the queue
        ...build the worker...
        stop_on_sigterm()             # SIGTERM now unwinds the call in progress (files cleaned up)

    @stoppable
    def run_one(index): ...           # the function the pool calls

    except KeyboardInterrupt:
        stop_workers(pool)            # the parent stops them at once

Python 3.14 adds ``ProcessPoolExecutor.terminate_workers()``; :func:`stop_workers` uses it there.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STOPPED_EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM
# How long a worker given Ctrl-C waits for its parent's SIGTERM before it takes its next call: a SIGINT
# sent to the worker alone (not the terminal's, which the parent gets too) holds its queue no longer.
HOLD_AFTER_INTERRUPT_S = 10.0
_interrupted_at: float | None = None  # in a worker: when it last got SIGINT (time.monotonic()), if since its last call
_T = TypeVar("_T")


class WorkerStopped(SystemExit):
    """Raised in a worker by SIGTERM once :func:`stop_on_sigterm` ran: the call in progress unwinds
    (``finally`` and ``except BaseException`` blocks remove half-written files) and the process ends.
    A ``SystemExit``, so a worker stopped between calls ends without a traceback."""


def die_with_parent(parent_pid: int) -> None:
    """In a pool worker: be sent SIGTERM when the process ``parent_pid`` (the pool's owner) dies, and
    take SIGINT as "start no queued call" (a terminal's Ctrl-C reaches the whole process group; the call in
    progress goes on, the parent decides what stops; see :func:`stoppable`).

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (the kernel signals at the parent's death, even by
    SIGKILL); elsewhere a daemon thread checks the parent pid twice a second. Call it first in the
    pool's initializer: until :func:`stop_on_sigterm`, SIGTERM simply ends the process. On Linux the
    "parent" is the thread that started the worker (a pool starts them in the thread that submits):
    submit from a thread that outlives the pool, e.g. the main one.
    """
    signal.signal(signal.SIGINT, _note_interrupt)
    if not _set_parent_death_signal(signal.SIGTERM):
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked to tell us
        os._exit(_STOPPED_EXIT_CODE)


def _note_interrupt(signum, frame) -> None:
    global _interrupted_at
    _interrupted_at = time.monotonic()


def _hold_after_interrupt() -> None:
    """Before a call: after a SIGINT, wait for the parent's SIGTERM (raised here as :class:`WorkerStopped`)
    up to :data:`HOLD_AFTER_INTERRUPT_S`, then go on."""
    global _interrupted_at
    while _interrupted_at is not None and time.monotonic() - _interrupted_at < HOLD_AFTER_INTERRUPT_S:
        time.sleep(0.05)
    _interrupted_at = None


def _set_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_on_sigterm() -> None:
    """In a pool worker, once it is built: SIGTERM raises :class:`WorkerStopped` (see there)."""

    def stop(signum, frame) -> None:
        raise WorkerStopped(_STOPPED_EXIT_CODE)

    signal.signal(signal.SIGTERM, stop)


def stoppable(function: Callable[..., _T]) -> Callable[..., _T]:
    """Decorate the function a pool calls: a :class:`WorkerStopped` raised in it ends the process once
    the call has unwound. (The pool's worker loop turns any exception of a call, ``SystemExit``
    included, into that call's failure and takes the next queued call: the process must end here.)
    A call that comes after a SIGINT first waits for the parent's SIGTERM (see :func:`die_with_parent`)."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            _hold_after_interrupt()
            return function(*args, **kwargs)
        except WorkerStopped:
            # What multiprocessing runs when a child ends, e.g. releasing the semaphores this process
            # registered (tqdm's lock): else the resource tracker warns of them as leaked.
            multiprocessing.util._exit_function()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(_STOPPED_EXIT_CODE)

    return call


def stop_workers(pool: ProcessPoolExecutor, timeout_s: float = 5.0) -> None:
    """Cancel the pool's queued calls and stop its workers now: SIGTERM (the calls in progress unwind,
    see :func:`stop_on_sigterm`), SIGKILL for one still alive after ``timeout_s``. Returns when they
    have ended. Results of calls that finished before stay in their futures."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    # Taken before shutdown(), which drops the pool's reference to its processes.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
