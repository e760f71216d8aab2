"""Seeded episodes of every policy on the same scenes; results, tables and GIFs to a folder."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jepa_mpc.evaluation.config import EvalConfig
from jepa_mpc.evaluation.policies import make_policy
from jepa_mpc.evaluation.report import markdown_table, summarize
from jepa_mpc_foundation.atomic_files import write_json_atomic, write_text_atomic
from jepa_mpc_foundation.episode_backends import EpisodeWork, run_episodes
from jepa_mpc_foundation.user_errors import WorkerLost


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    final_distance: float
    energies: list[float]
    latencies_s: list[float]
    surprises: list[float | None] = dataclasses.field(default_factory=list)
    """Per planner step: mean L1 per token between the frame and the plan's prediction of it (None: none)."""
    replanned: list[bool] = dataclasses.field(default_factory=list)
    """Per planner step: searched (True) or kept the plan's next step (surprise gating)."""
    ood_scores: list[float | None] = dataclasses.field(default_factory=list)
    """Per planner step: how unlike the model's training frames the view was (``MPCStep.ood_score``, higher is
    less alike; None: the model holds no token statistics)."""
    ood_score_mean: float | None = None
    """Mean of ``ood_scores`` over the episode (None: none known): the episode's score."""
    ood_score_max: float | None = None
    ood_steps_above: int | None = None
    """Planner steps whose score was above the model's threshold (None: no threshold or no score)."""
    instruction: str = ""
    """The instruction planned from (a text goal), "" for an image goal."""
    refused: str = ""
    """Why the model refused the instruction (the episode then took no step); "" when it planned."""
    wrong_object: bool | None = None
    """A language task: whether a cube other than the named one moved (None: not a language task)."""


def run_episode(
    env, policy, seed: int, config: EvalConfig, record: bool = False, progress: bool = False, recording=None
) -> tuple[EpisodeResult, list[np.ndarray]]:
    """One seeded episode; stops at success. Returns the result and (if ``record``) the video frames,
    each showing the camera (both views for a two-view model: ``policy.views``) beside the image the
    policy aimed at. ``recording``: a :class:`jepa_mpc.evaluation.recording.EpisodeRecording` the episode
    is written to as it runs (None: not recorded)."""
    from tqdm import tqdm

    from jepa_mpc.episode_video import compose_frame
    from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE
    from worldmodel.preprocess import model_view

    def camera(obs: dict) -> np.ndarray:
        return model_view(obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE], policy.views)

    obs, info = env.reset(seed=seed)
    goals = config.episode_goals(info, obs["state"], policy.views)
    max_steps = config.steps_per_episode(goals)
    policy.reset(goals)
    instruction, refused = "", ""
    if config.goal == "text" and hasattr(policy, "set_goal_text"):  # the random floor reads no goal
        from worldmodel.language_goal import InstructionError

        instruction = config.goal_text or info["instruction"]
        try:
            policy.set_goal_text(instruction, camera(obs))
        except InstructionError as refusal:
            refused, max_steps = str(refusal), 0
    if recording is not None:
        recording.start(obs, goals.images, instruction or None)
    energies: list[float] = []
    latencies: list[float] = []
    surprises: list[float | None] = []
    replanned: list[bool] = []
    ood_scores: list[float | None] = []
    frames = [compose_frame(camera(obs), policy.goal_image, energies, max_steps)] if record else []
    steps = 0
    bar = tqdm(total=max_steps, desc=f"seed {seed}", unit="step", disable=not progress)
    while steps < max_steps and not info["is_success"]:
        action, diagnostics = policy.act(camera(obs), obs["state"])
        if recording is not None:
            recording.decision(obs["state"], action, diagnostics, info, len(goals.images))
        obs, _, _, _, info = env.step(action)
        steps += 1
        if recording is not None:
            recording.observation(obs)
        bar.update(1)
        if "energy" in diagnostics:
            energies.append(float(diagnostics["energy"]))
            latencies.append(float(diagnostics["latency_s"]))
            surprises.append(diagnostics.get("surprise"))
            replanned.append(bool(diagnostics.get("replanned", True)))
            ood_scores.append(diagnostics.get("ood_score"))
        if record:
            frames.append(compose_frame(camera(obs), policy.goal_image, energies, max_steps))
    bar.close()
    known = [score for score in ood_scores if score is not None]
    threshold = getattr(policy, "ood_threshold", None)
    result = EpisodeResult(
        seed,
        bool(info["is_success"]),
        steps,
        float(info["distance"]),
        energies,
        latencies,
        surprises,
        replanned,
        ood_scores,
        ood_score_mean=float(np.mean(known)) if known else None,
        ood_score_max=max(known, default=None),
        ood_steps_above=sum(score > threshold for score in known) if known and threshold is not None else None,
        instruction=instruction,
        refused=refused,
        wrong_object=bool(info["wrong_object_moved"]) if "wrong_object_moved" in info else None,
    )
    return result, frames


