"""Where a job's episodes run: in this process, in local worker processes, or on Ray (issue 30, part 3).

``jepa-mpc eval`` and ``jepa-mpc collect`` describe their episodes as an :class:`EpisodeWork` (how a
process builds its worker once, how the worker runs one episode) and hand them to :func:`run_episodes`
with an :class:`EpisodeBackend`:

- ``local``, ``workers`` 1: one after another in this process;
- ``local``, ``workers`` N: N spawned processes that end with this one and stop at once on Ctrl-C
  (:mod:`jepa_mpc_foundation.worker_processes`); a killed one is :class:`WorkerLost`;
- ``ray``: one `Ray <https://docs.ray.io>`_ task per episode, on a running cluster (``--ray.address``)
  or on a Ray instance started on this machine for the command. A task whose worker process or node
  dies is rerun (``--ray.max_retries``); since an episode is seeded by its index alone, the rerun gives
  the result the lost one would have. Ray is an optional extra (``pip install 'jepa-mpc[ray]'``) and is
  imported only here, only when asked for.

Whatever the backend, ``on_result(job, result)`` is called in this process as each episode finishes,
and on any exception (Ctrl-C included) the episodes still running are stopped (their ``finally`` blocks
run: no half-written file), the ones finished meanwhile are still handed to ``on_result``, and the
exception goes on.
"""

from __future__ import annotations

import concurrent.futures as futures
import importlib.util
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from jepa_mpc_foundation.user_errors import WorkerLost
from jepa_mpc_foundation.worker_processes import die_with_parent, stop_on_sigterm, stop_workers, stoppable

BACKENDS = ("local", "ray")
RAY_INSTALL = "pip install 'jepa-mpc[ray]'"
LOST_WORKER = "a worker process ended abruptly (killed, e.g. by the out-of-memory killer)"
STOP_TIMEOUT_S = 5.0  # how long stopped episodes get to unwind before their processes are killed
_WAIT_S = 0.5  # ray.wait's timeout: Ctrl-C is seen between two waits

ConfigT = TypeVar("ConfigT")
WorkerT = TypeVar("WorkerT")
JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")


@dataclass
class RayConfig:
    """Where ``--backend ray`` runs the episodes: a running Ray cluster (``--ray.address``), else a Ray
    instance started on this machine for the command and stopped after it."""

    address: str | None = field(
        default=None,
        metadata={
            "help": "a running Ray cluster: its head's HOST:6379 (this machine must be a node: `ray start "
            "--address HOST:6379`), ray://HOST:10001 (Ray Client, from any machine) or auto (the cluster this "
            "machine is a node of); default: a Ray instance on this machine, for this command only"
        },
    )
    num_cpus: int = field(
        default=0, metadata={"help": "CPUs of the Ray instance started on this machine (0: all); not with an address"}
    )
    max_retries: int = field(
        default=3, metadata={"help": "times an episode whose worker process or node died is rerun"}
    )

    def __post_init__(self) -> None:
        if self.address is not None and not self.address.strip():
            raise ValueError(
                "ray.address is empty: give a cluster's address (HOST:6379, ray://HOST:10001 or auto), "
                "or leave it out for a Ray instance on this machine"
            )
        if self.num_cpus < 0:
            raise ValueError(f"ray.num_cpus must be >= 0 (0: all CPUs), got {self.num_cpus}")
        if self.num_cpus and self.address is not None:
            raise ValueError(
                f"ray.num_cpus sizes a Ray instance started on this machine, not the cluster at {self.address} "
                "(its nodes bring their own CPUs): leave --ray.num_cpus out"
            )
        if self.max_retries < 0:
            raise ValueError(f"ray.max_retries must be >= 0, got {self.max_retries}")


