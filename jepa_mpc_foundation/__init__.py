"""The ground floor: what every other package of the project shares, importing nothing of ours.

- :mod:`jepa_mpc_foundation.atomic_files`: atomic writes (a reader never sees a half-written file).
- :mod:`jepa_mpc_foundation.configuration`: typed dataclass configs <-> command-line flags, YAML, checkpoints,
  ROS parameters.
- :mod:`jepa_mpc_foundation.pose`: the 7-D state/action convention of DROID and V-JEPA 2-AC (``STATE_DIM``,
  ``ACTION_DIM``).
- :mod:`jepa_mpc_foundation.ros_messages`: what the robot's ROS messages hold (image encodings and their pixels,
  the Franka joint names), read alike by the ROS nodes and by the bag import, which runs without ROS.
- :mod:`jepa_mpc_foundation.user_errors`: what counts as a user's mistake, and how it is told.
- :mod:`jepa_mpc_foundation.worker_processes`: pool workers that end with their parent and stop at once when told.

docs/architecture.md draws the floors above it.
"""
