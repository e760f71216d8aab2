"""Every optimiser of the registry (CEM, iCEM, MPPI, Adam, CEM + Adam) against the analytic world
model, whose optimum is known (planner.analytic), and the box / ball action limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jepa_mpc_foundation.pose import apply_action
from planner import (
    OPTIMIZER_FUNCTIONS,
    GoalImageMPC,
    NonFiniteEnergyError,
    PlannerConfig,
    bind_context,
    get_optimizer,
    goal_objective,
)
from planner.analytic import AnalyticWorldModel
from planner.gradient import NotDifferentiableError, plan_gradient
from planner.icem import colored_noise, plan_icem, population_sizes
from planner.mppi import mppi_weights

START = torch.tensor([0.45, -0.05, 0.30, 3.10, 0.10, -0.20, 0.0])  # roll near pi, as DROID's
NAMES = sorted(OPTIMIZER_FUNCTIONS)
# Settings per optimiser that the tests share: the gradient planner gets enough Adam steps to walk
# 4 cm at grad_lr 0.1 x 5 mm; CEM + Adam a small CEM.
BUDGET = {"grad": {"grad_steps": 30}, "cem+grad": {"samples": 100, "iterations": 3, "grad_steps": 10}}


@pytest.fixture(scope="module")
def model() -> AnalyticWorldModel:
    return AnalyticWorldModel(num_tokens=4, token_dim=8, seed=0)


def _config(name: str, **changes) -> PlannerConfig:
    return PlannerConfig(optimizer=name, **{**BUDGET.get(name, {}), **changes})


def _problem(model, goal_state, energy="terminal"):
    context_tokens = model.tokens_for_states(START)[None, None]  # [1, 1, N, D]
    rollout = bind_context(model, context_tokens, START[None, None], differentiable=True)
    return rollout, goal_objective(model.tokens_for_states(goal_state), energy)


def _goal(displacement, gripper=0.0):
    goal = START.clone()
    goal[:3] += torch.tensor(displacement)
    goal[6] = gripper
    return goal


def _final_state(actions):
    state = START
    for action in actions:
        state = apply_action(state, action)
    return state


def _plan(name, model, goal, seed=0, energy="terminal", **changes):
    config = _config(name, energy=energy, **changes)
    return get_optimizer(name)(*_problem(model, goal, energy), config, generator=torch.Generator().manual_seed(seed))


# Tolerances measured on 3 seeds (worst seen x ~2): MPPI's weighted mean is the least precise.
ONE_STEP_TOLERANCE = {"cem": 4e-3, "icem": 5e-3, "mppi": 5e-3, "grad": 2e-3, "cem+grad": 3e-3}
TWO_STEP_TOLERANCE = {"cem": 5e-3, "icem": 8e-3, "mppi": 1.5e-2, "grad": 2e-3, "cem+grad": 4e-3}


@pytest.mark.parametrize("name", NAMES)
def test_one_step_plan_finds_the_known_optimum(model, name):
    goal = _goal([0.03, -0.02, 0.02])  # norm 0.041 < 0.05: the optimum is the displacement itself
    result = _plan(name, model, goal, horizon=1, gripper_deadband=0.0)
    assert result.actions.shape == (1, 7)
    assert (result.actions[0, :3] - (goal[:3] - START[:3])).norm() < ONE_STEP_TOLERANCE[name]
    assert result.energy < float(result.best_energies[0]) or name == "cem+grad"  # it improved on its start
    assert result.predicted is not None and result.predicted.shape == (1, 4, 8)


@pytest.mark.parametrize("name", NAMES)
def test_two_step_plan_reaches_a_goal_beyond_one_step(model, name):
    goal = _goal([0.05, 0.04, -0.04])  # 0.075 m: two steps of at most 0.05 m
    result = _plan(name, model, goal, seed=1, gripper_deadband=0.0, energy="terminal+intermediate")
    assert (_final_state(result.actions)[:3] - goal[:3]).norm() < TWO_STEP_TOLERANCE[name]
    assert result.actions[:, :3].norm(dim=-1).max() <= 0.05 + 1e-6
    assert math.isfinite(result.energy) and result.energy_spread >= 0.0
    # The plan's predicted tokens are those of the plan's own rollout (what the surprise gate compares).
    rollout, _ = _problem(model, goal)
    torch.testing.assert_close(result.predicted, rollout(result.actions[None])[0].detach())


@pytest.mark.parametrize("limit", ["ball", "box"])
@pytest.mark.parametrize("name", NAMES)
def test_every_sample_respects_the_limits(model, name, limit):
    config = _config(
        name,
        samples=64,
        iterations=3,
        topk=8,
        grad_steps=4,
        plan_rotation=True,
        max_rotation=0.2,
        init_std_rotation=0.5,
        init_std_translation=0.2,
        fixed_dims=(2, 5),
        fixed_values=(0.03, 0.1),
        max_gripper=0.5,
        action_limit=limit,
    )
    rollout, objective = _problem(model, _goal([0.2, 0.1, 0.03], gripper=1.0))
    seen = []

    def recording_rollout(actions):
        seen.append(actions.detach().clone())
        return rollout(actions)

    result = get_optimizer(name)(recording_rollout, objective, config, generator=torch.Generator().manual_seed(3))
    samples = torch.cat([s.reshape(-1, 7) for s in seen] + [result.actions])
    assert (samples[:, 2] == 0.03).all() and (samples[:, 5] == 0.1).all()
    assert samples[:, 6].abs().max() <= config.max_gripper
    norms = samples[:, :3].norm(dim=-1)
    if limit == "ball":
        assert norms.max() <= config.max_translation + 1e-6
        assert samples[:, 3:6].norm(dim=-1).max() <= config.max_rotation + 1e-6
    else:  # per axis; a step can leave the ball (here: along x and y at once)
        assert samples[:, :3].abs().max() <= config.max_translation + 1e-6
        assert samples[:, 3:6].abs().max() <= config.max_rotation + 1e-6
        assert norms.max() > config.max_translation + 1e-3
    assert samples[:, 3:5].abs().max() > 0.01  # rotations really are planned


def test_a_diagonal_step_inside_the_box_but_outside_the_ball(model):
    # 0.069 m along (1, 1, -1): inside the box of +-0.05 per axis, outside the ball of 0.05.
    displacement = torch.tensor([0.04, 0.04, -0.04])
    goal = _goal(displacement.tolist())
    box = _plan("cem", model, goal, horizon=1, gripper_deadband=0.0, action_limit="box", iterations=15)
    ball = _plan("cem", model, goal, horizon=1, gripper_deadband=0.0, action_limit="ball", iterations=15)
    assert (box.actions[0, :3] - displacement).norm() < 3e-3  # the box reaches the goal in one step
    assert ball.actions[0, :3].norm() <= 0.05 + 1e-6 and ball.energy > box.energy


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_the_same_plan_and_another_seed_does_not(model, name):
    goal = _goal([0.04, 0.01, 0.0])
    first = _plan(name, model, goal, seed=7, samples=64, topk=8, iterations=3, grad_steps=5)
    again = _plan(name, model, goal, seed=7, samples=64, topk=8, iterations=3, grad_steps=5)
    other = _plan(name, model, goal, seed=8, samples=64, topk=8, iterations=3, grad_steps=5)
    assert torch.equal(first.actions, again.actions) and first.energy == again.energy
    assert not torch.equal(first.actions, other.actions)


@pytest.mark.parametrize("name", NAMES)
def test_the_plan_is_never_worse_than_the_best_energy_seen(model, name):
    for seed in range(2):
        result = _plan(
            name,
            model,
            _goal([0.03, 0.03, 0.0]),
            seed=seed,
            samples=32,
            topk=4,
            iterations=3,
            grad_steps=4,
            gripper_deadband=0.0,
        )
        assert result.energy <= float(result.best_energies.min()) + 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_nan_energies_are_never_chosen(model, name):
    # The model diverges (NaN tokens) whenever a sequence moves in +x; the goal lies in +x.
    rollout, objective = _problem(model, _goal([0.04, 0.02, 0.0]))

    def diverging_rollout(actions):
        tokens = rollout(actions)
        diverged = (actions[:, :, 0] > 0).any(dim=1)  # [S]
        return torch.where(diverged[:, None, None, None], torch.full_like(tokens, float("nan")), tokens)

    config = _config(name, samples=64, topk=8, iterations=6, grad_steps=10)
    result = get_optimizer(name)(diverging_rollout, objective, config, generator=torch.Generator().manual_seed(5))
    assert (result.actions[:, 0] <= 0).all() and math.isfinite(result.energy)
    assert (
        result.energy <= float(objective(rollout(torch.zeros(1, 2, 7)).detach())[0]) + 1e-6
    )  # never worse than staying
    if name in ("cem", "icem", "cem+grad"):  # elites pile up at x = 0-, where +y still helps
        assert result.actions[:, 1].sum() > 0.005
    # MPPI's fixed-width average lands at x < 0 (worse than staying: it keeps the no-motion sample), and
    # Adam's steps into +x get NaN gradients (zeroed): neither crosses into the NaN half.


@pytest.mark.parametrize("name", NAMES)
def test_a_model_that_always_diverges_raises(model, name):
    rollout, objective = _problem(model, _goal([0.04, 0.0, 0.0]))
    config = _config(name, samples=16, topk=4, iterations=2, grad_steps=2)
    with pytest.raises(NonFiniteEnergyError, match="non-finite energy"):
        get_optimizer(name)(lambda a: rollout(a) * float("nan"), objective, config)


def test_unknown_optimizer_and_bad_settings_are_errors_naming_them():
    with pytest.raises(ValueError, match="optimizer"):
        PlannerConfig(optimizer="adam")
    with pytest.raises(ValueError, match="action_limit"):
        PlannerConfig(action_limit="sphere")
    with pytest.raises(ValueError, match="icem_population_decay"):
        PlannerConfig(icem_population_decay=0.5)
    with pytest.raises(ValueError, match="mppi_temperature"):
        PlannerConfig(mppi_temperature=0.0)
    with pytest.raises(ValueError, match="grad_starts"):
        PlannerConfig(grad_starts=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("adam")
    # Box: a fixed value is checked per axis (0.04 on two axes is inside the box, outside the ball).
    PlannerConfig(action_limit="box", fixed_dims=(0, 1), fixed_values=(0.04, 0.04))
    with pytest.raises(ValueError, match="max_translation"):
        PlannerConfig(fixed_dims=(0, 1), fixed_values=(0.04, 0.04))


# ------------------------------------------------------------------ iCEM
@pytest.mark.parametrize("beta, horizon, lag1", [(0.0, 16, 0.0), (2.0, 16, 0.78), (2.0, 2, 0.0), (1.0, 7, 0.3)])
def test_colored_noise_has_unit_variance_and_the_exponents_correlation(beta, horizon, lag1):
    noise = colored_noise(beta, (20000, horizon, 7), torch.Generator().manual_seed(0))
    assert noise.shape == (20000, horizon, 7)
    assert float(noise.std()) == pytest.approx(1.0, abs=0.02)
    correlation = float((noise[:, 1:] * noise[:, :-1]).mean() / noise.var())
    assert correlation == pytest.approx(lag1, abs=0.03)  # white at H = 2: two frequencies, same weight


def test_icem_population_shrinks_and_counts_its_rollouts(model):
    config = PlannerConfig(optimizer="icem", samples=100, topk=10, iterations=5, icem_population_decay=1.5)
    assert population_sizes(config) == [100, 66, 44, 29, 20]  # floor at 2 * topk
    batches = []
    rollout, objective = _problem(model, _goal([0.03, 0.0, 0.0]))
    plan_icem(lambda a: batches.append(a.shape[0]) or rollout(a), objective, config)
    assert batches == [100, 66, 44, 29, 20, 2]  # + the final choice between mean and best


def test_icem_starts_from_the_previous_steps_elites(model):
    # One iteration of 20 draws around zero cannot find a 4 cm move precisely; the previous step's
    # elite (the exact displacement) joins the first draw and becomes the plan.
    goal = _goal([0.03, -0.02, 0.02])
    optimum = (goal[:3] - START[:3])[None, None].expand(1, 1, 3)
    elites = torch.cat([optimum, torch.zeros(1, 1, 4)], dim=-1)  # [1, 1, 7]
    config = PlannerConfig(
        optimizer="icem", horizon=1, samples=20, topk=4, iterations=1, icem_keep_fraction=0.5, gripper_deadband=0.0
    )
    rollout, objective = _problem(model, goal)
    without = plan_icem(rollout, objective, config, generator=torch.Generator().manual_seed(0))
    warm = plan_icem(rollout, objective, config, init_elites=elites, generator=torch.Generator().manual_seed(0))
    assert (warm.actions[0, :3] - optimum[0, 0]).norm() < 1e-5
    assert (without.actions[0, :3] - optimum[0, 0]).norm() > 1e-3


# ------------------------------------------------------------------ MPPI
def test_mppi_weights_prefer_low_energy_and_ignore_nan():
    energies = torch.tensor([1.0, 1.1, 1.2, float("inf"), 1.05])
    weights = mppi_weights(energies, temperature=0.5)
    assert float(weights.sum()) == pytest.approx(1.0)
    assert weights[3] == 0 and int(weights.argmax()) == 0
    assert (weights[[0, 4, 1, 2]].diff() < 0).all()  # ordered by energy
    flat = mppi_weights(energies, temperature=1e3)  # a hot temperature: nearly uniform over the finite ones
    assert float(flat[[0, 1, 2, 4]].min()) > 0.24
    # Scale-free: the same energies x 1000 (another model's scale) give the same weights.
    torch.testing.assert_close(mppi_weights(energies * 1000, 0.5), weights)


# ------------------------------------------------------------------ gradient
def test_gradient_planner_refuses_a_rollout_without_gradients(model):
    _, objective = _problem(model, _goal([0.03, 0.0, 0.0]))
    frozen = bind_context(model, model.tokens_for_states(START)[None, None], START[None, None])  # a sampler's binding
    with pytest.raises(NotDifferentiableError, match="differentiable=True"):
        plan_gradient(frozen, objective, PlannerConfig(optimizer="grad"))


def test_gradient_planning_through_the_real_world_model(tiny_world_model):
    """Adam through the real predictor (bound with differentiable=True): the energy falls."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    context = tiny_world_model.encode_frames(frames[:1])
    goal = tiny_world_model.encode_frames(frames[1:])[0, -1]
    rollout = bind_context(tiny_world_model, context, START[None, None], differentiable=True)
    objective = goal_objective(goal)
    config = PlannerConfig(optimizer="grad", grad_steps=8, grad_starts=4, grad_lr=0.3)
    result = plan_gradient(rollout, objective, config, generator=torch.Generator().manual_seed(0))
    stay = float(objective(rollout(torch.zeros(1, 2, 7)).detach())[0])
    assert result.energy < stay - 1e-4
    assert (result.best_energies[1:] <= result.best_energies[:-1]).all()
    # The undecorated rollout computes what the decorated one does.
    plain = bind_context(tiny_world_model, context, START[None, None])
    actions = torch.randn(3, 2, 7) * 0.02
    torch.testing.assert_close(rollout(actions).detach(), plain(actions))


@pytest.mark.parametrize("name", ["icem", "mppi", "grad"])
def test_goal_image_mpc_plans_with_every_optimizer(model, name):
    goal = START.clone()
    goal[:3] += torch.tensor([0.06, -0.04, 0.0])
    mpc = GoalImageMPC(model, _config(name, energy="terminal+intermediate", samples=100, iterations=5, grad_steps=15))
    mpc.set_goal(model.render(goal))
    state = START
    for _ in range(4):
        step = mpc.act(model.render(state), state.numpy())
        state = apply_action(state, torch.from_numpy(step.action))
    assert float((state[:3] - goal[:3]).norm()) < 0.012
