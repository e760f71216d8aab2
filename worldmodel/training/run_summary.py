"""What a training run reports at its end: ``OUT/summary.json`` and the lines its command prints.

``jepa-mpc train`` and ``jepa-mpc pretrain`` report in one frame (:class:`RunSummary`): the steps run,
their speed and final loss, the command's own results, the episode split, and where the product is
or, for a run stopped early, the state to resume from. Each command's summary adds its own fields
and lines (:class:`.train_predictor.TrainSummary`, :class:`.pretrain_encoder.PretrainSummary`);
``jepa-mpc train-policy``'s (:class:`.train_goal_policy.PolicyTrainSummary`) holds the same fields and
reports in words of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from jepa_mpc_foundation.atomic_files import write_json_atomic

from .distributed import DistributedContext
from .episodes import split_report
from .loop import LoopResult
from .train_state import STATE_FILE, SUMMARY_FILE

Summary = TypeVar("Summary", bound="RunSummary")  # typing.Self needs Python 3.11; the project runs on 3.10


@dataclass(kw_only=True)
class RunSummary:
    """The part of a run's summary every training command has; ``summary.json`` holds its fields.

    Subclasses name their product (``PRODUCT``, the file written after the last step), may change the
    first word of the report (``VERB``) and add their results as fields and as :meth:`result_lines`.
    """

    VERB: ClassVar[str] = "trained"
    PRODUCT: ClassVar[str] = "model.pt"
    JSON_NAMES: ClassVar[dict[str, str]] = {}  # {field: its key in summary.json} where the two differ

    out: str
    rank: int
    steps: int  # the last step run: total_steps, or less for a run stopped early (stop_at)
    start_step: int  # 0, or the step a resumed run continued from
    world_size: int
    train_seconds: float  # wall time of the training steps (validation and saving excluded)
    clips_per_second: float  # over all processes, training steps only
    final_train_loss: float  # mean of the last 10 steps
    train_episodes: int
    val_episodes: int
    skipped_episodes: list[dict] = field(default_factory=list)
    metrics: str = ""  # what the metrics were written as (tensorboard + csv); "" on ranks other than 0
    total_steps: int = 0  # run.steps

    @classmethod
    def of_run(
        cls: type[Summary],
        ctx: DistributedContext,
        result: LoopResult,
        out: Path,
        total_steps: int,
        train_episodes: int,
        val_episodes: int,
        skipped_episodes: list[dict],
        **results,
    ) -> Summary:
        """The summary of the run ``result`` reports, on this process, with the command's ``results`` fields."""
        return cls(
            out=str(out),
            rank=ctx.rank,
            steps=result.end_step,
            start_step=result.start_step,
            world_size=ctx.world_size,
            train_seconds=result.train_seconds,
            clips_per_second=result.clips_per_second,
            final_train_loss=result.final_train_loss,
            train_episodes=train_episodes,
            val_episodes=val_episodes,
            skipped_episodes=skipped_episodes,
            metrics=result.metrics,
            total_steps=total_steps,
            **results,
        )

    def result_lines(self) -> list[str]:
        """The command's own results (validation, ...), printed after the progress line."""
        return []

    def product_line(self) -> str:
        """Where a finished run's product is (and how to use it)."""
        return f"{Path(self.PRODUCT).stem}: {Path(self.out) / self.PRODUCT}"

    def text(self) -> str:
        """The report printed at the end of the run, one line per fact."""
        lines = [
            f"{self.VERB} steps {self.start_step}..{self.steps} on {self.world_size} process(es) in "
            f"{self.train_seconds:.1f} s ({self.clips_per_second:.1f} clips/s); "
            f"final train loss {self.final_train_loss:.4f}"
        ]
        lines += self.result_lines()
        lines += split_report(self.train_episodes, self.val_episodes, self.skipped_episodes)
        files = f"metrics ({self.metrics}) and summary in {self.out}"
        if self.steps < self.total_steps:
            lines.append(
                f"stopped at step {self.steps} of {self.total_steps}: state in {Path(self.out) / STATE_FILE}; "
                f"resume with --resume true ({self.PRODUCT} is written after the last step); {files}"
            )
        else:
            lines.append(f"{self.product_line()}; {files}")
        return "\n".join(lines)

    def write(self) -> None:
        """Write ``OUT/summary.json`` (strict JSON: a loss that is not a finite number is ``null``)."""
        values = {self.JSON_NAMES.get(name, name): value for name, value in asdict(self).items()}
        write_json_atomic(Path(self.out) / SUMMARY_FILE, values)
