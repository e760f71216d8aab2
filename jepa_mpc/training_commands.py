"""``jepa-mpc train``, ``pretrain``, ``init-encoder``, ``train-policy`` and ``ood-stats``: the library's function, then
its result printed.

The training functions take a run's data, folders and resume switches as arguments beside their
config (so that the config stored in a checkpoint is the model's recipe only); the command configs
here add those as fields, so that a ``--config`` YAML file and the flags set them alike.

A run folder holds one run: training into a folder that holds an earlier run is refused unless
``--resume true`` (continue it) or ``--overwrite true`` (replace it); ``--resume true`` on a run that
already finished says so and exits 0 without touching it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from worldmodel.training.config import (
    EncoderSize,
    PretrainConfig,
    TokenStatisticsJobConfig,
    TrainGoalPolicyConfig,
    TrainPredictorConfig,
)

_DATA_HELP = "one or more LeRobot dataset folders (sim or DROID) or .npz files of episodes, read as one"
_RESUME_HELP = "continue the run in --out from its train_state.pt (a finished run: says so, changes nothing)"
_OVERWRITE_HELP = "replace the run --out holds (its train_state.pt, result and summary are deleted first); without it such a folder is refused"


def _report_finished(finished: Exception) -> None:
    """A resumed run that had already finished: one line (rank 0 alone under torchrun), exit 0."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(finished)


def _job_config(config: object, cls: type) -> object:
    """The ``cls`` part of a command config (a subclass of ``cls``): what the training function takes."""
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


@dataclass(kw_only=True)
class TrainCommandConfig(TrainPredictorConfig):
    """``jepa-mpc train``: the predictor's training config and the run's data, encoder and folder."""

    datasets: tuple[str, ...] = field(metadata={"help": _DATA_HELP, "aliases": ("--data",)})
    encoder: str = field(
        metadata={"help": "encoder checkpoint: jepa-mpc pretrain output, a project model.pt, a released V-JEPA 2 / 2.1 file, "
                          "or a Hugging Face VJEPA2Model folder / model.safetensors (README, Checkpoint layouts)"}
    )
    encoder_img_size: int = field(default=256, metadata={"help": "input size of a released encoder file (no config inside; V-JEPA 2.1 was trained at 384)"})
    encoder_num_heads: int | None = field(
        default=None, metadata={"help": "head count of a released V-JEPA 2.1 file whose sizes match no released model"}
    )
    out: str = field(metadata={"help": "run folder (model.pt, train_state.pt, metrics, summary.json)"})
    resume: bool = field(default=False, metadata={"help": _RESUME_HELP})
    stop_at: int | None = field(default=None, metadata={"help": "stop after this step, saving the state (resume later)"})
    overwrite: bool = field(default=False, metadata={"help": _OVERWRITE_HELP})


def train(config: TrainCommandConfig) -> None:
    from worldmodel.training.episodes import open_episodes
    from worldmodel.training.train_predictor import train_predictor

    from worldmodel.training.train_state import RunFinished

    source = open_episodes(config.datasets, camera=config.data.camera, sample_fps=config.data.sample_fps,
                           skip_bad=config.data.bad_episodes == "skip", wrist_camera=config.data.wrist_camera)
    try:
        summary = train_predictor(_job_config(config, TrainPredictorConfig), source, config.encoder, config.out,
                                  resume=config.resume, stop_at=config.stop_at, encoder_img_size=config.encoder_img_size,
                                  encoder_num_heads=config.encoder_num_heads, overwrite=config.overwrite)
    except RunFinished as finished:
        return _report_finished(finished)
    if summary.rank == 0:
        print(summary.text())


@dataclass(kw_only=True)
class PretrainCommandConfig(PretrainConfig):
    """``jepa-mpc pretrain``: the encoder's pretraining config and the run's data and folder.

    ``--preset NAME`` is ``--encoder.preset NAME``.
    """

    datasets: tuple[str, ...] = field(metadata={"help": _DATA_HELP, "aliases": ("--data",)})
    out: str = field(metadata={"help": "run folder (encoder.pt, train_state.pt, metrics, summary.json)"})
    resume: bool = field(default=False, metadata={"help": _RESUME_HELP})
    stop_at: int | None = field(default=None, metadata={"help": "stop after this step, saving the state (resume later)"})
    overwrite: bool = field(default=False, metadata={"help": _OVERWRITE_HELP})


