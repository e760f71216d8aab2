"""``jepa-mpc train``: post-train the action-conditioned predictor on a frozen encoder (V-JEPA 2-AC).

One process::

    jepa-mpc train --data datasets/push --encoder runs/enc/encoder.pt --out runs/ac --run.steps 2000

Several processes on one machine (GPUs, or CPU processes with gloo), then several machines::

    torchrun --nproc_per_node 4 -m jepa_mpc train --data ... --encoder ... --out ...
    torchrun --nnodes 2 --node_rank R --rdzv_endpoint HOST:29500 --nproc_per_node 8 \\
        -m jepa_mpc train --data ... --encoder ... --out ...

The encoder runs once over the data (rank 0) and its tokens are cached on disk
(:mod:`.feature_cache`); every step then reads clips of cached tokens, runs the predictor under
DistributedDataParallel and minimises the teacher-forcing + rollout L1 loss (:mod:`.losses`).

With ``--loss.sigreg_weight W`` (> 0) the encoder trains too, end to end with the predictor, as in
LeWorldModel (arXiv 2603.19312): the frames stay in memory (:mod:`.frame_store`), every step
encodes its clips, and the loss adds W x SIGReg of the tokens (:mod:`.sigreg`) against collapse; no
EMA target, no stop-gradient. One process only.

``--resume`` continues from ``OUT/train_state.pt`` with the same batches, schedules and RNG states,
so the loss curve is the one an uninterrupted run draws. The planner's checkpoint is
``OUT/model.pt`` (load it with :func:`worldmodel.load_world_model`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from jepa_mpc_foundation.configuration import ConfigError, dataclass_to_dict
from worldmodel.checkpoint import save_world_model_checkpoint
from worldmodel.config import EncoderConfig, WorldModelConfig
from worldmodel.precision import autocast
from worldmodel.predictor import ActionConditionedPredictor

from .clips import ClipBatches, ClipReader, clip_span, clip_starts, split_episodes
from .config import TrainPredictorConfig
from .distributed import DistributedContext, setup_distributed
from .encoder_checkpoint import file_digest, load_encoder
from .episodes import EpisodeSource, check_sample_fps
from .feature_cache import FeatureCache, build_feature_cache, default_cache_root
from .frame_store import EncodingClipReader, load_frame_store
from .initialization import init_predictor
from .loop import Objective, train_loop
from .losses import PredictorLoss, no_motion_loss
from .optimization import build_optimizer
from .run_summary import RunSummary
from .sigreg import sigreg
from .train_state import clear_run_folder, open_run_folder

MODEL_FILE = "model.pt"


@dataclass
class ValidationResult:
    loss: float
    teacher_forcing: float
    rollout: float
    no_motion: float  # teacher-forcing L1 of copying the current frame: what teacher_forcing must beat
    clips: int


@dataclass(kw_only=True)
class TrainSummary(RunSummary):
    """The summary of a ``jepa-mpc train`` run: the held-out losses and the feature cache it read."""

    PRODUCT: ClassVar[str] = MODEL_FILE

    validation: ValidationResult | None
    train_clips: int
    cache_folder: str = ""  # "": none (the encoder trained end to end with the predictor)
    cache_built: bool = False

    def result_lines(self) -> list[str]:
        lines = []
        v = self.validation
        if v is not None:
            lines.append(
                f"validation ({v.clips} clips): loss {v.loss:.4f} = teacher forcing {v.teacher_forcing:.4f} + "
                f"rollout {v.rollout:.4f}; no-motion baseline {v.no_motion:.4f} "
                f"(teacher forcing / baseline = {v.teacher_forcing / max(v.no_motion, 1e-12):.2f})"
            )
        if self.cache_folder:
            lines.append(f"feature cache: {self.cache_folder} ({'built' if self.cache_built else 'reused'})")
        else:
            lines.append("feature cache: none (the encoder trained end to end with the predictor)")
        return lines


def world_model_config(config: TrainPredictorConfig, encoder_config: EncoderConfig) -> WorldModelConfig:
    """The config of the world model a run trains: ``encoder_config`` and the run's predictor on its tokens."""
    predictor = config.predictor.predictor_config(encoder_config, config.data.views)
    return WorldModelConfig(
        encoder=encoder_config, predictor=predictor, normalize_tokens=True, frame_rate_hz=float(config.data.sample_fps)
    )


def _resume_key(config: TrainPredictorConfig, data_fingerprint: str, encoder_digest: str, world_size: int) -> dict:
    """What must not change between a run and its resumption (logging cadence and device may)."""
    values = dataclass_to_dict(config)
    for name in ("val_every", "save_every", "device", "threads"):
        values["run"].pop(name)
    values["data"].pop("cache_dir")
    return {"config": values, "data": data_fingerprint, "encoder": encoder_digest, "world_size": world_size}


