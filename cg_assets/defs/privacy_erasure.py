"""The erasure job: `customergauge_erase_contacts`, one op, `erase_contacts`.

Its only config is the path of a text file of identifiers, so the identifiers never enter
the run config; the op hashes them as it reads them, and logs, metadata and the audit
entry carry counts and keyed hashes only (see cg_assets/privacy/erasure.py).
"""

import datetime as dt

from dagster import (
    AssetObservation,
    Config,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    job,
    op,
)
from pydantic import Field

from cg_assets.customergauge.endpoints import Endpoint
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.privacy.erasure import erase, read_identifiers
from cg_assets.privacy.resource import PrivacyResource

ERASURE_JOB_SUFFIX = "erase_contacts"
ERASURE_JOB = DEFAULT_TENANT.name(ERASURE_JOB_SUFFIX)


class EraseContactsConfig(Config):
    identifiers_file: str = Field(
        description="Path, where the run executes, of a UTF-8 text file with one e-mail address "
        "or number_customer a line, or a CSV file with an email and/or number_customer column "
        "(docs/privacy.md). Never put the identifiers themselves in run config."
    )
    dry_run: bool = Field(
        default=False,
        description="Only count: how many identifiers and rows match, per kind. Nothing is "
        "listed, rewritten or audited.",
    )


def build_erasure_job(
    endpoints: tuple[Endpoint, ...], tenant: Tenant = DEFAULT_TENANT
) -> JobDefinition:
    @op(
        name=tenant.op_name("erase_contacts"),
        pool=tenant.pool,
        required_resource_keys={tenant.lake_resource_key},
        description="Remove the listed contacts from every day file of every table and add "
        "them (keyed hashes) to the suppression list.",
    )
    def erase_contacts(context: OpExecutionContext, config: EraseContactsConfig) -> Output[None]:
        lake: LakeResource = getattr(context.resources, tenant.lake_resource_key)
        parquet_lake = lake.get_lake()
        keyring = (lake.privacy or PrivacyResource()).keyring()
        identifiers = read_identifiers(config.identifiers_file, keyring)
        by_key = {e.name: asset_key_for(e, tenant) for e in endpoints}
        verb = "Counting (dry run)" if config.dry_run else "Erasing"
        context.log.info(f"{verb} {len(identifiers)} identifier(s) from {len(endpoints)} table(s).")

        def observed(table: str, day: dt.date, removed: int) -> None:
            context.log_event(
                AssetObservation(
                    asset_key=by_key[table],
                    partition=day.isoformat(),
                    metadata={"erased_rows": removed},
                )
            )

        report = erase(
            parquet_lake,
            endpoints,
            keyring,
            identifiers,
            holder=f"run {context.run_id} erase_contacts",
            on_day=observed,
            dry_run=config.dry_run,
        )
        for kind, counts in report.by_kind.items():
            if counts["given"]:
                context.log.info(
                    f"{kind}: {counts['given']} given, {counts['matched']} matched "
                    f"{counts['rows']} row(s), {counts['unmatched']} matched nothing "
                    f"({counts['already_listed']} already on the suppression list)."
                )
        if report.unmatched:
            context.log.warning(
                f"{report.unmatched} identifier(s) matched no row in the lake: not in it (yet), "
                "erased before, or mistyped. They are on the suppression list all the same."
                if not config.dry_run
                else f"{report.unmatched} identifier(s) match no row in the lake."
            )
        if config.dry_run:
            context.log.info(
                f"Dry run {report.erasure_id}: {report.total_rows_removed} row(s) in "
                f"{sum(len(d) for d in report.rows_removed.values())} day file(s) of "
                f"{report.days_scanned} scanned would be removed; nothing was written."
            )
        else:
            context.log.info(
                f"Erasure {report.erasure_id}: {report.total_rows_removed} row(s) removed from "
                f"{sum(len(d) for d in report.rows_removed.values())} day file(s) of "
                f"{report.days_scanned} scanned; audit entry {report.audit_file}."
            )
        return Output(
            None,
            metadata={
                "erasure_id": MetadataValue.text(report.erasure_id),
                "dry_run": MetadataValue.bool(report.dry_run),
                "by_kind": MetadataValue.json(report.by_kind),
                "unmatched": MetadataValue.int(report.unmatched),
                "identifiers": MetadataValue.int(report.identifiers),
                "identifiers_by_kind": MetadataValue.json(report.identifiers_by_kind),
                "hashed_identifiers": MetadataValue.json(report.hashed_identifiers),
                "rows_removed": MetadataValue.json(report.rows_removed),
                "total_rows_removed": MetadataValue.int(report.total_rows_removed),
                "days_scanned": MetadataValue.int(report.days_scanned),
                "contacts_only_under_previous_keys": MetadataValue.int(
                    report.contacts_only_under_previous_keys
                ),
                "audit_file": MetadataValue.path(report.audit_file or ""),
            },
        )

    @job(
        name=tenant.name(ERASURE_JOB_SUFFIX),
        description="Right to erasure: remove contacts listed in a file from the whole lake, "
        "and keep every later sync from writing them again.",
    )
    def _erasure_job() -> None:
        erase_contacts()

    return _erasure_job
