"""`cg_assets.CustomerGaugeComponent` loaded the dg way (a defs folder of defs.yaml files):
two tenants side by side, their secrets, their errors, and a real sync of each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import tomllib
from dagster import AssetKey, AssetSpec, Definitions, EnvVar, build_sensor_context
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from dagster.components.core.component_tree import ComponentTree
from dagster.components.core.package_entry import (
    discover_package_objects,
    is_scaffoldable_object_key,
)
from dagster.components.core.snapshot import get_package_entry_snap
from dagster.components.testing import create_defs_folder_sandbox

import cg_assets
from cg_assets import CustomerGaugeComponent
from cg_assets.components.project import project_variables
from cg_assets.components.reference import (
    VARIABLES_BEGIN,
    VARIABLES_END,
    attribute_table,
    replaced,
    variable_table,
)
from cg_assets.settings import SettingsError
from cg_assets_tests.conftest import ROOT, SIM_START, TEST_PER_PAGE
from cg_assets_tests.truth import assert_rows_equal_truth
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimulatorServer

TYPE = "cg_assets.CustomerGaugeComponent"
TENANTS = ("cg_eu", "cg_us")
SECRET = "do-not-show-this-0123456789"  # stands in for a real secret in the load tests
WEBHOOK = "https://hooks.slack.com/services/T000/B000/do-not-show-this-either"


def attributes(prefix: str, lake_root: Path, **extra: Any) -> dict[str, Any]:
    env = prefix.upper()
    return {
        "key_prefix": prefix,
        "region": "eu",
        "client_id": f"{{{{ env.{env}_CLIENT_ID }}}}",
        "client_secret": f"{{{{ env.{env}_CLIENT_SECRET }}}}",
        "lake_root": str(lake_root / prefix),
        "start_date": SIM_START.isoformat(),
        **extra,
    }


@contextmanager
def load_tenants(tenants: dict[str, dict[str, Any]]) -> Iterator[Definitions]:
    """Each tenant scaffolded as `dg scaffold defs` would, its defs.yaml then replaced."""
    with create_defs_folder_sandbox() as sandbox:
        for name, attrs in tenants.items():
            sandbox.scaffold_component(
                component_cls=CustomerGaugeComponent,
                defs_path=name,
                defs_yaml_contents={"type": TYPE, "attributes": attrs},
            )
        with sandbox.build_all_defs() as defs:
            yield defs


def error_chain(error: BaseException | None) -> str:
    """Every message of the error and its causes (dg wraps a component's error in its tree)."""
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in TENANTS:
        monkeypatch.setenv(f"{prefix.upper()}_CLIENT_ID", f"id-of-{prefix}")
        monkeypatch.setenv(f"{prefix.upper()}_CLIENT_SECRET", SECRET)


def test_scaffold_writes_a_commented_defs_yaml() -> None:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=CustomerGaugeComponent, defs_path="cg_eu")
        text = (path / "defs.yaml").read_text()
    assert text.startswith("# ") and "\n  # " in text  # comments, at the top and inline
    assert "key_prefix: cg_eu" in text
    assert '"{{ env.CG_EU_CLIENT_SECRET }}"' in text
    assert '# alert_webhook_url: "{{ env.CG_EU_ALERT_WEBHOOK_URL }}"' in text  # opt-in


def test_two_tenants_share_a_code_location_without_a_clash(
    tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = {}
    for prefix in TENANTS:
        variable = f"{prefix.upper()}_ALERT_WEBHOOK_URL"
        monkeypatch.setenv(variable, f"{WEBHOOK}/{prefix}")
        tenants[prefix] = attributes(
            prefix, tmp_path, alert_webhook_url=f"{{{{ env.{variable} }}}}"
        )
    with load_tenants(tenants) as defs:
        Definitions.validate_loadable(defs)
        repo = defs.get_repository_def()
        keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
        snapshot = serialize_value(RepositorySnap.from_def(repo))
        names = {
            "jobs": {j.name for j in repo.get_all_jobs()},
            "sensors": {s.name for s in repo.sensor_defs},
            "schedules": {s.name for s in repo.schedule_defs},
            "resources": set(repo.get_top_level_resources()),
        }
        pools = {defs.get_assets_def(k).op.pool for k in defs.resolve_all_asset_keys()}
    for prefix in TENANTS:
        assert {f"{prefix}/non_responses", f"{prefix}/responses", f"{prefix}/survey_funnel"} <= keys
        assert {f"{prefix}_sync_job", f"{prefix}_pii_retention", f"{prefix}_erase_contacts"} <= (
            names["jobs"]
        )
        assert {f"{prefix}_settle_sensor", f"{prefix}_funnel_automation", f"{prefix}_alerts"} <= (
            names["sensors"]
        )
        assert {f"{prefix}_hourly_catch_up", f"{prefix}_pii_retention_daily"} <= names["schedules"]
        assert {f"{prefix}_api", f"{prefix}_lake", f"{prefix}_io_manager"} <= names["resources"]
    assert "io_manager" not in names["resources"]  # the user's default IO manager is untouched
    assert {"cg_eu_lake", "cg_us_lake", None} >= pools and len(pools - {None}) == 2
    # The secret is read when a run starts: its name is in the snapshot, its value is not;
    # so is each webhook, read when its tenant's alert sensor ticks.
    assert SECRET not in snapshot and "do-not-show-this" not in snapshot
    assert "CG_EU_CLIENT_SECRET" in snapshot
    assert "CG_EU_ALERT_WEBHOOK_URL" in snapshot and "CG_US_ALERT_WEBHOOK_URL" in snapshot


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"settle_after_hours": 99999}, "settle_after_hours"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"start_date": "2999-01-01"}, "start_date"),
        ({"extra_params": "cursor=1"}, "extra_params"),
        ({"pii_mode": "hash"}, "pii_key"),
        ({"key_prefix": "Bad-Prefix"}, "key_prefix"),
    ],
)
def test_a_bad_attribute_is_named(
    tmp_path: Path, secrets: None, extra: dict[str, Any], named: str
) -> None:
    with (
        pytest.raises(Exception) as caught,
        load_tenants({"cg_eu": attributes("cg_eu", tmp_path, **extra)}),
    ):
        pass
    assert named in error_chain(caught.value)


