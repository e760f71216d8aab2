"""Start, spin and stop nodes the way every ``main()`` here does: clean exit on Ctrl-C and on shutdown."""
from __future__ import annotations

import signal
import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from foundation.user_errors import USER_ERROR_EXIT_CODE, USER_ERRORS, one_line


SHUTDOWN_TIMEOUT_S = 2.0  # how long Ctrl-C waits for running callbacks before destroying the nodes


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def spin_nodes(nodes: list[Node]) -> None:
    """Spin ``nodes`` on one single-threaded executor until Ctrl-C or shutdown, then destroy them.

    One thread is enough: a node's callbacks never overlap anyway (one mutually exclusive group), and
    the sensor subscriptions keep only their newest message while a plan is computed.
    """
    executor = SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    try:
        # Short waits rather than spin(): the main thread returns to Python often enough for
        # Ctrl-C to arrive as KeyboardInterrupt (a wait inside rcl would hold it back).
        while rclpy.ok(context=executor.context):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Bounded: a Ctrl-C that lands inside a callback leaves that task unfinished, and an unbounded
        # shutdown() would wait for it forever (seen once in CI as bringup ignoring Ctrl-C).
        executor.shutdown(timeout_sec=SHUTDOWN_TIMEOUT_S)
        for node in nodes:
            node.destroy_node()


def run_nodes(make_nodes: Callable[[], list[Node]], args: list[str] | None = None) -> int:
    """``rclpy.init(args)``, build the nodes, spin them, shut down; the body of every ``main``.

    Returns 0 after Ctrl-C or shutdown, 2 when a node cannot be built for a user's mistake (a bad
    parameter, a missing checkpoint): printed as one line, not as a traceback
    (:mod:`foundation.user_errors`). Any other exception is a bug and propagates with its traceback.
    """
    # rclpy's own SIGINT handler shuts the context down at once, under a callback that may still be
    # publishing ("publisher's context is invalid"); instead, Ctrl-C (and SIGTERM from ros2 launch)
    # raise KeyboardInterrupt in the spin loop, which lets the current callback finish, destroys the
    # nodes, and only then shuts ROS down.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        try:
            nodes = make_nodes()
        except KeyboardInterrupt:  # Ctrl-C while a node was still being built (loading a model)
            return 0
        except USER_ERRORS as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return USER_ERROR_EXIT_CODE
        spin_nodes(nodes)
        return 0
    finally:
        rclpy.try_shutdown()
