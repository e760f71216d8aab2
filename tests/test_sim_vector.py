"""Vectorised envs in forked workers render: the GL context is made in the worker at its first render.

The scenario runs in a fresh interpreter: EGL initialised in a process makes every process forked
from it hang at its first render, and the pytest process has rendered already (tests/test_sim_env.py).
A fresh interpreter is also what a user's script is when it calls ``make_vec`` first thing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import process_helpers

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, multiprocessing
import gymnasium, numpy as np
import sim  # registers the ids, chooses the GL backend
from sim.config import SimConfig

envs = gymnasium.make_vec("jepa_mpc/Reach-v0", num_envs=2, vectorization_mode="async", config=SimConfig(image_size=48))
obs, info = envs.reset(seed=[3, 4])
for _ in range(3):
    obs, *_ = envs.step(np.zeros((2, 7), dtype=np.float32))
report = {
    "start_method": multiprocessing.get_start_method(),
    "shapes": {key: list(value.shape) for key, value in obs.items()},
    "dtype": str(obs["exterior_image_1_left"].dtype),
    "mean_abs_difference": float(np.abs(obs["exterior_image_1_left"][0].astype(int) - obs["exterior_image_1_left"][1].astype(int)).mean()),
    "std": [float(image.std()) for image in obs["exterior_image_1_left"]],
    "goal_images": list(info["goal_image"].shape),
}
envs.close()
print(json.dumps(report))
"""  # noqa: E501  (a script run in a subprocess: one long line in it, kept as the test wrote it)


@pytest.mark.timeout(120)
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_async_vector_env_renders_in_forked_workers():
    env = process_helpers.environment()
    # Before the renderer was lazy this hung at reset: the timeout turns a regression into a failure.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["start_method"] == "fork"  # the default on Linux: the case that used to hang
    assert report["shapes"] == {
        "state": [2, 7],
        "exterior_image_1_left": [2, 48, 48, 3],
        "wrist_image_left": [2, 48, 48, 3],
    }
    assert report["dtype"] == "uint8" and report["goal_images"] == [2, 48, 48, 3]
    assert min(report["std"]) > 10  # real renders, not blank frames
    assert report["mean_abs_difference"] > 1.0  # each worker renders its own seeded scene


AFTER_RENDERING = """
import json
import gymnasium, numpy as np
import sim
from sim.config import SimConfig

config = SimConfig(image_size=32)
env = gymnasium.make("jepa_mpc/Reach-v0", config=config)
env.reset(seed=0)  # renders: this process holds an EGL context now
forked = gymnasium.make_vec("jepa_mpc/Reach-v0", num_envs=2, vectorization_mode="async", config=config)
try:
    forked.reset(seed=[3, 4])
    error = None
except RuntimeError as raised:
    error = str(raised)
forked.close(terminate=True)
spawned = gymnasium.make_vec("jepa_mpc/Reach-v0", num_envs=2, vectorization_mode="async", config=config,
                             vector_kwargs={"context": "spawn"})
obs, _ = spawned.reset(seed=[3, 4])
spawned.close()
print(json.dumps({"error": error, "spawned": list(obs["exterior_image_1_left"].shape),
                  "std": float(obs["exterior_image_1_left"].std())}))
"""


@pytest.mark.timeout(150)
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_forked_workers_of_a_process_that_rendered_fail_with_the_fix_instead_of_hanging():
    """A process that rendered with EGL cannot fork renderers (the child hangs at its first render): an
    async vector env forked from it raises, saying to use spawn, and spawn works."""
    env = process_helpers.environment()
    if env["MUJOCO_GL"] != "egl":
        pytest.skip("the hang is EGL's")
    # In a session of its own: a hang is ended with its forked children, not left behind.
    process = subprocess.Popen(
        [sys.executable, "-c", AFTER_RENDERING],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the forked workers hung instead of failing")
    assert process.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["error"] is not None and "forked from process" in report["error"]
    assert 'vector_kwargs={"context": "spawn"}' in report["error"]
    assert report["spawned"] == [2, 32, 32, 3] and report["std"] > 10
