"""Start, spin and stop nodes the way every ``main()`` here does: clean exit on Ctrl-C and on shutdown."""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from jepa_mpc_foundation.user_errors import USER_ERROR_EXIT_CODE, USER_ERRORS, one_line

SHUTDOWN_TIMEOUT_S = 2.0  # how long Ctrl-C waits for running callbacks before destroying the nodes
_PARAMETER_RULE = re.compile(r"parameter override rule: '(?:-p|--param) ([^:=']+):=([^']*)'")


def empty_parameter_error(args: list[str]) -> str | None:
    """The one-line error for a ``-p name:=`` with nothing after ``:=`` in ``args``, None if there is none.

    Checked before ``rclpy.init``, which would refuse it too but log an rcl error line first.
    """
    for flag, rule in zip(args, args[1:]):
        if flag in ("-p", "--param") and rule.endswith(":=") and rule.count(":=") == 1:
            return ros_arguments_error(f"parameter override rule: '-p {rule}'")
    return None


def ros_arguments_error(message: str) -> str:
    """rcl's "failed to initialize rcl" message -> one line naming the argument and the fix.

    ``-p checkpoint:=`` (an empty value) is the usual one: ROS reads the value as YAML and needs
    quotes for an empty string.
    """
    match = _PARAMETER_RULE.search(message)
    if match:
        name, value = match.groups()
        if not value.strip():
            return (
                f"parameter {name}: the value after {name}:= is empty, which ROS cannot parse; write an empty "
                f"value with quotes, -p \"{name}:=''\", or leave the parameter out to keep its default"
            )
        return f"parameter {name}: ROS cannot parse the value {value!r}; write it as YAML, e.g. -p \"{name}:='text'\""
    return f"ROS could not parse the command-line arguments: {' '.join(message.split())}"


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def spin_nodes(nodes: list[Node], stop: threading.Event | None = None) -> None:
    """Spin ``nodes`` on one single-threaded executor until ``stop`` is set, Ctrl-C or shutdown; then halt and
    destroy them.

    One executor thread is enough: the planner node plans on a thread of its own, so the executor is
    free to take the newest camera frames and poses during a plan; the nodes' callbacks never overlap.
    It runs beside the calling (main) thread, which only waits for ``stop``: a signal handler runs
    there at once, not when the executor's wait or callback ends, and every node with a ``halt()``
    (the planner: no command from then on, not even from a running plan) is halted before the
    executor stops. A callback that raised ends the spin and is raised here.
    """
    stop = stop or threading.Event()
    executor = SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    failures: list[BaseException] = []

    def spin() -> None:
        try:
            while rclpy.ok(context=executor.context) and not stop.is_set():
                executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            pass
        except BaseException as exc:  # noqa: BLE001  handed to the main thread, which raises it
            failures.append(exc)
        finally:
            stop.set()

    spinner = threading.Thread(target=spin, name="executor", daemon=True)
    spinner.start()
    try:
        while not stop.wait(timeout=1.0):  # a lock wait: a signal handler interrupts it at once
            pass
    except KeyboardInterrupt:  # a caller without run_nodes' handler
        pass
    finally:
        stop.set()
        for node in nodes:  # first, before anything that may wait
            halt = getattr(node, "halt", None)
            if halt is not None:
                halt()
        # Bounded: a callback that hangs must not keep the process alive for ever.
        spinner.join(timeout=SHUTDOWN_TIMEOUT_S)
        executor.shutdown(timeout_sec=SHUTDOWN_TIMEOUT_S)
        for node in nodes:
            node.destroy_node()
    if failures:
        raise failures[0]


def run_nodes(make_nodes: Callable[[], list[Node]], args: list[str] | None = None) -> int:
    """``rclpy.init(args)``, build the nodes, spin them, shut down; the body of every ``main``.

    Returns 0 after Ctrl-C or shutdown, 2 when a node cannot be built for a user's mistake (a bad
    parameter, a missing checkpoint): printed as one line, not as a traceback
    (:mod:`jepa_mpc_foundation.user_errors`). Any other exception is a bug and propagates with its traceback.
    """
    # rclpy's own SIGINT handler shuts the context down at once, under a callback that may still be
    # publishing ("publisher's context is invalid"); instead, Ctrl-C (and SIGTERM from ros2 launch)
    # halt the nodes (no command from then on) and end the spin, which lets the current callback
    # finish, destroys the nodes, and only then shuts ROS down.
    empty = empty_parameter_error(list(sys.argv if args is None else args))
    if empty is not None:
        print(f"error: {empty}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy.RCLError as exc:  # a malformed --ros-args, e.g. -p checkpoint:= (empty)
        print(f"error: {ros_arguments_error(str(exc))}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        try:
            nodes = make_nodes()
        except KeyboardInterrupt:  # Ctrl-C while a node was still being built (loading a model)
            return 0
        except USER_ERRORS as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return USER_ERROR_EXIT_CODE
        # From here on Ctrl-C and SIGTERM only set a flag, which wakes the main thread at once. Raised as
        # KeyboardInterrupt inside rclpy's executor they could land between taking one of its locks and
        # the `with` that releases it; shutdown() then waited on that lock for ever (bringup ignored
        # Ctrl-C twice in CI on a loaded machine). The executor now spins on another thread, where no
        # signal handler runs.
        stop = threading.Event()

        def request_stop(signum, frame) -> None:
            if stop.is_set():  # a second Ctrl-C: the user will not wait for a clean stop
                raise KeyboardInterrupt
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, request_stop)
        spin_nodes(nodes, stop)
        return 0
    finally:
        rclpy.try_shutdown()
