"""The CustomerGauge client over loopback HTTP against the simulator, faults included."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from typing import Any

import pytest

from cg_assets.customergauge import wire
from cg_assets.customergauge.client import CustomerGaugeClient, Period
from cg_assets.customergauge.errors import (
    ApiContractError,
    ApiRequestError,
    AuthenticationError,
    RetriesExhaustedError,
)
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE, make_resource
from cg_simulator import DEMO_CLIENT_SECRET, SimulatorControl, SimulatorServer

DAY = SIM_START + dt.timedelta(days=1)
PERIOD = Period("date_sent", DAY, DAY)
PATH = wire.NON_RESPONSES_PATH


def fetch_day(
    client: CustomerGaugeClient, day: dt.date = DAY, **kw: Any
) -> tuple[list[dict], list]:
    pages = list(
        client.iter_pages(PATH, period=Period("date_sent", day, day), expand=("properties",), **kw)
    )
    return [r for p in pages for r in p.records], pages


def truth_keys(control: SimulatorControl, day: dt.date = DAY) -> list[int]:
    return [r["number_customergauge"] for r in control.truth(field="date_sent", start=day, end=day)]


class FakeTime:
    """An injected clock that the injected sleep advances: retry waits are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def query_value(request: dict, name: str) -> Any:
    value = request["query"].get(name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_pages_to_the_empty_page_across_short_pages(client, control):
    control.configure(max_page_size=7)  # the server returns fewer than per_page
    records, pages = fetch_day(client)
    keys = [r["number_customergauge"] for r in records]
    assert keys == truth_keys(control)
    assert len(pages) == math.ceil(len(keys) / 7) + 1
    assert pages[-1].records == [] and all(len(p.records) == 7 for p in pages[:-2])
    # the period filter and the expansion go on every page, not only the first
    for request in control.stats()["requests"]:
        assert query_value(request, "period[field]") == "date_sent"
        assert (
            query_value(request, "period[start]")
            == query_value(request, "period[end]")
            == DAY.isoformat()
        )
        assert query_value(request, "with[]") == "properties"
        assert query_value(request, "per_page") == str(TEST_PER_PAGE)
    # each page resumes from the cursor the previous one returned
    for previous, page in itertools.pairwise(pages):
        assert page.sent_cursor == previous.cursor


def test_the_token_is_cached_across_requests(client, control):
    fetch_day(client)
    fetch_day(client, DAY + dt.timedelta(days=1))
    assert control.stats()["token_requests"] == 1
    assert client.stats.token_requests == 1
    assert client.stats.requests > 4


def test_a_401_fetches_a_new_token_and_retries_once(client, control):
    control.inject({"kind": "unauthorized"})
    records, _ = fetch_day(client)
    assert [r["number_customergauge"] for r in records] == truth_keys(control)
    assert control.stats()["token_requests"] == 2


def test_tokens_that_expire_mid_sync_are_refreshed(client, control):
    control.configure(expire_tokens_after_requests=2)
    records, pages = fetch_day(client)
    assert [r["number_customergauge"] for r in records] == truth_keys(control)
    assert control.stats()["token_requests"] >= len(pages) // 2


def test_an_expiring_token_is_renewed_before_it_dies(simulator, control):
    control.configure(token_ttl_seconds=1)  # margin is a tenth of the lifetime
    with make_resource(simulator).get_client() as client:
        fetch_day(client)
        import time

        time.sleep(1.0)
        fetch_day(client)
    assert control.stats()["token_requests"] == 2
    assert control.stats()["status_counts"].get("401", 0) == 0


def test_a_token_without_expires_in_is_assumed_to_last_an_hour(client, control):
    control.configure(omit_expires_in=True)
    fetch_day(client)
    fetch_day(client)
    assert control.stats()["token_requests"] == 1


def test_a_second_401_with_a_fresh_token_is_an_authentication_error(client, control):
    control.inject({"kind": "unauthorized", "times": 2})
    with pytest.raises(AuthenticationError, match="freshly issued"):
        fetch_day(client)


@pytest.mark.parametrize("setup", ["revoked", "wrong_secret"])
def test_rejected_credentials_name_the_settings_to_check(simulator, control, setup):
    if setup == "revoked":
        control.configure(revoked=True)
        resource = make_resource(simulator)
    else:
        resource = make_resource(simulator, client_secret="not-the-secret")
    with resource.get_client() as client, pytest.raises(AuthenticationError) as info:
        fetch_day(client)
    assert "CG_CLIENT_ID" in str(info.value) and "CG_CLIENT_SECRET" in str(info.value)
    assert DEMO_CLIENT_SECRET not in str(info.value) and "not-the-secret" not in str(info.value)


TRANSIENT = [
    ({"kind": "status", "code": 429, "retry_after": 0}, "429"),
    ({"kind": "status", "code": 429}, "429"),
    ({"kind": "status", "code": 500}, "5xx"),
    ({"kind": "status", "code": 503}, "5xx"),
    ({"kind": "slow", "seconds": 2.5}, "timeout"),
    ({"kind": "drop"}, "connection"),
    ({"kind": "drop_mid_body"}, "connection"),
    ({"kind": "truncate"}, "bad_body"),
    ({"kind": "html"}, "bad_body"),
]


@pytest.mark.parametrize(
    ("fault", "cause"), TRANSIENT, ids=[f"{f['kind']}-{f.get('code', '')}" for f, _ in TRANSIENT]
)
def test_transient_faults_are_retried_without_losing_or_repeating_a_record(
    simulator, control, fault, cause
):
    control.inject({**fault, "times": 2})
    with make_resource(simulator, http_timeout=[2, 1]).get_client() as client:
        records, _ = fetch_day(client)
        keys = [r["number_customergauge"] for r in records]
        assert keys == truth_keys(control)
        assert client.stats.retries[cause] == 2


@pytest.mark.parametrize("target", ["token"])
def test_faults_on_the_token_endpoint_are_retried_too(client, control, target):
    control.inject(
        {"kind": "status", "code": 502, "target": target}, {"kind": "drop", "target": target}
    )
    records, _ = fetch_day(client)
    assert len(records) == len(truth_keys(control))
    assert client.stats.retries["5xx"] == 1 and client.stats.retries["connection"] == 1


def test_retry_after_is_honoured(simulator, control):
    fake = FakeTime()
    waits = fake.waits
    resource = make_resource(simulator)
    client = CustomerGaugeClient(
        resource.client_settings(),
        "cg-demo-client",
        DEMO_CLIENT_SECRET,
        sleep=fake.sleep,
        clock=fake.monotonic,
    )
    control.inject({"kind": "status", "code": 429, "retry_after": 7})
    with client:
        fetch_day(client)
    assert waits == [7.0]


def test_backoff_without_retry_after_grows_and_stays_bounded(simulator, control):
    fake = FakeTime()
    waits = fake.waits
    resource = make_resource(simulator, backoff_seconds=1.0, max_retries=4)
    client = CustomerGaugeClient(
        resource.client_settings(),
        "cg-demo-client",
        DEMO_CLIENT_SECRET,
        sleep=fake.sleep,
        clock=fake.monotonic,
    )
    control.inject({"kind": "status", "code": 503, "times": 4})
    with client:
        fetch_day(client)
    assert len(waits) == 4
    assert all(0 <= w <= 2**i for i, w in enumerate(waits))


def test_retries_give_up_with_an_error_that_says_what_how_often_and_the_last_status(
    simulator, control
):
    control.inject({"kind": "status", "code": 503, "times": 10})
    with (
        make_resource(simulator, max_retries=2).get_client() as client,
        pytest.raises(RetriesExhaustedError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert (
        "3 attempt(s)" in message
        and "HTTP 503" in message
        and PATH in message
        and "page 1" in message
    )


def test_a_persistent_html_page_fails_naming_the_page_by_its_title(simulator, control):
    control.inject({"kind": "html", "times": 10})
    with (
        make_resource(simulator, max_retries=1).get_client() as client,
        pytest.raises(RetriesExhaustedError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert "an HTML page" in message and "502 Bad Gateway" in message and "not JSON" in message
    assert "<html>" not in message.lower()  # described, not quoted


def test_a_retry_after_beyond_the_budget_gives_up_at_once(simulator, control):
    fake = FakeTime()
    waits = fake.waits
    resource = make_resource(simulator, retry_budget_seconds=30)
    client = CustomerGaugeClient(
        resource.client_settings(),
        "cg-demo-client",
        DEMO_CLIENT_SECRET,
        sleep=fake.sleep,
        clock=fake.monotonic,
    )
    control.inject({"kind": "status", "code": 429, "retry_after": 120})
    with client, pytest.raises(RetriesExhaustedError, match="CG_RETRY_BUDGET_SECONDS"):
        fetch_day(client)
    assert waits == []


def test_a_refused_request_is_not_retried_and_quotes_the_api(client, control):
    with pytest.raises(ApiRequestError) as info:
        list(client.iter_pages(PATH, period=Period("date_of_birth", DAY, DAY)))
    assert info.value.status == 422 and "period[field]" in str(info.value)
    assert control.stats()["api_requests"] == 1


@pytest.mark.parametrize(
    ("kind", "match"), [("stuck_cursor", "does not advance"), ("bad_data", "expected a list")]
)
def test_contract_breaks_fail_clearly_instead_of_looping(client, control, kind, match):
    control.inject({"kind": "slow", "seconds": 0}, {"kind": kind})  # the second page breaks
    with pytest.raises(ApiContractError, match=match):
        fetch_day(client)
    assert control.stats()["api_requests"] == 2


def test_a_page_with_records_but_no_cursor_is_a_contract_error(client, control):
    control.inject({"kind": "omit_cursor"})
    with pytest.raises(ApiContractError, match="does not advance"):
        fetch_day(client)


def test_an_empty_page_without_a_cursor_keeps_the_cursor_sent(client, control):
    empty_day = SIM_START - dt.timedelta(days=5)
    control.inject({"kind": "omit_cursor"})
    pages = list(
        client.iter_pages(PATH, period=Period("date_sent", empty_day, empty_day), cursor=12345)
    )
    assert len(pages) == 1 and pages[0].records == [] and pages[0].cursor == 12345


def test_extra_params_pass_through_on_every_page(simulator, control):
    with make_resource(
        simulator, extra_params="filter[cgid]=42&outbound=ref-1"
    ).get_client() as client:
        fetch_day(client)
    for request in control.stats()["requests"]:
        assert (
            query_value(request, "filter[cgid]") == "42"
            and query_value(request, "outbound") == "ref-1"
        )


def test_the_secret_and_the_token_never_reach_logs_or_errors(simulator, control, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with make_resource(simulator, max_retries=1).get_client() as client:
        fetch_day(client)
        token = client._shared.tokens.current
        assert token
        for fault in (
            {"kind": "status", "code": 500, "times": 5},
            {"kind": "unauthorized", "times": 2},
            {"kind": "html", "times": 5},
            {"kind": "drop", "times": 5},
        ):
            control.clear_faults()
            control.inject(fault)
            with pytest.raises(Exception) as info:
                fetch_day(client)
            seen.append(repr(info.value) + str(info.value.__cause__) + str(info.value.__context__))
    control.configure(revoked=True)
    with (
        make_resource(simulator).get_client() as client,
        pytest.raises(AuthenticationError) as info,
    ):
        fetch_day(client)
    seen.append(str(info.value))
    text = "\n".join(seen) + caplog.text
    assert "Unauthenticated" in text or "401" in text  # we did capture the failures
    assert DEMO_CLIENT_SECRET not in text
    assert token not in text


def test_client_stats_count_requests_records_and_bytes(client, control):
    records, pages = fetch_day(client)
    assert client.stats.requests == len(pages) == control.stats()["api_requests"]
    assert client.stats.records == len(records)
    assert client.stats.bytes > 100 * len(records)


def test_the_user_agent_is_descriptive(simulator: SimulatorServer):
    from cg_assets.customergauge.http import USER_AGENT

    assert USER_AGENT.startswith("cg_assets/")


def test_a_broken_page_is_described_never_quoted_it_holds_personal_data(simulator, control):
    """A 200 page cut short is retried, then fails; the error says what was wrong without
    quoting the page, whose records carry names and e-mail addresses."""
    control.inject({"kind": "truncate", "times": 10})
    with (
        make_resource(simulator, max_retries=1).get_client() as client,
        pytest.raises(RetriesExhaustedError) as info,
    ):
        fetch_day(client)
    message = str(info.value)
    assert "not JSON" in message and "not quoted" in message
    emails = [r["email"] for r in control.truth(start=DAY, end=DAY) if r.get("email")]
    assert emails and not any(email in message for email in emails)
    assert "@" not in message