def test_a_literal_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    attrs = attributes("cg_eu", tmp_path, client_secret=SECRET)
    with pytest.raises(Exception) as caught, load_tenants({"cg_eu": attrs}):
        pass
    text = error_chain(caught.value)
    ours = next(line for line in text.splitlines() if "a secret must be written" in line)
    assert "{{ env." in ours
    # dg quotes the offending line of the user's own defs.yaml; our message adds no copy.
    assert SECRET not in ours and text.count(SECRET) <= text.count("client_secret:")


def test_the_registry_lists_the_component_with_its_scaffolder() -> None:
    # What `dg list components` reads once cg_assets is installed: the entry point's module...
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = project["project"]["entry-points"]["dagster_dg_cli.registry_modules"]
    assert group == {"cg_assets": "cg_assets"}
    # ...and the components found in it, each with its schema and scaffolder.
    objects = discover_package_objects([group["cg_assets"]])
    [(key, obj)] = [(k, o) for k, o in objects.items() if k.name == "CustomerGaugeComponent"]
    assert key.to_typename() == TYPE and obj is cg_assets.CustomerGaugeComponent
    assert get_package_entry_snap(key, obj).description  # the docstring `dg` shows
    assert is_scaffoldable_object_key(key)
    schema = obj.get_model_cls().model_json_schema()
    assert {"key_prefix", "client_secret", "lake_root", "region"} <= set(schema["properties"])
    assert schema["properties"]["client_secret"]["description"]


