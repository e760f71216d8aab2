"""What the tests of interrupted and killed runs share: a ``jepa-mpc`` command in a process group of
its own (a terminal's Ctrl-C reaches the whole group), its child processes, and waiting on them; and
the environment of any process a test starts (:func:`environment`; a ROS node's: :func:`ros_environment`),
and a small ``jepa-mpc bringup`` of both ROS nodes (:func:`small_bringup`).

Children are found through /proc (``/proc/PID/task/*/children`` is missing on some kernels); a child
reparented after its parent's death may stay a zombie where PID 1 does not reap: zombies count as ended.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMALL_BRINGUP = (
    "sim_node:\n  ros__parameters:\n    sim: {image_size: 48}\n"
    "planner_node:\n  ros__parameters:\n    device: cpu\n    autostart: true\n"
    "    planner: {samples: 16, iterations: 2, topk: 4}\n"
)
"""A bringup parameter file: 48 px sim images, a planner on the CPU that searches 16 samples and starts at once."""


def environment() -> dict[str, str]:
    """The environment of a process a test starts: this checkout's code first on PYTHONPATH (not the copy an
    environment installed), and headless rendering unless the test's environment chose otherwise."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", env["MUJOCO_GL"])
    return env


def random_ros_domain() -> int:
    """A random DDS domain in 1..100 (isolated from other test sessions), never one another pytest-xdist worker
    of this run can pick: worker k of W draws from k + 1, k + 1 + W, ... (``make test`` runs two workers)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return 1 + worker + workers * random.randrange(100 // workers)


def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """The environment of a ROS process a test starts: this checkout's code (:func:`environment`), DDS
    domain ``domain_id`` (the test's graph's) or a random one (isolated from other test sessions), discovery on
    this machine only (ROS_AUTOMATIC_DISCOVERY_RANGE: Jazzy and later; ROS_LOCALHOST_ONLY: older
    distributions), and log lines written as they come, so that a test reads them while the process runs."""
    return {
        **environment(),
        "ROS_DOMAIN_ID": str(random_ros_domain() if domain_id is None else domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOCALHOST_ONLY": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
    }


@contextlib.contextmanager
def small_bringup(folder: Path, checkpoint: str, *flags: str) -> Iterator[tuple[subprocess.Popen, list[str]]]:
    """``jepa-mpc bringup FLAGS`` of both nodes from :data:`SMALL_BRINGUP` (written to ``folder``), planning with
    the model ``checkpoint``; yields the process and its output lines, collected as they come. The process is
    killed if it still runs at the end."""
    params = folder / "sim_small.yaml"
    params.write_text(SMALL_BRINGUP)
    command = [sys.executable, "-m", "jepa_mpc.cli", "bringup", str(params), *flags]
    command += ["--ros-args", "-p", f"checkpoint:={checkpoint}"]
    env = ros_environment()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)


def start_command(argv: list[str], log: Path) -> subprocess.Popen:
    """``python -m jepa_mpc ARGV`` in its own session (its pid is its process group), stdout and stderr to ``log``.

    SIGINT is set back to its default in the child: a suite started in the background of a non-interactive
    shell (``bash -c '... &'``, ``nohup ... &``) inherits SIGINT ignored, and Python keeps an ignored SIGINT,
    so a command under test would never see the Ctrl-C a test sends it.
    """
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jepa_mpc", *argv],
            cwd=REPO,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def is_pool_worker(pid: int) -> bool:
    """``pid`` runs a multiprocessing worker started by spawn (not, e.g., multiprocessing's resource tracker)."""
    try:
        return b"spawn_main" in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid`` from /proc/PID/stat, None once it is gone."""
    try:
        text = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until it holds; return the seconds it took. AssertionError naming ``what`` at ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def kill_all(pids: list[int]) -> None:
    """SIGKILL what is left of ``pids`` (a test's clean-up; a failed test must not leave workers behind)."""
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
