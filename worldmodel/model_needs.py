"""What a world model needs to see, read from its checkpoint: the one source of the observation settings.

A project checkpoint already states it: the encoder's ``img_size``, the predictor's ``views``, the
``frame_rate_hz`` and the step length (``WorldModelConfig``), the camera features it was trained on (its
stored ``train_config``), and optionally the planner preset it was evaluated with (``planner_preset``,
written by :func:`save_planner_preset`). The evaluation, the demo, ``jepa-mpc collect --for_model`` and the
bench scripts take their image size, camera views, control rate and planner budget from here, so that a
model and the scene it is shown cannot disagree silently.

A released V-JEPA 2-AC file states none of it: its image size is the loader's choice (256 px), so it is
``None`` here and the callers keep their own defaults for it; its views (1) and time base (4 fps,
2-frame tubelets) are what :func:`worldmodel.checkpoint.world_model_config_from_checkpoint` infers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from jepa_mpc_foundation.atomic_files import atomic_path

from .checkpoint import PROJECT_FORMAT, CheckpointError, read_checkpoint, world_model_config_from_checkpoint
from .config import WorldModelConfig

# The checkpoint entry of the planner preset a model was evaluated with: PlannerConfig fields and values.
PLANNER_PRESET_KEY = "planner_preset"


@dataclass(frozen=True)
class ModelNeeds:
    """What a world model needs to see and how it was planned with; ``None``: the checkpoint does not say.

    ``image_size``: side (px) of each camera view the encoder takes; ``views``: camera views per frame
    (1 exterior, 2 exterior and wrist side by side); ``cameras``: the dataset camera features it was trained
    on, in view order; ``frame_rate_hz`` and ``step_seconds``: the frames' rate and the robot time one
    predictor step (one planned action) spans; ``planner``: the ``PlannerConfig`` fields it was evaluated with.
    """

    checkpoint: str
    image_size: int | None
    views: int
    frame_rate_hz: float
    step_seconds: float
    cameras: tuple[str, ...] | None = None
    planner: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        config: WorldModelConfig,
        checkpoint: str = "",
        image_size_stated: bool = True,
        cameras: tuple[str, ...] | None = None,
        planner: dict[str, Any] | None = None,
    ) -> ModelNeeds:
        """The needs of a model of ``config`` (``image_size_stated`` False: a released file's loader-chosen size)."""
        return cls(
            checkpoint=checkpoint,
            image_size=config.encoder.img_size if image_size_stated else None,
            views=config.predictor.views,
            frame_rate_hz=config.frame_rate_hz,
            step_seconds=config.step_seconds,
            cameras=cameras,
            planner=planner,
        )

    @property
    def control_hz(self) -> float:
        """Actions per second: one per predictor step."""
        return 1.0 / self.step_seconds

    def contradiction(self, setting: str, given: Any, needed: Any, fix: str) -> ValueError:
        """The one-line error for ``setting`` (as typed) set to ``given`` where the model needs ``needed``."""
        return ValueError(f"{setting} {given} contradicts the model {self.checkpoint}, which needs {needed}: {fix}")


def model_needs(path: str | Path) -> ModelNeeds:
    """The :class:`ModelNeeds` of the world model checkpoint ``path`` (read once per file version).

    Raises:
        CheckpointError: ``path`` is not a world model checkpoint (the message names the file and the fix).
    """
    path = Path(path)
    stat = path.stat() if path.is_file() else None
    return _model_needs(str(path), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@functools.lru_cache(maxsize=8)
def _model_needs(path: str, mtime_ns: int, size: int) -> ModelNeeds:
    data = read_checkpoint(path)
    try:
        config = world_model_config_from_checkpoint(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return ModelNeeds.of(
        config,
        checkpoint=path,
        image_size_stated=data.get("format") == PROJECT_FORMAT,
        cameras=_trained_cameras(data, config.predictor.views),
        planner=_planner_preset(data, path),
    )


def _trained_cameras(data: dict[str, Any], views: int) -> tuple[str, ...] | None:
    """The camera features of the stored training config (``data.camera``, ``data.wrist_camera``), if any."""
    stored = data.get("train_config", {}).get("data", {}) if isinstance(data.get("train_config"), dict) else {}
    cameras = (stored.get("camera"), stored.get("wrist_camera"))[:views]
    if not all(isinstance(camera, str) and camera for camera in cameras):
        return None
    return tuple(cameras)


def _planner_preset(data: dict[str, Any], path: str) -> dict[str, Any] | None:
    preset = data.get(PLANNER_PRESET_KEY)
    if preset is None:
        return None
    if not isinstance(preset, dict) or not all(isinstance(key, str) for key in preset):
        raise CheckpointError(
            f"{path}: {PLANNER_PRESET_KEY!r} is a {type(preset).__name__}, expected a dict of PlannerConfig "
            "fields; write it again with worldmodel.model_needs.save_planner_preset"
        )
    return dict(preset)


def save_planner_preset(checkpoint: str | Path, preset: dict[str, Any], out: str | Path) -> None:
    """Write ``checkpoint`` to ``out`` (atomically) with the planner preset it was evaluated with recorded;
    every other entry is written back unchanged.

    Raises:
        CheckpointError: ``checkpoint`` cannot be read (:func:`read_checkpoint`).
    """
    data = read_checkpoint(checkpoint)
    data[PLANNER_PRESET_KEY] = dict(preset)
    with atomic_path(out) as tmp:
        torch.save(data, tmp)
