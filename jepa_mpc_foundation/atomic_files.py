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
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On an exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is left
    as it was. Use it for writers that want a file name (``torch.save``, PyAV, pyarrow)::

        with atomic_path(out / "model.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; give the file the permissions a plain open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    tmp = Path(tmp_name)
    try:
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
