"""The Dagster resource for the personal-data policy: settings and keys in, a LakePrivacy out.

The keys are resource fields set to `dagster.EnvVar("CG_PII_KEY")` (and
`EnvVar("CG_PII_PREVIOUS_KEYS")`): resolved when a run starts, never shown in run config or
the UI. The other fields override CG_PII_MODE and CG_PII_RETENTION_DAYS.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.hashing import Keyring
from cg_assets.privacy.policy import LakePrivacy
from cg_assets.privacy.requirements import keyring_of
from cg_assets.settings import PII_MODES, PrivacySettings, SettingsError


class PrivacyResource(ConfigurableResource):
    """What the lake keeps of personal data: keep, hash (HMAC-SHA256) or drop; retention."""

    key: str | None = Field(
        default=None, description="HMAC key; use EnvVar('CG_PII_KEY'). Never put the value here."
    )
    previous_keys: str | None = Field(
        default=None,
        description="Comma-separated earlier keys, after a rotation; use EnvVar('CG_PII_PREVIOUS_KEYS').",
    )
    mode: str | None = Field(default=None, description="keep, hash or drop; default CG_PII_MODE.")
    retention_days: int | None = Field(
        default=None, description="Default CG_PII_RETENTION_DAYS (unset: for ever)."
    )
    clear_segments: str | None = Field(
        default=None,
        description="Segment names whose values stay clear in hash/drop mode, comma-separated; "
        "default CG_PII_CLEAR_SEGMENTS.",
    )

    read_environment: bool = Field(
        default=True,
        description="Fill the unset fields from CG_PII_* (the env-driven code location); a "
        "component tenant sets every field itself and reads no variable.",
    )

    def privacy_settings(self) -> PrivacySettings:
        env = dict(os.environ) if self.read_environment else {}
        if self.mode is not None:
            env["CG_PII_MODE"] = self.mode
        if self.retention_days is not None:
            env["CG_PII_RETENTION_DAYS"] = str(self.retention_days)
        if self.clear_segments is not None:
            env["CG_PII_CLEAR_SEGMENTS"] = self.clear_segments
        settings = PrivacySettings.from_env(env)
        assert settings.mode in PII_MODES
        return settings

    def keyring(self) -> Keyring:
        return keyring_of(self.key, self.previous_keys)

    def for_lake(self, lake: ParquetLake) -> LakePrivacy:
        """The run's policy over `lake`; raises SettingsError naming the variable when the
        settings cannot be honoured (e.g. CG_PII_MODE=hash without CG_PII_KEY)."""
        try:
            return LakePrivacy(lake, self.privacy_settings(), self.keyring())
        except SettingsError:
            raise
        except OSError as exc:
            raise SettingsError(
                f"CG_LAKE_ROOT={lake.root!r}: the suppression list could not be read ({exc})."
            ) from None


def secret_from_env(variable: str) -> EnvVar | None:
    """EnvVar(variable) when it is set where the definitions load, else None: an EnvVar of an
    unset variable fails every run that uses the resource, even in keep mode."""
    value = os.environ.get(variable)
    return EnvVar(variable) if value is not None and value.strip() else None