@torch.no_grad()
def validate(
    loss_module: PredictorLoss, reader: ClipReader, starts: np.ndarray, batch_size: int, device: torch.device
) -> ValidationResult:
    """Mean losses over the fixed held-out clips (cache rows ``starts`` [K]), and the no-motion baseline on the same
    clips."""
    loss_module.eval()
    sums, count = np.zeros(4), 0
    for i in range(0, len(starts), batch_size):
        tokens, states, actions = reader.read(starts[i : i + batch_size], device)
        with autocast(device):
            total, teacher, rollout = loss_module(tokens, actions, states)
        n = len(tokens)
        sums += n * np.array([total.item(), teacher.item(), rollout.item(), no_motion_loss(tokens).item()])
        count += n
    loss_module.train()
    mean = sums / max(count, 1)
    return ValidationResult(*mean.tolist(), clips=count)


def _evenly_spaced(starts: np.ndarray, count: int) -> np.ndarray:
    if len(starts) <= count:
        return starts
    return starts[np.linspace(0, len(starts) - 1, count).round().astype(int)]


def _prepare_cache(
    ctx: DistributedContext, config: TrainPredictorConfig, source: EpisodeSource, encoder, encoder_digest: str
) -> FeatureCache:
    """Rank 0 encodes (or finds) the features; the other ranks wait, then open the same folder."""
    cache_root = Path(config.data.cache_dir) if config.data.cache_dir else default_cache_root()
    kwargs = dict(
        source=source,
        encoder=encoder,
        encoder_digest=encoder_digest,
        cache_root=cache_root,
        min_length=clip_span(config.data.clip_steps, encoder.config.tubelet_size),
        skip_bad=config.data.bad_episodes == "skip",
        batch_size=config.data.encode_batch_size,
        device=ctx.device,
        views=config.data.views,
    )
    if ctx.is_main:
        cache = build_feature_cache(**kwargs)
    ctx.barrier()
    if not ctx.is_main:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rank 0 already warned about skipped episodes
            cache = build_feature_cache(**kwargs)
    return cache


def train_predictor(
    config: TrainPredictorConfig,
    source: EpisodeSource,
    encoder_path: str | Path,
    out: str | Path,
    resume: bool = False,
    stop_at: int | None = None,
    encoder_img_size: int = 256,
    encoder_num_heads: int | None = None,
    overwrite: bool = False,
) -> TrainSummary:
    """Post-train a predictor; write ``out/model.pt``, ``out/train_state.pt``, metrics and ``out/summary.json``.

    Args:
        source: the episodes (:func:`.episodes.open_episodes` for a folder, or :class:`.episodes.InMemoryEpisodes`).
        encoder_path: the frozen encoder's checkpoint (:func:`.encoder_checkpoint.load_encoder`).
        resume: continue from ``out/train_state.pt`` (same config required).
        stop_at: stop after this step, saving the training state (as a job time limit would).
        encoder_img_size: input size of a released encoder file (which carries no config).
        encoder_num_heads: head count of a released V-JEPA 2.1 file whose sizes match no released model.
        overwrite: replace an earlier run in ``out`` (its state, model and summary are removed first).
    Raises:
        RunFinished: ``resume`` of a run that already reached ``run.steps`` (nothing is changed).
        ConfigError: ``out`` holds an earlier run and neither ``resume`` nor ``overwrite`` is set; a
            ``stop_at`` not after the starting step.
        CheckpointError: the encoder file, or (``resume``) a training state that is missing or does not
            fit the run (:mod:`.train_state`).
        EpisodeError / DatasetError: bad data (unless ``config.data.bad_episodes`` is ``skip``).
    """
    out, encoder_path = Path(out), Path(encoder_path)
    ctx = setup_distributed(config.run.device)
    try:
        summary = _train(
            ctx, config, source, encoder_path, out, resume, stop_at, encoder_img_size, encoder_num_heads, overwrite
        )
        ctx.leave_together()
        return summary
    finally:
        ctx.close()


