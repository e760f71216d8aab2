"""What the planner node reports on ``/diagnostics``: level, one-line message, key/values (no ROS).

The node publishes :func:`planner_status` as a ``diagnostic_msgs/DiagnosticStatus`` inside a
``DiagnosticArray`` (:func:`ros_nodes.conversions.status_to_diagnostics`), the standard that
``rqt_robot_monitor`` and ``diagnostic_aggregator`` read. The levels follow REP 107 /
``diagnostic_msgs/DiagnosticStatus``: OK while commanding or idle on purpose, WARN when a tick sends
nothing for a data reason (missing, stale, malformed input; no goal), ERROR when the model failed to
load or the planner failed. The message names the actual cause: a tick without an image because
the camera sends mono8 reads ``no command (no_image <- bad_encoding): ...``, not only ``no_image``.

A commanding tick whose view is unlike the model's training data (its ``ood_score`` above the
model's ``ood_threshold``, both stated with the checkpoint's token statistics,
:mod:`worldmodel.token_statistics`) is WARN too, its message saying so; the node commands as before.

Values (all strings, as the message type wants): ``state`` (lifecycle: unconfigured, inactive,
active, finalized; the message says how to leave the state: ``~/start`` from the first two, a
restart of the node once finalized), ``command`` (true/false), ``reason`` and ``cause`` of the last
refused tick, ``steps`` (commands since the last reset), ``latency_s``, ``energy``, ``energy_spread``, ``surprise``
(mean L1
per token between the frame and the plan's prediction of it; empty when nothing predicted it),
``replanned`` (false when surprise gating kept the plan's next step), ``ood_score`` and ``ood_threshold``
(empty for a model without token statistics), ``step_limited``,
``clipped_to_workspace``, ``target`` (the 7-D target), ``subgoal`` (``i/n``, 1-based),
``subgoal_steps_left``, ``goals`` (images in the sequence), ``goal_text`` (the goal instruction held,
empty if none) and ``goal_text_pending`` (with one: its goal not predicted yet, it will be from the
next camera frame planned from; the message says so too), ``goal_publishers`` (publishers on the goal
topics, ``goal_image`` and ``goal_text``: 0 means nothing can reach them), ``rejections_total``,
``last_rejection`` and one ``rejections.<reason>`` per reason counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ros_nodes.goal_sequence import Aim
from ros_nodes.safety import InputRejected, RejectionCounter

RESTART_ADVICE = "restart the node (relaunch it, or ros2 run it again) to plan again"
"""What to do once the node is finalized: lifecycle nodes leave that state by no transition, ~/start included."""

# diagnostic_msgs/DiagnosticStatus levels.
OK, WARN, ERROR, STALE = 0, 1, 2, 3
ERROR_REASONS = frozenset({"planner_error", "nonfinite_command"})
"""Refusals that mean the planner misbehaved, not that data was missing: reported as ERROR."""


@dataclass(frozen=True)
class TickReport:
    """What one control tick did: a command with its plan's numbers, or the rejection that stopped it."""

    command: bool
    rejection: InputRejected | None = None
    latency_s: float | None = None
    """Wall-clock seconds of the plan (encoding + CEM)."""
    energy: float | None = None
    """Energy of the chosen plan toward the image aimed at (mean L1 in embedding space)."""
    energy_spread: float | None = None
    surprise: float | None = None
    """Mean L1 per token between the frame planned from and the plan's prediction of it (None: none)."""
    replanned: bool = True
    """False when surprise gating executed the kept plan's next step instead of searching."""
    ood_score: float | None = None
    """How unlike the model's training frames the view planned from was (``MPCStep.ood_score``; None: unknown)."""
    ood_threshold: float | None = None
    """The model's threshold on ``ood_score`` (None: the model holds no token statistics)."""
    step_limited: bool = False
    clipped_to_workspace: bool = False
    target: np.ndarray | None = None
    """[7] the absolute target sent (m, rad, closedness)."""
    aim: Aim | None = None
    instruction: str | None = None
    """The goal instruction commanded toward (a goal in words; then ``aim`` is None)."""


@dataclass(frozen=True)
class Status:
    """One ``DiagnosticStatus``: ``level`` (OK/WARN/ERROR/STALE), ``message``, ``values`` as (key, text)."""

    level: int
    message: str
    values: list[tuple[str, str]] = field(default_factory=list)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, np.ndarray):
        return "[" + ", ".join(f"{float(v):.5f}" for v in value) + "]"
    return str(value)


def _shown(instruction: str) -> str:
    """``instruction`` quoted for a message (its start when long)."""
    return repr(instruction) if len(instruction) <= 80 else f"{instruction[:60]!r}..."


def out_of_distribution(report: TickReport) -> bool:
    """Whether the tick's view scored above the model's threshold (False when either is unknown)."""
    return report.ood_score is not None and report.ood_threshold is not None and report.ood_score > report.ood_threshold


