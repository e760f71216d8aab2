"""GoalImageMPC: receding-horizon control, input validation, and the real world model behind it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jepa_mpc_foundation.pose import apply_action
from planner import GoalImageMPC, MPCStep, NonFiniteEnergyError, PlanCancelled, PlannerConfig, PlanningWorldModel
from planner.analytic import AnalyticWorldModel

START = np.array([0.45, -0.05, 0.30, 3.10, 0.10, -0.20, 0.0], dtype=np.float32)


@pytest.fixture(scope="module")
def model() -> AnalyticWorldModel:
    return AnalyticWorldModel()


def _closed_loop(model, mpc, goal, steps):
    state = torch.from_numpy(START)
    mpc.set_goal(model.render(goal))
    history = []
    for _ in range(steps):
        step = mpc.act(model.render(state), state.numpy())
        state = apply_action(state, torch.from_numpy(step.action))
        history.append((step, state))
    return history


def test_closed_loop_reaches_a_goal_several_steps_away(model):
    goal = START.copy()
    goal[:3] += [0.12, -0.08, 0.05]  # 0.15 m: at least 3 steps of 0.05 m
    config = PlannerConfig(samples=200, energy="terminal+intermediate")
    history = _closed_loop(model, GoalImageMPC(model, config), goal, steps=7)
    distances = [float(np.linalg.norm(state[:3].numpy() - goal[:3])) for _, state in history]
    assert distances[-1] < 0.01
    assert distances[2] < distances[0] - 0.08  # full steps while far away
    step = history[0][0]
    assert isinstance(step, MPCStep) and step.plan.shape == (2, 7) and step.action.shape == (7,)
    assert np.array_equal(step.action, step.plan[0])
    assert step.iteration_energies.shape == (config.iterations,) and step.latency_s > 0
    energies = [s.energy for s, _ in history]
    assert energies[-1] < energies[0] / 5  # the reported energy tracks the progress


def test_warm_start_uses_the_previous_plan_and_reset_forgets_it(model):
    mpc = GoalImageMPC(model, PlannerConfig(samples=32, topk=4, iterations=2))
    goal = START.copy()
    goal[0] += 0.1
    history = _closed_loop(model, mpc, goal, steps=2)
    assert mpc.last_result is not None
    first_plans = [s.plan for s, _ in history]
    mpc.reset()
    assert mpc.last_result is None
    # Same seed, same inputs, no warm start: the first step repeats exactly.
    again = mpc.act(model.render(torch.from_numpy(START)), START)
    np.testing.assert_array_equal(again.plan, first_plans[0])


def test_inputs_are_validated_with_errors_naming_them(model):
    mpc = GoalImageMPC(model, PlannerConfig(samples=16, topk=4, iterations=1))
    frame = model.render(START)
    with pytest.raises(RuntimeError, match="set_goal"):
        mpc.act(frame, START)
    mpc.set_goal(frame)
    bad_state = START.copy()
    bad_state[1] = np.nan
    with pytest.raises(ValueError, match="state"):
        mpc.act(frame, bad_state)
    with pytest.raises(ValueError, match="state"):
        mpc.act(frame, START[:6])
    with pytest.raises(ValueError, match="frames"):
        mpc.act(frame[..., :2], START)
    with pytest.raises(ValueError, match="frames.*uint8"):
        mpc.act(frame.astype(np.float32), START)
    with pytest.raises(ValueError, match="goal_image"):
        mpc.set_goal(np.stack([frame, frame]))
    with pytest.raises(ValueError, match=r"state must be \[7\] .* T=2"):
        mpc.act(np.stack([frame, frame]), START)


def test_a_diverging_model_raises_instead_of_acting(model):
    class Diverging(AnalyticWorldModel):
        def rollout(self, context_tokens, context_states, actions):
            return super().rollout(context_tokens, context_states, actions) * float("nan")

    diverging = Diverging()
    mpc = GoalImageMPC(diverging, PlannerConfig(samples=16, topk=4, iterations=2))
    mpc.set_goal(diverging.render(START))
    with pytest.raises(NonFiniteEnergyError):
        mpc.act(diverging.render(START), START)


def test_plans_with_the_real_world_model(tiny_world_model):
    """The real encoder + predictor (tiny, random weights) behind the same controller."""
    assert isinstance(tiny_world_model, PlanningWorldModel)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    states = np.tile(START, (2, 1))
    states[1, :3] += 0.02
    config = PlannerConfig(samples=24, topk=4, iterations=2, fixed_dims=(6,), fixed_values=(0.0,))
    mpc = GoalImageMPC(tiny_world_model, config)
    mpc.set_goal(frames[2])
    step = mpc.act(frames[:2], states)  # two context frames with their states
    assert np.isfinite(step.plan).all() and np.isfinite(step.energy)
    assert np.linalg.norm(step.plan[:, :3], axis=-1).max() <= config.max_translation + 1e-6
    assert (step.plan[:, 3:] == 0).all()
    second = mpc.act(frames[1], states[1])  # one frame, warm-started
    assert np.isfinite(second.action).all()


class _CancelDuringPlan(AnalyticWorldModel):
    """The analytic world model, cancelling its planner from inside the third rollout, as another thread would."""

    def __init__(self) -> None:
        super().__init__()
        self.mpc: GoalImageMPC | None = None
        self.rollouts = 0

    def rollout(self, context_tokens, context_states, actions):
        self.rollouts += 1
        if self.rollouts == 3:
            self.mpc.cancel()
        return super().rollout(context_tokens, context_states, actions)


def test_cancel_stops_a_running_plan_before_its_next_rollout_until_resumed():
    model = _CancelDuringPlan()
    mpc = model.mpc = GoalImageMPC(model, PlannerConfig(samples=16, topk=4, iterations=6))
    goal = START.copy()
    goal[0] += 0.1
    mpc.set_goal(model.render(goal))
    with pytest.raises(PlanCancelled):
        mpc.act(model.render(torch.from_numpy(START)), START)
    assert model.rollouts == 3  # iterations 4-6 never ran
    with pytest.raises(PlanCancelled):  # still cancelled
        mpc.act(model.render(torch.from_numpy(START)), START)
    assert model.rollouts == 3
    mpc.resume()
    step = mpc.act(model.render(torch.from_numpy(START)), START)
    assert model.rollouts >= 3 + 6 and step.action.shape == (7,)  # a whole plan again
