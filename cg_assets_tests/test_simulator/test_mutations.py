"""Mutations: new records reach a stored cursor; failures and responses need a re-fetch."""

from __future__ import annotations

import datetime as dt

import pytest

from cg_assets.customergauge import wire

from .conftest import END, RECORDS, START, keys, period

DAY = START + dt.timedelta(days=2)


def test_cursor_sees_added_records_only(api, ctl):
    _, cursor, _ = api.fetch_all()
    added = ctl.add_records(DAY, 5)
    assert len(added) == 5 and len(set(added)) == 5
    assert not set(added) & set(keys(ctl.truth()[:-5]))
    new, new_cursor, _ = api.fetch_all(cursor=cursor)
    assert keys(new) == added
    assert all(r["date_sent"].startswith(str(DAY)) for r in new)
    assert new_cursor > cursor
    # nothing more to see
    assert api.fetch_all(cursor=new_cursor)[0] == []
    # and the day's filtered view contains them, in pk order (last)
    day_records, _, _ = api.fetch_all(period("date_sent", DAY, DAY))
    assert keys(day_records)[-5:] == added
    assert len(ctl.truth()) == RECORDS + 5


@pytest.mark.parametrize("field", ["date_creation", "date_order"])
def test_add_records_on_another_field(api, ctl, field):
    day = END + dt.timedelta(days=1)
    added = ctl.add_records(day.isoformat(), 3, field=field)
    records, _, _ = api.fetch_all(period(field, day, day))
    assert set(added) <= set(keys(records))
    assert all(r[field].startswith(str(day)) for r in records if r[wire.RECORD_KEY] in added)


def test_failures_are_invisible_to_a_cursor_but_seen_on_refetch(api, ctl):
    before, cursor, _ = api.fetch_all(period("date_sent", DAY, DAY))
    failed = ctl.fail_records(day=DAY, count=3)
    assert len(failed) == 3 and set(failed) <= set(keys(before))
    # a catch-up from the stored cursor sees nothing
    assert api.fetch_all(period("date_sent", DAY, DAY), cursor=cursor)[0] == []
    # a full re-fetch of the day sees the new status, same records, same order
    after, _, _ = api.fetch_all(period("date_sent", DAY, DAY))
    assert keys(after) == keys(before)
    status = {r[wire.RECORD_KEY]: r["status"] for r in after}
    assert {status[k] for k in failed} == {"survey-failed"}
    assert "survey-failed" not in {status[k] for k in status if k not in failed}
    # the truth and the in-process store agree
    assert {r["status"] for r in ctl.truth() if r[wire.RECORD_KEY] in failed} == {"survey-failed"}


def test_fail_by_keys(api, ctl):
    first = api.page({wire.PARAM_PER_PAGE: 4})["data"]
    chosen = keys(first)[:2]
    assert ctl.fail_records([*chosen, 12345]) == chosen  # unknown keys are skipped
    again = api.page({wire.PARAM_PER_PAGE: 4})["data"]
    assert [r["status"] for r in again[:2]] == ["survey-failed"] * 2
    assert keys(again) == keys(first)


def test_responses_vanish(api, ctl, sim):
    everything, _, _ = api.fetch_all()
    gone = ctl.respond_records(keys(everything)[10:12])
    assert gone == keys(everything)[10:12]
    gone += ctl.respond_records(day=DAY, count=4)
    assert len(gone) == 6
    remaining, _, _ = api.fetch_all(per_page=100)
    assert len(remaining) == RECORDS - 6
    assert not set(gone) & set(keys(remaining))
    assert keys(remaining) == [k for k in keys(everything) if k not in gone]
    day_records, _, _ = api.fetch_all(period("date_sent", DAY, DAY))
    assert not set(gone) & set(keys(day_records))
    assert len(sim.dataset) == RECORDS - 6
    # responding twice does nothing
    assert ctl.respond_records(gone) == []


def test_bad_mutation_requests_are_refused(ctl):
    with pytest.raises(RuntimeError, match="400"):
        ctl.add_records("2026-13-01", 1)
    with pytest.raises(RuntimeError, match="400"):
        ctl.add_records(DAY, 1, field="date_opened")
    with pytest.raises(RuntimeError, match="400"):
        ctl.fail_records()
