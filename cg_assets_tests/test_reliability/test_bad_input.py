"""Bad input fails loudly and writes nothing: API responses that break the contract, and
settings that are wrong, each through a real run of the asset.

For a contract break the error names the day, the page (with the cursor it was asked
for) and, where there is one, the record; the day's previous good file and its stored
cursor stay exactly as they were, and the next clean run heals the day. A bad setting
fails the run at its start, naming the variable and what it accepts, before any request
is sent or any file is written.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import sys

import pytest
from pydantic import ValidationError

from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE, in_memory_instance, make_resource
from cg_assets_tests.test_reliability.helpers import (
    assert_file_equals,
    assert_lake_tidy,
    failure_text,
    file_bytes,
    run_asset,
    storage_id,
    table_files,
    truth,
)
from cg_simulator import SimulatorControl, SimulatorServer

DAY = SIM_START + dt.timedelta(days=1)
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=366)
PASS = {"kind": "slow", "seconds": 0}
MAX_RETRIES = 4  # make_resource's default

# fault kind -> what the error must say besides the day and the page
CONTRACT_BREAKS = {
    "bad_data": ["'data' is dict, expected a list of records"],
    "missing_key": ["record #0", "'number_customergauge' is missing"],
    "bad_date": [
        "record #0 (number_customergauge ",
        "date_sent is '31/02/2026 25:00'",
        "expected 'YYYY-MM-DD HH:MM:SS'",
    ],
    "stuck_cursor": ["does not advance", "rather than looping forever"],
    "omit_cursor": ["does not advance"],
    "html": [
        f"failed after {MAX_RETRIES + 1} attempt(s)",
        "not JSON",
        "an HTML page",
        "502 Bad Gateway",
    ],
}


def sent_cursors(control: SimulatorControl) -> list[str | None]:
    out = []
    for request in control.stats()["requests"]:
        value = request["query"].get("cursor")
        out.append(value[-1] if isinstance(value, list) else value)
    return out


@pytest.mark.parametrize("mode", ["settle", "catch-up"])
@pytest.mark.parametrize("kind", sorted(CONTRACT_BREAKS))
def test_a_contract_break_names_the_page_and_record_and_keeps_the_previous_file(
    simulator: SimulatorServer, control: SimulatorControl, tmp_path, kind, mode
):
    instance = in_memory_instance()
    lake_root = tmp_path / "lake"
    resources = {
        "customergauge": make_resource(simulator),
        "lake": LakeResource(root=str(lake_root)),
    }
    assert run_asset(instance, resources, YOUNG, DAY).success
    good = truth(control, DAY)
    assert len(good) > TEST_PER_PAGE  # a full fetch crosses pages
    control.add_records(DAY, 7)  # a successful run would now change the file
    before, before_id = file_bytes(lake_root, DAY), storage_id(instance, DAY)
    control.reset_stats()

    # settle: a full fetch streams page 1 into a new file, then page 2 breaks;
    # catch-up: the first page of new records breaks.
    page = 2 if mode == "settle" else 1
    times = MAX_RETRIES + 1 if kind == "html" else 1
    control.inject(*([PASS] * (page - 1)), {"kind": kind, "times": times})
    result = run_asset(instance, resources, OLD if mode == "settle" else YOUNG, DAY)

    assert not result.success
    text = failure_text(result)
    cursor = sent_cursors(control)[page - 1]
    assert DAY.isoformat() in text
    assert f"page {page} (cursor {cursor if cursor is not None else 'none'})" in text, text
    for phrase in CONTRACT_BREAKS[kind]:
        assert phrase in text, f"{phrase!r} not in {text}"
    if kind == "bad_date":  # the record is named by its key
        key = int(re.search(r"number_customergauge (\d+)", text).group(1))
        assert key in truth(control, DAY)
    # nothing was written for the day: same bytes, same stored cursor, no leftovers
    assert file_bytes(lake_root, DAY) == before
    assert storage_id(instance, DAY) == before_id
    assert_file_equals(lake_root, DAY, good)
    assert_lake_tidy(lake_root)

    # once the API behaves, the next run heals the day
    assert run_asset(instance, resources, OLD if mode == "settle" else YOUNG, DAY).success
    assert_file_equals(lake_root, DAY, truth(control, DAY))


def test_a_stuck_cursor_on_every_page_ends_the_run_instead_of_looping(
    simulator: SimulatorServer, control: SimulatorControl, tmp_path
):
    # The API keeps answering the same page with the same cursor: the client must notice
    # on the first repeat, not page until the retries or the disk run out.
    control.inject({"kind": "stuck_cursor", "times": 1000})
    result = run_asset(
        in_memory_instance(),
        {"customergauge": make_resource(simulator), "lake": LakeResource(root=str(tmp_path))},
        YOUNG,
        DAY,
    )
    assert not result.success and "does not advance" in failure_text(result)
    # The first page carries no cursor, so its stuck answer (cursor 0) is new; the second
    # page repeats it and ends the run. No record of either page is written.
    assert control.stats()["api_requests"] == 2
    assert table_files(tmp_path) == []


# --- configuration, through a real run ---------------------------------------------------

# Typed resource fields, checked by their rules when the resource is made (where the
# definitions load): a run never starts with them.
RESOURCE_SETTINGS = [
    ({"region": "mars", "api_url": None, "auth_url": None}, ["region", "'eu', 'us' or 'au'"]),
    (
        {"api_url": "ftp://api.example.com"},
        ["api_url='ftp://api.example.com' is invalid", "http(s) URL"],
    ),
    ({"auth_url": "auth.eu.customergauge.com/token"}, ["auth_url=", "http(s) URL"]),
    ({"per_page": 0}, ["per_page=0 is invalid", "from 1 to 1000"]),
    ({"http_timeout": [0, 10]}, ["http_timeout=[0.0, 10.0] is invalid", "CONNECT,READ"]),
    ({"max_retries": 51}, ["max_retries=51 is invalid", "from 0 to 50"]),
]
# What only a run can judge: the secrets' values (EnvVars, read when it starts), a region
# (or URLs) it needs, and whether this process may write the lake.
RUN_TIME_SETTINGS = [
    ({"client_secret": ""}, ["CG_CLIENT_SECRET is empty"]),
    ({"region": None, "api_url": None, "auth_url": None}, ["region is not set"]),
    ({"lake": "not-writable"}, ["CG_LAKE_ROOT=", "is not writable", "a folder this process may"]),
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CG_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("overrides", "phrases"), RESOURCE_SETTINGS, ids=[next(iter(o)) for o, _ in RESOURCE_SETTINGS]
)
def test_a_bad_setting_is_refused_when_the_resource_is_made_naming_it(
    simulator: SimulatorServer, control: SimulatorControl, overrides, phrases
):
    with pytest.raises(ValidationError) as info:
        make_resource(simulator, **overrides)
    for phrase in phrases:
        assert phrase in str(info.value), f"{phrase!r} not in {info.value}"
    stats = control.stats()
    assert stats["api_requests"] == 0 and stats["token_requests"] == 0


@pytest.mark.parametrize(
    ("overrides", "phrases"), RUN_TIME_SETTINGS, ids=[next(iter(o)) for o, _ in RUN_TIME_SETTINGS]
)
def test_a_bad_setting_fails_the_run_at_its_start_naming_it(
    simulator: SimulatorServer, control: SimulatorControl, tmp_path, clean_env, overrides, phrases
):
    overrides = dict(overrides)
    lake_root = tmp_path / "lake"
    if overrides.pop("lake", None):
        blocker = tmp_path / "a-file"
        blocker.write_text("a file where the lake's folder should be")
        lake_root = blocker / "lake"
    resources = {
        "customergauge": make_resource(simulator, **overrides),
        "lake": LakeResource(root=str(lake_root)),
    }
    result = run_asset(in_memory_instance(), resources, YOUNG, DAY)
    assert not result.success
    text = failure_text(result)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in {text}"
    stats = control.stats()
    assert stats["api_requests"] == 0 and stats["token_requests"] == 0
    assert not (tmp_path / "lake").exists() or table_files(tmp_path / "lake") == []


LOAD_TIME_SETTINGS = {
    "CG_TIMEZONE": (
        "Europe/Atlantis",
        "CG_TIMEZONE='Europe/Atlantis' is invalid: expected an IANA",
    ),
    "CG_START_DATE": ("2999-01-01", "CG_START_DATE='2999-01-01' is in the future"),
    "CG_SETTLE_AFTER_HOURS": ("two days", "CG_SETTLE_AFTER_HOURS='two days' is invalid"),
}


@pytest.mark.parametrize("name", sorted(LOAD_TIME_SETTINGS))
def test_a_bad_load_time_setting_fails_the_code_location_load_naming_it(
    monkeypatch: pytest.MonkeyPatch, clean_env, name
):
    # What `dg dev` and `dg check defs` do: import the module named in pyproject.toml and
    # load its `defs`. test_settings does this in a subprocess for CG_DATE_FIELD; here the
    # import runs in this process (the module is put back afterwards) to save the start-up.
    value, message = LOAD_TIME_SETTINGS[name]
    monkeypatch.setenv(name, value)
    module = "cg_assets.definitions"
    loaded = sys.modules.pop(module, None)
    try:
        # dg wraps the component's error (the defs.yaml attribute that read the variable)
        with pytest.raises(Exception) as info:
            importlib.import_module(module).defs()  # a dg @definitions function: loads here
    finally:
        sys.modules.pop(module, None)
        if loaded is not None:
            sys.modules[module] = loaded
    causes, error = [], info.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__ or error.__context__
    assert message in "\n".join(causes)
