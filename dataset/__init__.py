"""Robot datasets in LeRobot's v3.0 layout: written by the simulator, read by training.

- :mod:`dataset.format`: the on-disk layout, feature names and the error type both sides share.
- :mod:`dataset.writer`: :class:`~dataset.writer.LeRobotDatasetWriter` (episodes, stats, finalize).
- :mod:`dataset.reader`: :class:`~dataset.reader.LeRobotDataset` (sim data and DROID converted to LeRobot).
- :mod:`dataset.video`: mp4 encoding and decoding with PyAV.

See docs/dataset.md.
"""
