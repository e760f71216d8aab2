"""Goals in words: the language-goal predictor learns an instruction -> goal mapping, refuses what it cannot
ground, is stored strictly with the model, and the planner plans toward its goal."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from command_helpers import frozen_tokens_argv
from worldmodel.config import LanguageGoalConfig
from worldmodel.language_goal import InstructionError, LanguageGoalPredictor, instruction_words

# Tiny models trained in this process: with two shared cores a second torch thread stalls each small op.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Where each instruction's square ends (x, y in m, the synthetic dataset's image plane) and its colour (gripper value).
SIDES = {"left": (-0.22, 0.0), "right": (0.22, 0.0), "top": (0.0, -0.22), "bottom": (0.0, 0.22)}
COLOURS = {"yellow": 0.0, "cyan": 1.0}
OBJECT_WORDS = ("yellow", "cyan", "left", "right", "top", "bottom")


def instructed_squares(episodes: int, length: int, seed: int, words_in_scene: bool = False):
    """A yellow or cyan square driven to the side its instruction names ("move the cyan square to the left"),
    from a random start: which end frame is the goal follows from the words and the frame now alone.
    ``words_in_scene``: each episode says what is in view (its square's colour and the four sides)."""
    from worldmodel.training.episodes import SampledEpisode
    from worldmodel.training.synthetic import render_square

    rng = np.random.default_rng(seed)
    out = []
    for e in range(episodes):
        colour, side = list(COLOURS)[e % 2], list(SIDES)[(e // 2) % 4]
        start = np.zeros(7, dtype=np.float32)
        start[:2], start[2], start[6] = rng.uniform(-0.12, 0.12, 2), 0.2, COLOURS[colour]
        end = start.copy()
        end[:2] = SIDES[side]
        states = np.stack([start + (end - start) * t / (length - 1) for t in range(length)]).astype(np.float32)
        frames = np.stack([render_square(s, 32) for s in states])
        scene = (colour, *SIDES) if words_in_scene else ()
        out.append(SampledEpisode(f"square_{e}", frames, states, f"move the {colour} square to the {side}", scene))
    return out


def test_instruction_words_and_word_ids():
    assert instruction_words("Put the RED cube, please!") == ["put", "the", "red", "cube", "please"]
    predictor = LanguageGoalPredictor(LanguageGoalConfig(vocabulary=("red", "touch"), object_words=("red",)))
    ids = predictor.word_table_ids([predictor.split_words(t) for t in ("touch red", "touch the red cube")])
    assert ids.tolist() == [[3, 2, 0, 0], [3, 1, 2, 1]]  # 0 padding, 1 unknown, vocabulary i -> i + 2


@pytest.mark.parametrize(
    ("instruction", "refusal"),
    [
        ("", "has no words"),
        ("   ", "has no words"),
        ("touch the orange cube", r"names nothing this model knows \('touch', 'the', 'orange', 'cube' unknown"),
        ("red " * 17, "reads at most 16"),
    ],
)
def test_instructions_that_name_nothing_it_knows_are_refused_in_one_line(instruction, refusal):
    predictor = LanguageGoalPredictor(LanguageGoalConfig(vocabulary=("red", "green"), object_words=("red", "green")))
    with pytest.raises(InstructionError, match=refusal) as error:
        predictor.predict_goal(instruction, torch.zeros(32, 128))
    assert "\n" not in str(error.value)


def test_the_predictor_learns_where_an_instruction_leads_and_refuses_an_absent_object(
    tmp_path, tiny_checkpoint, capsys
):
    """Trained by the command on squares driven where their instruction says, each episode saying what is in view:
    from held-out first frames its goal is closer to the true last frame than the frame now and than another
    instruction's goal; an instruction naming the colour the square does not have, or a colour it never read, is
    refused by the match head, one naming the square's colour and another side is not."""
    from jepa_mpc.cli import main
    from worldmodel import load_world_model
    from worldmodel.checkpoint import CheckpointError
    from worldmodel.training.episodes import save_episodes_npz

    data = tmp_path / "squares.npz"
    save_episodes_npz(data, instructed_squares(64, 8, seed=0, words_in_scene=True), fps=4)
    out = tmp_path / "language"
    argv = frozen_tokens_argv("train-language-goal", data, tiny_checkpoint, out, tmp_path / "cache")
    sizes = ["--language.width", "32", "--language.depth", "1", "--language.num_heads", "2", "--language.dropout", "0"]
    run = ["--run.steps", "800", "--run.batch_size", "64", "--run.val_every", "0", "--optim.warmup_steps", "20"]
    words = ["--object_words", *OBJECT_WORDS, "--data.val_fraction", "0.25"]
    code = main([*argv, *sizes, *run, *words, "--run.threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    v = json.loads((out / "summary.json").read_text())["validation"]
    assert v["goal_l1"] < 0.7 * v["copy_l1"], v  # it learned where the square goes
    assert v["goal_l1"] < 0.7 * v["wrong_instruction_l1"], v  # ... from the words, not from the frame alone
    # The own instruction with its colour replaced by the other one (not in view) is refused; another episode's
    # instruction naming the square's colour and another side fits and is not.
    assert v["mismatch_refused"] >= 0.8 and v["present_refused"] <= 0.2, v

    model = load_world_model(out / "model.pt", device="cpu")
    assert model.can_read_goal_text and not load_world_model(tiny_checkpoint, device="cpu").can_read_goal_text
    fresh = instructed_squares(2, 8, seed=5) + instructed_squares(2, 8, seed=6)  # yellow, cyan, yellow, cyan
    refused = {"other colour": 0, "unknown colour": 0}
    for episode in fresh:
        tokens = model.encode_frames(episode.frames[:1])[0, 0]  # [N, D]
        assert model.goal_from_text(episode.task, tokens).shape == tokens.shape  # its own colour: planned toward
        own = "yellow" if "yellow" in episode.task else "cyan"
        for kind, colour in (("other colour", "cyan" if own == "yellow" else "yellow"), ("unknown colour", "orange")):
            try:
                model.goal_from_text(episode.task.replace(own, colour), tokens)
            except InstructionError as refusal:
                assert "does not fit the scene in view" in str(refusal)
                refused[kind] += 1
    assert refused["other colour"] >= 3 and refused["unknown colour"] >= 3, refused  # of 4 frames each

    # Stored strictly: a predictor whose weights do not fit is refused, naming the file and the entry.
    stored = torch.load(out / "model.pt", weights_only=True)
    assert stored["language_goal_config"]["vocabulary"] == sorted(
        {w for e in instructed_squares(64, 8, 0) for w in instruction_words(e.task)}
    )
    stored["language_goal"].pop("match_bias")
    broken = tmp_path / "broken.pt"
    torch.save(stored, broken)
    with pytest.raises(CheckpointError, match=r"(?s)broken.pt \[language_goal\].*missing: match_bias"):
        load_world_model(broken, device="cpu")


def save_tiny_text_model(folder, words):
    """A tiny random BERT and a word-level tokenizer over ``words``, as ``save_pretrained`` writes them (a user's
    local Hugging Face text model, built here: nothing is downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special).save_pretrained(folder)
    torch.manual_seed(0)
    sizes = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    BertModel(BertConfig(vocab_size=len(vocabulary), max_position_embeddings=32, **sizes)).save_pretrained(folder)


def test_a_local_hugging_face_text_model_reads_the_words_and_travels_in_the_checkpoint(
    tmp_path, tiny_checkpoint, capsys
):
    """``--text_model FOLDER``: a frozen tiny BERT reads the instructions, the predictor still learns where each one
    leads, and the checkpoint holds the text model whole (config, tokenizer, weights): it plans with the folder
    gone. A folder that is no model is refused in one line."""
    from jepa_mpc.cli import main
    from worldmodel import load_world_model
    from worldmodel.training.episodes import save_episodes_npz

    text = tmp_path / "text"
    save_tiny_text_model(text, ["move", "the", "square", "to", *OBJECT_WORDS])
    data = tmp_path / "squares.npz"
    save_episodes_npz(data, instructed_squares(64, 8, seed=0), fps=4)
    out = tmp_path / "language"
    argv = frozen_tokens_argv("train-language-goal", data, tiny_checkpoint, out, tmp_path / "cache")
    sizes = ["--language.width", "32", "--language.depth", "1", "--language.num_heads", "2", "--language.dropout", "0"]
    run = ["--run.steps", "400", "--run.batch_size", "64", "--run.val_every", "0", "--optim.warmup_steps", "20"]
    run += ["--optim.lr", "3e-3"]  # half the steps of the word table's test above
    words = ["--object_words", *OBJECT_WORDS, "--data.val_fraction", "0.25", "--text_model", str(text)]
    assert main([*argv, *sizes, *run, *words, "--run.threads", "1"]) == 0, capsys.readouterr().out
    v = json.loads((out / "summary.json").read_text())["validation"]
    assert v["goal_l1"] < 0.75 * v["copy_l1"], v  # measured 0.60 (the word table, these settings: 0.50)
    assert v["goal_l1"] < 0.75 * v["wrong_instruction_l1"], v  # measured 0.65 (0.52)

    stored = torch.load(out / "model.pt", weights_only=True)
    assert stored["language_goal_config"]["text_model"]["model_type"] == "bert"
    assert "tokenizer.json" in stored["language_goal_config"]["text_tokenizer"]
    bert = load_file_weights(text)
    for name, weight in bert.items():  # frozen: the text model's weights are those of the folder
        assert torch.equal(stored["language_goal"][f"text_model.model.{name}"], weight), name
    shutil.rmtree(text)
    model = load_world_model(out / "model.pt", device="cpu")
    episode = instructed_squares(1, 8, seed=5)[0]
    tokens = model.encode_frames(episode.frames[:1])[0, 0]  # [N, D]
    assert model.goal_from_text(episode.task, tokens).shape == tokens.shape
    with pytest.raises(InstructionError, match="names nothing this model knows"):
        model.goal_from_text("move the square", tokens)

    capsys.readouterr()
    assert main([*argv, *words[:-1], str(tmp_path / "nowhere"), *run[:2], "--out", str(tmp_path / "b")]) == 2
    error = capsys.readouterr().err
    assert f"--text_model {tmp_path / 'nowhere'}: no such folder" in error and error.count("\n") == 1, error


def load_file_weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_episodes_without_instructions_and_unused_object_words_are_refused_in_one_line(
    tmp_path, tiny_checkpoint, capsys
):
    from jepa_mpc.cli import main
    from worldmodel.training.episodes import save_episodes_npz

    plain = [e for e in instructed_squares(4, 8, seed=0)]
    for episode in plain:
        episode.task = ""
    save_episodes_npz(tmp_path / "plain.npz", plain, fps=4)
    argv = frozen_tokens_argv("train-language-goal", tmp_path / "plain.npz", tiny_checkpoint, tmp_path / "a", tmp_path)
    assert main([*argv, "--run.steps", "20", "--optim.warmup_steps", "1"]) == 2
    assert "have no task (instruction)" in capsys.readouterr().err

    save_episodes_npz(tmp_path / "told.npz", instructed_squares(4, 8, seed=0), fps=4)
    argv = frozen_tokens_argv("train-language-goal", tmp_path / "told.npz", tiny_checkpoint, tmp_path / "b", tmp_path)
    assert main([*argv, "--object_words", "purple", "--run.steps", "20", "--optim.warmup_steps", "1"]) == 2
    assert "--object_words ['purple'] appear in no instruction" in capsys.readouterr().err


def test_the_planner_plans_toward_the_predicted_goal(tiny_world_model):
    """set_goal_text's goal is the predictor's, and a model without one is told how to get one."""
    from planner.config import PlannerConfig
    from planner.mpc import GoalImageMPC

    config = PlannerConfig(samples=16, iterations=2, topk=4, horizon=1)
    frame = np.zeros((32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="reads no instructions"):
        GoalImageMPC(tiny_world_model, config).set_goal_text("touch the red cube", frame)
    D, N = tiny_world_model.config.encoder.dim, tiny_world_model.config.predictor.tokens_per_frame
    tiny_world_model.language_goal = LanguageGoalPredictor(
        LanguageGoalConfig(
            encoder_dim=D, tokens_per_frame=N, vocabulary=("red", "touch"), object_words=("red",), match_threshold=0.0
        )
    )
    try:
        with torch.no_grad():
            tiny_world_model.language_goal.goal_head.bias.fill_(0.5)  # the goal: the frame's tokens + 0.5
        mpc = GoalImageMPC(tiny_world_model, config)
        mpc.set_goal_text("touch the red cube", frame)
        now = tiny_world_model.encode_frames(frame[None])[0, -1]
        assert torch.allclose(mpc.goal_tokens, now + 0.5, atol=1e-5)
        assert mpc.act(frame, np.zeros(7, dtype=np.float32)).action.shape == (7,)
        with pytest.raises(InstructionError, match="names nothing"):
            mpc.set_goal_text("touch the blue cube", frame)
    finally:
        tiny_world_model.language_goal = None


def test_eval_plans_a_language_task_from_its_words_and_counts_refusals_and_wrong_objects(tmp_path, capsys):
    """``eval --goal text`` plans each episode toward its own instruction; ``--goal_text`` gives one instruction to
    every episode, refused ones are counted (no step taken); a text goal with sub-goals or the oracle is refused."""
    from command_helpers import eval_argv
    from jepa_mpc.cli import main
    from model_helpers import save_tiny_model
    from ros_nodes.run_recording import read_recording

    checkpoint = save_tiny_model(tmp_path / "reader.pt", language_goal=True)
    argv = [*eval_argv(checkpoint, task="lang-touch", episodes=2, max_steps=1, policies=["world_model"])]
    argv += ["--planner.proposal", "none"]  # the tiny model holds no goal policy
    assert main([*argv, "--goal", "text", "--record", "true", "--out", str(tmp_path / "own")]) == 0
    (own,) = json.loads((tmp_path / "own" / "results.json").read_text())["summaries"]
    instructions = [e["instruction"] for e in own["per_episode"]]
    assert all(i.startswith(("touch", "tap", "reach out")) for i in instructions), instructions  # training phrasings
    # each episode's recording holds the instruction it planned toward, at the reset
    for episode in own["per_episode"]:
        recorded = read_recording(tmp_path / "own" / f"lang-touch_world_model_seed{episode['seed']}.mcap")
        assert [(m.decode().data, m.log_time_ns) for m in recorded if m.topic == "/goal_text"] == [
            (episode["instruction"], 0)
        ]
    assert [e["steps"] for e in own["per_episode"]] == [1, 1] and own["refused"] == 0
    assert own["wrong_object"] is not None  # a language task: counted

    capsys.readouterr()
    # One instruction for all that names nothing the model knows: told before any episode, in one line.
    assert main([*argv, "--goal_text", "touch the orange cube", "--out", str(tmp_path / "bad")]) == 2
    assert "names nothing this model knows ('orange' unknown to it)" in capsys.readouterr().err
    # One the model's words know but that fits no scene (the match threshold at 1): every episode refused, counted.
    stored = torch.load(checkpoint, weights_only=True)
    stored["language_goal_config"]["match_threshold"] = 0.999
    strict = tmp_path / "strict.pt"
    torch.save(stored, strict)
    unfit = [*argv, "--checkpoint", str(strict), "--goal_text", "touch the red cube", "--out", str(tmp_path / "unfit")]
    assert main(unfit) == 0
    (refused,) = json.loads((tmp_path / "unfit" / "results.json").read_text())["summaries"]
    assert refused["refused"] == 2 and [e["steps"] for e in refused["per_episode"]] == [0, 0]
    assert "does not fit the scene in view" in refused["per_episode"][0]["refused"]
    assert "2 of 2 episodes refused the instruction" in (tmp_path / "unfit" / "results.md").read_text()
    # A model that reads no instructions: one line.
    plain = save_tiny_model(tmp_path / "plain.pt")
    assert main([*argv, "--checkpoint", str(plain), "--goal", "text", "--out", str(tmp_path / "plain")]) == 2
    assert "reads no instructions" in capsys.readouterr().err

    assert main([*argv, "--goal", "text", "--subgoals", "true", "--out", str(tmp_path / "x")]) == 2
    assert "a text goal is a final goal" in capsys.readouterr().err
    assert main([*argv, "--goal", "text", "--policies", "oracle", "--out", str(tmp_path / "x")]) == 2
    assert "the oracle plans toward goal images only" in capsys.readouterr().err


def test_language_model_recipe_is_a_list_of_registered_commands(capsys):
    """``make language-model``: collect the four families, train the policy on the default model, the language goal on
    the policy's model, then evaluate image and text goals of each family."""
    from jepa_mpc.cli import COMMANDS, main

    assert main(["make-language-model", "--print", "--work", "runs/x"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ jepa-mpc ")]
    names = [line.split()[2] for line in lines]
    assert names[:6] == ["collect"] * 4 + ["train-policy", "train-language-goal"] and set(names) <= set(COMMANDS)
    assert "--checkpoint runs/x/policy/model.pt" in lines[5] and "--object_words red green yellow blue" in lines[5]
    assert "--match_quantile 0" in lines[5]  # its match head refuses nothing (docs/planner.md says why)
    evals = lines[6:]
    assert len(evals) == 12 and all("--subgoals false" in line and "--workers 2 --threads 1" in line for line in evals)
    assert (
        sum("--goal text" in line for line in evals) == 8
        and sum("--instructions heldout" in line for line in evals) == 4
    )
