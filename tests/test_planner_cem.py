"""CEM against the analytic world model, whose optimum is known (planner.analytic)."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_mpc_foundation.pose import apply_action
from planner import NonFiniteEnergyError, PlannerConfig, bind_context, goal_objective, plan_cem, shift_plan
from planner.analytic import AnalyticWorldModel
from planner.limits import ActionLimits

START = torch.tensor([0.45, -0.05, 0.30, 3.10, 0.10, -0.20, 0.0])  # roll near pi, as DROID's


@pytest.fixture(scope="module")
def model() -> AnalyticWorldModel:
    return AnalyticWorldModel(num_tokens=4, token_dim=8, seed=0)


def _problem(model, goal_state, energy="terminal"):
    context_tokens = model.tokens_for_states(START)[None, None]  # [1, 1, N, D]
    rollout = bind_context(model, context_tokens, START[None, None])
    return rollout, goal_objective(model.tokens_for_states(goal_state), energy)


def _final_state(actions):
    state = START
    for action in actions:
        state = apply_action(state, action)
    return state


def _goal(displacement, gripper=0.0):
    goal = START.clone()
    goal[:3] += torch.tensor(displacement)
    goal[6] = gripper
    return goal


@pytest.mark.parametrize("iterations, tolerance", [(10, 3e-3), (20, 5e-4)])
def test_one_step_plan_finds_the_known_optimum(model, iterations, tolerance):
    # H = 1: the optimum is unique, the displacement itself (norm 0.041 < 0.05). With the reference
    # momenta (std 0.75) 10 iterations leave the search a few mm wide; 20 iterations narrow it.
    config = PlannerConfig(horizon=1, iterations=iterations, gripper_deadband=0.0)
    goal = _goal([0.03, -0.02, 0.02])
    result = plan_cem(*_problem(model, goal), config, generator=torch.Generator().manual_seed(0))
    assert result.actions.shape == (1, 7)
    assert (result.actions[0, :3] - (goal[:3] - START[:3])).norm() < tolerance
    assert result.energy < result.best_energies[0]  # CEM improved on its first draw


@pytest.mark.parametrize("energy", ["terminal", "terminal+intermediate"])
def test_two_step_plan_reaches_a_goal_beyond_one_step(model, energy):
    # 0.075 m away: unreachable in one step of 0.05 m, reachable in two.
    config = PlannerConfig(gripper_deadband=0.0, energy=energy)
    goal = _goal([0.05, 0.04, -0.04])
    result = plan_cem(*_problem(model, goal, energy), config, generator=torch.Generator().manual_seed(1))
    reached = _final_state(result.actions)
    assert (reached[:3] - goal[:3]).norm() < 4e-3
    assert result.actions[:, :3].norm(dim=-1).max() <= config.max_translation + 1e-6
    assert math.isfinite(result.energy) and result.energy_spread >= 0.0
    assert result.best_energies.shape == result.elite_mean_energies.shape == (config.iterations,)


def test_unreachable_goal_uses_the_full_step_and_gets_closer(model):
    config = PlannerConfig(horizon=1, gripper_deadband=0.0)
    goal = _goal([0.18, -0.24, 0.0])  # 0.3 m away: far beyond one step
    rollout, objective = _problem(model, goal)
    result = plan_cem(rollout, objective, config, generator=torch.Generator().manual_seed(2))
    assert result.actions[0, :3].norm() == pytest.approx(config.max_translation, abs=1e-3)
    stay = objective(rollout(torch.zeros(1, 1, 7)))[0]
    assert result.energy < stay
    assert (_final_state(result.actions)[:3] - goal[:3]).norm() < 0.3 - 0.03


def test_every_sample_respects_limits_and_fixed_axes(model):
    config = PlannerConfig(
        samples=64,
        iterations=4,
        topk=8,
        plan_rotation=True,
        max_rotation=0.2,
        init_std_rotation=0.5,
        init_std_translation=0.2,
        fixed_dims=(2, 5),
        fixed_values=(0.03, 0.1),
        max_gripper=0.5,
    )
    rollout, objective = _problem(model, _goal([0.2, 0.1, 0.03], gripper=1.0))
    seen = []

    def recording_rollout(actions):
        seen.append(actions.clone())
        return rollout(actions)

    result = plan_cem(recording_rollout, objective, config, generator=torch.Generator().manual_seed(3))
    samples = torch.cat([s.reshape(-1, 7) for s in seen] + [result.actions])
    # every iteration's draws [64, 2, 7] x 4, the final evaluation [2, 2, 7] (mean, best elite), the plan
    assert samples.shape[0] == 64 * 2 * 4 + 2 * 2 + 2
    assert (samples[:, 2] == 0.03).all() and (samples[:, 5] == 0.1).all()
    assert samples[:, :3].norm(dim=-1).max() <= config.max_translation + 1e-6
    assert samples[:, 3:6].norm(dim=-1).max() <= config.max_rotation + 1e-6
    assert samples[:, 6].abs().max() <= config.max_gripper
    assert samples[:, 3:5].abs().max() > 0.01  # rotations really are planned
    # The wide initial std makes clipping bind: some samples sit on the translation limit.
    assert (samples[:, :3].norm(dim=-1) > config.max_translation - 1e-4).any()


def test_rotations_are_held_at_zero_by_default(model):
    rollout, objective = _problem(model, _goal([0.02, 0.0, 0.0]))
    seen = []
    plan_cem(lambda a: seen.append(a) or rollout(a), objective, PlannerConfig(samples=32, topk=4, iterations=2))
    assert all((s[..., 3:6] == 0).all() for s in seen)


def test_same_seed_gives_the_same_plan_and_another_seed_does_not(model):
    config = PlannerConfig(samples=64, topk=8, iterations=3)
    problem = _problem(model, _goal([0.04, 0.01, 0.0]))
    first = plan_cem(*problem, config, generator=torch.Generator().manual_seed(7))
    again = plan_cem(*problem, config, generator=torch.Generator().manual_seed(7))
    other = plan_cem(*problem, config, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first.actions, again.actions) and first.energy == again.energy
    assert not torch.equal(first.actions, other.actions)


def test_kept_elites_make_the_best_energy_monotone(model):
    config = PlannerConfig(samples=32, topk=4, iterations=8, keep_elites=True)
    result = plan_cem(*_problem(model, _goal([0.05, -0.03, 0.02])), config, generator=torch.Generator().manual_seed(4))
    assert (result.best_energies[1:] <= result.best_energies[:-1]).all()
    assert torch.equal(result.elite_energies, result.elite_energies.sort().values)


def test_the_plan_is_never_worse_than_the_best_sample_seen(model):
    config = PlannerConfig(samples=32, topk=4, iterations=3, gripper_deadband=0.0)
    for seed in range(3):
        result = plan_cem(
            *_problem(model, _goal([0.03, 0.03, 0.0])), config, generator=torch.Generator().manual_seed(seed)
        )
        assert result.energy <= float(result.best_energies.min()) + 1e-7


def test_nan_energies_never_select_an_elite(model):
    # The model diverges (NaN tokens) whenever a sequence moves in +x; the goal lies in +x.
    rollout, objective = _problem(model, _goal([0.04, 0.02, 0.0]))

    def diverging_rollout(actions):
        tokens = rollout(actions)
        diverged = (actions[:, :, 0] > 0).any(dim=1)  # [S]
        return torch.where(diverged[:, None, None, None], torch.full_like(tokens, float("nan")), tokens)

    config = PlannerConfig(samples=64, topk=8, iterations=6)
    result = plan_cem(diverging_rollout, objective, config, generator=torch.Generator().manual_seed(5))
    assert torch.isfinite(result.elite_energies).all()
    assert (result.actions[:, 0] <= 0).all() and math.isfinite(result.energy)
    assert (result.finite_counts < config.samples).all()  # NaNs really were drawn, every iteration
    assert result.actions[:, 1].sum() > 0.01  # and the planner still made progress along +y


def test_a_model_that_always_diverges_raises_a_clear_error(model):
    rollout, objective = _problem(model, _goal([0.04, 0.0, 0.0]))
    config = PlannerConfig(samples=16, topk=4, iterations=2)
    with pytest.raises(NonFiniteEnergyError, match="non-finite energy"):
        plan_cem(lambda a: rollout(a) * float("nan"), objective, config)


def test_warm_start_shifts_the_previous_plan_by_one_step():
    config = PlannerConfig(horizon=3, fixed_dims=(6,), fixed_values=(0.5,))
    limits = ActionLimits(config)
    previous = torch.arange(21, dtype=torch.float32).reshape(3, 7) / 1000
    shifted = shift_plan(previous, config, limits)
    torch.testing.assert_close(shifted[:2], previous[1:])
    assert shifted[2].tolist() == [0.0] * 6 + [0.5]  # the new last step starts at the initial mean


def test_gripper_dead_band_zeroes_small_executed_gripper_deltas(model):
    # The gripper starts open (0) with the goal open: any delta <= 0 is optimal, so the planned gripper
    # delta is noise; the dead band (reference: 0.25) turns small ones into "leave the gripper".
    problem = _problem(model, _goal([0.01, 0.0, 0.0]))
    plans = {
        band: plan_cem(
            *problem,
            PlannerConfig(horizon=1, samples=64, topk=8, gripper_deadband=band),
            generator=torch.Generator().manual_seed(0),
        ).actions[0, 6]
        for band in (0.0, 0.9)
    }
    assert -0.9 < plans[0.0] < 0  # precondition: a small, harmless gripper delta without the band
    assert plans[0.9] == 0


def test_bfloat16_model_tokens_are_scored_in_float32():
    model = AnalyticWorldModel(dtype=torch.bfloat16)
    config = PlannerConfig(horizon=1, gripper_deadband=0.0, samples=200)
    goal = _goal([0.02, 0.02, -0.01])
    result = plan_cem(*_problem(model, goal), config, generator=torch.Generator().manual_seed(0))
    assert (result.actions[0, :3] - (goal[:3] - START[:3])).norm() < 8e-3
