"""The planner node's logic without ROS (``ros_nodes.planning_session``): inputs, goals, services, stop and the
control step, on the analytic world model (``planner.analytic``: a 16 px "camera" that carries the state) with a
fake clock; goals in words on a tiny random world model that reads instructions. No rclpy: the same rules the
ROS tests check over DDS, each in milliseconds."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from model_helpers import tiny_config, tiny_language_goal
from planner.analytic import AnalyticWorldModel
from planner.config import PlannerConfig
from planner.mpc import GoalImageMPC
from ros_nodes.config import PlannerNodeConfig
from ros_nodes.diagnostics import OK, WARN
from ros_nodes.goal_images import save_goal_image
from ros_nodes.planning_session import Command, PlanningSession
from ros_nodes.safety import InputRejected
from worldmodel import build_world_model

START = np.array([0.5, 0.0, 0.2, np.pi, 0.0, 0.0, 0.0])  # [7] m, rad, closedness: inside the default workspace
GOAL = START + np.array([0.04, -0.03, 0.02, 0.0, 0.0, 0.0, 0.0])  # 5.4 cm away: more than one step (5 cm)
MODEL = AnalyticWorldModel()
PLANNER = PlannerConfig(samples=64, topk=8, iterations=3)


class Clock:
    """The session's clock (s), moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Log:
    """Records what the session logs, as (level, message)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))

    def count(self, text: str) -> int:
        return sum(text in message for _, message in self.lines)


class CountingMPC(GoalImageMPC):
    """The real planner; counts plans and goal encodings, and runs ``during_plan()`` inside each plan."""

    def __init__(self, world_model, config) -> None:
        super().__init__(world_model, config)
        self.plans = self.encodings = 0
        self.during_plan = lambda: None

    def set_goal(self, goal_image) -> None:
        self.encodings += 1
        super().set_goal(goal_image)

    def act(self, frames, state):
        self.plans += 1
        self.during_plan()
        return super().act(frames, state)


def make_session(**fields) -> tuple[PlanningSession, Clock, Log]:
    """A configured, started session (rate 50 Hz: a tick waits at most 5 ms for new data) without goal images."""
    clock, log = Clock(), Log()
    config = PlannerNodeConfig(**{"rate_hz": 50.0, "goal_dir": "", "planner": PLANNER, **fields})
    session = PlanningSession(config, now=clock, log=log)
    assert session.configure(lambda config: CountingMPC(MODEL, config.planner)), session.configure_error
    session.start()
    return session, clock, log


def sense(session: PlanningSession, clock: Clock, state: np.ndarray = START, age_s: dict | None = None) -> None:
    """The camera, pose and gripper readings of ``state`` [7], stamped now (minus ``age_s[name]`` s)."""
    age_s = age_s or {}
    session.accept("image", MODEL.render(state), clock() - age_s.get("image", 0.0))
    session.accept("pose", state[:6].copy(), clock() - age_s.get("pose", 0.0))
    session.accept("gripper", np.array(state[6]), clock() - age_s.get("gripper", 0.0))


def send_goal(session: PlanningSession, clock: Clock, state: np.ndarray = GOAL, key: tuple = ("goal", 1)) -> bool:
    return session.take_goal_message(key, clock(), lambda: MODEL.render(state))


def step(session: PlanningSession) -> tuple[object, list[Command]]:
    sent: list[Command] = []
    return session.control_step(sent.append), sent


def reason(report) -> str:
    assert report is not None and not report.command, report
    return report.rejection.reason


def test_no_command_without_a_goal_then_one_step_toward_it_then_none_from_the_same_observation():
    session, clock, log = make_session()
    sense(session, clock)
    report, sent = step(session)
    assert reason(report) == "no_goal" and sent == [] and session.mpc.plans == 0

    assert send_goal(session, clock)
    report, sent = step(session)
    assert report.command and len(sent) == 1 and session.steps == 1 and session.encoded_index == 0
    (command,) = sent
    np.testing.assert_array_equal(command.state, START)
    np.testing.assert_array_equal(command.safe.target, report.target)
    moved = command.safe.target[:3] - START[:3]
    assert np.linalg.norm(moved) <= session.config.safety.max_step + 1e-9  # one step at most...
    assert np.linalg.norm(GOAL[:3] - command.safe.target[:3]) < np.linalg.norm(GOAL[:3] - START[:3]) - 0.02  # ...closer
    assert command.step.plan.shape == (PLANNER.horizon, 7) and command.stamp_s == clock()
    assert session.status("active").message.startswith("commanding toward goal image 1/1")

    # The same observation again (stamped before the command): no second command from it.
    clock.t += 0.01
    report, sent = step(session)
    assert reason(report) == "awaiting_new_data" and sent == []
    sense(session, clock)
    report, sent = step(session)
    assert report.command and session.steps == 2 and session.encoded_index == 0  # the goal encoded once
    assert session.mpc.encodings == 1 and log.count("rejected (no_goal)") == 1


@pytest.mark.parametrize(
    "missing, age_s, expected",
    [
        (None, {"image": 0.6}, "stale_image"),
        (None, {"pose": 0.6}, "stale_pose"),
        (None, {"gripper": 0.6}, "stale_gripper"),
        (None, {"image": -0.6}, "future_stamp"),
        ("gripper", {}, "no_gripper"),
        ("image", {}, "no_image"),
    ],
)
def test_a_missing_or_stale_input_is_refused_with_its_reason_counted_every_tick_and_logged_once(
    missing, age_s, expected
):
    session, clock, log = make_session()
    assert send_goal(session, clock)
    sense(session, clock, age_s=age_s)  # stale_timeout_s is 0.5 s
    if missing is not None:
        session.inputs.clear(missing)
    for _ in range(3):
        report, sent = step(session)
        assert reason(report) == expected and sent == []
    assert session.rejections.counts == {expected: 3} and log.count(f"rejected ({expected})") == 1
    assert session.mpc.plans == 0 and session.mpc.encodings == 0  # refused before encoding or planning
    status = session.status("active")
    assert status.level == WARN and status.message.startswith(f"no command ({expected})")


def test_a_robot_outside_the_workspace_is_refused_before_the_goal_is_encoded_or_anything_planned():
    session, clock, _ = make_session()
    assert send_goal(session, clock)
    far = START + np.array([5.0, 0, 0, 0, 0, 0, 0])
    sense(session, clock, far)
    report, sent = step(session)
    assert reason(report) == "pose_outside_workspace" and "4.8" in report.rejection.detail and sent == []
    assert session.mpc.plans == 0 and session.mpc.encodings == 0 and session.encoded_index == -1

    clock.t += 0.1
    sense(session, clock)  # moved back into the box by hand
    report, sent = step(session)
    assert report.command and len(sent) == 1 and session.mpc.plans == 1


@pytest.mark.parametrize("request_during_plan", ["stop", "halt", "reset", "clear_goals", "new_goal", "capture_goal"])
def test_a_plan_that_ends_after_a_stop_or_a_goal_change_sends_nothing(request_during_plan):
    session, clock, _ = make_session()
    assert send_goal(session, clock)
    sense(session, clock)
    requests = {
        "stop": session.stop,
        "halt": session.halt,
        "reset": session.reset,
        "clear_goals": session.clear_goals,
        "new_goal": lambda: send_goal(session, clock, START, key=("goal", 2)),
        "capture_goal": session.capture_goal,
    }
    session.mpc.during_plan = requests[request_during_plan]
    report, sent = step(session)
    assert report is None and sent == [] and session.steps == 0 and session.last_report is None
    assert session.mpc.plans == 1 and session.rejections.total == 0  # planned, dropped, not a rejection

    session.mpc.during_plan = lambda: None
    if request_during_plan in ("stop", "halt"):
        clock.t += 0.1
        sense(session, clock)
        assert step(session) == (None, [])  # closed until started again
        session.start()
    clock.t += 0.1
    sense(session, clock)
    report, sent = step(session)
    if request_during_plan == "clear_goals":
        assert reason(report) == "no_goal" and sent == []
    else:  # the next tick plans anew, toward the goals in force
        assert report.command and len(sent) == 1 and session.steps == 1
        if request_during_plan == "capture_goal":  # appended: the first image is still the aim
            assert session.goals.count == 2 and report.aim.count == 2
        expected_goal = START if request_during_plan == "new_goal" else GOAL
        np.testing.assert_array_equal(report.aim.image, MODEL.render(expected_goal))


def test_stop_and_the_services_answer_at_once_while_a_plan_runs_and_that_plan_is_dropped():
    session, clock, _ = make_session()
    assert send_goal(session, clock)
    sense(session, clock)
    planning, release = threading.Event(), threading.Event()

    def long_plan() -> None:
        planning.set()
        assert release.wait(10)

    session.mpc.during_plan = long_plan
    outcome: list = []
    planner = threading.Thread(target=lambda: outcome.append(step(session)), daemon=True)
    planner.start()
    assert planning.wait(10)
    timings = {}
    for name, call in [
        ("reset", session.reset),
        ("capture_goal", session.capture_goal),
        ("status", lambda: session.status("active")),
        ("image", lambda: sense(session, clock)),
        ("stop", session.stop),
    ]:
        start = time.monotonic()
        done = threading.Thread(target=call, daemon=True)  # a call that waited for the plan would hang here
        done.start()
        done.join(2.0)
        timings[name] = time.monotonic() - start
        assert not done.is_alive(), f"{name} waited for the running plan"
    assert planning.is_set() and planner.is_alive(), "the plan ended before the checks did"
    release.set()
    planner.join(10)
    assert outcome == [(None, [])] and session.steps == 0, outcome
    assert all(t < 0.5 for t in timings.values()), timings


def test_a_repeated_goal_message_is_dropped_and_a_malformed_one_leaves_no_goal():
    session, clock, log = make_session()
    assert send_goal(session, clock) and not send_goal(session, clock)  # the same message twice: taken once
    assert log.count("goal image message dropped") == 1 and session.goals.count == 1

    def malformed() -> np.ndarray:
        raise InputRejected("bad_encoding", "image encoding 'mono8' is not supported")

    assert session.take_goal_message(("bad", 1), clock(), malformed)
    assert session.goals.count == 0 and session.inputs.samples["goal"] is None
    sense(session, clock)
    report, _ = step(session)
    assert reason(report) == "no_goal" and report.rejection.cause.reason == "bad_encoding"
    answer = session.reset()
    assert (
        answer.success and "no valid goal image held" in answer.message and "malformed (bad_encoding)" in answer.message
    )
    assert session.rejections.total == 0 and session.steps == 0

    assert send_goal(session, clock)  # the message of before is taken again: the goals changed meanwhile
    assert session.goals.count == 1 and session.reset().message.endswith("back to goal image 1/1")
    assert session.clear_goals().success and session.goals.count == 0 and session.inputs.samples["goal"] is None
    assert send_goal(session, clock)  # taken again after ~/clear_goals


def test_capture_goal_needs_a_fresh_frame_records_the_pose_and_saves_the_image(tmp_path):
    session, clock, _ = make_session(goal_dir=str(tmp_path / "goals"))
    answer = session.capture_goal()
    assert not answer.success and "no camera image" in answer.message

    sense(session, clock, GOAL, age_s={"image": 0.6, "pose": 0.6, "gripper": 0.6})
    answer = session.capture_goal()
    assert not answer.success and "stale_image" in answer.message and session.goals.count == 0

    sense(session, clock, GOAL)
    answer = session.capture_goal()
    assert answer.success and "goal image 1 captured" in answer.message and "pose recorded" in answer.message
    np.testing.assert_array_equal(session.inputs.samples["goal"].value, MODEL.render(GOAL))
    np.testing.assert_allclose(session.goals.states[0], GOAL)
    (saved,) = (tmp_path / "goals").glob("goal_*.png")
    assert str(saved.resolve()) in answer.message

    clock.t += 0.1
    sense(session, clock)  # back at the start: the captured goal is the aim
    report, sent = step(session)
    assert report.command and report.aim.index == 0 and len(sent) == 1


def test_goal_files_are_checked_before_the_model_loads_and_a_failed_configure_says_why(tmp_path):
    loads = []

    def make_planner(config):
        loads.append(config)
        return CountingMPC(MODEL, config.planner)

    def configure(**fields) -> PlanningSession:
        session = PlanningSession(PlannerNodeConfig(goal_dir="", planner=PLANNER, **fields), now=Clock(), log=Log())
        assert not session.configure(make_planner) and session.mpc is None
        return session

    missing = tmp_path / "x.png"
    assert configure(goal_file=str(missing)).configure_error == (
        f"configure failed: goal image {missing} does not exist; capture one with the ~/capture_goal service"
    )
    small = save_goal_image(MODEL.render(GOAL), tmp_path, stamp_s=1.0)  # 16 x 16
    large = save_goal_image(np.zeros((16, 24, 3), np.uint8), tmp_path, stamp_s=2.0)
    error = configure(goal_files=[str(small), str(large)]).configure_error
    assert error.startswith(f"configure failed: goal file {large}: goal image of 24 x 16 px"), error
    assert loads == []  # the model was never loaded for files that could not be used

    unlike = save_goal_image(np.zeros((16, 16, 3), np.uint8), tmp_path, stamp_s=3.0)  # no state in it for the model
    error = configure(goal_file=str(unlike)).configure_error
    assert error.startswith("configure failed: planner_error: encoding the goal image failed: ValueError"), error

    def broken(config):
        raise FileNotFoundError("model.pt: No such file or directory")

    session = PlanningSession(PlannerNodeConfig(goal_file=str(small)), now=Clock(), log=Log())
    assert not session.configure(broken) and "model.pt: No such file" in session.configure_error
    assert session.status("unconfigured").message.startswith("unconfigured: configure failed:")

    assert session.configure(make_planner) and session.configure_error == ""  # fixed: configured, goal encoded
    assert session.mpc.encodings == 1 and session.encoded_index == 0 and session.goals.count == 1
    assert session.status("inactive").level == OK


def test_start_and_stop_answers_and_a_subgoal_sequence_encodes_each_image_in_turn(tmp_path):
    files = [str(save_goal_image(MODEL.render(s), tmp_path, stamp_s=float(i))) for i, s in enumerate([GOAL, START])]
    session, clock, _ = make_session(goal_files=files, subgoal_steps=1)
    assert session.encoded_index == 0 and session.mpc.encodings == 1  # the first goal, encoded on configure
    for expected in (0, 1, 1):
        clock.t += 0.1
        sense(session, clock)
        report, _ = step(session)
        assert report.command and report.aim.index == expected and session.encoded_index == expected
    assert session.mpc.encodings == 2 and session.steps == 3

    assert session.start_answer("active").message == "started"
    assert session.start_answer("unconfigured", configured=False).message.startswith("not started: ")
    assert "restart the node" in session.start_answer("finalized").message
    assert session.stop_answer("inactive").success and not session.stop_answer("active").success
    assert session.halt() and not session.halt()  # True only when commands were allowed until then


# ---------------------------------------------------------------- goals in words
TEXT_PLANNER = PlannerConfig(samples=16, topk=4, iterations=2)


@pytest.fixture(scope="module")
def reading_model():
    """A tiny random world model (32 px, dim 32, one block) holding a language-goal predictor that reads
    "touch the red/green cube" (match threshold 0: only the word rule refuses)."""
    model = build_world_model(tiny_config(dim=32, depth=1), seed=0).eval()
    model.language_goal = tiny_language_goal(model.config)
    return model


def reading_session(model) -> tuple[PlanningSession, Clock, Log]:
    """A configured, started session planning with ``model`` (a goal in words is predicted by its planner)."""
    clock, log = Clock(), Log()
    config = PlannerNodeConfig(rate_hz=50.0, goal_dir="", planner=TEXT_PLANNER)
    session = PlanningSession(config, now=clock, log=log)
    assert session.configure(lambda config: CountingMPC(model, config.planner)), session.configure_error
    session.start()
    return session, clock, log


def values(session: PlanningSession) -> dict[str, str]:
    return dict(session.status("active").values)


def test_an_instruction_is_planned_toward_and_a_refused_one_leaves_no_goal_at_all(reading_model):
    session, clock, log = reading_session(reading_model)
    sense(session, clock)
    assert session.take_goal_text("touch the red cube", clock())
    assert values(session)["goal_text"] == "touch the red cube" and values(session)["goal_text_pending"] == "true"
    report, sent = step(session)
    assert report.command and len(sent) == 1 and report.instruction == "touch the red cube" and report.aim is None
    assert session.status("active").message.startswith("commanding toward the instruction 'touch the red cube'")
    assert values(session)["goal_text_pending"] == "false" and values(session)["goals"] == "0"
    tokens = session.mpc.goal_tokens.clone()  # predicted once, from the frame planned from
    assert not session.take_goal_text("touch the red cube", clock())  # a repeat (both subscriptions): dropped
    clock.t += 0.1
    sense(session, clock)
    report, sent = step(session)
    assert report.command and len(sent) == 1 and torch.equal(session.mpc.goal_tokens, tokens)

    # An instruction naming nothing the model knows: refused at the tick that reads it, and no goal is held.
    assert session.take_goal_text("touch the orange cube", clock())
    clock.t += 0.1
    sense(session, clock)
    report, sent = step(session)
    assert reason(report) == "goal_text_refused" and sent == [] and session.goal_text is None
    assert "'touch the orange cube' names nothing this model knows" in report.rejection.detail
    refusals = [m for level, m in log.lines if level == "warning" and "goal instruction refused" in m]
    assert len(refusals) == 1 and "'touch the orange cube'" in refusals[0] and "red, green" in refusals[0]
    for _ in range(2):  # not back to the previous instruction: no command until a new goal
        clock.t += 0.1
        sense(session, clock)
        report, sent = step(session)
        assert reason(report) == "no_goal" and report.rejection.cause.reason == "goal_text_refused" and sent == []
    status = session.status("active")
    assert status.level == WARN and "'touch the orange cube'" in status.message, status.message
    assert status.message.startswith("no command (no_goal <- goal_text_refused): the last goal message was refused")
    assert "the last goal instruction was refused" in session.reset().message

    # Empty and blank instructions: refused at once, never read by the model, and again no goal.
    assert session.take_goal_text("touch the green cube", clock())
    for empty in ("", "   "):
        assert session.take_goal_text(empty, clock()) and session.goal_text is None
        assert session.inputs.samples["goal"] is None
        assert log.lines[-1][0] == "warning" and f"the instruction {empty!r} has no words" in log.lines[-1][1]
        clock.t += 0.1
        sense(session, clock)
        report, sent = step(session)
        assert reason(report) == "no_goal" and report.rejection.cause.reason == "goal_text_refused" and sent == []

    # A goal image replaces an instruction, and an instruction a goal image (the image's plan is not sent).
    assert session.take_goal_text("touch the green cube", clock())
    assert send_goal(session, clock) and session.goal_text is None and values(session)["goal_text"] == ""
    clock.t += 0.1
    sense(session, clock)
    report, sent = step(session)
    assert report.command and report.aim.index == 0 and report.instruction is None and len(sent) == 1
    assert session.take_goal_text("touch the green cube", clock()) and session.goals.count == 0
    clock.t += 0.1
    sense(session, clock)
    report, sent = step(session)
    assert report.command and report.instruction == "touch the green cube" and len(sent) == 1
    assert "back to the instruction 'touch the green cube'" in session.reset().message
    assert session.clear_goals().success and not session.has_goal


def test_an_instruction_before_any_camera_frame_waits_for_one_and_says_so(reading_model):
    session, clock, log = reading_session(reading_model)
    assert session.take_goal_text("touch the red cube", clock())
    assert "new goal instruction 'touch the red cube'" in log.lines[-1][1]
    report, sent = step(session)
    assert reason(report) == "no_image" and sent == [] and session.mpc.goal_tokens is None
    status = session.status("active")
    waits = "instruction 'touch the red cube' pending: its goal is predicted from the next camera frame planned from"
    assert status.message.endswith(waits), status.message
    assert dict(status.values)["goal_text_pending"] == "true"
    assert "'touch the red cube' pending" in session.status("inactive").message

    sense(session, clock)  # the first frame: the goal is predicted from it, and planned toward
    report, sent = step(session)
    assert report.command and len(sent) == 1 and report.instruction == "touch the red cube"
    assert values(session)["goal_text_pending"] == "false" and "pending" not in session.status("active").message


def test_a_model_without_a_language_goal_predictor_refuses_instructions_and_says_how_to_get_one():
    session, clock, log = make_session()  # the analytic model: it reads no instructions
    sense(session, clock)
    assert send_goal(session, clock)
    assert session.take_goal_text("touch the red cube", clock())
    assert session.goal_text is None and session.goals.count == 0  # the goal image is gone too: no goal
    (line,) = [m for level, m in log.lines if level == "warning"]
    assert "'touch the red cube'" in line and "`jepa-mpc train-language-goal`" in line, line
    report, sent = step(session)
    assert reason(report) == "no_goal" and report.rejection.cause.reason == "goal_text_refused" and sent == []
    assert session.mpc.plans == 0 and session.rejections.counts == {"goal_text_refused": 1, "no_goal": 1}

    # Received while unconfigured, the instruction is refused by the tick that would predict its goal.
    clock, log = Clock(), Log()
    session = PlanningSession(PlannerNodeConfig(rate_hz=50.0, goal_dir="", planner=PLANNER), now=clock, log=log)
    assert session.take_goal_text("touch the red cube", clock()) and session.goal_text == "touch the red cube"
    assert session.configure(lambda config: CountingMPC(MODEL, config.planner))
    session.start()
    sense(session, clock)
    report, sent = step(session)
    assert reason(report) == "goal_text_refused" and "train-language-goal" in report.rejection.detail and sent == []
    assert session.goal_text is None and session.mpc.plans == 0
