"""Surprise and surprise-gated replanning in GoalImageMPC, with a stand-in world model whose
prediction is right for k steps of a plan and wrong after: the gate must replan exactly when the
observed frame stops matching the prediction, or when the plan runs out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jepa_mpc_foundation.pose import apply_action
from planner import GoalImageMPC, PlannerConfig
from planner.analytic import AnalyticWorldModel

START = np.array([0.45, -0.05, 0.30, 3.10, 0.10, -0.20, 0.0], dtype=np.float32)
HORIZON = 5
THRESHOLD = 1e-3


class RightForKSteps(AnalyticWorldModel):
    """The analytic model, except that from the (k+1)-th step of every rollout on it predicts the
    hand 3 cm higher than it will be: its first k predictions are right, the rest wrong."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def rollout(self, context_tokens, context_states, actions):
        state = context_states[:, -1].to(torch.float32).expand(actions.shape[0], 7)
        states = []
        for step in range(actions.shape[1]):
            state = apply_action(state, actions[:, step].to(torch.float32))
            wrong = state.clone()
            wrong[:, 2] += 0.03
            states.append(state if step < self.k else wrong)
        return self.tokens_for_states(torch.stack(states, dim=1))


def _run(model, config, steps):
    """Closed loop in the true (analytic) world toward a goal 0.3 m away; the steps and the states."""
    goal = START.copy()
    goal[:3] += [0.2, -0.2, 0.1]
    mpc = GoalImageMPC(model, config)
    mpc.set_goal(model.render(goal))
    state = torch.from_numpy(START)
    history = []
    for _ in range(steps):
        step = mpc.act(model.render(state), state.numpy())
        history.append(step)
        state = apply_action(state, torch.from_numpy(step.action))
    return mpc, history


def _config(**changes):
    return PlannerConfig(horizon=HORIZON, samples=32, topk=4, iterations=2, surprise_threshold=THRESHOLD, **changes)


def _expected_replans(k: int, steps: int) -> list[bool]:
    # A search at t; the plan's predictions of t+1..t+k are right, so the gate follows the plan while
    # they last (and while steps remain): the next search comes after min(k, H - 1) followed steps.
    period = min(k, HORIZON - 1) + 1
    return [t % period == 0 for t in range(steps)]


@pytest.mark.parametrize("k", [0, 2, 4, HORIZON])
def test_the_gate_replans_exactly_when_the_prediction_goes_wrong_or_the_plan_runs_out(k):
    steps = 11
    _, history = _run(RightForKSteps(k), _config(surprise_gating=True), steps)
    replanned = [s.replanned for s in history]
    assert replanned == _expected_replans(k, steps)
    last_search = 0
    for t, step in enumerate(history):
        if t == 0:
            assert step.surprise is None  # nothing predicted the first frame
            continue
        # The frame t - last_search steps after the search was the plan's prediction number t - last_search:
        # right for the first k of them, a surprise after.
        assert (step.surprise > THRESHOLD) == (t - last_search > k)
        if step.replanned:
            assert step.iteration_energies.shape == (2,)
            last_search = t
        else:
            assert step.surprise < 1e-5  # the observed frame is what the plan predicted
            # The kept plan's next step, not a new search.
            np.testing.assert_array_equal(step.action, history[last_search].plan[t - last_search])
            assert step.iteration_energies.shape == (0,)
            assert step.energy == history[last_search].energy


def test_without_the_gate_every_step_searches_and_still_reports_surprise():
    steps = 6
    _, history = _run(RightForKSteps(1), _config(), steps)
    assert all(s.replanned for s in history)
    assert history[0].surprise is None
    # Each search's first prediction is right (k = 1): the next frame is no surprise.
    assert all(s.surprise < 1e-5 for s in history[1:])
    _, wrong = _run(RightForKSteps(0), _config(), 3)
    assert all(s.surprise > 0.01 for s in wrong[1:])  # a 3 cm miss is a surprise far above the threshold


def test_a_new_goal_forgets_the_plan_and_searches():
    model = RightForKSteps(HORIZON)
    mpc, history = _run(model, _config(surprise_gating=True), 2)
    assert not history[1].replanned and mpc.executed == 2
    mpc.set_goal(model.render(START))
    step = mpc.act(model.render(torch.from_numpy(START)), START)
    assert step.replanned and step.surprise is None


def test_the_warm_start_after_kept_steps_is_the_plan_shifted_by_all_of_them():
    model = RightForKSteps(2)
    config = _config(surprise_gating=True)
    mpc, history = _run(model, config, 3)  # search, follow, follow
    assert [s.replanned for s in history] == [True, False, False]
    seen = {}
    optimize = mpc.optimize

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return optimize(*args, **kwargs)

    mpc.optimize = recording
    state = torch.from_numpy(START)  # any frame: the 3 cm miss makes it a surprise
    step = mpc.act(model.render(state), state.numpy())
    assert step.replanned
    plan = torch.from_numpy(history[0].plan)
    torch.testing.assert_close(seen["init_mean"][: HORIZON - 3], plan[3:])
    assert (seen["init_mean"][HORIZON - 3 :] == 0).all()  # the freed steps start at the initial mean
