"""The simulated Franka Panda: model ids, the home pose, the 7-D state and the Cartesian controller.

The controller is differential inverse kinematics by damped least squares, run at the physics rate
inside each control step (every ``ik_every`` physics steps): with the tool-centre-point (TCP) error
``e = [p* - p, log(R* R^T)]`` [6] and the site Jacobian ``J`` [6, 7],

    dq = J^T (J J^T + lambda^2 I)^-1 e  +  (I - J^+ J) k_null (q_home - q)

and the joint servos of panda.xml get the set-point ``q + s * dq`` clipped to the joint limits
(``s`` = ``stiffness_scale``). Orientation is held like position, so the gripper keeps pointing
down unless an action rotates it.

Rotations: the controller runs hundreds of times per action, so its orientation work uses MuJoCo's
own quaternion functions (``mju_mat2Quat``, ``mju_subQuat``, ``mju_quatIntegrate``; quaternions in
MuJoCo's ``[w, x, y, z]`` order), a few microseconds per call. Conversions done once per action (the
7-D state's Euler angles, a target from a 7-D state) use ``scipy.spatial.transform.Rotation`` with
``"xyz"`` = extrinsic xyz, the convention of jepa_mpc_foundation/pose.py (DROID, V-JEPA 2-AC).

The gripper command is a closedness ``g`` in [0, 1]; each finger's set-point is the opening that
``g`` asks for, minus ``gripper_squeeze`` while a finger pinches an object (a contact whose normal
lies along the fingers' travel): a hand told to stay at the closedness it measures on a cube keeps
squeezing it, so the recorded delta-closedness of a held cube is ~0, as in real data, and the cube
does not drop. In free air ``g`` is reached as asked. A contact across the travel (fingertips pushing
a cube, pads on the table) does not squeeze: since each action's gripper delta starts from the
measured closedness, squeezing there would close pushing fingers a little more at every step until
the cube slid off one edge (docs/benchmarks.md, "Planner fixes", "Push").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from sim import rendering  # noqa: F401  (imports mujoco, surviving a missing GL library)
from sim.config import ControllerConfig

import mujoco  # isort: skip  (after sim.rendering, which imports it surviving a missing GL library)

ASSETS = Path(__file__).resolve().parent / "assets"
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")
ARM_ACTUATORS = tuple(f"actuator{i}" for i in range(1, 8))
FINGER_ACTUATORS = ("finger_actuator1", "finger_actuator2")
FINGER_TRAVEL = 0.04  # m per finger; the hand opens to 0.08 m
PINCH_COSINE = np.cos(np.pi / 4)  # a finger contact whose normal is this close to the travel is a pinch
FINGER_CHECK_EVERY = 10  # physics steps between checks whether the fingers touch an object


@dataclass
class PoseTarget:
    """What the controller tracks: TCP position [3] (m), rotation matrix [3, 3], gripper closedness."""

    position: np.ndarray
    rotation: np.ndarray
    gripper: float


class Franka:
    """Ids of the arm in a compiled scene, its 7-D state and the controller that moves it."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, config: ControllerConfig):
        self.model, self.data, self.config = model, data, config
        self.arm_qpos = np.array([model.joint(n).qposadr[0] for n in ARM_JOINTS])
        self.arm_dof = np.array([model.joint(n).dofadr[0] for n in ARM_JOINTS])
        self.finger_qpos = np.array([model.joint(n).qposadr[0] for n in FINGER_JOINTS])
        self.finger_dof = np.array([model.joint(n).dofadr[0] for n in FINGER_JOINTS])
        self.arm_actuators = np.array([model.actuator(n).id for n in ARM_ACTUATORS])
        self.finger_actuators = np.array([model.actuator(n).id for n in FINGER_ACTUATORS])
        self.tcp_site = model.site("tcp").id
        self.joint_low = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS], 0].copy()
        self.joint_high = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS], 1].copy()
        home = model.key("home").id
        self.home_arm_qpos = model.key_qpos[home, self.arm_qpos].copy()
        self.home_finger_qpos = model.key_qpos[home, self.finger_qpos].copy()
        self.finger_bodies = (model.body("left_finger").id, model.body("right_finger").id)
        self._is_robot = model.body_rootid == model.body("link0").id  # [nbody] bool
        self._is_finger = np.zeros(model.nbody, dtype=bool)
        self._is_finger[list(self.finger_bodies)] = True
        self._damping = config.damping**2 * np.eye(6)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        # Scratch buffers of the controller loop (MuJoCo writes its results into them).
        self._error = np.zeros(6)  # [position error (m), rotation error (rad, world frame)]
        self._quat = np.zeros(4)  # current TCP orientation [w, x, y, z]
        self._local_error = np.zeros(3)  # rotation error in the TCP frame

    # ---------------------------------------------------------------- state
    def tcp_position(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp_site].copy()

    def tcp_rotation(self) -> np.ndarray:
        return self.data.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def joint_positions(self) -> np.ndarray:
        """The 7 arm joint angles [7] (rad, joint1..joint7), as DROID records ``joint_position``."""
        return self.data.qpos[self.arm_qpos].copy()

    def gripper_closedness(self) -> float:
        """1 - opening / 0.08 m: 0 fully open, 1 fully closed (a 5 cm cube held reads ~0.4)."""
        opening = float(self.data.qpos[self.finger_qpos].sum())
        return float(np.clip(1.0 - opening / (2 * FINGER_TRAVEL), 0.0, 1.0))

    def state(self) -> np.ndarray:
        """The 7-D state [x, y, z, rx, ry, rz, g] of the current ``data`` (kinematics must be up to date)."""
        euler = Rotation.from_matrix(self.tcp_rotation()).as_euler("xyz")  # extrinsic xyz, rad
        return np.concatenate([self.tcp_position(), euler, [self.gripper_closedness()]])

    # ---------------------------------------------------------------- poses
    def set_joint_positions(self, arm_qpos: np.ndarray, gripper: float) -> None:
        """Place the arm kinematically (no dynamics) with servos holding that pose; call mj_forward after."""
        fingers = np.full(2, FINGER_TRAVEL * (1.0 - gripper))
        self.data.qpos[self.arm_qpos] = arm_qpos
        self.data.qpos[self.finger_qpos] = fingers
        self.data.qvel[self.arm_dof] = 0.0
        self.data.qvel[self.finger_dof] = 0.0
        self.data.ctrl[self.arm_actuators] = arm_qpos
        self.data.ctrl[self.finger_actuators] = fingers

    def solve_ik(self, target: PoseTarget, start: np.ndarray | None = None, iterations: int = 200) -> np.ndarray:
        """Joint positions [7] reaching ``target`` (kinematics only, on a scratch copy of ``data``)."""
        scratch = mujoco.MjData(self.model)
        scratch.qpos[:] = self.data.qpos
        q = (self.home_arm_qpos if start is None else start).copy()
        target_quat = matrix_to_quat(target.rotation)
        for _ in range(iterations):
            scratch.qpos[self.arm_qpos] = q
            mujoco.mj_kinematics(self.model, scratch)
            mujoco.mj_comPos(self.model, scratch)
            dq = self._ik_step(scratch, target.position, target_quat, q)
            q = np.clip(q + dq, self.joint_low, self.joint_high)
            if np.abs(dq).max() < 1e-6:
                break
        return q

    # ---------------------------------------------------------------- control
    def _ik_step(self, data: mujoco.MjData, position: np.ndarray, quat: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Joint step [7] towards the TCP pose ``position`` [3] (m), ``quat`` [4] (w, x, y, z) from joints ``q``."""
        error, rotation = self._error, data.site_xmat[self.tcp_site]  # rotation: [9], row-major
        error[:3] = position - data.site_xpos[self.tcp_site]
        # log(R* R^T): mju_subQuat gives the rotation from the current to the target orientation in the
        # TCP frame (current * exp(local) = target, angle in [0, pi]); R maps it to the world frame.
        mujoco.mju_mat2Quat(self._quat, rotation)
        mujoco.mju_subQuat(self._local_error, quat, self._quat)
        mujoco.mju_mulMatVec3(error[3:], rotation, self._local_error)
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self.tcp_site)
        jac = np.vstack([self._jacp[:, self.arm_dof], self._jacr[:, self.arm_dof]])  # [6, 7]
        jac_pinv = np.linalg.solve(jac @ jac.T + self._damping, jac).T  # [7, 6] = J^T (J J^T + lambda^2 I)^-1
        posture = self.config.nullspace_gain * (self.home_arm_qpos - q)  # [7]
        return jac_pinv @ error + posture - jac_pinv @ (jac @ posture)  # (I - J^+ J) posture, without forming I

    def fingers_pinch_object(self) -> bool:
        """True if a finger touches something outside the robot with a contact normal within 45 degrees
        of the fingers' travel: an object between the fingers, not one pushed by the fingertips or the table."""
        contacts = self.data.contact
        body1 = self.model.geom_bodyid[contacts.geom1]
        body2 = self.model.geom_bodyid[contacts.geom2]
        finger_to_other = self._is_finger[body1] & ~self._is_robot[body2]
        other_to_finger = self._is_finger[body2] & ~self._is_robot[body1]
        travel = self.data.xmat[self.finger_bodies[0]].reshape(3, 3)[
            :, 1
        ]  # the slide joints' axis (panda.xml), world frame
        along_travel = np.abs(contacts.frame[:, :3] @ travel) > PINCH_COSINE  # [ncon]; frame[:3] = contact normal
        return bool(np.any((finger_to_other | other_to_finger) & along_travel))

    def finger_setpoint(self, gripper: float, pinching: bool) -> float:
        """Per-finger servo set-point (m) for closedness ``gripper`` (see the module docstring)."""
        opening = FINGER_TRAVEL * (1.0 - gripper)
        squeeze = self.config.gripper_squeeze if pinching and gripper > 0.05 else 0.0
        return float(np.clip(opening - squeeze, 0.0, FINGER_TRAVEL))

    def track(self, target: PoseTarget, n_steps: int) -> None:
        """Run ``n_steps`` physics steps with the controller tracking ``target``.

        The set-point moves from the current TCP pose to ``target`` along a straight line (and the
        shortest rotation) during the first ``interpolation_fraction`` of the steps and then holds, as
        a real arm's trajectory generator does: the hand moves smoothly instead of jumping at each
        action, so pushed objects are not flung."""
        pinching = self.fingers_pinch_object()
        start_position = self.data.site_xpos[self.tcp_site].copy()
        start_quat = matrix_to_quat(self.data.site_xmat[self.tcp_site])
        # The shortest rotation from start to target, as a rotation vector in the start frame: the
        # waypoint at fraction alpha is start * exp(alpha * change) (the same geodesic as
        # exp(alpha * world change) * start).
        rotation_change = np.zeros(3)
        mujoco.mju_subQuat(rotation_change, matrix_to_quat(target.rotation), start_quat)
        ramp_steps = max(1, int(round(self.config.interpolation_fraction * n_steps)))
        waypoint_position, waypoint_quat = np.zeros(3), np.zeros(4)
        for step in range(n_steps):
            if step % FINGER_CHECK_EVERY == 0:
                pinching = pinching or self.fingers_pinch_object()
                self.data.ctrl[self.finger_actuators] = self.finger_setpoint(target.gripper, pinching)
            if step % self.config.ik_every == 0:
                alpha = min(1.0, (step + self.config.ik_every) / ramp_steps)
                waypoint_position[:] = start_position + alpha * (target.position - start_position)
                waypoint_quat[:] = start_quat
                mujoco.mju_quatIntegrate(waypoint_quat, rotation_change, alpha)
                q = self.data.qpos[self.arm_qpos]
                dq = self._ik_step(self.data, waypoint_position, waypoint_quat, q)
                self.data.ctrl[self.arm_actuators] = np.clip(
                    q + self.config.stiffness_scale * dq, self.joint_low, self.joint_high
                )
            mujoco.mj_step(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)  # kinematics of the final state (site poses for state())


def matrix_to_quat(rotation: np.ndarray) -> np.ndarray:
    """Rotation matrix ``[3, 3]`` (or its 9 entries, row-major) -> unit quaternion ``[4]`` in MuJoCo's (w, x, y, z)."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rotation, dtype=np.float64).reshape(9))
    return quat


def target_from_state(state7: np.ndarray) -> PoseTarget:
    """A controller target from a 7-D state [x, y, z, rx, ry, rz, g] (m, extrinsic xyz Euler in rad, closedness)."""
    state7 = np.asarray(state7, dtype=np.float64)
    rotation = Rotation.from_euler("xyz", state7[3:6]).as_matrix()
    return PoseTarget(state7[:3].copy(), rotation, float(np.clip(state7[6], 0.0, 1.0)))
