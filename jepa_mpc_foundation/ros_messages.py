"""What the robot's ROS messages hold, read alike by the ROS nodes and by ``jepa-mpc import-bag`` (which
reads bags without ROS): the ``sensor_msgs/Image`` encodings and their pixels as RGB, and the Franka
hand's and arm's joint names and the hand's full opening.

The nodes (``ros_nodes/safety.py``) take 8-bit colour images, :data:`COLOUR_ENCODINGS`; a bag import
(``jepa_mpc_dataset/bag_reader.py``) also reads a grey camera, :data:`IMAGE_ENCODINGS`. Each checks a
message's sizes against its data in its own words before :func:`rgb_pixels` reads them.
"""

from __future__ import annotations

import numpy as np

COLOUR_ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    # encoding -> (channels, channel indices of R, G, B)
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
}
"""The 8-bit colour encodings of ``sensor_msgs/Image``: what a planner node takes from its cameras."""
IMAGE_ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {**COLOUR_ENCODINGS, "mono8": (1, (0, 0, 0))}
"""The colour encodings and mono8 (grey in all three channels): what ``import-bag`` reads."""

FRANKA_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
"""The Franka hand's finger joints in ``sensor_msgs/JointState``, as ``franka_ros2`` and our sim node name them."""
FRANKA_MAX_WIDTH = 0.08
"""m: the Franka hand's full opening (two fingers of 0.04 m), the opening that reads as closedness 0."""
FRANKA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
"""The arm's 7 joints in ``sensor_msgs/JointState``, as ``franka_ros2`` and our sim node name them."""


def rgb_pixels(encoding: str, height: int, width: int, step: int, data: np.ndarray) -> np.ndarray:
    """The pixels of an image message's fields -> RGB uint8 ``[H, W, 3]`` (a copy).

    ``encoding`` is a key of :data:`IMAGE_ENCODINGS`; ``data`` uint8 holds at least ``step * height`` bytes,
    ``height`` rows of ``step`` bytes (``step`` >= ``width`` x channels: a row may end in padding). The
    caller checks both and says what is wrong in its own terms.
    """
    channels, rgb = IMAGE_ENCODINGS[encoding]
    rows = data.reshape(-1)[: step * height].reshape(height, step)[:, : width * channels]
    return np.ascontiguousarray(rows.reshape(height, width, channels)[:, :, list(rgb)])  # [H, W, 3] RGB