def make_env_for_model(config: EvalConfig, needs):
    """The task env of ``config.sim``, checked against what the model needs (``worldmodel.model_needs.ModelNeeds``):
    one env step per predictor step, and the camera at the model's image size where the model states one.

    Raises:
        ValueError: ``sim.control_hz`` or ``sim.image_size`` contradicts the model (one line naming both
            values and the fix).
    """
    import math

    import gymnasium

    import sim

    if not math.isclose(config.sim.control_hz, needs.control_hz, rel_tol=1e-6):
        raise needs.contradiction(
            "--sim.control_hz",
            f"{config.sim.control_hz:g}",
            f"one action per predictor step of {needs.step_seconds:g} s",
            f"use --sim.control_hz {needs.control_hz:g}",
        )
    if needs.image_size is not None and config.sim.image_size != needs.image_size:
        raise needs.contradiction(
            "--sim.image_size",
            config.sim.image_size,
            f"{needs.image_size} px images",
            f"leave --sim.image_size out (the model's size is the default) or pass {needs.image_size}",
        )
    if needs.image_size is None:
        print(
            f"eval: {needs.checkpoint or 'the model'} states no image size: the camera renders "
            f"{config.sim.image_size} px, resized to the model's input (--sim.image_size sets the camera)"
        )
    language = {"instructions": config.instructions} if sim.is_language_task(config.task) else {}
    return gymnasium.make(sim.env_id(config.task), config=config.sim, **language).unwrapped


