"""Every setting: its default, and a clear error naming it and what it accepts."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import materialize
from pydantic import ValidationError

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import build_sync_asset
from cg_assets.defs.resources import LakeResource
from cg_assets.settings import CLIENT_RULES, ClientSettings, LoadSettings, SettingsError
from cg_assets_tests.conftest import SIM_START, make_resource, with_lake_io_manager

ROOT = Path(__file__).resolve().parents[2]


def test_load_settings_defaults_need_no_environment():
    settings = LoadSettings.from_env({})
    assert settings == LoadSettings()
    assert (settings.timezone, settings.start_date, settings.date_field) == (
        "UTC",
        dt.date(2024, 1, 1),
        "date_sent",
    )
    assert settings.settle_after_hours == 48 and settings.automation is False


def test_client_settings_from_a_region():
    settings = ClientSettings.from_env({"CG_REGION": "au"})
    assert settings.api_url == "https://api.au.customergauge.com"
    assert settings.auth_url == "https://auth.au.customergauge.com/oauth2/token"
    assert (settings.per_page, settings.connect_timeout, settings.read_timeout) == (
        1000,
        10.0,
        60.0,
    )


def test_concurrency_and_request_ceiling():
    defaults = ClientSettings.from_env({"CG_REGION": "eu"})
    assert (defaults.concurrency, defaults.max_requests_per_second) == (1, None)
    settings = ClientSettings.from_env(
        {"CG_REGION": "eu", "CG_CONCURRENCY": "16", "CG_MAX_REQUESTS_PER_SECOND": "2.5"}
    )
    assert (settings.concurrency, settings.max_requests_per_second) == (16, 2.5)


def test_explicit_urls_need_no_region():
    settings = ClientSettings.from_env(
        {"CG_API_URL": "http://127.0.0.1:1/", "CG_AUTH_URL": "http://127.0.0.1:1/t"}
    )
    assert settings.api_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CG_REGION": "mars"}, ["CG_REGION", "eu, us, au"]),
        ({}, ["CG_REGION", "CG_API_URL"]),
        ({"CG_REGION": "eu", "CG_API_URL": "ftp://x"}, ["CG_API_URL", "http(s) URL"]),
        ({"CG_REGION": "eu", "CG_AUTH_URL": "not a url"}, ["CG_AUTH_URL"]),
        ({"CG_REGION": "eu", "CG_PER_PAGE": "0"}, ["CG_PER_PAGE", "1 to 1000"]),
        ({"CG_REGION": "eu", "CG_PER_PAGE": "1001"}, ["CG_PER_PAGE", "1 to 1000"]),
        ({"CG_REGION": "eu", "CG_PER_PAGE": "ten"}, ["CG_PER_PAGE"]),
        ({"CG_REGION": "eu", "CG_HTTP_TIMEOUT": "10,0"}, ["CG_HTTP_TIMEOUT", "CONNECT,READ"]),
        ({"CG_REGION": "eu", "CG_MAX_RETRIES": "-1"}, ["CG_MAX_RETRIES"]),
        ({"CG_REGION": "eu", "CG_RETRY_BUDGET_SECONDS": "0"}, ["CG_RETRY_BUDGET_SECONDS"]),
        ({"CG_REGION": "eu", "CG_EXTRA_PARAMS": "&&"}, ["CG_EXTRA_PARAMS"]),
        ({"CG_REGION": "eu", "CG_CONCURRENCY": "0"}, ["CG_CONCURRENCY", "1 to 16"]),
        ({"CG_REGION": "eu", "CG_CONCURRENCY": "17"}, ["CG_CONCURRENCY", "1 to 16"]),
        ({"CG_REGION": "eu", "CG_CONCURRENCY": "four"}, ["CG_CONCURRENCY"]),
        ({"CG_REGION": "eu", "CG_MAX_REQUESTS_PER_SECOND": "0"}, ["CG_MAX_REQUESTS_PER_SECOND"]),
        ({"CG_REGION": "eu", "CG_MAX_REQUESTS_PER_SECOND": "-2"}, ["CG_MAX_REQUESTS_PER_SECOND"]),
    ],
)
def test_bad_run_time_settings_name_the_variable_and_what_it_accepts(env, names):
    with pytest.raises(SettingsError) as info:
        ClientSettings.from_env(env)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CG_TIMEZONE": "Mars/Olympus"}, ["CG_TIMEZONE", "IANA"]),
        ({"CG_TIMEZONE": "../../etc/passwd"}, ["CG_TIMEZONE"]),
        ({"CG_START_DATE": "2024-13-01"}, ["CG_START_DATE", "YYYY-MM-DD"]),
        ({"CG_START_DATE": "01/02/2024"}, ["CG_START_DATE"]),
        ({"CG_START_DATE": "2999-01-01"}, ["CG_START_DATE", "future"]),
        (
            {"CG_DATE_FIELD": "date_opened"},
            ["CG_DATE_FIELD", "date_sent, date_creation, date_order"],
        ),
        ({"CG_SETTLE_AFTER_HOURS": "-3"}, ["CG_SETTLE_AFTER_HOURS"]),
        ({"CG_AUTOMATION": "yes"}, ["CG_AUTOMATION", "on or off"]),
        ({"CG_SCHEDULE_MINUTE": "60"}, ["CG_SCHEDULE_MINUTE", "0 to 59"]),
        ({"CG_SETTLE_MAX_PER_TICK": "0"}, ["CG_SETTLE_MAX_PER_TICK"]),
        ({"CG_SCHEMA_CONTRACT": "strict"}, ["CG_SCHEMA_CONTRACT", "evolve", "freeze"]),
    ],
)
def test_bad_load_time_settings_name_the_variable_and_what_it_accepts(env, names):
    with pytest.raises(SettingsError) as info:
        LoadSettings.from_env(env)
    for name in names:
        assert name in str(info.value)


@pytest.mark.stack
def test_a_bad_load_time_setting_fails_the_code_location_load():
    # `defs` is a dg @definitions function: the settings are read when the location loads.
    env = {**os.environ, "CG_DATE_FIELD": "date_opened", "VIRTUAL_ENV": str(ROOT / ".venv")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "check", "defs"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "CG_DATE_FIELD='date_opened' is invalid" in done.stdout + done.stderr


def test_a_bad_resource_setting_is_refused_when_the_resource_is_made(simulator):
    # Typed fields, checked where the definitions load (dg check defs): no run starts.
    with pytest.raises(ValidationError, match="per_page=5000 is invalid: expected a whole"):
        make_resource(simulator, per_page=5000)
    assert simulator_requests(simulator) == 0


def test_a_run_without_a_region_or_urls_fails_at_its_start(simulator, instance, tmp_path):
    """Like unset credentials, a missing region lets the code location load (a fresh clone,
    dg check defs in CI) and fails the run at its start, before any request."""
    asset = build_sync_asset(NON_RESPONSES, LoadSettings(start_date=SIM_START))
    resources = with_lake_io_manager(
        {
            "customergauge": make_resource(simulator, region=None, api_url=None, auth_url=None),
            "lake": LakeResource(root=str(tmp_path)),
        }
    )
    result = materialize(
        [asset],
        partition_key=SIM_START.isoformat(),
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    # validated when the resource is set up for the run, before the asset body starts
    assert any(
        "region is not set: expected one of eu, us, au" in str(error.cause or error)
        for error in (
            getattr(event.event_specific_data, "error", None) for event in result.all_events
        )
        if error is not None
    )
    assert simulator_requests(simulator) == 0


def simulator_requests(simulator) -> int:
    from cg_simulator import SimulatorControl

    with SimulatorControl(simulator.url) as control:
        return control.stats()["api_requests"] + control.stats()["token_requests"]


def test_missing_credentials_name_the_variable(simulator):
    with pytest.raises(SettingsError, match="CG_CLIENT_SECRET"):
        make_resource(simulator, client_secret=" ").validate()


def test_an_unwritable_lake_root_names_cg_lake_root(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SettingsError, match="CG_LAKE_ROOT"):
        LakeResource(root=str(blocker / "lake")).get_lake()


def test_secrets_are_env_vars_in_the_shipped_definitions():
    from cg_assets.definitions import defs

    resource = defs().resources["customergauge"]  # `defs` is a dg @definitions function
    # unresolved EnvVar: the field holds the variable's name, never a value
    assert resource.client_secret == "CG_CLIENT_SECRET" and resource.client_id == "CG_CLIENT_ID"


def test_resource_fields_set_concurrency_and_the_request_ceiling(simulator, monkeypatch):
    assert make_resource(simulator).client_settings().concurrency == 1  # the default
    settings = make_resource(simulator, concurrency=4, max_requests_per_second=5).client_settings()
    assert (settings.concurrency, settings.max_requests_per_second) == (4, 5.0)


def test_every_resource_setting_is_a_typed_field_checked_by_its_variables_rule(simulator):
    """A setting field is named after its variable and its component attribute, typed,
    checked by the variable's rule when the resource is made (naming the field), and
    documented in docs/configuration.md: adding one is a rule and a field."""
    from cg_assets.customergauge.resource import CustomerGaugeResource, variable_for

    reference = (ROOT / "docs" / "configuration.md").read_text()
    fields = CustomerGaugeResource.setting_fields()
    assert "region" in fields and "per_page" in fields and "client_secret" not in fields
    assert set(fields) == {rule.name for rule in CLIENT_RULES}
    for name in fields:
        variable = variable_for(name)
        assert f"`{variable}`" in reference, f"{variable} is not in docs/configuration.md"
        with pytest.raises(ValidationError, match=name):
            make_resource(simulator, **{name: "not a valid value!"})


def test_the_shipped_resources_hold_typed_values_and_secrets_as_env_vars(monkeypatch):
    from cg_assets.components.project import project_component

    for name in list(os.environ):
        if name.startswith("CG_"):
            monkeypatch.delenv(name)
    assert project_component().resources()["lake"].root == "data/lake"  # the default
    for name, value in {
        "CG_PER_PAGE": "20",
        "CG_REGION": " ",
        "CG_LAKE_ROOT": "/somewhere",
    }.items():
        monkeypatch.setenv(name, value)
    resources = project_component().resources()  # the project's own defs.yaml
    customergauge, lake = resources["customergauge"], resources["lake"]
    assert customergauge.per_page == 20 and customergauge.region is None  # blank: unset
    # unresolved EnvVar: the field holds the variable's name, never a value
    assert customergauge.client_id == "CG_CLIENT_ID" and lake.root == "/somewhere"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CG_HTTP_HEADERS_DEADLINE_SECONDS", "0"),
        ("CG_HTTP_RESPONSE_DEADLINE_SECONDS", "86401"),
        ("CG_MAX_BODY_BYTES", "1000"),
        ("CG_MAX_BODY_BYTES", str(5 * 1024**3)),
        ("CG_MAX_JSON_DEPTH", "2000"),
        ("CG_MAX_PAGES_PER_DAY", "0"),
    ],
)
def test_hardening_limits_out_of_range_are_refused_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        ClientSettings.from_env({"CG_REGION": "eu", variable: value})


def test_hardening_defaults_and_a_headers_deadline_longer_than_the_answers():
    settings = ClientSettings.from_env({"CG_REGION": "eu"})
    assert (settings.headers_deadline_seconds, settings.response_deadline_seconds) == (90, 300)
    assert (settings.max_body_bytes, settings.max_json_depth) == (64 * 1024 * 1024, 64)
    assert settings.max_pages_per_day == 5000
    with pytest.raises(SettingsError, match="CG_HTTP_HEADERS_DEADLINE_SECONDS=400 is longer"):
        ClientSettings.from_env({"CG_REGION": "eu", "CG_HTTP_HEADERS_DEADLINE_SECONDS": "400"})
