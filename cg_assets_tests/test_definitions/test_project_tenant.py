"""The project's own tenant is a `CustomerGaugeComponent` in its defs folder
(cg_assets/defs/customergauge/defs.yaml), configured from the CG_* variables.

Every variable of that file is read when the code location loads: a good value reaches the
typed attribute, a bad one fails the load naming the variable, and `make run`'s pre-check
refuses it too, naming it alike. The tables below must cover every variable of the file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

import pyarrow.parquet as pq
import pytest
from dagster import EnvVar
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from dagster.components.core.component_tree import ComponentTree

from cg_assets.components.customergauge import CustomerGaugeComponent
from cg_assets.components.project import project_component, project_variables
from cg_assets.definitions import defs
from cg_assets.defs.tenant import DEFAULT_TENANT
from cg_assets.settings import SettingsError
from cg_assets.settings_check import check
from cg_assets_tests.conftest import ROOT, SIM_START
from cg_assets_tests.test_definitions.test_definitions import EXPECTED, snapshot
from cg_assets_tests.truth import day_file
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

SECRETS = {
    "CG_CLIENT_ID",
    "CG_CLIENT_SECRET",
    "CG_PII_KEY",
    "CG_PII_PREVIOUS_KEYS",
    "CG_ALERT_WEBHOOK_URL",
}
# variable: (a good value, the attribute it gives, other variables it needs)
GOOD: dict[str, tuple[str, Any, dict[str, str]]] = {
    "CG_REGION": ("US", "us", {}),
    "CG_API_URL": ("http://127.0.0.1:9/", "http://127.0.0.1:9", {}),
    "CG_AUTH_URL": ("http://127.0.0.1:9/t", "http://127.0.0.1:9/t", {}),
    "CG_PER_PAGE": ("50", 50, {}),
    "CG_HTTP_TIMEOUT": ("5,30", [5.0, 30.0], {}),
    "CG_MAX_RETRIES": ("2", 2, {}),
    "CG_RETRY_BUDGET_SECONDS": ("30", 30.0, {}),
    "CG_BACKOFF_SECONDS": ("0.5", 0.5, {}),
    "CG_EXTRA_PARAMS": ("filter[cgid]=12", "filter[cgid]=12", {}),
    "CG_CONCURRENCY": ("4", 4, {}),
    "CG_MAX_REQUESTS_PER_SECOND": ("2.5", 2.5, {}),
    "CG_HTTP_HEADERS_DEADLINE_SECONDS": ("30", 30.0, {}),
    "CG_HTTP_RESPONSE_DEADLINE_SECONDS": ("120", 120.0, {}),
    "CG_MAX_BODY_BYTES": ("1048576", 1048576, {}),
    "CG_MAX_JSON_DEPTH": ("32", 32, {}),
    "CG_MAX_PAGES_PER_DAY": ("100", 100, {}),
    "CG_SCHEMA_CONTRACT": ("freeze", "freeze", {}),
    "CG_LAKE_ROOT": ("/srv/cg/lake", "/srv/cg/lake", {}),
    "CG_TABLE_FORMAT": ("Delta", "delta", {}),
    "CG_ADOPT_API": ("0123456789abcdef", "0123456789abcdef", {}),
    "CG_TIMEZONE": ("Europe/Amsterdam", "Europe/Amsterdam", {}),
    "CG_START_DATE": ("2025-03-01", dt.date(2025, 3, 1), {}),
    "CG_DATE_FIELD": ("date_order", "date_order", {}),
    "CG_RESPONSES_DATE_FIELD": ("date_survey_response", "date_survey_response", {}),
    "CG_SETTLE_AFTER_HOURS": ("72", 72, {}),
    "CG_ANSWER_WINDOW_DAYS": ("0", 0, {}),
    "CG_AUTOMATION": ("on", True, {}),
    "CG_SCHEDULE_MINUTE": ("17", 17, {}),
    "CG_SETTLE_MAX_PER_TICK": ("9", 9, {}),
    "CG_SENSOR_INTERVAL_SECONDS": ("60", 60, {}),
    "CG_PII_MODE": ("drop", "drop", {}),
    "CG_PII_RETENTION_DAYS": ("30", 30, {"CG_PII_MODE": "drop"}),
    "CG_PII_CLEAR_SEGMENTS": ("Country, Division", ["Country", "Division"], {}),
}
BAD: dict[str, str] = {
    "CG_REGION": "mars",
    "CG_API_URL": "ftp://api.example.com",
    "CG_AUTH_URL": "not a url",
    "CG_PER_PAGE": "5000",
    "CG_HTTP_TIMEOUT": "inf",
    "CG_MAX_RETRIES": "51",
    "CG_RETRY_BUDGET_SECONDS": "0",
    "CG_BACKOFF_SECONDS": "-1",
    "CG_EXTRA_PARAMS": "cursor=1",
    "CG_CONCURRENCY": "17",
    "CG_MAX_REQUESTS_PER_SECOND": "1e-300",
    "CG_HTTP_HEADERS_DEADLINE_SECONDS": "0",
    "CG_HTTP_RESPONSE_DEADLINE_SECONDS": "86401",
    "CG_MAX_BODY_BYTES": "1000",
    "CG_MAX_JSON_DEPTH": "2000",
    "CG_MAX_PAGES_PER_DAY": "0",
    "CG_SCHEMA_CONTRACT": "strict",
    "CG_LAKE_ROOT": "~/lake",
    "CG_TABLE_FORMAT": "iceberg",
    "CG_ADOPT_API": "the new one",
    "CG_TIMEZONE": "Mars/Olympus",
    "CG_START_DATE": "2999-01-01",
    "CG_DATE_FIELD": "date_opened",
    "CG_RESPONSES_DATE_FIELD": "date_opened",
    "CG_SETTLE_AFTER_HOURS": "-3",
    "CG_ANSWER_WINDOW_DAYS": "400",
    "CG_AUTOMATION": "yes",
    "CG_SCHEDULE_MINUTE": "60",
    "CG_SETTLE_MAX_PER_TICK": "0",
    "CG_SENSOR_INTERVAL_SECONDS": "10",
    "CG_PII_MODE": "scramble",
    "CG_PII_RETENTION_DAYS": "-1",
    "CG_PII_CLEAR_SEGMENTS": "Country,",
}
TENANT_ENV = {"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "secret", "CG_REGION": "eu"}
# A SettingsError raised by a rule while the attribute is read, or by the component's check
# of attributes together (pydantic's "Value error, ...").
OUR_MESSAGE = re.compile(r"(?:SettingsError: |Value error, )(CG_[A-Z_]+)")
VARIABLES = {t.variable: name for name, t in project_variables().items()}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CG_"):
            monkeypatch.delenv(name)
    return monkeypatch


def error_chain(error: BaseException | None) -> str:
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def test_the_tables_cover_every_variable_of_the_defs_yaml():
    settings = set(VARIABLES) - SECRETS
    assert set(GOOD) == settings and set(BAD) == settings
    assert SECRETS <= set(VARIABLES)


def test_the_code_location_is_the_defs_folder_and_its_one_component(clean_env):
    tree = ComponentTree.for_project(ROOT / "cg_assets")
    [component] = tree.get_all_components(of_type=CustomerGaugeComponent)
    assert component.tenant == DEFAULT_TENANT  # key prefix customergauge, the short keys
    served = defs()
    # The names of the snapshot test, all of them the component's own.
    assert snapshot(served) == EXPECTED == snapshot(component.build_defs(tree.load_context))
    source = (ROOT / "cg_assets" / "definitions.py").read_text()
    assert "load_from_defs_folder" in source and "from_env" not in source


@pytest.mark.parametrize("variable", sorted(GOOD))
def test_each_variable_reaches_its_typed_attribute(clean_env, variable):
    text, typed, needs = GOOD[variable]
    for name, value in {**needs, variable: text}.items():
        clean_env.setenv(name, value)
    attribute = VARIABLES[variable]
    value = getattr(project_component(), attribute)
    assert value == typed and type(value) is type(typed)
    assert value != CustomerGaugeComponent.model_fields[attribute].default  # it did change


@pytest.mark.parametrize("variable", sorted(BAD))
def test_a_bad_value_fails_the_load_and_the_pre_check_naming_the_variable(clean_env, variable):
    clean_env.setenv(variable, BAD[variable])
    with pytest.raises(Exception) as loading:
        defs()  # what `dg check defs` and `dg dev` do when the code location loads
    # Our message, not dg's quote of the defs.yaml line (which names the variable too).
    named = set(OUR_MESSAGE.findall(error_chain(loading.value)))
    assert named == {variable}
    with pytest.raises(SettingsError) as pre_check:
        check({**TENANT_ENV, variable: BAD[variable]})  # make run's, before anything starts
    assert str(pre_check.value).startswith(variable)


def test_blank_is_unset_and_an_unset_variable_is_the_default(clean_env):
    clean_env.setenv("CG_PER_PAGE", "  ")
    clean_env.setenv("CG_LAKE_ROOT", "")
    component = project_component()
    assert component.per_page == 1000 and component.lake_root == "data/lake"
    assert component.automation is False and component.pii_key is None
    # The webhook stays an EnvVar while unset: the alert sensor is there, and skips naming it.
    assert component.alert_webhook_url == EnvVar("CG_ALERT_WEBHOOK_URL")


def test_the_secrets_are_env_vars_and_never_in_the_snapshot(clean_env):
    secret = "do-not-show-this-0123456789-abcdef"
    for name in SECRETS:
        clean_env.setenv(name, secret)
    component = project_component()
    for attribute in (
        "client_id",
        "client_secret",
        "pii_key",
        "pii_previous_keys",
        "alert_webhook_url",
    ):
        assert isinstance(getattr(component, attribute), EnvVar), attribute
    repository = defs().get_repository_def()
    assert secret not in serialize_value(RepositorySnap.from_def(repository))


def test_a_run_uses_the_values_loaded_not_the_environment_of_its_moment(
    clean_env, simulator, control, instance, tmp_path
):
    """One route: the run gets the typed values of the load. Every setting changed after the
    code location loaded (the API, the lake, the page size, the personal-data mode) is
    ignored by the run; only the secrets are read when it starts (dagster.EnvVar)."""
    loaded_lake, other_lake = tmp_path / "loaded-lake", tmp_path / "other-lake"
    for name, value in {
        "CG_CLIENT_ID": DEMO_CLIENT_ID,
        "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "CG_API_URL": simulator.url,
        "CG_AUTH_URL": simulator.token_url,
        "CG_PER_PAGE": "20",
        "CG_HTTP_TIMEOUT": "2,2",
        "CG_MAX_RETRIES": "1",
        "CG_BACKOFF_SECONDS": "0.001",
        "CG_LAKE_ROOT": str(loaded_lake),
        "CG_START_DATE": SIM_START.isoformat(),
        "CG_PII_MODE": "drop",
    }.items():
        clean_env.setenv(name, value)
    served = defs()  # the code location loads
    for name, value in {
        "CG_API_URL": "http://127.0.0.1:9",  # nothing listens there
        "CG_AUTH_URL": "http://127.0.0.1:9/oauth2/token",
        "CG_PER_PAGE": "1000",
        "CG_LAKE_ROOT": str(other_lake),
        "CG_PII_MODE": "keep",
        "CG_TABLE_FORMAT": "delta",
        "CG_MAX_RETRIES": "not even a number",
    }.items():
        clean_env.setenv(name, value)
    result = served.resolve_job_def("customergauge_sync_job").execute_in_process(
        instance=instance, partition_key=SIM_START.isoformat()
    )
    assert result.success
    rows = pq.read_table(day_file(loaded_lake, SIM_START)).to_pylist()
    assert rows and all(row["email"] is None for row in rows)  # drop mode, as loaded
    assert not other_lake.exists()
    pages = [r["query"].get("per_page") for r in control.stats()["requests"]]
    assert pages and set(pages) == {"20"}
