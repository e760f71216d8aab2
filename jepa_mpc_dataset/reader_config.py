"""The reader's configuration: which features make the 7-D state and the training video, the rate training
samples frames at, and what to do about bad episodes found at open."""

from __future__ import annotations

from dataclasses import dataclass

from jepa_mpc_dataset.format import CARTESIAN_STATE, GRIPPER_STATE, SUCCESS

__all__ = ["LeRobotReaderConfig"]


@dataclass
class LeRobotReaderConfig:
    """Which features of a LeRobot dataset make the 7-D state and the training video, and the rate
    training samples frames at. Defaults read DROID-in-LeRobot and our sim datasets (which use DROID's names).

    Raises ValueError naming the field for ``sample_fps <= 0``, a ``bad_episodes`` other than
    ``"error"`` / ``"skip"``, or an empty ``camera`` / ``cartesian_state`` / ``gripper_state``.
    """

    camera: str = "observation.images.exterior_1_left"
    cartesian_state: str = CARTESIAN_STATE  # [6]: x, y, z, extrinsic xyz Euler
    gripper_state: str = GRIPPER_STATE  # [1]: closedness in [0, 1]
    success: str = SUCCESS  # per-frame bool column; episodes without it read success=None
    sample_fps: int = 4  # training samples every ceil(fps / sample_fps)-th source frame (frame_step)
    # Problems found at open (frames without a metadata row, unreadable data files): "error" raises
    # DatasetError, "skip" warns and lists them in LeRobotDataset.skipped (training's data.bad_episodes).
    bad_episodes: str = "error"

    def __post_init__(self) -> None:
        if self.sample_fps <= 0:
            raise ValueError(f"LeRobotReaderConfig.sample_fps must be > 0, got {self.sample_fps}")
        if self.bad_episodes not in ("error", "skip"):
            raise ValueError(f"LeRobotReaderConfig.bad_episodes must be 'error' or 'skip', got {self.bad_episodes!r}")
        for name in ("camera", "cartesian_state", "gripper_state"):
            if not getattr(self, name):
                raise ValueError(f"LeRobotReaderConfig.{name} must name a feature, got {getattr(self, name)!r}")
