"""The lake resource: where the lake lives, its format, its personal-data policy."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field, model_validator

from cg_assets.lake.formats import open_lake
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.policy import LakePrivacy
from cg_assets.privacy.resource import PrivacyResource
from cg_assets.settings import DEFAULT_LAKE_ROOT, RULES, TableFormat

LAKE_ROOT_VARIABLE = "CG_LAKE_ROOT"


class LakeResource(ConfigurableResource):
    """Where the Parquet lake lives: a local folder or s3://bucket/prefix.

    Typed fields, checked by their rules (cg_assets/settings.py) when the resource is made;
    a run uses them as they are."""

    root: str = Field(default=DEFAULT_LAKE_ROOT, description=RULES["lake_root"].description)
    table_format: TableFormat = Field(
        default=TableFormat.parquet, description=RULES["table_format"].description
    )
    # Everything that writes the lake applies the personal-data policy: it travels with the lake.
    privacy: PrivacyResource | None = Field(
        default=None, description="Personal data policy; unset: keep mode, no key."
    )
    adopt_api: str | None = Field(default=None, description=RULES["adopt_api"].description)

    @model_validator(mode="after")
    def _settings_are_valid(self) -> LakeResource:
        RULES["lake_root"].of(self.root, "root")
        if self.adopt_api is not None:
            RULES["adopt_api"].of(self.adopt_api)
        return self

    def root_path(self) -> str:
        return self.root

    def get_lake(self) -> ParquetLake:
        lake = open_lake(self.root, self.table_format.value)
        lake.ensure_writable()
        return lake

    def get_privacy(self, lake: ParquetLake) -> LakePrivacy:
        """The run's personal-data policy over `lake`; fails naming the setting if unusable."""
        return (self.privacy or PrivacyResource()).for_lake(lake)
