"""Resources: the CustomerGauge client (see customergauge/resource.py) and the lake."""

from __future__ import annotations

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.policy import LakePrivacy
from cg_assets.privacy.resource import PrivacyResource, secret_from_env
from cg_assets.settings import lake_root_from_env


class LakeResource(ConfigurableResource):
    """Where the Parquet lake lives: a local folder or a pyarrow filesystem URI (s3://, gs://)."""

    root: str | None = Field(default=None, description="Default CG_LAKE_ROOT, else data/lake.")
    # Everything that writes the lake applies the personal-data policy: it travels with the lake.
    privacy: PrivacyResource | None = Field(
        default=None, description="Personal data policy; default from CG_PII_* (no key)."
    )

    def get_lake(self) -> ParquetLake:
        lake = ParquetLake(self.root or lake_root_from_env())
        lake.ensure_writable()
        return lake

    def get_privacy(self, lake: ParquetLake) -> LakePrivacy:
        """The run's personal-data policy over `lake`; fails naming the variable if unusable."""
        return (self.privacy or PrivacyResource()).for_lake(lake)


def default_resources() -> dict[str, ConfigurableResource]:
    # Secrets through EnvVar: resolved when a run starts, never shown in run config or the UI.
    return {
        "customergauge": CustomerGaugeResource(
            client_id=EnvVar("CG_CLIENT_ID"), client_secret=EnvVar("CG_CLIENT_SECRET")
        ),
        "lake": LakeResource(
            privacy=PrivacyResource(
                key=secret_from_env("CG_PII_KEY"),
                previous_keys=secret_from_env("CG_PII_PREVIOUS_KEYS"),
            )
        ),
    }
