"""The Dagster resource for the personal-data policy: typed settings and keys in, a
LakePrivacy out.

The keys are resource fields set to `dagster.EnvVar` (the project's own tenant:
`EnvVar("CG_PII_KEY")`, `EnvVar("CG_PII_PREVIOUS_KEYS")`): resolved when a run starts,
never shown in run config or the UI. The other fields are typed, checked by their rules
(cg_assets/settings.py) when the resource is made; nothing here reads the environment.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import ConfigDict, Field, model_validator

from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.hashing import Keyring
from cg_assets.privacy.policy import LakePrivacy
from cg_assets.privacy.requirements import keyring_of
from cg_assets.settings import RULES, PiiMode, PrivacySettings, SettingsError, privacy_settings

# The resource's field for each setting (the component's attribute and the variable carry
# the pii_ prefix: CG_PII_MODE, pii_mode).
FIELDS = {
    "pii_mode": "mode",
    "pii_retention_days": "retention_days",
    "pii_clear_segments": "clear_segments",
}


class PrivacyResource(ConfigurableResource):
    """What the lake keeps of personal data: keep, hash (HMAC-SHA256) or drop; retention."""

    # A refused value's error must not quote the others: the keys are among them once a
    # run resolves its EnvVars.
    model_config = ConfigDict(hide_input_in_errors=True)

    key: str | None = Field(
        default=None, description="HMAC key; use EnvVar('CG_PII_KEY'). Never put the value here."
    )
    previous_keys: str | None = Field(
        default=None,
        description="Comma-separated earlier keys, after a rotation; use EnvVar('CG_PII_PREVIOUS_KEYS').",
    )
    mode: PiiMode = Field(default=PiiMode.keep, description=RULES["pii_mode"].description)
    retention_days: int | None = Field(
        default=None, description=RULES["pii_retention_days"].description
    )
    clear_segments: list[str] = Field(
        default=[], description=RULES["pii_clear_segments"].description
    )

    @model_validator(mode="after")
    def _settings_are_valid(self) -> PrivacyResource:
        self.privacy_settings()
        return self

    def _values(self) -> dict[str, Any]:
        return {setting: getattr(self, field) for setting, field in FIELDS.items()}

    def privacy_settings(self) -> PrivacySettings:
        return privacy_settings(self._values(), lambda setting: FIELDS[setting])

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
