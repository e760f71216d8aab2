"""The goal-conditioned policy (one-photo planning): hindsight samples, learning, checkpoints, the planner's
proposals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from command_helpers import frozen_tokens_argv
from jepa_mpc_foundation.pose import apply_action
from planner import GoalImageMPC, PlannerConfig
from planner.analytic import AnalyticWorldModel
from worldmodel.config import GoalPolicyConfig
from worldmodel.goal_policy import GoalConditionedPolicy
from worldmodel.training.feature_cache import FeatureCache
from worldmodel.training.train_goal_policy import HindsightSamples, cloning_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

START = np.array([0.45, 0.0, 0.25, np.pi, 0.0, 0.0, 0.0], dtype=np.float32)
FRAME_STEP = 0.025  # m per sampled frame (4 fps): 0.05 m per predictor step, the planner's limit


class ProposingAnalyticModel(AnalyticWorldModel):
    """The analytic world model with a goal-conditioned policy on its tokens, as a trained checkpoint has."""

    def __init__(self, policy: GoalConditionedPolicy) -> None:
        super().__init__()
        self.policy = policy

    can_propose = True

    @torch.no_grad()
    def propose(self, context_tokens, context_states, goal_tokens):
        return self.policy(context_tokens[:, -1], context_states[:, -1], goal_tokens[None])[0]


def straight_line_episode(start: np.ndarray, goal: np.ndarray, frames: int) -> np.ndarray:
    """States ``[frames, 7]`` of a hand going straight to ``goal`` at ``FRAME_STEP`` per frame, then staying."""
    states = [start.copy()]
    for _ in range(frames - 1):
        state = states[-1].copy()
        delta = goal[:3] - state[:3]
        distance = np.linalg.norm(delta)
        state[:3] += delta if distance <= FRAME_STEP else delta / distance * FRAME_STEP
        states.append(state)
    return np.stack(states)


def analytic_cache(model: AnalyticWorldModel, episodes: int, seed: int) -> FeatureCache:
    """Demonstrations of reaching random goals 5-20 cm away, as a feature cache of the analytic model's tokens."""
    rng = np.random.default_rng(seed)
    all_states, index, offset = [], [], 0
    for e in range(episodes):
        start = START.copy()
        start[:3] += rng.uniform(-0.05, 0.05, 3)
        direction = rng.normal(size=3)
        goal = start.copy()
        goal[:3] += direction / np.linalg.norm(direction) * rng.uniform(0.05, 0.2)
        states = straight_line_episode(start, goal, 16)
        all_states.append(states)
        index.append({"name": f"episode_{e}", "offset": offset, "length": len(states)})
        offset += len(states)
    states = np.concatenate(all_states).astype(np.float32)
    tokens = model.tokens_for_states(torch.from_numpy(states)).numpy().astype(np.float16)
    return FeatureCache(Path("."), tokens, states, index)


def test_hindsight_goals_lie_later_in_the_same_episode_and_actions_stop_at_its_end():
    model = AnalyticWorldModel()
    cache = analytic_cache(model, episodes=3, seed=0)
    samples = HindsightSamples(cache, [0, 1, 2], tubelet=2, chunk=3)
    assert len(samples) == 3 * 15  # every frame but the last of each episode
    picks, goals = samples.draw(torch.Generator().manual_seed(0), 4096, final_fraction=0.3)
    rows, ends = samples.rows[picks], samples.ends[picks]
    assert bool((goals > rows).all()) and bool((goals <= ends).all())
    final_share = float((goals == ends).float().mean())
    assert 0.3 < final_share < 0.5  # 30% drawn as the last frame, plus later frames that happen to be it
    # The chunk's actions are the demonstration's, one predictor step (2 frames) each; past the end, zeros.
    last = torch.tensor([cache.episodes[0]["length"] - 2])  # the frame before episode 0's last
    actions = samples.actions(last, torch.tensor([cache.episodes[0]["length"] - 1]))  # [1, 3, 7]
    assert torch.count_nonzero(actions[0, 1:]) == 0
    first = samples.actions(torch.tensor([0]), torch.tensor([15]))[0, 0]
    assert first[:3].norm().item() == pytest.approx(2 * FRAME_STEP, abs=1e-5)


