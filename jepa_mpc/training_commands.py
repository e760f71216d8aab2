"""``jepa-mpc train``, ``pretrain``, ``init-encoder``, ``train-policy``, ``train-language-goal`` and ``ood-stats``: the
library's function, then its result printed.

The training functions take a run's data, folders and resume switches as arguments beside their
config (so that the config stored in a checkpoint is the model's recipe only); the command configs
here add those as fields (:class:`RunArguments`), so that a ``--config`` YAML file and the flags set
them alike, and the three training commands open their data and report alike (:func:`_train_and_report`).

A run folder holds one run: training into a folder that holds an earlier run is refused unless
``--resume true`` (continue it) or ``--overwrite true`` (replace it); ``--resume true`` on a run that
already finished says so and exits 0 without touching it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worldmodel.training.config import (
    DataConfig,
    EncoderRecipe,
    PretrainConfig,
    TokenStatisticsJobConfig,
    TrainGoalPolicyConfig,
    TrainLanguageGoalConfig,
    TrainPredictorConfig,
    VideoDataConfig,
    default_encoder_recipe,
)

if TYPE_CHECKING:  # the jobs import torch when they run, not when the CLI parses flags
    from worldmodel.training.episodes import EpisodeSource
    from worldmodel.training.run_summary import RunSummary
    from worldmodel.training.train_goal_policy import PolicyTrainSummary
    from worldmodel.training.train_language_goal import LanguageGoalTrainSummary

_DATA_HELP = "one or more LeRobot dataset folders (sim or DROID) or .npz files of episodes, read as one"


@dataclass(kw_only=True)
class RunArguments:
    """What a training command adds to the config its library function takes: the data it reads and the
    run folder it writes. They are arguments of that function, not config fields, so that the config a
    checkpoint stores is the model's recipe alone."""

    datasets: tuple[str, ...] = field(metadata={"help": _DATA_HELP, "aliases": ("--data",)})
    out: str = field(metadata={"help": "run folder: the command's result file, train_state.pt, metrics, summary.json"})
    resume: bool = field(
        default=False,
        metadata={
            "help": "continue the run in --out from its train_state.pt (a finished run: says so, changes nothing)"
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "replace the run --out holds (its train_state.pt, result and summary are deleted first); "
            "without it such a folder is refused"
        },
    )


@dataclass(kw_only=True)
class StoppableRunArguments(RunArguments):
    """:class:`RunArguments` of a command whose run may stop at a given step and resume later."""

    stop_at: int | None = field(
        default=None, metadata={"help": "stop after this step, saving the state (resume later)"}
    )


def _job_config(config: object, cls: type) -> object:
    """The ``cls`` part of a command config (a subclass of ``cls``): what the training function takes."""
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


def _train_and_report(
    config: RunArguments,
    data: DataConfig | VideoDataConfig,
    wrist_camera: str,
    job: Callable[[EpisodeSource], RunSummary],
) -> None:
    """Open ``config.datasets`` as ``data`` says (with ``wrist_camera`` as a second view, "" for none), run
    ``job`` on the episodes and print its summary. A resumed run that had already finished prints one line
    and exits 0 without touching it. Under torchrun, rank 0 alone prints."""
    from worldmodel.training.episodes import open_episodes
    from worldmodel.training.train_state import RunFinished

    source = open_episodes(
        config.datasets,
        camera=data.camera,
        sample_fps=data.sample_fps,
        skip_bad=data.bad_episodes == "skip",
        wrist_camera=wrist_camera,
    )
    try:
        report = job(source).text()
    except RunFinished as finished:
        report = str(finished)
    if int(os.environ.get("RANK", "0")) == 0:
        print(report)


@dataclass(kw_only=True)
class TrainCommandConfig(TrainPredictorConfig, StoppableRunArguments):
    """``jepa-mpc train``: the predictor's training config, the run's data and folder (``OUT/model.pt``),
    and the encoder it trains on."""

    encoder: str = field(
        metadata={
            "help": "encoder checkpoint: jepa-mpc pretrain output, a project model.pt, a released V-JEPA 2 / 2.1 file, "
            "or a Hugging Face VJEPA2Model folder / model.safetensors (README, Checkpoint layouts)"
        }
    )
    encoder_img_size: int = field(
        default=256,
        metadata={"help": "input size of a released encoder file (no config inside; V-JEPA 2.1 was trained at 384)"},
    )
    encoder_num_heads: int | None = field(
        default=None, metadata={"help": "head count of a released V-JEPA 2.1 file whose sizes match no released model"}
    )


def train(config: TrainCommandConfig) -> None:
    from worldmodel.training.train_predictor import train_predictor

    def job(source: EpisodeSource) -> RunSummary:
        return train_predictor(
            _job_config(config, TrainPredictorConfig),
            source,
            config.encoder,
            config.out,
            resume=config.resume,
            stop_at=config.stop_at,
            encoder_img_size=config.encoder_img_size,
            encoder_num_heads=config.encoder_num_heads,
            overwrite=config.overwrite,
        )

    _train_and_report(config, config.data, config.data.wrist_camera, job)


