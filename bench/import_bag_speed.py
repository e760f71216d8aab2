"""Import speed of ``jepa-mpc import-bag``: dataset frames written per second of wall time, MCAP and sqlite3.

Writes one bag per storage with ``rosbags``' writer (tests/bag_helpers.py: as a robot records it, cameras at 12 Hz,
pose at 40 Hz, joint states at 20 Hz, all around the 4 fps frames), then times the whole import of each (read the
streams, align, decode the picked images, encode the videos, write the parquet, finalize) as ``jepa-mpc import-bag``
runs it. The frames are smooth moving patterns, which H.264 encodes at a realistic cost (noise would be the worst
case).

    python bench/import_bag_speed.py                        # 240 frames (60 s at 4 fps), two 256 x 256 cameras
    python bench/import_bag_speed.py --frames 400 --size 480 640
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "tests"))  # the bag writer of the tests

from bag_helpers import NS, BagRecorder, record_episode  # noqa: E402
from jepa_mpc_dataset.bag_config import ImportBagConfig  # noqa: E402
from jepa_mpc_dataset.rosbag_import import import_bags  # noqa: E402


def patterns(frames: int, height: int, width: int, phase: float) -> np.ndarray:
    """Smooth moving colour patterns, uint8 [T, H, W, 3]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        s = 0.05 * t + phase
        for c in range(3):
            wave = np.sin(x / (17 + 5 * c) + 3 * s) + np.cos(y / (23 + 3 * c) - 2 * s + c)
            out[t, :, :, c] = (127.5 + 63 * wave).astype(np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240, help="frames of the episode at 4 fps")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    args = parser.parse_args()
    frames, (height, width) = args.frames, args.size
    t = np.linspace(0, 1, frames)
    state = np.stack([0.4 + 0.2 * t, 0.1 * np.sin(6 * t), 0.3 + 0.1 * t, np.pi - 0.1 + 0.2 * t, 0 * t, t, t], axis=1)
    state[:, 3] = (state[:, 3] + np.pi) % (2 * np.pi) - np.pi
    joints = np.random.default_rng(0).normal(size=(frames, 7))
    videos = {"/image": patterns(frames, height, width, 0.0), "/wrist_image": patterns(frames, height, width, 1.0)}
    work = Path(tempfile.mkdtemp(prefix="import_bag_speed_"))
    try:
        print(f"{frames} frames, two {height} x {width} cameras (/image rgb8 Image, /wrist_image JPEG CompressedImage)")
        for storage in ("mcap", "sqlite3"):
            recorder = BagRecorder(work / f"bag_{storage}", storage)
            record_episode(
                recorder,
                videos,
                state.astype(np.float32),
                joints.astype(np.float32),
                1_765_000_000 * NS,
                compressed=("/wrist_image",),
            )
            bag = recorder.close()
            size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
            config = ImportBagConfig(
                bags=(str(bag),),
                out=str(work / f"data_{storage}"),
                task="bench",
                camera_topics=("/image", "/wrist_image"),
                joint_topic="/joint_states",
                progress=False,
            )
            start = time.perf_counter()
            summary = import_bags(config)
            seconds = time.perf_counter() - start
            written = sum(e.length for e in summary.episodes)
            messages = len(recorder.messages)
            print(
                f"{storage:8s} bag {size_mb:6.1f} MB, {messages} messages -> {written} frames in {seconds:.2f} s = "
                f"{written / seconds:.1f} frames/s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