def test_policy_learns_the_analytic_models_inverse_dynamics_and_plans_alone():
    """Trained on demonstrations of the analytic model with hindsight goals, the policy alone (no search)
    drives held-out starts to held-out goals: the inverse dynamics, learned from tokens."""
    torch.manual_seed(0)
    model = AnalyticWorldModel()
    cache = analytic_cache(model, episodes=300, seed=1)
    samples = HindsightSamples(cache, list(range(300)), tubelet=2, chunk=2)
    policy = GoalConditionedPolicy(
        GoalPolicyConfig(
            encoder_dim=model.token_dim,
            tokens_per_frame=model.num_tokens,
            token_dim=8,
            hidden_dim=128,
            depth=2,
            chunk=2,
        )
    )
    policy.target_scale.copy_(samples.target_scale())
    optimizer = torch.optim.Adam(policy.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(800):
        picks, goals = samples.draw(generator, 256, final_fraction=0.5)
        loss = cloning_error(policy, *samples.batch(picks, goals, torch.device("cpu"))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()

    proposing = ProposingAnalyticModel(policy)
    mpc = GoalImageMPC(proposing, PlannerConfig(proposal="policy"))
    rng = np.random.default_rng(123)  # held-out starts and goals
    finals = []
    for _ in range(5):
        state = START.copy()
        state[:3] += rng.uniform(-0.05, 0.05, 3)
        goal = state.copy()
        goal[:3] += rng.uniform(-0.1, 0.1, 3)
        mpc.set_goal(model.render(goal))
        state = torch.from_numpy(state)
        for _ in range(8):
            step = mpc.act(model.render(state), state.numpy())
            assert step.iteration_energies.shape == (1,)  # scored, not searched
            state = apply_action(state, torch.from_numpy(step.action))
        finals.append(float(np.linalg.norm(state[:3].numpy() - goal[:3])))
    assert max(finals) < 0.02, finals


def test_proposal_needs_a_model_with_a_policy():
    with pytest.raises(ValueError, match="train-policy"):
        GoalImageMPC(AnalyticWorldModel(), PlannerConfig(proposal="policy"))
    with pytest.raises(ValueError, match="proposal"):
        PlannerConfig(proposal="dreams")


def test_search_starts_from_the_proposal():
    """policy+search: the optimiser's first mean is the policy's plan, so a zero-iteration-like search
    (tiny std) returns it, where the same search from the zero mean stays near zero."""
    model = AnalyticWorldModel()

    class Fixed(AnalyticWorldModel):
        can_propose = True

        def propose(self, context_tokens, context_states, goal_tokens):
            return torch.tensor([[0.03, 0.0, 0.0, 0, 0, 0, 0.0]] * 2)

    narrow = dict(
        samples=8,
        topk=2,
        iterations=1,
        init_std_translation=1e-3,
        init_std_rotation=1e-3,
        init_std_gripper=1e-3,
        min_std=1e-3,
        warm_start=False,
    )
    goal = START.copy()
    goal[0] += 0.06
    plans = {}
    for proposal in ("none", "policy+search"):
        mpc = GoalImageMPC(Fixed(), PlannerConfig(proposal=proposal, **narrow))
        mpc.set_goal(model.render(goal))
        plans[proposal] = mpc.act(model.render(START), START).action
    assert plans["policy+search"][0] == pytest.approx(0.03, abs=0.005)
    assert abs(plans["none"][0]) < 0.005


def test_finish_searches_where_the_policy_stops_short():
    """policy+finish: a policy that stops 4 cm short of the goal (as the default one does on some reaches)
    leaves the hand there with ``policy``; with ``policy+finish`` its 'stay' triggers a search by the
    energy, which closes the gap; while the policy moves, its plan is executed unsearched."""
    model = AnalyticWorldModel()
    goal = START.copy()
    goal[0] += 0.12
    stop_short_at = goal[0] - 0.04

    class StopsShort(AnalyticWorldModel):
        can_propose = True

        def propose(self, context_tokens, context_states, goal_tokens):
            x = float(context_states[0, -1, 0])
            step = min(0.05, max(0.0, stop_short_at - x))
            return torch.tensor([[step, 0.0, 0.0, 0, 0, 0, 0.0]] * 2)

    # Horizon 1: the terminal energy then decides the executed step itself (at horizon 2 a plan's first step
    # is free as long as its second returns, which the analytic model's coarse energy leaves to chance).
    search = dict(horizon=1, samples=64, topk=8, iterations=4, fixed_dims=(3, 4, 5, 6), fixed_values=(0.0,) * 4)
    finals, searched = {}, {}
    for proposal in ("policy", "policy+finish"):
        mpc = GoalImageMPC(StopsShort(), PlannerConfig(proposal=proposal, **search))
        mpc.set_goal(model.render(goal))
        state, searched[proposal] = torch.from_numpy(START.copy()), []
        for _ in range(6):
            step = mpc.act(model.render(state), state.numpy())
            searched[proposal].append(step.iteration_energies.shape[0] > 1)
            state = apply_action(state, torch.from_numpy(step.action))
        finals[proposal] = float(np.linalg.norm(state[:3].numpy() - goal[:3]))
    assert finals["policy"] == pytest.approx(0.04, abs=1e-3)
    assert finals["policy+finish"] < 0.01, finals
    assert searched["policy+finish"][:2] == [False, False]  # 0.05 m steps: the policy's plan, unsearched
    assert any(searched["policy+finish"][2:]) and not any(searched["policy"])


def square_demonstrations(episodes: int, length: int, seed: int):
    """A square driven straight to a random spot (the hand of a demonstration), as the synthetic dataset draws it."""
    from worldmodel.training.episodes import SampledEpisode
    from worldmodel.training.synthetic import render_square

    rng = np.random.default_rng(seed)
    out = []
    for e in range(episodes):
        start, goal = START.copy(), START.copy()
        start[:2], goal[:2] = rng.uniform(-0.25, 0.25, 2), rng.uniform(-0.25, 0.25, 2)
        states = straight_line_episode(start, goal, length)
        out.append(SampledEpisode(f"square_{e}", np.stack([render_square(s, 32) for s in states]), states))
    return out


def test_train_policy_command_adds_a_policy_the_model_loads_strictly(tmp_path, tiny_checkpoint, capsys):
    from jepa_mpc.cli import main
    from worldmodel import load_world_model
    from worldmodel.checkpoint import CheckpointError
    from worldmodel.training.episodes import save_episodes_npz

    data = tmp_path / "squares.npz"
    save_episodes_npz(data, square_demonstrations(40, 12, seed=0), fps=4)
    out = tmp_path / "policy"
    argv = frozen_tokens_argv("train-policy", data, tiny_checkpoint, out, tmp_path / "cache")
    run = ["--run.steps", "150", "--run.batch_size", "64", "--run.val_every", "0", "--optim.warmup_steps", "10"]
    code = main([*argv, *run, "--run.threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = __import__("json").loads((out / "summary.json").read_text())
    validation = summary["validation"]
    assert validation["l1"] < 0.8 * validation["zero_action_l1"], validation  # it learned where the goal lies
    model = load_world_model(out / "model.pt", device="cpu")
    original = load_world_model(tiny_checkpoint, device="cpu")
    assert model.can_propose and not original.can_propose
    # The training frames' token statistics come with it, from the same cache (issue 29 part 6).
    assert model.ood_threshold is not None and original.ood_threshold is None and "out-of-distribution" in printed
    for a, b in zip(model.predictor.state_dict().values(), original.predictor.state_dict().values()):
        assert torch.equal(a, b)  # the world model itself is unchanged
    tokens = model.encode_frames(np.zeros((1, 32, 32, 3), dtype=np.uint8))
    assert model.propose(tokens, torch.zeros(1, 1, 7), tokens[0, -1]).shape == (2, 7)

    # Strict: a policy whose weights do not fit is refused, naming the file and the entry.
    stored = torch.load(out / "model.pt", weights_only=True)
    stored["goal_policy"].pop("token_proj.weight")
    broken = tmp_path / "broken.pt"
    torch.save(stored, broken)
    with pytest.raises(CheckpointError, match=r"(?s)broken.pt \[goal_policy\].*missing: token_proj.weight"):
        load_world_model(broken, device="cpu")
    # A run into the same folder is refused without --resume / --overwrite, in one line.
    code = main(argv)
    assert code == 2 and "--overwrite" in capsys.readouterr().err


def test_the_gripper_is_predicted_as_closedness_and_executed_as_a_delta():
    """A demonstration closes the gripper in one step of many: as a delta its median is 0 and an L1 fit
    never closes; as closedness it is a step. forward() turns the predicted closedness into deltas."""
    policy = GoalConditionedPolicy(GoalPolicyConfig(encoder_dim=8, tokens_per_frame=4, chunk=3))
    with torch.no_grad():
        policy.head.weight.zero_()
        policy.head.bias.zero_()
        policy.head.bias.view(3, 7)[:, 6] = torch.tensor(
            [0.4, 1.0, 1.7]
        )  # closedness after each step (1.7 clamps to 1)
    tokens = torch.zeros(2, 4, 8)
    states = torch.zeros(2, 7)
    states[1, 6] = 1.0
    actions = policy(tokens, states, tokens)
    assert actions[0, :, 6].tolist() == pytest.approx([0.4, 0.6, 0.0])
    assert actions[1, :, 6].tolist() == pytest.approx([-0.6, 0.6, 0.0])
    # The training targets say the same: closedness after each step, from the recorded states.
    model = AnalyticWorldModel()
    cache = analytic_cache(model, episodes=1, seed=0)
    cache.states[8:, 6] = 1.0  # the demonstration closes between frames 7 and 8
    samples = HindsightSamples(cache, [0], tubelet=2, chunk=3)
    assert samples.targets[4, :, 6].tolist() == [0.0, 1.0, 1.0]  # from frame 4: frames 6, 8, 10
    assert samples.actions(torch.tensor([4]), torch.tensor([15]))[0, :, 6].tolist() == [0.0, 1.0, 0.0]


def test_ctrl_c_during_train_policy_saves_its_state_and_resume_writes_the_model(tmp_path, tiny_checkpoint):
    """A real SIGINT to `jepa-mpc train-policy`: exit 130 with the step it reached saved and no model.pt;
    `--resume true` finishes the run and writes the world model with its policy."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from worldmodel import load_world_model
    from worldmodel.training.episodes import save_episodes_npz

    data = tmp_path / "squares.npz"
    save_episodes_npz(data, square_demonstrations(20, 12, seed=0), fps=4)
    out = tmp_path / "policy"
    # 500 steps of ~13 ms (one idle core; longer on a loaded one): the Ctrl-C, sent after 5 steps, has seconds
    # to land mid-run, and the resume trains 500 steps, not 1500.
    steps = 500
    command = [
        sys.executable,
        "-m",
        "jepa_mpc",
        *frozen_tokens_argv("train-policy", data, tiny_checkpoint, out, tmp_path / "cache"),
        "--run.steps",
        str(steps),
        "--run.batch_size",
        "16",
        "--run.save_every",
        "0",
        "--optim.warmup_steps",
        "10",
        "--run.threads",
        "1",
    ]
    process = subprocess.Popen(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    csv_file = out / "train.csv"
    try:
        deadline = time.monotonic() + 120
        while not (csv_file.is_file() and len(csv_file.read_text().splitlines()) > 5):  # header + 5 steps
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no training step within 120 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    state = torch.load(out / "train_state.pt", weights_only=True)
    assert 5 <= state["step"] < steps and not (out / "model.pt").exists()

    resumed = subprocess.run(
        [*command, "--resume", "true"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_world_model(out / "model.pt", device="cpu").can_propose
