"""atomic_path: the target is either the old file or the new one, and no temporary file is left behind,
whichever line an exception (e.g. a worker's SIGTERM, raised at the next line that runs) interrupts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jepa_mpc_foundation.atomic_files as atomic_files
from jepa_mpc_foundation.atomic_files import atomic_path


def test_the_new_file_replaces_the_old_with_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    target = tmp_path / "a" / "result.json"
    with atomic_path(target) as tmp:
        tmp.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".tmp")
        tmp.write_text("new")
    plain = tmp_path / "plain"
    plain.write_text("")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


@pytest.mark.parametrize("where", ["after-create", "in-body", "before-rename"])
def test_an_interruption_at_any_line_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch, where) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    real_close, real_replace = os.close, os.replace

    def close_then_interrupt(fd):
        real_close(fd)
        raise KeyboardInterrupt("just after the temporary file was created")

    def interrupt_before_rename(source, destination):
        raise KeyboardInterrupt("just before the rename")

    if where == "after-create":
        monkeypatch.setattr(atomic_files.os, "close", close_then_interrupt)
    if where == "before-rename":
        monkeypatch.setattr(atomic_files.os, "replace", interrupt_before_rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            if where == "in-body":
                raise KeyboardInterrupt("while writing")
    monkeypatch.setattr(atomic_files.os, "close", real_close)
    monkeypatch.setattr(atomic_files.os, "replace", real_replace)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
