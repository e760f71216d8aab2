"""An episode function for tests/test_ray_backend.py that Ray's workers import by name: it kills its own
process on an episode's first attempt. A module of its own, importing little, so that the new worker
process that reruns the episode starts quickly."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def killed_on_first_attempt(attempts: str, collector, index: int):
    """Episode ``index`` by ``collector`` (``sim.collect._Collector``), whose process is SIGKILLed on the first
    attempt: episode 0 before it records anything, episode 1 once its files are written. Each attempt
    appends its pid to ``attempts/episode{index}``."""
    log = Path(attempts) / f"episode{index}"
    first = not log.exists()
    with open(log, "a") as file:
        file.write(f"{os.getpid()}\n")
    if first and index == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    result = collector.collect(index)
    if first and index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
