"""``jepa-mpc collect``: record episodes of a sim task (:func:`sim.collect.collect`) and print what was recorded."""
from __future__ import annotations

from sim.collect import CollectConfig, collect


def run_collect(config: CollectConfig) -> None:
    print(collect(config).text())
