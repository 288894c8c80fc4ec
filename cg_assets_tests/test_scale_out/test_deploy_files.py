"""The deployment files agree with the code and with each other (what can be checked without
Docker or Kubernetes: the image's install step and the Helm install were not run here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import setuptools
import yaml
from packaging.requirements import Requirement

from cg_assets.defs.assets import LAKE_POOL
from cg_assets.defs.automation import AUTOMATION_MAX_RUNTIME
from cg_assets_tests.test_scale_out.conftest import DEPLOY_DAGSTER_YAML, ROOT
from cg_simulator import DEMO_CLIENT_SECRET

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: dagster brings tomli
    import tomli as tomllib

HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
DOCKERFILE = ROOT / "Dockerfile"
REQUIREMENTS = ROOT / "deploy" / "requirements.txt"


def load(path):
    return yaml.safe_load(path.read_text())


def pins() -> dict[str, str]:
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            out[name.lower().replace("_", "-")] = version
    return out


def test_the_production_instance_serializes_lake_runs_like_the_demo_instance():
    prod = load(DEPLOY_DAGSTER_YAML)
    demo = load(ROOT / ".dagster_home" / "dagster.yaml")
    assert prod["concurrency"]["pools"] == demo["concurrency"]["pools"]
    assert prod["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert prod["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_the_pool_is_the_one_thing_that_queues_lake_runs():
    """No run-tag limits beside the pool: two mechanisms would each have to be kept right."""
    for path in (DEPLOY_DAGSTER_YAML, ROOT / ".dagster_home" / "dagster.yaml", HELM_VALUES):
        config = load(path)
        runs = config["concurrency"]["runs"]
        assert not {"tag_concurrency_limits", "tagConcurrencyLimits"} & set(runs), path
        assert "lake_writer" not in path.read_text(), path
    assert LAKE_POOL == "customergauge_lake"


def test_every_instance_config_runs_run_monitoring():
    """What marks a run whose worker died as failed, so its days and pool slot come back."""
    prod = load(DEPLOY_DAGSTER_YAML)["run_monitoring"]
    demo = load(ROOT / ".dagster_home" / "dagster.yaml")["run_monitoring"]
    assert prod == demo
    assert prod["enabled"] is True
    # the runs the schedule and the sensor ask for carry a shorter limit of their own
    assert prod["max_runtime_seconds"] > AUTOMATION_MAX_RUNTIME.total_seconds()
    helm = load(HELM_VALUES)["dagsterDaemon"]["runMonitoring"]
    assert helm["enabled"] is True
    assert helm["startTimeoutSeconds"] == prod["start_timeout_seconds"]


def test_the_helm_values_match_the_instance_config_and_the_code_location():
    values = load(HELM_VALUES)
    prod = load(DEPLOY_DAGSTER_YAML)
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert (
        concurrency["runs"]["maxConcurrentRuns"]
        == prod["concurrency"]["runs"]["max_concurrent_runs"]
    )
    assert concurrency["pools"] == {
        "defaultLimit": prod["concurrency"]["pools"]["default_limit"],
        "granularity": prod["concurrency"]["pools"]["granularity"],
    }
    assert (
        values["postgresql"]["postgresqlScheme"]
        == prod["storage"]["postgres"]["postgres_db"]["scheme"]
    )

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert deployment["image"]["tag"] not in ("latest", None, "")
    env = {item["name"]: item.get("value") for item in deployment["env"]}
    assert env["CG_LAKE_ROOT"].startswith("s3://")
    assert not {"CG_CLIENT_ID", "CG_CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert deployment["envSecrets"] and deployment["includeConfigInLaunchedRuns"]["enabled"]
    uid = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.M).group(1)
    assert deployment["podSecurityContext"]["runAsUser"] == int(uid)
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True


def test_the_image_is_pinned_small_and_non_root():
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert re.search(r"^USER (\d+)", text, re.M).group(1) != "0"
    assert "--no-deps" in text and "-r /tmp/requirements.txt" in text
    assert "PIP_NO_CACHE_DIR=1" in text
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored
    # Nothing else comes back after `*`: cg_simulator/ (the demo secret's home) stays out.
    assert {line for line in ignored if line.startswith("!")} == {
        "!deploy/requirements.txt",
        "!cg_assets/",
        "!pyproject.toml",
    }


def test_the_wheel_holds_cg_assets_only():
    # The packages setuptools puts in the wheel, from pyproject.toml's own find rule (a TOML
    # table's find defaults to namespaces = true): building one would fetch setuptools.
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = find["packages"]["find"]
    assert find.get("namespaces", True) and "where" not in find
    packages = setuptools.find_namespace_packages(
        str(ROOT), include=find["include"], exclude=find["exclude"]
    )
    assert "cg_assets" in packages
    assert {name.split(".")[0] for name in packages} == {"cg_assets"}
    secret = DEMO_CLIENT_SECRET.encode()
    assert not [
        p for p in (ROOT / "cg_assets").rglob("*") if p.is_file() and secret in p.read_bytes()
    ]


def image_app_dir(target) -> None:
    """/opt/dagster/app as the Dockerfile's COPY lines and .dockerignore build it."""
    copies = re.findall(
        r"^COPY --chown=\S+ (\S+) /opt/dagster/app/(\S+)$", DOCKERFILE.read_text(), re.M
    )
    assert sorted(copies) == [("cg_assets", "cg_assets"), ("pyproject.toml", "pyproject.toml")]
    excluded = [
        line.rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("cg_assets/")
    ]
    for source, dest in copies:
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, target / dest, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / source, target / dest)
    for path in excluded:
        shutil.rmtree(target / path)


@pytest.mark.stack
def test_the_image_serves_the_code_location_without_the_simulator(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    image_app_dir(app)
    secret = DEMO_CLIENT_SECRET.encode()
    assert not [p for p in app.rglob("*") if p.is_file() and secret in p.read_bytes()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CG_", "PYTHONPATH"))}
    env["PYTHONPATH"] = str(app)  # as the image sets it
    probe = (
        "import importlib.util; from cg_assets.definitions import defs; d = defs(); "
        "assert importlib.util.find_spec('cg_simulator') is None; "
        "print(sorted(k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "customergauge/non_responses" in done.stdout


def test_ci_requires_postgres():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export CG_REQUIRE_POSTGRES=1" in ci and ci.index("CG_REQUIRE_POSTGRES") < ci.index(
        "make test"
    )


def test_the_image_requirements_satisfy_the_project_and_pair_dagster_releases():
    pinned = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["s3"]]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is missing from deploy/requirements.txt"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is not {spec}"
    _, minor, patch = pinned["dagster"].split(".")
    library = f"0.{int(minor) + 16}.{patch}"
    assert pinned["dagster-postgres"] == library and pinned["dagster-k8s"] == library
    assert pinned["psycopg2-binary"]
    chart = re.search(r"--version (\S+)", HELM_VALUES.read_text()).group(1)
    assert chart == pinned["dagster"], "the Helm chart's version must be the image's dagster"