@dataclass(frozen=True)
class EpisodeBackend:
    """Where :func:`run_episodes` runs episodes; built from a command's ``backend``, ``workers`` and ``ray``
    fields, whose ``__post_init__`` builds one to check them.

    Raises (when built):
        ValueError: an unknown backend, ``workers`` < 1, ``--workers`` or ``--ray.*`` with the other backend,
            or ``ray`` asked for and not installed (naming the fix).
    """

    name: str = "local"
    workers: int = 1
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.name!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.name == "local" and self.ray != RayConfig():
            raise ValueError("--ray.* flags set, but the backend is local: add --backend ray")
        if self.name == "ray":
            if self.workers != 1:
                raise ValueError(
                    "--workers counts processes on this machine; with --backend ray the cluster's CPUs (or "
                    "--ray.num_cpus on this machine) set how many episodes run at once: leave --workers out"
                )
            if importlib.util.find_spec("ray") is None:
                raise ValueError(_ray_missing())

    def runs_here(self, episodes: int) -> bool:
        """Whether ``episodes`` episodes would run in this process."""
        return self.name == "local" and (self.workers == 1 or episodes <= 1)

    def describe(self) -> str:
        """Where the episodes run, for a command's first line: ``2 worker processes``, ``Ray at HOST:6379``."""
        if self.name == "ray":
            return f"Ray at {self.ray.address}" if self.ray.address else "a Ray instance on this machine"
        return f"{self.workers} worker process{'es' * (self.workers > 1)}" if self.workers > 1 else "this process"


@dataclass(frozen=True)
class EpisodeWork(Generic[ConfigT, WorkerT, JobT, ResultT]):
    """What :func:`run_episodes` runs: each process builds ``build(config)`` once, then runs its episodes as
    ``run(worker, job)``. ``build`` and ``run`` are module-level functions or classes (worker processes and
    Ray import them by name), ``config`` is picklable, and ``run``'s result depends on ``job`` alone (an
    episode seeded by its index), so any process, and a rerun, gives the same result."""

    build: Callable[[ConfigT], WorkerT]
    run: Callable[[WorkerT, JobT], ResultT]
    config: ConfigT


def run_episodes(
    work: EpisodeWork[Any, Any, JobT, ResultT],
    jobs: Sequence[JobT],
    backend: EpisodeBackend,
    on_result: Callable[[JobT, ResultT], None],
    worker: Any = None,
) -> None:
    """Run ``jobs`` where ``backend`` says, calling ``on_result(job, result)`` here as each one finishes
    (in order of completion). ``worker``: one already built in this process (from ``work.config``), used
    when the episodes run here.

    Raises:
        WorkerLost: a local worker process was killed (e.g. by the out-of-memory killer), or a Ray task's
            worker died more than ``ray.max_retries`` times.
        ValueError: ``--backend ray`` and Ray is not installed, or the cluster cannot be reached.
        KeyboardInterrupt, and whatever an episode raised: once the episodes still running are stopped.
    """
    if not jobs:
        return
    if backend.name == "ray":
        _run_on_ray(work, jobs, backend.ray, on_result)
    elif backend.runs_here(len(jobs)):
        worker = work.build(work.config) if worker is None else worker
        for job in jobs:
            on_result(job, work.run(worker, job))
    else:
        _run_in_processes(work, jobs, backend.workers, on_result)


# Local worker processes.

_LOCAL_WORK: EpisodeWork | None = None  # in a spawned worker process: what it runs
_LOCAL_WORKER: Any = None  # ... and the worker it built


def _init_process(work: EpisodeWork, parent_pid: int) -> None:
    global _LOCAL_WORK, _LOCAL_WORKER
    die_with_parent(parent_pid)  # an orphan would go on running episodes no one waits for
    _LOCAL_WORK, _LOCAL_WORKER = work, work.build(work.config)
    stop_on_sigterm()  # the parent stops the workers at once on Ctrl-C; an episode in progress unwinds


@stoppable
def _run_in_process(job: Any) -> Any:
    return _LOCAL_WORK.run(_LOCAL_WORKER, job)


def _run_in_processes(work: EpisodeWork, jobs: Sequence, workers: int, on_result: Callable) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh GL context per process: forking after EGL hangs
    with futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_process, initargs=(work, os.getpid())
    ) as pool:
        pending = {pool.submit(_run_in_process, job): job for job in jobs}
        reported: set[futures.Future] = set()
        try:
            for future in futures.as_completed(pending):
                result = future.result()
                reported.add(future)
                on_result(pending[future], result)
        except BaseException as error:
            stop_workers(pool)
            for future, job in pending.items():
                if future not in reported and future.done() and not future.cancelled() and future.exception() is None:
                    on_result(job, future.result())
            if isinstance(error, BrokenProcessPool):
                raise WorkerLost(LOST_WORKER) from error
            raise


