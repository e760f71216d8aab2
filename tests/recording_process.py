"""A process that records a run until it is signalled, for the crash tests of tests/test_run_recording.py::

    python tests/recording_process.py OUT.mcap

It records as the planner node does, each on its topic: a camera frame (24 x 32, every pixel the frame's number
modulo 256), the end-effector pose (x = 0.3 + number / 1e4 m) and a ``std_msgs/Float64`` energy holding the
number, every 2 ms, and prints ``wrote N`` (N: messages written so far) after each message is written, i.e.
flushed to the file. Ctrl-C (SIGINT) raises KeyboardInterrupt wherever the process is, as in ``jepa-mpc eval``
(also inside a write), then closes the file and prints ``closed N``; SIGKILL leaves the file as it is.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ros_nodes import run_recording
from ros_nodes.conversions import vector_to_pose


def frame(number: int) -> np.ndarray:
    return np.full((24, 32, 3), number % 256, dtype=np.uint8)


def pose(number: int) -> np.ndarray:
    return np.array([0.3 + number / 1e4, 0.0, 0.2, np.pi, 0.0, 0.0, 0.0])


def main(path: str) -> int:
    recorder = run_recording.RunRecorder(path)
    written = 0
    try:
        for number in range(10**9):
            stamp = number * 0.002
            recorder.record_image(run_recording.IMAGE, frame(number), stamp)
            written += 1
            print(f"wrote {written}", flush=True)
            recorder.write(run_recording.EE_POSE, vector_to_pose(pose(number), stamp, "panda_link0"))
            written += 1
            print(f"wrote {written}", flush=True)
            recorder.record_values(energy=float(number))
            written += 1
            print(f"wrote {written}", flush=True)
            time.sleep(0.002)
    except KeyboardInterrupt:  # as in jepa-mpc eval: the interrupt may land inside a write
        recorder.close()
        print(f"closed {sum(recorder.counts.values())}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
