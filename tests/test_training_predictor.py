"""Post-training the predictor: it learns, resumes bit for bit, runs under DDP and on DROID, rejects bad data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import process_helpers
from command_helpers import SHORT_TRAIN_RUN, SMALL_PREDICTOR, torchrun, train_argv
from worldmodel import load_world_model
from worldmodel.config import EncoderConfig
from worldmodel.encoder import VideoEncoder, init_vit_weights
from worldmodel.training.config import DataConfig, OptimConfig, PredictorRecipe, RunConfig, TrainPredictorConfig
from worldmodel.training.encoder_checkpoint import save_encoder_checkpoint
from worldmodel.training.episodes import (
    EpisodeError,
    InMemoryEpisodes,
    LeRobotEpisodes,
    SampledEpisode,
    save_episodes_npz,
)
from worldmodel.training.metrics import read_csv_rows
from worldmodel.training.synthetic import moving_square_episodes
from worldmodel.training.train_predictor import train_predictor

FIXTURES = Path(__file__).parent / "fixtures"
DROID = FIXTURES / "lerobot_droid_mini"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def squares() -> InMemoryEpisodes:
    return InMemoryEpisodes(moving_square_episodes(40, 24, img_size=32, seed=0, step_size=0.08), fps=4, sample_fps=4)


def tiny_config(tmp_path: Path, steps: int, lr: float = 2e-2, **run) -> TrainPredictorConfig:
    return TrainPredictorConfig(
        data=DataConfig(cache_dir=str(tmp_path / "cache"), val_fraction=0.2),
        predictor=PredictorRecipe(dim=48, depth=2, num_heads=2),
        optim=OptimConfig(
            lr=lr, start_lr=lr / 10, warmup_steps=min(10, steps - 1), weight_decay=0.01, final_weight_decay=0.01
        ),
        run=RunConfig(steps=steps, batch_size=32, val_clips=64, **{"val_every": 0, "save_every": 0, **run}),
    )


def test_predictor_beats_no_motion_baseline(tmp_path, squares, encoder_path):
    summary = train_predictor(tiny_config(tmp_path, steps=300), squares, encoder_path, tmp_path / "run")
    v = summary.validation
    assert v is not None and v.clips > 0
    # Measured: teacher forcing / no-motion = 0.68 after 300 steps (docs/training.md).
    assert v.teacher_forcing < 0.8 * v.no_motion, summary.text()
    rows = read_csv_rows(tmp_path / "run" / "train.csv")
    assert len(rows) == 300 and np.mean([r["loss"] for r in rows[-20:]]) < 0.6 * np.mean([r["loss"] for r in rows[:10]])
    # The planner's file loads and predicts with the trained weights.
    model = load_world_model(tmp_path / "run" / "model.pt", device="cpu")
    assert model.config.predictor.dim == 48 and model.config.frame_rate_hz == 4.0
    tokens = model.encode_frames(squares.episodes[0].frames[:1])
    out = model.rollout(tokens, torch.as_tensor(squares.episodes[0].states[None, :1]), torch.zeros(3, 2, 7))
    assert out.shape == (3, 2, 4, 32) and torch.isfinite(out).all()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 300


def test_resume_continues_bit_for_bit(tmp_path, squares, encoder_path):
    config = tiny_config(tmp_path, steps=24, val_every=8, save_every=5)
    train_predictor(config, squares, encoder_path, tmp_path / "whole")
    first = train_predictor(config, squares, encoder_path, tmp_path / "split", stop_at=13)
    assert first.steps == 13 and not (tmp_path / "split" / "model.pt").exists()
    second = train_predictor(config, squares, encoder_path, tmp_path / "split", resume=True)
    assert second.start_step == 13 and not second.cache_built

    whole = read_csv_rows(tmp_path / "whole" / "train.csv")
    split = read_csv_rows(tmp_path / "split" / "train.csv")
    assert [r["step"] for r in split] == list(range(24))
    assert [r["loss"] for r in split] == [r["loss"] for r in whole]  # exact, not approximate
    assert read_csv_rows(tmp_path / "split" / "val.csv") == read_csv_rows(tmp_path / "whole" / "val.csv")
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["predictor"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)["predictor"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    changed = replace(config, optim=replace(config.optim, lr=1e-3))
    with pytest.raises(Exception, match="optim.lr"):
        train_predictor(changed, squares, encoder_path, tmp_path / "split", resume=True)


INTERRUPTED_RUN = """
import sys
from worldmodel.training.config import DataConfig, OptimConfig, PredictorRecipe, RunConfig, TrainPredictorConfig
from worldmodel.training.episodes import NpzEpisodes
from worldmodel.training.train_predictor import train_predictor

