"""The shipped default world model and the recipe that makes it (``make default-model``).

The released V-JEPA 2 weights cannot be downloaded everywhere, so the project ships its own small
model, made by its own commands from sim data only:

1. collect scripted-expert and random episodes of the four tasks at 64 x 64 (``IMAGE_SIZE``, the model's
   input size, which the evaluation then reads from the model), 4 fps, in the sim's default scene;
2. write a frozen random ``vit_micro`` encoder (``jepa-mpc init-encoder``, seed 0): at this scale
   (16 tokens per frame) it plans as well as the V-JEPA-pretrained one, within the spread of
   retraining, and costs no pretraining (docs/benchmarks.md, "Ablation");
3. post-train an action-conditioned predictor on the frozen encoder's features of both cameras, the
   exterior and the wrist (``--data.wrist_camera``: two views per step): the wrist view shows where
   the cube lies and how it is turned against the fingers, which the grasp's sub-goals need
   (docs/benchmarks.md, "The wrist camera");
4. collect more, noisier expert demonstrations, in the default scenes and in wider ones, and train a
   goal-conditioned policy on the frozen tokens (``jepa-mpc train-policy``), stored in the same checkpoint:
   planning from one goal photo (docs/planner.md, "One goal photo");
5. add the policy's training frames' token statistics (``jepa-mpc ood-stats``): each planning step's
   out-of-distribution score and its threshold (docs/planner.md);
6. evaluate goal-image planning with it (``jepa-mpc eval``, on the CPU in one-thread worker processes,
   with ``planner.presets.CPU_PRESET``), through the tasks' sub-goals and from the final goal photo alone,
   and install it with its numbers and that preset recorded in it (``worldmodel.model_needs``).

Every step is a ``jepa-mpc`` command (printed as it runs), so the recipe reads as a list of commands
and each step can be rerun alone. Collection and training resume where they stopped: a training step
whose folder holds a training state gets ``--resume true`` (a finished one says so and changes nothing);
the encoder step leaves an ``encoder.pt`` holding the same weights as it is.
"""

from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from planner.presets import CPU_PRESET
from worldmodel.checkpoint import DEFAULT_CHECKPOINT, DEFAULT_MODEL_DIR
from worldmodel.model_needs import save_planner_preset
from worldmodel.training.train_state import STATE_FILE, SUMMARY_FILE

# The model's input size: its data is rendered at it, its encoder is built for it, and the evaluation
# renders what the model states (the sim's default scene ranges and lighting in both).
IMAGE_SIZE = 64
SCENE_FLAGS = ["--sim.image_size", str(IMAGE_SIZE), "--sim.control_hz", "4"]
# (task, policy, episodes, seed of the first episode). Evaluation seeds start at 1000: never trained on.
# The tasks that need centimetres (grasp, push, pick-and-place) get twice the demonstrations they
# first had: more of them sharpened the grasp's energy landscape (docs/benchmarks.md, "Ablation", row 3).
COLLECTION = [
    ("reach", "expert", 150, 0),
    ("reach", "random", 60, 2000),
    ("pickplace", "expert", 120, 3000),
    ("push", "expert", 80, 4000),
    ("grasp", "expert", 80, 5000),
]
# The goal policy's extra demonstrations (task, episodes, seed of the first episode) of the tasks
# with stages, the scripted expert with twice the default action noise (0.01 m: states off the clean
# path, as in DART, Laskey et al. 2017); the policy trains on these and every expert dataset above.
# Seeds 6000-8199: no overlap.
POLICY_COLLECTION = [
    ("pickplace", 300, 6000),
    ("push", 200, 7000),
    ("grasp", 200, 8000),
]
POLICY_NOISE = 0.01
# The same demonstrations again, and 150 reaches, in scenes wider than the world model's data (domain
# randomisation, Tobin et al. 2017): the policy reads the tokens of the frame now as they are, and a key
# light or a camera moved past the default ranges moves them as much as the arm does. The same seeds:
# each episode is one of the default scenes' episodes under another light, camera pose and colours (the
# reaches: seeds 9000-9149, no overlap). Why these ranges, and what they buy in which scenes: docs/benchmarks.md,
# "The goal policy trained in wider scenes". The world model itself keeps the default scenes: trained on wider
# ones it pushed worse (docs/benchmarks.md, "Wider training scenes").
WIDE_POLICY_COLLECTION = [("reach", 150, 9000), *POLICY_COLLECTION]
WIDE_SCENE_FLAGS = [
    *("--sim.randomization.colour", "0.2"),
    *("--sim.randomization.camera_position", "0.05", "--sim.randomization.camera_target", "0.05"),
    *("--sim.randomization.light_position", "0.3", "--sim.randomization.light_intensity", "0.35", "0.95"),
]
POLICY_FLAGS = ["--policy.dropout", "0.2", "--run.steps", "3000"]
ENCODER_FLAGS = ["--preset", "vit_micro", "--encoder.img_size", str(IMAGE_SIZE), "--seed", "0"]
TRAIN_FLAGS = [
    "--predictor.dim",
    "128",
    "--predictor.depth",
    "4",
    "--predictor.num_heads",
    "4",
    "--run.steps",
    "2000",
    "--run.batch_size",
    "32",
    "--optim.lr",
    "3e-3",
    "--optim.warmup_steps",
    "100",
    "--data.wrist_camera",
    "observation.images.wrist_left",
]
EVAL_TASKS = ("reach", "push", "grasp", "pickplace")


