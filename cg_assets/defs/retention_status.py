"""The `pii_retention` check when there is nothing to judge: CG_PII_RETENTION_DAYS unset.

The check itself runs in the nightly retention job (privacy_retention.py), not in sync runs
(a sync yields no output, so a separate check would only show as skipped). Until that job
ran once, every sync asset showed the check as "Not Evaluated", which reads like a failure
beside the passed inline checks. With no retention set no day can be past it, so each sync
run records the check as passed and says why; with a retention set, the job judges it.
"""

from __future__ import annotations

from dagster import AssetCheckEvaluation, AssetCheckSeverity, AssetKey, MetadataValue

from cg_assets.settings import PrivacySettings

RETENTION_CHECK = "pii_retention"
NOT_SET = (
    "CG_PII_RETENTION_DAYS is not set: personal values are kept for ever, so no day is "
    "past retention (nothing to judge)."
)


def nothing_to_judge(key: AssetKey, settings: PrivacySettings) -> AssetCheckEvaluation | None:
    """A passed evaluation of the asset's retention check when no retention is set."""
    if settings.retention_days is not None:
        return None
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=RETENTION_CHECK,
        passed=True,
        severity=AssetCheckSeverity.ERROR,
        description=NOT_SET,
        metadata={
            "retention_days": MetadataValue.int(-1),
            "days_past_retention": MetadataValue.int(0),
            "days_with_clear_values": MetadataValue.json([]),
        },
    )
