"""A broken or hostile API through a real run of the asset (docs/hardening.md): each case
fails the day naming the limit or the deadline and its setting, leaves the day's previous
file and stored cursor as they were, no staging file, and no secret or personal value in
the run's event log; the next clean run heals the day (so the day's writer lock is free)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE, in_memory_instance, make_resource
from cg_assets_tests.test_reliability.helpers import (
    assert_file_equals,
    assert_lake_tidy,
    event_log,
    failure_text,
    file_bytes,
    personal_values,
    run_asset,
    storage_id,
    truth,
)
from cg_simulator import DEMO_CLIENT_SECRET, SimulatorControl, SimulatorServer

DAY = SIM_START + dt.timedelta(days=1)
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0)
PASS = {"kind": "slow", "seconds": 0}
SHORT = {
    "http_headers_deadline_seconds": "1",
    "http_response_deadline_seconds": "1.5",
    "max_retries": 1,
    "max_body_bytes": str(1024 * 1024),
    "max_pages_per_day": "30",
}

# name -> (faults after one good page, what the error must say)
CASES: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "deep nesting": ([{"kind": "deep_nesting"}], ["CG_MAX_JSON_DEPTH", "page 2"]),
    "gzip bomb": ([{"kind": "gzip_bomb", "size": 64 << 20}], ["CG_MAX_BODY_BYTES", "page 2"]),
    "endless body": ([{"kind": "huge_body", "size": 1 << 40}], ["CG_MAX_BODY_BYTES"]),
    "endless paging": ([{"kind": "endless_pages", "times": 100}], ["CG_MAX_PAGES_PER_DAY"]),
    "key past int64": ([{"kind": "huge_key"}], ["past a 64-bit integer", "page 2"]),
    "dribbling page": (
        [{"kind": "dribble", "seconds": 0.05, "times": 5}],
        ["CG_HTTP_RESPONSE_DEADLINE_SECONDS", "failed after 2 attempt(s)"],
    ),
    "slow headers": (
        [{"kind": "slow_headers", "seconds": 0.5, "times": 5}],
        ["CG_HTTP_HEADERS_DEADLINE_SECONDS"],
    ),
    "dribbling token": (
        [{"kind": "dribble", "target": "token", "seconds": 0.1, "times": 5}],
        ["the token request", "CG_HTTP_RESPONSE_DEADLINE_SECONDS"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_answer_fails_the_day_and_keeps_the_previous_file(
    simulator: SimulatorServer, control: SimulatorControl, tmp_path, case
):
    faults, phrases = CASES[case]
    instance = in_memory_instance()
    lake_root = tmp_path / "lake"
    resources = {
        "customergauge": make_resource(simulator, **SHORT),
        "lake": LakeResource(root=str(lake_root)),
    }
    assert run_asset(instance, resources, YOUNG, DAY).success
    good = truth(control, DAY)
    assert len(good) > TEST_PER_PAGE  # a full fetch crosses pages
    control.add_records(DAY, 7)
    before, before_id = file_bytes(lake_root, DAY), storage_id(instance, DAY)
    first = [] if faults[0].get("target") == "token" else [PASS]
    control.inject(*first, *faults)
    result = run_asset(instance, resources, OLD, DAY)  # a settle: a full fetch

    assert not result.success
    text = failure_text(result)
    assert DAY.isoformat() in text
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in {text}"
    assert file_bytes(lake_root, DAY) == before
    assert storage_id(instance, DAY) == before_id
    assert_lake_tidy(lake_root)
    log = event_log(instance, result.run_id)
    assert DEMO_CLIENT_SECRET not in log
    for value in personal_values(control, DAY):
        assert value not in log, f"a personal value is in the event log: {case}"

    control.clear_faults()
    assert run_asset(instance, resources, OLD, DAY).success
    assert_file_equals(lake_root, DAY, truth(control, DAY))