data, encoder, out, cache = sys.argv[1:5]
config = TrainPredictorConfig(
    data=DataConfig(cache_dir=cache, val_fraction=0.2),
    predictor=PredictorRecipe(dim=48, depth=2, num_heads=2),
    optim=OptimConfig(lr=2e-2, start_lr=2e-3, warmup_steps=10, weight_decay=0.01, final_weight_decay=0.01),
    run=RunConfig(steps=110, batch_size=32, val_clips=64, val_every=40, save_every=100, threads=1),
)  # 110 steps: the resume goes through the validations (40, 80, 110) and the periodic save (100)
train_predictor(config, NpzEpisodes(data), encoder, out, resume=len(sys.argv) > 5)
"""


def test_ctrl_c_saves_the_current_step_and_resume_finishes_bit_for_bit(tmp_path, squares, encoder_path):
    """A real SIGINT to a training process: it saves the step it reached (not the last periodic save)."""
    data, script = tmp_path / "squares.npz", tmp_path / "run.py"
    save_episodes_npz(data, squares.episodes, fps=4)
    script.write_text(INTERRUPTED_RUN)
    env = {**process_helpers.environment(), "OMP_NUM_THREADS": "1"}
    args = [str(data), str(encoder_path), str(tmp_path / "split"), str(tmp_path / "cache")]
    process = subprocess.Popen(
        [sys.executable, str(script), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    csv_file = tmp_path / "split" / "train.csv"
    try:
        while not (csv_file.is_file() and len(csv_file.read_text().splitlines()) > 5):  # header + 5 steps
            assert process.poll() is None, process.communicate()
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0  # KeyboardInterrupt goes on to the caller (the CLI exits 130)
    state = torch.load(tmp_path / "split" / "train_state.pt", weights_only=True)
    assert 5 <= state["step"] < 100, stderr[-2000:]  # after the steps seen, before the first periodic save (100)
    assert f"saved the training state after step {state['step']} in {tmp_path / 'split' / 'train_state.pt'}" in stderr
    assert "--resume" in stderr and not (tmp_path / "split" / "model.pt").exists()
    assert len(read_csv_rows(csv_file)) == state["step"]

    # The resume and the uninterrupted run side by side, one thread each: the cache is built, both only read it.
    whole_args = [str(data), str(encoder_path), str(tmp_path / "whole"), str(tmp_path / "cache")]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [
        subprocess.Popen([sys.executable, str(script), *args, "resume"], env=env, **pipes),
        subprocess.Popen([sys.executable, str(script), *whole_args], env=env, **pipes),
    ]
    try:
        for run in runs:
            _, stderr = run.communicate(timeout=120)
            assert run.returncode == 0, stderr[-2000:]
    finally:
        for run in runs:
            run.kill()
    whole, split = read_csv_rows(tmp_path / "whole" / "train.csv"), read_csv_rows(csv_file)
    assert [r["step"] for r in split] == list(range(110))
    assert [r["loss"] for r in split] == [r["loss"] for r in whole]
    assert read_csv_rows(tmp_path / "split" / "val.csv") == read_csv_rows(tmp_path / "whole" / "val.csv")
    assert (tmp_path / "split" / "model.pt").is_file()


def test_feature_cache_is_keyed_by_encoder_and_data(tmp_path, squares, encoder_path):
    config = tiny_config(tmp_path, steps=2)
    built = train_predictor(config, squares, encoder_path, tmp_path / "a")
    reused = train_predictor(config, squares, encoder_path, tmp_path / "b")
    assert built.cache_built and not reused.cache_built and built.cache_folder == reused.cache_folder
    # Other weights -> another cache entry.
    torch.manual_seed(1)
    encoder = VideoEncoder(EncoderConfig(img_size=32, patch_size=16, dim=32, depth=1, num_heads=2))
    init_vit_weights(encoder)
    other_encoder = tmp_path / "other.pt"
    save_encoder_checkpoint(other_encoder, encoder.config, encoder)
    other = train_predictor(config, squares, other_encoder, tmp_path / "c")
    assert other.cache_built and other.cache_folder != built.cache_folder
    # Other frames (same shapes) -> another cache entry.
    episodes = [SampledEpisode(e.name, e.frames.copy(), e.states) for e in squares.episodes]
    episodes[3].frames[0, 0, 0, 0] ^= 1
    changed = train_predictor(config, InMemoryEpisodes(episodes, fps=4), encoder_path, tmp_path / "d")
    assert changed.cache_built and changed.cache_folder != built.cache_folder


def test_bad_episodes_fail_naming_them_or_are_skipped_and_counted(tmp_path, squares, encoder_path):
    episodes = list(squares.episodes[:12])
    nan_states = episodes[2].states.copy()
    nan_states[5, 1] = np.nan
    episodes[2] = SampledEpisode("nan_episode", episodes[2].frames, nan_states)
    episodes[4] = SampledEpisode("wrong_shape", episodes[4].frames[:, :, :, :2], episodes[4].states)
    episodes[6] = SampledEpisode("too_short", episodes[6].frames[:5], episodes[6].states[:5])
    source = InMemoryEpisodes(episodes, fps=4)
    config = tiny_config(tmp_path, steps=2)
    with pytest.raises(EpisodeError, match="nan_episode: NaN/inf in the states at sampled step"):
        train_predictor(config, source, encoder_path, tmp_path / "strict")

    lenient = replace(config, data=replace(config.data, bad_episodes="skip"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_predictor(lenient, source, encoder_path, tmp_path / "lenient")
    skipped = {s["name"]: s["reason"] for s in summary.skipped_episodes}
    assert set(skipped) == {"nan_episode", "wrong_shape", "too_short"}
    assert "shorter than one clip" in skipped["too_short"] and "uint8 [T, H, W, 3]" in skipped["wrong_shape"]
    assert summary.train_episodes + summary.val_episodes == 9
    assert any("skipped 3 episode(s)" in str(w.message) for w in caught)
    assert "3 skipped" in summary.text()


@pytest.mark.skipif(not (DROID / "dataset").is_dir(), reason="DROID LeRobot fixture not copied")
def test_trains_on_droid_lerobot_fixture(tmp_path, encoder_path):
    source = LeRobotEpisodes(DROID / "dataset", camera="observation.images.exterior_1_left", sample_fps=4)
    truth = np.load(DROID / "truth.npz")
    for i, index in enumerate(source.indices[:2]):  # our sampling = the reference's 8-frame clip from frame 0
        episode = source.load(i)
        np.testing.assert_allclose(episode.states[0:8:2], truth[f"ep{index}_clip8_states"], atol=1e-6)
        assert episode.frames.shape[1:] == (180, 320, 3)
    config = replace(tiny_config(tmp_path, steps=3), run=RunConfig(steps=3, batch_size=2, val_every=0, save_every=0))
    config = replace(config, optim=replace(config.optim, warmup_steps=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_predictor(config, source, encoder_path, tmp_path / "droid")
    assert [s["name"] for s in summary.skipped_episodes] == [f"2 of {DROID / 'dataset'}"]  # 10 frames < one clip
    assert any("shorter than one clip" in str(w.message) for w in caught)
    assert summary.train_episodes == 1 and summary.val_episodes == 1 and np.isfinite(summary.final_train_loss)
    assert (tmp_path / "droid" / "model.pt").is_file()


def test_two_process_gloo_ddp_cli(tmp_path, squares, encoder_path):
    data = tmp_path / "squares.npz"
    save_episodes_npz(data, squares.episodes, fps=4)
    out = tmp_path / "ddp"
    argv = [
        *train_argv(data, encoder_path, out, tmp_path / "cache"),
        *("--data.val_fraction", "0.2", *SMALL_PREDICTOR),
        *("--optim.lr", "2e-2", "--optim.start_lr", "2e-3", "--optim.warmup_steps", "10"),
        *("--optim.weight_decay", "0.01", "--optim.final_weight_decay", "0.01"),
        *("--run.steps", "300", "--run.batch_size", "16", "--run.val_every", "100", "--run.val_clips", "64"),
        *("--run.threads", "1"),
    ]
    command = torchrun(2, argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 300
    assert "trained steps 0..300 on 2 process(es)" in result.stdout  # rank 0 alone prints the summary
    assert result.stdout.count("trained steps") == 1
    # 2 x 16 clips per step = the single-process test's batch: the same bar against the no-motion baseline.
    v = summary["validation"]
    assert v["teacher_forcing"] < 0.8 * v["no_motion"], result.stdout[-2000:]
    val = read_csv_rows(out / "val.csv")
    assert [r["step"] for r in val] == [100, 200, 300] and val[-1]["loss"] < val[0]["loss"]


@pytest.mark.skipif(not (DROID / "dataset").is_dir(), reason="DROID LeRobot fixture not copied")
def test_missing_video_file_fails_naming_the_episode(tmp_path, encoder_path):
    import shutil

    root = tmp_path / "droid"
    shutil.copytree(DROID / "dataset", root)
    for video in (root / "videos" / "observation.images.exterior_1_left").rglob("*.mp4"):
        video.unlink()
    source = LeRobotEpisodes(root, camera="observation.images.exterior_1_left", sample_fps=4)
    config = replace(tiny_config(tmp_path, steps=3), run=RunConfig(steps=3, batch_size=2, val_every=0, save_every=0))
    config = replace(config, optim=replace(config.optim, warmup_steps=1))
    with pytest.raises(EpisodeError, match=r"episode 0 of .*droid"):
        train_predictor(config, source, encoder_path, tmp_path / "run")


def test_trains_on_a_sim_format_lerobot_dataset(tmp_path, encoder_path):
    from jepa_mpc_dataset import LeRobotDatasetWriter

    writer = LeRobotDatasetWriter(
        tmp_path / "sim", fps=8, cameras={"exterior_image_1_left": (32, 32)}, record_joints=False
    )
    for e, episode in enumerate(moving_square_episodes(3, 24, img_size=32, seed=3)):
        actions = np.zeros_like(episode.states)
        writer.write_episode(e, {"exterior_image_1_left": episode.frames}, episode.states, actions, "push", True, e)
    writer.finalize()
    source = LeRobotEpisodes(tmp_path / "sim", camera="exterior_image_1_left", sample_fps=4)
    episode = source.load(0)
    assert episode.length == 12  # 24 frames at 8 fps sampled at 4 fps
    np.testing.assert_allclose(
        episode.states, moving_square_episodes(3, 24, img_size=32, seed=3)[0].states[::2], atol=1e-6
    )
    config = replace(tiny_config(tmp_path, steps=3), run=RunConfig(steps=3, batch_size=4, val_every=0, save_every=0))
    config = replace(config, optim=replace(config.optim, warmup_steps=1))
    summary = train_predictor(config, source, encoder_path, tmp_path / "run")
    assert summary.train_episodes == 2 and summary.val_episodes == 1 and not summary.skipped_episodes
    assert summary.validation is not None and np.isfinite(summary.validation.loss)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: TrainPredictorConfig(data=DataConfig(clip_steps=2)),
            "loss.rollout_steps 2 needs data.clip_steps >= 3",
        ),
        (lambda: TrainPredictorConfig(run=RunConfig(steps=50)), "optim.warmup_steps 100 must be < run.steps 50"),
        (lambda: DataConfig(bad_episodes="ignore"), "data.bad_episodes must be 'error' or 'skip', got 'ignore'"),
        (lambda: PredictorRecipe(dim=50, num_heads=4), "predictor.dim 50 is not divisible by num_heads 4"),
        (lambda: OptimConfig(betas=(0.9, 1.5)), r"optim.betas must be two values in \[0, 1\)"),
    ],
)
def test_config_errors_name_the_bad_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_training_sizes_are_the_model_configs_own_fields_with_training_defaults():
    """One definition of each size (issue 32): the training sections add only their own choices to the fields
    the model configs are built on, and the training defaults are stated once, by the commands' configs."""
    from dataclasses import fields

    from jepa_mpc_foundation.configuration import dataclass_to_dict, from_dict
    from worldmodel.checkpoint import DEFAULT_CHECKPOINT
    from worldmodel.config import PredictorConfig, TransformerSize, VideoPatching, WorldModelConfig, encoder_preset
    from worldmodel.training.config import EncoderRecipe, PretrainConfig

    def names(cls: type) -> list[str]:
        return [f.name for f in fields(cls)]

    assert names(PredictorRecipe) == names(TransformerSize) + ["init"] and issubclass(PredictorConfig, TransformerSize)
    assert names(EncoderRecipe) == names(VideoPatching) + ["preset"] and issubclass(EncoderConfig, VideoPatching)
    assert TrainPredictorConfig().predictor == PredictorRecipe(dim=192, depth=6, num_heads=4)
    assert PretrainConfig().encoder == EncoderRecipe(preset="vit_tiny", img_size=64)
    encoder = EncoderRecipe(preset="vit_micro", img_size=32, patch_size=8).encoder_config()
    assert encoder == encoder_preset("vit_micro", img_size=32, patch_size=8)
    assert PredictorRecipe(dim=48, depth=2, num_heads=2).predictor_config(encoder, views=2) == PredictorConfig(
        img_size=32, patch_size=8, encoder_dim=128, dim=48, depth=2, num_heads=2, views=2
    )
    # The shipped model's stored configs (the model's and its training recipe) read back unchanged.
    stored = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)
    assert dataclass_to_dict(from_dict(WorldModelConfig, stored["config"], "model.pt")) == stored["config"]
    assert (
        dataclass_to_dict(from_dict(TrainPredictorConfig, stored["train_config"], "model.pt")) == stored["train_config"]
    )