def describe_rejection(rejection: InputRejected) -> str:
    """``no command (no_image <- bad_encoding): <detail>``: the reason, its cause if any, and what to fix."""
    cause = f" <- {rejection.cause.reason}" if rejection.cause is not None else ""
    return f"no command ({rejection.reason}{cause}): {rejection.detail}"


def planner_status(
    lifecycle_state: str,
    report: TickReport | None,
    rejections: RejectionCounter,
    steps: int,
    goals: int,
    configure_error: str = "",
    goal_publishers: int | None = None,
    goal_text: str | None = None,
    goal_text_pending: bool = False,
) -> Status:
    """The planner node's status now.

    ``lifecycle_state``: the node's lifecycle state label (unconfigured, inactive, active, ...);
    ``report``: the last tick while active (None before the first); ``rejections``: the counts
    since the last reset; ``steps``: commands sent since then; ``goals``: images in the goal
    sequence; ``configure_error``: why the last configure failed (empty if it did not);
    ``goal_publishers``: publishers matched on the goal topics, if known; ``goal_text``: the goal instruction
    held (None: none); ``goal_text_pending``: its goal is not predicted yet (the next tick with a camera frame
    predicts it).
    """
    values: list[tuple[str, str]] = [
        ("state", lifecycle_state),
        ("steps", _text(steps)),
        ("goals", _text(goals)),
        ("goal_text", goal_text or ""),
    ]
    if goal_text is not None:
        values.append(("goal_text_pending", _text(goal_text_pending)))
    if goal_publishers is not None:
        values.append(("goal_publishers", _text(goal_publishers)))

    if lifecycle_state != "active":
        if configure_error and lifecycle_state == "unconfigured":
            level, message = ERROR, f"unconfigured: {configure_error}"
        elif lifecycle_state == "inactive":
            level, message = OK, "inactive (model loaded, not commanding): call ~/start or activate"
        elif lifecycle_state == "finalized":
            level, message = (
                OK,
                f"finalized (shut down, model freed; ~/start and transitions are refused): {RESTART_ADVICE}",
            )
        else:
            level, message = OK, f"{lifecycle_state}: call ~/start or configure and activate"
    elif report is None:
        level, message = OK, "active: waiting for the first control tick"
    elif report.command:
        level, message = OK, "commanding"
        if report.aim is not None:
            message += f" toward goal image {report.aim.index + 1}/{report.aim.count}"
        elif report.instruction is not None:
            message += f" toward the instruction {_shown(report.instruction)}"
        if report.energy is not None:
            message += f", energy {report.energy:.4g}"
        if out_of_distribution(report):
            level = WARN
            message += (
                f"; the scene is unlike the model's training data (OOD score {report.ood_score:.3g} > "
                f"{report.ood_threshold:.3g}): expect plans to fail, check the camera, light and objects"
            )
    else:
        rejection = report.rejection
        level = ERROR if rejection.reason in ERROR_REASONS else WARN
        message = describe_rejection(rejection)
        if rejection.reason == "no_goal" and goal_publishers is not None:
            message += f"; {goal_publishers} publisher(s) on the goal topics"
    if goal_text is not None and goal_text_pending and lifecycle_state in ("inactive", "active"):
        message += (
            f"; instruction {_shown(goal_text)} pending: its goal is predicted from the next camera frame planned from"
        )

    if report is not None and lifecycle_state == "active":
        values.append(("command", _text(report.command)))
        if report.rejection is not None:
            values.append(("reason", report.rejection.reason))
            if report.rejection.cause is not None:
                values.append(("cause", report.rejection.cause.reason))
        if report.command:
            values += [
                ("latency_s", _text(report.latency_s)),
                ("energy", _text(report.energy)),
                ("energy_spread", _text(report.energy_spread)),
                ("surprise", "" if report.surprise is None else _text(report.surprise)),
                ("replanned", _text(report.replanned)),
                ("ood_score", "" if report.ood_score is None else _text(report.ood_score)),
                ("ood_threshold", "" if report.ood_threshold is None else _text(report.ood_threshold)),
                ("step_limited", _text(report.step_limited)),
                ("clipped_to_workspace", _text(report.clipped_to_workspace)),
                ("target", _text(report.target)),
            ]
        if report.aim is not None:
            values += [
                ("subgoal", f"{report.aim.index + 1}/{report.aim.count}"),
                ("subgoal_steps_left", _text(report.aim.steps_left)),
            ]
    values += [
        ("rejections_total", _text(rejections.total)),
        ("last_rejection", str(rejections.last) if rejections.last else ""),
    ]
    values += [(f"rejections.{reason}", _text(count)) for reason, count in sorted(rejections.counts.items())]
    return Status(level=level, message=message, values=values)
