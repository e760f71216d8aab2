"""The simulator and planner settings that show a world model what it needs (:mod:`worldmodel.model_needs`).

The one place where a model's needs become settings: the evaluation, the demo, ``jepa-mpc collect`` and
the bench scripts build their ``SimConfig`` and planner budget here instead of restating 64 px, 2 Hz or
128 x 6. A checkpoint that states no image size (a released V-JEPA 2-AC file, whose input size is the
loader's choice) is shown ``UNSTATED_IMAGE_SIZE``, as before models stated theirs.
"""

from __future__ import annotations

from planner.presets import CPU_PRESET
from sim.config import SimConfig
from worldmodel.checkpoint import resolve_checkpoint
from worldmodel.model_needs import ModelNeeds, model_needs

# The camera image size for a checkpoint that states none: what the evaluation rendered for every model
# before checkpoints stated theirs.
UNSTATED_IMAGE_SIZE = 64


def needs_of(checkpoint: str = "") -> ModelNeeds:
    """What the model ``checkpoint`` needs (empty: the shipped default model).

    Raises:
        FileNotFoundError, CheckpointError: the checkpoint does not exist or is not a world model.
    """
    return model_needs(resolve_checkpoint(checkpoint))


def sim_for_planning(needs: ModelNeeds, **fields) -> SimConfig:
    """The simulator a planner with the model of ``needs`` acts in: the camera at the model's image size and one
    env step per predictor step (one planned action); ``fields`` (``SimConfig`` fields) over them."""
    return SimConfig(
        **{"image_size": needs.image_size or UNSTATED_IMAGE_SIZE, "control_hz": needs.control_hz, **fields}
    )


def sim_for_recording(needs: ModelNeeds, **fields) -> SimConfig:
    """The simulator that records data for the model of ``needs``: the camera at its image size (the sim's
    default where it states none) and one control step per training frame (its frame rate); ``fields`` over them."""
    return SimConfig(
        **{"image_size": needs.image_size or SimConfig.image_size, "control_hz": needs.frame_rate_hz, **fields}
    )


def planner_preset(needs: ModelNeeds) -> dict:
    """The planner budget (``PlannerConfig`` fields) the model of ``needs`` was evaluated with, else ``CPU_PRESET``."""
    return dict(CPU_PRESET if needs.planner is None else needs.planner)