# --------------------------------------------- run folders: resume only what fits, never overwrite silently


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, squares, encoder_path) -> tuple[Path, TrainPredictorConfig]:
    """A run of 4 steps stopped after step 2 (its train_state.pt), and its config; the feature cache is shared."""
    root = tmp_path_factory.mktemp("stopped")
    config = tiny_config(root, steps=4)
    summary = train_predictor(config, squares, encoder_path, root / "run", stop_at=2)
    assert summary.steps == 2 and summary.total_steps == 4
    return root / "run", config


def edit_state(run: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``run`` whose train_state.pt went through ``edit(state)``."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = torch.load(copy / "train_state.pt", weights_only=True)
    edit(state)
    torch.save(state, copy / "train_state.pt")
    return copy


def _first_key(state: dict) -> str:
    return next(iter(state["modules"]["predictor"]))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s: s["modules"]["predictor"].pop(_first_key(s)),
            r"module 'predictor': missing keys predictor_embed\.weight",
        ),
        (
            lambda s: s["modules"]["predictor"].__setitem__("extra.weight", torch.zeros(2)),
            r"unexpected keys extra\.weight",
        ),
        (
            lambda s: s["modules"]["predictor"].__setitem__(_first_key(s), torch.zeros(3, 3)),
            r"other shapes: predictor_embed\.weight \[3, 3\] \(this run: \[48, 32\]\)",
        ),
        (
            lambda s: s["modules"].__setitem__("encoder", {}),
            r"'modules' holds \['encoder', 'predictor'\], this run trains \['predictor'\]",
        ),
        (
            lambda s: s["optimizer"]["param_groups"].append(dict(s["optimizer"]["param_groups"][0])),
            r"has 3 parameter group\(s\), this run's optimizer 2",
        ),
        (
            lambda s: s["optimizer"]["state"][0].__setitem__("exp_avg", torch.zeros(5)),
            r"the optimizer's exp_avg of parameter 0 is \[5\], the parameter \[48, 32\]",
        ),
        (
            lambda s: s["rng"].__setitem__("torch", torch.zeros(0, dtype=torch.uint8)),
            r"rng entry 'torch' is not a torch RNG state",
        ),
        (lambda s: s["rng"].__setitem__("python", (3, (1, 2), None)), r"rng entry 'python' is not a python RNG state"),
        (lambda s: s["rng"].pop("numpy"), r"'rng' lacks \['numpy'\]"),
        (lambda s: s.__setitem__("step", "2"), r"field 'step' is '2', not a whole number in 0\.\.4 \(run\.steps\)"),
        (lambda s: s.__setitem__("step", 10**12), r"field 'step' is 1000000000000, not a whole number in 0\.\.4"),
        (lambda s: s.__setitem__("step", -1), r"field 'step' is -1, not a whole number"),
    ],
    ids=[
        "missing-key",
        "extra-key",
        "shape",
        "modules",
        "param-groups",
        "exp_avg",
        "torch-rng",
        "python-rng",
        "numpy-rng",
        "step-str",
        "step-too-large",
        "step-negative",
    ],
)
def test_resume_refuses_a_state_that_does_not_fit_in_one_line(
    stopped_run, tmp_path, squares, encoder_path, edit, message
):
    from worldmodel import CheckpointError

    run, config = stopped_run
    copy = edit_state(run, tmp_path, edit)
    before = (copy / "train_state.pt").read_bytes()
    with pytest.raises(CheckpointError, match=message) as excinfo:
        train_predictor(config, squares, encoder_path, copy, resume=True)
    text = str(excinfo.value)
    assert "\n" not in text and str(copy / "train_state.pt") in text
    assert "start a new run with another --out, or resume with the version of jepa_mpc that wrote it" in text
    assert (copy / "train_state.pt").read_bytes() == before and not (copy / "model.pt").exists()


