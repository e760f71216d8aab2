"""``jepa-mpc bringup``: start the nodes of a ROS parameter file in one process, without ``ros2 launch``.

    jepa-mpc bringup config/sim.yaml                               # sim + planner, as sim_planning.launch.py
    jepa-mpc bringup config/sim.yaml --ros-args -p checkpoint:=model.pt
    jepa-mpc bringup config/robot.yaml --ros-args -r image:=/camera/camera/color/image_raw \\
        -r ee_pose:=/franka_robot_state_broadcaster/current_pose ...   # as robot_planning.launch.py

The file's top-level keys (``sim_node``, ``planner_node``) say which nodes to start; each node reads
its own section, exactly as ``ros2 launch`` passes the same file. The file is checked first: an
unknown node or parameter, or an invalid value, stops here with a message naming it (ROS alone would
ignore a misspelt parameter). Everything after ``--ros-args`` goes to ROS unchanged (remappings
``-r from:=to`` apply to every node of the process; ``-p name:=value`` overrides the file).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ros_nodes.config import PlannerNodeConfig, SimNodeConfig
from ros_nodes.parameters import check_parameter_file

# node name -> (config class, "module:NodeClass"); the module is imported only when that node starts.
NODE_TYPES = {
    "sim_node": (SimNodeConfig, "ros_nodes.sim_node:SimNode"),
    "planner_node": (PlannerNodeConfig, "ros_nodes.planner_node:PlannerNode"),
}
# Started in this order: the sim publishes its goal image before the planner subscribes (it is latched anyway).
START_ORDER = ("sim_node", "planner_node")


def _node_class(name: str) -> type:
    module, cls = NODE_TYPES[name][1].split(":")
    return getattr(importlib.import_module(module), cls)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        split = argv.index("--ros-args")
        argv, ros_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="jepa-mpc bringup",
        description="Start the ROS nodes named in a parameter file (config/*.yaml) in one process.",
        epilog="Arguments after --ros-args go to ROS: -r from:=to (remap), -p name:=value (parameter).",
    )
    parser.add_argument("params_file", help="ROS parameter file whose top-level keys name the nodes to start")
    args = parser.parse_args(argv)

    try:
        configs = check_parameter_file(args.params_file, {name: cls for name, (cls, _) in NODE_TYPES.items()})
    except (OSError, ValueError) as exc:
        print(f"jepa-mpc bringup: {exc}", file=sys.stderr)
        return 2
    if not configs:
        print(f"jepa-mpc bringup: {args.params_file} names no node; expected some of {sorted(NODE_TYPES)}", file=sys.stderr)
        return 2
    names = [name for name in START_ORDER if name in configs]

    from ros_nodes.runtime import run_nodes

    rcl_args = ["jepa-mpc", "--ros-args", "--params-file", args.params_file, *ros_args]
    return run_nodes(lambda: [_node_class(name)() for name in names], rcl_args)


if __name__ == "__main__":
    raise SystemExit(main())
