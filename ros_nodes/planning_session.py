"""One robot's planning session: everything the planner node decides, without ROS (numpy arrays in, decisions out).

The ROS node (:mod:`ros_nodes.planner_node`) declares parameters, converts messages, runs the planning
thread and publishes; what it does with each message, service call, transition and tick is decided
here, so that it is tested without a ROS graph (``tests/test_planning_session.py``)::

    session = PlanningSession(PlannerNodeConfig(), now=time.time, log=logging.getLogger("planner"))
    session.configure(load_planner)              # lifecycle configure: goal files, model, first goal encoded
    session.start()                              # activate: commands may be sent
    session.accept("image", frame, stamp_s)      # a sensor message, converted: [H, W, 3] uint8, s
    session.accept("pose", pose, stamp_s)        # [6] m, rad; "gripper": closedness, a 0-d array
    session.take_goal_message(key, stamp_s, decode)   # a goal image message (dropped when a repeat)
    session.take_goal_text("touch the red cube", stamp_s)  # a goal in words (replaces the goal images)
    report = session.control_step(publish)       # planning thread, once per tick: plan, then publish(Command)
    session.stop()                               # deactivate: nothing is sent from here on
    session.status("inactive")                   # what /diagnostics says

What one control step decides, in order: the inputs must be present and fresh
(:meth:`ros_nodes.safety.InputGuard.ready`, waiting up to :data:`NEW_DATA_WAIT_PERIODS` for a frame
and pose stamped after the previous command); the robot must stand where a target can be sent
(:meth:`ros_nodes.safety.CommandGuard.check_reachable`: refused before anything is encoded or planned);
a goal must be held (:class:`ros_nodes.goal_sequence.RobotGoals` picks the image aimed at, encoded
when its turn comes; or an instruction, whose goal is predicted once, from the frame this tick plans
from); the goal must hold the model's views; then the planner plans and its action becomes a safe
absolute target. A refusal is an :class:`~ros_nodes.safety.InputRejected`, counted by
reason and logged once per reason; the tick's :class:`~ros_nodes.diagnostics.TickReport` says which.

Threads: the planner (:attr:`PlanningSession.mpc`) is used by the thread that runs
:meth:`PlanningSession.control_step` alone (plans, goal encodings and predictions from instructions,
resets of its plan); every other method may be called from any thread and only holds
:attr:`PlanningSession.lock` for a few statements, never during a plan, so services and sensors are
answered at once while a plan runs.
A command leaves through a :class:`ros_nodes.command_gate.CommandGate`: :meth:`~PlanningSession.halt`
(stop, deactivate, shutdown, an error transition, a signal) closes it, and a plan that ends after
that, or after the goal images changed or :meth:`~PlanningSession.reset`, publishes nothing.

Goals in words (:meth:`PlanningSession.take_goal_text`): an instruction replaces the goal images (and a
goal image, a capture or goal files replace it). The planning thread predicts its goal tokens once
(:meth:`planner.mpc.GoalImageMPC.set_goal_text`), at the first tick with fresh inputs, from the frame
that tick plans from (both views side by side for a two-view model, as goal images are); until then it
is *pending* (status: ``goal_text_pending``). A refused instruction (no words, naming nothing the model
knows, not fitting the scene in view, a model that reads no instructions) leaves no goal at all, as a
malformed goal image does: one warning naming the instruction and why, ticks at
``no_goal <- goal_text_refused`` and no command until a new goal image or instruction.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from jepa_mpc_foundation.user_errors import one_line
from planner.mpc import GoalImageMPC, MPCStep
from ros_nodes.command_gate import CommandGate
from ros_nodes.config import PlannerNodeConfig, planning_threads
from ros_nodes.diagnostics import RESTART_ADVICE, Status, TickReport, out_of_distribution, planner_status
from ros_nodes.goal_images import load_goal_image, save_goal_image
from ros_nodes.goal_sequence import RepeatedGoalFilter, RobotGoals
from ros_nodes.safety import (
    CommandGuard,
    InputGuard,
    InputRejected,
    RejectionCounter,
    SafeCommand,
    Sample,
    check_fresh,
    check_goal_views,
    planner_frame,
)
from worldmodel.config import WorldModelConfig
from worldmodel.language_goal import InstructionError, instruction_words
from worldmodel.model_needs import ModelNeeds

MAX_INSTRUCTION_CHARS = 500
"""A longer goal instruction is refused before it is read (and only its start is quoted in the log)."""

NEW_DATA_WAIT_PERIODS = 0.25
"""How long (in control periods) a tick waits for a frame and pose stamped after the previous command
before refusing with ``awaiting_new_data``: after a plan longer than the period the next tick starts
at once, a few ms after that command; a 30 Hz camera needs up to 33 ms for the next frame."""


class Log(Protocol):
    """Where the session logs: an rclpy logger (``node.get_logger()``) or a :class:`logging.Logger`."""

    def info(self, message: str) -> object: ...

    def warning(self, message: str) -> object: ...

    def error(self, message: str) -> object: ...


def load_planner(config: PlannerNodeConfig) -> GoalImageMPC:
    """The world model of ``config.checkpoint`` (empty: the shipped default model) wrapped in the MPC.

    Sets torch's CPU threads (:func:`ros_nodes.config.planning_threads`). Raises the checkpoint
    loader's errors (``CheckpointError``, ``FileNotFoundError``: user errors).
    """
    from worldmodel import load_world_model
    from worldmodel.checkpoint import resolve_checkpoint

    device = None if config.device == "auto" else config.device  # None: cuda if present
    torch.set_num_threads(planning_threads(config.torch_threads, os.cpu_count()))
    return GoalImageMPC(load_world_model(resolve_checkpoint(config.checkpoint), device=device), config.planner)


def model_views(mpc: GoalImageMPC) -> int:
    """Camera views the planner's model plans from, as its checkpoint states them
    (:class:`worldmodel.model_needs.ModelNeeds`, which ``jepa-mpc eval`` follows too); 1 for a world model without
    a ``WorldModelConfig`` (the analytic test model). The image size needs no setting: the camera's images, of
    any size, are centre-cropped and resized to the model's (:mod:`worldmodel.preprocess`)."""
    config = getattr(mpc.world_model, "config", None)
    return ModelNeeds.of(config).views if isinstance(config, WorldModelConfig) else 1