def test_a_finished_run_is_not_resumed_or_overwritten(tmp_path, squares, encoder_path, capsys):
    from jepa_mpc.cli import main as cli_main
    from jepa_mpc_foundation.configuration import ConfigError
    from worldmodel.training.train_state import RunFinished

    config = tiny_config(tmp_path, steps=3)
    train_predictor(config, squares, encoder_path, tmp_path / "run")
    files = {
        name: (tmp_path / "run" / name).read_bytes()
        for name in ("model.pt", "train_state.pt", "summary.json", "train.csv")
    }
    with pytest.raises(
        RunFinished,
        match=r"the run in .*run already finished \(step 3 of 3; .*model\.pt is its result\): nothing to train",
    ):
        train_predictor(config, squares, encoder_path, tmp_path / "run", resume=True)
    # Without --resume: refused, naming the run and both ways on.
    with pytest.raises(
        ConfigError,
        match=r"run holds a run \(step 3 of 3; train_state\.pt, model\.pt\): resume it with --resume true, "
        r"or choose another --out \(or replace it with --overwrite true\)",
    ):
        train_predictor(config, squares, encoder_path, tmp_path / "run")
    assert files == {name: (tmp_path / "run" / name).read_bytes() for name in files}

    # The command: exit 0 and one line for the finished run; exit 2 and one line for a fresh run into it.
    data = tmp_path / "squares.npz"
    save_episodes_npz(data, squares.episodes, fps=4)
    argv = train_argv(data, encoder_path, tmp_path / "cli", tmp_path / "cache")
    argv += ["--data.val_fraction", "0.2", *SHORT_TRAIN_RUN]
    assert cli_main(argv) == 0
    capsys.readouterr()
    assert cli_main(argv + ["--resume", "true"]) == 0
    out, err = capsys.readouterr()
    assert out.strip().count("\n") == 0 and "already finished (step 3 of 3" in out and "trained steps" not in out
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "\n" not in err and "holds a run (step 3 of 3; train_state.pt, model.pt): resume it with --resume true" in err
    )
    summary = (tmp_path / "cli" / "summary.json").read_text()
    assert "NaN" not in summary and json.loads(summary)["steps"] == 3


