"""``jepa-mpc pretrain``: V-JEPA self-supervised pretraining of a small encoder on a robot's own videos.

One process, then several (torchrun, DDP; gloo on CPU)::

    jepa-mpc pretrain --data datasets/push --preset vit_tiny --out runs/enc --run.steps 2000
    torchrun --nproc_per_node 4 -m jepa_mpc pretrain --data ... --out ...

Per step, for a batch of clips (``clip_frames`` frames at ``sample_fps``; a share of them one frame
repeated, which is how the world model encodes frames when planning):

1. two multi-block masks per clip (short- and long-range, :mod:`.masking`) split the tubelet tokens
   into context and targets;
2. the context encoder sees the context tokens only; the narrow predictor gets them plus a mask
   token at every target position (:mod:`.masked_model`);
3. the EMA target encoder sees the whole clip; the loss is the L1 between the predictions and its
   layer-normed tokens at the target positions, averaged over the two masks;
4. AdamW steps the context encoder and predictor; the target encoder follows by EMA.

``OUT/encoder.pt`` holds the target encoder (what V-JEPA keeps) with its config: pass it to
``jepa-mpc train --encoder``. Collapse is watched on held-out clips: the per-dimension standard
deviation of the encoder's features across clips (a collapsed encoder gives ~0) is logged and reported.

:func:`write_random_encoder` (``jepa-mpc init-encoder``) writes the same file for an encoder that is
never trained: the frozen random encoder the default model is post-trained on.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from jepa_mpc_foundation.configuration import ConfigError, dataclass_to_dict
from worldmodel.checkpoint import cpu_state_dict
from worldmodel.encoder import VideoEncoder, init_vit_weights
from worldmodel.precision import autocast

from .clips import split_episodes
from .config import EncoderRecipe, PretrainConfig
from .distributed import DistributedContext, setup_distributed
from .encoder_checkpoint import load_encoder, save_encoder_checkpoint
from .episodes import EpisodeSource, check_sample_fps
from .jepa_objective import FeatureSpread, JepaLoss, draw_masks, ema_update, feature_spread, target_tokens
from .loop import Objective, train_loop
from .masked_model import MaskedPredictor, token_grid
from .optimization import build_optimizer
from .run_summary import RunSummary
from .train_state import clear_run_folder, open_run_folder
from .video_clips import VideoClips, step_generator

ENCODER_FILE = "encoder.pt"


def write_random_encoder(
    recipe: EncoderRecipe, seed: int, out: str | Path, overwrite: bool = False
) -> tuple[Path, bool]:
    """Write ``out/encoder.pt``: an encoder left at its random initialisation (never trained).

    The weights are ``init_vit_weights`` (truncated normal, std 0.02, as the reference ViT) after
    ``torch.manual_seed(seed)``, so a seed gives the same weights on every machine. Frozen, such an
    encoder is a fixed random projection of each tubelet's ``patch x patch x 2`` pixels mixed by
    random attention: at the default model's scale (64 px, 16 tokens per frame) it plans as well as
    the V-JEPA-pretrained one, within the spread of retraining (docs/benchmarks.md, "Ablation"),
    and it costs no pretraining. Pass the file to ``jepa-mpc train --encoder``.

    Returns the path and whether it was written: a file already holding these very weights and
    config is left untouched (so a rerun keeps the feature caches keyed on its bytes).

    Raises:
        ConfigError: ``out/encoder.pt`` holds another encoder and ``overwrite`` is False.
    """
    path = Path(out) / ENCODER_FILE
    config = recipe.encoder_config()
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(seed)
        encoder = VideoEncoder(config)
        init_vit_weights(encoder)
    if path.exists() and not overwrite:
        stored_config, stored = load_encoder(path)
        stored_weights, weights = stored.state_dict(), encoder.state_dict()
        if (
            stored_config == config
            and stored_weights.keys() == weights.keys()
            and all(torch.equal(stored_weights[k], v) for k, v in weights.items())
        ):
            return path, False
        raise ConfigError(f"{path} holds another encoder: pass --overwrite true to replace it, or choose another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_encoder_checkpoint(
        path,
        config,
        encoder,
        extra={"recipe": f"frozen random encoder: init_vit_weights at torch.manual_seed({seed}), never trained"},
    )
    return path, True


@dataclass(kw_only=True)
class PretrainSummary(RunSummary):
    """The summary of a ``jepa-mpc pretrain`` run: the held-out loss and the spread of the encoder's features."""

    VERB: ClassVar[str] = "pretrained"
    PRODUCT: ClassVar[str] = ENCODER_FILE

    val_loss: float | None
    features_at_init: FeatureSpread | None
    features_final: FeatureSpread | None

    def result_lines(self) -> list[str]:
        lines = [] if self.val_loss is None else [f"held-out masked-prediction loss {self.val_loss:.4f}"]
        for name, spread in (("random init", self.features_at_init), ("trained", self.features_final)):
            if spread is not None:
                lines.append(
                    f"feature std per dim across held-out clips ({name}): mean {spread.clip_std_mean:.4f}, "
                    f"min {spread.clip_std_min:.4f}, {spread.dead_dims} collapsed dims; "
                    f"across tokens: mean {spread.token_std_mean:.4f}"
                )
        return lines

    def product_line(self) -> str:
        return f"{super().product_line()} (use: jepa-mpc train --encoder ...)"


