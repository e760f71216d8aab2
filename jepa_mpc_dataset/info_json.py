"""``meta/info.json`` of a LeRobot dataset, read and checked at open: the version, fps and features, which
features make the 7-D state, and which are the cameras.

Both layouts the reader takes (v3.x and v2.1) keep the same info.json fields that matter here, so this
module serves both; what differs between them is in :mod:`jepa_mpc_dataset.meta_v3` and
:mod:`jepa_mpc_dataset.meta_v21`.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from jepa_mpc_dataset.format import (
    CARTESIAN_STATE,
    GRIPPER_STATE,
    OBSERVATION_STATE,
    POSE_AXES,
    V21_CODEBASE_VERSION,
    DatasetError,
    camera_feature_name,
)
from jepa_mpc_dataset.read_errors import META_FIX
from jepa_mpc_dataset.reader_config import LeRobotReaderConfig

# The reader's logger, under the name docs/dataset.md gives: one name to filter for all the reader says.
log = logging.getLogger("jepa_mpc_dataset.reader")


def info_path(root: Path) -> Path:
    """Where a dataset rooted at ``root`` keeps its info.json."""
    return root / "meta" / "info.json"


def read_info(root: Path) -> dict:
    """The parsed info.json of the dataset at ``root``, with a supported ``codebase_version``, ``fps`` and
    ``features`` (a dict) present; ``fps`` itself is checked later against the data
    (:mod:`jepa_mpc_dataset.cross_check`).

    Raises FileNotFoundError when info.json is absent; DatasetError naming the file for invalid JSON, a
    non-object, a version other than v3.x or v2.1 (naming LeRobot's conversion scripts), a missing field.
    """
    path = info_path(root)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: point at a LeRobot dataset root (with meta/, data/, videos/), "
            "or run LeRobotDatasetWriter.finalize() on a dataset still being collected"
        )
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not valid JSON ({error}): the file is truncated or corrupt; {META_FIX}") from error
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(info).__name__}; {META_FIX}")
    version = str(info.get("codebase_version", ""))
    if not (version.startswith("v3") or version == V21_CODEBASE_VERSION):
        raise DatasetError(
            f"{path}: codebase_version {version!r} is not supported (v3.x and v2.1 are): convert the dataset "
            "with LeRobot's conversion scripts (convert_dataset_v20_to_v21, then convert_dataset_v21_to_v30)"
        )
    for field in ("fps", "features"):
        if field not in info:
            raise DatasetError(f"{path}: field {field!r} is missing; {META_FIX}")
    if not isinstance(info["features"], dict):
        raise DatasetError(f"{path}: field 'features' must map feature names to their dtype and shape; {META_FIX}")
    return info


def video_features(features: dict) -> list[str]:
    """The feature keys of dtype ``video`` (the cameras), in info.json's order."""
    return [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "video"]


def resolve_camera(root: Path, camera_names: list[str], camera: str | None, default: str) -> str:
    """A camera feature key or writer-side name (``exterior_image_1_left``; None: ``default``) -> its key in
    ``camera_names``.

    Raises DatasetError naming ``root`` and the cameras there are when it is not a video feature."""
    key = camera_feature_name(camera or default)
    if key not in camera_names:
        raise DatasetError(f"{root}: camera {camera!r} ({key}) is not a video feature; cameras are {camera_names}")
    return key


def state_features(root: Path, features: dict, camera_names: list[str], config: LeRobotReaderConfig) -> str | None:
    """Which features make the 7-D state: None = ``config.cartesian_state`` [6] + ``config.gripper_state`` [1];
    or ``observation.state``, the 7-D pose of our older datasets (only when the configured features are absent,
    with a warning attributed to the code that opened the dataset).

    Raises DatasetError naming info.json for a camera ``config.camera`` that is not a video feature (checked
    first), a state feature of another shape, or missing state features (a DROID [8] ``observation.state`` is
    named as joints, not a pose).
    """
    cfg, where = config, info_path(root)
    legacy = features.get(OBSERVATION_STATE) or {}
    legacy_shape = list(legacy.get("shape", []))
    names = legacy.get("names")
    legacy_axes = names.get("axes") if isinstance(names, dict) else names
    legacy_is_pose = legacy_shape == [7] and legacy_axes in (None, POSE_AXES + ["gripper"])
    resolve_camera(root, camera_names, cfg.camera, cfg.camera)
    missing = [name for name in (cfg.cartesian_state, cfg.gripper_state) if name not in features]
    if not missing:
        for name, size in ((cfg.cartesian_state, 6), (cfg.gripper_state, 1)):
            if list(features[name]["shape"]) != [size]:
                raise DatasetError(
                    f"{where}: state feature {name!r} has shape {features[name]['shape']}, expected [{size}]"
                )
        if legacy_is_pose:
            log.info(
                "%s: 7-D state from %s + %s; %s [7] (the same pose in our older datasets) is not used",
                root,
                cfg.cartesian_state,
                cfg.gripper_state,
                OBSERVATION_STATE,
            )
        return None
    if legacy_is_pose and cfg.cartesian_state == CARTESIAN_STATE and cfg.gripper_state == GRIPPER_STATE:
        warnings.warn(
            f"{root}: {missing} missing; reading the 7-D state (x, y, z, roll, pitch, yaw, gripper) from "
            f"{OBSERVATION_STATE} [7], as datasets of older jepa_mpc versions hold it",
            stacklevel=3,  # this function <- LeRobotDataset.__init__ <- the code that opened the dataset
        )
        return OBSERVATION_STATE
    hint = ""
    if legacy_shape == [8]:
        hint = f"; {OBSERVATION_STATE} is [8] (DROID's joint positions + gripper), not a pose"
    raise DatasetError(
        f"{where}: state feature {missing[0]!r} is missing{hint}; features are {sorted(features)}: "
        "set LeRobotReaderConfig.cartesian_state / gripper_state to the dataset's pose features"
    )
