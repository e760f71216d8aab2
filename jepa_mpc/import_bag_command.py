"""``jepa-mpc import-bag``: rosbag2 bags -> a LeRobot v3.0 dataset (:func:`jepa_mpc_dataset.rosbag_import.import_bags`),
then a line saying what was written and the ``jepa-mpc train`` command that reads it.
"""

from __future__ import annotations

import shlex

from jepa_mpc_dataset.bag_config import ImportBagConfig
from jepa_mpc_dataset.format import camera_feature_name
from jepa_mpc_dataset.rosbag_import import import_bags
from worldmodel.training.config import DataConfig


def run_import_bag(config: ImportBagConfig) -> None:
    """Import the bags and print the summary; the errors are :func:`import_bags`'s (one line each in ``jepa-mpc``)."""
    summary = import_bags(config)
    print(summary.text())
    views = [camera_feature_name(name) for name in config.camera_names[: len(config.camera_topics)]]
    camera = "" if views[0] == DataConfig().camera else f" --data.camera {views[0]}"
    wrist = f" (add --data.wrist_camera {views[1]} for a two-view model)" if len(views) == 2 else ""
    print(
        f"import-bag: train on it with: jepa-mpc train --data {shlex.quote(str(summary.out))}{camera} "
        f"--encoder ENCODER --out RUN{wrist}"
    )
