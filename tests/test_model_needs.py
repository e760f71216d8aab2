"""A checkpoint states what its model needs to see; eval, demo and collect take it from there, refuse a flag that
contradicts it in one line, and keep their former defaults for a checkpoint that states nothing."""

from __future__ import annotations

import numpy as np
import torch

from jepa_mpc.cli import main as cli_main, parse_command_config
from jepa_mpc_dataset import LeRobotDataset
from planner.presets import CPU_PRESET
from worldmodel import PredictorConfig, WorldModelConfig, build_world_model, encoder_preset
from worldmodel.checkpoint import DEFAULT_CHECKPOINT
from worldmodel.model_needs import model_needs, save_planner_preset


def test_eval_takes_the_image_size_rate_and_planner_preset_from_the_model(tiny_checkpoint, tmp_path):
    needs = model_needs(tiny_checkpoint)
    assert (needs.image_size, needs.views, needs.control_hz, needs.planner) == (32, 1, 2.0, None)
    config = parse_command_config("eval", ["--task", "push", "--checkpoint", tiny_checkpoint])
    assert (config.sim.image_size, config.sim.control_hz) == (32, 2.0)
    assert {key: getattr(config.planner, key) for key in CPU_PRESET} == CPU_PRESET
    # a recorded planner preset is the evaluation's budget; the task's settings still go over it
    recorded = tmp_path / "with_preset.pt"
    save_planner_preset(tiny_checkpoint, {"samples": 16, "iterations": 2, "topk": 4}, recorded)
    config = parse_command_config("eval", ["--task", "push", "--checkpoint", str(recorded)])
    assert (config.planner.samples, config.planner.iterations, config.planner.topk) == (16, 2, 4)
    assert config.planner.energy == "terminal+intermediate"


def test_a_flag_that_contradicts_the_model_is_one_line_naming_both_values(tiny_checkpoint, tmp_path, capsys):
    argv = ["eval", "--task", "reach", "--episodes", "1", "--checkpoint", tiny_checkpoint, "--device", "cpu"]
    assert cli_main([*argv, "--out", str(tmp_path / "eval"), "--sim.image_size", "48"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--sim.image_size 48 contradicts the model {tiny_checkpoint}, which needs 32 px images" in line
    assert "pass 32" in line
    collect = ["collect", "--task", "reach", "--episodes", "1", "--out", str(tmp_path / "data")]
    assert cli_main([*collect, "--for_model", tiny_checkpoint, "--sim.image_size", "64"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--sim.image_size 64 contradicts the model {tiny_checkpoint}, which needs 32 px images" in line
    assert not (tmp_path / "data").exists()


def test_collect_for_model_renders_what_the_model_needs(tiny_checkpoint, tmp_path):
    out = tmp_path / "reach"
    assert (
        cli_main(["collect", "--task", "reach", "--episodes", "1", "--out", str(out), "--for_model", tiny_checkpoint])
        == 0
    )
    dataset = LeRobotDataset(out)
    episode = dataset.episode(0)
    assert dataset.fps == 4
    assert {frames.shape[1:] for frames in episode.frames.values()} == {(32, 32, 3)}
    # without --for_model: the shipped default model's needs (64 px, 4 fps), which --sim flags may change
    config = parse_command_config("collect", ["--task", "reach", "--episodes", "1", "--out", str(out)])
    assert (config.sim.image_size, config.sim.control_hz) == (64, 4.0)
    config = parse_command_config(
        "collect", ["--task", "reach", "--episodes", "1", "--out", "x", "--sim.image_size", "96"]
    )
    assert config.sim.image_size == 96


def test_a_checkpoint_without_the_record_keeps_todays_defaults(tmp_path):
    """A released V-JEPA 2-AC layout states no image size and no planner: the evaluation renders 64 px and
    plans with the CPU preset, as it did before checkpoints stated them."""
    encoder = encoder_preset("vit_micro", img_size=32)
    config = WorldModelConfig(
        encoder=encoder, predictor=PredictorConfig(img_size=32, encoder_dim=encoder.dim, dim=32, depth=1)
    )
    model = build_world_model(config, seed=0)
    released = tmp_path / "released_ac.pt"
    torch.save({"encoder": model.encoder.state_dict(), "predictor": model.predictor.state_dict()}, released)
    needs = model_needs(released)
    assert (needs.image_size, needs.views, needs.step_seconds, needs.cameras, needs.planner) == (
        None,
        1,
        0.5,
        None,
        None,
    )
    config = parse_command_config("eval", ["--task", "reach", "--checkpoint", str(released)])
    assert (config.sim.image_size, config.sim.control_hz) == (64, 2.0)
    assert {key: getattr(config.planner, key) for key in CPU_PRESET} == CPU_PRESET
    # and any camera size stays allowed for it (resized to the loader's input, as before)
    assert parse_command_config("eval", ["--checkpoint", str(released), "--sim.image_size", "96"]).sim.image_size == 96


def test_the_shipped_model_states_its_cameras_and_keeps_its_evaluation():
    needs = model_needs(DEFAULT_CHECKPOINT)
    assert (needs.image_size, needs.views, needs.frame_rate_hz) == (64, 2, 4.0)
    assert needs.cameras == ("observation.images.exterior_1_left", "observation.images.wrist_left")
    config = parse_command_config("eval", ["--task", "grasp"])
    assert (config.sim.image_size, config.sim.control_hz) == (64, 2.0)
    assert (config.planner.samples, config.planner.iterations, config.planner.topk) == (128, 6, 12)
    assert np.isclose(needs.step_seconds, 0.5)
