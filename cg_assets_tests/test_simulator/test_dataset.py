"""The in-memory store: indexes agree with a brute-force scan; generated dates hang together."""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest

from cg_assets.customergauge import wire
from cg_simulator.dataset import Dataset, key_of, pk_of

START = dt.date(2026, 1, 1)
END = dt.date(2026, 1, 20)


@pytest.fixture(scope="module")
def store() -> Dataset:
    return Dataset(records=5000, start=START, end=END, seed=9)


def _dt(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, wire.RECORD_DATE_FORMAT)


def test_select_agrees_with_a_full_scan(store):
    rng = random.Random(1)
    days = {f: [store.record(pk)[f][:10] for pk in range(1, 5001)] for f in wire.PERIOD_FIELDS}
    for _ in range(60):
        field = rng.choice(wire.PERIOD_FIELDS)
        start = START + dt.timedelta(days=rng.randrange(-12, 20))
        end = start + dt.timedelta(days=rng.randrange(0, 6))
        start_day = rng.choice([start, None])
        end_day = rng.choice([end, None])
        after = rng.choice([None, rng.randrange(0, 5000)])
        limit = rng.choice([1, 7, 100, 1000])
        expected = [
            pk
            for pk in range(1, 5001)
            if (start_day is None or days[field][pk - 1] >= str(start_day))
            and (end_day is None or days[field][pk - 1] <= str(end_day))
            and (after is None or pk > after)
        ][:limit]
        assert store.select(field, start_day, end_day, after, limit) == expected


def test_dates_hang_together(store):
    records = store.records()
    assert len(records) == 5000
    for r in records:
        sent, creation, order = _dt(r["date_sent"]), _dt(r["date_creation"]), _dt(r["date_order"])
        assert START <= sent.date() <= END
        assert dt.timedelta(0) <= sent - creation <= dt.timedelta(hours=36)
        assert dt.timedelta(0) <= creation - order <= dt.timedelta(days=10)
        assert dt.timedelta(0) <= _dt(r["date_email_sent"]) - sent <= dt.timedelta(minutes=15)
        if r["status"] == "survey-clicked":
            assert _dt(r["date_clicked"]) > _dt(r["date_opened"]) > sent
        if r["status"] == "survey-sent":
            assert r["date_opened"] in wire.NULL_DATES and r["date_clicked"] in wire.NULL_DATES


def test_keys_are_unique_and_map_back(store):
    got = [r[wire.RECORD_KEY] for r in store.records()]
    assert len(set(got)) == len(got)
    assert all(pk_of(key_of(pk)) == pk and key_of(pk) != pk for pk in range(1, 100))
    assert pk_of(key_of(5) + 1) is None


def test_mutation_invalidates_cached_bytes():
    store = Dataset(records=50, start=START, end=START, seed=2)
    before = store.render([3], with_properties=False)[0]
    assert b"survey-failed" not in before
    store.fail_records([key_of(3)])
    after = store.render([3], with_properties=False)[0]
    assert b"survey-failed" in after
    assert store.record(3)["status"] == "survey-failed"


def test_without_properties_is_the_same_record_minus_properties(store):
    import json

    for pk in (1, 17, 4999):
        full = json.loads(store.render([pk], with_properties=True)[0])
        plain = json.loads(store.render([pk], with_properties=False)[0])
        full.pop("properties")
        assert full == plain


def test_large_generation_is_quick():
    started = time.perf_counter()
    store = Dataset(records=200_000, start=START, end=dt.date(2026, 6, 30), seed=1)
    elapsed = time.perf_counter() - started
    print(f"\n200k records indexed in {elapsed:.2f} s")
    assert len(store) == 200_000
    assert elapsed < 20  # 1M takes a few seconds; generous bound against slow CI
    started = time.perf_counter()
    day = dt.date(2026, 3, 3)
    pks = store.select("date_sent", day, day, None, 1000)
    assert pks and time.perf_counter() - started < 0.05