def pretrain_encoder(
    config: PretrainConfig,
    source: EpisodeSource,
    out: str | Path,
    resume: bool = False,
    stop_at: int | None = None,
    overwrite: bool = False,
) -> PretrainSummary:
    """Pretrain an encoder; write ``out/encoder.pt``, ``out/train_state.pt``, metrics and ``out/summary.json``.

    ``resume``, ``stop_at`` and ``overwrite`` as in :func:`.train_predictor.train_predictor`, with the same
    errors (RunFinished, ConfigError, CheckpointError from :func:`.train_state.open_run_folder`).
    """
    ctx = setup_distributed(config.run.device)
    try:
        summary = _pretrain(ctx, config, source, Path(out), resume, stop_at, overwrite)
        ctx.leave_together()
        return summary
    finally:
        ctx.close()


def _pretrain(
    ctx: DistributedContext,
    config: PretrainConfig,
    source: EpisodeSource,
    out: Path,
    resume: bool,
    stop_at: int | None,
    overwrite: bool,
) -> PretrainSummary:
    run, device = config.run, ctx.device
    check_sample_fps(source, config.data.sample_fps)
    if run.threads:
        torch.set_num_threads(run.threads)
    resume_key = {"config": _resume_config(config), "data": source.fingerprint(), "world_size": ctx.world_size}
    state = open_run_folder(out, resume_key, run.steps, resume, overwrite, ENCODER_FILE, stop_at)  # before any work
    if overwrite and ctx.is_main:
        clear_run_folder(out, ENCODER_FILE)
    encoder_config = config.encoder.encoder_config()
    with warnings.catch_warnings():
        if not ctx.is_main:
            warnings.simplefilter("ignore")
        data = VideoClips(
            source, encoder_config.img_size, config.data.clip_frames, skip_bad=config.data.bad_episodes == "skip"
        )
    train_ids, val_ids = split_episodes(
        len(data.frames), config.data.val_fraction, int(config.data.val_fraction > 0), run.seed
    )
    train_positions = data.positions(train_ids)
    if len(train_positions) == 0:
        raise ValueError("no training clip: every usable episode was held out; lower data.val_fraction or add episodes")
    # Held-out clips for the loss and the collapse check: fixed, half still frames as at planning time.
    val_positions = data.positions(val_ids)
    val_positions = (
        val_positions[
            np.linspace(0, len(val_positions) - 1, min(len(val_positions), run.val_clips)).round().astype(int)
        ]
        if len(val_positions)
        else val_positions
    )
    val_video = data.batch(val_positions, np.arange(len(val_positions)) % 2 == 0) if len(val_positions) else None

    torch.manual_seed(run.seed)  # identical initial weights on every rank
    encoder = VideoEncoder(encoder_config)
    init_vit_weights(encoder)
    m = config.model
    predictor = MaskedPredictor(encoder_config.dim, m.predictor_dim, m.predictor_depth, m.predictor_heads)
    init_vit_weights(predictor)
    target_encoder = copy.deepcopy(encoder).requires_grad_(False)
    loss_module = JepaLoss(encoder, predictor).to(device)
    target_encoder.to(device)
    model = ctx.wrap(loss_module)
    optimizer = build_optimizer([encoder, predictor], config.optim)
    # Collapse is judged against the random initialisation (a resumed run no longer has it).
    features_at_init = (
        feature_spread(target_encoder, val_video.to(device))
        if (val_video is not None and ctx.is_main and not resume)
        else None
    )

    def batch_loss(step: int) -> tuple[Tensor, dict[str, Tensor]]:
        generator = step_generator(run.seed, step, ctx.rank)
        chosen = torch.randint(0, len(train_positions), (run.batch_size,), generator=generator).numpy()
        still = (torch.rand(run.batch_size, generator=generator) < config.data.still_fraction).numpy()
        video = data.batch(train_positions[chosen], still).to(device)  # [B, 3, F, S, S]
        masks = [
            (c.to(device), t.to(device))
            for c, t in draw_masks(config.mask, run.batch_size, token_grid(encoder, video), generator)
        ]
        with autocast(device):
            targets = target_tokens(target_encoder, video)
            loss = model(video, masks, targets)
        return loss, {}

    def follow_encoder(step: int) -> dict[str, float]:
        momentum = m.ema_start + (m.ema_end - m.ema_start) * step / run.steps
        ema_update(target_encoder, encoder, momentum)
        return {"ema": momentum}

    val_loss, features_final = None, None

    def held_out() -> tuple[dict[str, float], str]:
        nonlocal val_loss, features_final
        val_loss, features_final = _validate(loss_module, target_encoder, val_video, config, device)
        metrics = {
            "loss": val_loss,
            "feature_clip_std_mean": features_final.clip_std_mean,
            "feature_clip_std_min": features_final.clip_std_min,
            "feature_token_std_mean": features_final.token_std_mean,
        }
        return (
            metrics,
            f"held-out loss {val_loss:.4f}, feature std per dim (mean over dims) {features_final.clip_std_mean:.4f}",
        )

    objective = Objective(
        {"encoder": encoder, "predictor": predictor, "target_encoder": target_encoder},
        batch_loss,
        after_step=follow_encoder,
        validate=held_out if val_video is not None else None,
    )
    result = train_loop(ctx, objective, optimizer, run, config.optim, out, resume_key, state, stop_at, desc="pretrain")

    if ctx.is_main and result.end_step == run.steps:
        save_encoder_checkpoint(
            out / ENCODER_FILE,
            encoder_config,
            target_encoder,
            extra={
                "context_encoder": cpu_state_dict(encoder),
                "predictor": cpu_state_dict(predictor),
                "pretrain_config": dataclass_to_dict(config),
                "step": run.steps,
                "feature_spread": asdict(features_final) if features_final else None,
            },
        )
    summary = PretrainSummary.of_run(
        ctx,
        result,
        out,
        run.steps,
        len(train_ids),
        len(val_ids),
        data.skipped,
        val_loss=val_loss,
        features_at_init=features_at_init,
        features_final=features_final,
    )
    if ctx.is_main:
        summary.write()
    return summary


@torch.no_grad()
def _validate(
    loss_module: JepaLoss, target_encoder: VideoEncoder, video: Tensor, config: PretrainConfig, device: torch.device
) -> tuple[float, FeatureSpread]:
    """Masked-prediction loss on the held-out clips (fixed masks) and the spread of the target encoder's features."""
    generator = torch.Generator().manual_seed(12345)
    total, count = 0.0, 0
    for i in range(0, len(video), config.run.batch_size):
        clip = video[i : i + config.run.batch_size].to(device)
        masks = [
            (c.to(device), t.to(device))
            for c, t in draw_masks(config.mask, len(clip), token_grid(target_encoder, clip), generator)
        ]
        with autocast(device):
            loss = loss_module(clip, masks, target_tokens(target_encoder, clip))
        total += loss.item() * len(clip)
        count += len(clip)
    return total / count, feature_spread(target_encoder, video.to(device))


def _resume_config(config: PretrainConfig) -> dict:
    values = dataclass_to_dict(config)
    for name in ("val_every", "save_every", "device", "threads"):
        values["run"].pop(name)
    return values
