"""What counts as a user's mistake, and how it is told: one line, no traceback.

Every entry point (the ``jepa-mpc`` commands, the ROS nodes' ``main``) reports these exceptions as a
single line naming the input and the fix, and exits with :data:`USER_ERROR_EXIT_CODE`; any other
exception is a bug and keeps its traceback. The project raises ``ValueError`` subclasses for bad
inputs (``ConfigError``, ``DatasetError``, ``EpisodeError``, ``CheckpointError``, ``VideoDecodeError``,
``InputRejected``), so new input checks fall under this policy by raising one. :class:`WorkerLost` is
the one that is not about the input: the machine ended a worker process (the out-of-memory killer),
and the fix, like an input's, is the user's.
"""

from __future__ import annotations

import argparse


class WorkerLost(RuntimeError):
    """A worker process of a parallel job ended abruptly (killed: by the out-of-memory killer, by a
    user's ``kill``); the message says what was kept and how to resume."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    argparse.ArgumentError,
    WorkerLost,
)
USER_ERROR_EXIT_CODE = 2  # argparse's status for a usage error
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (an OSError from ``open()`` as ``file: reason``)."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__
