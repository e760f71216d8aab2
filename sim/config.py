"""Configuration of the MuJoCo tasks: one typed dataclass, the single source of defaults.

``SimConfig`` holds what every task shares (image size, control rate, physics step, safety limits,
randomization ranges); each field is validated in ``__post_init__`` with an error that names the bad
value. Build one from flags or YAML with ``jepa_mpc_foundation.configuration.from_dict(SimConfig, {...}, source)``
and pass it to ``gymnasium.make("jepa_mpc/Push-v0", config=cfg)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class ControllerConfig:
    """Differential-IK Cartesian controller (damped least squares), run at the physics rate."""

    damping: float = field(default=0.05, metadata={"help": "DLS damping lambda (m / rad)"})
    stiffness_scale: float = field(
        default=5.0, metadata={"help": "joint set-point = q + scale * dq_IK; >1 makes the servos track faster"}
    )
    nullspace_gain: float = field(default=0.05, metadata={"help": "pull of the redundant DoF towards the home pose"})
    interpolation_fraction: float = field(
        default=0.5, metadata={"help": "share of a control step over which the set-point ramps to the target"}
    )
    ik_every: int = field(default=4, metadata={"help": "physics steps per IK update (the set-point is held between)"})
    gripper_squeeze: float = field(
        default=0.01,
        metadata={"help": "m each finger's set-point lies beyond the commanded opening while it pinches an object"},
    )

    def __post_init__(self) -> None:
        _check(self.damping > 0, f"controller.damping must be > 0, got {self.damping}")
        _check(self.stiffness_scale > 0, f"controller.stiffness_scale must be > 0, got {self.stiffness_scale}")
        _check(self.nullspace_gain >= 0, f"controller.nullspace_gain must be >= 0, got {self.nullspace_gain}")
        _check(
            0 < self.interpolation_fraction <= 1,
            f"controller.interpolation_fraction must be in (0, 1], got {self.interpolation_fraction}",
        )
        _check(self.ik_every >= 1, f"controller.ik_every must be >= 1, got {self.ik_every}")
        _check(
            0 <= self.gripper_squeeze <= 0.04,
            f"controller.gripper_squeeze must be in [0, 0.04] m, got {self.gripper_squeeze}",
        )


@dataclass
class CameraConfig:
    """Nominal pose and field of view of the exterior camera (randomization adds its offsets per episode).

    The default looks over the robot's left shoulder at the middle of the workspace, like DROID's left
    exterior camera; a smaller ``fovy`` frames the task area tighter (more pixels per cm of the cube).
    """

    eye: tuple[float, float, float] = field(
        default=(0.0, 0.62, 0.62), metadata={"help": "camera position (m)", "metavar": "X Y Z"}
    )
    target: tuple[float, float, float] = field(
        default=(0.52, -0.03, 0.12), metadata={"help": "point it looks at (m)", "metavar": "X Y Z"}
    )
    fovy: float = field(default=48.0, metadata={"help": "vertical field of view (degrees)"})

    def __post_init__(self) -> None:
        _check(
            len(self.eye) == 3 and len(self.target) == 3,
            f"camera.eye and camera.target must have 3 entries (x y z in m), got {self.eye} and {self.target}",
        )
        _check(
            math.dist(self.eye, self.target) > 0.05,
            f"camera.eye {self.eye} must be more than 5 cm from camera.target {self.target}",
        )
        _check(5.0 <= self.fovy <= 120.0, f"camera.fovy must be in [5, 120] degrees, got {self.fovy}")


@dataclass
class RandomizationConfig:
    """Per-episode visual randomization, all drawn from the env's seeded ``np_random``."""

    camera_position: float = field(
        default=0.02, metadata={"help": "max offset (m) of the exterior camera eye, per axis"}
    )
    camera_target: float = field(default=0.02, metadata={"help": "max offset (m) of the point it looks at, per axis"})
    light_position: float = field(default=0.15, metadata={"help": "max offset (m) of the key light, per axis"})
    light_intensity: tuple[float, float] = field(
        default=(0.55, 0.85), metadata={"help": "key light diffuse range", "metavar": "LOW HIGH"}
    )
    colour: float = field(default=0.08, metadata={"help": "max change of each RGB channel of the objects and table"})

    def __post_init__(self) -> None:
        for name in ("camera_position", "camera_target", "light_position", "colour"):
            value = getattr(self, name)
            _check(0 <= value <= 0.3, f"randomization.{name} must be in [0, 0.3], got {value}")
        low, high = self.light_intensity
        _check(
            0 <= low <= high <= 1,
            f"randomization.light_intensity must be 0 <= low <= high <= 1, got {self.light_intensity}",
        )


@dataclass
class SimConfig:
    """Everything a task env shares. Positions are in the robot base frame (= world frame, table top at z = 0)."""

    image_size: int = field(default=256, metadata={"help": "height = width of both camera images (pixels)"})
    render_images: bool = field(
        default=True, metadata={"help": "false: observations hold only 'state' (fast scripted rollouts)"}
    )
    shadows: bool = field(
        default=True, metadata={"help": "cast the key light's shadows (a depth cue; rendering ~3x faster without)"}
    )
    control_hz: float = field(default=4.0, metadata={"help": "actions per second; 4 Hz = one action per 0.25 s"})
    physics_dt: float = field(default=0.002, metadata={"help": "MuJoCo timestep (s)"})
    workspace_low: tuple[float, float, float] = field(
        default=(0.3, -0.3, 0.012),
        metadata={"help": "lower corner (m) of the box the end-effector target is clipped to", "metavar": "X Y Z"},
    )
    workspace_high: tuple[float, float, float] = field(
        default=(0.72, 0.3, 0.45), metadata={"help": "upper corner (m) of that box", "metavar": "X Y Z"}
    )
    max_position_step: float = field(default=0.08, metadata={"help": "max norm (m) of an action's position delta"})
    max_rotation_step: float = field(default=0.4, metadata={"help": "max angle (rad) of an action's rotation delta"})
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)

    def __post_init__(self) -> None:
        _check(16 <= self.image_size <= 640, f"image_size must be in [16, 640] pixels, got {self.image_size}")
        _check(0 < self.control_hz <= 50, f"control_hz must be in (0, 50], got {self.control_hz}")
        _check(0 < self.physics_dt <= 0.01, f"physics_dt must be in (0, 0.01] s, got {self.physics_dt}")
        _check(
            self.substeps >= 1 and math.isclose(self.substeps * self.physics_dt, self.control_period, rel_tol=1e-6),
            f"1 / control_hz ({self.control_period} s) must be a whole multiple of physics_dt ({self.physics_dt} s)",
        )
        _check(
            len(self.workspace_low) == 3 and len(self.workspace_high) == 3,
            f"workspace_low/high must have 3 entries, got {self.workspace_low} and {self.workspace_high}",
        )
        _check(
            all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)),
            f"workspace_low {self.workspace_low} must be below workspace_high {self.workspace_high} on every axis",
        )
        _check(
            self.workspace_low[2] >= 0.0, f"workspace_low z must be >= 0 (the table top), got {self.workspace_low[2]}"
        )
        _check(self.max_position_step > 0, f"max_position_step must be > 0 m, got {self.max_position_step}")
        _check(
            0 < self.max_rotation_step <= math.pi,
            f"max_rotation_step must be in (0, pi] rad, got {self.max_rotation_step}",
        )

    @property
    def control_period(self) -> float:
        """Seconds per action (0.25 s at the default 4 Hz)."""
        return 1.0 / self.control_hz

    @property
    def substeps(self) -> int:
        """Physics steps per action."""
        return int(round(self.control_period / self.physics_dt))
