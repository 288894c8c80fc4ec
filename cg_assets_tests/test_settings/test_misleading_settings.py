"""Settings that used to be accepted and then mislead (a period filter overridden by
CG_EXTRA_PARAMS, a lake root with a stray space or `~`, an infinite timeout) are refused,
naming the variable: by the parser, by `make run`'s check (the same parser), by the
project's defs.yaml when the code location loads, and by a resource given them as typed
values, when it is made (before any run)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cg_assets.components.project import project_component
from cg_assets.defs.resources import LakeResource
from cg_assets.settings import ClientSettings, SettingsError, lake_root_from_env
from cg_assets.settings_check import EXIT_BAD_SETTING, check, main
from cg_assets_tests.conftest import make_resource
from cg_assets_tests.test_settings.test_settings import simulator_requests

REGION = {"CG_REGION": "eu"}
TENANT = {"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "secret", "CG_REGION": "eu"}

RESERVED = [
    "period[field]=date_order",
    "filter[cgid]=12&period[start]=2020-01-01",
    "PERIOD[END]=2030-01-01",
    "cursor=0",
    "per_page=10",
    "with[]=tags",
    "with=questions",
]
NUMBERS = [
    ("CG_HTTP_TIMEOUT", "inf"),
    ("CG_HTTP_TIMEOUT", "nan"),
    ("CG_HTTP_TIMEOUT", "10,inf"),
    ("CG_HTTP_TIMEOUT", "1e-300"),
    ("CG_HTTP_TIMEOUT", "1e9"),
    ("CG_MAX_REQUESTS_PER_SECOND", "1e-300"),
    ("CG_MAX_REQUESTS_PER_SECOND", "inf"),
    ("CG_MAX_REQUESTS_PER_SECOND", "NaN"),
    ("CG_MAX_REQUESTS_PER_SECOND", "1e9"),
    ("CG_RETRY_BUDGET_SECONDS", "infinity"),
    ("CG_BACKOFF_SECONDS", "nan"),
    ("CG_BACKOFF_SECONDS", "-inf"),
]
PATHS = [" data/lake", "data/lake ", "data/lake\n", "data/\nlake", "\tdata/lake", "data/my lake"]
PATHS += ["~/lake", "~", "/srv/cg/~/lake", "   "]


@pytest.mark.parametrize("raw", RESERVED)
def test_reserved_query_parameters_in_cg_extra_params_are_refused(raw):
    with pytest.raises(SettingsError) as info:
        ClientSettings.from_env({**REGION, "CG_EXTRA_PARAMS": raw})
    message = str(info.value)
    assert message.startswith("CG_EXTRA_PARAMS sets") and "reserved" in message


def test_other_query_parameters_are_still_sent():
    settings = ClientSettings.from_env(
        {**REGION, "CG_EXTRA_PARAMS": "filter[cgid]=12&outbound=ref"}
    )
    assert settings.extra_params == (("filter[cgid]", "12"), ("outbound", "ref"))


@pytest.mark.parametrize(("name", "raw"), NUMBERS)
def test_non_finite_or_absurd_numbers_are_refused(name, raw):
    with pytest.raises(SettingsError, match=f"^{name}={raw!r} is invalid"):
        ClientSettings.from_env({**REGION, name: raw})


def test_sensible_numbers_are_still_accepted():
    settings = ClientSettings.from_env(
        {**REGION, "CG_HTTP_TIMEOUT": "0.5,120", "CG_MAX_REQUESTS_PER_SECOND": "0.01"}
    )
    assert (settings.connect_timeout, settings.read_timeout) == (0.5, 120.0)
    assert settings.max_requests_per_second == 0.01


@pytest.mark.parametrize("raw", PATHS)
def test_a_lake_root_with_white_space_or_a_tilde_is_refused(raw):
    with pytest.raises(SettingsError) as info:
        lake_root_from_env({"CG_LAKE_ROOT": raw})
    assert str(info.value).startswith("CG_LAKE_ROOT")


def test_plain_lake_roots_are_accepted():
    for raw in ("data/lake", "/srv/cg/lake", "s3://bucket/lake?region=eu-west-1", "/x/a~b"):
        assert lake_root_from_env({"CG_LAKE_ROOT": raw}) == raw
    assert lake_root_from_env({"CG_LAKE_ROOT": ""}) == lake_root_from_env({}) == "data/lake"


BAD = [
    ({"CG_EXTRA_PARAMS": "period[field]=date_order"}, "CG_EXTRA_PARAMS"),
    ({"CG_LAKE_ROOT": "data/lake\n"}, "CG_LAKE_ROOT"),
    ({"CG_LAKE_ROOT": "~/lake"}, "CG_LAKE_ROOT"),
    ({"CG_HTTP_TIMEOUT": "inf"}, "CG_HTTP_TIMEOUT"),
    ({"CG_MAX_REQUESTS_PER_SECOND": "1e-300"}, "CG_MAX_REQUESTS_PER_SECOND"),
    ({"CG_PII_MODE": "scramble"}, "CG_PII_MODE"),
    ({"CG_PII_CLEAR_SEGMENTS": "Country,"}, "CG_PII_CLEAR_SEGMENTS"),
]


@pytest.mark.parametrize(("env", "name"), BAD)
@pytest.mark.parametrize("mode", ["demo", "tenant"])
def test_make_runs_check_refuses_them_in_the_demo_and_for_a_tenant(env, name, mode, capsys):
    full = {**(TENANT if mode == "tenant" else {}), **env}
    with pytest.raises(SettingsError, match=f"^{name}"):
        check(full)
    assert main(full) == EXIT_BAD_SETTING
    assert name in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"extra_params": "period[field]=date_order"}, "extra_params sets 'period[field]'"),
        ({"http_timeout": [float("inf"), 10]}, "http_timeout=[inf, 10.0] is invalid"),
        ({"max_requests_per_second": 1e-300}, "max_requests_per_second=1e-300 is invalid"),
    ],
)
def test_the_resource_refuses_them_when_it_is_made_before_any_request(simulator, fields, named):
    # Typed fields, checked where the definitions load: no run starts with them.
    with pytest.raises(ValidationError) as info:
        make_resource(simulator, **fields)
    assert named in str(info.value)
    assert simulator_requests(simulator) == 0


def test_a_stray_space_in_cg_lake_root_fails_the_load_naming_it(monkeypatch):
    monkeypatch.setenv("CG_LAKE_ROOT", "data/lake ")
    with pytest.raises(Exception) as info:
        project_component()  # the project's defs.yaml reads it when the code location loads
    causes, error = [], info.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__ or error.__context__
    assert "CG_LAKE_ROOT contains white space" in "\n".join(causes)
    with pytest.raises(ValidationError, match="root contains white space"):
        LakeResource(root="data/lake ")
