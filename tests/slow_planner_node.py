"""The planner node with plans that take a set time, for tests that need a plan running at a given moment.

:class:`SlowMPC` is the real planner on the tiny test model, each plan made ``delay_s`` longer; its
``planning`` event is set while a plan runs. Run as a script, this module is the planner node's
``main()`` with that planner (``ros_nodes.runtime.run_nodes``: the same signal handling as
``planner_node``), and prints ``plan started`` on stdout when each plan starts::

    python tests/slow_planner_node.py 1.5 --ros-args -p checkpoint:=tiny.pt -p device:=cpu -p autostart:=true

With ``--in-torch`` after the delay, the extra time is spent multiplying matrices inside the world model's
rollouts (``delay_s`` split over the optimiser's iterations), as a large model's plan on a CPU is: a plan
that is inside torch's C++ code, not in a Python sleep, when a signal comes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

import torch

from planner.mpc import GoalImageMPC
from ros_nodes.planner_node import PlannerNode, load_planner


class TorchBusyModel:
    """``model`` whose every rollout first spends ``seconds`` in torch matrix products (many short ones)."""

    def __init__(self, model, seconds: float) -> None:
        self.model, self.seconds = model, seconds

    def __getattr__(self, name):
        return getattr(self.model, name)

    def rollout(self, context_tokens, context_states, actions):
        end = time.perf_counter() + self.seconds
        x = torch.rand(256, 256)  # [256, 256]
        while time.perf_counter() < end:
            x = torch.tanh(x @ x)
        return self.model.rollout(context_tokens, context_states, actions)


class SlowMPC(GoalImageMPC):
    """The real planner, each :meth:`act` ``delay_s`` longer (as the CPU settings are on a slow machine):
    after the plan, or within its rollouts in torch (``in_torch``)."""

    def __init__(self, world_model, config, delay_s: float, announce: bool = False, in_torch: bool = False) -> None:
        if in_torch:
            world_model = TorchBusyModel(world_model, delay_s / config.iterations)
            delay_s = 0.0
        super().__init__(world_model, config)
        self.delay_s = delay_s
        self.announce = announce
        self.planning = threading.Event()  # set while act() runs
        self.plans_started = 0

    def act(self, frames, state):
        start = time.perf_counter()
        self.plans_started += 1
        self.planning.set()
        if self.announce:
            print("plan started", flush=True)
        try:
            step = super().act(frames, state)
            time.sleep(self.delay_s)
        finally:
            self.planning.clear()
        return dataclasses.replace(step, latency_s=time.perf_counter() - start)


def slow_planner(delay_s: float, announce: bool = False, in_torch: bool = False):
    """A ``make_planner`` for :class:`PlannerNode`: the configured model in a :class:`SlowMPC`."""

    def make(config) -> SlowMPC:
        return SlowMPC(load_planner(config).world_model, config.planner, delay_s, announce, in_torch)

    return make


def main(argv: list[str]) -> int:
    from ros_nodes.runtime import run_nodes

    delay_s, in_torch = float(argv[1]), argv[2:3] == ["--in-torch"]
    make_planner = slow_planner(delay_s, announce=True, in_torch=in_torch)
    return run_nodes(lambda: [PlannerNode(make_planner=make_planner)], [argv[0], *argv[2 + in_torch :]])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
