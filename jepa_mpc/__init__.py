"""jepa_mpc: goal-image model-predictive control with a V-JEPA 2 world model.

The work is split into four packages that install beside this one:

- ``worldmodel``: the V-JEPA 2 video encoder, the action-conditioned predictor, checkpoints, training.
- ``planner``: cross-entropy-method MPC in embedding space.
- ``sim``: MuJoCo Franka tabletop tasks and DROID-style data collection.
- ``ros_nodes``: rclpy nodes that put the planner on a robot.

This package holds what ties them together: the ``jepa-mpc`` command line (every command a config
dataclass and a job taking it, parsed by ``jepa_mpc_foundation.configuration``), the evaluation and the demo.
"""

__version__ = "0.1.0"