def test_overwrite_replaces_an_earlier_run(tmp_path, squares, encoder_path):
    config = tiny_config(tmp_path, steps=3)
    train_predictor(config, squares, encoder_path, tmp_path / "run")
    stopped = train_predictor(
        replace(config, run=replace(config.run, steps=4)),
        squares,
        encoder_path,
        tmp_path / "run",
        stop_at=2,
        overwrite=True,
    )
    assert stopped.start_step == 0 and stopped.steps == 2
    assert not (
        tmp_path / "run" / "model.pt"
    ).exists()  # the earlier run's model is not left beside the new run's state
    assert torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)["step"] == 2


def test_stop_at_reports_the_state_it_wrote_not_a_model(stopped_run, tmp_path, squares, encoder_path):
    from jepa_mpc_foundation.configuration import ConfigError

    run, config = stopped_run
    text = train_predictor(config, squares, encoder_path, tmp_path / "again", stop_at=1).text()
    assert (
        f"stopped at step 1 of 4: state in {tmp_path / 'again' / 'train_state.pt'}; resume with --resume true" in text
    )
    assert "model:" not in text and not (tmp_path / "again" / "model.pt").exists()
    copy = edit_state(run, tmp_path / "copy", lambda state: None)
    with pytest.raises(
        ConfigError, match=r"--stop_at 2 is not after the step the run starts from \(the saved state is at step 2\)"
    ):
        train_predictor(config, squares, encoder_path, copy, resume=True, stop_at=2)


