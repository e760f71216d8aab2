"""The ground floor: what every other package of the project shares, importing nothing of ours.

- :mod:`foundation.atomic_files`: atomic writes (a reader never sees a half-written file).
- :mod:`foundation.configuration`: typed dataclass configs <-> command-line flags, YAML, checkpoints, ROS parameters.
- :mod:`foundation.pose`: the 7-D state/action convention of DROID and V-JEPA 2-AC (``STATE_DIM``, ``ACTION_DIM``).
- :mod:`foundation.user_errors`: what counts as a user's mistake, and how it is told.
- :mod:`foundation.worker_processes`: pool workers that end with their parent and stop at once when told.

docs/architecture.md draws the floors above it.
"""
