"""Resources: the CustomerGauge client (see customergauge/resource.py) and the lake."""

from __future__ import annotations

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import lake_root_from_env


class LakeResource(ConfigurableResource):
    """Where the Parquet lake lives: a local folder or a pyarrow filesystem URI (s3://, gs://)."""

    root: str | None = Field(default=None, description="Default CG_LAKE_ROOT, else data/lake.")

    def get_lake(self) -> ParquetLake:
        lake = ParquetLake(self.root or lake_root_from_env())
        lake.ensure_writable()
        return lake


def default_resources() -> dict[str, ConfigurableResource]:
    # Secrets through EnvVar: resolved when a run starts, never shown in run config or the UI.
    return {
        "customergauge": CustomerGaugeResource(
            client_id=EnvVar("CG_CLIENT_ID"), client_secret=EnvVar("CG_CLIENT_SECRET")
        ),
        "lake": LakeResource(),
    }
