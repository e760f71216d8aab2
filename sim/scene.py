"""The tabletop around the robot: object ids, object placement and per-episode visual randomization.

Nominal values (colours, light, camera pose) are read from the compiled model once and kept; each
episode writes nominal + a random offset, so randomization never accumulates across resets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import rendering  # noqa: F401  (imports mujoco, surviving a missing GL library)
from sim.config import CameraConfig, RandomizationConfig

import mujoco  # isort: skip  (after sim.rendering, which imports it surviving a missing GL library)

OBJECTS = ("cube", "small_cube", "bowl")  # bodies with a free joint
CUBE_HALF_SIZE = 0.025  # m; the task cube is 5 cm
EXTERIOR_CAMERA = "exterior"
WRIST_CAMERA = "wrist"


def look_at_quat(
    eye: np.ndarray,
    target: np.ndarray,
    up: np.ndarray = np.array([0.0, 0.0, 1.0]),  # noqa: B008  (read only: never written to)
) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at ``eye`` looking at ``target`` (cameras look along -z)."""
    backward = eye - target
    backward = backward / np.linalg.norm(backward)  # camera z
    right = np.cross(up, backward)
    right = right / np.linalg.norm(right)  # camera x
    image_up = np.cross(backward, right)  # camera y
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.stack([right, image_up, backward], axis=1).ravel())
    return quat


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


@dataclass
class ObjectIds:
    body: int
    qpos: int  # address of the free joint's 7 qpos (xyz, quat)
    dof: int  # address of its 6 dofs
    geoms: np.ndarray


class Scene:
    """Object ids and the randomization of one compiled tabletop model."""

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        config: RandomizationConfig,
        camera: CameraConfig | None = None,
        objects: tuple[str, ...] = OBJECTS,
    ):
        self.model, self.data, self.config = model, data, config
        self.camera = camera or CameraConfig()
        self.objects: dict[str, ObjectIds] = {}  # in the order of ``objects``: the order colours are drawn in
        for name in objects:
            body = model.body(name).id
            joint = model.joint(name)
            geoms = np.flatnonzero(model.geom_bodyid == body)
            self.objects[name] = ObjectIds(body, int(joint.qposadr[0]), int(joint.dofadr[0]), geoms)
        self.zone_mocap = int(model.body("zone").mocapid[0])
        self.zone_geom = model.geom("zone").id
        self.table_material = model.geom_matid[model.geom("table").id]
        self.exterior_camera = model.camera(EXTERIOR_CAMERA).id
        model.cam_fovy[self.exterior_camera] = self.camera.fovy
        self.key_light = model.light("key").id
        self._nominal_rgba = model.geom_rgba.copy()
        self._nominal_mat_rgba = model.mat_rgba.copy()
        self._nominal_light_pos = model.light_pos[self.key_light].copy()

    # ---------------------------------------------------------------- objects
    def object_position(self, name: str) -> np.ndarray:
        return self.data.xpos[self.objects[name].body].copy()

    def object_rotation(self, name: str) -> np.ndarray:
        return self.data.xmat[self.objects[name].body].reshape(3, 3).copy()

    def placed_position(self, name: str) -> np.ndarray:
        """Where ``place_object`` put an object (its qpos), before ``mj_forward`` updates ``object_position``."""
        ids = self.objects[name]
        return self.data.qpos[ids.qpos : ids.qpos + 3].copy()

    def place_object(self, name: str, position: np.ndarray, yaw: float = 0.0) -> None:
        """Put an object at rest at ``position`` (its body origin) with a yaw about the vertical."""
        ids = self.objects[name]
        self.data.qpos[ids.qpos : ids.qpos + 3] = position
        self.data.qpos[ids.qpos + 3 : ids.qpos + 7] = yaw_quat(yaw)
        self.data.qvel[ids.dof : ids.dof + 6] = 0.0

    @property
    def zone_position(self) -> np.ndarray:
        return self.data.mocap_pos[self.zone_mocap].copy()

    def place_zone(self, xy: np.ndarray, visible: bool) -> None:
        self.data.mocap_pos[self.zone_mocap] = [xy[0], xy[1], 0.0]
        self.model.geom_rgba[self.zone_geom, 3] = 1.0 if visible else 0.0

    # ---------------------------------------------------------------- visuals
    def randomize_visuals(self, rng: np.random.Generator) -> None:
        """Object and table colours, key light and exterior camera pose, each within the configured range."""
        cfg = self.config
        for ids in self.objects.values():
            geoms = ids.geoms
            offset = rng.uniform(-cfg.colour, cfg.colour, size=3)  # one offset per object: it stays one colour
            self.model.geom_rgba[geoms, :3] = np.clip(self._nominal_rgba[geoms, :3] + offset, 0.0, 1.0)
        offset = rng.uniform(-cfg.colour, cfg.colour, size=3)
        self.model.mat_rgba[self.table_material, :3] = np.clip(
            self._nominal_mat_rgba[self.table_material, :3] + offset, 0, 1
        )
        self.model.light_pos[self.key_light] = self._nominal_light_pos + rng.uniform(
            -cfg.light_position, cfg.light_position, 3
        )
        self.model.light_diffuse[self.key_light] = rng.uniform(*cfg.light_intensity)
        eye = np.asarray(self.camera.eye) + rng.uniform(-cfg.camera_position, cfg.camera_position, 3)
        target = np.asarray(self.camera.target) + rng.uniform(-cfg.camera_target, cfg.camera_target, 3)
        self.model.cam_pos[self.exterior_camera] = eye
        self.model.cam_quat[self.exterior_camera] = look_at_quat(eye, target)


def sample_separated_xy(
    rng: np.random.Generator, low: np.ndarray, high: np.ndarray, others: list[np.ndarray], min_distance: float
) -> np.ndarray:
    """A uniform xy in the box [low, high] at least ``min_distance`` from every xy in ``others``."""
    for _ in range(100):
        xy = rng.uniform(low, high)
        if all(np.linalg.norm(xy - other[:2]) >= min_distance for other in others):
            return xy
    raise RuntimeError(f"could not place an object in {low}..{high} {min_distance} m away from {others}")
