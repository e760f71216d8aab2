"""The evaluated policies: the world-model planner, the true-state oracle (ceiling) and random actions (floor)."""

from __future__ import annotations

import dataclasses

import numpy as np

from jepa_mpc.evaluation.config import EvalConfig
from jepa_mpc_foundation.pose import GRIPPER_DIM, ROTATION_DIMS, TRANSLATION_DIMS
from planner.config import PlannerConfig
from planner.mpc import GoalImageMPC
from planner.subgoals import GoalSequence


class RandomActionBaseline:
    """The evaluation's floor: uniform random actions inside the planner's translation/gripper limits
    (rotation held), i.e. what the planner could do without a world model. (Not the exploration policy
    of data collection: that is sim.experts.RandomWalkExplorer.)"""

    views = 1  # camera views per frame it is given (it looks at none)

    def __init__(self, config: PlannerConfig, seed: int) -> None:
        self.config, self.rng = config, np.random.default_rng(seed)

    def reset(self, goals: GoalSequence) -> None:
        self.goal_image = goals.images[-1]

    def act(self, image: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, dict]:
        direction = self.rng.normal(size=3)
        translation = (
            direction / np.linalg.norm(direction) * self.config.max_translation * self.rng.uniform() ** (1 / 3)
        )
        gripper = self.rng.uniform(-self.config.max_gripper, self.config.max_gripper)
        return np.concatenate([translation, np.zeros(3), [gripper]]).astype(np.float32), {}


class PlannerPolicy:
    """Goal-image MPC with a world model (``world_model``) or with the true state (``oracle``), aiming at
    each image of a :class:`GoalSequence` in turn.

    ``hold_gripper``: while a sub-goal keeps the previous one's gripper state (moving open, carrying),
    the gripper delta is fixed at 0 and CEM searches the hand's motion alone. ``hold_pose``: while a
    sub-goal only changes the gripper (closing on the cube, letting it go), the hand's motion is fixed
    at 0 and CEM searches the gripper alone, so planning noise cannot push the cube out of the fingers.
    """

    def __init__(
        self,
        world_model,
        config: PlannerConfig,
        state_oracle: bool = False,
        hold_gripper: bool = False,
        hold_pose: bool = False,
    ) -> None:
        self.world_model, self.config, self.state_oracle = world_model, config, state_oracle
        # Camera views per frame (exterior, wrist) the model plans from; the oracle reads the state.
        self.views = 1 if state_oracle else world_model.config.predictor.views
        self.hold_gripper, self.hold_pose = hold_gripper, hold_pose
        self._planners: dict[tuple[int, ...], GoalImageMPC] = {}  # held action dims -> its planner
        self.mpc = self._planner(())

    def _planner(self, held: tuple[int, ...]) -> GoalImageMPC:
        """The planner with the action dimensions ``held`` fixed at 0 (besides the config's own), built once."""
        held = tuple(d for d in held if d not in self.config.fixed_dims)
        if held not in self._planners:
            config = dataclasses.replace(
                self.config,
                fixed_dims=(*self.config.fixed_dims, *held),
                fixed_values=(*self.config.fixed_values, *(0.0 for _ in held)),
            )
            self._planners[held] = GoalImageMPC(self.world_model, config)
        return self._planners[held]

    def _view(self, image: np.ndarray, state: np.ndarray) -> np.ndarray:
        # The oracle's "camera" is the analytic model's exact encoding of the true state.
        return self.world_model.render(state) if self.state_oracle else image

    def reset(self, goals: GoalSequence) -> None:
        self.goals, self.steps_taken, self.goal_index = goals, 0, -1
        self._aim(0)

    def _aim(self, index: int) -> None:
        if index != self.goal_index:
            self.goal_index = index
            self.goal_image = self.goals.images[index]
            held: tuple[int, ...] = ()
            if self.hold_gripper and self.goals.keeps_gripper(index):
                held += (GRIPPER_DIM,)
            if self.hold_pose and self.goals.keeps_pose(index):
                held += (*TRANSLATION_DIMS, *ROTATION_DIMS)
            self.mpc = self._planner(held)
            self.mpc.set_goal(self._view(self.goal_image, self.goals.states[index]))

    def set_goal_text(self, instruction: str, image: np.ndarray) -> None:
        """Plan toward the goal ``instruction`` describes, predicted from ``image`` (the frame now) by the world model's
        language-goal predictor, in place of the goal image (a final goal: no sub-goals).

        Raises:
            worldmodel.language_goal.InstructionError: the model refuses the instruction.
        """
        if len(self.goals.images) != 1:
            raise ValueError("a text goal is a final goal: plan it without sub-goals (--subgoals false)")
        self.mpc.set_goal_text(instruction, image)

    def act(self, image: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, dict]:
        self._aim(self.goals.index_at(self.steps_taken))
        step = self.mpc.act(self._view(image, state), state)
        self.steps_taken += 1
        return step.action, {
            "energy": step.energy,
            "energy_spread": step.energy_spread,
            "latency_s": step.latency_s,
            "surprise": step.surprise,
            "replanned": step.replanned,
            "ood_score": step.ood_score,
            "goal_index": self.goal_index,
            "plan": step.plan,
        }

    @property
    def ood_threshold(self) -> float | None:
        """The world model's threshold on ``ood_score`` (None: it holds no token statistics)."""
        return self.mpc.ood_threshold


def make_policy(name: str, config: EvalConfig, world_model, seed: int | None = None):
    """The policy ``name`` of ``config``; the random baseline draws from ``seed`` (default ``config.seed``).

    An evaluation gives the random baseline each episode's own seed, so that an episode's actions do
    not depend on which episodes ran before it in the same process (``jepa-mpc eval --workers``).
    """
    if name == "random":
        return RandomActionBaseline(config.planner, seed=config.seed if seed is None else seed)
    # The holds read the sub-goals' poses: from one goal photo there are none to read.
    holds = dict(hold_gripper=config.hold_gripper and config.subgoals, hold_pose=config.hold_pose and config.subgoals)
    if name == "oracle":
        from planner.analytic import AnalyticWorldModel

        # The ceiling searches with the true state; it has no policy to propose with.
        planner = dataclasses.replace(config.planner, proposal="none")
        return PlannerPolicy(AnalyticWorldModel(), planner, state_oracle=True, **holds)
    return PlannerPolicy(world_model, config.planner, **holds)
