"""Days synced side by side on one client, over HTTP to the simulator: equal to the truth,
per-day statistics that do not mix, one token renewal for all streams, one rate gate."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cg_assets.customergauge.client import CustomerGaugeClient
from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.customergauge.gate import CAUTIOUS_SECONDS
from cg_assets.day_runner import run_days
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.sync import DayResult, SyncOptions, plan_day, sync_day
from cg_assets_tests.conftest import SIM_END, SIM_START, make_resource
from cg_assets_tests.truth import assert_day_equals_truth
from cg_simulator import SimulatorControl, SimulatorServer

DAYS = [SIM_START + dt.timedelta(days=i) for i in range((SIM_END - SIM_START).days + 1)]
CONCURRENCY = 4
PER_PAGE = 10  # ~13 pages a day: every day is a stream of many requests
# Days weeks old, a settle lag of a year: every day is fetched whole on a first sync.
OPTIONS = SyncOptions("date_sent", "UTC", 8784)


def sync_concurrently(
    client: CustomerGaugeClient, lake_root: Path, concurrency: int = CONCURRENCY
) -> dict[dt.date, DayResult]:
    """What the asset does with CG_CONCURRENCY: plan + sync per day, run by run_days."""
    lake = ParquetLake(str(lake_root))
    lake.ensure_writable()

    def work(day: dt.date) -> DayResult:
        plan = plan_day(
            day,
            now=dt.datetime.now(dt.timezone.utc),
            options=OPTIONS,
            full_refresh=False,
            stored=None,
            file_state=lake.day_state(NON_RESPONSES.name, day),
        )
        return sync_day(client, lake, NON_RESPONSES, day, plan, OPTIONS)

    results: dict[dt.date, DayResult] = {}
    errors: dict[dt.date, BaseException] = {}

    def on_result(day: dt.date, result: DayResult | None, error: BaseException | None) -> None:
        if error is not None:
            errors[day] = error
        else:
            assert result is not None
            results[day] = result

    run_days(DAYS, work, concurrency, on_result)
    assert not errors, errors
    return results


def requests_of(control: SimulatorControl) -> list[dict[str, Any]]:
    stats = control.stats()
    log = stats["requests"]
    assert len(log) == stats["api_requests"], "the request log overflowed: use fewer pages"
    return log


def day_of(request: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(request["query"]["period[start]"])


def assert_every_day_equals_the_truth(lake_root: Path, control: SimulatorControl) -> None:
    for day in DAYS:
        assert_day_equals_truth(lake_root, control, day)


@pytest.fixture
def client(simulator: SimulatorServer) -> Any:
    with make_resource(simulator, per_page=PER_PAGE).get_client() as c:
        yield c


def test_four_streams_sync_every_day_equal_to_the_truth_with_per_day_stats(
    client, control, lake_root
):
    control.configure(latency_ms=20)  # pages take a while, so the days overlap
    control.inject({"kind": "slow", "seconds": 0, "times": 10}, {"kind": "status", "code": 503})
    control.inject({"kind": "slow", "seconds": 0, "times": 10}, {"kind": "status", "code": 500})

    results = sync_concurrently(client, lake_root)

    assert_every_day_equals_the_truth(lake_root, control)
    log = requests_of(control)
    # The days did run side by side: some day's first request came before another's last.
    spans = {}
    for i, request in enumerate(log):
        first, _ = spans.get(day_of(request), (i, i))
        spans[day_of(request)] = (first, i)
    assert any(
        a_first < b_last and b_first < a_last
        for a, (a_first, a_last) in spans.items()
        for b, (b_first, b_last) in spans.items()
        if a < b
    )
    # Each day's statistics count that day's requests and retries, none of another day's.
    per_day = Counter(day_of(r) for r in log)
    failed = Counter(day_of(r) for r in log if r["status"] >= 500)
    for day, result in results.items():
        assert result.stats.requests == per_day[day]
        assert sum(result.stats.retries.values()) == result.stats.retries["5xx"] == failed[day]
        assert result.stats.records == result.row_count
    assert sum(failed.values()) == 2
    # The client's totals are the sum of the days'.
    assert client.stats.requests == sum(r.stats.requests for r in results.values()) == len(log)
    assert client.stats.retries["5xx"] == 2
    # One token for every stream.
    assert control.stats()["token_requests"] == 1
    assert sum(r.stats.token_requests for r in results.values()) == 1


def test_a_revoked_token_is_renewed_once_for_all_streams(client, control, lake_root):
    control.configure(latency_ms=20)
    # Mid-run, the API revokes the token that every stream is using.
    control.inject({"kind": "slow", "seconds": 0, "times": 12}, {"kind": "unauthorized"})

    results = sync_concurrently(client, lake_root)

    assert_every_day_equals_the_truth(lake_root, control)
    stats = control.stats()
    assert stats["status_counts"]["401"] >= 1
    assert stats["token_requests"] == 2  # the first token and ONE renewal
    assert sum(r.stats.token_requests for r in results.values()) == 1 + 1


def test_tokens_that_die_mid_run_are_renewed_once_per_death(client, control, lake_root):
    uses = 7
    control.configure(latency_ms=10, expire_tokens_after_requests=uses)

    results = sync_concurrently(client, lake_root)

    assert_every_day_equals_the_truth(lake_root, control)
    stats = control.stats()
    answered = sum(1 for r in requests_of(control) if r["status"] == 200)  # API pages only
    # Each token answers exactly `uses` requests before it dies: one renewal per death
    # means no more tokens than that takes; a stream renewing on its own would use more.
    assert stats["token_requests"] == math.ceil(answered / uses)
    assert stats["token_requests"] >= 5  # several deaths happened mid-run
    assert sum(r.stats.token_requests for r in results.values()) == stats["token_requests"]


def test_a_429_on_one_stream_pauses_every_stream(client, control, lake_root):
    latency = 0.05
    pause = 1.5
    control.configure(latency_ms=latency * 1000)
    control.inject(
        {"kind": "slow", "seconds": 0, "times": 12},
        {"kind": "status", "code": 429, "retry_after": pause},
    )

    results = sync_concurrently(client, lake_root)

    assert_every_day_equals_the_truth(lake_root, control)
    log = requests_of(control)
    throttled = [r for r in log if r["status"] == 429]
    assert len(throttled) == 1
    hit = throttled[0]["at"]
    # The 429 is answered after `latency`; requests other streams had sent by the time the
    # client read it may still arrive. After that, while the pause lasts, nothing arrives
    # from any stream (three busy streams would send ~50 requests in that window).
    quiet_from = hit + latency + 0.6  # generous for a loaded machine
    quiet_until = hit + latency + pause
    during_pause = [r for r in log if quiet_from < r["at"] < quiet_until]
    assert during_pause == []
    # When it ends, the streams are cautious for CAUTIOUS_SECONDS: one request at a time,
    # each sent after the previous one's answer, which the simulator gives only after
    # `latency`. Four streams at full speed would overlap their requests.
    after = sorted(r["at"] for r in log if quiet_until <= r["at"] < quiet_until + CAUTIOUS_SECONDS)
    assert len(after) >= 10
    assert all(later - earlier >= latency for earlier, later in itertools.pairwise(after))
    assert sum(r.stats.retries["429"] for r in results.values()) == 1
    assert client.gate.pauses == 1


def test_the_request_ceiling_holds_over_all_streams(simulator, control, lake_root):
    ceiling = 20
    with make_resource(
        simulator, per_page=PER_PAGE, max_requests_per_second=ceiling
    ).get_client() as client:
        sync_concurrently(client, lake_root)

    assert_every_day_equals_the_truth(lake_root, control)
    arrivals = sorted(r["at"] for r in requests_of(control))
    assert len(arrivals) > 2 * ceiling  # long enough to measure
    busiest = max(
        sum(1 for t in arrivals[i:] if t < start + 1.0) for i, start in enumerate(arrivals)
    )
    # Starts are spaced 1/ceiling apart; slack for arrival jitter on a loaded machine.
    # Without the ceiling this client sends hundreds a second to the simulator.
    assert busiest <= ceiling + 5
