"""Control endpoints: health, stats, truth, config, reset."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests

from cg_assets.customergauge import wire

from .conftest import RECORDS, START, keys


def test_health(ctl, sim):
    assert ctl.health() is True
    assert requests.get(sim.url + "/_sim/health", timeout=5).json() == {"ok": True}
    assert requests.get(sim.url + "/_sim/nope", timeout=5).status_code == 404


def test_stats_count_and_never_show_headers(api, ctl):
    ctl.reset_stats()
    token = api.login()
    api.page({wire.PARAM_PER_PAGE: 30})
    api.get({wire.PARAM_PER_PAGE: "x"})
    api.get(token="f" * 40)
    stats = ctl.stats()
    assert stats["api_requests"] == 3
    assert stats["token_requests"] == 1
    assert stats["records_served"] == 30
    assert stats["status_counts"] == {"200": 2, "401": 1, "422": 1}
    assert stats["faults_pending"] == 0
    assert [r["query"] for r in stats["requests"]] == [
        {"per_page": "30"},
        {"per_page": "x"},
        {},
    ]
    assert all(set(r) == {"path", "query", "at", "status"} for r in stats["requests"])
    assert [r["status"] for r in stats["requests"]] == [200, 422, 401]
    text = json.dumps(stats)
    assert token not in text and "Bearer" not in text and "secret" not in text
    ctl.reset_stats()
    assert ctl.stats()["api_requests"] == 0


def test_request_log_keeps_the_last_200(api, ctl):
    for i in range(205):
        api.get({wire.PARAM_PER_PAGE: 1, "n": i})
    log = ctl.stats()["requests"]
    assert len(log) == 200
    assert log[0]["query"]["n"] == "5" and log[-1]["query"]["n"] == "204"


def test_truth_matches_the_in_process_store(ctl, sim):
    day = START + dt.timedelta(days=4)
    truth = ctl.truth("date_creation", day, day)
    assert truth == sim.dataset.records("date_creation", day, day)
    assert len(ctl.truth()) == RECORDS == len(sim.dataset)


def test_config_merges_and_validates(ctl):
    config = ctl.configure(max_page_size=10)
    assert config["max_page_size"] == 10 and config["token_ttl_seconds"] == 3600
    config = ctl.configure(latency_ms=5)
    assert config["max_page_size"] == 10 and config["latency_ms"] == 5
    for bad in ({"max_page_size": 0}, {"revoked": "yes"}, {"what": 1}):
        with pytest.raises(RuntimeError, match="400"):
            ctl.configure(**bad)


def test_reset_regenerates_and_clears(api, ctl):
    before = keys(ctl.truth())
    ctl.inject({"kind": "status", "code": 500, "times": 3})
    ctl.configure(max_page_size=3)
    ctl.add_records(START, 2)
    ctl.reset(seed=11, records=50, start=dt.date(2025, 1, 1), end="2025-01-02")
    truth = ctl.truth()
    assert len(truth) == 50
    assert {r["date_sent"][:10] for r in truth} == {"2025-01-01", "2025-01-02"}
    stats = ctl.stats()
    assert stats["faults_pending"] == 0 and stats["api_requests"] == 0
    # the old token still works; config is back to defaults
    assert len(api.page({wire.PARAM_PER_PAGE: 100})["data"]) == 50
    ctl.reset()  # same parameters again: same data
    assert keys(ctl.truth()) == keys(truth)
    ctl.reset(seed=3, records=RECORDS, start=START, end=START + dt.timedelta(days=6))
    assert keys(ctl.truth()) == before
