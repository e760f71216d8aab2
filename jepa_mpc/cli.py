"""The ``jepa-mpc`` command: one entry point, one sub-command per job, one way to configure and fail.

Every sub-command is a config dataclass and a job function taking it. This module does the same
three things for each: parse the config (defaults < ``--config FILE`` < flags,
:func:`jepa_mpc_foundation.configuration.parse_config`), call the job, and apply one error policy:

- a user error (bad flag or value, missing or unusable file) prints one line
  ``jepa-mpc <command>: error: <message>`` to stderr and exits 2; ``--debug`` anywhere in argv
  re-raises it with the traceback instead;
- Ctrl-C prints ``jepa-mpc <command>: interrupted`` and exits 130 (the jobs save what they can
  before the interrupt reaches here);
- a warning (episodes skipped, no held-out data, ...) prints as ``jepa-mpc <command>: warning: <message>``,
  without Python's source location (``--debug`` keeps Python's format).

Modules are imported only when their command runs, so that ``jepa-mpc collect`` does not import
torch's CUDA setup and ``jepa-mpc train`` does not import MuJoCo.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from draccus.utils import ParsingError

from jepa_mpc_foundation.configuration import parse_config
from jepa_mpc_foundation.user_errors import INTERRUPTED_EXIT_CODE, USER_ERROR_EXIT_CODE, USER_ERRORS, one_line

DEBUG_FLAG = "--debug"


@dataclass(frozen=True)
class Command:
    """A sub-command: its config class, the job taking it, and (optionally) a task-dependent defaults layer.

    Each is a ``"module:attribute"`` string, imported when the command runs. The job returns
    None or an exit code.
    """

    config: str
    job: str
    help: str
    defaults: str | None = None


COMMANDS: dict[str, Command] = {
    "encode": Command(
        "jepa_mpc.encode_command:EncodeConfig",
        "jepa_mpc.encode_command:encode",
        "encode frames with a checkpoint and print the energy of a few actions",
    ),
    "collect": Command(
        "sim.collect:CollectConfig",
        "jepa_mpc.collect_command:run_collect",
        "record scripted/random episodes of a sim task as a LeRobot-style dataset",
        defaults="jepa_mpc.collect_command:collect_defaults",
    ),
    "import-bag": Command(
        "jepa_mpc_dataset.bag_config:ImportBagConfig",
        "jepa_mpc.import_bag_command:run_import_bag",
        "turn rosbag2 bags (MCAP or sqlite3) of a robot into a LeRobot-style dataset for jepa-mpc train",
    ),
    "render-tasks": Command(
        "sim.gallery:GalleryConfig",
        "sim.gallery:render_tasks",
        "save an image strip of every sim task (exterior camera)",
    ),
    "train": Command(
        "jepa_mpc.training_commands:TrainCommandConfig",
        "jepa_mpc.training_commands:train",
        "post-train the action-conditioned predictor",
    ),
    "train-policy": Command(
        "jepa_mpc.training_commands:TrainPolicyCommandConfig",
        "jepa_mpc.training_commands:train_policy",
        "train a goal-conditioned policy on a world model's frozen tokens (one-photo planning)",
    ),
    "train-language-goal": Command(
        "jepa_mpc.training_commands:TrainLanguageGoalCommandConfig",
        "jepa_mpc.training_commands:train_language_goal",
        "train a language-goal predictor on a world model's frozen tokens (goals in words)",
    ),
    "ood-stats": Command(
        "jepa_mpc.training_commands:TokenStatisticsCommandConfig",
        "jepa_mpc.training_commands:ood_stats",
        "add the training frames' token statistics (out-of-distribution score) to a world model",
    ),
    "pretrain": Command(
        "jepa_mpc.training_commands:PretrainCommandConfig",
        "jepa_mpc.training_commands:pretrain",
        "pretrain a small V-JEPA encoder on videos",
    ),
    "init-encoder": Command(
        "jepa_mpc.training_commands:RandomEncoderCommandConfig",
        "jepa_mpc.training_commands:init_encoder",
        "write a never-trained (frozen random) encoder for jepa-mpc train",
    ),
    "energy": Command(
        "jepa_mpc.energy_landscape:EnergyConfig",
        "jepa_mpc.energy_landscape:draw_energy_landscape",
        "draw the energy landscape over a dx/dy/dz grid (PNG)",
    ),
    "eval": Command(
        "jepa_mpc.evaluation.config:EvalConfig",
        "jepa_mpc.evaluation.runner:run_evaluation",
        "success-rate evaluation of goal-image planning in MuJoCo",
        defaults="jepa_mpc.evaluation.config:task_defaults",
    ),
    "demo": Command(
        "jepa_mpc.demo:DemoConfig",
        "jepa_mpc.demo:demo",
        "run one goal-image episode with the default model, write demo_out/",
    ),
    "make-default-model": Command(
        "jepa_mpc.default_model_recipe:RecipeConfig",
        "jepa_mpc.default_model_recipe:make_default_model",
        "collect, post-train (frozen random encoder) and evaluate the default model",
    ),
    "make-language-model": Command(
        "jepa_mpc.language_model_recipe:LanguageRecipeConfig",
        "jepa_mpc.language_model_recipe:make_language_model",
        "collect the language tasks, train a goal policy and a language-goal predictor, evaluate words and images",
    ),
    "bringup": Command(
        "ros_nodes.bringup:BringupConfig",
        "ros_nodes.bringup:bringup",
        "start the ROS nodes of a config/*.yaml in one process",
    ),
    "repair-recording": Command(
        "ros_nodes.run_recording:RepairConfig",
        "ros_nodes.run_recording:repair",
        "copy a run recording cut short (a killed process) into a complete MCAP file, for import-bag",
    ),
}


def _load(reference: str) -> Any:
    module_name, attribute = reference.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def parse_command_config(name: str, argv: list[str]) -> Any:
    """The typed config of ``jepa-mpc NAME ARGV`` (defaults < ``--config FILE`` < flags)."""
    command = COMMANDS[name]
    defaults: Callable | None = _load(command.defaults) if command.defaults else None
    return parse_config(
        _load(command.config), argv, prog=f"jepa-mpc {name}", description=command.help, defaults=defaults
    )


def run_command(name: str, argv: list[str]) -> int:
    """Parse the config of command ``name``, run its job and return its exit code (errors propagate)."""
    config = parse_command_config(name, argv)
    return int(_load(COMMANDS[name].job)(config) or 0)


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: jepa-mpc <command> [options] [--debug]", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.help}" for name, command in COMMANDS.items()]
    lines += ["", "Run `jepa-mpc <command> --help` for a command's options; --debug shows the traceback of an error."]
    return "\n".join(lines)


@contextlib.contextmanager
def _warnings_for_users(name: str) -> Iterator[None]:
    """While inside: each warning is printed as ``jepa-mpc NAME: warning: MESSAGE`` (its own lines kept,
    e.g. one per skipped episode), not with the file, line number and source line Python adds."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"jepa-mpc {name}: warning: {message}", file=file or sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: list[str] | None = None) -> int:
    """``jepa-mpc COMMAND ...``; returns the exit code (0 done, 2 user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    if not argv:
        print(_usage(), file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"jepa-mpc: error: unknown command {name!r}; choose one of {sorted(COMMANDS)}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    try:
        with contextlib.nullcontext() if debug else _warnings_for_users(name):
            return run_command(name, rest)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"jepa-mpc {name}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except (*USER_ERRORS, ParsingError) as exc:
        if debug:
            raise
        print(f"jepa-mpc {name}: error: {one_line(exc)}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
