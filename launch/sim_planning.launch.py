"""Sim + planner: a MuJoCo task as the robot, the goal-image planner closing the loop.

    ros2 launch jepa_mpc sim_planning.launch.py
    ros2 launch jepa_mpc sim_planning.launch.py checkpoint:=/path/model.pt params_file:=/path/my_sim.yaml

Without ``ros2 launch`` (pip install): ``jepa-mpc bringup config/sim.yaml`` starts the same nodes with
the same parameter file. ``NODES`` is plain data so that tests (tests/test_ros_launch.py) read it
without importing ``launch``; ros_nodes/launch_description.py turns it into launch actions.
"""

# executable: a console script of the jepa_mpc distribution; parameters: files in config/.
NODES = [
    {"executable": "sim_node", "name": "sim_node", "parameters": ["sim.yaml"], "remappings": {}},
    {"executable": "planner_node", "name": "planner_node", "parameters": ["sim.yaml"], "remappings": {}},
]


def generate_launch_description():
    from ros_nodes.launch_description import launch_description

    return launch_description(NODES)
