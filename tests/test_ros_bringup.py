"""``jepa-mpc bringup`` end to end: a parameter file starts both nodes in one process; Ctrl-C stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy")

from process_helpers import ros_environment, small_bringup  # noqa: E402


@pytest.mark.timeout(120)
def test_bringup_starts_the_nodes_of_a_parameter_file_and_stops_on_ctrl_c(tmp_path, tiny_checkpoint):
    with small_bringup(tmp_path, tiny_checkpoint) as (process, lines):
        deadline = time.monotonic() + 90
        # The sim's 48 px goal image reaching the planner shows both nodes up, each with its section of the file.
        while not any("new goal image 48 x 48" in line for line in lines):
            assert process.poll() is None, "bringup exited early:\n" + "".join(lines)
            assert time.monotonic() < deadline, "no goal image within 90 s:\n" + "".join(lines)
            time.sleep(0.1)
        time.sleep(1.0)  # a few control steps
        process.send_signal(signal.SIGINT)
        try:
            returncode = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("bringup did not stop within 20 s of Ctrl-C:\n" + "".join(lines)) from None
        assert returncode == 0, "".join(lines)
    output = "".join(lines)
    assert "Traceback" not in output and "never retrieved" not in output, output


@pytest.mark.timeout(60)
def test_an_empty_parameter_is_one_line_naming_it_and_the_fix():
    """``-p checkpoint:=`` (nothing after :=) used to print a 19-line rcl traceback."""
    command = [sys.executable, "-m", "ros_nodes.planner_node", "--ros-args", "-p", "device:=cpu", "-p", "checkpoint:="]
    result = subprocess.run(command, env=ros_environment(), capture_output=True, text=True, timeout=50)
    assert result.returncode == 2, result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: parameter checkpoint:") and "-p \"checkpoint:=''\"" in lines[0]
