"""Scalars over training: TensorBoard event files (``tensorboard --logdir RUN``) and CSV files beside them.

TensorBoard is a dependency, for looking at curves; the CSV files (one per group, ``train.csv``,
``val.csv``, with a ``step`` column) are for scripts and tests, which read them without TensorBoard.
A resumed run first drops the rows at or after its start step (written after the checkpoint it
resumes from; TensorBoard's ``purge_step`` does the same to its events), so both show one curve, as
an uninterrupted run would.
"""

from __future__ import annotations

import csv
from pathlib import Path


def read_csv_rows(path: str | Path) -> list[dict[str, float]]:
    """A metrics CSV as a list of {column: float} rows."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


class MetricsWriter:
    """``log(group, step, {name: value})``; rank 0 alone should create one."""

    def __init__(self, folder: str | Path, start_step: int = 0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start_step = start_step
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard = SummaryWriter(str(self.folder), purge_step=start_step if start_step else None)
        self.kind = "tensorboard + csv"
        self._files: dict[str, tuple] = {}

    def _csv(self, group: str, columns: list[str]):
        if group not in self._files:
            path = self.folder / f"{group}.csv"
            kept = (
                [r for r in read_csv_rows(path) if r["step"] < self.start_step]
                if path.is_file() and self.start_step
                else []
            )
            f = open(path, "w", newline="")
            writer = csv.DictWriter(f, fieldnames=["step", *columns])
            writer.writeheader()
            for row in kept:
                writer.writerow(
                    {k: _fmt(v) if k != "step" else int(v) for k, v in row.items() if k in writer.fieldnames}
                )
            self._files[group] = (f, writer)
        return self._files[group][1]

    def log(self, group: str, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.tensorboard.add_scalar(f"{group}/{name}", value, step)
        writer = self._csv(group, list(values))
        writer.writerow({"step": step, **{k: _fmt(v) for k, v in values.items()}})
        self._files[group][0].flush()

    def close(self) -> None:
        self.tensorboard.close()
        for f, _ in self._files.values():
            f.close()
        self._files.clear()


def _fmt(value: float) -> str:
    return repr(float(value))  # full precision: resumed curves are compared bit for bit
