"""The shipped language model and the recipe that makes it (``make language-model``): goals in words.

The default model (``worldmodel/default_model``) plans the single-cube tasks; the language tasks put two or
three coloured cubes and zones on the table and name one of each in an instruction (sim/tasks/language.py).
This model is the default model's encoder and predictor, unchanged, with what the words need:

1. collect scripted-expert episodes of the four language families at the default model's 64 px and 4 fps,
   each episode's instruction (training split only: the held-out pairs and phrasings are never recorded)
   written as its LeRobot task;
2. train a goal-conditioned policy on the default model's frozen tokens of those episodes
   (``jepa-mpc train-policy``): one-photo planning in these scenes;
3. train the language-goal predictor on the same tokens (``jepa-mpc train-language-goal``): the goal frame's
   tokens from the instruction and the frame now, and whether the instruction fits the scene;
4. evaluate each family from a goal image and from its instruction on the same episodes (training
   instructions), and from held-out instructions (``jepa-mpc eval --subgoals false``, ``--goal text``,
   ``--instructions heldout``), and install
   the model with its tables in ``worldmodel/language_model``.

Every step is a ``jepa-mpc`` command, printed as it runs (the default model's recipe says why).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from jepa_mpc.default_model_recipe import POLICY_FLAGS, SCENE_FLAGS, _resume_flags, run_recipe
from planner.presets import CPU_PRESET
from sim.tasks.instructions import CUBE_COLOURS, ZONE_REFERENCES
from worldmodel.checkpoint import DEFAULT_CHECKPOINT, LANGUAGE_CHECKPOINT, LANGUAGE_MODEL_DIR
from worldmodel.model_needs import save_planner_preset
from worldmodel.training.train_state import SUMMARY_FILE

# (family, episodes, seed of the first episode): seeds 20000-23119, far from the evaluation's 1000-1999.
# Push and place name a zone too: more combinations, more episodes.
COLLECTION = [
    ("lang-touch", 80, 20000),
    ("lang-lift", 80, 21000),
    ("lang-push", 120, 22000),
    ("lang-place", 120, 23000),
]
# The words that name something in these scenes: an instruction naming none of them is refused.
OBJECT_WORDS = (*CUBE_COLOURS, *ZONE_REFERENCES)
FAMILIES = tuple(family for family, _, _ in COLLECTION)
# The match head refuses nothing here: it does not tell cubes on the table from cubes not there, with the labels
# guessed nor with the exact ones of the scenes collect records (docs/benchmarks.md, "Goals in words"). Words
# naming nothing the model knows are still refused.
MATCH_FLAGS = ["--match_quantile", "0"]
# (results folder, flags): the goal image and the instruction of the same episodes (training instructions),
# and the instructions never recorded (held-out pairs and phrasings).
EVALUATIONS = (
    ("image", ()),
    ("text", ("--goal", "text")),
    ("text_heldout", ("--goal", "text", "--instructions", "heldout")),
)
# The finishing searches of the evaluations: CPU_PRESET's 128 x 6, not one photo's 256 x 10, so that the 240
# episodes fit two cores in under an hour (a failing episode finishes at most of its steps).
EVAL_BUDGET = ["--planner.samples", "128", "--planner.iterations", "6", "--planner.topk", "12"]


def recipe(work: Path, threads: int, eval_episodes: int, device: str = "cpu", workers: int = 1) -> list[list[str]]:
    """The ``jepa-mpc`` commands that make the language model, in order (``eval_episodes`` 0: no evaluation)."""
    worker_flags = ["--workers", str(workers)] if workers > 1 else []
    datasets = [str(work / "data" / family) for family, _, _ in COLLECTION]
    steps = [
        ["collect", "--task", family, "--policy", "expert", "--episodes", str(n), "--seed", str(seed)]
        + ["--out", out, *SCENE_FLAGS, *worker_flags]
        for (family, n, seed), out in zip(COLLECTION, datasets)
    ]
    run_flags = ["--run.threads", str(threads), "--run.device", device]
    policy, language = work / "policy", work / "language"
    steps.append(
        ["train-policy", "--data", *datasets, "--checkpoint", str(DEFAULT_CHECKPOINT), "--out", str(policy)]
        + [*POLICY_FLAGS, *run_flags, *_resume_flags(policy)]
    )
    steps.append(
        ["train-language-goal", "--data", *datasets, "--checkpoint", str(policy / "model.pt"), "--out", str(language)]
        + ["--object_words", *OBJECT_WORDS, *MATCH_FLAGS, *run_flags, *_resume_flags(language)]
    )
    eval_flags = ["--workers", str(threads), "--threads", "1"] if device == "cpu" and threads > 1 else []
    model = str(language / "model.pt")
    for folder, flags in EVALUATIONS if eval_episodes > 0 else ():
        for family in FAMILIES:
            steps.append(
                ["eval", "--task", family, "--subgoals", "false", *flags, *EVAL_BUDGET, "--policies", "world_model"]
                + ["--episodes", str(eval_episodes), "--checkpoint", model, "--device", device]
                + ["--out", str(work / "eval" / folder / family), *eval_flags]
            )
    return steps


@dataclass
class LanguageRecipeConfig:
    """``jepa-mpc make-language-model``: where to work, how many threads and episodes, whether to install."""

    work: str = field(default="runs/language_model", metadata={"help": "folder for data, runs and evaluations"})
    threads: int = field(default=2, metadata={"help": "torch threads for training"})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda: where training and evaluation run"})
    workers: int = field(default=1, metadata={"help": "processes collecting in parallel (the same episodes)"})
    eval_episodes: int = field(default=20, metadata={"help": "episodes per family and goal kind; 0 = train only"})
    install: bool = field(default=False, metadata={"help": f"copy the result into {LANGUAGE_MODEL_DIR}"})
    print_only: bool = field(default=False, metadata={"help": "print the commands and stop", "aliases": ("--print",)})

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0 (0 = train only), got {self.eval_episodes}")


def make_language_model(config: LanguageRecipeConfig) -> None:
    """Run the recipe's commands in order (a failing one raises), then optionally install the model."""
    work = Path(config.work)
    commands = recipe(work, config.threads, config.eval_episodes, config.device, config.workers)
    if run_recipe(commands, config.print_only) and config.install:
        install(work)


def install(work: Path) -> None:
    """Copy the model, its training summaries and its evaluation tables into ``worldmodel/language_model``."""
    LANGUAGE_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    save_planner_preset(work / "language" / "model.pt", CPU_PRESET, LANGUAGE_CHECKPOINT)
    shutil.copyfile(work / "policy" / SUMMARY_FILE, LANGUAGE_MODEL_DIR / "policy_train_summary.json")
    shutil.copyfile(work / "language" / SUMMARY_FILE, LANGUAGE_MODEL_DIR / "language_train_summary.json")
    for folder, _ in EVALUATIONS:
        for family in FAMILIES:
            results = work / "eval" / folder / family
            if (results / "results.json").is_file():
                shutil.copyfile(results / "results.json", LANGUAGE_MODEL_DIR / f"eval_{folder}_{family}.json")
                shutil.copyfile(results / "results.md", LANGUAGE_MODEL_DIR / f"eval_{folder}_{family}.md")
    print(f"installed {LANGUAGE_CHECKPOINT} ({LANGUAGE_CHECKPOINT.stat().st_size / 2**20:.1f} MB)")