def recipe(work: Path, threads: int, eval_episodes: int, device: str = "cpu", workers: int = 1) -> list[list[str]]:
    """The ``jepa-mpc`` commands that make the default model, in order, training and evaluating on ``device``.

    ``workers`` collection processes record the same episodes as one (episode i is seeded SEED + i);
    ``eval_episodes`` 0 leaves the evaluations out (train only, e.g. to evaluate in parallel jobs).
    """
    worker_flags = ["--workers", str(workers)] if workers > 1 else []
    datasets = [str(work / "data" / f"{task}_{policy}") for task, policy, _, _ in COLLECTION]

    def collect(task: str, policy: str, episodes: int, seed: int, out: str, *flags: str) -> list[str]:
        argv = ["collect", "--task", task, "--policy", policy, *flags, "--episodes", str(episodes)]
        return [*argv, "--seed", str(seed), "--out", out, *SCENE_FLAGS, *worker_flags]

    steps = [collect(task, policy, n, seed, out) for (task, policy, n, seed), out in zip(COLLECTION, datasets)]
    noisy = [str(work / "data" / f"{task}_noisy_expert") for task, _, _ in POLICY_COLLECTION]
    steps += [
        collect(task, "expert", n, seed, out, "--noise", str(POLICY_NOISE))
        for (task, n, seed), out in zip(POLICY_COLLECTION, noisy)
    ]
    wide = [str(work / "data" / f"{task}_noisy_expert_wide") for task, _, _ in WIDE_POLICY_COLLECTION]
    steps += [
        collect(task, "expert", n, seed, out, "--noise", str(POLICY_NOISE), *WIDE_SCENE_FLAGS)
        for (task, n, seed), out in zip(WIDE_POLICY_COLLECTION, wide)
    ]
    policy_datasets = noisy + wide
    run_flags = ["--run.threads", str(threads), "--run.device", device]
    steps.append(["init-encoder", "--out", str(work / "encoder"), *ENCODER_FLAGS])
    steps.append(
        [
            "train",
            "--data",
            *datasets,
            "--encoder",
            str(work / "encoder" / "encoder.pt"),
            "--out",
            str(work / "predictor"),
            *TRAIN_FLAGS,
            *run_flags,
            *_resume_flags(work / "predictor"),
        ]
    )
    experts = [out for (_, policy, _, _), out in zip(COLLECTION, datasets) if policy == "expert"]
    steps.append(
        [
            "train-policy",
            "--data",
            *experts,
            *policy_datasets,
            "--checkpoint",
            str(work / "predictor" / "model.pt"),
            "--out",
            str(work / "policy"),
            *POLICY_FLAGS,
            *run_flags,
            *_resume_flags(work / "policy"),
        ]
    )
    model = str(work / "model" / "model.pt")
    steps.append(
        ["ood-stats", "--data", *experts, *policy_datasets, "--checkpoint", str(work / "policy" / "model.pt")]
        + ["--out", model, "--overwrite", "true", "--device", device]
    )
    # On the CPU the evaluations run as many one-thread processes as training had threads: on two
    # cores that plans more steps per second than one process with two threads, and every episode's
    # result is that of a single one-thread process (docs/benchmarks.md).
    eval_flags = ["--workers", str(threads), "--threads", "1"] if device == "cpu" and threads > 1 else []

    def evaluate(task: str, folder: str, *flags: str) -> list[str]:
        argv = ["eval", "--task", task, *flags, "--episodes", str(eval_episodes), "--checkpoint", model]
        return [*argv, "--device", device, "--out", str(work / folder / task), *eval_flags]

    if eval_episodes > 0:
        steps += [evaluate(task, "eval") for task in EVAL_TASKS]
        # From one goal photo: no true-state ceiling is needed here (the oracle's search is the sub-goal table's).
        one_photo = ("--subgoals", "false", "--policies", "world_model", "random")
        steps += [evaluate(task, "eval_one_photo", *one_photo) for task in EVAL_TASKS]
    return steps


