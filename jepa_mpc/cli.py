"""The ``jepa-mpc`` command: one entry point, one sub-command per job.

Each sub-command lives beside the code it drives and is imported only when called, so that
``jepa-mpc collect`` does not import torch's CUDA setup and ``jepa-mpc train`` does not import
MuJoCo. A sub-command is a ``main(argv: list[str]) -> int`` function.
"""
from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "encode": ("jepa_mpc.encode_command:encode_main", "encode frames with a checkpoint and print the energy of a few actions"),
    "collect": ("sim.collect:main", "record scripted/random episodes of a sim task as a LeRobot-style dataset"),
    "render-tasks": ("sim.gallery:main", "save an image strip of every sim task (exterior camera)"),
    "train": ("worldmodel.training.train_predictor:main", "post-train the action-conditioned predictor"),
    "pretrain": ("worldmodel.training.pretrain_encoder:main", "pretrain a small V-JEPA encoder on videos"),
    "energy": ("jepa_mpc.energy_landscape:main", "draw the energy landscape over a dx/dy/dz grid (PNG)"),
    "eval": ("jepa_mpc.evaluation.runner:main", "success-rate evaluation of goal-image planning in MuJoCo"),
    "demo": ("jepa_mpc.demo:main", "run one goal-image episode with the default model, write demo_out/"),
    "make-default-model": ("jepa_mpc.default_model_recipe:main", "collect, pretrain, post-train and evaluate the default model"),
    "bringup": ("ros_nodes.bringup:main", "start the ROS nodes of a config/*.yaml in one process"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: jepa-mpc <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `jepa-mpc <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"jepa-mpc: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
