"""Training configurations: typed dataclasses, the single source of defaults for both commands.

``jepa-mpc train`` builds a :class:`TrainPredictorConfig` and ``jepa-mpc pretrain`` a
:class:`PretrainConfig` from ``--config file.yaml`` and ``--section.field value`` flags
(``jepa_mpc_foundation.configuration``: defaults < YAML < flags). Every field is validated here, with an error
that names the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from worldmodel.config import (
    ENCODER_PRESETS,
    EncoderConfig,
    PredictorConfig,
    TransformerSize,
    VideoPatching,
    encoder_preset,
)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _values_of(config: object, part: type) -> dict:
    """``{name: value}`` of ``config`` for the fields of ``part``, a model-config class it is built on."""
    return {f.name: getattr(config, f.name) for f in fields(part)}


@dataclass
class DataConfig:
    """Which frames and states make a training clip.

    Episodes are sampled at ``sample_fps`` (every ceil(fps / sample_fps)-th source frame, the
    reference's 4 fps); one predictor step is one encoder tubelet of sampled frames, and a clip holds
    ``clip_steps`` steps (4 steps = the reference's 8-frame clip: 4 states, 3 actions).
    """

    camera: str = field(
        default="observation.images.exterior_1_left", metadata={"help": "camera feature of a LeRobot dataset"}
    )
    wrist_camera: str = field(
        default="",
        metadata={
            "help": "a second view (e.g. observation.images.wrist_left): the predictor then sees both views' "
            "tokens at every step and plans from both; empty: camera alone (the released layout)"
        },
    )
    sample_fps: int = field(default=4, metadata={"help": "frames per second the clips are sampled at"})
    clip_steps: int = field(default=4, metadata={"help": "predictor time steps per clip (one per tubelet)"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of episodes held out for validation"})
    min_val_episodes: int = field(default=1, metadata={"help": "held-out episodes at least (when there are 2+)"})
    bad_episodes: str = field(
        default="error",
        metadata={"help": "error | skip: an episode with bad data stops training, or is skipped and counted"},
    )
    cache_dir: str = field(
        default="", metadata={"help": "feature cache folder (default: $XDG_CACHE_HOME/jepa_mpc/features)"}
    )
    encode_batch_size: int = field(default=64, metadata={"help": "frames per encoder call when building the cache"})

    @property
    def views(self) -> int:
        """Camera views per step: 2 with a ``wrist_camera``, else 1 (``PredictorConfig.views``)."""
        return 2 if self.wrist_camera else 1

    def __post_init__(self) -> None:
        _check(self.sample_fps > 0, f"data.sample_fps must be > 0, got {self.sample_fps}")
        _check(
            self.clip_steps >= 2, f"data.clip_steps must be >= 2 (one input and one target step), got {self.clip_steps}"
        )
        _check(0.0 <= self.val_fraction < 1.0, f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        _check(self.min_val_episodes >= 0, f"data.min_val_episodes must be >= 0, got {self.min_val_episodes}")
        _check(
            self.bad_episodes in ("error", "skip"),
            f"data.bad_episodes must be 'error' or 'skip', got {self.bad_episodes!r}",
        )
        _check(self.encode_batch_size > 0, f"data.encode_batch_size must be > 0, got {self.encode_batch_size}")


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay of the learning rate, and a cosine weight-decay schedule.

    Biases and 1-D parameters (norms) get no weight decay, as in the reference.
    """

    lr: float = field(default=4.25e-4, metadata={"help": "peak learning rate (after warmup)"})
    start_lr: float = field(default=7.5e-5, metadata={"help": "learning rate at step 0"})
    final_lr: float = field(default=0.0, metadata={"help": "learning rate at the last step"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warmup steps (must be < steps)"})
    weight_decay: float = field(default=0.04, metadata={"help": "weight decay at step 0"})
    final_weight_decay: float = field(
        default=0.04, metadata={"help": "weight decay at the last step (cosine in between)"}
    )
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata={"help": "AdamW betas", "metavar": "BETA1 BETA2"})
    eps: float = field(default=1e-8, metadata={"help": "AdamW epsilon"})
    grad_clip: float = field(default=1.0, metadata={"help": "max global gradient norm (0: no clipping)"})

    def __post_init__(self) -> None:
        for name in ("lr", "start_lr", "final_lr", "weight_decay", "final_weight_decay", "grad_clip"):
            _check(getattr(self, name) >= 0, f"optim.{name} must be >= 0, got {getattr(self, name)}")
        _check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _check(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"optim.betas must be two values in [0, 1), got {self.betas}",
        )
        _check(self.eps > 0, f"optim.eps must be > 0, got {self.eps}")


@dataclass
class RunConfig:
    """Steps, batch, logging and checkpoint cadence, seed and device."""

    steps: int = field(default=2000, metadata={"help": "optimizer steps in all"})
    batch_size: int = field(default=32, metadata={"help": "clips per step per process"})
    val_every: int = field(default=200, metadata={"help": "steps between validation losses (0: only at the end)"})
    val_clips: int = field(default=256, metadata={"help": "held-out clips per validation (the first ones, fixed)"})
    save_every: int = field(
        default=500, metadata={"help": "steps between training-state checkpoints (0: only at the end)"}
    )
    seed: int = field(default=0, metadata={"help": "random seed (each process adds its rank)"})
    device: str = field(default="", metadata={"help": "cpu or cuda (default: cuda when present)"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads per process (0: torch's default)"})

    def __post_init__(self) -> None:
        _check(self.steps > 0, f"run.steps must be > 0, got {self.steps}")
        _check(self.batch_size > 0, f"run.batch_size must be > 0, got {self.batch_size}")
        for name in ("val_every", "save_every", "threads"):
            _check(getattr(self, name) >= 0, f"run.{name} must be >= 0, got {getattr(self, name)}")
        _check(self.val_clips > 0, f"run.val_clips must be > 0, got {self.val_clips}")
        _check(self.device in ("", "cpu", "cuda"), f"run.device must be '', 'cpu' or 'cuda', got {self.device!r}")


@dataclass
class PredictorRecipe(TransformerSize):
    """The predictor ``jepa-mpc train`` builds: its width, depth and heads, and how its weights start; its
    image, patch and token sizes are the encoder's.

    The size fields are the model config's own (:class:`worldmodel.config.TransformerSize`, which
    :class:`worldmodel.config.PredictorConfig` is built on); :meth:`predictor_config` gives the model config.
    """

    LABEL: ClassVar[str] = "predictor"  # errors name the section, as the flags do (--predictor.dim)
    init: str = field(
        default="identity",
        metadata={
            "help": "identity (starts close to copying the current frame; faster on small data) "
            "or vit (the reference's init)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.init in ("identity", "vit"), f"predictor.init must be 'identity' or 'vit', got {self.init!r}")

    def predictor_config(self, encoder: EncoderConfig, views: int) -> PredictorConfig:
        """The model config of this predictor on ``encoder``'s tokens, ``views`` camera views per step."""
        return PredictorConfig(
            **_values_of(self, TransformerSize),
            img_size=encoder.img_size,
            patch_size=encoder.patch_size,
            encoder_dim=encoder.dim,
            views=views,
        )


@dataclass
class PredictorLossConfig:
    """The V-JEPA 2-AC loss: teacher forcing over all steps + an autoregressive rollout.

    ``sigreg_weight`` > 0 trains the encoder too, end to end with the predictor, with SIGReg on its
    layer-normed tokens against collapse (LeWorldModel, arXiv 2603.19312; :mod:`.sigreg`); 0 keeps
    the encoder frozen and its tokens cached (V-JEPA 2-AC post-training, the reference's recipe).
    """

    rollout_steps: int = field(default=2, metadata={"help": "steps of the autoregressive rollout loss (reference: 2)"})
    sigreg_weight: float = field(
        default=0.0,
        metadata={
            "help": "0: frozen encoder (cached tokens); > 0: train the encoder end to end with the predictor, "
            "plus this weight x SIGReg of its tokens (LeWorldModel)"
        },
    )
    sigreg_directions: int = field(default=256, metadata={"help": "random 1-D projections SIGReg tests per step"})

    def __post_init__(self) -> None:
        _check(self.rollout_steps >= 1, f"loss.rollout_steps must be >= 1, got {self.rollout_steps}")
        _check(self.sigreg_weight >= 0, f"loss.sigreg_weight must be >= 0, got {self.sigreg_weight}")
        _check(self.sigreg_directions >= 1, f"loss.sigreg_directions must be >= 1, got {self.sigreg_directions}")


@dataclass
class TrainPredictorConfig:
    """``jepa-mpc train``: post-train an action-conditioned predictor on a frozen encoder's cached features
    (or, with ``loss.sigreg_weight`` > 0, train the encoder with it end to end)."""

    data: DataConfig = field(default_factory=DataConfig)
    # Small enough to train on a CPU (the model config's defaults are the released ViT-g predictor's sizes).
    predictor: PredictorRecipe = field(default_factory=lambda: PredictorRecipe(dim=192, depth=6, num_heads=4))
    loss: PredictorLossConfig = field(default_factory=PredictorLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        _check(
            self.loss.rollout_steps <= self.data.clip_steps - 1,
            f"loss.rollout_steps {self.loss.rollout_steps} needs data.clip_steps >= {self.loss.rollout_steps + 1}, "
            f"got {self.data.clip_steps}",
        )
        _check(
            self.optim.warmup_steps < self.run.steps,
            f"optim.warmup_steps {self.optim.warmup_steps} must be < run.steps {self.run.steps}",
        )


@dataclass(kw_only=True)
class EncoderRecipe(VideoPatching):
    """The encoder ``jepa-mpc pretrain`` and ``jepa-mpc init-encoder`` build: a preset's width and depth at
    an image, patch and tubelet size.

    The size fields are the model config's own (:class:`worldmodel.config.VideoPatching`, which
    :class:`worldmodel.config.EncoderConfig` is built on); :meth:`encoder_config` gives the model config.
    """

    LABEL: ClassVar[str] = "encoder"  # errors name the section, as the flags do (--encoder.img_size)
    preset: str = field(metadata={"help": f"one of {sorted(ENCODER_PRESETS)}", "aliases": ("--preset",)})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            self.preset in ENCODER_PRESETS, f"encoder.preset {self.preset!r} is not one of {sorted(ENCODER_PRESETS)}"
        )

    def encoder_config(self) -> EncoderConfig:
        """The model config of this encoder (a ``vjepa2`` :class:`worldmodel.encoder.VideoEncoder`)."""
        return encoder_preset(self.preset, **_values_of(self, VideoPatching))


def default_encoder_recipe() -> EncoderRecipe:
    """The encoder the training commands build by default: ``vit_tiny`` at 64 px, small enough to pretrain
    on a CPU (the model config's defaults are the released 256-px ViT-L's)."""
    return EncoderRecipe(preset="vit_tiny", img_size=64)


@dataclass
class MaskConfig:
    """V-JEPA multi-block masking of the tubelet grid: each block spans all time steps (a 3-D tube).

    Two mask families are applied to every clip, as in V-JEPA: ``short`` (many small blocks) and
    ``long`` (a few large blocks); the masked tokens of each are the prediction targets.
    """

    short_blocks: int = field(default=8, metadata={"help": "blocks of the short-range mask"})
    short_scale: float = field(default=0.15, metadata={"help": "spatial area of each short-range block (fraction)"})
    long_blocks: int = field(default=2, metadata={"help": "blocks of the long-range mask"})
    long_scale: float = field(default=0.7, metadata={"help": "spatial area of each long-range block (fraction)"})
    aspect_ratio: tuple[float, float] = field(
        default=(0.75, 1.5), metadata={"help": "block aspect ratio range", "metavar": "LOW HIGH"}
    )

    def __post_init__(self) -> None:
        for name in ("short_blocks", "long_blocks"):
            _check(getattr(self, name) >= 1, f"mask.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("short_scale", "long_scale"):
            _check(0 < getattr(self, name) < 1, f"mask.{name} must be in (0, 1), got {getattr(self, name)}")
        low, high = self.aspect_ratio
        _check(0 < low <= high, f"mask.aspect_ratio must be 0 < low <= high, got {self.aspect_ratio}")


@dataclass
class PretrainModelConfig:
    """The narrow predictor of the self-supervised objective and the EMA target encoder."""

    predictor_dim: int = field(default=96, metadata={"help": "predictor width (narrower than the encoder)"})
    predictor_depth: int = field(default=4, metadata={"help": "predictor blocks"})
    predictor_heads: int = field(default=4, metadata={"help": "predictor attention heads"})
    ema_start: float = field(default=0.998, metadata={"help": "EMA momentum of the target encoder at step 0"})
    ema_end: float = field(default=1.0, metadata={"help": "EMA momentum at the last step (linear in between)"})

    def __post_init__(self) -> None:
        for name in ("predictor_dim", "predictor_depth", "predictor_heads"):
            _check(getattr(self, name) > 0, f"model.{name} must be > 0, got {getattr(self, name)}")
        _check(
            self.predictor_dim % self.predictor_heads == 0,
            f"model.predictor_dim {self.predictor_dim} is not divisible by "
            f"model.predictor_heads {self.predictor_heads}",
        )
        _check(
            0 <= self.ema_start <= self.ema_end <= 1,
            f"model.ema_start/ema_end must satisfy 0 <= start <= end <= 1, got {self.ema_start}/{self.ema_end}",
        )


@dataclass
class VideoDataConfig:
    """Video clips for pretraining: ``clip_frames`` frames sampled at ``sample_fps``."""

    camera: str = field(
        default="observation.images.exterior_1_left", metadata={"help": "camera feature of a LeRobot dataset"}
    )
    sample_fps: int = field(default=4, metadata={"help": "frames per second the clips are sampled at"})
    clip_frames: int = field(default=8, metadata={"help": "frames per clip (a multiple of the tubelet size)"})
    still_fraction: float = field(
        default=0.5,
        metadata={
            "help": "share of clips made of one frame repeated: how the world model encodes frames at planning time"
        },
    )
    val_fraction: float = field(default=0.1, metadata={"help": "share of episodes held out for the collapse check"})
    bad_episodes: str = field(default="error", metadata={"help": "error | skip"})

    def __post_init__(self) -> None:
        _check(self.sample_fps > 0, f"data.sample_fps must be > 0, got {self.sample_fps}")
        _check(self.clip_frames > 0, f"data.clip_frames must be > 0, got {self.clip_frames}")
        _check(0.0 <= self.still_fraction <= 1.0, f"data.still_fraction must be in [0, 1], got {self.still_fraction}")
        _check(0.0 <= self.val_fraction < 1.0, f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        _check(
            self.bad_episodes in ("error", "skip"),
            f"data.bad_episodes must be 'error' or 'skip', got {self.bad_episodes!r}",
        )


@dataclass
class PretrainConfig:
    """``jepa-mpc pretrain``: V-JEPA self-supervised pretraining of a small encoder on robot videos."""

    encoder: EncoderRecipe = field(default_factory=default_encoder_recipe)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=6.25e-4, start_lr=2e-4, final_lr=1e-6, warmup_steps=100, weight_decay=0.04, final_weight_decay=0.4
        )
    )
    run: RunConfig = field(default_factory=lambda: RunConfig(steps=2000, batch_size=16, val_every=500))

    def __post_init__(self) -> None:
        _check(
            self.data.clip_frames % self.encoder.tubelet_size == 0,
            f"data.clip_frames {self.data.clip_frames} is not a multiple of "
            f"encoder.tubelet_size {self.encoder.tubelet_size}",
        )
        _check(
            self.optim.warmup_steps < self.run.steps,
            f"optim.warmup_steps {self.optim.warmup_steps} must be < run.steps {self.run.steps}",
        )


@dataclass
class PolicySize:
    """The goal-conditioned policy's own sizes (:class:`worldmodel.config.GoalPolicyConfig`); token sizes
    come from the world model."""

    token_dim: int = field(default=16, metadata={"help": "features each token is projected to"})
    hidden_dim: int = field(default=512, metadata={"help": "width of the MLP's hidden layers"})
    depth: int = field(default=3, metadata={"help": "hidden layers"})
    chunk: int = field(default=2, metadata={"help": "predictor-step actions predicted at once (0.5 s each at 4 fps)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout after each hidden layer while training"})

    def __post_init__(self) -> None:
        for name in ("token_dim", "hidden_dim", "depth", "chunk"):
            _check(getattr(self, name) >= 1, f"policy.{name} must be >= 1, got {getattr(self, name)}")
        _check(0.0 <= self.dropout < 1.0, f"policy.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class HindsightConfig:
    """Which goals a training sample gets: a later frame of the same episode (hindsight relabelling)."""

    final_goal_fraction: float = field(
        default=0.5,
        metadata={
            "help": "share of samples whose goal is the episode's last frame (as a user's one goal photo); "
            "the others get a later frame drawn uniformly"
        },
    )

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.final_goal_fraction <= 1.0,
            f"hindsight.final_goal_fraction must be in [0, 1], got {self.final_goal_fraction}",
        )


@dataclass
class TrainGoalPolicyConfig:
    """``jepa-mpc train-policy``: behaviour cloning of a goal-conditioned policy on a world model's frozen
    tokens, with hindsight goals (:mod:`worldmodel.training.train_goal_policy`)."""

    data: DataConfig = field(default_factory=lambda: DataConfig(wrist_camera="observation.images.wrist_left"))
    policy: PolicySize = field(default_factory=PolicySize)
    hindsight: HindsightConfig = field(default_factory=HindsightConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, start_lr=1e-4, weight_decay=0.01, final_weight_decay=0.01)
    )
    run: RunConfig = field(
        default_factory=lambda: RunConfig(steps=4000, batch_size=256, val_every=500, val_clips=2048, save_every=1000)
    )

    def __post_init__(self) -> None:
        _check(
            self.optim.warmup_steps < self.run.steps,
            f"optim.warmup_steps {self.optim.warmup_steps} must be < run.steps {self.run.steps}",
        )


@dataclass
class LanguageGoalSize:
    """The language-goal predictor's own sizes (:class:`worldmodel.config.LanguageGoalConfig`); token sizes and
    words come from the world model and the data."""

    width: int = field(default=128, metadata={"help": "features of each word and frame token inside the predictor"})
    depth: int = field(default=2, metadata={"help": "transformer layers"})
    num_heads: int = field(default=4, metadata={"help": "attention heads (width must be a multiple)"})
    max_words: int = field(default=16, metadata={"help": "longest instruction read, in words"})
    dropout: float = field(default=0.1, metadata={"help": "dropout inside the transformer layers while training"})

    def __post_init__(self) -> None:
        for name in ("width", "depth", "num_heads", "max_words"):
            _check(getattr(self, name) >= 1, f"language.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.width % self.num_heads == 0, f"language.width {self.width} must be a multiple of num_heads")
        _check(0.0 <= self.dropout < 1.0, f"language.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainLanguageGoalConfig:
    """``jepa-mpc train-language-goal``: a language-goal predictor on a world model's frozen tokens, trained against
    the encoded final frames of demonstrations of each instruction (:mod:`worldmodel.training.train_language_goal`).
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(wrist_camera="observation.images.wrist_left"))
    language: LanguageGoalSize = field(default_factory=LanguageGoalSize)
    object_words: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "the words that name things in the scene (colours, sides): an instruction naming none of them "
            "is refused, and the match head learns to refuse one whose object word is unknown; empty: no such rule"
        },
    )
    text_model: str = field(
        default="",
        metadata={
            "help": "a local Hugging Face text model's folder (save_pretrained's; never downloaded) that reads the "
            "words, frozen and stored in the checkpoint; empty: a word table learned on the instructions"
        },
    )
    word_dropout: float = field(
        default=0.1, metadata={"help": "share of the other words read as unknown in training (phrasings never seen)"}
    )
    mismatch_fraction: float = field(
        default=0.25,
        metadata={"help": "share of each batch that pairs a frame with an instruction it does not fit (match head)"},
    )
    match_quantile: float = field(
        default=0.02,
        metadata={
            "help": "the held-out fitting pairs' match quantile taken as the refusal threshold; 0: the match head "
            "refuses nothing (for data whose episodes do not say which objects are in view)"
        },
    )
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, start_lr=1e-4, weight_decay=0.01, final_weight_decay=0.01)
    )
    run: RunConfig = field(
        default_factory=lambda: RunConfig(steps=3000, batch_size=128, val_every=500, val_clips=2048, save_every=1000)
    )

    def __post_init__(self) -> None:
        self.object_words = tuple(w.lower() for w in self.object_words)
        _check(0.0 <= self.word_dropout < 1.0, f"word_dropout must be in [0, 1), got {self.word_dropout}")
        _check(
            0.0 <= self.mismatch_fraction < 1.0, f"mismatch_fraction must be in [0, 1), got {self.mismatch_fraction}"
        )
        _check(0.0 <= self.match_quantile < 0.5, f"match_quantile must be in [0, 0.5), got {self.match_quantile}")
        _check(
            self.optim.warmup_steps < self.run.steps,
            f"optim.warmup_steps {self.optim.warmup_steps} must be < run.steps {self.run.steps}",
        )


@dataclass
class TokenStatisticsJobConfig:
    """``jepa-mpc ood-stats``: the training frames' token statistics and the out-of-distribution threshold of a
    world model (:mod:`worldmodel.token_statistics`, :mod:`worldmodel.training.ood_stats`).

    The episodes are split as ``train-policy`` splits them (``data.val_fraction``, ``data.min_val_episodes``,
    ``seed``): the statistics are taken over the training episodes' frames, the threshold is the
    ``threshold_quantile`` of the held-out episodes' frames' scores.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(wrist_camera="observation.images.wrist_left"))
    threshold_quantile: float = field(
        default=0.99, metadata={"help": "quantile of the held-out in-range frames' scores taken as the threshold"}
    )
    variance_floor: float = field(
        default=0.01,
        metadata={"help": "added to each feature's variance (layer-normed features average 1; PaDiM's 0.01)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the train / held-out split of the episodes"})
    device: str = field(default="", metadata={"help": "cpu or cuda for encoding (default: cuda when present)"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)"})

    def __post_init__(self) -> None:
        _check(
            0.0 < self.threshold_quantile < 1.0, f"threshold_quantile must be in (0, 1), got {self.threshold_quantile}"
        )
        _check(self.variance_floor > 0, f"variance_floor must be > 0, got {self.variance_floor}")
        _check(self.device in ("", "cpu", "cuda"), f"device must be '', 'cpu' or 'cuda', got {self.device!r}")
        _check(self.threads >= 0, f"threads must be >= 0, got {self.threads}")