def run_fields(out: Path) -> dict:
    """The fields every run summary has (:class:`worldmodel.training.run_summary.RunSummary`): a run stopped early."""
    return dict(
        out=str(out),
        rank=0,
        steps=12,
        start_step=4,
        world_size=2,
        train_seconds=1.0,
        clips_per_second=2.0,
        final_train_loss=0.5,
        train_episodes=3,
        val_episodes=1,
        metrics="csv",
        total_steps=30,
    )


def test_train_and_pretrain_summaries_report_in_one_frame(tmp_path):
    """The two run summaries share their fields, report lines and summary.json writing (issue 32)."""
    from worldmodel.training.pretrain_encoder import PretrainSummary
    from worldmodel.training.run_summary import RunSummary
    from worldmodel.training.train_predictor import TrainSummary

    run = run_fields(tmp_path)
    stopped = [
        TrainSummary(**run, validation=None, train_clips=9, cache_folder="cache"),
        PretrainSummary(**run, val_loss=0.25, features_at_init=None, features_final=None),
    ]
    for summary, verb, product in zip(stopped, ("trained", "pretrained"), ("model.pt", "encoder.pt")):
        assert isinstance(summary, RunSummary)
        lines = summary.text().splitlines()
        assert lines[0] == f"{verb} steps 4..12 on 2 process(es) in 1.0 s (2.0 clips/s); final train loss 0.5000"
        assert lines[-2:] == [
            "episodes: 3 train, 1 held out, 0 skipped",
            f"stopped at step 12 of 30: state in {tmp_path / 'train_state.pt'}; resume with "
            f"--resume true ({product} is written after the last step); metrics (csv) and "
            f"summary in {tmp_path}",
        ]
        finished = replace(summary, steps=30)
        assert finished.text().splitlines()[-1].startswith(f"{product[:-3]}: {tmp_path / product}")
        finished.write()
        assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 30


