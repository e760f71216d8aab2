"""Where things go on the table (m, robot base frame; the table top is z = 0).

The task area lies in front of the robot in the middle of the exterior camera's view; the two
distractors (small cube, bowl) stand at its far corners, out of the way of the scripted motions.
"""

from __future__ import annotations

import numpy as np

from sim.scene import CUBE_HALF_SIZE, Scene, sample_separated_xy

CUBE_AREA = (np.array([0.42, -0.12]), np.array([0.56, 0.12]))  # xy box of the task cube
SMALL_CUBE_AREA = (np.array([0.64, -0.26]), np.array([0.70, -0.16]))
BOWL_AREA = (np.array([0.64, 0.17]), np.array([0.69, 0.25]))
SMALL_CUBE_HALF_SIZE = 0.0175
MAX_CUBE_YAW = 0.35  # rad, uniform range of the cube's yaw


def place_distractors(scene: Scene, rng: np.random.Generator) -> None:
    """The small cube and the bowl at random spots of their corners, with random yaw."""
    small_xy = rng.uniform(*SMALL_CUBE_AREA)
    scene.place_object("small_cube", np.array([*small_xy, SMALL_CUBE_HALF_SIZE]), yaw=rng.uniform(-np.pi, np.pi))
    bowl_xy = rng.uniform(*BOWL_AREA)
    scene.place_object("bowl", np.array([*bowl_xy, 0.0]), yaw=rng.uniform(-0.3, 0.3))


def place_cube(scene: Scene, rng: np.random.Generator, area=CUBE_AREA, others=()) -> np.ndarray:
    """The task cube resting at a random xy of ``area`` (>= 0.12 m from ``others``) with random yaw; its position."""
    xy = sample_separated_xy(rng, *area, list(others), 0.12)
    position = np.array([*xy, CUBE_HALF_SIZE])
    scene.place_object("cube", position, yaw=rng.uniform(-MAX_CUBE_YAW, MAX_CUBE_YAW))
    return position
