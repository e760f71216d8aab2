"""``jepa-mpc collect``: record episodes of a sim task (:func:`sim.collect.collect`) and print what was recorded."""

from __future__ import annotations

from sim.collect import CollectConfig, CollectInterrupted, collect


def run_collect(config: CollectConfig) -> None:
    try:
        summary = collect(config)
    except CollectInterrupted as interrupted:
        print(interrupted.summary.text(), flush=True)  # what is on disk, before the command says "interrupted"
        raise
    print(summary.text())
