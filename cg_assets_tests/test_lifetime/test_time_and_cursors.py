"""Elapsed time across DST changes, and the one cursor codec of footer and metadata."""

from __future__ import annotations

import datetime as dt

import pytest

from cg_assets.defs.day_status import last_settle_due_day
from cg_assets.lake.cursor_codec import decode_cursor, encode_cursor
from cg_assets.settings import LoadSettings
from cg_assets.sync import SyncOptions, day_end, is_settle_due, settle_due_at

UTC = dt.timezone.utc
AMSTERDAM = "Europe/Amsterdam"
OPTIONS = SyncOptions("date_sent", AMSTERDAM, 48)
# Amsterdam's two DST weekends of 2026: the clocks go forward on 29 March (a 23-hour day)
# and back on 25 October (a 25-hour day).
SPRING, AUTUMN = dt.date(2026, 3, 29), dt.date(2026, 10, 25)


@pytest.mark.parametrize(
    "day", [SPRING - dt.timedelta(days=1), SPRING, AUTUMN - dt.timedelta(days=1), AUTUMN]
)
def test_the_settle_lag_is_48_elapsed_hours_across_dst(day):
    ends = day_end(day, AMSTERDAM).astimezone(UTC)
    due = settle_due_at(day, AMSTERDAM, 48)
    assert due - ends == dt.timedelta(hours=48)
    assert (due.timestamp() - ends.timestamp()) == 48 * 3600  # real seconds, not wall clock
    assert not is_settle_due(day, due - dt.timedelta(seconds=1), OPTIONS)
    assert is_settle_due(day, due, OPTIONS)
    # the same instant expressed in the day's own zone gives the same answer
    local = due.astimezone(day_end(day, AMSTERDAM).tzinfo)
    assert is_settle_due(day, local, OPTIONS)
    assert not is_settle_due(day, local - dt.timedelta(seconds=1), OPTIONS)


def test_wall_clock_arithmetic_would_be_an_hour_off_on_these_days():
    """Why settle_due_at converts to UTC: adding hours to an aware local time is wall-clock."""
    for day, real_hours in ((SPRING, 47), (AUTUMN, 49)):
        local_ends = day_end(day - dt.timedelta(days=1), AMSTERDAM)
        wall_clock = local_ends + dt.timedelta(hours=48)
        elapsed = (wall_clock.timestamp() - local_ends.timestamp()) / 3600
        assert elapsed == real_hours


@pytest.mark.parametrize("day", [SPRING, AUTUMN])
def test_the_last_settle_due_day_moves_exactly_48_hours_after_midnight(day):
    settings = LoadSettings(timezone=AMSTERDAM, settle_after_hours=48)
    due = settle_due_at(day, AMSTERDAM, 48)
    assert last_settle_due_day(due, settings) == day
    assert last_settle_due_day(due - dt.timedelta(seconds=1), settings) == day - dt.timedelta(
        days=1
    )


@pytest.mark.parametrize("cursor", [None, 0, 7, 2**53 + 1, "abc", "123", "None", ""])
def test_every_cursor_round_trips_through_the_codec(cursor):
    assert decode_cursor(encode_cursor(cursor)) == cursor
    assert type(decode_cursor(encode_cursor(cursor))) is type(cursor)


def test_what_earlier_versions_stored_still_decodes():
    assert decode_cursor(240) == 240  # an int metadata value
    assert decode_cursor("None") is None  # str(None) before the codec
    assert decode_cursor(None) is None
    with pytest.raises(ValueError):
        decode_cursor("[1, 2]")
