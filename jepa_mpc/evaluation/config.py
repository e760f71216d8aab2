"""The evaluation's configuration: which task, episodes, policies and planner (``jepa-mpc eval``).

Its defaults depend on the model, the task and the mode (:meth:`EvalConfig.for_task`). The model states
what it needs to see (:func:`worldmodel.model_needs.model_needs`): the camera's image size and the control
rate (one action per predictor step), and the planner budget it was evaluated with (else
``planner.presets.CPU_PRESET``). With sub-goals the task's planner settings (``TASK_PLANNER``) go over
that budget; from one goal photo (``--subgoals false``) every task gets the same planner
(:func:`task_planner_values`), since a user's photo says nothing else. All lie under the ``--config``
YAML file and the flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jepa_mpc.model_settings import needs_of, planner_preset, sim_for_planning
from jepa_mpc_foundation.configuration import from_dict
from jepa_mpc_foundation.episode_backends import EpisodeBackend, RayConfig
from planner.config import PlannerConfig
from planner.presets import CPU_PRESET
from planner.subgoals import GoalSequence
from sim import env_id, episode_steps, is_language_task
from sim.config import SimConfig
from sim.tasks.instructions import SPLITS as INSTRUCTION_SPLITS
from worldmodel.preprocess import model_view

POLICIES = ("world_model", "random", "oracle")
GOALS = ("image", "text")
# Planner settings of the multi-stage tasks, under the flags and the YAML file. With sub-goals a
# few centimetres apart, the terminal energy alone lets the first of two planned steps wander (the
# second step comes back). A grasp turns the hand to the cube about the vertical only: searching
# roll and pitch too lets the world model's plans tilt the hand, which it resolves badly at 64 px,
# while the true-state oracle grasps either way (docs/benchmarks.md, "Planner fixes").
YAW_ONLY = {"plan_rotation": True, "fixed_dims": (3, 4), "fixed_values": (0.0, 0.0)}  # roll, pitch deltas held at 0
# The language tasks lang-push, lang-lift, lang-place have their skill's sub-goals (sim/tasks/lang_tasks.py).
TASK_PLANNER = {
    task: {"energy": "terminal+intermediate", **YAW_ONLY}
    for task in ("push", "grasp", "pickplace", "lang-push", "lang-lift", "lang-place")
}


# From one goal photo (--subgoals false): one planner for every task, and nothing from the task but the
# photo: the world model's goal-conditioned policy proposes the plan (jepa-mpc train-policy), the hand
# turns about the vertical only (every task's demonstrations do), and no hold is taken from poses.
ONE_PHOTO_PLANNER = {"proposal": "policy+finish", **YAW_ONLY}
# The finishing searches' budget, at least: twice CPU_PRESET's samples and top-k, 10 iterations. Near the
# goal a larger search finds the last centimetres the smaller one misses, at a few times its cost per
# finishing step (docs/benchmarks.md, "One goal photo", row 11). A model whose preset is larger (a GPU's)
# keeps its own.
ONE_PHOTO_FINISH_BUDGET = {"samples": 256, "iterations": 10, "topk": 24}


def task_planner_values(task: str, subgoals: bool = True, preset: dict | None = None) -> dict:
    """The PlannerConfig fields the evaluation uses for ``task``: the model's planner ``preset`` (default
    ``CPU_PRESET``) with ``TASK_PLANNER`` over it, or, for every task without sub-goals, with
    ``ONE_PHOTO_PLANNER`` over it and its budget raised to at least ``ONE_PHOTO_FINISH_BUDGET``."""
    budget = dict(CPU_PRESET if preset is None else preset)
    if subgoals:
        return {**budget, **TASK_PLANNER.get(task, {})}
    floor = {name: max(int(budget.get(name, 0)), least) for name, least in ONE_PHOTO_FINISH_BUDGET.items()}
    return {**budget, **floor, **ONE_PHOTO_PLANNER}


@dataclass
class EvalConfig:
    task: str = field(
        default="reach", metadata={"help": "reach, push, grasp, pickplace or a language task (lang-touch, ...)"}
    )
    episodes: int = field(default=50, metadata={"help": "seeded episodes per policy"})
    seed: int = field(default=1000, metadata={"help": "seed of the first episode (held out from training data)"})
    checkpoint: str = field(default="", metadata={"help": "world model checkpoint; empty = the shipped default model"})
    device: str = field(default="", metadata={"help": "cpu or cuda; empty = cuda when present"})
    policies: tuple[str, ...] = field(default=POLICIES, metadata={"help": "which policies to run"})
    max_steps: int = field(
        default=0, metadata={"help": "planner steps per episode; 0 = the task's default or the sub-goal schedule's"}
    )
    subgoals: bool = field(
        default=True,
        metadata={
            "help": "true: plan through the task's sub-goal images and poses (if it has any); false: from the final "
            "goal image alone, one planner for every task (ONE_PHOTO_PLANNER: the model's goal policy)"
        },
    )
    # Both holds on by default: without them the search drops a carried cube or pushes it out from between
    # closing fingers, and no task or world-model row measured lower with them (docs/benchmarks.md,
    # "The planner's ceiling").
    hold_gripper: bool = field(
        default=True,
        metadata={
            "help": "with sub-goals: hold the gripper still while a sub-goal keeps the previous one's gripper state"
        },
    )
    hold_pose: bool = field(
        default=True,
        metadata={
            "help": "with sub-goals: hold the hand still while a sub-goal only changes the gripper (closing, releasing)"
        },
    )
    goal: str = field(
        default="image",
        metadata={
            "help": "image: plan toward the episode's goal image; text: toward the goal its instruction describes "
            "(a language task's own, or --goal_text), predicted from the first frame by the model's language-goal "
            "predictor (jepa-mpc train-language-goal); a text goal is a final goal (--subgoals false)"
        },
    )
    goal_text: str = field(
        default="", metadata={"help": "one instruction for every episode, e.g. 'touch the red cube' (sets --goal text)"}
    )
    instructions: str = field(
        default="train",
        metadata={"help": "language tasks: the instructions the episodes draw from: train, heldout or all"},
    )
    threads: int = field(
        default=0,
        metadata={
            "help": "torch CPU threads per process; 0 = torch's default with one worker, 1 with several or on Ray"
        },
    )
    workers: int = field(
        default=1,
        metadata={
            "help": "processes running episodes in parallel (the same per-episode results as one process "
            "with the same --threads); on 2 cores, 2 workers x 1 thread run 1.15x as fast as 1 x 2 threads"
        },
    )
    backend: str = field(
        default="local",
        metadata={
            "help": "where the episodes run: local (--workers processes on this machine) or ray (a Ray cluster, "
            "--ray.address, or a Ray instance on this machine; one CPU per episode, the same per-episode results)"
        },
    )
    videos: int = field(default=3, metadata={"help": "episodes per policy saved as GIF"})
    record: bool = field(
        default=False,
        metadata={
            "help": "write every episode as an MCAP run recording beside the GIFs (<task>_<policy>_seed<seed>.mcap: "
            "cameras, state, goal images, commands, plans, diagnostics in sim time; Foxglove and jepa-mpc "
            "import-bag read it; needs the ros extra)"
        },
    )
    out: str = field(default="eval_out", metadata={"help": "folder for results.json, results.md and GIFs"})
    planner: PlannerConfig = field(
        default_factory=lambda: PlannerConfig(**task_planner_values("reach", preset=planner_preset(needs_of())))
    )
    # The simulator, as `jepa-mpc collect --sim.*` sets it (camera, randomisation ranges, controller).
    # Its image size and control rate default to the model's (for_task; here the shipped model's): a flag
    # that contradicts them is refused (jepa_mpc.evaluation.runner.make_env_for_model). The key light
    # casts shadows as in the training data: the model places the hand against the cube by them, and
    # without them it can hardly push (docs/benchmarks.md, "The key light's shadows").
    sim: SimConfig = field(default_factory=lambda: sim_for_planning(needs_of()))
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        env_id(self.task)  # ValueError naming the valid tasks
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        self.episode_backend()  # ValueError for bad --workers, --backend or --ray.* flags
        unknown = set(self.policies) - set(POLICIES)
        if unknown:
            raise ValueError(f"unknown policies {sorted(unknown)}; choose from {POLICIES}")
        if self.goal_text:
            self.goal = "text"
        if self.goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {self.goal!r}")
        language = is_language_task(self.task)
        if self.instructions not in INSTRUCTION_SPLITS:
            raise ValueError(f"instructions must be one of {INSTRUCTION_SPLITS}, got {self.instructions!r}")
        if self.instructions != "train" and not language:
            raise ValueError(
                f"--instructions {self.instructions}: task {self.task} has no instructions (a lang-* task has)"
            )
        if self.goal == "text":
            if self.subgoals:
                raise ValueError("a text goal is a final goal, without sub-goals: drop --subgoals true")
            if not (language or self.goal_text):
                raise ValueError(
                    f"--goal text: task {self.task} has no instructions: pass --goal_text or a lang-* task"
                )
            if "oracle" in self.policies:
                raise ValueError("the oracle plans toward goal images only: drop it from --policies with a text goal")

    def episode_backend(self) -> EpisodeBackend:
        return EpisodeBackend(self.backend, self.workers, self.ray)

    @classmethod
    def for_task(cls, task: str, subgoals: bool = True, **fields) -> EvalConfig:
        """The evaluation config of ``task`` with ``fields``; the planner settings (:func:`task_planner_values`)
        and the simulator's image size and control rate (:func:`jepa_mpc.model_settings.sim_for_planning`) are
        those of the model ``fields["checkpoint"]`` (empty or absent: the shipped one) unless ``fields`` gives them.

        Raises:
            FileNotFoundError, CheckpointError: the checkpoint does not exist or is not a world model.
        """
        needs = needs_of(fields.get("checkpoint", ""))
        fields.setdefault("planner", PlannerConfig(**task_planner_values(task, subgoals, planner_preset(needs))))
        fields.setdefault("sim", sim_for_planning(needs))
        return cls(task=task, subgoals=subgoals, **fields)

    def steps_per_episode(self, goals: GoalSequence) -> int:
        """The step limit of an episode with ``goals``: the given one, else long enough for the whole schedule.

        The default is the task's episode length in the sim's control steps (4 Hz), taken as planner
        steps (2 Hz): the planner gets as many decisions as the scripted expert, in twice the time.
        """
        return self.max_steps or max(episode_steps(self.task), goals.total_steps)

    def episode_goals(self, info: dict, start_state: np.ndarray, views: int = 1) -> GoalSequence:
        """The goal images of an episode from the env's reset ``info``: sub-goals (if used) and the goal.

        ``views`` 2: each goal image is the exterior and wrist views side by side (``model_view``).
        """
        goal_image, goal_state = model_view(info["goal_image"], info["goal_wrist_image"], views), info["goal_state"]
        if not self.subgoals or len(info["subgoal_states"]) == 0:
            return GoalSequence.single(goal_image, goal_state, start_state, self.planner)
        subgoal_images = model_view(info["subgoal_images"], info["subgoal_wrist_images"], views)
        images = np.concatenate([subgoal_images, goal_image[None]])
        states = np.concatenate([info["subgoal_states"], goal_state[None]])
        return GoalSequence.from_poses(images, states, start_state, self.planner)


def task_defaults(overrides: dict[str, Any]) -> EvalConfig:
    """The defaults layer of an evaluation whose YAML file and flags are ``overrides``: the model's, the task's
    and the mode's.

    Raises:
        ConfigError: ``subgoals`` is not a bool (naming it).
        FileNotFoundError, CheckpointError: the checkpoint does not exist or is not a world model.
    """
    # A text goal is a final goal: its mode's default is the one-photo planner.
    text_goal = bool(overrides.get("goal_text")) or overrides.get("goal") == "text"
    subgoals = from_dict(SubgoalsChoice, {"subgoals": overrides.get("subgoals", not text_goal)}, "subgoals").subgoals
    checkpoint = str(overrides.get("checkpoint", "") or "")
    return EvalConfig.for_task(str(overrides.get("task", EvalConfig.task)), subgoals=subgoals, checkpoint=checkpoint)


@dataclass
class SubgoalsChoice:
    """The one field the evaluation's defaults depend on beside the task, decoded as every flag is."""

    subgoals: bool = True
