"""Shared by the personal-data tests: run the sync asset and the privacy jobs on a real
instance, read every value of every file back, and the simulator's truth of who is who."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from dagster import AssetRecordsFilter, DagsterInstance, materialize

from cg_assets.customergauge.endpoints import NON_RESPONSES, Endpoint
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.privacy_erasure import build_erasure_job
from cg_assets.defs.privacy_retention import build_retention_job
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, with_lake_io_manager
from cg_simulator import SimulatorControl

# Test keys (never real ones): 64 characters each.
KEY_A = "test-key-A-5f0c2e9b7d4a1c3e8b6f0a2d4c6e8a0b2d4f6a8c0e2b4d6f"
KEY_B = "test-key-B-9e1d3c5b7a9f1e3d5c7b9a1f3e5d7c9b1a3f5e7d9c1b3a5f"
YOUNG = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0, answer_window_days=366)


def op_name(endpoint: Endpoint) -> str:
    return f"customergauge__{endpoint.name}"


def sync(
    instance: DagsterInstance,
    resources: dict[str, Any],
    first: dt.date,
    last: dt.date | None = None,
    *,
    settings: LoadSettings = YOUNG,
    full_refresh: bool = False,
    endpoint: Endpoint = NON_RESPONSES,
    raise_on_error: bool = True,
) -> Any:
    last = last or first
    tags: dict[str, str] = {}
    partition_key = None
    if first == last:
        partition_key = first.isoformat()
    else:
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
    return materialize(
        [build_sync_asset(endpoint, settings)],
        partition_key=partition_key,
        tags=tags,
        instance=instance,
        resources=with_lake_io_manager(resources),
        run_config={"ops": {op_name(endpoint): {"config": {"full_refresh": full_refresh}}}},
        raise_on_error=raise_on_error,
    )


def erase_job_result(
    instance: DagsterInstance,
    resources: dict[str, Any],
    identifiers_file: Path,
    endpoints: Sequence[Endpoint] = (NON_RESPONSES,),
    raise_on_error: bool = True,
    dry_run: bool = False,
) -> Any:
    job = build_erasure_job(tuple(endpoints))
    config: dict[str, Any] = {"identifiers_file": str(identifiers_file)}
    if dry_run:
        config["dry_run"] = True
    return job.execute_in_process(
        run_config={"ops": {"erase_contacts": {"config": config}}},
        instance=instance,
        resources=resources,
        raise_on_error=raise_on_error,
    )


def retention_job_result(
    instance: DagsterInstance,
    resources: dict[str, Any],
    settings: LoadSettings = YOUNG,
    endpoints: Sequence[Endpoint] = (NON_RESPONSES,),
) -> Any:
    return build_retention_job(tuple(endpoints), settings).execute_in_process(
        instance=instance, resources=resources
    )


def latest_metadata(
    instance: DagsterInstance, day: dt.date, endpoint: Endpoint = NON_RESPONSES
) -> dict[str, Any]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key_for(endpoint), asset_partitions=[day.isoformat()]),
        limit=1,
    ).records
    assert records, f"no materialization for {day}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def independent_hmac(key: str, text: str) -> str:
    """The hash docs/personal-data.md promises, computed without cg_assets' code."""
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def day_files(lake_root: Path) -> list[Path]:
    return sorted((lake_root / "customergauge").glob("*/date=*/data.parquet"))


def file_rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def footer(path: Path) -> dict[str, str]:
    meta = pq.read_metadata(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}


def string_leaves(value: Any) -> Iterator[str]:
    """Every string inside a value, at any depth; JSON text (extra_fields) is opened too."""
    if isinstance(value, dict):
        for item in value.values():
            yield from string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_leaves(item)
    elif isinstance(value, str):
        yield value
        if value.startswith("{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                return
            yield from string_leaves(parsed)
    elif value is not None:
        yield str(value)


def personal_values(record: dict[str, Any]) -> set[str]:
    """The contact's own personal values in a truth record, every spelling the simulator
    serves (with extra_personal_fields on: the upper-cased e-mail, the full name, the note)."""
    contact = record.get("contact") or {}
    first, last = contact.get("first_name"), contact.get("last_name")
    values = {first, last, record.get("email"), record.get("phone"), record.get("link")}
    if first and last:
        values.add(f"{first} {last}")
    if record.get("email"):
        values.add(record["email"].upper())
        values.add(f"Prefers e-mail: {record['email']}")
    values.update(v for k, v in record.items() if k in ("secondary_email", "notes"))
    return {v for v in values if v}


def truth_by_key(control: SimulatorControl, first: dt.date, last: dt.date) -> dict[int, dict]:
    return {r["number_customergauge"]: r for r in control.truth(start=first, end=last)}


def contains_identifier(text: str, identifier: str) -> bool:
    """Is an erasure identifier in `text`? An e-mail anywhere (any case); a number_customer
    as a whole token, since its digits also occur by chance inside hex hashes and ids."""
    identifier = identifier.strip().lower()
    if "@" in identifier:
        return identifier in text.lower()
    return re.search(rf"(?<![0-9a-z]){re.escape(identifier)}(?![0-9a-z])", text.lower()) is not None
