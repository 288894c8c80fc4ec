"""This project's own tenant: the `CustomerGaugeComponent` of cg_assets/defs/customergauge/.

Its defs.yaml configures it from the CG_* variables (docs/configuration.md is generated from
that file and the component's attributes). The code location loads it like any component
(cg_assets/definitions.py); these helpers give tests and the docs generator the same one.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import ComponentTree, Definitions

from cg_assets.components.customergauge import CustomerGaugeComponent
from cg_assets.components.env_templates import EnvTemplate, env_template_of
from cg_assets.settings import LoadSettings

PACKAGE = Path(__file__).resolve().parents[1]
PROJECT_TENANT_YAML = PACKAGE / "defs" / "customergauge" / "defs.yaml"


def project_component() -> CustomerGaugeComponent:
    """The project's own tenant as its defs.yaml configures it under this environment."""
    tree = ComponentTree.for_project(PACKAGE)
    [component] = tree.get_all_components(of_type=CustomerGaugeComponent)
    return component


def build_definitions(settings: LoadSettings) -> Definitions:
    """The project's own tenant, shaped by `settings` rather than its load-time attributes:
    tests set partitions and automation without the environment."""
    return project_component().build_tenant(settings)


def project_variables(path: Path = PROJECT_TENANT_YAML) -> dict[str, EnvTemplate]:
    """Attribute -> the variable (and fallback) of each `{{ env... }}` attribute of a defs.yaml,
    in the file's order: this project's CG_* variables are those of its own tenant."""
    attributes = yaml.safe_load(path.read_text())["attributes"]
    templates = {name: env_template_of(raw) for name, raw in attributes.items()}
    return {name: t for name, t in templates.items() if t is not None}
