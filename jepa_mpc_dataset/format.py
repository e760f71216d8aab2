"""What the LeRobot v3.0 dataset writer (jepa_mpc_dataset/writer.py) and reader (jepa_mpc_dataset/reader.py) share:
the on-disk layout, feature names, the camera-name mapping and the error type. The reader also reads
LeRobot's older v2.1 layout (one parquet and one mp4 per episode, ``meta/*.jsonl``; see V21_* below).

Layout (``root/``), as LeRobot 0.4 writes it::

    meta/info.json                 codebase_version "v3.0", fps, features, path templates, totals
    meta/stats.json                per-feature min/max/mean/std/count/q01..q99 over the dataset
    meta/tasks.parquet             task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, the data file that
                                   holds it, and per camera the mp4 and [from_timestamp, to_timestamp)
    data/chunk-CCC/file-FFF.parquet            one row per frame (many episodes may share a file)
    videos/<camera feature>/chunk-CCC/file-FFF.mp4

Feature names follow LeRobot's DROID port, so :class:`~jepa_mpc_dataset.reader.LeRobotDataset` reads both
with one code path (docs/dataset.md lists them).

The 7-D state is ``observation.state.cartesian_position`` (x, y, z, extrinsic xyz Euler) +
``observation.state.gripper_position``; the convention is jepa_mpc_foundation/pose.py's. ``observation.state``
means what it means in DROID: the 7 arm joint positions (rad) + the gripper position [8]. Datasets
written by earlier versions of jepa_mpc hold the 7-D pose there ([7]); the reader tells them apart by shape.
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"

# LeRobot's v2.1 layout (LeRobot <= 0.3.3), read only: one data parquet and one mp4 per camera per
# episode, episode metadata as JSON lines; each episode's video starts at timestamp 0.
V21_CODEBASE_VERSION = "v2.1"
V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V21_EPISODES_PATH = "meta/episodes.jsonl"

CARTESIAN_STATE = "observation.state.cartesian_position"
GRIPPER_STATE = "observation.state.gripper_position"
JOINT_STATE = "observation.state.joint_position"  # [7] arm joint positions, rad
# DROID's observation.state: JOINT_STATE + the gripper position [8]; [7] = the 7-D pose in our older datasets.
OBSERVATION_STATE = "observation.state"
JOINT_AXES = [f"joint_{i}" for i in range(7)]
SUCCESS = "is_episode_successful"
LANGUAGE = "language_instruction"
EPISODE_SEED = "episode_seed"  # ours only: the env seed that reproduces the episode
# Ours only, the language tasks': the words naming what is on the table ("green left red right ..."), one string
# per frame as language_instruction; a model learns from them which instructions fit a scene.
WORDS_IN_SCENE = "words_in_scene"
# Our writer's "action" is the commanded 7-D delta action; DROID's is 8-D joint velocities + gripper.
COMMANDED_ACTION = "action"

# DROID's RLDS camera names (what sim collection uses) -> the feature names of its LeRobot port.
DROID_CAMERA_FEATURES = {
    "exterior_image_1_left": "observation.images.exterior_1_left",
    "exterior_image_2_left": "observation.images.exterior_2_left",
    "wrist_image_left": "observation.images.wrist_left",
}
POSE_AXES = ["x", "y", "z", "roll", "pitch", "yaw"]
ACTION_AXES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "dgripper"]


def camera_feature_name(camera: str) -> str:
    """A camera name as the writer takes it -> its LeRobot feature key.

    DROID RLDS names map to DROID-LeRobot names (``exterior_image_1_left`` ->
    ``observation.images.exterior_1_left``); a full feature key is kept; any other name ``cam``
    becomes ``observation.images.cam``.
    """
    if camera in DROID_CAMERA_FEATURES:
        return DROID_CAMERA_FEATURES[camera]
    return camera if camera.startswith("observation.images.") else f"observation.images.{camera}"


class DatasetError(ValueError):
    """Bad data on disk or bad input to the writer; the message names the episode and the file."""
