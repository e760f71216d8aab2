"""Robot datasets in LeRobot's v3.0 layout (v2.1 read too): written by the simulator, read by training.

- :mod:`jepa_mpc_dataset.format`: the on-disk layout, feature names and the error type both sides share.
- :mod:`jepa_mpc_dataset.writer`: :class:`~jepa_mpc_dataset.writer.LeRobotDatasetWriter` (episodes, stats, finalize).
- :mod:`jepa_mpc_dataset.reader`: :class:`~jepa_mpc_dataset.reader.LeRobotDataset` (sim data and DROID converted
  to LeRobot, v3.0 or v2.1), with one module per job it does: ``reader_config``, ``info_json``,
  ``meta_v3`` / ``meta_v21``, ``cross_check``, ``episode_rows``, ``episode_frames``, ``read_errors`` (the
  reader's docstring says which is which).
- :mod:`jepa_mpc_dataset.video`: mp4 encoding and decoding with PyAV.
- :mod:`jepa_mpc_dataset.rosbag_import`: rosbag2 bags -> a dataset (``jepa-mpc import-bag``), with ``bag_config``
  (its settings), ``bag_reader`` (reading bags with ``rosbags``) and ``bag_alignment`` (the frame clock, gaps).

See docs/dataset.md.
"""

from jepa_mpc_dataset.format import DROID_CAMERA_FEATURES, DatasetError, camera_feature_name
from jepa_mpc_dataset.reader import Episode, LeRobotDataset, LeRobotReaderConfig
from jepa_mpc_dataset.writer import LeRobotDatasetWriter

__all__ = [
    "DROID_CAMERA_FEATURES",
    "DatasetError",
    "Episode",
    "LeRobotDataset",
    "LeRobotDatasetWriter",
    "LeRobotReaderConfig",
    "camera_feature_name",
]