def _resume_flags(run_dir: Path) -> list[str]:
    """``--resume true`` where an earlier recipe run left a training state (training is refused otherwise)."""
    return ["--resume", "true"] if (run_dir / STATE_FILE).is_file() else []


@dataclass
class RecipeConfig:
    """``jepa-mpc make-default-model``: where to work, how many threads and episodes, whether to install."""

    work: str = field(default="runs/default_model", metadata={"help": "folder for data, runs and evaluations"})
    threads: int = field(default=2, metadata={"help": "torch threads for training"})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda: where training and evaluation run"})
    workers: int = field(default=1, metadata={"help": "processes collecting in parallel (the same episodes)"})
    eval_episodes: int = field(default=50, metadata={"help": "episodes per task and policy; 0 = train only"})
    install: bool = field(default=False, metadata={"help": f"copy the result into {DEFAULT_MODEL_DIR}"})
    print_only: bool = field(default=False, metadata={"help": "print the commands and stop", "aliases": ("--print",)})

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0 (0 = train only), got {self.eval_episodes}")


def run_recipe(commands: list[list[str]], print_only: bool = False) -> bool:
    """Print each ``jepa-mpc`` command and run it in order (a failing one raises), then each one's time; with
    ``print_only`` print them alone. Returns whether they ran."""
    from jepa_mpc.cli import run_command

    timings = []
    for command in commands:
        print("$ jepa-mpc " + shlex.join(command), flush=True)
        if print_only:
            continue
        start = time.perf_counter()
        run_command(command[0], command[1:])
        timings.append((command[0], time.perf_counter() - start))
    for name, seconds in timings:
        print(f"  {name:>19}: {seconds / 60:.1f} min")
    return not print_only


def make_default_model(config: RecipeConfig) -> None:
    """Run the recipe's commands in order (a failing one raises), then optionally install the model."""
    work = Path(config.work)
    commands = recipe(work, config.threads, config.eval_episodes, config.device, config.workers)
    if run_recipe(commands, config.print_only) and config.install:
        install(work)


def install(work: Path) -> None:
    """Copy the trained model (with its goal policy and token statistics), its training summaries and its
    evaluation tables into the package."""
    DEFAULT_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    # The planner budget the evaluations below were run with, recorded in the model: eval and bench read it.
    save_planner_preset(work / "model" / "model.pt", CPU_PRESET, DEFAULT_CHECKPOINT)
    shutil.copyfile(work / "predictor" / SUMMARY_FILE, DEFAULT_MODEL_DIR / "train_summary.json")
    shutil.copyfile(work / "policy" / SUMMARY_FILE, DEFAULT_MODEL_DIR / "policy_train_summary.json")
    for folder, prefix in (("eval", "eval"), ("eval_one_photo", "eval_one_photo")):
        for task in EVAL_TASKS:
            results = work / folder / task
            if (results / "results.json").is_file():
                shutil.copyfile(results / "results.json", DEFAULT_MODEL_DIR / f"{prefix}_{task}.json")
                shutil.copyfile(results / "results.md", DEFAULT_MODEL_DIR / f"{prefix}_{task}.md")
    print(f"installed {DEFAULT_CHECKPOINT} ({DEFAULT_CHECKPOINT.stat().st_size / 2**20:.1f} MB)")
