"""When the planner node may publish a command (pure Python, no ROS).

A plan takes longer than a control period on a CPU (1.2 s with the default model); a stop must not
wait for it, and the plan must not be sent when it ends after the stop. :class:`CommandGate` is the
rule: the planning thread takes a ticket before it plans and sends its command through the gate; a
stop, deactivate, shutdown, error transition or signal closes the gate under the lock the sending
holds, so once :meth:`CommandGate.close` returns no command follows, whatever was planned or queued::

    gate = CommandGate()
    gate.open()                          # activate
    ticket = gate.ticket()               # planning thread, before the plan (None: closed)
    ...                                  # plan, without the lock
    gate.send(ticket, publish)           # publish() runs under the lock, only if the ticket is current
    gate.close()                         # any thread: no send succeeds from here on

A ticket is current while the gate stays open and nothing invalidated it since it was taken:
closing and opening again (a stop, then a start) or :meth:`CommandGate.invalidate` (the goal images
changed, the plan was reset) make the plans in progress stale, so a command is always planned toward
the goals and from the plan state in force when it is sent.

"""

from __future__ import annotations

import threading
from collections.abc import Callable


class CommandGate:
    """Open while the node may command; see the module docstring.

    ``lock``: the lock the gate's state and every :meth:`send` run under (an ``RLock``, so that the
    node can share it with the state the publishing updates); a new one if not given.
    """

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self._open = False
        self._generation = 0  # bumped by open, close and invalidate: tickets of older generations are stale

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        """Commands may be sent again (activate); plans taken before are still stale."""
        with self.lock:
            self._open = True
            self._generation += 1

    def close(self) -> bool:
        """No command from now on, not even from a plan that is running; True if the gate was open."""
        with self.lock:  # waits for a send in progress (a few publishes), never for a plan
            was_open, self._open = self._open, False
            self._generation += 1
            return was_open

    def invalidate(self) -> None:
        """The plans in progress no longer fit (the goals changed, the plan was reset): drop their commands."""
        with self.lock:
            self._generation += 1

    def ticket(self) -> int | None:
        """A ticket for the plan about to start, None while the gate is closed."""
        with self.lock:
            return self._generation if self._open else None

    def valid(self, ticket: int | None) -> bool:
        """Would a command planned under ``ticket`` be sent now?"""
        with self.lock:
            return ticket is not None and self._open and ticket == self._generation

    def send(self, ticket: int | None, publish: Callable[[], None]) -> bool:
        """Run ``publish`` under the lock if ``ticket`` is still current; False (nothing run) if not."""
        with self.lock:
            if not self.valid(ticket):
                return False
            publish()
            return True