@dataclass(kw_only=True)
class PretrainCommandConfig(PretrainConfig, StoppableRunArguments):
    """``jepa-mpc pretrain``: the encoder's pretraining config and the run's data and folder (``OUT/encoder.pt``).

    ``--preset NAME`` is ``--encoder.preset NAME``.
    """


def pretrain(config: PretrainCommandConfig) -> None:
    from worldmodel.training.pretrain_encoder import pretrain_encoder

    def job(source: EpisodeSource) -> RunSummary:
        return pretrain_encoder(
            _job_config(config, PretrainConfig),
            source,
            config.out,
            resume=config.resume,
            stop_at=config.stop_at,
            overwrite=config.overwrite,
        )

    _train_and_report(config, config.data, "", job)


@dataclass(kw_only=True)
class RandomEncoderCommandConfig:
    """``jepa-mpc init-encoder``: an encoder left at its random initialisation, for ``jepa-mpc train --encoder``.

    ``--preset NAME`` is ``--encoder.preset NAME``.
    """

    encoder: EncoderRecipe = field(default_factory=default_encoder_recipe)
    seed: int = field(
        default=0, metadata={"help": "torch seed of the initial weights (the same seed gives the same file)"}
    )
    out: str = field(metadata={"help": "folder for encoder.pt"})
    overwrite: bool = field(default=False, metadata={"help": "replace an encoder.pt already in --out"})


def init_encoder(config: RandomEncoderCommandConfig) -> None:
    from worldmodel.training.pretrain_encoder import write_random_encoder

    path, written = write_random_encoder(config.encoder, config.seed, config.out, config.overwrite)
    print(
        f"{'wrote' if written else 'already there, unchanged:'} random encoder "
        f"({config.encoder.preset}, {config.encoder.img_size} px, seed {config.seed}): {path} "
        "(use: jepa-mpc train --encoder ...)"
    )


@dataclass(kw_only=True)
class TrainPolicyCommandConfig(TrainGoalPolicyConfig, RunArguments):
    """``jepa-mpc train-policy``: the goal policy's training config, the run's data and folder
    (``OUT/model.pt``: the world model with the policy), and the world model it reads."""

    checkpoint: str = field(
        default="",
        metadata={"help": "the world model whose frozen tokens the policy reads; empty = the shipped default model"},
    )


def train_policy(config: TrainPolicyCommandConfig) -> None:
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel.training.train_goal_policy import train_goal_policy

    def job(source: EpisodeSource) -> PolicyTrainSummary:
        return train_goal_policy(
            _job_config(config, TrainGoalPolicyConfig),
            source,
            resolve_checkpoint(config.checkpoint),
            config.out,
            resume=config.resume,
            overwrite=config.overwrite,
        )

    _train_and_report(config, config.data, config.data.wrist_camera, job)


@dataclass(kw_only=True)
class TrainLanguageGoalCommandConfig(TrainLanguageGoalConfig, RunArguments):
    """``jepa-mpc train-language-goal``: the language-goal predictor's training config, the run's data (episodes
    whose task is their instruction) and folder (``OUT/model.pt``: the world model with the predictor), and the
    world model it reads."""

    checkpoint: str = field(
        default="",
        metadata={"help": "the world model whose frozen tokens the predictor reads; empty = the shipped default model"},
    )


def train_language_goal(config: TrainLanguageGoalCommandConfig) -> None:
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel.training.train_language_goal import train_language_goal as train

    def job(source: EpisodeSource) -> LanguageGoalTrainSummary:
        return train(
            _job_config(config, TrainLanguageGoalConfig),
            source,
            resolve_checkpoint(config.checkpoint),
            config.out,
            resume=config.resume,
            overwrite=config.overwrite,
        )

    _train_and_report(config, config.data, config.data.wrist_camera, job)


@dataclass(kw_only=True)
class TokenStatisticsCommandConfig(TokenStatisticsJobConfig):
    """``jepa-mpc ood-stats``: the statistics' settings and the run's data, world model and output file."""

    datasets: tuple[str, ...] = field(
        metadata={"help": _DATA_HELP + ": the model's training data", "aliases": ("--data",)}
    )
    checkpoint: str = field(
        default="", metadata={"help": "the world model to add them to; empty = the shipped default model"}
    )
    out: str = field(metadata={"help": "the checkpoint to write: --checkpoint with the token statistics added"})
    overwrite: bool = field(
        default=False, metadata={"help": "replace --out when it exists (it may be --checkpoint itself)"}
    )


def ood_stats(config: TokenStatisticsCommandConfig) -> None:
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel.training.episodes import open_episodes
    from worldmodel.training.ood_stats import add_token_statistics

    source = open_episodes(
        config.datasets,
        camera=config.data.camera,
        sample_fps=config.data.sample_fps,
        skip_bad=config.data.bad_episodes == "skip",
        wrist_camera=config.data.wrist_camera,
    )
    summary = add_token_statistics(
        _job_config(config, TokenStatisticsJobConfig),
        source,
        resolve_checkpoint(config.checkpoint),
        config.out,
        overwrite=config.overwrite,
    )
    print(summary.text())
