"""Encode every episode once with the frozen encoder; training epochs read tokens from disk.

Layout of one cache entry (a folder named by its key)::

    tokens.f16   float16 [S, N, D] memory-mapped: layer-normed tokens of every sampled frame
    states.npy   float32 [S, 7]
    index.json   episodes (name, offset, length, task, words_in_scene), skipped episodes with reasons, the key's parts

``index.json`` is written last and atomically: a folder without it is an interrupted build and is
rebuilt. The key hashes the encoder file, the encoder config, the preprocessing, the precision the
encoder ran in (bf16 autocast on CUDA, float32 on CPU), the data's fingerprint and the cache format,
so a cache built from other weights, other frames, another preprocessing or another precision is
never used: it simply lives in another folder.

Each sampled frame is encoded alone, repeated into a 2-frame tubelet (the reference's training
targets and :meth:`worldmodel.WorldModel.encode_frames` at planning time do the same), so training
inputs/targets and planning see identical tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jepa_mpc_foundation.atomic_files import atomic_path, write_text_atomic
from jepa_mpc_foundation.configuration import dataclass_to_dict
from worldmodel.config import EncoderConfig
from worldmodel.encoder import VideoEncoder
from worldmodel.precision import compute_dtype
from worldmodel.world_model import WorldModel, encode_each_frame, load_world_model, normalize_tokens

from .config import DataConfig
from .encoder_checkpoint import weights_digest
from .episodes import EpisodeSource, SkippedEpisode, no_usable_episode, usable_episodes

CACHE_FORMAT = "jepa_mpc_features_v3"  # v2: each episode's task in index.json; v3: and its words_in_scene
PREPROCESSING = (
    "centre square crop, bilinear resize (align_corners=False), ImageNet normalization; "
    "frame repeated into one tubelet; layer-normed tokens"
)


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jepa_mpc" / "features"


def cache_key(
    encoder_digest: str, encoder_config: EncoderConfig, data_fingerprint: str, precision: torch.dtype, views: int = 1
) -> str:
    """The cache entry's name: a SHA-256 of everything the cached tokens depend on (module docstring)."""
    parts = [
        CACHE_FORMAT,
        encoder_digest,
        json.dumps(dataclass_to_dict(encoder_config), sort_keys=True),
        PREPROCESSING,
        str(precision),
        data_fingerprint,
    ]
    if views > 1:  # single-view keys stay what they were, so existing caches are found
        parts.append(f"views={views}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass
class FeatureCache:
    """Cached tokens ``[S, N, D]`` (float16, memory-mapped) and states ``[S, 7]`` of all kept episodes."""

    folder: Path
    tokens: np.ndarray
    states: np.ndarray
    episodes: list[dict]  # {"name", "offset", "length", "task", "words_in_scene"} in cache order
    skipped: list[SkippedEpisode] = field(default_factory=list)
    built: bool = False  # True when this call encoded the data, False on a cache hit

    @classmethod
    def open(cls, folder: Path) -> FeatureCache:
        index = json.loads((folder / "index.json").read_text())
        shape = tuple(index["tokens_shape"])
        tokens = np.memmap(folder / "tokens.f16", dtype=np.float16, mode="r", shape=shape)
        states = np.load(folder / "states.npy", mmap_mode="r")
        skipped = [SkippedEpisode(**s) for s in index["skipped"]]
        return cls(folder, tokens, states, index["episodes"], skipped)

    @property
    def tokens_per_frame(self) -> int:
        return self.tokens.shape[1]


def build_feature_cache(
    source: EpisodeSource,
    encoder: VideoEncoder,
    encoder_digest: str,
    cache_root: str | Path,
    min_length: int,
    skip_bad: bool = False,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    views: int = 1,
) -> FeatureCache:
    """Open the cache entry for this encoder + data, encoding the episodes first if it does not exist.

    Episodes with fewer than ``min_length`` sampled frames (shorter than one clip) are skipped with a
    warning and recorded; ``views``: camera views side by side in each frame (tokens ``[S, views * n, D]``);
    episodes with bad data raise :class:`EpisodeError` naming them, or with
    ``skip_bad`` are skipped with a warning and recorded (``FeatureCache.skipped``).
    """
    device = torch.device(device)
    key = cache_key(encoder_digest, encoder.config, source.fingerprint(), compute_dtype(device), views)
    folder = Path(cache_root) / key[:24]
    if (folder / "index.json").is_file():
        cache = FeatureCache.open(folder)
        _warn_skipped(cache.skipped)
        return cache

    folder.mkdir(parents=True, exist_ok=True)
    encoder = encoder.to(device).eval()
    episodes, skipped, all_states = [], [], []
    offset, token_shape = 0, None
    with atomic_path(folder / "tokens.f16") as tmp, open(tmp, "wb") as out:
        for episode in usable_episodes(source, min_length, skip_bad, skipped, desc="encoding episodes"):
            with torch.no_grad():
                tokens = normalize_tokens(encode_each_frame(encoder, episode.frames, views, batch_size))  # [T, N, D]
            if token_shape is None:
                token_shape = tuple(tokens.shape[1:])
            out.write(tokens.cpu().to(torch.float16).numpy().tobytes())
            all_states.append(episode.states.astype(np.float32))
            entry = {"name": episode.name, "offset": offset, "length": episode.length, "task": episode.task}
            episodes.append(entry | {"words_in_scene": list(episode.words_in_scene)})
            offset += episode.length
    if not episodes:
        raise no_usable_episode(skipped, min_length, "--data.clip_steps")
    with atomic_path(folder / "states.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.concatenate(all_states))
    index = {
        "format": CACHE_FORMAT,
        "key": key,
        "preprocessing": PREPROCESSING,
        "precision": str(compute_dtype(device)),
        "encoder_digest": encoder_digest,
        "encoder_config": dataclass_to_dict(encoder.config),
        "views": views,
        "tokens_shape": [offset, *token_shape],
        "episodes": episodes,
        "skipped": [vars(s) for s in skipped],
    }
    write_text_atomic(folder / "index.json", json.dumps(index, indent=1))
    cache = FeatureCache.open(folder)
    cache.built = True
    _warn_skipped(cache.skipped)
    return cache


def load_frozen_world_model(checkpoint: Path, data: DataConfig) -> WorldModel:
    """The world model (on the CPU) whose frozen encoder's tokens a cache of ``data``'s episodes will hold.

    Raises:
        ConfigError: the model plans from another number of views than ``data`` reads.
    """
    from jepa_mpc_foundation.configuration import ConfigError

    world_model = load_world_model(checkpoint, device="cpu")
    views = world_model.config.predictor.views
    if data.views != views:
        raise ConfigError(
            f"{checkpoint} plans from {views} camera view(s) but --data.wrist_camera gives "
            f"{data.views}: set --data.wrist_camera to the model's second camera, or to '' for one view"
        )
    return world_model


def cache_frozen_tokens(
    source: EpisodeSource, world_model: WorldModel, checkpoint: Path, data: DataConfig, device: torch.device | str
) -> FeatureCache:
    """:func:`build_feature_cache` of ``source`` with ``world_model``'s encoder (loaded from ``checkpoint``), as
    ``data`` says: what ``train-policy``, ``train-language-goal`` and ``ood-stats`` read. Keyed by the encoder's
    weights, not the checkpoint file: each of them writes a new checkpoint with the same frozen encoder, and the
    next one reads the cache the first built."""
    return build_feature_cache(
        source,
        world_model.encoder,
        weights_digest(world_model.encoder),
        Path(data.cache_dir) if data.cache_dir else default_cache_root(),
        min_length=world_model.config.encoder.tubelet_size + 1,
        skip_bad=data.bad_episodes == "skip",
        batch_size=data.encode_batch_size,
        device=device,
        views=data.views,
    )


def _warn_skipped(skipped: list[SkippedEpisode]) -> None:
    if skipped:
        lines = "\n".join(f"  {s.name}: {s.reason}" for s in skipped[:20])
        more = f"\n  ... ({len(skipped)} in all)" if len(skipped) > 20 else ""
        warnings.warn(f"skipped {len(skipped)} episode(s):\n{lines}{more}", stacklevel=3)