def test_the_policy_summary_is_a_run_summary_whose_json_keeps_its_keys(tmp_path):
    """train-policy's summary has every run summary's fields (issue 32) and reports in its own words; its
    summary.json still holds the keys of the files written before, as the shipped model's
    policy_train_summary.json, where the rate of its samples is samples_per_second."""
    from worldmodel.checkpoint import DEFAULT_CHECKPOINT
    from worldmodel.training.run_summary import RunSummary
    from worldmodel.training.train_goal_policy import PolicyTrainSummary, PolicyValidation

    validation = PolicyValidation(l1=0.4, zero_action_l1=0.5, translation_error_m=0.02, frames=12)
    summary = PolicyTrainSummary(**run_fields(tmp_path), validation=validation, cache_folder="cache")
    assert isinstance(summary, RunSummary)
    assert summary.text().splitlines()[0] == (
        "trained the goal policy, steps 4..12 in 1.0 s (2 samples/s), final train loss 0.5000"
    )
    summary.write()
    written = json.loads((tmp_path / "summary.json").read_text())
    shipped = json.loads((DEFAULT_CHECKPOINT.parent / "policy_train_summary.json").read_text())
    assert set(shipped) <= set(written) and written["samples_per_second"] == 2.0
    assert written["validation"] == {"l1": 0.4, "zero_action_l1": 0.5, "translation_error_m": 0.02, "frames": 12}


