"""Paging, the period filter, record shape, short pages, determinism and speed."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time

import pytest

from cg_assets.customergauge import wire
from cg_simulator import SimulatorControl, running_simulator

from .conftest import END, RECORDS, SEED, START, Api, keys, period

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
RECORD_KEYS = {
    "status", "contact", "account", wire.RECORD_KEY, "number_customer", "number_order",
    "email", "phone", "date_creation", "date_order", "date_sent", "date_opened",
    "date_clicked", "date_email_sent", "language", "link",
}  # fmt: skip


def test_paging_to_the_empty_page_without_duplicates(api, ctl):
    records, cursor, sizes = api.fetch_all(per_page=150)
    truth = ctl.truth()
    assert len(truth) == RECORDS
    assert keys(records) == keys(truth)  # pk order, nothing lost, nothing twice
    assert len(set(keys(records))) == RECORDS
    assert sizes == [150] * (RECORDS // 150) + [RECORDS % 150]
    # the empty page hands back the cursor it was sent
    body = api.page({wire.PARAM_CURSOR: cursor})
    assert body == {wire.BODY_DATA: [], wire.BODY_CURSOR: {wire.BODY_CURSOR_NEXT: cursor}}


def test_cursor_continuity(api):
    first = api.page({wire.PARAM_PER_PAGE: 10})
    second = api.page({wire.PARAM_PER_PAGE: 10, wire.PARAM_CURSOR: first["cursor"]["next"]})
    both = api.page({wire.PARAM_PER_PAGE: 20})
    assert keys(first["data"]) + keys(second["data"]) == keys(both["data"])
    assert second["cursor"]["next"] == both["cursor"]["next"]
    assert second["cursor"]["next"] > first["cursor"]["next"]


def test_default_per_page_is_100(api):
    assert len(api.page()[wire.BODY_DATA]) == 100


def test_empty_page_without_cursor_returns_zero(api):
    body = api.page(period("date_sent", "2020-01-01", "2020-01-01"))
    assert body == {wire.BODY_DATA: [], wire.BODY_CURSOR: {wire.BODY_CURSOR_NEXT: 0}}


def test_record_shape(api):
    plain = api.page({wire.PARAM_PER_PAGE: 1000})[wire.BODY_DATA]
    full = api.page({wire.PARAM_PER_PAGE: 1000, wire.PARAM_WITH: wire.WITH_PROPERTIES})["data"]
    assert all(set(r) == RECORD_KEYS for r in plain)
    assert all(set(r) == RECORD_KEYS | {wire.WITH_PROPERTIES} for r in full)
    assert [{k: v for k, v in r.items() if k != "properties"} for r in full] == plain
    names = set()
    for r in full:
        assert set(r["contact"]) == {"first_name", "last_name"}
        assert set(r["account"]) == {"name", "number"}
        assert isinstance(r[wire.RECORD_KEY], int)
        for name in ("date_creation", "date_order", "date_sent", "date_email_sent"):
            assert DATE_RE.fullmatch(r[name])
            dt.datetime.strptime(r[name], wire.RECORD_DATE_FORMAT)
        for name in ("date_opened", "date_clicked"):
            assert r[name] in wire.NULL_DATES or r[name] > r["date_sent"]
        assert r["link"].startswith("https://survey.eu.customergauge.com/r/")
        assert r["status"] in {"survey-sent", "survey-opened", "survey-clicked", "reminder-sent"}
        assert START <= dt.date.fromisoformat(r["date_sent"][:10]) <= END
        assert all(set(p) == {"field", "reference"} for p in r["properties"])
        names.add(r["contact"]["first_name"] + r["contact"]["last_name"] + r["account"]["name"])
    assert len({r[wire.RECORD_KEY] for r in full}) == len(full)
    # realistic variety: nulls, both spellings of a null date, non-ASCII text
    assert any(r["phone"] is None for r in full) and any(r["phone"] for r in full)
    assert any(r["account"]["number"] is None for r in full)
    assert {r["date_opened"] for r in full} >= set(wire.NULL_DATES)
    assert any(p["reference"] is None for r in full for p in r["properties"])
    assert any(not n.isascii() for n in names)
    assert len({r["status"] for r in full}) == 4


@pytest.mark.parametrize("field", wire.PERIOD_FIELDS)
def test_one_day_filter_returns_exactly_the_truth(api, ctl, field):
    day = START + dt.timedelta(days=3)
    records, _, _ = api.fetch_all(period(field, day, day), per_page=25)
    truth = ctl.truth(field, day, day)
    assert 0 < len(truth) < RECORDS
    assert keys(records) == keys(truth)
    assert all(r[field][:10] == str(day) for r in records)
    # nothing of that day was left out
    every = ctl.truth(field)
    assert len([r for r in every if r[field][:10] == str(day)]) == len(truth)


@pytest.mark.parametrize(
    ("start", "end"),
    [(START + dt.timedelta(days=2), END - dt.timedelta(days=2)), (START + dt.timedelta(days=5), None), (None, START + dt.timedelta(days=1))],
)  # fmt: skip
def test_ranges_and_open_ended_periods(api, ctl, start, end):
    for field in wire.PERIOD_FIELDS:
        records, _, _ = api.fetch_all(period(field, start, end), per_page=40)
        expected = [
            r
            for r in ctl.truth(field)
            if (start is None or r[field][:10] >= str(start))
            and (end is None or r[field][:10] <= str(end))
        ]
        assert 0 < len(records) < RECORDS
        assert keys(records) == keys(expected)


def test_truth_endpoint_filters(ctl):
    day = START + dt.timedelta(days=1)
    truth = ctl.truth("date_order", day, day)
    assert truth and all(r["date_order"].startswith(str(day)) for r in truth)
    assert all("properties" in r for r in truth)


def test_pass_through_params_are_accepted_and_recorded(api, ctl):
    params = {wire.PARAM_PER_PAGE: 5, "filter[cgid]": "123", "with[]": ["drivers", "properties"]}
    body = api.page(params)
    assert len(body["data"]) == 5 and "properties" in body["data"][0]
    last = ctl.stats()["requests"][-1]
    assert last["path"] == wire.NON_RESPONSES_PATH
    assert last["query"] == {
        "per_page": "5",
        "filter[cgid]": "123",
        "with[]": ["drivers", "properties"],
    }


def test_max_page_size_gives_short_pages(api, ctl):
    ctl.configure(max_page_size=7)
    body = api.page({wire.PARAM_PER_PAGE: 100})
    assert len(body["data"]) == 7
    day = START + dt.timedelta(days=2)
    records, _, sizes = api.fetch_all(period("date_sent", day, day), per_page=1000)
    assert keys(records) == keys(ctl.truth("date_sent", day, day))
    assert max(sizes) == 7 and len(sizes) > 1
    ctl.configure(max_page_size=None)
    assert len(api.page({wire.PARAM_PER_PAGE: 100})["data"]) == 100


def test_same_seed_same_data_other_seed_other_data(sim):
    here = SimulatorControl(sim.url).truth()
    with running_simulator(records=RECORDS, start=START, end=END, seed=SEED) as twin:
        assert SimulatorControl(twin.url).truth() == here
    with running_simulator(records=RECORDS, start=START, end=END, seed=SEED + 1) as other:
        there = SimulatorControl(other.url).truth()
    assert len(there) == len(here)
    assert [r["date_sent"] for r in there] != [r["date_sent"] for r in here]
    assert [r["contact"] for r in there] != [r["contact"] for r in here]


def test_pks_follow_date_sent_roughly(ctl):
    sent = [r["date_sent"] for r in ctl.truth()]
    in_order = sum(a <= b for a, b in itertools.pairwise(sent))
    assert in_order < len(sent) - 1  # some local shuffling
    assert in_order > 0.8 * (len(sent) - 1)  # but roughly ordered
    per_day = {}
    for s in sent:
        per_day[s[:10]] = per_day.get(s[:10], 0) + 1
    assert len(per_day) == (END - START).days + 1
    assert max(per_day.values()) - min(per_day.values()) <= 1  # spread evenly


def test_1000_record_page_is_fast():
    with running_simulator(records=20_000, start=START, end=END, seed=SEED) as sim:
        api = Api(sim)
        api.login()
        params = {wire.PARAM_PER_PAGE: 1000, wire.PARAM_WITH: wire.WITH_PROPERTIES}
        api.page(params)  # connect
        cursor = None
        timings = []
        for _ in range(20):
            if cursor is not None:
                params[wire.PARAM_CURSOR] = cursor
            started = time.perf_counter()
            response = api.get(params)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200
            body = response.json()
            assert len(body["data"]) == 1000
            cursor = body["cursor"]["next"]
    average_ms = 1000 * sum(timings) / len(timings)
    print(f"\n1000-record page (with properties): {average_ms:.1f} ms on average")
    assert average_ms < 250  # generous: typically well under 50 ms
