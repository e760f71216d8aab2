"""Each scripted expert solves its task on >= 80% of 20 seeded episodes (render-free, ~1 min in all)."""

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import gymnasium
import numpy as np
import pytest

import sim
from sim.config import SimConfig
from sim.experts import make_expert, make_policy

EPISODES = 20


def run_episode(env, policy, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    policy.reset()
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        done = terminated or truncated
    return info


def successes(task: str) -> list[bool]:
    """Whether the expert of ``task`` (its noise from one seeded generator) solved each of the EPISODES seeded
    episodes, in order."""
    env = gymnasium.make(sim.env_id(task), config=SimConfig(render_images=False))
    expert = make_expert(task, env, np.random.default_rng(0), noise=0.002)
    return [run_episode(env, expert, seed)["is_success"] for seed in range(EPISODES)]


@pytest.fixture(scope="module")
def expert_runs(request) -> Iterator[dict[str, Future]]:
    """Task -> the future of its :func:`successes`, for the selected tasks, computed in two spawned processes (a
    task's episodes all in one, as in this process): each is ~5-20 s of one core's physics, and the suite runs
    on two. Those not started when the module ends are cancelled."""
    tasks = [
        item.callspec.params["task"]
        for item in request.session.items
        if item.module is request.module and item.originalname == "test_expert_success_rate"
    ]
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield {task: pool.submit(successes, task) for task in tasks}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# The language tasks' experts are these motions on the named cube: tests/test_sim_language.py runs them on a few
# seeds (20 each would double this file's time; docs/benchmarks.md has their rate over 20).
@pytest.mark.parametrize("task", sorted(sim.SINGLE_CUBE_TASKS))
def test_expert_success_rate(task, expert_runs):
    solved = expert_runs[task].result()
    assert len(solved) == EPISODES
    assert np.mean(solved) >= 0.8, f"{task}: expert succeeded on {sum(solved)}/{EPISODES} episodes"


def test_failure_episodes_and_random_policy():
    env = gymnasium.make(sim.env_id("grasp"), config=SimConfig(render_images=False))
    failing = make_expert("grasp", env, np.random.default_rng(0), failure_prob=1.0)
    assert not any(run_episode(env, failing, seed)["is_success"] for seed in range(3))
    random_policy = make_policy("random", "grasp", env, np.random.default_rng(0))
    obs, _ = env.reset(seed=0)
    random_policy.reset()
    states = []
    for _ in range(12):
        obs, *_ = env.step(random_policy.act(obs))
        states.append(obs["state"])
    assert np.ptp(np.array(states)[:, :3], axis=0).max() > 0.03  # it explores
    with pytest.raises(ValueError, match="failure_prob"):
        make_expert("grasp", env, np.random.default_rng(0), failure_prob=2.0)
