"""``jepa-mpc collect``: record episodes of a sim task (:func:`sim.collect.collect`) and print what was recorded.

The recording shows a model what it needs to see (:func:`worldmodel.model_needs.model_needs`): the camera
at its image size, one frame per step at its frame rate. ``--for_model CKPT`` names the model and refuses a
``--sim`` flag that contradicts it; without it the shipped default model's needs are the defaults.
"""

from __future__ import annotations

import math
from typing import Any

from jepa_mpc.model_settings import needs_of, sim_for_recording
from sim.collect import CollectConfig, CollectInterrupted, collect
from worldmodel.model_needs import ModelNeeds


def collect_defaults(overrides: dict[str, Any]) -> CollectConfig:
    """The defaults layer of ``jepa-mpc collect``: the simulator settings of the model ``--for_model`` names
    (the shipped one when empty). The required fields are placeholders: the command refuses to run without them.

    Raises:
        FileNotFoundError, CheckpointError: the checkpoint does not exist or is not a world model.
    """
    for_model = str(overrides.get("for_model", "") or "")
    return CollectConfig(
        task="reach", episodes=1, out="", for_model=for_model, sim=sim_for_recording(needs_of(for_model))
    )


def check_against_model(config: CollectConfig) -> None:
    """Refuse a ``--sim`` setting that contradicts the model ``--for_model`` names (nothing without it).

    Raises:
        ValueError: one line naming the setting, both values and the fix.
    """
    if not config.for_model:
        return
    needs = needs_of(config.for_model)
    wanted = sim_for_recording(needs)
    if needs.image_size is not None and config.sim.image_size != wanted.image_size:
        raise needs.contradiction(
            "--sim.image_size",
            config.sim.image_size,
            f"{wanted.image_size} px images",
            f"leave --sim.image_size out (--for_model sets it) or pass {wanted.image_size}",
        )
    if not math.isclose(config.sim.control_hz, wanted.control_hz, rel_tol=1e-6):
        raise needs.contradiction(
            "--sim.control_hz",
            f"{config.sim.control_hz:g}",
            f"frames at {wanted.control_hz:g} fps",
            f"leave --sim.control_hz out (--for_model sets it) or pass {wanted.control_hz:g}",
        )
    _check_cameras(needs)


def _check_cameras(needs: ModelNeeds) -> None:
    from jepa_mpc_dataset.format import camera_feature_name
    from sim.env import CAMERAS

    recorded = [camera_feature_name(camera) for camera in CAMERAS]
    missing = [camera for camera in needs.cameras or () if camera not in recorded]
    if missing:
        raise ValueError(
            f"the model {needs.checkpoint} was trained on the camera(s) {', '.join(missing)}, which the simulator "
            f"does not record (it records {', '.join(recorded)}): train a model on the simulator's cameras"
        )


def run_collect(config: CollectConfig) -> None:
    check_against_model(config)
    try:
        summary = collect(config)
    except CollectInterrupted as interrupted:
        print(interrupted.summary.text(), flush=True)  # what is on disk, before the command says "interrupted"
        raise
    print(summary.text())
