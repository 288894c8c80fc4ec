"""A journaled simulator serves the same records, under the same cursors, after a restart."""

from __future__ import annotations

import datetime as dt
import time

from cg_simulator import SimulatorControl, running_simulator


def all_records(url: str) -> list[dict]:
    with SimulatorControl(url) as control:
        return control.truth(field="date_sent")


def test_a_restart_with_the_journal_serves_the_same_data(tmp_path):
    journal = str(tmp_path / "sim.journal")
    first_kwargs = {
        "records": 300,
        "start": dt.date(2026, 11, 1),
        "end": dt.date(2026, 11, 10),
        "seed": 5,
    }
    with running_simulator(**first_kwargs, live_every_seconds=0.05, journal=journal) as sim:
        deadline = time.monotonic() + 30
        while len(all_records(sim.url)) < 303 and time.monotonic() < deadline:
            time.sleep(0.05)
    with running_simulator(
        records=300, seed=5, journal=journal
    ) as sim:  # stopped: no live additions
        before = all_records(sim.url)
    assert len(before) >= 303
    # another day, other arguments: the journal wins
    with running_simulator(
        records=50, start=dt.date(2026, 11, 20), end=dt.date(2026, 11, 21), seed=9, journal=journal
    ) as sim:
        after = all_records(sim.url)
    assert after == before


def test_without_a_journal_a_restart_regenerates_from_the_arguments(tmp_path):
    with running_simulator(
        records=100, start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 3), seed=5
    ) as sim:
        one = all_records(sim.url)
    with running_simulator(
        records=100, start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 4), seed=5
    ) as sim:
        two = all_records(sim.url)
    assert one != two
