"""Model configurations: one dataclass per network, presets for the released sizes.

The configs are stored inside the project's checkpoints (``dataclass_to_dict``) so that one path
loads a model; released V-JEPA 2 files carry no config and are matched against ``ENCODER_PRESETS``,
released V-JEPA 2.1 files against ``VJEPA2_1_ENCODER_PRESETS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_mpc_foundation.pose import ACTION_DIM


def _error_name(config) -> str:
    """How errors name ``config``: its class (``PredictorConfig``), or the section of a command config that
    holds it (``LABEL``, e.g. ``predictor``: what the user typed as ``--predictor.dim``)."""
    return getattr(config, "LABEL", type(config).__name__)


def _check_positive(config, names: tuple[str, ...]) -> None:
    for field_name in names:
        if int(getattr(config, field_name)) <= 0:
            raise ValueError(f"{_error_name(config)}.{field_name} must be positive, got {getattr(config, field_name)}")


def _check_positive_integers(config, names: tuple[str, ...]) -> None:
    """Each of ``names`` is an ``int`` >= 1 (a bool is not: ``True`` is no size)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{_error_name(config)}.{name} must be an integer >= 1, got {value!r}")


def _check_patch_grid(config) -> None:
    if config.img_size % config.patch_size:
        raise ValueError(
            f"{_error_name(config)}.img_size {config.img_size} is not a multiple of patch_size {config.patch_size}"
        )


class _ViTSizes:
    """Sizes both transformers derive from their fields (``img_size``, ``patch_size``, ``dim``, ``mlp_ratio``)."""

    img_size: int
    patch_size: int
    dim: int
    mlp_ratio: float

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.dim * self.mlp_ratio)

    @property
    def grid_size(self) -> int:
        """Patches per image side."""
        return self.img_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        return self.grid_size**2


