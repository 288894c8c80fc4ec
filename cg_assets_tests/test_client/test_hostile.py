"""A broken or hostile API over loopback HTTP: deadlines a server cannot stretch and limits
enforced while reading (docs/hardening.md). No wall-clock assertions: the deadlines are
proven by the cause of the retries and the setting named in the error (a client without
them would hang on these faults until the test's own timeout); timings are measured by
benchmarks/hostile.py."""

from __future__ import annotations

import datetime as dt

import pytest

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.customergauge.errors import ApiLimitError, RetriesExhaustedError
from cg_assets.lake.decode import RecordDecodeError, RecordDecoder
from cg_assets_tests.conftest import make_resource
from cg_assets_tests.test_client.test_client import PATH, PERIOD, fetch_day, truth_keys

# Short deadlines, so that each case takes a few seconds.
FAST = {
    "http_headers_deadline_seconds": "1",
    "http_response_deadline_seconds": "1.5",
    "max_retries": 1,
    "retry_budget_seconds": "20",
}


def keys(records: list[dict]) -> list[int]:
    return [r["number_customergauge"] for r in records]


@pytest.mark.parametrize(
    ("fault", "setting"),
    [
        # the token body (about 90 bytes) at one byte every 0.1 s
        ({"kind": "dribble", "target": "token", "seconds": 0.1}, "RESPONSE"),
        # a page body (tens of kB) at one byte every 0.05 s
        ({"kind": "dribble", "seconds": 0.05}, "RESPONSE"),
        # the status line and each header 0.5 s apart: 6 lines, 3 s
        ({"kind": "slow_headers", "seconds": 0.5}, "HEADERS"),
        ({"kind": "slow_headers", "target": "token", "seconds": 0.5}, "HEADERS"),
    ],
    ids=["token-body", "page-body", "page-headers", "token-headers"],
)
def test_a_dribbling_server_fails_the_request_naming_the_deadline(
    simulator, control, fault, setting
):
    control.inject({**fault, "times": 5})
    with (
        make_resource(simulator, **FAST).get_client() as client,
        pytest.raises(RetriesExhaustedError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert info.value.last_cause == "deadline"
    assert f"CG_HTTP_{setting}_DEADLINE_SECONDS" in message, message
    assert "failed after 2 attempt(s)" in message  # a deadline is retried within the budget
    assert client.stats.retries["deadline"] == 1


@pytest.mark.parametrize("target", ["api", "token"])
def test_a_deadline_is_a_transient_fault_a_retry_gets_past(simulator, control, target):
    control.inject({"kind": "dribble", "target": target, "seconds": 0.1})
    with make_resource(simulator, **FAST).get_client() as client:
        records, _ = fetch_day(client)
    assert keys(records) == truth_keys(control)
    assert client.stats.retries["deadline"] == 1


def test_a_server_that_answers_quickly_in_pieces_is_not_cut(simulator, control):
    """The deadline is of the answer, not of a read: a normal day passes with short ones."""
    with make_resource(simulator, **FAST).get_client() as client:
        records, _ = fetch_day(client)
    assert keys(records) == truth_keys(control) and not client.stats.retries


@pytest.mark.parametrize("target", ["api", "token"])
def test_a_gzip_bomb_stops_at_the_body_limit(simulator, control, target):
    # 64 MiB of whitespace in about 64 kB of gzip, against a 1 MiB limit
    control.inject({"kind": "gzip_bomb", "target": target, "size": 64 * 1024 * 1024})
    with (
        make_resource(simulator, max_body_bytes=str(1024 * 1024)).get_client() as client,
        pytest.raises(ApiLimitError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert "CG_MAX_BODY_BYTES" in message and "1048576 bytes" in message
    assert info.value.setting == "CG_MAX_BODY_BYTES"


def test_an_endless_body_stops_at_the_body_limit(simulator, control):
    control.inject({"kind": "huge_body", "size": 1 << 40})  # no Content-Length, a TiB
    with (
        make_resource(simulator, max_body_bytes=str(1024 * 1024)).get_client() as client,
        pytest.raises(ApiLimitError, match="CG_MAX_BODY_BYTES"),
    ):
        fetch_day(client)


def test_a_gzip_page_within_the_limit_is_read(simulator, control):
    """The client inflates gzip itself: a small bomb under the limit is a (whitespace) page
    that never closes, a broken body, retried; then the real pages come through."""
    control.inject({"kind": "gzip_bomb", "size": 100_000})
    with make_resource(simulator).get_client() as client:
        records, _ = fetch_day(client)
    assert keys(records) == truth_keys(control)
    assert client.stats.retries["bad_body"] == 1


def test_deep_nesting_is_refused_before_any_parser_sees_it(simulator, control):
    control.inject({"kind": "deep_nesting", "depth": 20_000})
    with (
        make_resource(simulator).get_client() as client,
        pytest.raises(ApiLimitError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert "CG_MAX_JSON_DEPTH" in message and "64 levels" in message and "page 1" in message


def test_endless_paging_stops_at_the_pages_per_day_limit(simulator, control):
    control.inject({"kind": "endless_pages", "times": 1000})
    with (
        make_resource(simulator, max_pages_per_day="12").get_client() as client,
        pytest.raises(ApiLimitError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert "CG_MAX_PAGES_PER_DAY" in message and "12 pages" in message
    assert client.stats.pages == 12  # the 13th was never asked for


def test_a_key_above_int64_fails_naming_the_record(simulator, control):
    control.inject({"kind": "huge_key"})
    decoder = RecordDecoder(NON_RESPONSES.columns)
    with make_resource(simulator).get_client() as client:
        page = next(iter(client.iter_pages(PATH, period=PERIOD, reader=decoder.read_page)))
    with pytest.raises(RecordDecodeError) as info:
        decoder.decode(page.records, dt.datetime.now(dt.timezone.utc), "day X page 1", page.body)
    message = str(info.value)
    assert "day X page 1, record #0" in message and "past a 64-bit integer" in message
