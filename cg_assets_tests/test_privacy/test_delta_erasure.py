"""Erasure and retention on a Delta lake: one commit per rewritten day, then vacuum, so an
erased contact is gone from the table's history too (time travel ends at the erasure)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.resources import LakeResource
from cg_assets.privacy.resource import PrivacyResource
from cg_assets_tests.test_privacy.helpers import (
    KEY_A,
    contains_identifier,
    erase_job_result,
    retention_job_result,
    sync,
    truth_by_key,
)
from cg_assets_tests.test_privacy.test_erasure import (
    DAYS,
    FIRST,
    LAST,
    everything_under,
    pick_victims,
    write_identifiers,
)

TABLE = NON_RESPONSES.name


def delta_resource(root: Path, **privacy: object) -> LakeResource:
    return LakeResource(root=str(root), table_format="delta", privacy=PrivacyResource(**privacy))


def table_uri(lake_root: Path) -> str:
    return str(lake_root / "customergauge" / TABLE)


def keys_by_day(lake_root: Path) -> dict[dt.date, set[int]]:
    frame = pl.read_delta(table_uri(lake_root)).select("date", "number_customergauge")
    out: dict[dt.date, set[int]] = {}
    for day, key in frame.iter_rows():
        out.setdefault(day, set()).add(key)
    return out


def test_erasure_rewrites_each_day_in_one_commit_then_vacuums(
    instance, cg_resource, control, tmp_path
):
    lake_root = tmp_path / "lake"
    resources = {"customergauge": cg_resource, "lake": delta_resource(lake_root, key=KEY_A)}
    sync(instance, resources, FIRST, LAST)
    control.add_records(FIRST, 2)
    sync(instance, resources, FIRST, LAST)  # a catch-up: older versions of the days exist
    before = DeltaTable(table_uri(lake_root)).version()
    truth = truth_by_key(control, FIRST, LAST)
    identifiers, covered = pick_victims(truth)
    requests = write_identifiers(tmp_path, identifiers)

    assert erase_job_result(instance, resources, requests).success

    for day, keys in keys_by_day(lake_root).items():
        in_truth = {k for k, r in truth.items() if r["date_sent"].startswith(day.isoformat())}
        assert keys == in_truth - covered, day
    table = DeltaTable(table_uri(lake_root))
    writes = [c for c in table.history() if c["version"] > before and c["operation"] == "WRITE"]
    assert sorted(c["cg_assets.day"] for c in writes) == [d.isoformat() for d in DAYS]
    # Vacuumed: no file left in the lake, live or replaced, holds an erased contact...
    stored = everything_under(lake_root)
    normalised = [identifiers[0].strip().lower(), identifiers[1].strip(), identifiers[2].lower()]
    for identifier in normalised:
        assert not contains_identifier(stored, identifier), "an erased identifier is stored"
    # ...so time travel to before the erasure ends there.
    with pytest.raises(Exception):  # noqa: B017 (delta-rs raises its own error types)
        old = DeltaTable(table_uri(lake_root), version=before)
        old.to_pyarrow_table()


def test_retention_rewrites_past_days_then_vacuums(instance, cg_resource, control, tmp_path):
    lake_root = tmp_path / "lake"
    clear = {"customergauge": cg_resource, "lake": delta_resource(lake_root, key=KEY_A)}
    sync(instance, clear, FIRST, LAST)
    emails = set(pl.read_delta(table_uri(lake_root))["email"].drop_nulls().to_list())
    assert emails
    kept = {
        "customergauge": cg_resource,
        "lake": delta_resource(lake_root, mode="drop", retention_days=1),
    }
    assert retention_job_result(instance, kept).success
    frame = pl.read_delta(table_uri(lake_root))
    assert frame["email"].drop_nulls().len() == 0
    assert set(frame["date"].unique().to_list()) == set(DAYS)
    stored = everything_under(lake_root)
    assert not any(e in stored for e in emails), "a clear e-mail is left in a replaced file"