class EpisodeWorker:
    """One process's share of an evaluation (or the demo's one episode): the env, world model and
    policies it builds once, and the episodes it is given, each seeded by its index alone
    (``config.seed + index``) so that its result does not depend on the process or on the episodes
    before it."""

    def __init__(self, config: EvalConfig) -> None:
        from worldmodel import load_world_model
        from worldmodel.checkpoint import resolve_checkpoint
        from worldmodel.model_needs import model_needs

        # Processes side by side share the cores (a Ray task holds one CPU).
        threads = config.threads or (1 if config.workers > 1 or config.backend == "ray" else 0)
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.config = config
        self.checkpoint = resolve_checkpoint(config.checkpoint)
        self.world_model = load_world_model(self.checkpoint, device=config.device or None)
        self.env = make_env_for_model(config, model_needs(self.checkpoint))
        if config.goal == "text":  # told before any episode runs, in one line
            if not self.world_model.can_read_goal_text:
                raise ValueError(
                    f"--goal text: {self.checkpoint} reads no instructions (it holds no language-goal predictor): "
                    "pass --checkpoint with one (make language-model; jepa-mpc train-language-goal)"
                )
            if config.goal_text:
                self.world_model.language_goal.check_words(config.goal_text)  # InstructionError, a ValueError
        self.policies: dict[str, object] = {}
        if config.record:
            from jepa_mpc.evaluation.recording import check_recording_available

            check_recording_available()  # a missing ROS install is told before any episode runs

    def policy(self, name: str, seed: int):
        """Policy ``name`` for the episode of ``seed``: the random baseline's action stream restarts from
        the seed; a planner is built once (it forgets its plan and restarts its sampling at each reset)."""
        if name == "random":
            return make_policy(name, self.config, self.world_model, seed=seed)
        if name not in self.policies:
            self.policies[name] = make_policy(name, self.config, self.world_model)
        return self.policies[name]

    def run(self, name: str, index: int) -> EpisodeResult:
        """Episode ``index`` of policy ``name``; the first ``config.videos`` are saved as GIFs in ``config.out``,
        and with ``config.record`` every episode as an MCAP run recording beside them (closed also on Ctrl-C)."""
        from jepa_mpc.episode_video import write_gif

        config, seed = self.config, self.config.seed + index
        record = index < config.videos
        stem = Path(config.out) / f"{config.task}_{name}_seed{seed}"
        with self._recording(stem.with_suffix(".mcap"), name) as recording:
            result, frames = run_episode(self.env, self.policy(name, seed), seed, config, record, recording=recording)
        if record:
            write_gif(stem.with_suffix(".gif"), frames, fps=2.0)
        return result

    def _recording(self, path: Path, policy: str):
        """The episode's recording to ``path`` with ``config.record``, else a context that gives None."""
        if not self.config.record:
            return contextlib.nullcontext()
        from jepa_mpc.evaluation.recording import EpisodeRecording

        return EpisodeRecording(path, 1.0 / self.config.sim.control_hz, policy)

    def close(self) -> None:
        self.env.close()


def _run_job(worker: EpisodeWorker, job: tuple[str, int]) -> EpisodeResult:
    """Episode ``job`` = (policy name, index) of ``worker``: what each process of :func:`evaluate` runs."""
    return worker.run(*job)


RESULT_FILES = ("results.json", "results.md")


class EvaluationInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`evaluate`: the episodes finished before it are summarized in ``summaries``
    and written to results.json (``"status": "interrupted"``) and results.md."""

    def __init__(self, summaries: list[dict], finished: int, planned: int) -> None:
        super().__init__(f"interrupted after {finished} of {planned} episodes")
        self.summaries, self.finished, self.planned = summaries, finished, planned


def evaluate(config: EvalConfig) -> list[dict]:
    """Run every policy of ``config`` on the same seeded episodes; write results and GIFs to ``config.out``.

    ``config.workers`` > 1 runs the episodes in that many spawned processes (a fresh GL context each),
    ``config.backend`` ray as Ray tasks (:mod:`jepa_mpc_foundation.episode_backends`); the results are
    those of one process with the same ``threads``, in seed order. The episodes run
    seed by seed (every policy on a seed before the next seed), so that the results of an interrupted
    run compare the policies on the same scenes.

    Raises:
        EvaluationInterrupted: on Ctrl-C, once the workers are stopped and the finished episodes are
            written (results marked as interrupted). An earlier run's results are removed at the start,
            so they never sit beside this run's GIFs.
        WorkerLost: a worker process was killed (Ray: more often than ``ray.max_retries``), once the finished
            episodes are written as on Ctrl-C.
    """
    from tqdm import tqdm

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, i) for i in range(config.episodes) for name in config.policies]
    results: dict[tuple[str, int], EpisodeResult] = {}
    # Built first, also with workers: a bad checkpoint or sim setting is told as itself, not as a broken pool.
    worker = EpisodeWorker(config)
    for name in RESULT_FILES:  # only now: a mistake in the input leaves the earlier results where they are
        (out / name).unlink(missing_ok=True)
    backend = config.episode_backend()
    if not backend.runs_here(len(jobs)):
        print(f"eval: {len(jobs)} episodes in {backend.describe()}", flush=True)
    try:
        with tqdm(total=len(jobs), desc=f"{config.task}: {'/'.join(config.policies)}", unit="episode") as progress:

            def finished(job: tuple[str, int], result: EpisodeResult) -> None:
                results[job] = result
                progress.update()

            try:
                run_episodes(
                    EpisodeWork(EpisodeWorker, _run_job, _absolute_paths(config)), jobs, backend, finished, worker
                )
            finally:
                worker.close()
    except KeyboardInterrupt:
        summaries = _write_results(
            config, worker.checkpoint, results, interrupted=True, ood_threshold=worker.world_model.ood_threshold
        )
        raise EvaluationInterrupted(summaries, len(results), len(jobs)) from None
    except WorkerLost as error:
        _write_results(
            config, worker.checkpoint, results, interrupted=True, ood_threshold=worker.world_model.ood_threshold
        )
        hint = "fewer --workers need less memory" if backend.name == "local" else "more --ray.max_retries"
        raise WorkerLost(
            f"{error}; the {len(results)} finished episodes' results are in {out / 'results.json'} (marked "
            f"interrupted): run the command again ({hint})"
        ) from error
    return _write_results(
        config, worker.checkpoint, results, interrupted=False, ood_threshold=worker.world_model.ood_threshold
    )


def _absolute_paths(config: EvalConfig) -> EvalConfig:
    """``config`` with its checkpoint and output folder as absolute paths: a worker elsewhere (a Ray node) would
    resolve a relative one from its own folder. (An empty checkpoint, the shipped model, each resolves itself.)"""
    checkpoint = os.path.abspath(config.checkpoint) if config.checkpoint else ""
    return dataclasses.replace(config, checkpoint=checkpoint, out=os.path.abspath(config.out))


def _write_results(
    config: EvalConfig,
    checkpoint,
    results: dict[tuple[str, int], EpisodeResult],
    interrupted: bool,
    ood_threshold: float | None = None,
) -> list[dict]:
    """Write results.json and results.md of the finished episodes in ``results``; return the summaries
    (policies without a finished episode are left out). ``ood_threshold``: the world model's threshold on
    the out-of-distribution score (None: it holds no token statistics)."""
    summaries = []
    for name in config.policies:
        episodes = [results[name, i] for i in range(config.episodes) if (name, i) in results]
        if episodes:
            summaries.append(summarize(name, episodes, ood_threshold) | {"per_episode": [r.__dict__ for r in episodes]})
    planned = len(config.policies) * config.episodes
    report = {
        "task": config.task,
        "checkpoint": str(checkpoint),
        "status": "interrupted" if interrupted else "complete",
        "episodes_finished": len(results),
        "episodes_planned": planned,
        "ood_threshold": ood_threshold,
        "config": dataclasses.asdict(config),
        "summaries": summaries,
    }
    out = Path(config.out)
    write_json_atomic(out / "results.json", report)
    table = markdown_table(config.task, summaries)
    if interrupted:
        table = (
            f"Interrupted: {len(results)} of {planned} episodes finished; the table holds those "
            '(results.json: "status": "interrupted").\n\n' + table
        )
    write_text_atomic(out / "results.md", table)
    return summaries


def run_evaluation(config: EvalConfig) -> None:
    """``jepa-mpc eval``: evaluate, then print the results table and where the files are (on Ctrl-C, the
    table of the episodes finished so far, before the interrupt goes on to the command line)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    files = f"{Path(config.out).resolve()}/results.md, results.json" + (" and GIFs" if config.videos else "")
    files += " and MCAP recordings" if config.record else ""
    try:
        summaries = evaluate(config)
    except EvaluationInterrupted as interrupted:
        if interrupted.summaries:
            print(markdown_table(config.task, interrupted.summaries))
        print(f"eval: {interrupted}; the finished episodes' results: {files}", flush=True)
        raise
    print(markdown_table(config.task, summaries))
    print(f"results: {files}")