def test_each_tenant_syncs_into_its_own_lake_only(
    simulator: SimulatorServer,
    control: Any,
    instance: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for prefix in TENANTS:
        monkeypatch.setenv(f"{prefix.upper()}_CLIENT_ID", DEMO_CLIENT_ID)
        monkeypatch.setenv(f"{prefix.upper()}_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    connection = {
        "region": None,
        "api_url": simulator.url,
        "auth_url": simulator.token_url,
        "per_page": TEST_PER_PAGE,
        "http_timeout": [2, 2],
        "max_retries": 4,
        "backoff_seconds": 0.001,
        "tables": ["non_responses"],
    }
    day = SIM_START + dt.timedelta(days=1)
    tenants = {p: attributes(p, tmp_path, **connection) for p in TENANTS}
    eu_files = tmp_path / "cg_eu" / "customergauge" / "non_responses"
    us_files = tmp_path / "cg_us" / "customergauge" / "non_responses"
    with load_tenants(tenants) as defs:
        eu = defs.get_job_def("cg_eu_sync_job").execute_in_process(
            instance=instance, partition_key=day.isoformat()
        )
        assert eu.success
        assert not us_files.exists(), "the EU run wrote into the US lake"
        # The US sensor ticks while EU has a synced day: it sees none of EU's days.
        us_tick = defs.get_sensor_def("cg_us_settle_sensor")(
            build_sensor_context(instance=instance)
        )
        assert not getattr(us_tick, "run_requests", None)
        us = defs.get_job_def("cg_us_sync_job").execute_in_process(
            instance=instance, partition_key=day.isoformat()
        )
        assert us.success
    for files, prefix in ((eu_files, "cg_eu"), (us_files, "cg_us")):
        assert sorted(p.name for p in files.iterdir()) == [f"date={day.isoformat()}"], prefix
        rows = pq.read_table(files / f"date={day.isoformat()}" / "data.parquet").to_pylist()
        assert assert_rows_equal_truth(rows, control, day) > 0
        materialized = instance.get_materialized_partitions(AssetKey([prefix, "non_responses"]))
        assert materialized == {day.isoformat()}


def test_the_docs_attribute_table_is_the_generated_one() -> None:
    docs = (ROOT / "docs" / "component.md").read_text()
    assert attribute_table() in docs, "run python -m cg_assets.components.reference --write"


class Regrouped(CustomerGaugeComponent):
    def get_asset_spec(self, spec: AssetSpec) -> AssetSpec:
        return spec.replace_attributes(group_name="surveys", owners=["team:cx"])


class Rekeyed(CustomerGaugeComponent):
    def get_asset_spec(self, spec: AssetSpec) -> AssetSpec:
        return spec.replace_attributes(key=AssetKey(["elsewhere", *spec.key.path]))


def test_get_asset_spec_regroups_but_does_not_rekey(tmp_path: Path) -> None:
    fields: dict[str, Any] = {
        "key_prefix": "cg_eu",
        "region": "eu",
        "client_id": EnvVar("CG_EU_CLIENT_ID"),
        "client_secret": EnvVar("CG_EU_CLIENT_SECRET"),
        "lake_root": str(tmp_path / "eu"),
    }
    context = ComponentTree.for_test().load_context
    defs = Regrouped(**fields).build_defs(context)
    spec = defs.get_assets_def(AssetKey(["cg_eu", "responses"])).specs_by_key
    [(_, only)] = spec.items()
    assert only.group_name == "surveys" and only.owners == ["team:cx"]
    with pytest.raises(SettingsError, match="key_prefix"):
        Rekeyed(**fields).build_defs(context)


def test_a_tenant_with_the_default_prefix_leaves_the_default_io_manager_alone(
    tmp_path: Path, secrets: None
) -> None:
    attrs = attributes("cg_eu", tmp_path)
    del attrs["key_prefix"]  # customergauge: the asset keys of this project's own tenant
    with load_tenants({"customergauge": attrs}) as defs:
        resources = set(defs.get_repository_def().get_top_level_resources())
        keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert "customergauge/non_responses" in keys
    assert resources == {"customergauge_api", "customergauge_lake", "customergauge_io_manager"}


def test_the_docs_variable_table_is_the_generated_one() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert variable_table() in docs, "run python -m cg_assets.components.reference --write"


def test_the_variable_table_follows_the_project_defs_yaml_and_the_attributes() -> None:
    """Each row is an attribute of the project's defs.yaml, in its order: its variable, its
    default (the template's fallback, else the attribute's, in the variable's text form),
    when it is read and its description."""
    table = variable_table()
    rows = [line for line in table.splitlines() if line.startswith("| `CG_")]
    listed = [row.split("`")[1] for row in rows]
    assert listed == [t.variable for t in project_variables().values()]
    assert "| `CG_LAKE_ROOT` | `lake_root` | `data/lake` | load |" in table  # the fallback
    assert "| `CG_HTTP_TIMEOUT` | `http_timeout` | `10,60` | load |" in table  # variable's form
    assert "| `CG_CLIENT_SECRET` | `client_secret` | none | run (`dagster.EnvVar`) |" in table
    assert (
        "| `CG_ALERT_WEBHOOK_URL` | `alert_webhook_url` | none | sensor (`dagster.EnvVar`) |"
        in table
    )
    for row in rows:
        attribute = row.split("`")[3]
        description = CustomerGaugeComponent.get_model_cls().model_json_schema()["properties"][
            attribute
        ]["description"]
        assert description.split(" (")[0].split("(docs/")[0][:30] in row, attribute


def test_write_replaces_the_generated_table_and_nothing_else() -> None:
    table = variable_table()
    stale = f"intro\n{VARIABLES_BEGIN}\n| `CG_GONE` | stale |\n{VARIABLES_END}\noutro\n"
    assert replaced(stale, table) == f"intro\n{table}\noutro\n"
    with pytest.raises(ValueError, match="no generated table"):
        replaced("a page without the markers", table)


def test_the_attributes_choices_are_the_settings_choices() -> None:

    from cg_assets.customergauge import wire
    from cg_assets.settings import PII_MODES, SCHEMA_CONTRACT_CHOICES, TABLE_FORMATS

    literal = {
        "region": wire.REGIONS,
        "date_field": wire.PERIOD_FIELDS,
        "responses_date_field": wire.RESPONSES_PERIOD_FIELDS,
        "schema_contract": SCHEMA_CONTRACT_CHOICES,
        "table_format": TABLE_FORMATS,
        "pii_mode": PII_MODES,
    }
    schema = CustomerGaugeComponent.get_model_cls().model_json_schema()["properties"]
    for name, expected in literal.items():
        enum = schema[name].get("enum") or next(
            p["enum"] for p in schema[name]["anyOf"] if "enum" in p
        )
        assert tuple(enum) == tuple(expected), name