def _train(
    ctx, config, source, encoder_path, out, resume, stop_at, encoder_img_size, encoder_num_heads, overwrite
) -> TrainSummary:
    run, device = config.run, ctx.device
    check_sample_fps(source, config.data.sample_fps)
    if run.threads:
        torch.set_num_threads(run.threads)
    encoder_config, encoder = load_encoder(encoder_path, img_size=encoder_img_size, num_heads=encoder_num_heads)
    encoder_digest = file_digest(encoder_path)  # once: a released ViT-g file is gigabytes
    resume_key = _resume_key(config, source.fingerprint(), encoder_digest, ctx.world_size)
    state = open_run_folder(out, resume_key, run.steps, resume, overwrite, MODEL_FILE, stop_at)  # before any work
    if overwrite and ctx.is_main:
        clear_run_folder(out, MODEL_FILE)
    end_to_end = config.loss.sigreg_weight > 0
    span = clip_span(config.data.clip_steps, encoder_config.tubelet_size)
    if end_to_end:
        if ctx.world_size > 1:
            raise ConfigError(
                "--loss.sigreg_weight > 0 (encoder trained end to end) runs in one process: drop torchrun"
            )
        data = load_frame_store(source, span, config.data.bad_episodes == "skip")
        encoder.to(device).train().requires_grad_(True)
        reader = EncodingClipReader(data, config.data.clip_steps, encoder, config.data.views)
    else:
        data = _prepare_cache(ctx, config, source, encoder, encoder_digest)
        encoder.cpu()
        reader = ClipReader(data, config.data.clip_steps, encoder_config.tubelet_size)

    train_ids, val_ids = split_episodes(
        len(data.episodes), config.data.val_fraction, config.data.min_val_episodes, run.seed
    )
    train_starts = clip_starts(data, train_ids, span)
    val_starts = _evenly_spaced(clip_starts(data, val_ids, span), run.val_clips)
    if not len(val_starts) and ctx.is_main:
        warnings.warn(
            "no held-out episode: validation is skipped (use 2+ episodes and data.val_fraction > 0)", stacklevel=2
        )
    batches = ClipBatches(train_starts, run.batch_size, ctx.rank, ctx.world_size, run.seed)

    wm_config = world_model_config(config, encoder_config)
    torch.manual_seed(run.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    predictor = ActionConditionedPredictor(wm_config.predictor)
    init_predictor(predictor, config.predictor.init)
    # Unused without extrinsics: frozen, so DDP needs no find_unused_parameters and AdamW skips it.
    predictor.extrinsics_encoder.requires_grad_(wm_config.predictor.use_extrinsics)
    loss_module = PredictorLoss(predictor, config.loss.rollout_steps).to(device)
    model = ctx.wrap(loss_module)
    trained = {"predictor": predictor, **({"encoder": encoder} if end_to_end else {})}
    optimizer = build_optimizer(list(trained.values()), config.optim)

    def batch_loss(step: int) -> tuple[Tensor, dict[str, Tensor]]:
        tokens, states, actions = reader.read(batches(step), device)  # [B, T, N, D], [B, T, 7], [B, T-1, 7]
        with autocast(device):
            total, teacher, rollout = model(tokens, actions, states)
        parts = {"teacher_forcing": teacher, "rollout": rollout}
        if end_to_end:
            parts["sigreg"] = sigreg(tokens.flatten(0, 2), config.loss.sigreg_directions)
            total = total + config.loss.sigreg_weight * parts["sigreg"]
        return total, parts

    validation: ValidationResult | None = None

    def held_out() -> tuple[dict[str, float], str]:
        nonlocal validation
        validation = validate(loss_module, reader, val_starts, run.batch_size, device)
        metrics = {
            "loss": validation.loss,
            "teacher_forcing": validation.teacher_forcing,
            "rollout": validation.rollout,
            "no_motion": validation.no_motion,
        }
        return metrics, (
            f"val loss {validation.loss:.4f} (teacher forcing {validation.teacher_forcing:.4f}, "
            f"no-motion {validation.no_motion:.4f})"
        )

    objective = Objective(trained, batch_loss, validate=held_out if len(val_starts) else None)
    result = train_loop(ctx, objective, optimizer, run, config.optim, out, resume_key, state, stop_at, desc="train")

    if ctx.is_main and result.end_step == run.steps:
        save_world_model_checkpoint(
            out / MODEL_FILE,
            wm_config,
            encoder,
            predictor,
            extra={
                "recipe": "jepa-mpc train (V-JEPA 2-AC post-training)",
                "train_config": dataclass_to_dict(config),
                "step": run.steps,
            },
        )
    summary = TrainSummary.of_run(
        ctx,
        result,
        out,
        run.steps,
        len(train_ids),
        len(val_ids),
        [vars(s) for s in data.skipped],
        validation=validation,
        train_clips=len(train_starts),
        cache_folder="" if end_to_end else str(data.folder),
        cache_built=False if end_to_end else data.built,
    )
    if ctx.is_main:
        summary.write()
    return summary
