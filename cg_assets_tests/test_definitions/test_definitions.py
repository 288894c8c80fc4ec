"""The whole set of definitions, as a literal snapshot, and the dg project layout around it.

A change to what the code location serves (an asset, a check, a job, a schedule, a sensor, a
resource, a freshness policy) must show up here: update EXPECTED with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster import Definitions

from cg_assets.definitions import defs

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: dagster brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

EXPECTED: dict[str, Any] = {
    "assets": {
        "customergauge/non_responses",
        "customergauge/responses",
        "customergauge/survey_funnel",
    },
    "checks": {
        f"customergauge/{table}:{check}"
        for table in ("non_responses", "responses")
        for check in (
            "unique_keys",
            "records_in_day",
            "schema_matches",
            "every_day_settled",
            "answer_window_kept",
            "no_unexplained_shrink",
            "pii_retention",
            "recent_days_fresh",
            "no_new_fields",
        )
    },
    "jobs": {
        "customergauge_sync_job",
        "customergauge_pii_retention",
        "customergauge_erase_contacts",
    },
    "schedules": {
        "customergauge_hourly_catch_up": ("5 * * * *", "UTC"),
        "customergauge_pii_retention_daily": ("30 3 * * *", "UTC"),
    },
    "sensors": {
        "customergauge_settle_sensor",
        "customergauge_funnel_automation",
        "customergauge_day_freshness_sensor",
        "customergauge_alerts",
    },
    "resources": {
        "customergauge": "CustomerGaugeResource",
        "lake": "LakeResource",
        "customergauge_io_manager": "LakeFrameIOManager",
    },
}
# The assets that sync the API carry the freshness policy; the funnel follows them.
SYNC_ASSETS = {"customergauge/non_responses", "customergauge/responses"}
# CG_AUTOMATION: the schedule's and the sensor's default status, and the freshness policy
# (fail, warn windows in seconds) of every asset.
AUTOMATION = {
    "off": {"status": "STOPPED", "freshness": None},
    "on": {"status": "RUNNING", "freshness": (7200, 5400)},
}


def snapshot(definitions: Definitions) -> dict[str, Any]:
    graph = definitions.resolve_asset_graph()
    return {
        "assets": {key.to_user_string() for key in graph.get_all_asset_keys()},
        "checks": {key.to_user_string() for key in graph.asset_check_keys},
        "jobs": {job.name for job in definitions.jobs or []},
        "schedules": {
            s.name: (s.cron_schedule, s.execution_timezone) for s in definitions.schedules or []
        },
        "sensors": {s.name for s in definitions.sensors or []},
        "resources": {k: type(v).__name__ for k, v in (definitions.resources or {}).items()},
    }


def automation_view(definitions: Definitions) -> dict[str, Any]:
    statuses = {s.default_status.value for s in definitions.schedules or []} | {
        s.default_status.value for s in definitions.sensors or []
    }
    graph = definitions.resolve_asset_graph()
    policies = set()
    for key in graph.get_all_asset_keys():
        if key.to_user_string() not in SYNC_ASSETS:
            continue
        policy = graph.get(key).freshness_policy
        policies.add(
            None
            if policy is None
            else (
                int(policy.fail_window.to_timedelta().total_seconds()),
                int(policy.warn_window.to_timedelta().total_seconds()),
            )
        )
    (status,) = statuses
    (freshness,) = policies
    return {"status": status, "freshness": freshness}


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CG_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_whole_set_of_definitions(clean_settings):
    assert snapshot(defs()) == EXPECTED


@pytest.mark.parametrize("automation", sorted(AUTOMATION))
def test_automation_switches_the_schedule_the_sensor_and_the_freshness_policy(
    clean_settings, automation
):
    clean_settings.setenv("CG_AUTOMATION", automation)
    assert automation_view(defs()) == AUTOMATION[automation]


def test_the_automation_default_is_the_same_in_the_docs_the_code_and_make_run(clean_settings):
    assert automation_view(defs()) == AUTOMATION["off"]  # the code: dagster api grpc, Helm
    reference = (ROOT / "docs" / "configuration.md").read_text()
    assert "| `CG_AUTOMATION` | `automation` | `off` | load |" in reference  # the generated row
    assert "`make run` changes two defaults: `CG_AUTOMATION` is `on`" in reference
    script = (ROOT / "scripts" / "run-demo").read_text()
    assert script.count('export CG_AUTOMATION="${CG_AUTOMATION:-on}"') == 2  # demo and tenant


def test_the_project_is_a_dg_project_loading_cg_assets_definitions():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert config["dg"]["directory_type"] == "project"
    project = config["dg"]["project"]
    assert project["root_module"] == "cg_assets"
    assert project["code_location_target_module"] == config["dagster"]["module_name"]
    assert project["code_location_name"] == config["dagster"]["code_location_name"]
    makefile = (ROOT / "Makefile").read_text()
    assert "dg check defs" in makefile and "dagster definitions validate" not in makefile
    assert '"$BIN/dg" dev' in (ROOT / "scripts" / "run-demo").read_text()
    assert (ROOT / "cg_assets" / "defs").is_dir() and (ROOT / "cg_assets_tests").is_dir()


def _quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CG_", "DAGSTER_HOME"))}
    env["VIRTUAL_ENV"] = str(ROOT / ".venv")  # as make test sets it
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.stack
def test_dg_check_defs_passes_without_warnings():
    done = subprocess.run(
        [str(BIN / "dg"), "check", "defs"],
        cwd=ROOT,
        env=_quiet_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "All definitions loaded successfully" in output
    assert "Warning" not in output, output[-3000:]  # no BetaWarning, no SupersessionWarning


@pytest.mark.stack
def test_workspace_yaml_keeps_working():
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=_quiet_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
