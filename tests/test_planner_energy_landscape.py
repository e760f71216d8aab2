"""`jepa-mpc energy`: the energy grid (analytic model, known minimum) and the CLI on a real checkpoint."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from jepa_mpc.cli import main as jepa_mpc, run_command
from jepa_mpc.energy_landscape import energy_grid
from planner.analytic import AnalyticWorldModel


def test_grid_minimum_is_the_true_displacement():
    model = AnalyticWorldModel()
    start = torch.tensor([0.45, -0.05, 0.30, 3.10, 0.10, -0.20, 0.0])
    goal = start.clone()
    goal[:3] += torch.tensor([0.025, -0.05, 0.025])  # on the grid below
    axis = np.linspace(-0.075, 0.075, 7)  # step 0.025
    dz = np.array([-0.025, 0.0, 0.025])
    energies = energy_grid(
        model,
        model.tokens_for_states(start)[None, None],
        start[None, None],
        model.tokens_for_states(goal),
        axis,
        axis,
        dz,
        batch_size=40,
        progress=False,
    )
    assert energies.shape == (3, 7, 7)
    z, y, x = np.unravel_index(np.argmin(energies), energies.shape)
    assert (dz[z], axis[y], axis[x]) == pytest.approx((0.025, -0.05, 0.025))
    assert energies.min() < 1e-5


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_world_model):
    from worldmodel import save_world_model_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_world_model_checkpoint(path, tiny_world_model.config, tiny_world_model.encoder, tiny_world_model.predictor)
    return path


def test_cli_writes_png_grid_and_summary(tmp_path, tiny_checkpoint, fixtures_dir):
    out = tmp_path / "landscape.png"
    code = jepa_mpc(
        [  # through the registered sub-command
            "energy",
            "--checkpoint",
            str(tiny_checkpoint),
            "--frames",
            str(fixtures_dir / "franka_example_traj.npz"),
            "--points",
            "5",
            "--dz",
            "0",
            "0.08",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = np.load(out.with_suffix(".npy"))
    summary = json.loads(out.with_suffix(".json").read_text())
    assert grid.shape == (2, 5, 5) and np.isfinite(grid).all()
    with np.load(fixtures_dir / "franka_example_traj.npz") as data:
        states = data["states"][0]
    np.testing.assert_allclose(summary["true_displacement"], states[-1, :3] - states[0, :3], atol=1e-6)
    # The default range widens to show the true displacement (0.092 m in x for this trajectory).
    assert summary["dx"][-1] >= np.abs(summary["true_displacement"]).max()
    assert summary["minimum"]["energy"] == pytest.approx(float(grid.min()))


def test_cli_rejects_bad_frames_with_a_clear_error(tmp_path, tiny_checkpoint):
    bad = tmp_path / "bad.npz"
    np.savez(bad, observations=np.zeros((1, 2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="states"):
        run_command("energy", ["--checkpoint", str(tiny_checkpoint), "--frames", str(bad), "--device", "cpu"])


def test_cli_says_a_directory_given_for_the_goal_frame_is_a_directory(tmp_path, tiny_checkpoint):
    """Issue 29 part 8: a directory was reported as "does not exist"."""
    current = tmp_path / "current.png"
    current.write_bytes(b"")  # never read: the goal's path is refused first
    (tmp_path / "goals").mkdir()
    with pytest.raises(
        ValueError, match=f"^--frames: {re.escape(str(tmp_path / 'goals'))} is a directory; --frames takes files"
    ):
        run_command(
            "energy",
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--frames",
                str(current),
                str(tmp_path / "goals"),
                "--state",
                "0.5",
                "0",
                "0.2",
                "3.14",
                "0",
                "0",
                "0",
                "--device",
                "cpu",
            ],
        )


def test_cli_rejects_mismatched_states(tmp_path, tiny_checkpoint):
    bad = tmp_path / "bad.npz"
    np.savez(bad, observations=np.zeros((1, 2, 8, 8, 3), np.uint8), states=np.zeros((1, 3, 7), np.float32))
    with pytest.raises(ValueError, match=r"\[1, T, 7\]"):
        run_command("energy", ["--checkpoint", str(tiny_checkpoint), "--frames", str(bad), "--device", "cpu"])