def _quoted(instruction: str) -> str:
    """``instruction`` quoted for a log line: itself if short, else its start and its length."""
    if len(instruction) <= 80:
        return repr(instruction)
    return f"{instruction[:60]!r}... ({len(instruction)} characters)"


def _instruction_refusal(instruction: str, mpc: GoalImageMPC | None) -> InputRejected | None:
    """Why ``instruction`` is refused before any model reads it (``goal_text_refused``), None if it is not: no
    words, too long, or a configured model (``mpc``; None: not yet known) that reads no instructions."""
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        detail = (
            f"the instruction {_quoted(instruction)} is longer than {MAX_INSTRUCTION_CHARS} characters: say what to "
            "do in a few words, e.g. 'touch the red cube'"
        )
    elif not instruction_words(instruction):
        detail = f"the instruction {instruction!r} has no words: say what to do, e.g. 'touch the red cube'"
    elif mpc is not None and not getattr(mpc.world_model, "can_read_goal_text", False):
        detail = _no_reader_detail(instruction)
    else:
        return None
    return InputRejected("goal_text_refused", detail)


def _no_reader_detail(instruction: str) -> str:
    return (
        f"the instruction {_quoted(instruction)} cannot be planned: this world model reads no instructions (it holds "
        "no language-goal predictor); plan with a checkpoint to which `jepa-mpc train-language-goal` added one, or "
        "publish a goal image"
    )


def _text_refusal(instruction: str, error: ValueError) -> InputRejected:
    """The ``goal_text_refused`` rejection of the planner's refusal ``error`` of ``instruction``
    (:meth:`planner.mpc.GoalImageMPC.set_goal_text`: an InstructionError names the instruction itself)."""
    if isinstance(error, InstructionError):
        return InputRejected("goal_text_refused", one_line(error))
    if "reads no instructions" in str(error):
        return InputRejected("goal_text_refused", _no_reader_detail(instruction))
    return InputRejected("goal_text_refused", f"the instruction {_quoted(instruction)} was refused: {one_line(error)}")


@dataclass(frozen=True)
class Command:
    """A command the control step sends: what the publisher turns into messages, under the gate's lock."""

    stamp_s: float
    """When it is sent (s, the session's clock): the stamp of its messages."""
    state: np.ndarray
    """[7] the measured state it was planned from (m, rad, closedness)."""
    safe: SafeCommand
    """The absolute target ``safe.target`` [7] (m, rad, closedness in [0, 1]) and whether it was limited."""
    step: MPCStep
    """The plan (``plan`` [H, 7]), its energies and latency."""


