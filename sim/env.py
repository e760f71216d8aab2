"""The base gymnasium env of every tabletop task: Franka + scene + cameras + the 7-D action convention.

One ``step(action)`` is one control period (0.25 s at the default 4 Hz): the 7-D action
``[dx, dy, dz, drx, dry, drz, dg]`` moves the *measured* state (``R_target = R_delta @ R``, the
convention of jepa_mpc_foundation/pose.py, computed here with scipy's ``Rotation``), the target is made
safe (per-step norm limits, workspace
box), and the Cartesian controller tracks it for ``substeps`` physics steps. The observation holds the
state actually reached, so recorded actions ``action_between(state_t, state_t+1)`` match the data.

A task subclass implements four hooks: ``_sample_task`` (place objects and goal from ``np_random``),
``_goal_configuration`` (the scene of the solved task, rendered as the goal image),
``_task_terms`` (named geometric quantities, reported in ``info``) and ``_is_success``; a multi-stage
task also implements ``_subgoal_configurations``: the scenes on the way to the goal (hand above the
cube, fingers around it, ...), rendered at reset as visual sub-goals (``info["subgoal_images"]``,
``info["subgoal_states"]``), the way the reference plans pick-and-place through sub-goal images.
The wrist camera's view of the goal and sub-goals is in ``info["goal_wrist_image"]`` and
``info["subgoal_wrist_images"]`` (for a model that plans from both views). A task on another tabletop
names its MJCF (``scene_file``, ``scene_objects``); ``target_cube`` is the cube body the task is about
(``cube``; a language task's is the cube its instruction names), which ``cube_position`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium
import numpy as np
from gymnasium import spaces
from scipy.spatial.transform import Rotation

from jepa_mpc_foundation.pose import ACTION_DIM, STATE_DIM
from sim import rendering
from sim.config import SimConfig
from sim.franka import ASSETS, Franka, PoseTarget, target_from_state
from sim.scene import EXTERIOR_CAMERA, OBJECTS, WRIST_CAMERA, Scene

import mujoco  # isort: skip  (after sim.rendering, which imports it surviving a missing GL library)

# Observation keys of the two cameras: DROID's names, as the dataset writer stores them.
EXTERIOR_IMAGE = "exterior_image_1_left"
WRIST_IMAGE = "wrist_image_left"
CAMERAS = {EXTERIOR_IMAGE: EXTERIOR_CAMERA, WRIST_IMAGE: WRIST_CAMERA}
ACTION_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz", "dgripper")
# Gripper pointing down, fingers along the world y axis: the orientation every task starts from.
DOWN = np.diag([1.0, -1.0, -1.0])
HOME_TCP = np.array([0.45, 0.0, 0.25])
START_JITTER = np.array([0.03, 0.05, 0.03])  # m, uniform range of the start TCP around HOME_TCP
SETTLE_STEPS = 50  # physics steps at reset that let placed objects come to rest


@dataclass
class GoalConfiguration:
    """The solved scene of an episode: where the TCP is (and how closed the gripper) and where objects are."""

    tcp: PoseTarget
    objects: dict[str, np.ndarray] = field(default_factory=dict)  # body name -> position [3]


def validate_action(action: np.ndarray) -> np.ndarray:
    """A float64 copy of a 7-D action; ValueError naming the entries if it has the wrong shape or NaN/inf."""
    array = np.asarray(action, dtype=np.float64)
    if array.shape != (ACTION_DIM,):
        raise ValueError(f"action must have shape ({ACTION_DIM},) = {ACTION_NAMES}, got shape {array.shape}")
    bad = [f"{ACTION_NAMES[i]} (index {i}) = {array[i]}" for i in np.flatnonzero(~np.isfinite(array))]
    if bad:
        raise ValueError(f"action has non-finite entries: {', '.join(bad)}; the env was not stepped")
    return array.copy()


class FrankaTaskEnv(gymnasium.Env):
    """Base class of the tasks; see the module docstring. Observation: dict of ``state`` [7] float32
    and, unless ``config.render_images`` is false, two uint8 images [H, W, 3]."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    task_name = ""  # short name used by the CLI and the experts ("reach", "push", ...)
    instruction = ""  # language instruction stored with recorded episodes (the language tasks: per episode)
    words_in_scene: tuple[str, ...] = ()  # the words naming what is on the table, recorded likewise
    scene_file = "scene.xml"  # the MJCF in sim/assets/
    scene_objects = OBJECTS  # its bodies with a free joint, in the order their colours are randomized

    def __init__(self, config: SimConfig | None = None, render_mode: str | None = None):
        self.config = config if config is not None else SimConfig()
        if not isinstance(self.config, SimConfig):
            raise TypeError(f"config must be a sim.config.SimConfig, got {type(self.config).__name__}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.config.control_hz}

        self.model = mujoco.MjModel.from_xml_path(str(ASSETS / self.scene_file))
        self.model.opt.timestep = self.config.physics_dt
        if not self.config.shadows:
            self.model.light_castshadow[:] = 0
        self.data = mujoco.MjData(self.model)
        self.robot = Franka(self.model, self.data, self.config.controller)
        self.scene = Scene(self.model, self.data, self.config.randomization, self.config.camera, self.scene_objects)
        self.target_cube = "cube"  # the body the task is about (the language tasks name one of several)
        self._home_key = self.model.key("home").id
        size = self.config.image_size
        needs_images = self.config.render_images or render_mode is not None
        # No GL context yet: CameraRenderer makes it at the first render, in the process that renders (fork-safe).
        self._renderer = rendering.CameraRenderer(self.model, size, size) if needs_images else None

        state_bound = np.array([2.0, 2.0, 2.0, np.pi, np.pi / 2, np.pi, 1.0], dtype=np.float32)
        state_low = -state_bound
        state_low[6] = 0.0
        obs = {"state": spaces.Box(state_low, state_bound, dtype=np.float32)}
        if self.config.render_images:
            for key in CAMERAS:
                obs[key] = spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs)
        limit = np.array([self.config.max_position_step] * 3 + [self.config.max_rotation_step] * 3 + [1.0])
        self.action_space = spaces.Box(-limit.astype(np.float32), limit.astype(np.float32), dtype=np.float32)
        self._workspace_low = np.array(self.config.workspace_low)
        self._workspace_high = np.array(self.config.workspace_high)

        self.goal_state = np.zeros(STATE_DIM)
        self._goal_image: np.ndarray | None = None
        self.commanded_state = np.zeros(STATE_DIM)
        self.elapsed_steps = 0

    # ---------------------------------------------------------------- task hooks
    def _sample_task(self) -> None:
        """Place objects, zone and goal for a new episode, drawing from ``self.np_random``."""
        raise NotImplementedError

    def _goal_configuration(self) -> GoalConfiguration:
        """The solved scene of this episode."""
        raise NotImplementedError

    def _subgoal_configurations(self) -> list[GoalConfiguration]:
        """The scenes on the way to the goal, in order, without the goal itself; none for one-stage tasks."""
        return []

    def _task_terms(self) -> dict[str, float]:
        """Named geometric quantities of the task (m), reported in ``info``; ``distance`` is the reward's."""
        raise NotImplementedError

    def _is_success(self, terms: dict[str, float]) -> bool:
        """The documented success criterion, from ``_task_terms``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetDataKeyframe(self.model, self.data, self._home_key)
        self.scene.randomize_visuals(self.np_random)
        start = HOME_TCP + self.np_random.uniform(-START_JITTER, START_JITTER)
        q = self.robot.solve_ik(PoseTarget(start, DOWN, 0.0))
        self.robot.set_joint_positions(q, gripper=0.0)
        mujoco.mj_forward(self.model, self.data)  # the task may read the start TCP
        self._sample_task()
        mujoco.mj_forward(self.model, self.data)
        self.robot.track(PoseTarget(self.robot.tcp_position(), self.robot.tcp_rotation(), 0.0), SETTLE_STEPS)
        self.data.time = 0.0
        self.elapsed_steps = 0
        self.commanded_state = self.robot.state()
        self.goal_state, goal_images = self._render_configuration(self._goal_configuration())
        subgoals = [self._render_configuration(c) for c in self._subgoal_configurations()]
        info = self._info()
        info["goal_state"] = self.goal_state.astype(np.float32)
        info["subgoal_states"] = np.array([state for state, _ in subgoals], dtype=np.float32).reshape(-1, STATE_DIM)
        if goal_images is not None:
            self._goal_image = goal_images[EXTERIOR_IMAGE]
            info["goal_image"] = self._goal_image
            info["goal_wrist_image"] = goal_images[WRIST_IMAGE]
            size = self.config.image_size
            for key, name in ((EXTERIOR_IMAGE, "subgoal_images"), (WRIST_IMAGE, "subgoal_wrist_images")):
                images = [images[key] for _, images in subgoals]
                info[name] = np.array(images, dtype=np.uint8).reshape(-1, size, size, 3)
        return self._observation(), info

    def step(self, action):
        action = validate_action(action)
        safe = self.safe_action(action)
        target = self._apply_to_measured_state(safe)
        target[:3] = np.clip(target[:3], self._workspace_low, self._workspace_high)
        self.commanded_state = target
        self.robot.track(target_from_state(target), self.config.substeps)
        self.elapsed_steps += 1
        info = self._info()
        info["action_clipped"] = bool(not np.allclose(safe, action))
        reward = -info["distance"]  # dense: minus the task's distance to its goal
        return self._observation(), reward, False, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._renderer.render(self.data, EXTERIOR_CAMERA)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---------------------------------------------------------------- helpers
    def goal_image(self) -> np.ndarray:
        """The exterior-camera image of this episode's solved scene, uint8 [H, W, 3]."""
        if self._goal_image is None:
            raise RuntimeError("goal_image() needs SimConfig(render_images=True) and a reset() first")
        return self._goal_image

    def safe_action(self, action: np.ndarray) -> np.ndarray:
        """The action with its position delta clipped to ``max_position_step`` (norm), its rotation delta to
        ``max_rotation_step`` (angle) and its gripper delta to [-1, 1]."""
        safe = np.array(action, dtype=np.float64)
        norm = np.linalg.norm(safe[:3])
        if norm > self.config.max_position_step:
            safe[:3] *= self.config.max_position_step / norm
        rotation = Rotation.from_euler("xyz", safe[3:6])  # extrinsic xyz, as jepa_mpc_foundation/pose.py
        angle = rotation.magnitude()  # rad, in [0, pi]
        if angle > self.config.max_rotation_step:  # same axis, shorter angle
            safe[3:6] = Rotation.from_rotvec(rotation.as_rotvec() * (self.config.max_rotation_step / angle)).as_euler(
                "xyz"
            )
        safe[6] = np.clip(safe[6], -1.0, 1.0)
        return safe

    def _apply_to_measured_state(self, action: np.ndarray) -> np.ndarray:
        """The 7-D state ``action`` [7] leads to from the measured one: jepa_mpc_foundation.pose.apply_action
        (position added, ``R_next = R_delta @ R``, gripper added and clipped to [0, 1]), in numpy via scipy."""
        rotation = Rotation.from_euler("xyz", action[3:6]) * Rotation.from_matrix(self.robot.tcp_rotation())
        gripper = np.clip(self.robot.gripper_closedness() + action[6], 0.0, 1.0)
        return np.concatenate([self.robot.tcp_position() + action[:3], rotation.as_euler("xyz"), [gripper]])

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"state": self.robot.state().astype(np.float32)}
        if self.config.render_images:
            for key, camera in CAMERAS.items():
                obs[key] = self._renderer.render(self.data, camera)
        return obs

    def _info(self) -> dict:
        """``is_success``, the task's terms, and ``joint_position`` [7] float32 (the arm's joint angles, rad,
        which datasets record as DROID does: sim/collect.py)."""
        terms = self._task_terms()
        success = self._is_success(terms)
        return {"is_success": bool(success), **terms, "joint_position": self.robot.joint_positions().astype(np.float32)}

    def _render_configuration(self, goal: GoalConfiguration) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """Pose the scene as ``goal``, read the 7-D state and render both cameras (``CAMERAS``), then restore."""
        saved = (self.data.qpos.copy(), self.data.qvel.copy(), self.data.ctrl.copy(), self.data.act.copy())
        for name, position in goal.objects.items():
            ids = self.scene.objects[name]
            self.data.qpos[ids.qpos : ids.qpos + 3] = position
        q = self.robot.solve_ik(goal.tcp, start=self.data.qpos[self.robot.arm_qpos].copy())
        self.robot.set_joint_positions(q, goal.tcp.gripper)
        mujoco.mj_forward(self.model, self.data)
        state = self.robot.state()
        images = None
        if self.config.render_images:
            images = {key: self._renderer.render(self.data, camera) for key, camera in CAMERAS.items()}
        self.data.qpos[:], self.data.qvel[:], self.data.ctrl[:], self.data.act[:] = saved
        mujoco.mj_forward(self.model, self.data)
        return state, images

    def cube_position(self) -> np.ndarray:
        """Where the task's cube (``target_cube``) is now, [3] m."""
        return self.scene.object_position(self.target_cube)

    def cube_rotation(self) -> np.ndarray:
        """The rotation matrix [3, 3] of the task's cube (``target_cube``)."""
        return self.scene.object_rotation(self.target_cube)
