"""The planner alone, on a lab Franka: topics remapped to the robot's camera, state and controller.

    ros2 launch jepa_mpc robot_planning.launch.py checkpoint:=/path/model.pt
    ros2 service call /planner_node/start std_srvs/srv/Trigger      # nothing moves before this

Edit ``NODES["remappings"]`` below (or pass your own ``params_file:=``) to match your set-up; the
defaults are the topic names of franka_ros2 (franka_robot_state_broadcaster, franka_gripper) and of
the realsense2_camera driver, and a Cartesian impedance controller taking
``geometry_msgs/PoseStamped`` targets on ``/cartesian_impedance_controller/target_pose``
(docs/ros.md, "A lab Franka"). Without ``ros2 launch``: ``jepa-mpc bringup config/robot.yaml
--ros-args -r image:=... -r ee_pose:=...`` with the same remappings.
``NODES`` is plain data so that tests read it without importing ``launch``; ros_nodes/launch_description.py
turns it into launch actions.
"""

NODES = [
    {
        "executable": "planner_node",
        "name": "planner_node",
        "parameters": ["robot.yaml"],
        "remappings": {
            "image": "/camera/camera/color/image_raw",
            "wrist_image": "/wrist_camera/camera/color/image_raw",  # two-view models (the default model)
            "ee_pose": "/franka_robot_state_broadcaster/current_pose",
            "joint_states": "/franka_gripper/joint_states",
            "goal_image": "/jepa_mpc/goal_image",
            "target_pose": "/cartesian_impedance_controller/target_pose",
            "gripper_command": "/jepa_mpc/gripper_command",
        },
    },
]


def generate_launch_description():
    from ros_nodes.launch_description import launch_description

    return launch_description(NODES)
