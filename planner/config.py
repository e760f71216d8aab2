"""The planner's configuration: one typed dataclass, the single source of its defaults.

Defaults follow the V-JEPA 2-AC reference planner (facebookresearch/vjepa2,
``notebooks/utils/world_model_wrapper.py`` and ``mpc_utils.cem``; the momenta are the values the
reference notebook passes: 0.15 for the mean, 0.75 for the std, 0.15 for both gripper momenta),
except where a field says otherwise. Momentum is the weight of the *old* value:
``new = (1 - momentum) * elite_statistic + momentum * old``.

The action is 7-D ``[dx, dy, dz, drx, dry, drz, dg]`` (see ``jepa_mpc_foundation/pose.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jepa_mpc_foundation.pose import ACTION_DIM, GRIPPER_DIM, ROTATION_DIMS, TRANSLATION_DIMS

ENERGY_MODES = ("terminal", "terminal+intermediate")
OPTIMIZERS = ("cem", "icem", "mppi", "grad", "cem+grad")
"""Names of the optimisers :data:`planner.optimizers.OPTIMIZER_FUNCTIONS` maps to functions."""
ACTION_LIMITS = ("ball", "box")
PROPOSALS = ("none", "policy", "policy+finish", "policy+search")
GRAD_INITS = ("warm_start", "cem")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class PlannerConfig:
    """An optimiser (CEM by default) over action sequences ``[H, 7]`` scored by the goal energy of the
    predicted frames; ``samples``, ``iterations``, ``topk``, the momenta and the initial stds are
    shared by the sampling optimisers (CEM, iCEM, MPPI); the ``icem_*``, ``mppi_*`` and ``grad_*``
    fields belong to one optimiser each."""

    optimizer: str = field(
        default="cem",
        metadata=_help(
            "cem, icem (Pinneri et al. 2020), mppi (Williams et al. 2017), grad (Adam on the "
            "actions through the model), cem+grad (CEM, then Adam from its plan)"
        ),
    )
    proposal: str = field(
        default="none",
        metadata=_help(
            "none: the optimiser searches from the warm start (the reference); policy: the world model's "
            "goal-conditioned policy gives the plan, no search (jepa-mpc train-policy); policy+finish: the "
            "policy's plan, and where it proposes to stay (finish_below) the optimiser finishes from it; "
            "policy+search: the optimiser starts from the policy's plan at every step"
        ),
    )
    finish_below: float = field(
        default=0.01,
        metadata=_help(
            "policy+finish: a proposal whose first step moves the hand less than this (m) and keeps the "
            "gripper counts as 'arrived', and the optimiser searches the last centimetres by the energy"
        ),
    )
    samples: int = field(default=400, metadata=_help("action sequences sampled per CEM iteration (N)"))
    horizon: int = field(default=2, metadata=_help("planned steps per sequence (H)"))
    iterations: int = field(default=10, metadata=_help("CEM iterations per planning step (I)"))
    topk: int = field(default=10, metadata=_help("elites that update the sampling distribution"))
    momentum_mean: float = field(default=0.15, metadata=_help("weight of the old mean in the mean update"))
    momentum_std: float = field(default=0.75, metadata=_help("weight of the old std in the std update"))
    momentum_gripper: float = field(
        default=0.15, metadata=_help("weight of the old mean and std of the gripper dimension")
    )
    max_translation: float = field(default=0.05, metadata=_help("max L2 norm of dxyz per step (m)"))
    max_rotation: float = field(
        default=0.3, metadata=_help("max L2 norm of the Euler rotation delta per step (rad), if planned")
    )
    max_gripper: float = field(default=0.75, metadata=_help("gripper delta clipped to [-max, max]"))
    action_limit: str = field(
        default="ball",
        metadata=_help(
            "ball: L2 norm of dxyz <= max_translation (and of the rotation <= max_rotation); "
            "box: each axis clipped to +-max (the reference's clip; diagonal steps sqrt(3) longer)"
        ),
    )
    plan_rotation: bool = field(
        default=False, metadata=_help("plan drx, dry, drz; false holds them at zero (the reference)")
    )
    fixed_dims: tuple[int, ...] = field(default=(), metadata=_help("action dimensions held fixed (0..6)"))
    fixed_values: tuple[float, ...] = field(default=(), metadata=_help("values of fixed_dims, same order"))
    init_std_translation: float = field(default=0.05, metadata=_help("initial std of dx, dy, dz (m)"))
    init_std_rotation: float = field(default=0.1, metadata=_help("initial std of drx, dry, drz (rad)"))
    init_std_gripper: float = field(default=1.0, metadata=_help("initial std of dg"))
    min_std: float = field(default=1e-3, metadata=_help("std floor, so the search never collapses to a point"))
    gripper_deadband: float = field(
        default=0.25, metadata=_help("an executed gripper delta smaller than this becomes 0 (the reference)")
    )
    warm_start: bool = field(default=True, metadata=_help("start from the previous plan shifted by one step"))
    keep_elites: bool = field(default=True, metadata=_help("carry the elites into the next iteration's pool"))
    energy: str = field(
        default="terminal",
        metadata=_help("terminal: last predicted frame vs goal; terminal+intermediate: mean over all steps"),
    )
    seed: int | None = field(default=0, metadata=_help("seed of the planner's generator; none = global RNG"))
    # iCEM (Pinneri et al. 2020, arXiv 2008.06389, Algorithm 1).
    icem_beta: float = field(
        default=2.0,
        metadata=_help("iCEM: exponent beta of the coloured noise along the horizon (PSD ~ 1/f^beta; 0 = white)"),
    )
    icem_population_decay: float = field(
        default=1.25, metadata=_help("iCEM: gamma, iteration i draws max(samples * gamma^-i, 2 * topk) sequences")
    )
    icem_keep_fraction: float = field(
        default=0.3,
        metadata=_help("iCEM: xi, fraction of the elites carried into the next iteration and the next step"),
    )
    # MPPI (Williams et al. 2017, "Information theoretic MPC for model-based reinforcement learning").
    mppi_temperature: float = field(
        default=0.5,
        metadata=_help(
            "MPPI: temperature lambda, in units of the iteration's energy std (weights exp(-dE / (lambda std)))"
        ),
    )
    # Gradient-based planning: Adam on the action sequence through the world model.
    grad_steps: int = field(default=10, metadata=_help("grad: Adam steps per planning step"))
    grad_lr: float = field(
        default=0.1, metadata=_help("grad: Adam step size in units of each dimension's init_std_* (0.1 = 5 mm in xyz)")
    )
    grad_starts: int = field(
        default=8, metadata=_help("grad: sequences optimised in parallel (the first from the warm start / CEM's plan)")
    )
    # Surprise-gated replanning (planner.mpc.GoalImageMPC).
    surprise_gating: bool = field(
        default=False,
        metadata=_help(
            "execute the plan's next action without a search while the observed frame matches the "
            "prediction (surprise <= surprise_threshold); off by default: it changes the actions"
        ),
    )
    surprise_threshold: float = field(
        default=0.1,
        metadata=_help(
            "surprise (mean L1 per token between the observed and the predicted frame) up to which "
            "the plan is kept; calibrate per model (docs/planner.md)"
        ),
    )

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"PlannerConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.proposal not in PROPOSALS:
            raise ValueError(f"PlannerConfig.proposal must be one of {PROPOSALS}, got {self.proposal!r}")
        if self.action_limit not in ACTION_LIMITS:
            raise ValueError(f"PlannerConfig.action_limit must be one of {ACTION_LIMITS}, got {self.action_limit!r}")
        for name in ("samples", "horizon", "iterations", "topk", "grad_steps", "grad_starts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PlannerConfig.{name} must be an integer >= 1, got {value!r}")
        if self.topk > self.samples:
            raise ValueError(f"PlannerConfig.topk={self.topk} exceeds samples={self.samples}; choose topk <= samples")
        for name in ("momentum_mean", "momentum_std", "momentum_gripper"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"PlannerConfig.{name} must lie in [0, 1), got {value!r}")
        for name in ("max_translation", "max_rotation", "max_gripper", "min_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"PlannerConfig.{name} must be a finite number > 0, got {value!r}")
        for name in ("init_std_translation", "init_std_rotation", "init_std_gripper"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= self.min_std):
                raise ValueError(f"PlannerConfig.{name} must be finite and >= min_std={self.min_std}, got {value!r}")
        for name in ("icem_beta",):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"PlannerConfig.{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.icem_population_decay) and self.icem_population_decay >= 1.0):
            raise ValueError(
                "PlannerConfig.icem_population_decay must be >= 1 (1 = no shrinking), "
                f"got {self.icem_population_decay!r}"
            )
        if not 0.0 <= self.icem_keep_fraction <= 1.0:
            raise ValueError(f"PlannerConfig.icem_keep_fraction must lie in [0, 1], got {self.icem_keep_fraction!r}")
        for name in ("mppi_temperature", "grad_lr", "surprise_threshold", "finish_below"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"PlannerConfig.{name} must be a finite number > 0, got {value!r}")
        if not 0.0 <= self.gripper_deadband < 1.0:
            raise ValueError(f"PlannerConfig.gripper_deadband must lie in [0, 1), got {self.gripper_deadband!r}")
        if self.energy not in ENERGY_MODES:
            raise ValueError(f"PlannerConfig.energy must be one of {ENERGY_MODES}, got {self.energy!r}")
        # YAML and argparse give lists; keep the frozen dataclass hashable and comparable.
        object.__setattr__(self, "fixed_dims", tuple(int(d) for d in self.fixed_dims))
        object.__setattr__(self, "fixed_values", tuple(float(v) for v in self.fixed_values))
        if len(self.fixed_dims) != len(self.fixed_values):
            raise ValueError(
                f"PlannerConfig.fixed_dims {self.fixed_dims} and fixed_values {self.fixed_values} "
                "must have the same length (one value per fixed dimension)"
            )
        if len(set(self.fixed_dims)) != len(self.fixed_dims):
            raise ValueError(f"PlannerConfig.fixed_dims has repeated dimensions: {self.fixed_dims}")
        for dim, value in zip(self.fixed_dims, self.fixed_values):
            if not 0 <= dim < ACTION_DIM:
                raise ValueError(f"PlannerConfig.fixed_dims: dimension {dim} is outside 0..{ACTION_DIM - 1}")
            if not math.isfinite(value):
                raise ValueError(f"PlannerConfig.fixed_values: dimension {dim} has non-finite value {value!r}")
        fixed = self.fixed
        # A fixed value must itself respect the limits, or no sample could.
        norm = math.hypot if self.action_limit == "ball" else (lambda *v: max(abs(x) for x in v))
        if norm(*(fixed.get(d, 0.0) for d in TRANSLATION_DIMS)) > self.max_translation + 1e-9:
            raise ValueError(
                f"PlannerConfig: fixed translation values {[fixed.get(d, 0.0) for d in TRANSLATION_DIMS]} "
                f"exceed max_translation={self.max_translation}"
            )
        if norm(*(fixed.get(d, 0.0) for d in ROTATION_DIMS)) > self.max_rotation + 1e-9:
            raise ValueError(
                f"PlannerConfig: fixed rotation values {[fixed.get(d, 0.0) for d in ROTATION_DIMS]} "
                f"exceed max_rotation={self.max_rotation}"
            )
        if abs(fixed.get(GRIPPER_DIM, 0.0)) > self.max_gripper:
            raise ValueError(
                f"PlannerConfig: fixed gripper value {fixed[GRIPPER_DIM]} exceeds max_gripper={self.max_gripper}"
            )

    @property
    def fixed(self) -> dict[int, float]:
        """``{dimension: value}`` of the dimensions the caller holds fixed."""
        return dict(zip(self.fixed_dims, self.fixed_values))
