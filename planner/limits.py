"""Action limits: which dimensions are planned, which are held, and how far one step may move.

Every candidate the planner evaluates, and the plan it returns, passes through
:meth:`ActionLimits.apply`, so the limits hold for every sample, not only for the result:

- held dimensions (the caller's ``fixed_dims``, and drx, dry, drz unless ``plan_rotation``) take
  their fixed value (0 for unplanned rotations, as in the reference);
- ``action_limit="ball"`` (the default): the planned part of dxyz is scaled down to an L2 norm of at
  most ``sqrt(max_translation^2 - |fixed part|^2)``, so that the whole step's norm is at most
  ``max_translation`` (same for the rotation delta with ``max_rotation``);
- ``action_limit="box"``: each of dx, dy, dz is clipped to ``[-max_translation, max_translation]``
  (each rotation component to ``+-max_rotation``), as the reference does
  (facebookresearch/vjepa2 ``notebooks/utils/mpc_utils.py``, ``cem``: ``clip(-maxnorm, maxnorm)``);
  a diagonal step can then be ``sqrt(3)`` times longer than ``max_translation``;
- the gripper delta is clipped to ``[-max_gripper, max_gripper]``.

The ball is the default: it does not favour diagonal moves, and it is the same limit as the ROS
command guard's ``max_step`` (an L2 norm), which would otherwise shorten a box plan's diagonal steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM, ROTATION_DIMS, TRANSLATION_DIMS
from planner.config import PlannerConfig


class ActionLimits:
    """The limits of :class:`PlannerConfig` as tensors on one device."""

    def __init__(self, config: PlannerConfig, device: torch.device | str = "cpu") -> None:
        held = torch.zeros(ACTION_DIM, dtype=torch.bool)
        held_value = torch.zeros(ACTION_DIM)
        if not config.plan_rotation:
            held[list(ROTATION_DIMS)] = True
        for dim, value in config.fixed.items():
            held[dim] = True
            held_value[dim] = value
        self.held = held.to(device)  # [7] True where the planner may not choose the value
        self.held_value = held_value.to(device)  # [7]
        self.planned = ~self.held
        fixed_translation = float(held_value[list(TRANSLATION_DIMS)].norm())
        fixed_rotation = float(held_value[list(ROTATION_DIMS)].norm())
        # The norm budget left to the planned components once the fixed ones are counted.
        self.translation_budget = max(config.max_translation**2 - fixed_translation**2, 0.0) ** 0.5
        self.rotation_budget = max(config.max_rotation**2 - fixed_rotation**2, 0.0) ** 0.5
        self.max_gripper = config.max_gripper
        self.box = config.action_limit == "box"
        self.max_translation, self.max_rotation = config.max_translation, config.max_rotation

    @staticmethod
    def _clip_norm(vectors: Tensor, planned: Tensor, budget: float) -> Tensor:
        """Scale the planned components of ``vectors [..., 3]`` to an L2 norm of at most ``budget``."""
        free = vectors * planned
        norm = free.norm(dim=-1, keepdim=True)
        scale = (budget / norm.clamp_min(1e-12)).clamp(max=1.0)
        return free * scale

    def apply(self, actions: Tensor) -> Tensor:
        """Actions ``[..., 7]`` moved inside the limits (held dimensions set, norms and gripper clipped)."""
        t, r = slice(TRANSLATION_DIMS[0], TRANSLATION_DIMS[-1] + 1), slice(ROTATION_DIMS[0], ROTATION_DIMS[-1] + 1)
        if self.box:  # per axis, held axes take their value below
            translation = actions[..., t].clamp(-self.max_translation, self.max_translation)
            rotation = actions[..., r].clamp(-self.max_rotation, self.max_rotation)
        else:
            translation = self._clip_norm(actions[..., t], self.planned[t], self.translation_budget)
            rotation = self._clip_norm(actions[..., r], self.planned[r], self.rotation_budget)
        gripper = actions[..., GRIPPER_DIM:].clamp(-self.max_gripper, self.max_gripper)
        planned = torch.cat([translation, rotation, gripper], dim=-1)
        return torch.where(self.held, self.held_value.to(actions.dtype), planned)