def pretrain(config: PretrainCommandConfig) -> None:
    from worldmodel.training.episodes import open_episodes
    from worldmodel.training.pretrain_encoder import pretrain_encoder

    from worldmodel.training.train_state import RunFinished

    source = open_episodes(config.datasets, camera=config.data.camera, sample_fps=config.data.sample_fps,
                           skip_bad=config.data.bad_episodes == "skip")
    try:
        summary = pretrain_encoder(_job_config(config, PretrainConfig), source, config.out, resume=config.resume,
                                   stop_at=config.stop_at, overwrite=config.overwrite)
    except RunFinished as finished:
        return _report_finished(finished)
    if summary.rank == 0:
        print(summary.text())


@dataclass(kw_only=True)
class RandomEncoderCommandConfig:
    """``jepa-mpc init-encoder``: an encoder left at its random initialisation, for ``jepa-mpc train --encoder``.

    ``--preset NAME`` is ``--encoder.preset NAME``.
    """

    encoder: EncoderSize = field(default_factory=EncoderSize)
    seed: int = field(default=0, metadata={"help": "torch seed of the initial weights (the same seed gives the same file)"})
    out: str = field(metadata={"help": "folder for encoder.pt"})
    overwrite: bool = field(default=False, metadata={"help": "replace an encoder.pt already in --out"})


def init_encoder(config: RandomEncoderCommandConfig) -> None:
    from worldmodel.training.pretrain_encoder import write_random_encoder

    path, written = write_random_encoder(config.encoder, config.seed, config.out, config.overwrite)
    print(f"{'wrote' if written else 'already there, unchanged:'} random encoder ({config.encoder.preset}, {config.encoder.img_size} px, seed {config.seed}): {path} "
          "(use: jepa-mpc train --encoder ...)")


@dataclass(kw_only=True)
class TrainPolicyCommandConfig(TrainGoalPolicyConfig):
    """``jepa-mpc train-policy``: the goal policy's training config and the run's data, world model and folder."""

    datasets: tuple[str, ...] = field(metadata={"help": _DATA_HELP, "aliases": ("--data",)})
    checkpoint: str = field(default="", metadata={"help": "the world model whose frozen tokens the policy reads; empty = the shipped default model"})
    out: str = field(metadata={"help": "run folder (model.pt = the world model with the policy, train_state.pt, metrics, summary.json)"})
    resume: bool = field(default=False, metadata={"help": _RESUME_HELP})
    overwrite: bool = field(default=False, metadata={"help": _OVERWRITE_HELP})


def train_policy(config: TrainPolicyCommandConfig) -> None:
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel.training.episodes import open_episodes
    from worldmodel.training.train_goal_policy import train_goal_policy
    from worldmodel.training.train_state import RunFinished

    source = open_episodes(config.datasets, camera=config.data.camera, sample_fps=config.data.sample_fps,
                           skip_bad=config.data.bad_episodes == "skip", wrist_camera=config.data.wrist_camera)
    try:
        summary = train_goal_policy(_job_config(config, TrainGoalPolicyConfig), source, resolve_checkpoint(config.checkpoint),
                                    config.out, resume=config.resume, overwrite=config.overwrite)
    except RunFinished as finished:
        return _report_finished(finished)
    print(summary.text())


@dataclass(kw_only=True)
class TokenStatisticsCommandConfig(TokenStatisticsJobConfig):
    """``jepa-mpc ood-stats``: the statistics' settings and the run's data, world model and output file."""

    datasets: tuple[str, ...] = field(
        metadata={"help": _DATA_HELP + ": the model's training data", "aliases": ("--data",)})
    checkpoint: str = field(
        default="", metadata={"help": "the world model to add them to; empty = the shipped default model"})
    out: str = field(metadata={"help": "the checkpoint to write: --checkpoint with the token statistics added"})
    overwrite: bool = field(
        default=False, metadata={"help": "replace --out when it exists (it may be --checkpoint itself)"})


def ood_stats(config: TokenStatisticsCommandConfig) -> None:
    from worldmodel.checkpoint import resolve_checkpoint
    from worldmodel.training.episodes import open_episodes
    from worldmodel.training.ood_stats import add_token_statistics

    source = open_episodes(config.datasets, camera=config.data.camera, sample_fps=config.data.sample_fps,
                           skip_bad=config.data.bad_episodes == "skip", wrist_camera=config.data.wrist_camera)
    summary = add_token_statistics(_job_config(config, TokenStatisticsJobConfig), source,
                                   resolve_checkpoint(config.checkpoint), config.out, overwrite=config.overwrite)
    print(summary.text())
