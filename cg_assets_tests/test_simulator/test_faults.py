"""Each injected fault, observed on the wire."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from cg_assets.customergauge import wire

from .conftest import START, keys, period

DAY = START + dt.timedelta(days=1)


def test_status_with_retry_after_then_recovers(api, ctl):
    ctl.inject({"kind": "status", "code": 429, "retry_after": 3})
    assert ctl.stats()["faults_pending"] == 1
    response = api.get()
    assert response.status_code == 429
    assert response.headers[wire.RETRY_AFTER_HEADER] == "3"
    assert response.json()[wire.BODY_MESSAGE]
    assert api.get().status_code == 200
    stats = ctl.stats()
    assert stats["status_counts"]["429"] == 1
    assert stats["faults_pending"] == 0


def test_status_times_and_fifo_order(api, ctl):
    ctl.inject(
        {"kind": "status", "code": 503, "times": 2},
        {"kind": "status", "code": 500, "body": "<b>oops</b>"},
    )
    first = [api.get() for _ in range(4)]
    assert [r.status_code for r in first] == [503, 503, 500, 200]
    assert wire.RETRY_AFTER_HEADER not in first[0].headers
    assert first[2].text == "<b>oops</b>"


def test_status_with_json_body(api, ctl):
    ctl.inject({"kind": "status", "code": 502, "body": {"message": "Bad gateway"}})
    response = api.get()
    assert (response.status_code, response.json()) == (502, {"message": "Bad gateway"})


def test_token_target(api, ctl):
    ctl.inject({"kind": "status", "code": 500, "target": "token"})
    assert api.get().status_code == 200  # the API is not hit
    assert api.request_token().status_code == 500
    assert api.request_token().status_code == 200


def test_clear_faults(api, ctl):
    ctl.inject({"kind": "status", "code": 500, "times": 5})
    ctl.clear_faults()
    assert api.get().status_code == 200
    assert ctl.stats()["faults_pending"] == 0


def test_invalid_fault_is_refused(ctl):
    for fault in ({"kind": "explode"}, {"kind": "status", "code": 99}, {"kind": "slow", "x": 1}):
        with pytest.raises(RuntimeError, match="400"):
            ctl.inject(fault)
    assert ctl.stats()["faults_pending"] == 0


def test_slow_and_latency(api, ctl):
    ctl.inject({"kind": "slow", "seconds": 0.4})
    started = time.perf_counter()
    response = api.get()
    assert time.perf_counter() - started >= 0.4
    assert response.status_code == 200 and response.json()["data"]
    ctl.configure(latency_ms=150)
    started = time.perf_counter()
    assert api.get().status_code == 200
    assert time.perf_counter() - started >= 0.15
    with pytest.raises(requests.exceptions.ReadTimeout):
        ctl.inject({"kind": "slow", "seconds": 1})
        api.get(timeout=0.3)


def test_drop(api, ctl):
    ctl.inject({"kind": "drop"})
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get()
    assert api.get().status_code == 200
    assert ctl.stats()["dropped_connections"] == 1


def _raw_get(sim, token, params):
    url = urlsplit(sim.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(
        "GET",
        wire.NON_RESPONSES_PATH + "?" + urlencode(params),
        headers={wire.AUTH_HEADER: f"{wire.AUTH_SCHEME} {token}"},
    )
    return conn, conn.getresponse()


def test_drop_mid_body(api, ctl, sim):
    ctl.inject({"kind": "drop_mid_body"})
    conn, response = _raw_get(sim, api.token, {wire.PARAM_PER_PAGE: 50})
    assert response.status == 200
    length = int(response.headers["Content-Length"])
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == length // 2
    conn.close()
    ctl.inject({"kind": "drop_mid_body"})
    with pytest.raises(requests.exceptions.RequestException):
        api.get({wire.PARAM_PER_PAGE: 50}).json()
    assert api.get().status_code == 200


def test_truncate(api, ctl):
    whole = api.get({wire.PARAM_PER_PAGE: 50})
    ctl.inject({"kind": "truncate"})
    response = api.get({wire.PARAM_PER_PAGE: 50})
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.content == whole.content[: len(whole.content) // 2]
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_html(api, ctl):
    ctl.inject({"kind": "html"})
    response = api.get()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text and "nginx" in response.text
    with pytest.raises(ValueError):
        response.json()


def test_unauthorized_invalidates_the_token(api, ctl):
    token = api.token
    ctl.inject({"kind": "unauthorized"})
    response = api.get()
    assert (response.status_code, response.json()) == (401, {wire.BODY_MESSAGE: "Unauthenticated."})
    assert api.get(token=token).status_code == 401  # that token is dead now
    assert api.get(token=api.login()).status_code == 200


def test_bad_data(api, ctl):
    ctl.inject({"kind": "bad_data"})
    body = api.page({wire.PARAM_PER_PAGE: 3})
    assert isinstance(body["data"], dict) and len(body["data"]) == 3


def test_missing_key(api, ctl):
    ctl.inject({"kind": "missing_key"})
    data = api.page({wire.PARAM_PER_PAGE: 3})["data"]
    assert wire.RECORD_KEY not in data[0]
    assert all(wire.RECORD_KEY in r for r in data[1:])


def test_bad_date(api, ctl):
    ctl.inject({"kind": "bad_date"})
    data = api.page({wire.PARAM_PER_PAGE: 3})["data"]
    assert data[0]["date_sent"] == "31/02/2026 25:00"
    assert data[1]["date_sent"] != "31/02/2026 25:00"


def test_stuck_cursor(api, ctl):
    first = api.page({wire.PARAM_PER_PAGE: 5})
    cursor = first["cursor"]["next"]
    ctl.inject({"kind": "stuck_cursor"})
    body = api.page({wire.PARAM_PER_PAGE: 5, wire.PARAM_CURSOR: cursor})
    assert len(body["data"]) == 5
    assert body["cursor"]["next"] == cursor


def test_omit_cursor(api, ctl):
    ctl.inject({"kind": "omit_cursor"})
    body = api.page({wire.PARAM_PER_PAGE: 5})
    assert "cursor" not in body and len(body["data"]) == 5


@pytest.mark.parametrize("field", wire.PERIOD_FIELDS)
def test_out_of_day(api, ctl, field):
    params = {**period(field, DAY, DAY), wire.PARAM_PER_PAGE: 5}
    normal = api.page(params)["data"]
    ctl.inject({"kind": "out_of_day"})
    data = api.page(params)["data"]
    assert keys(data[:5]) == keys(normal)
    assert len(data) == 6
    assert not data[-1]["date_sent"].startswith(str(DAY))
    assert not data[-1][field].startswith(str(DAY))
    assert all(r[field].startswith(str(DAY)) for r in data[:5])


def test_throttle_storms_answer_429_after_every_n_requests(api, ctl):
    api.login()
    ctl.configure(throttle_every_requests=2, throttle_seconds=30)
    statuses = [api.get().status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]  # the storm lasts 30 s: every request is refused
    response = api.get()
    assert response.headers[wire.RETRY_AFTER_HEADER] in ("29", "30")  # whole seconds left
    log = ctl.stats()["requests"]
    assert [r["status"] for r in log] == [200, 200, 429, 429, 429]
    assert [r["at"] for r in log] == sorted(r["at"] for r in log)
    ctl.configure(throttle_retry_after=False)
    assert wire.RETRY_AFTER_HEADER not in api.get().headers


def test_throttle_config_is_validated(ctl):
    for bad in ({"throttle_every_requests": 0}, {"throttle_seconds": -1}):
        with pytest.raises(RuntimeError, match="throttle"):
            ctl.configure(**bad)


def test_setting_a_throttle_restarts_its_count(api, ctl):
    api.login()
    ctl.configure(throttle_every_requests=2, throttle_seconds=30)
    assert [api.get().status_code for _ in range(3)] == [200, 200, 429]
    ctl.configure(throttle_every_requests=2)  # the same throttle, set again: a fresh count
    assert [api.get().status_code for _ in range(3)] == [200, 200, 429]
