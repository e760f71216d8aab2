"""The ``ros2 launch`` side of launch/*.launch.py: their ``NODES`` data -> a LaunchDescription.

Each launch file declares its nodes as plain data (so tests and ``jepa-mpc bringup`` can read them
without the ``launch`` package, which pip cannot install) and calls :func:`launch_description`.
``launch``, ``launch_ros`` and ``ament_index_python`` are imported only here, only when launching.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "jepa_mpc"


def _node_actions(context, nodes: list[dict]) -> list:
    from ament_index_python.packages import get_package_share_directory
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    config_dir = Path(get_package_share_directory(PACKAGE)) / "config"
    params_file = LaunchConfiguration("params_file").perform(context)
    checkpoint = LaunchConfiguration("checkpoint").perform(context)
    actions = []
    for spec in nodes:
        parameters: list = [params_file] if params_file else [str(config_dir / name) for name in spec["parameters"]]
        if checkpoint and spec["executable"] == "planner_node":
            parameters.append({"checkpoint": checkpoint})
        actions.append(
            Node(
                package=PACKAGE,
                executable=spec["executable"],
                name=spec["name"],
                parameters=parameters,
                remappings=list(spec["remappings"].items()),
                output="screen",
                emulate_tty=True,
            )
        )
    return actions


def launch_description(nodes: list[dict]):
    """Launch arguments ``params_file`` (replaces the nodes' files) and ``checkpoint``, then the nodes."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file", default_value="", description="parameter file for all nodes (default: the launch file's)"
            ),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="world-model checkpoint (overrides the parameter file's)"
            ),
            OpaqueFunction(function=_node_actions, args=[nodes]),
        ]
    )
