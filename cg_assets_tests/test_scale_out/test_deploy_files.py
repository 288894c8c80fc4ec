"""The deployment files agree with the code and with each other (what can be checked without
Docker or Kubernetes: the image's install step and the Helm install were not run here)."""

from __future__ import annotations

import re

import yaml
from packaging.requirements import Requirement

from cg_assets.defs.assets import LAKE_WRITER_TAG
from cg_assets_tests.test_scale_out.conftest import DEPLOY_DAGSTER_YAML, ROOT

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
    assert (
        prod["concurrency"]["runs"]["tag_concurrency_limits"]
        == demo["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    assert prod["concurrency"]["runs"]["tag_concurrency_limits"][0]["key"] == LAKE_WRITER_TAG
    assert prod["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_the_helm_values_match_the_instance_config_and_the_code_location():
    values = load(HELM_VALUES)
    prod = load(DEPLOY_DAGSTER_YAML)
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert (
        concurrency["runs"]["tagConcurrencyLimits"]
        == prod["concurrency"]["runs"]["tag_concurrency_limits"]
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
    assert {"*", "!deploy/requirements.txt", "!cg_assets/"} <= set(ignored)


def test_the_image_requirements_satisfy_the_project_and_pair_dagster_releases():
    pinned = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
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
