"""Property: whatever transient faults hit a sync, each finished partition equals the truth;
whatever permanent fault stops one, its partition and its stored cursor stay as they were.

Hypothesis draws a data set (seed, size, page sizes, token lifetime) and a short history of
runs (catch-up, settle, full refresh; one day or a range), with data changes before each
run and a fault schedule for it. The schedule is built so that we know in advance which
days must succeed: transient faults come in bursts of at most BURST consecutive failures
(MAX_RETRIES - BURST spare retries absorb a timeout caused by a busy machine), separated
by a request that passes. A permanent fault (retries exhausted on the API or the token
endpoint, a fresh token rejected, credentials revoked) comes first in its run's queue, so
the day it hits is known.

After every run, every day of the simulated range is compared with a model of what the
lake must hold, computed from the simulator's truth independently of the product:
- a day fetched whole equals the truth at that moment;
- a day caught up incrementally keeps its rows and gains the truth's new records
  (statuses changed or records removed since are the settle's job);
- a day whose sync failed is byte-for-byte the file it was (or still absent), and its
  latest materialization (hence its cursor) is the one it had;
- every stored cursor is the cursor written in the file's footer.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import in_memory_instance, make_resource
from cg_assets_tests.test_reliability.helpers import (
    assert_file_equals,
    assert_lake_tidy,
    days_between,
    failure_text,
    file_bytes,
    file_cursor,
    latest_metadata,
    run_asset,
    storage_id,
    truth,
)
from cg_simulator import DEMO_CLIENT_SECRET, SimulatorControl, SimulatorServer

FIRST = dt.date(2026, 10, 1)
DAYS = days_between(FIRST, FIRST + dt.timedelta(days=2))
YOUNG = LoadSettings(start_date=FIRST, settle_after_hours=8784)  # runs catch up
OLD = LoadSettings(start_date=FIRST, settle_after_hours=0, answer_window_days=366)  # runs settle

MAX_RETRIES = 4
BURST = 2  # consecutive failures one request may meet in a "transient" schedule
READ_TIMEOUT = 0.5
SLOW_SECONDS = 0.8  # beyond the read timeout
PASS = {"kind": "slow", "seconds": 0}  # a request that goes through untouched
PAST_HTTP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"

# --- strategies ----------------------------------------------------------------------

_status_429 = st.sampled_from([None, 0, "0", PAST_HTTP_DATE]).map(
    lambda ra: (
        {"kind": "status", "code": 429}
        if ra is None
        else {"kind": "status", "code": 429, "retry_after": ra}
    )
)
_status_5xx = st.sampled_from([500, 502, 503, 504]).map(lambda c: {"kind": "status", "code": c})
_body_faults = st.sampled_from(["drop", "drop_mid_body", "truncate", "html"]).map(
    lambda k: {"kind": k}
)
_slow = st.just({"kind": "slow", "seconds": SLOW_SECONDS})
QUICK_TRANSIENT = st.one_of(_status_429, _status_5xx, _body_faults)
TRANSIENT = st.one_of(QUICK_TRANSIENT, _slow)
BURSTS = st.lists(TRANSIENT, min_size=1, max_size=BURST)
PERMANENT = (None, None, None, None, "exhausted", "token_exhausted", "token_rejected", "revoked")


@dataclass
class Step:
    mode: str  # catch-up | settle | full-refresh
    first: int
    last: int
    mutations: list[tuple[str, int, int]]
    api_faults: list[dict[str, Any]]
    token_faults: list[dict[str, Any]]
    permanent: str | None


@dataclass
class Scenario:
    seed: int
    records: int
    per_page: int
    max_page_size: int | None
    expire_tokens_after: int | None
    steps: list[Step] = field(default_factory=list)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    scenario = Scenario(
        seed=draw(st.integers(0, 2**16)),
        records=draw(st.integers(0, 240)),
        per_page=draw(st.sampled_from([4, 25, 1000])),
        max_page_size=draw(st.sampled_from([None, 3, 10])),  # short pages
        # A token dies after this many API requests. Never fewer than one page's attempts
        # (MAX_RETRIES + 1): a token refreshed on a page cannot die again on that page.
        expire_tokens_after=draw(st.sampled_from([None, MAX_RETRIES + 1, 8])),
    )
    slow_used = False
    for _ in range(draw(st.integers(1, 3))):
        first = draw(st.integers(0, len(DAYS) - 1))
        last = draw(st.integers(first, len(DAYS) - 1))
        permanent = draw(st.sampled_from(PERMANENT))
        api: list[dict[str, Any]] = []
        tokens: list[dict[str, Any]] = []
        if permanent == "exhausted":
            api += draw(
                st.lists(QUICK_TRANSIENT, min_size=MAX_RETRIES + 1, max_size=MAX_RETRIES + 1)
            )
        elif permanent == "token_rejected":
            api += [{"kind": "unauthorized"}, {"kind": "unauthorized"}]
        elif permanent == "token_exhausted":
            tokens += [
                {**f, "target": "token"}
                for f in draw(
                    st.lists(QUICK_TRANSIENT, min_size=MAX_RETRIES + 1, max_size=MAX_RETRIES + 1)
                )
            ]
        for burst in draw(st.lists(BURSTS, max_size=4)):
            if api:
                api.append(PASS)
            for fault in burst:
                if fault["kind"] == "slow":
                    if slow_used:  # one slow fault per scenario keeps the suite quick
                        fault = {"kind": "status", "code": 503}
                    slow_used = True
                api.append(fault)
        if permanent is None and scenario.expire_tokens_after is None and draw(st.booleans()):
            # a lone 401: the token was revoked server-side; one refresh must fix it
            at = draw(st.integers(0, len(api)))
            api[at:at] = (
                [PASS, {"kind": "unauthorized"}, PASS] if api else [{"kind": "unauthorized"}]
            )
        if permanent != "token_exhausted":
            tokens += [
                {**f, "target": "token"} for f in draw(st.lists(QUICK_TRANSIENT, max_size=BURST))
            ]
        scenario.steps.append(
            Step(
                mode=draw(st.sampled_from(["catch-up", "catch-up", "settle", "full-refresh"])),
                first=first,
                last=last,
                mutations=draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(["add", "add", "fail", "respond"]),
                            st.integers(0, len(DAYS) - 1),
                            st.integers(1, 12),
                        ),
                        max_size=3,
                    )
                ),
                api_faults=api,
                token_faults=tokens,
                permanent=permanent,
            )
        )
    return scenario


# --- the model -----------------------------------------------------------------------

# What each permanent fault must say, and which days of the run it fails.
EXPECTED_ERROR = {
    "exhausted": f"failed after {MAX_RETRIES + 1} attempt(s)",
    "token_exhausted": f"the token request to {{auth}} failed after {MAX_RETRIES + 1} attempt(s)",
    "token_rejected": "401 Unauthenticated to a freshly issued token",
    "revoked": "rejected the client credentials",
}


def failing_days(step: Step, fetched: list[dt.date]) -> list[dt.date]:
    """The days a permanent fault fails: only days the run fetches meet it (a settled day
    is skipped without a request)."""
    if step.permanent is None or not fetched:
        return []
    if step.permanent == "revoked":
        return fetched
    return fetched[:1]  # the first request of the run meets the fault


def mutate(control: SimulatorControl, mutations: list[tuple[str, int, int]]) -> None:
    for what, day_index, count in mutations:
        day = DAYS[day_index]
        if what == "add":
            control.add_records(day, count)
        elif what == "fail":
            control.fail_records(day=day, count=count)
        else:
            control.respond_records(day=day, count=count)


def check_scenario(
    scenario: Scenario, simulator: SimulatorServer, control: SimulatorControl, lake_root: Path
) -> None:
    event(f"token expiry after {scenario.expire_tokens_after} requests")
    event(f"pages capped at {scenario.max_page_size} records")
    control.reset(seed=scenario.seed, records=scenario.records, start=DAYS[0], end=DAYS[-1])
    control.configure(
        max_page_size=scenario.max_page_size,
        expire_tokens_after_requests=scenario.expire_tokens_after,
    )
    instance = in_memory_instance()
    resources = {
        "customergauge": make_resource(
            simulator,
            per_page=scenario.per_page,
            http_timeout=[2, READ_TIMEOUT],
            max_retries=MAX_RETRIES,
            backoff_seconds=0.001,
        ),
        "lake": LakeResource(root=str(lake_root)),
    }
    model: dict[dt.date, dict[int, dict[str, Any]] | None] = {day: None for day in DAYS}
    # A settled day is final: later runs skip it (no request) unless they are full refreshes.
    settled: dict[dt.date, bool] = {day: False for day in DAYS}

    for number, step in enumerate(scenario.steps, 1):
        where = f"step {number} ({step.mode} {step.first}..{step.last}, {step.permanent})"
        event(f"permanent fault: {step.permanent}")
        mutate(control, step.mutations)
        control.clear_faults()
        if step.api_faults:
            control.inject(*step.api_faults)
        if step.token_faults:
            control.inject(*step.token_faults)
        if step.permanent == "revoked":
            control.configure(revoked=True)
        queued = control.stats()["faults_pending"]
        before_bytes = {day: file_bytes(lake_root, day) for day in DAYS}
        before_ids = {day: storage_id(instance, day) for day in DAYS}

        result = run_asset(
            instance,
            resources,
            OLD if step.mode == "settle" else YOUNG,
            DAYS[step.first],
            DAYS[step.last],
            full_refresh=step.mode == "full-refresh",
        )
        control.configure(revoked=False)
        fired = queued - control.stats()["faults_pending"]
        event(
            f"faults that fired in a run: {'none' if not fired else '1-3' if fired < 4 else '4+'}"
        )
        control.clear_faults()

        fetched = [
            day
            for day in DAYS[step.first : step.last + 1]
            if step.mode == "full-refresh" or not settled[day]
        ]
        failed = failing_days(step, fetched)
        if failed:
            assert not result.success, f"{where}: the run should have failed"
            text = failure_text(result)
            expected = EXPECTED_ERROR[step.permanent].format(auth=simulator.token_url)
            assert expected in text, f"{where}: {text[:2000]}"
            for day in failed:
                assert day.isoformat() in text, f"{where}: the error does not name {day}"
            assert DEMO_CLIENT_SECRET not in text
        else:
            assert result.success, f"{where}: {failure_text(result)[:3000]}"

        for day in DAYS[step.first : step.last + 1]:
            if day in failed:
                continue
            if day not in fetched:  # skipped: the file and its materialization stay as they were
                assert file_bytes(lake_root, day) == before_bytes[day], f"{where}: {day} changed"
                assert storage_id(instance, day) == before_ids[day], f"{where}: {day} recorded"
                continue
            settled[day] = step.mode == "settle"
            full = step.mode != "catch-up" or model[day] is None
            now = truth(control, day)
            if full:
                model[day] = now
            else:  # new records join; old ones keep their row until the day settles
                old = model[day]
                assert old is not None
                model[day] = {**{k: v for k, v in now.items() if k not in old}, **old}
            md = latest_metadata(instance, day)
            assert md is not None
            assert md["fetch"] == ("full" if full else "incremental"), f"{where} {day}: {md}"
            assert md["settled"] is (step.mode == "settle"), f"{where} {day}"
            assert md["dagster/row_count"] == len(model[day]), f"{where} {day}"

        for day in DAYS:
            assert_file_equals(lake_root, day, model[day], where)
            if day in failed:
                assert file_bytes(lake_root, day) == before_bytes[day], f"{where}: {day} changed"
                assert storage_id(instance, day) == before_ids[day], f"{where}: {day} recorded"
            md = latest_metadata(instance, day)
            if model[day] is None:
                assert md is None, f"{where}: {day} has a materialization but no file"
            else:
                assert md is not None
                assert md["cursor"] == file_cursor(lake_root, day), (
                    f"{where}: {day}: the stored cursor is not the file's"
                )
        assert_lake_tidy(lake_root)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every machine: CI is reproducible
    database=None,
    # Shrinking a failure can take minutes; CI reports the failing scenario unshrunk.
    # CG_HYPOTHESIS_SHRINK=1 shrinks it to a minimal one when you debug locally.
    phases=tuple(Phase)
    if os.environ.get("CG_HYPOTHESIS_SHRINK")
    else (Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_no_fault_loses_duplicates_or_corrupts_a_record(
    scenario: Scenario,
    simulator: SimulatorServer,
    control: SimulatorControl,
    tmp_path_factory: pytest.TempPathFactory,
):
    lake_root = tmp_path_factory.mktemp("lake")
    check_scenario(scenario, simulator, control, lake_root)
