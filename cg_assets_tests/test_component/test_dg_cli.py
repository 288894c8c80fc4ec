"""The real `dg` CLI in a dg project that is not this one: list the component, scaffold two
tenants (one with the alert webhook), check and list their definitions.

The project does not name cg_assets anywhere: the `dagster_dg_cli.registry_modules` entry
point (pyproject.toml) is what makes dg find the component, as in any project where
cg_assets is installed. (An editable install made before the entry point existed does not
carry it: `make install` again.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cg_assets_tests.conftest import ROOT

pytestmark = pytest.mark.stack
DG = str(Path(sys.executable).with_name("dg"))
SECRET = "do-not-show-this-0123456789"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/do-not-show-this-either"

PYPROJECT = """\
[project]
name = "other_project"
version = "0.0.1"
requires-python = ">=3.10"

[tool.dg]
directory_type = "project"

[tool.dg.cli]
telemetry = { enabled = false }

[tool.dg.project]
root_module = "other_project"
"""
DEFINITIONS = """\
from pathlib import Path

from dagster import definitions, load_from_defs_folder


@definitions
def defs():
    return load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def dg(project: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CG_", "DAGSTER_HOME"))}
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(project / "src")])
    env["CUSTOMERGAUGE_EU_CLIENT_SECRET"] = SECRET  # set where the code loads: still unread
    env["CUSTOMERGAUGE_EU_ALERT_WEBHOOK_URL"] = WEBHOOK  # read only when its sensor ticks
    done = subprocess.run(
        [DG, *args], cwd=project, env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


def test_two_tenants_scaffolded_in_another_dg_project(tmp_path: Path) -> None:
    project = tmp_path / "other_project"
    package = project / "src" / "other_project"
    (package / "defs").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(DEFINITIONS)

    assert "cg_assets.CustomerGaugeComponent" in dg(project, "list", "components")
    for tenant in ("customergauge_eu", "customergauge_us"):
        dg(project, "scaffold", "defs", "cg_assets.CustomerGaugeComponent", tenant)
    us = package / "defs" / "customergauge_us" / "defs.yaml"
    us.write_text(us.read_text().replace("region: eu", "region: us"))
    eu = package / "defs" / "customergauge_eu" / "defs.yaml"
    eu.write_text(eu.read_text().replace("# alert_webhook_url:", "alert_webhook_url:"))
    assert "All definitions loaded successfully" in dg(project, "check", "defs")
    listed = dg(project, "list", "defs", "--json")
    for tenant in ("customergauge_eu", "customergauge_us"):
        for name in (f"{tenant}/non_responses", f"{tenant}_sync_job", f"{tenant}_settle_sensor"):
            assert name in listed, name
    assert SECRET not in listed
    # Only the tenant that wrote alert_webhook_url has an alert sensor; its URL is not shown.
    assert "customergauge_eu_alerts" in listed and "customergauge_us_alerts" not in listed
    assert WEBHOOK not in listed and "do-not-show-this" not in listed