# Ray.


def _ray_missing() -> str:
    return f"--backend ray needs Ray, which is not installed: {RAY_INSTALL}"


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise ValueError(_ray_missing()) from error
    return ray


_RAY_WORKER: tuple[str, Any] | None = None  # in a Ray worker process: (the run it serves, the worker it built)


def _run_on_ray_worker(work: EpisodeWork, run_id: str, job: Any) -> Any:
    """One Ray task: the episode ``job``, by the worker this process built for the run ``run_id`` (Ray reuses
    a worker process for many tasks; one left from another run is dropped)."""
    global _RAY_WORKER
    if _RAY_WORKER is None or _RAY_WORKER[0] != run_id:
        _RAY_WORKER = None  # the previous run's worker goes before this one's is built
        _RAY_WORKER = (run_id, work.build(work.config))
    return work.run(_RAY_WORKER[1], job)


def _connect(ray, config: RayConfig) -> bool:
    """Connect to the cluster at ``config.address``, or start a Ray instance here; True if this call
    started one (to be shut down after). A connection this process already has is used as it is."""
    import logging

    if ray.is_initialized():
        return False
    try:
        if config.address is not None:
            ray.init(address=config.address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=config.num_cpus or None, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as error:  # no cluster at that address
        raise ValueError(
            f"--ray.address {config.address}: no Ray cluster answers there ({' '.join(str(error).split())}); "
            "start its head with `ray start --head` (docs/cluster.md), or leave --ray.address out for a Ray "
            "instance on this machine"
        ) from error
    return config.address is None


def _run_on_ray(work: EpisodeWork, jobs: Sequence, config: RayConfig, on_result: Callable) -> None:
    ray = _import_ray()
    started = _connect(ray, config)
    try:
        remote = ray.remote(_run_on_ray_worker).options(num_cpus=1, max_retries=config.max_retries)
        work_ref, run_id = ray.put(work), uuid.uuid4().hex
        pending = {remote.remote(work_ref, run_id, job): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_S)
                for ref in done:
                    result = _ray_result(ray, ref)
                    on_result(pending.pop(ref), result)
        except BaseException:
            _stop_ray_tasks(ray, pending, on_result)
            raise
    finally:
        if started:
            ray.shutdown()


def _ray_result(ray, ref) -> Any:
    """``ray.get(ref)``; an episode's own exception raised as itself, a lost worker as :class:`WorkerLost`."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        raise error.cause from error  # the worker's traceback, as text, in the chain
    except _lost_worker_errors(ray) as error:
        raise WorkerLost(
            f"a Ray worker ended abruptly more often than --ray.max_retries allows ({' '.join(str(error).split())})"
        ) from error


def _lost_worker_errors(ray) -> tuple[type[BaseException], ...]:
    """Ray's exceptions for a task whose process, node or result was lost (not the episode's own failure)."""
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OutOfMemoryError")
    return tuple(getattr(ray.exceptions, name) for name in names if hasattr(ray.exceptions, name))


def _stop_ray_tasks(ray, pending: dict, on_result: Callable) -> None:
    """Cancel the tasks of ``pending`` (a running episode gets KeyboardInterrupt and unwinds); those still
    running after :data:`STOP_TIMEOUT_S` are killed. Results that finished meanwhile go to ``on_result``."""
    for ref in pending:
        ray.cancel(ref)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    remaining = list(pending)
    while remaining and time.monotonic() < deadline:
        _, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.1)
    for ref in remaining:
        ray.cancel(ref, force=True)
    for ref, job in pending.items():
        if ref not in remaining:
            try:
                result = ray.get(ref, timeout=0)
            except Exception:  # cancelled, or failed: not a finished episode
                continue
            on_result(job, result)
