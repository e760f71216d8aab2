"""``jepa-mpc eval``: success rate of goal-image planning in the MuJoCo tasks, with baselines.

Each episode is seeded (``seed``, ``seed + 1``, ...), so every policy meets the same scenes:

- ``world_model``: MPC in the world model's embedding space toward the episode's goal image (CEM, or
  the model's goal-conditioned policy: ``--planner.proposal``);
- ``random``: uniform random actions within the planner's limits (the floor);
- ``oracle``: the same CEM planner with a perfect model of the end-effector state, planning toward the
  goal image's true 7-D state (the ceiling: what a perfect world model would reach with this planner).

Multi-stage tasks (push, grasp, pickplace) are planned through the task's sub-goal images, each
the goal for a number of steps (``planner.subgoals``), as the reference plans pick-and-place;
``--subgoals false`` plans toward the final goal image alone: one photo, nothing else from the task
(one planner for every task, ``ONE_PHOTO_PLANNER``, no holds from poses).

The world-model share of the gap is ``oracle - world_model``. One env step is one predictor step
(``config.step_seconds`` of robot time, 0.5 s for 4 fps / 2-frame tubelets), so the env runs at
``1 / step_seconds`` Hz. Writes ``results.json``, ``results.md`` and a few GIFs to ``--out``.
"""

from jepa_mpc.evaluation.config import EvalConfig
from jepa_mpc.evaluation.report import markdown_table, summarize, wilson_interval
from jepa_mpc.evaluation.runner import EpisodeResult, evaluate, run_episode

__all__ = ["EpisodeResult", "EvalConfig", "evaluate", "markdown_table", "run_episode", "summarize", "wilson_interval"]
