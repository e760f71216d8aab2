"""``jepa-mpc eval --record``: each episode as a run recording (an MCAP file, :mod:`ros_nodes.run_recording`).

The file lies beside the episode's GIF (``<task>_<policy>_seed<seed>.mcap``) and holds the planner node's
topics and types, stamped in sim time from 0 at the episode's reset, one control period (``1 / sim.control_hz``)
per step:

- after the reset and after every step: both cameras (``/image``, ``/wrist_image``), the end-effector pose
  (``/ee_pose``) and the finger joints (``/joint_states``, from the gripper closedness);
- at the reset: the goal images in order (``/goal_image``; both views side by side for a two-view model), and
  with ``--goal text`` the instruction planned toward (``/goal_text``);
- at every step, stamped with the observation it was decided from: the command (``/gripper_command``, then
  ``/target_pose``: the action applied to the measured state, the absolute target the node would send) and a
  ``/diagnostics`` status (step, goal image, distance to the goal, and for a planner its numbers); a planner's
  step also gives its plan (``/planner_node/planned_path``), energy, spread, latency and surprise.
"""

from __future__ import annotations

import numpy as np
import torch

from jepa_mpc_foundation.pose import apply_action
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE


def _ros_recording():
    """:mod:`ros_nodes.run_recording` and :class:`ros_nodes.diagnostics.Status`; ValueError (a user error) naming
    the fix when the ROS message packages are not installed."""
    try:
        from ros_nodes import run_recording
        from ros_nodes.diagnostics import Status
    except ImportError as exc:
        raise ValueError(
            f"--record writes ROS 2 messages, which need the ros extra ({exc}): pip install -e '.[ros]'"
        ) from None
    return run_recording, Status


def check_recording_available() -> None:
    """Raise the ValueError of :func:`_ros_recording` now, before any episode runs."""
    _ros_recording()


class EpisodeRecording:
    """One episode's recording (module docstring); ``path`` is replaced if it exists, as the GIF beside it is."""

    def __init__(self, path, step_seconds: float, policy: str) -> None:
        run_recording, self._status = _ros_recording()
        self.time_s = 0.0
        self.step_seconds, self.policy, self.steps = step_seconds, policy, 0
        self.recorder = run_recording.RunRecorder(path, overwrite=True, clock=lambda: self.time_s)
        self._image_topics = {"exterior": run_recording.IMAGE, "wrist": run_recording.WRIST_IMAGE}

    def __enter__(self) -> EpisodeRecording:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self, obs: dict, goal_images: np.ndarray, instruction: str | None = None) -> None:
        """The reset: the goal images and the goal ``instruction`` (None: none), then the first observation, at 0 s."""
        self.recorder.record_goals(list(goal_images), self.time_s, instruction)
        self._observe(obs)

    def decision(self, state: np.ndarray, action: np.ndarray, diagnostics: dict, info: dict, goals: int) -> None:
        """What the policy decided from the observation of now: command, plan, numbers and a status."""
        stamp = self.time_s
        state = np.asarray(state, dtype=np.float64)
        target = apply_action(torch.as_tensor(state), torch.as_tensor(np.asarray(action, dtype=np.float64))).numpy()
        self.recorder.record_command(target, stamp)
        if "plan" in diagnostics:
            self.recorder.record_plan(state, diagnostics["plan"], stamp)
        self.recorder.record_values(
            energy=diagnostics.get("energy"),
            energy_spread=diagnostics.get("energy_spread"),
            planning_latency=diagnostics.get("latency_s"),
            surprise=diagnostics.get("surprise"),
        )
        goal = f"{diagnostics.get('goal_index', goals - 1) + 1}/{goals}"
        values = [("step", str(self.steps)), ("goal_image", goal), ("distance", f"{float(info['distance']):.6g}")]
        for key in ("energy", "energy_spread", "latency_s", "surprise", "replanned", "ood_score"):
            if diagnostics.get(key) is not None:
                value = diagnostics[key]
                values.append((key, str(value).lower() if isinstance(value, bool) else f"{float(value):.6g}"))
        message = f"{self.policy}: step {self.steps + 1} toward goal image {goal}"
        self.recorder.record_status(self._status(0, message, values), f"jepa-mpc eval: {self.policy}", stamp)

    def observation(self, obs: dict) -> None:
        """The observation after a step, one control period after the previous one."""
        self.steps += 1
        self.time_s = self.steps * self.step_seconds
        self._observe(obs)

    def _observe(self, obs: dict) -> None:
        for key, name in ((EXTERIOR_IMAGE, "exterior"), (WRIST_IMAGE, "wrist")):
            if key in obs:
                self.recorder.record_image(self._image_topics[name], obs[key], self.time_s)
        self.recorder.record_state(np.asarray(obs["state"], dtype=np.float64), self.time_s)

    def close(self) -> None:
        self.recorder.close()