@dataclass(frozen=True)
class Answer:
    """A service's answer (``std_srvs/Trigger``'s response): success and a message for the user."""

    success: bool
    message: str


class PlanningSession:
    """The planner node's state and decisions (module docstring); no ROS.

    ``config``: the node's parameters (rates, safety limits, goal files, planner budget); ``now``:
    the clock messages are stamped against (s; the node's ROS clock, a fake clock in tests); ``log``:
    where decisions are logged (each rejection reason once), ``logging.getLogger(__name__)`` if None;
    ``on_goals_changed``: called with the new goal images, the stamp (s) and the goal instruction in force (None:
    none) whenever the goals change, a refused instruction included.
    """

    def __init__(
        self,
        config: PlannerNodeConfig,
        now: Callable[[], float],
        log: Log | None = None,
        on_goals_changed: Callable[[list[np.ndarray], float, str | None], None] | None = None,
    ) -> None:
        self.config = config
        self.on_goals_changed = on_goals_changed  # (goal images [H, W, 3] uint8, stamp s, instruction): a recorder
        self.now = now
        self.log: Log = log if log is not None else logging.getLogger(__name__)
        # One lock, held only for short steps, never during a plan or a goal encoding: the state below, the
        # inputs (a condition, notified on new samples: a tick waiting for a frame wakes) and the gate.
        self.lock = threading.RLock()
        self.inputs_changed = threading.Condition(self.lock)
        self.gate = CommandGate(self.lock)  # open while active; closed by every way of stopping
        self.mpc: GoalImageMPC | None = None  # set by configure, None after cleanup
        self.configure_error = ""  # why the last configure failed; empty if it did not
        self.rejections = RejectionCounter()
        self.inputs = InputGuard(config.safety, self.rejections)
        self.views = 1  # camera views of the model (set on configure): 2 also needs wrist_image
        self.commands = CommandGuard(config.safety)
        self.goals = RobotGoals(config.planner, config.subgoal_steps)
        self.steps = 0  # commands sent since the last reset
        self.last_command_s: float | None = None  # stamp of the previous command
        self.last_report: TickReport | None = None  # the last tick while active
        self.encoded_index = -1  # which goal image the planner holds encoded
        self._reset_pending = False  # reset() asked the planning thread to forget its plan
        self._goal_messages = RepeatedGoalFilter()  # both goal subscriptions deliver a latched message
        self._unlike_training = False  # the last commanding tick's view scored above the model's OOD threshold
        # A goal in words (take_goal_text): the instruction in force, None if none; never held with goal images.
        self.goal_text: str | None = None
        self.goal_text_predicted = False  # the planner holds its predicted goal (else pending: the next tick predicts)
        self._last_refused_text: str | None = None  # a publisher repeating a refused instruction is logged once

    # ---------------------------------------------------------------- lifecycle
    def configure(self, make_planner: Callable[[PlannerNodeConfig], GoalImageMPC]) -> bool:
        """Load the goal files and the planner (``make_planner(config)``), encode the first goal.

        Goal files, when set, replace the goal images held (received while unconfigured); the image
        sizes are checked before the model loads. Returns False, with the one-line reason in
        :attr:`configure_error` (``configure failed: ...``), when a file is missing or unreadable, the
        planner cannot be built or the first goal cannot be encoded; nothing is raised.
        """
        files = self.config.goal_files or ((self.config.goal_file,) if self.config.goal_file else ())
        try:
            images = [load_goal_image(path) for path in files]
            checked = RobotGoals(self.config.planner, self.config.subgoal_steps)  # sizes, before the model loads
            for path, image in zip(files, images):
                try:
                    checked.append(image)
                except ValueError as exc:
                    raise ValueError(f"goal file {path}: {exc}") from None
            mpc = make_planner(self.config)
        except Exception as exc:  # the node stays up, unconfigured, and says why
            self.configure_error = f"configure failed: {one_line(exc)}"
            return False
        # Unconfigured: no plan uses the new planner yet, so the goal is encoded here, once.
        with self.lock:
            if images:
                self.goals.clear()
                for image in images:
                    self.goals.append(image)
                self._goal_messages.goals_changed()
            # goal files replace an instruction received while unconfigured; without them it is predicted anew
            self._goals_changed(self.now(), text=None if images else self.goal_text)
            if self.goals.count:
                try:
                    self._encode_goal(mpc, self.goals.images[0])
                except InputRejected as rejection:
                    self.configure_error = f"configure failed: {rejection}"
                    return False
                self.encoded_index = 0
            self.mpc = mpc
            self.views = model_views(mpc)
            self.inputs.set_views(self.views)
        self.configure_error = ""
        threshold = getattr(mpc, "ood_threshold", None)
        self.log.info(
            f"configured: model on {mpc.device}, {'image + wrist_image' if self.views == 2 else 'image'}, "
            f"{self.goals.count} goal image(s)"
            + (f" from {list(files)}" if files else "")
            + (f", goal instruction {self.goal_text!r}" if self.goal_text is not None else "")
            + (
                f"; out-of-distribution threshold {threshold:.4g}"
                if threshold is not None
                else "; no token statistics in the checkpoint, so no out-of-distribution score (jepa-mpc ood-stats)"
            )
        )
        return True

    def start(self) -> None:
        """Commands may be sent from the next tick (activate)."""
        with self.lock:
            if self.mpc is not None:
                self.mpc.resume()
        self.gate.open()
        self.log.info("active: commanding" + ("" if self.has_goal else "; waiting for a goal image or instruction"))

    def halt(self) -> bool:
        """No command from now on, not even from a plan that is running; returns at once, not when it ends.

        A running plan is also cancelled (:meth:`planner.mpc.GoalImageMPC.cancel`: it stops within one optimiser
        iteration), so that a process shutting down never exits while a plan runs torch on the planning thread
        (the process then aborts) and a stopped node frees its cores. True (and logged) if commands were
        allowed until now.
        """
        mpc = self.mpc
        if mpc is not None:
            mpc.cancel()
        if self.gate.close():
            self.log.info("halted: no more commands; a plan still running is discarded")
            return True
        return False

    def stop(self) -> None:
        """:meth:`halt`, and forget the last tick (deactivate, shutdown, an error: its diagnostics are over)."""
        self.halt()
        self.last_report = None

    def free_planner(self) -> None:
        """Drop the model (cleanup); a plan still running keeps it until it ends, and is discarded by the gate."""
        with self.lock:
            self.mpc = None
            self.encoded_index = -1
            self.goal_text_predicted = False  # the next model predicts the instruction's goal anew

    def start_answer(self, state: str, configured: bool = True) -> Answer:
        """``~/start``'s answer once it configured (if needed, ``configured`` False: that failed) and activated,
        the node now in lifecycle ``state``."""
        if not configured:
            return Answer(False, f"not started: {self.configure_error}")
        success = state == "active"
        message = "started" if success else f"not started: the node is {state}"
        if state == "finalized":
            message += f" (shut down): {RESTART_ADVICE}"
        if success and not self.has_goal:
            message += "; waiting for a goal image or instruction"
        return Answer(success, message)

    @staticmethod
    def stop_answer(state: str) -> Answer:
        """``~/stop``'s answer once it deactivated (if active), the node now in lifecycle ``state``."""
        success = state != "active"
        if state == "finalized":
            return Answer(success, f"stopped: finalized, no more commands; {RESTART_ADVICE}")
        return Answer(success, "stopped: no more commands until ~/start" if success else "not stopped")

    # ---------------------------------------------------------------- inputs
    def accept(self, name: str, value: np.ndarray, stamp_s: float) -> None:
        """A valid sample of input ``name`` (``image``/``wrist_image`` uint8 [H, W, 3], ``pose`` [6] m and rad,
        ``gripper`` closedness as a 0-d array) stamped ``stamp_s`` (s); wakes a tick waiting for new data."""
        with self.inputs_changed:
            self.inputs.accept(name, value, stamp_s)
            self.inputs_changed.notify_all()

    def reject(self, rejection: InputRejected, input_name: str | None = None) -> None:
        """Count a rejection (a malformed message of ``input_name`` also clears its sample); log new reasons."""
        with self.lock:
            first = (
                self.rejections.record(rejection) if input_name is None else self.inputs.reject(input_name, rejection)
            )
        self._log_rejection(rejection, first)

    def _log_rejection(self, rejection: InputRejected, first: bool) -> None:
        if first:  # each reason once; diagnostics count all of them
            self.log.warning(f"rejected ({rejection.reason}): {rejection.detail}")

    # ---------------------------------------------------------------- goals
    def take_goal_message(self, key: tuple, stamp_s: float, decode: Callable[[], np.ndarray]) -> bool:
        """A goal image message (:func:`ros_nodes.goal_sequence.goal_message_key` ``key``, stamped ``stamp_s``):
        its image, ``decode()`` (uint8 [H, W, 3], or InputRejected), replaces the goal images.

        Returns False when the message was dropped: it is the one that set the goals in force (both goal
        subscriptions deliver a latched message; publishers repeat theirs), and the first drop is logged.
        True when it was taken: its image is now the only goal, or, malformed, none is held (it was sent
        to replace the goals, so the robot must not go back to one it was told to leave; the rejection is
        counted and is the cause ``no_goal`` names). Never waits for a plan: the planning thread encodes
        the goal.
        """
        with self.lock:
            take = self._goal_messages.offer(key)
            repeats = self._goal_messages.repeats
        if not take:
            if repeats == 1:
                self.log.info(
                    "goal image message dropped: the same as the one that set the current goal (delivered by both "
                    "goal subscriptions, or sent again); ~/clear_goals to take it again. Logged once per goal"
                )
            return False
        try:
            goal = decode()
        except InputRejected as rejection:
            with self.lock:
                # Goals, ticks (no_goal <- the rejection) and reset() agree: none is held.
                self.goals.clear()
                self._goals_changed(stamp_s)
                self._goal_messages.goals_changed()  # sent again, it is refused (and counted) again
                first = self.inputs.reject("goal", rejection)  # after _goals_changed: the cause no_goal names
            self._log_rejection(rejection, first)
            return True
        with self.lock:
            self.goals.replace(goal)
            self._goals_changed(stamp_s)
        self.log.info(f"new goal image {goal.shape[1]} x {goal.shape[0]}")
        return True

    def capture_goal(self) -> Answer:
        """The newest camera frame (both views, side by side, for a two-view model) becomes the next goal image.

        Refused (``success`` False, the message says why) without a camera frame, or with one older than
        ``stale_timeout_s``. The pose and gripper are recorded with it when measured within
        ``stale_timeout_s`` of the frame (then the leg to it is timed from the distance, as ``jepa-mpc
        eval`` does); the image is saved as PNG under ``goal_dir`` when set (a failed save is said, the
        goal is set all the same).
        """
        now = self.now()
        timeout = self.config.safety.stale_timeout_s
        with self.lock:
            sample, wrist, pose, gripper = (
                self.inputs.samples[name] for name in ("image", "wrist_image", "pose", "gripper")
            )
        if sample is None:
            return Answer(False, "no camera image received yet: check the image topic (remap image:=...)")
        if self.views == 2 and wrist is None:
            return Answer(
                False, "no wrist camera image received yet (this model plans from both): remap wrist_image:=..."
            )
        try:
            check_fresh("image", sample.stamp_s, now, timeout)
            if self.views == 2:
                check_fresh("wrist_image", wrist.stamp_s, now, timeout)
                sample = Sample(planner_frame({"image": sample.value, "wrist_image": wrist.value}, 2), sample.stamp_s)
        except InputRejected as rejection:
            return Answer(False, f"goal not captured ({rejection.reason}): {rejection.detail}")
        state = None  # the pose shown in the image, if measured with it: times the leg to it as eval does
        if (
            pose is not None
            and gripper is not None
            and all(abs(s.stamp_s - sample.stamp_s) <= timeout for s in (pose, gripper))
        ):
            state = np.concatenate([pose.value, [float(gripper.value)]])  # [7]
        try:
            with self.lock:
                self.goals.append(sample.value, state)
                self._goals_changed(sample.stamp_s)
                self._goal_messages.goals_changed()  # the same goal message sent again is taken
                count = self.goals.count
        except ValueError as exc:
            return Answer(False, f"goal not captured: {exc}")
        saved = ""
        if self.config.goal_dir:
            try:
                saved = f", saved to {save_goal_image(sample.value, self.config.goal_dir, sample.stamp_s).resolve()}"
            except OSError as exc:  # the goal is set all the same; only the copy on disk is missing
                saved = f", NOT saved to {self.config.goal_dir} ({exc})"
        message = (
            f"goal image {count} captured from the camera ({sample.value.shape[1]} x {sample.value.shape[0]}"
            f"{', pose recorded' if state is not None else ', no pose'}){saved}"
        )
        self.log.info(message)
        return Answer(True, message)

    def clear_goals(self) -> Answer:
        """Forget every goal image: no command until a new one arrives."""
        with self.lock:
            self.goals.clear()
            self._goals_changed(self.now())
            self._goal_messages.goals_changed()  # the same goal message sent again is taken
        answer = Answer(True, "goal images and instruction cleared: no commands until a new goal")
        self.log.info(answer.message)
        return answer

    def reset(self) -> Answer:
        """Back to the first goal image, if one is held; plan, step count and rejection counts cleared.

        The planning thread forgets its plan before its next one (never waited for); a plan running
        now is not sent. The answer says whether a goal is held, and if not, why and what to send.
        """
        with self.lock:
            self.goals.restart()
            self.goal_text_predicted = False  # the scene may have been set up anew: predict from the next frame
            self._reset_pending = True
            self.gate.invalidate()  # a plan running now is not sent
            self.rejections.reset()  # reasons are logged once more after a reset
            self.last_command_s = None
            self.steps = 0
            count, text, malformed = self.goals.count, self.goal_text, self.inputs.cleared_by["goal"]
        message = "reset: plan, step count and rejection counts cleared; "
        if count:
            message += f"back to goal image 1/{count}"
        elif text is not None:
            message += f"back to the instruction {_quoted(text)}, its goal predicted again from the next camera frame"
        elif malformed is not None and malformed.reason == "goal_text_refused":
            message += (
                f"no goal held (the last goal instruction was refused: {malformed.detail}): no commands until you "
                "publish a goal instruction or goal image, or call ~/capture_goal"
            )
        else:
            why = (
                f"the last goal image message was malformed ({malformed.reason})"
                if malformed is not None
                else "none received, loaded or captured since the goals last changed"
            )
            message += (
                f"no valid goal image held ({why}): no commands until you publish a goal image "
                "on the goal topic or call ~/capture_goal"
            )
        self.log.info(message)
        return Answer(True, message)

    def _goals_changed(self, stamp_s: float, text: str | None = None) -> None:
        """After the goal images changed, or the goal instruction (``text``: the instruction now in force, None
        for none; pass it only with no goal images): the sequence restarts, a plan toward the old goal is not sent.

        Call with the lock held. The first image is encoded by the planning thread (or on configure), the
        instruction's goal predicted by the planning thread.
        """
        self.encoded_index = -1
        self.goal_text, self.goal_text_predicted = text, False
        self.gate.invalidate()
        if self.on_goals_changed is not None:
            self.on_goals_changed(self.goals.images, stamp_s, text)
        if self.goals.count:
            self.inputs.accept("goal", self.goals.images[0], stamp_s)
        elif text is not None:
            self.inputs.accept("goal", np.asarray(text), stamp_s)  # a goal is held: ticks may plan
        else:
            self.inputs.clear("goal")
        if self.goals.count or text is not None:
            self._last_refused_text = None

    @property
    def has_goal(self) -> bool:
        """Whether a goal is held: goal images, or an instruction (pending or predicted)."""
        return bool(self.goals.count) or self.goal_text is not None

    # ---------------------------------------------------------------- goals in words
    def take_goal_text(self, instruction: str, stamp_s: float) -> bool:
        """A goal instruction (``"touch the red cube"``, a ``goal_text`` message received at ``stamp_s``) replaces
        the goal images and any previous instruction (module docstring); never raises, never waits for a plan.

        Its goal is predicted by the planning thread at the next tick with fresh inputs, from the frame it
        plans from. Refused at once (no goal held from then on; one warning naming it and why, counted as
        ``goal_text_refused``) when it has no words or is too long, or when the configured model reads no
        instructions; the model's other refusals come at that tick. Returns False when it was dropped: the
        same text as the instruction in force (both goal subscriptions deliver a latched message; ``ros2 topic
        pub`` repeats its message), the first drop logged; True when taken (or refused).
        """
        instruction = str(instruction)
        with self.lock:
            take = self._goal_messages.offer(("goal_text", instruction))
            repeats = self._goal_messages.repeats
        if not take:
            if repeats == 1:
                self.log.info(
                    f"goal instruction {_quoted(instruction)} dropped: the same as the one in force (delivered by both "
                    "goal subscriptions, or sent again); ~/clear_goals to take it again. Logged once per goal"
                )
            return False
        refusal = _instruction_refusal(instruction, self.mpc)
        with self.lock:
            self.goals.clear()  # an instruction replaces the goal images: refused, it leaves no goal at all
            self._goals_changed(stamp_s, text=None if refusal is not None else instruction)
            if refusal is not None:
                self._refuse_text(instruction, refusal)
        if refusal is None:
            self.log.info(
                f"new goal instruction {_quoted(instruction)}: its goal is predicted from the next camera frame "
                "the planner plans from"
            )
        return True

    def _refuse_text(self, instruction: str, refusal: InputRejected) -> None:
        """No goal from ``instruction`` (refused): none is held, the refusal is counted and is the cause that
        ``no_goal`` names; logged unless the same instruction was refused just before. Call with the lock held."""
        self.goal_text, self.goal_text_predicted = None, False
        if self.on_goals_changed is not None:  # none in force any more (refused at a tick, after it was taken)
            self.on_goals_changed(self.goals.images, self.now(), None)
        self.inputs.reject("goal", refusal)
        self._goal_messages.goals_changed()  # sent again (e.g. once the cube is in view), it is read again
        if instruction != self._last_refused_text:
            self._last_refused_text = instruction
            self.log.warning(
                f"goal instruction refused, no goal held (no commands until a new goal image or instruction): "
                f"{refusal.detail}"
            )

    @staticmethod
    def _predict_text_goal(mpc: GoalImageMPC, instruction: str, frame: np.ndarray) -> None:
        """Make the goal ``instruction`` asks for, predicted from ``frame`` [H, V * W, 3], ``mpc``'s goal (one encoder
        and one language-goal pass; also forgets its plan).

        Raises:
            InputRejected: ``goal_text_refused`` when the model refuses the instruction or reads none;
                ``planner_error`` if the prediction fails otherwise.
        """
        try:
            mpc.set_goal_text(instruction, frame)
        except ValueError as exc:  # InstructionError, or a model without a language-goal predictor
            raise _text_refusal(instruction, exc) from exc
        except Exception as exc:  # the node stays up; no goal means no commands
            raise InputRejected(
                "planner_error",
                f"predicting the goal of the instruction {_quoted(instruction)} failed: {type(exc).__name__}: {exc}",
            ) from exc

    @staticmethod
    def _encode_goal(mpc: GoalImageMPC, image: np.ndarray) -> None:
        """Make ``image`` ``mpc``'s goal (one encoder pass; also forgets its plan).

        Raises:
            InputRejected: ``planner_error`` if the model cannot encode it.
        """
        try:
            mpc.set_goal(image)
        except Exception as exc:  # the node stays up; no goal means no commands
            raise InputRejected(
                "planner_error", f"encoding the goal image failed: {type(exc).__name__}: {exc}"
            ) from exc

    # ---------------------------------------------------------------- control
    def status(self, lifecycle_state: str, goal_publishers: int | None = None) -> Status:
        """What ``/diagnostics`` says now (:func:`ros_nodes.diagnostics.planner_status`), the node in
        ``lifecycle_state`` with ``goal_publishers`` publishers on its goal topic (None: unknown)."""
        with self.lock:
            return planner_status(
                lifecycle_state,
                self.last_report,
                self.rejections,
                self.steps,
                self.goals.count,
                configure_error=self.configure_error,
                goal_publishers=goal_publishers,
                goal_text=self.goal_text,
                goal_text_pending=self.goal_text is not None and not self.goal_text_predicted,
            )

    def _fresh_inputs(self) -> dict[str, np.ndarray]:
        """The newest inputs (InputGuard.ready), waiting up to NEW_DATA_WAIT_PERIODS for a frame after the last
        command."""
        deadline = time.monotonic() + NEW_DATA_WAIT_PERIODS / self.config.rate_hz
        with self.inputs_changed:
            while True:
                try:
                    return self.inputs.ready(self.now(), last_command_s=self.last_command_s)
                except InputRejected as rejection:
                    remaining = deadline - time.monotonic()
                    if rejection.reason != "awaiting_new_data" or remaining <= 0:
                        raise
                    self.inputs_changed.wait(remaining)

    def control_step(self, publish: Callable[[Command], None]) -> TickReport | None:
        """Plan one command and hand it to ``publish``, or record why not (module docstring).

        Returns the tick's report (also :attr:`last_report`), or None when there was nothing to do
        (not started, no planner) or the plan was dropped: the session was halted, or the goals or the
        plan were reset while it ran (then the next tick plans anew). ``publish`` runs under the lock,
        only while the gate is open for this plan; the step count and the goal sequence advance after
        it returns. A planner exception is a ``planner_error`` refusal, not raised; an exception of
        ``publish`` is raised.
        """
        with self.lock:
            ticket, mpc = self.gate.ticket(), self.mpc
            if ticket is None or mpc is None:
                return None
            reset, self._reset_pending = self._reset_pending, False
        if reset:
            mpc.reset()
        aim = None
        try:
            values = self._fresh_inputs()
            state = np.concatenate([values["pose"], [float(values["gripper"])]])  # [7]
            self.commands.check_reachable(state)  # no target could be sent from here: neither encode nor plan
            with self.lock:
                if not self.gate.valid(ticket):
                    return None
                aim = self.goals.aim(state)
                encoded = self.encoded_index
                text, predicted = self.goal_text, self.goal_text_predicted
            if aim is None and text is None:  # the goals were cleared after the inputs were read
                raise InputRejected("no_goal", "the goal images were cleared")
            frame = planner_frame(values, self.views)  # [H, V * W, 3]
            if aim is not None:
                if aim.index != encoded:  # a new goal, or the next sub-goal's turn
                    self._encode_goal(mpc, aim.image)
                    with self.lock:
                        if self.gate.valid(ticket):  # else the goals changed meanwhile: encode again next tick
                            self.encoded_index = aim.index
                check_goal_views(aim.image, frame, self.views)
            elif not predicted:  # a new instruction (or after a reset): its goal, from the frame planned from
                try:
                    self._predict_text_goal(mpc, text, frame)
                except InputRejected as refusal:
                    if refusal.reason != "goal_text_refused":
                        raise
                    with self.lock:
                        if not self.gate.valid(ticket):  # the goals changed meanwhile: not this goal's refusal
                            return None
                        self._refuse_text(text, refusal)
                        self.last_report = TickReport(command=False, rejection=refusal)
                    return self.last_report
                with self.lock:
                    if self.gate.valid(ticket):  # else the goals changed meanwhile: predict again next tick
                        self.goal_text_predicted = True
            try:
                step = mpc.act(frame, state)
            except Exception as exc:  # a planner bug must not kill the node or move the robot
                raise InputRejected("planner_error", f"{type(exc).__name__}: {exc}") from exc
            safe = self.commands.target_from_action(state, step.action)

            def send() -> None:  # under the lock, only if the gate is still open for this plan
                stamp = self.now()
                publish(Command(stamp_s=stamp, state=state, safe=safe, step=step))
                self.goals.advance()
                self.last_command_s = stamp
                self.steps += 1

            if not self.gate.send(ticket, send):
                return None
        except InputRejected as rejection:
            if not self.gate.valid(ticket):  # stopped or reset meanwhile: not this session's state any more
                return None
            self.reject(rejection)
            self.last_report = TickReport(command=False, rejection=rejection, aim=aim)
            return self.last_report
        report = TickReport(
            command=True,
            latency_s=step.latency_s,
            energy=step.energy,
            energy_spread=step.energy_spread,
            surprise=step.surprise,
            replanned=step.replanned,
            ood_score=getattr(step, "ood_score", None),
            ood_threshold=getattr(mpc, "ood_threshold", None),
            step_limited=safe.step_limited,
            clipped_to_workspace=safe.clipped_to_workspace,
            target=safe.target,
            aim=aim,
            instruction=text if aim is None else None,
        )
        self.last_report = report
        self._log_distribution_change(report)
        return report

    def _log_distribution_change(self, report: TickReport) -> None:
        """Log once when the view becomes unlike the model's training data (diagnostics: WARN every such tick),
        and once when it is like it again."""
        unlike = out_of_distribution(report)
        if unlike == self._unlike_training:
            return
        self._unlike_training = unlike
        if unlike:
            self.log.warning(
                f"the scene is unlike the model's training data (OOD score {report.ood_score:.3g} > threshold "
                f"{report.ood_threshold:.3g}): expect plans to fail; check the camera, light and objects"
            )
        elif report.ood_score is not None and report.ood_threshold is not None:
            self.log.info(
                f"the scene is like the model's training data again (OOD score "
                f"{report.ood_score:.3g} <= {report.ood_threshold:.3g})"
            )
