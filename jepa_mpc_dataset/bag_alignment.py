"""Aligning a bag's streams on the dataset's frame clock, and cutting the frames into episodes at the gaps.

Frame k of a span lies at ``t_k = t_0 + k / fps`` (integer nanoseconds, no drift): ``t_0`` is the span's start or
the first instant at which every stream has a message not older than its max age at the span's start, whichever
is later (a bag's streams start one after the other; a span's mark may come just before its messages); the frames
run to the span's end.
Each frame takes, from each stream, the latest message stamped at or before ``t_k`` (what the robot knew at that
time: sample and hold, never a message from the future). Its age ``t_k - stamp`` must be at most the stream's
``max_age``; a frame where some stream is older, or has no message yet, lies in a gap. The frames between gaps
become episodes (``on_gap="split"``, pieces shorter than ``min_frames`` left out) or the whole span is left out
(``"drop"``); either way each gap and each left-out piece is described in a line: which frames, which times
(seconds after the bag's first message, and the stamp), which stream and how old it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000


@dataclass(frozen=True)
class Clock:
    """A stream as the alignment sees it: its name in messages, its stamps (int64 [N] ns, sorted), its max age (ns)."""

    label: str
    stamps: np.ndarray
    max_age_ns: int


@dataclass(frozen=True)
class Piece:
    """Frames ``start .. stop - 1`` of a span's grid, all within every stream's max age: one episode."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


@dataclass
class SpanAlignment:
    """One span sampled on the frame clock.

    ``times`` int64 [K] (ns) the frame times; ``picks[i]`` int64 [K] the message of stream i each frame takes
    (-1: none yet); ``ages`` int64 [K, S] how old that message is (ns; a huge value where there is none);
    ``pieces`` the episodes kept; ``notes`` one line per gap and per piece left out.
    """

    times: np.ndarray
    picks: list[np.ndarray]
    ages: np.ndarray
    pieces: list[Piece]
    notes: list[str]


def frame_times(start_ns: int, end_ns: int, fps: int) -> np.ndarray:
    """``start_ns + round(k * 1e9 / fps)`` for k = 0, 1, ... up to ``end_ns``: int64 [K] (K = 0 if end < start)."""
    if end_ns < start_ns:
        return np.zeros(0, dtype=np.int64)
    count = (end_ns - start_ns) * fps // NS + 1
    times = start_ns + (np.arange(count + 1, dtype=np.int64) * NS + fps // 2) // fps
    return times[times <= end_ns]


def latest_at(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the latest stamp at or before each time (ties: the last message of that stamp); -1 where none."""
    return np.searchsorted(stamps, times, side="right") - 1


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The ``[start, stop)`` ranges where the bool [K] ``mask`` is True, in order."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _when(times: np.ndarray, start: int, stop: int, origin_ns: int) -> str:
    first, last = times[start], times[stop - 1]
    frames = f"frame {start}" if stop - start == 1 else f"frames {start}-{stop - 1}"
    return (
        f"{frames} ({(first - origin_ns) / NS:.2f}-{(last - origin_ns) / NS:.2f} s after the bag's first message, "
        f"stamps {first / NS:.3f}-{last / NS:.3f})"
    )


def _first_fresh(clock: Clock, span_start: int) -> int | None:
    """The stamp of the first message that is not yet too old at ``span_start`` (None: no such message)."""
    index = int(np.searchsorted(clock.stamps, span_start - clock.max_age_ns, side="left"))
    return int(clock.stamps[index]) if index < len(clock.stamps) else None


def align_span(
    clocks: list[Clock],
    span: tuple[int, int],
    fps: int,
    on_gap: str,
    min_frames: int,
    origin_ns: int,
    where: str,
) -> SpanAlignment:
    """Sample ``clocks`` on the frame clock over ``span`` (ns) and cut the frames into episodes at the gaps.

    ``where`` names the span in the notes (``"bag X"``, ``"bag X, span 2"``); ``origin_ns`` is the time the
    notes count seconds from. ``on_gap``: ``"split"`` or ``"drop"`` (see the module docstring).
    """
    firsts = [_first_fresh(clock, span[0]) for clock in clocks]
    if any(first is None for first in firsts):
        late = clocks[[first is None for first in firsts].index(True)]
        note = f"{where}: no frame: {late.label} has no message in the span; left out"
        empty = np.zeros(0, dtype=np.int64)
        return SpanAlignment(empty, [empty for _ in clocks], np.zeros((0, len(clocks)), np.int64), [], [note])
    times = frame_times(max(span[0], *firsts), span[1], fps)
    picks = [latest_at(clock.stamps, times) for clock in clocks]
    ages = np.stack(
        [
            np.where(pick >= 0, times - clock.stamps[np.maximum(pick, 0)], np.iinfo(np.int64).max)
            for clock, pick in zip(clocks, picks)
        ],
        axis=1,
    ).reshape(len(times), len(clocks))
    limits = np.array([clock.max_age_ns for clock in clocks], dtype=np.int64)
    stale = ages > limits  # [K, S]
    good = ~stale.any(axis=1)
    notes = []
    if len(times) == 0:
        late = clocks[int(np.argmax(firsts))]
        notes.append(
            f"{where}: no frame: {late.label} has no message before the span ends (its first at "
            f"{(max(firsts) - origin_ns) / NS:.2f} s after the bag's first message); left out"
        )
        return SpanAlignment(times, picks, ages, [], notes)
    for a, b in runs(~good):
        causes = []
        for s, clock in enumerate(clocks):
            if stale[a:b, s].any():
                worst = ages[a:b, s].max()
                age = "none yet" if worst == np.iinfo(np.int64).max else f"up to {worst / NS:.3f} s old"
                causes.append(f"{clock.label} {age} (max age {clock.max_age_ns / NS:g} s)")
        notes.append(f"{where}: gap at {_when(times, a, b, origin_ns)}: {'; '.join(causes)}")
    pieces = [Piece(a, b) for a, b in runs(good)]
    if on_gap == "drop" and len(pieces) and not good.all():
        kept = sum(piece.length for piece in pieces)
        notes.append(f"{where}: left out (--on_gap drop) for its gap(s): {kept} frame(s) without a gap dropped too")
        return SpanAlignment(times, picks, ages, [], notes)
    kept_pieces = []
    for piece in pieces:
        if piece.length < min_frames:
            notes.append(
                f"{where}: {_when(times, piece.start, piece.stop, origin_ns)} left out: {piece.length} frame(s) "
                f"between gaps, fewer than --min_frames {min_frames}"
            )
        else:
            kept_pieces.append(piece)
    return SpanAlignment(times, picks, ages, kept_pieces, notes)
