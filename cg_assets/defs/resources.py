"""The lake resource and the default resources: every setting through `dagster.EnvVar`."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.lake.formats import open_lake
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.policy import LakePrivacy
from cg_assets.privacy.resource import PrivacyResource, secret_from_env
from cg_assets.settings import lake_root_from_env

LAKE_ROOT_VARIABLE = "CG_LAKE_ROOT"


class LakeResource(ConfigurableResource):
    """Where the Parquet lake lives: a local folder or s3://bucket/prefix."""

    root: str | None = Field(default=None, description="CG_LAKE_ROOT; default data/lake.")
    table_format: str | None = Field(
        default=None, description="parquet or delta; default CG_TABLE_FORMAT, else parquet."
    )
    # Everything that writes the lake applies the personal-data policy: it travels with the lake.
    privacy: PrivacyResource | None = Field(
        default=None, description="Personal data policy; default from CG_PII_* (no key)."
    )

    def root_path(self) -> str:
        return self.root or lake_root_from_env()

    def get_lake(self) -> ParquetLake:
        lake = open_lake(self.root_path(), self.table_format)
        lake.ensure_writable()
        return lake

    def get_privacy(self, lake: ParquetLake) -> LakePrivacy:
        """The run's personal-data policy over `lake`; fails naming the variable if unusable."""
        return (self.privacy or PrivacyResource()).for_lake(lake)


def default_resources(environ: Mapping[str, str] | None = None) -> dict[str, ConfigurableResource]:
    # EnvVar: resolved when a run starts, never shown as a value in run config or the UI.
    environ = os.environ if environ is None else environ
    lake_root = EnvVar(LAKE_ROOT_VARIABLE) if environ.get(LAKE_ROOT_VARIABLE, "").strip() else None
    return {
        "customergauge": CustomerGaugeResource.from_environment(environ),
        "lake": LakeResource(
            root=lake_root,
            privacy=PrivacyResource(
                key=secret_from_env("CG_PII_KEY"),
                previous_keys=secret_from_env("CG_PII_PREVIOUS_KEYS"),
            ),
        ),
    }
