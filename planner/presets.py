"""Named planner budgets: :class:`planner.config.PlannerConfig` fields that go together.

``PlannerConfig``'s own defaults are the V-JEPA 2-AC reference planner's (400 samples x 10 iterations),
which suit a GPU. ``CPU_PRESET`` is the budget the shipped default model is evaluated, demonstrated and
benchmarked with, cheap enough for 50 episodes on 2 CPU cores (docs/planner.md). A checkpoint may record
the preset it was evaluated with (``worldmodel.model_needs``); one that records none is planned with this.
"""

from __future__ import annotations

CPU_PRESET: dict[str, int] = {"samples": 128, "iterations": 6, "topk": 12}
