"""The planner node's command gate without ROS: a stop closes it at once, and a plan that ends after
a stop (or after the goals changed) is not sent (issue 29, part 1)."""

from __future__ import annotations

import threading
import time

from ros_nodes.command_gate import CommandGate


def test_a_closed_gate_sends_nothing_and_a_stop_then_start_drops_the_plans_taken_before():
    gate = CommandGate()
    sent = []
    assert gate.ticket() is None and not gate.send(None, lambda: sent.append("closed"))

    gate.open()
    ticket = gate.ticket()
    assert gate.valid(ticket) and gate.send(ticket, lambda: sent.append("open"))
    assert gate.close() and not gate.close()  # True only when it was open
    assert not gate.send(ticket, lambda: sent.append("after close"))

    gate.open()  # a start after the stop: the plan from before the stop stays dropped
    assert not gate.send(ticket, lambda: sent.append("old plan after restart"))
    fresh = gate.ticket()
    gate.invalidate()  # the goals changed, or ~/reset
    assert gate.is_open and not gate.send(fresh, lambda: sent.append("plan toward old goals"))
    assert gate.send(gate.ticket(), lambda: sent.append("new plan"))
    assert sent == ["open", "new plan"]


def test_close_returns_at_once_while_a_plan_runs_and_that_plan_is_dropped():
    gate = CommandGate()
    gate.open()
    planning, sent = threading.Event(), []

    def plan_and_send() -> None:  # the planning thread: ticket, a long plan without the lock, then send
        ticket = gate.ticket()
        planning.set()
        time.sleep(0.5)
        gate.send(ticket, lambda: sent.append("command"))

    thread = threading.Thread(target=plan_and_send)
    thread.start()
    planning.wait(5)
    start = time.monotonic()
    gate.close()
    took = time.monotonic() - start
    thread.join(5)
    assert took < 0.05 and sent == []


def test_close_waits_for_a_send_in_progress_so_nothing_follows_it():
    gate = CommandGate()
    gate.open()
    publishing, log = threading.Event(), []

    def slow_publish() -> None:  # a send holds the lock while it publishes
        publishing.set()
        time.sleep(0.2)
        log.append("published")

    thread = threading.Thread(target=lambda: gate.send(gate.ticket(), slow_publish))
    thread.start()
    publishing.wait(5)
    gate.close()
    log.append("closed")  # after close() returns, the publish has ended, not before
    thread.join(5)
    assert log == ["published", "closed"]
