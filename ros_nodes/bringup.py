"""``jepa-mpc bringup``: start the nodes of a ROS parameter file in one process, without ``ros2 launch``.

    jepa-mpc bringup config/sim.yaml                               # sim + planner, as sim_planning.launch.py
    jepa-mpc bringup config/sim.yaml --ros-args -p checkpoint:=model.pt
    jepa-mpc bringup config/sim.yaml --record runs/sim                 # each run to runs/sim/run_<UTC time>.mcap
    jepa-mpc bringup config/robot.yaml --ros-args -r image:=/camera/camera/color/image_raw \\
        -r ee_pose:=/franka_robot_state_broadcaster/current_pose ...   # as robot_planning.launch.py

The file's top-level keys (``sim_node``, ``planner_node``) say which nodes to start; each node reads
its own section, exactly as ``ros2 launch`` passes the same file. The file is checked first: an
unknown node or parameter, or an invalid value, stops here with a message naming it (ROS alone would
ignore a misspelt parameter). Everything after ``--ros-args`` goes to ROS unchanged (remappings
``-r from:=to`` apply to every node of the process; ``-p name:=value`` overrides the file).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

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


@dataclass
class BringupConfig:
    """``jepa-mpc bringup PARAMS_FILE [--ros-args ...]``."""

    params_file: str = field(
        metadata={"help": "ROS parameter file whose top-level keys name the nodes to start", "positional": True}
    )
    ros_args: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "arguments for ROS, all after --ros-args: -r from:=to (remap), -p name:=value (parameter)",
            "after": "--ros-args",
        },
    )
    record: str = field(
        default="",
        metadata={
            "help": "record the planner node's run to this MCAP file, or to a new run_<UTC time>.mcap in this "
            "folder (the planner node's record_path parameter); empty: as the parameter file says"
        },
    )


def bringup(config: BringupConfig) -> int:
    """Check the parameter file, then run its nodes until Ctrl-C; returns the nodes' exit code.

    Raises ValueError (or FileNotFoundError) naming the file and the node or parameter before ROS starts.
    """
    configs = check_parameter_file(config.params_file, {name: cls for name, (cls, _) in NODE_TYPES.items()})
    if not configs:
        raise ValueError(f"{config.params_file} names no node; expected some of {sorted(NODE_TYPES)}")
    names = [name for name in START_ORDER if name in configs]
    if config.record and "planner_node" not in names:
        raise ValueError(f"--record records the planner node's run; {config.params_file} starts no planner_node")

    from rclpy.parameter import Parameter

    from ros_nodes.runtime import run_nodes

    def make_node(name: str):
        if name == "planner_node" and config.record:  # over the file's value and --ros-args' -p
            return _node_class(name)(parameter_overrides=[Parameter("record_path", value=config.record)])
        return _node_class(name)()

    rcl_args = ["jepa-mpc", "--ros-args", "--params-file", config.params_file, *config.ros_args]
    return run_nodes(lambda: [make_node(name) for name in names], rcl_args)
