"""``--backend ray`` (jepa_mpc_foundation/episode_backends.py): ``eval`` and ``collect`` on a local Ray instance
of 2 CPUs give the local backend's per-episode results and files, an episode whose worker process is killed is
rerun (and written once), and without Ray installed the backend is one line naming the fix."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import process_helpers
import ray_helpers
from command_helpers import eval_argv
from jepa_mpc.cli import main as cli_main, parse_command_config, run_command
from jepa_mpc_dataset import LeRobotDataset
from jepa_mpc_foundation.configuration import ConfigError
from jepa_mpc_foundation.episode_backends import EpisodeBackend, EpisodeWork, run_episodes
from model_helpers import save_tiny_model
from sim.collect import _Collector

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
COLLECT = ["--task", "reach", "--episodes", "2", "--sim.image_size", "32", "--seed", "5"]


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance of 2 CPUs for the module, used by the commands as it is (they start none); its
    workers import this checkout and tests/ray_helpers.py through PYTHONPATH."""
    ray = pytest.importorskip("ray", reason="the ray extra: pip install -e .[ray] (make test installs it)")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(TESTS), previous) if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.pt", dim=32, depth=1)


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory) -> Path:
    """Two reach episodes collected in this process (the local backend)."""
    root = tmp_path_factory.mktemp("local") / "reach"
    assert run_command("collect", [*COLLECT, "--out", str(root)]) == 0
    return root


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_default_commands_never_import_ray_and_without_it_the_backend_is_one_line_naming_the_fix(tmp_path):
    """In a fresh process: importing every command imports no Ray; where ``import ray`` fails (not installed),
    ``--backend ray`` is one line naming the fix, exit 2."""
    code = (
        "import sys; import jepa_mpc.cli, jepa_mpc.demo, jepa_mpc.evaluation.runner, sim.collect\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
        "sys.modules['ray'] = None  # what `import ray` meets where it is not installed\n"
        f"sys.exit(jepa_mpc.cli.main(['collect', *{COLLECT!r}, '--out', {str(tmp_path)!r}, '--backend', 'ray']))\n"
    )
    env = process_helpers.environment()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip() == (
        "jepa-mpc collect: error: --backend ray needs Ray, which is not installed: pip install 'jepa-mpc[ray]'"
    )


def test_ray_flags_belong_to_the_ray_backend_and_workers_to_the_local_one(tmp_path):
    with pytest.raises(ConfigError, match="add --backend ray"):
        parse_command_config("collect", [*COLLECT, "--out", str(tmp_path), "--ray.address", "auto"])
    with pytest.raises(ConfigError, match="leave --workers out"):
        parse_command_config("collect", [*COLLECT, "--out", str(tmp_path), "--backend", "ray", "--workers", "2"])


def test_eval_on_ray_gives_the_per_episode_results_of_the_local_backend(local_ray, tiny_model, tmp_path):
    argv = [*eval_argv(tiny_model, episodes=2, videos=1, policies=["world_model", "random"]), "--threads", "1"]
    reports = {}
    for backend in ("local", "ray"):
        out = tmp_path / backend
        assert cli_main([*argv, "--backend", backend, "--out", str(out)]) == 0
        reports[backend] = json.loads((out / "results.json").read_text())
        assert sorted(p.name for p in out.glob("*.gif")) == [
            f"reach_{name}_seed1000.gif" for name in ("random", "world_model")
        ]
    assert reports["ray"]["status"] == "complete" and reports["ray"]["config"]["backend"] == "ray"
    for local, ray in zip(reports["local"]["summaries"], reports["ray"]["summaries"], strict=True):
        assert local["policy"] == ray["policy"] and local["successes"] == ray["successes"]
        assert [e["seed"] for e in ray["per_episode"]] == [1000, 1001]
        for a, b in zip(local["per_episode"], ray["per_episode"], strict=True):
            a.pop("latencies_s"), b.pop("latencies_s")
            assert a == b


def test_collect_on_ray_writes_the_files_of_the_local_backend(local_ray, local_dataset, tmp_path):
    root = tmp_path / "reach"
    assert run_command("collect", [*COLLECT, "--out", str(root), "--backend", "ray"]) == 0
    assert _file_hashes(root) == _file_hashes(local_dataset)


def test_a_killed_workers_episode_is_rerun_and_written_once(local_ray, local_dataset, tmp_path):
    root, attempts = tmp_path / "reach", tmp_path / "attempts"
    attempts.mkdir()
    config = parse_command_config("collect", [*COLLECT, "--out", str(root), "--backend", "ray"])
    _Collector(config)  # the dataset exists before the workers open it, as collect() makes it
    work = EpisodeWork(_Collector, functools.partial(ray_helpers.killed_on_first_attempt, str(attempts)), config)
    results = {}
    run_episodes(work, [0, 1], EpisodeBackend("ray"), results.__setitem__)
    pids = {index: (attempts / f"episode{index}").read_text().split() for index in (0, 1)}
    assert all(len(p) == 2 and p[0] != p[1] for p in pids.values()), pids  # killed once, rerun in a new process
    # Episode 0 was recorded by its rerun; episode 1's rerun found it complete on disk and wrote nothing.
    assert results[0].index == 0 and results[0].length == 17 and results[1] is None
    assert not list(root.rglob("*.tmp"))
    # The same command resumes: both episodes are on disk, it only rebuilds meta/; every file is the local one's.
    assert run_command("collect", [*COLLECT, "--out", str(root)]) == 0
    assert _file_hashes(root) == _file_hashes(local_dataset)
    dataset = LeRobotDataset(root)
    assert dataset.num_episodes == 2
    np.testing.assert_array_equal(dataset.episode(1).state, LeRobotDataset(local_dataset).episode(1).state)
