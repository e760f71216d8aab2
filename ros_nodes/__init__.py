"""ROS 2 (rclpy) nodes that put the goal-image planner on a robot, and the MuJoCo tasks on ROS.

- ``planner_node``: camera image + end-effector pose + gripper state + goal image -> absolute target
  pose and gripper command, with every input and command checked by :mod:`ros_nodes.safety`; a thin
  lifecycle adapter over :mod:`ros_nodes.planning_session`, which decides everything without ROS.
- ``sim_node``: a sim task as a ROS robot (camera, pose, joint states, success, goal image).
- ``bringup``: ``jepa-mpc bringup config/sim.yaml`` starts the nodes of a parameter file in one
  process, for pip installs without ``ros2 launch``.

Topics, parameters and the lab set-up are described in docs/ros.md.
"""