def test_the_training_commands_share_their_data_and_run_folder_flags():
    from jepa_mpc.training_commands import (
        PretrainCommandConfig,
        StoppableRunArguments,
        TrainCommandConfig,
        TrainPolicyCommandConfig,
    )
    from jepa_mpc_foundation.configuration import leaf_fields

    shared = {leaf.name: leaf for leaf in leaf_fields(StoppableRunArguments)}
    assert set(shared) == {"datasets", "out", "resume", "overwrite", "stop_at"}
    for command, names in (
        (TrainCommandConfig, set(shared)),
        (PretrainCommandConfig, set(shared)),
        (TrainPolicyCommandConfig, set(shared) - {"stop_at"}),
    ):
        leaves = {leaf.name: leaf for leaf in leaf_fields(command)}
        assert {name: leaves[name] for name in names} == {name: shared[name] for name in names}, command


def test_json_files_never_hold_nan(tmp_path):
    from jepa_mpc_foundation.atomic_files import write_json_atomic

    write_json_atomic(tmp_path / "x.json", {"loss": float("nan"), "values": [1.0, float("inf")], "n": 3})
    assert json.loads((tmp_path / "x.json").read_text()) == {"loss": None, "values": [1.0, None], "n": 3}


def test_no_usable_episode_says_why_and_what_to_do(tmp_path, squares, encoder_path):
    short = InMemoryEpisodes([SampledEpisode(e.name, e.frames[:5], e.states[:5]) for e in squares.episodes[:3]], fps=4)
    with pytest.raises(
        ValueError,
        match=r"no usable episode in the data \(3 skipped: .*shorter than one clip.*\): record longer "
        r"episodes or sample shorter clips \(--data\.clip_steps; one clip needs 7 sampled frames\)",
    ):
        train_predictor(tiny_config(tmp_path, steps=2), short, encoder_path, tmp_path / "run")
