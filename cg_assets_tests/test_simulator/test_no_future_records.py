"""The simulator never serves a record dated after the moment it is asked (make run's demo)."""

from __future__ import annotations

import datetime as dt

from cg_simulator import SimulatorControl, running_simulator


def sent_times(url: str) -> list[dt.datetime]:
    with SimulatorControl(url) as control:
        rows = control.truth(field="date_sent")
    return [dt.datetime.fromisoformat(row["date_sent"]) for row in rows]


def test_today_holds_only_what_was_sent_so_far_and_a_restart_serves_the_same(tmp_path):
    journal = str(tmp_path / "sim.journal")
    today = dt.datetime.now().date()
    # the demo's shape: days up to today (in the simulator's time zone, here the local one)
    with running_simulator(
        records=1400, start=today - dt.timedelta(days=6), journal=journal
    ) as sim:
        asked_at = dt.datetime.now()
        first = sent_times(sim.url)
    assert first and max(first) <= asked_at
    on_today = [t for t in first if t.date() == today]
    assert len(first) - len(on_today) >= 1000  # the earlier days keep their share
    with running_simulator(records=1400, journal=journal) as sim:
        assert sent_times(sim.url) == first  # generated with the first session's moment