@dataclass
class TransformerSize:
    """The sizes of a stack of transformer blocks, which the encoder and the predictor are each built on.

    They are what a training run chooses for a network it builds (``jepa-mpc train --predictor.dim``;
    an encoder's come by name from :data:`ENCODER_PRESETS`). The defaults are the released ViT-L encoder's
    and ``vjepa2-ac-vitg`` predictor's. Raises ValueError for a size that is not positive or heads that
    do not divide ``dim``.
    """

    dim: int = field(default=1024, metadata={"help": "width: features per token"})
    depth: int = field(default=24, metadata={"help": "transformer blocks"})
    num_heads: int = field(default=16, metadata={"help": "attention heads (a divisor of dim)"})
    mlp_ratio: float = field(default=4.0, metadata={"help": "MLP hidden width / dim"})

    def __post_init__(self) -> None:
        _check_positive(self, ("dim", "depth", "num_heads"))
        if self.dim % self.num_heads:
            raise ValueError(f"{_error_name(self)}.dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"{_error_name(self)}.mlp_ratio must be positive, got {self.mlp_ratio}")


@dataclass
class VideoPatching:
    """How an encoder cuts a clip into tokens: square frames of ``img_size`` px, ``patch_size`` px patches,
    ``tubelet_size`` frames per token. Raises ValueError for a size that is not positive or patches that
    do not tile the frame.
    """

    img_size: int = field(default=256, metadata={"help": "input image side (px)"})
    patch_size: int = field(default=16, metadata={"help": "patch side (px)"})
    tubelet_size: int = field(default=2, metadata={"help": "frames per tubelet (one token spans them)"})

    def __post_init__(self) -> None:
        _check_positive(self, ("img_size", "patch_size", "tubelet_size"))
        _check_patch_grid(self)


ENCODER_ARCHITECTURES = ("vjepa2", "vjepa2_1")

# V-JEPA 2.1: the blocks after which a per-level norm is applied (``norms_block[i]``), by depth, as
# app/vjepa_2_1/models/vision_transformer.py ``VisionTransformer.__init__`` lists them (no other depths).
VJEPA2_1_LEVEL_BLOCKS: dict[int, tuple[int, ...]] = {
    12: (2, 5, 8, 11),
    24: (5, 11, 17, 23),
    40: (9, 19, 29, 39),
    48: (11, 23, 37, 47),
}
# V-JEPA 2.1: the grid its RoPE positions are interpolated to, by patch size (``RoPEAttention``:
# 256 px / 16 or 252 px / 14); other patch sizes have none in the reference.
VJEPA2_1_ROPE_GRID: dict[int, int] = {16: 16, 14: 18}


@dataclass
class EncoderConfig(TransformerSize, VideoPatching, _ViTSizes):
    """Video ViT encoder: 3-D patch embedding, RoPE blocks, final LayerNorm.

    Its fields: :class:`VideoPatching`'s (``img_size``, ``patch_size``, ``tubelet_size``), then
    :class:`TransformerSize`'s (``dim``, ``depth``, ``num_heads``, ``mlp_ratio``), then these.
    ``architecture``: ``"vjepa2"`` (:class:`worldmodel.encoder.VideoEncoder`) or ``"vjepa2_1"``
    (:class:`worldmodel.vjepa2_1_encoder.VJEPA21Encoder`: adds a 2-D patch embedding for single
    frames, modality embeddings, per-level norms and RoPE interpolated to the pretraining grid).
    """

    qkv_bias: bool = True
    architecture: str = "vjepa2"

    def __post_init__(self) -> None:
        VideoPatching.__post_init__(self)
        TransformerSize.__post_init__(self)
        if self.architecture not in ENCODER_ARCHITECTURES:
            raise ValueError(f"EncoderConfig.architecture {self.architecture!r} is not one of {ENCODER_ARCHITECTURES}")
        if self.architecture == "vjepa2_1":
            if self.depth not in VJEPA2_1_LEVEL_BLOCKS:
                raise ValueError(
                    f"EncoderConfig.depth {self.depth}: a V-JEPA 2.1 encoder has depth {sorted(VJEPA2_1_LEVEL_BLOCKS)} "
                    "(its per-level norms are defined for those only)"
                )
            if self.patch_size not in VJEPA2_1_ROPE_GRID:
                raise ValueError(
                    f"EncoderConfig.patch_size {self.patch_size}: a V-JEPA 2.1 encoder has patch size "
                    f"{sorted(VJEPA2_1_ROPE_GRID)} (its RoPE grid is defined for those only)"
                )


# (dim, depth, heads, mlp_ratio) of the released V-JEPA 2 encoders and of small presets for CPU use.
ENCODER_PRESETS: dict[str, dict] = {
    "vit_micro": dict(dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
    "vit_tiny": dict(dim=192, depth=12, num_heads=3, mlp_ratio=4.0),
    "vit_small": dict(dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
    "vit_base": dict(dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "vit_large": dict(dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
    "vit_huge": dict(dim=1280, depth=32, num_heads=16, mlp_ratio=4.0),
    "vit_giant": dict(dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
}


# The released V-JEPA 2.1 encoders (src/hub/backbones.py ``ARCH_NAME_MAP`` and the ``vit_*`` sizes of
# app/vjepa_2_1/models/vision_transformer.py), all trained at 384 px with 16-px patches, 2-frame tubelets.
VJEPA2_1_ENCODER_PRESETS: dict[str, dict] = {
    "vjepa2_1_vit_base_384": dict(dim=768, depth=12, num_heads=12, mlp_ratio=4.0),  # vjepa2_1_vitb_dist_vitG_384.pt
    "vjepa2_1_vit_large_384": dict(dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),  # vjepa2_1_vitl_dist_vitG_384.pt
    "vjepa2_1_vit_giant_384": dict(dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),  # vjepa2_1_vitg_384.pt
    "vjepa2_1_vit_gigantic_384": dict(dim=1664, depth=48, num_heads=26, mlp_ratio=64 / 13),  # vjepa2_1_vitG_384.pt
}


def vjepa2_1_encoder_preset(name: str, **overrides) -> EncoderConfig:
    """The :class:`EncoderConfig` of a released V-JEPA 2.1 encoder (384 px), with field overrides."""
    if name not in VJEPA2_1_ENCODER_PRESETS:
        raise ValueError(
            f"unknown V-JEPA 2.1 encoder preset {name!r}; choose one of {sorted(VJEPA2_1_ENCODER_PRESETS)}"
        )
    return EncoderConfig(**{"img_size": 384, "architecture": "vjepa2_1", **VJEPA2_1_ENCODER_PRESETS[name], **overrides})


def encoder_preset(name: str, **overrides) -> EncoderConfig:
    """An :class:`EncoderConfig` for a named preset (``vit_large``, ...), with field overrides."""
    if name not in ENCODER_PRESETS:
        raise ValueError(f"unknown encoder preset {name!r}; choose one of {sorted(ENCODER_PRESETS)}")
    return EncoderConfig(**{**ENCODER_PRESETS[name], **overrides})


@dataclass
class PredictorConfig(TransformerSize, _ViTSizes):
    """Action-conditioned predictor (V-JEPA 2-AC). Defaults are the released ``vjepa2-ac-vitg`` sizes.

    Its own sizes are :class:`TransformerSize`'s fields; ``img_size``, ``patch_size`` and
    ``encoder_dim`` are the encoder's.
    ``views``: camera views per time step (this project's extension; the released predictors have 1).
    With 2 (exterior + wrist) each step holds both views' tokens, the wrist's placed below the
    exterior's on the RoPE grid (rows ``grid_size .. 2 * grid_size - 1``), as if the two images were
    one taller image; nothing else changes, so ``views=1`` is the released predictor exactly.
    """

    img_size: int = 256
    patch_size: int = 16
    encoder_dim: int = 1408
    action_dim: int = ACTION_DIM
    use_extrinsics: bool = False
    views: int = 1

    def __post_init__(self) -> None:
        TransformerSize.__post_init__(self)
        _check_positive(self, ("img_size", "patch_size", "encoder_dim", "action_dim", "views"))
        _check_patch_grid(self)

    @property
    def tokens_per_frame(self) -> int:
        """Tokens per time step of all views together: ``views * grid_size**2``."""
        return self.views * self.grid_size**2

    @property
    def cond_tokens(self) -> int:
        """Conditioning tokens per time step: action, state (and extrinsics)."""
        return 3 if self.use_extrinsics else 2


@dataclass
class WorldModelConfig:
    """Encoder + predictor, and the time base they were trained on.

    ``frame_rate_hz`` is the rate of the frames the model saw in training; one predictor step spans one
    tubelet of ``tubelet_size`` frames, i.e. ``tubelet_size / frame_rate_hz`` seconds of robot time
    (0.5 s for the reference's 4 fps, 2-frame tubelets). A planner's action is one such step.
    """

    encoder: EncoderConfig = field(default_factory=lambda: encoder_preset("vit_giant"))
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    normalize_tokens: bool = True
    frame_rate_hz: float = 4.0

    def __post_init__(self) -> None:
        if self.predictor.encoder_dim != self.encoder.dim:
            raise ValueError(f"predictor.encoder_dim {self.predictor.encoder_dim} != encoder.dim {self.encoder.dim}")
        if (self.predictor.img_size, self.predictor.patch_size) != (self.encoder.img_size, self.encoder.patch_size):
            raise ValueError("predictor and encoder must share img_size and patch_size")
        if self.frame_rate_hz <= 0:
            raise ValueError(f"frame_rate_hz must be positive, got {self.frame_rate_hz}")

    @property
    def step_seconds(self) -> float:
        """Robot time covered by one predictor step (one action)."""
        return self.encoder.tubelet_size / self.frame_rate_hz


@dataclass
class GoalPolicyConfig:
    """Sizes of the goal-conditioned policy (:mod:`worldmodel.goal_policy`) on a world model's tokens.

    ``encoder_dim`` and ``tokens_per_frame`` are the world model's (all views of one frame together);
    ``chunk`` is the number of predictor-step actions it predicts (0.5 s each for the reference's time
    base); ``dropout`` is applied after each hidden layer while training (the shipped policy: 0.2).
    """

    encoder_dim: int = 128
    tokens_per_frame: int = 32
    token_dim: int = 16
    hidden_dim: int = 512
    depth: int = 3
    chunk: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_positive_integers(self, ("encoder_dim", "tokens_per_frame", "token_dim", "hidden_dim", "depth", "chunk"))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GoalPolicyConfig.dropout must be in [0, 1), got {self.dropout!r}")


@dataclass
class LanguageGoalConfig:
    """The language-goal predictor (:mod:`worldmodel.language_goal`): its words and sizes, and its refusal rules.

    ``encoder_dim`` and ``tokens_per_frame`` are the world model's (all views of one frame together).
    ``vocabulary`` holds the words of the training instructions (lower case); a word outside it reads as
    one unknown word. ``object_words`` are the words that name something in the scene (the colours and
    sides of the training instructions): an instruction naming none of them is refused.
    ``match_threshold`` is the probability that an instruction fits the scene in view below which it is
    refused (set by training: the ``match_quantile`` of the held-out matching pairs' probabilities).
    ``max_words`` is the longest instruction read (longer ones are refused, naming the limit).
    ``text_model`` is a frozen Hugging Face text model's config (``config.to_dict()``) and ``text_tokenizer`` its
    tokenizer's files (name -> text, as ``save_pretrained`` writes them): the words are read by that model
    (:mod:`worldmodel.text_model`); both empty: by a table learned over ``vocabulary``.
    """

    encoder_dim: int = 128
    tokens_per_frame: int = 32
    vocabulary: tuple[str, ...] = ()
    object_words: tuple[str, ...] = ()
    width: int = 128
    depth: int = 2
    num_heads: int = 4
    max_words: int = 16
    dropout: float = 0.0
    match_threshold: float = 0.5
    text_model: dict = field(default_factory=dict)
    text_tokenizer: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vocabulary, self.object_words = tuple(self.vocabulary), tuple(self.object_words)
        _check_positive_integers(self, ("encoder_dim", "tokens_per_frame", "width", "depth", "num_heads", "max_words"))
        if self.width % self.num_heads:
            raise ValueError(f"LanguageGoalConfig.width {self.width} is not a multiple of num_heads {self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LanguageGoalConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.match_threshold < 1.0:
            raise ValueError(f"LanguageGoalConfig.match_threshold must be in [0, 1), got {self.match_threshold!r}")
        unknown = sorted(set(self.object_words) - set(self.vocabulary))
        if unknown:
            raise ValueError(f"LanguageGoalConfig.object_words {unknown} are not in its vocabulary")
        if bool(self.text_model) != bool(self.text_tokenizer):
            raise ValueError("LanguageGoalConfig.text_model and text_tokenizer come together: give both or neither")


@dataclass
class TokenStatisticsConfig:
    """What :class:`worldmodel.token_statistics.TokenStatistics` holds, and the threshold stated with the model.

    ``tokens_per_frame`` (all views of one frame together) and ``encoder_dim`` are the world model's;
    ``views`` splits the tokens into the views' equal shares for per-view scores. ``variance_floor`` is
    added to every feature's variance before dividing (the tokens are layer-normed, so the features'
    variances average about 1; the floor keeps a feature that hardly varied in training from ruling the
    score). ``threshold`` is the score above which a frame is called unlike the training data: the
    ``threshold_quantile`` of the scores of ``held_out_frames`` frames of episodes not used to fit the
    statistics (of the ``training_frames`` themselves when there were none held out).
    """

    encoder_dim: int = 128
    tokens_per_frame: int = 32
    views: int = 1
    variance_floor: float = 0.01
    threshold: float = 1.0
    threshold_quantile: float = 0.99
    training_frames: int = 1
    held_out_frames: int = 0

    def __post_init__(self) -> None:
        _check_positive_integers(self, ("encoder_dim", "tokens_per_frame", "views", "training_frames"))
        held_out = self.held_out_frames
        if not isinstance(held_out, int) or isinstance(held_out, bool) or held_out < 0:
            raise ValueError(f"TokenStatisticsConfig.held_out_frames must be an integer >= 0, got {held_out!r}")
        if self.tokens_per_frame % self.views:
            raise ValueError(
                f"TokenStatisticsConfig.tokens_per_frame {self.tokens_per_frame} is not a multiple of "
                f"views {self.views}"
            )
        if not self.variance_floor > 0:  # also refuses NaN
            raise ValueError(f"TokenStatisticsConfig.variance_floor must be > 0, got {self.variance_floor!r}")
        if not 0.0 < self.threshold_quantile < 1.0:
            raise ValueError(
                f"TokenStatisticsConfig.threshold_quantile must be in (0, 1), got {self.threshold_quantile!r}"
            )
        if not 0.0 <= self.threshold < float("inf"):
            raise ValueError(f"TokenStatisticsConfig.threshold must be a finite number >= 0, got {self.threshold!r}")
