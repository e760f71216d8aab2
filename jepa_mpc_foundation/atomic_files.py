"""Atomic file writes: a reader (or an interrupted writer) never sees a half-written file.

Everything the project writes that someone may read later (checkpoints, datasets, results) goes
through here: the data is written to a temporary name in the same folder, flushed to disk, then
renamed over the target, which POSIX guarantees to be atomic.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On an exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is left
    as it was. Use it for writers that want a file name (``torch.save``, PyAV, pyarrow)::

        with atomic_path(out / "model.pt") as tmp:
            torch.save(state, tmp)

    The file is created inside the ``try``: an exception raised at any line (a worker's SIGTERM is
    raised at whichever one runs next, ``jepa_mpc_foundation.worker_processes``) leaves no temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        # O_EXCL: never another writer's file; mode 0o666 less the umask, what a plain open() gives.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, value: object, indent: int | None = 1) -> None:
    """``value`` as JSON, atomically. JSON has no NaN or infinity: non-finite floats are written as null
    (``json.dumps`` would write ``NaN``, which JSON readers other than Python's refuse)."""
    write_text_atomic(path, json.dumps(_finite_or_null(value), indent=indent, allow_nan=False))


def _finite_or_null(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value
