"""Shared by the reliability tests: run the asset, read the lake and the instance back, and
compare what is on disk with an expected model built from the simulator's truth."""

from __future__ import annotations

import datetime as dt
import glob
import os
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from dagster import AssetRecordsFilter, DagsterInstance, serialize_value

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets.lake.parquet_lake import KV_CURSOR, KV_DAY
from cg_assets.lake.schema import RecordDecoder
from cg_assets.settings import LoadSettings
from cg_assets_tests.truth import day_file, expected_row, metadata_values
from cg_simulator import SimulatorControl

KEY = asset_key_for(NON_RESPONSES)
OP = "customergauge__non_responses"
TABLE = NON_RESPONSES.name
ID = NON_RESPONSES.key
DECLARED_SCHEMA = RecordDecoder(NON_RESPONSES.columns).schema

Rows = dict[int, dict[str, Any]]


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def run_asset(
    instance: DagsterInstance,
    resources: dict[str, Any],
    settings: LoadSettings,
    first: dt.date,
    last: dt.date | None = None,
    *,
    full_refresh: bool = False,
) -> Any:
    """Materialize one day, or the range first..last as one single-run backfill."""
    from cg_assets_tests.test_privacy.helpers import sync

    return sync(
        instance,
        resources,
        first,
        last,
        settings=settings,
        full_refresh=full_refresh,
        raise_on_error=False,
    )


def failure_text(result: Any) -> str:
    """Every message of the step's error chain (the error, its causes and contexts), or of
    the run's when it failed before the step (a resource's setup validates the settings)."""
    failure = result.failure_data_for_node(OP) or result.get_run_failure_event().event_specific_data
    assert failure is not None, "neither the step nor the run failed"
    parts, error = [], failure.error
    while error is not None:
        parts.append(error.message)
        error = error.cause or error.context
    return "\n".join(parts)


# --- the instance ------------------------------------------------------------------------


def latest_record(instance: DagsterInstance, day: dt.date) -> Any | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=KEY, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return records[0] if records else None


def latest_metadata(instance: DagsterInstance, day: dt.date) -> dict[str, Any] | None:
    record = latest_record(instance, day)
    if record is None:
        return None
    return metadata_values(record.asset_materialization.metadata)


def storage_id(instance: DagsterInstance, day: dt.date) -> int | None:
    record = latest_record(instance, day)
    return record.storage_id if record is not None else None


# --- the lake ----------------------------------------------------------------------------


def footer(lake_root: Path, day: dt.date) -> dict[str, str]:
    kv = pq.read_metadata(day_file(lake_root, day)).metadata or {}
    return {k.decode(): v.decode() for k, v in kv.items()}


def file_cursor(lake_root: Path, day: dt.date) -> Any:
    import json

    return json.loads(footer(lake_root, day)[KV_CURSOR])


def file_bytes(lake_root: Path, day: dt.date) -> bytes | None:
    path = day_file(lake_root, day)
    return path.read_bytes() if path.exists() else None


def read_rows(path: Path | str) -> Rows:
    """A day file's rows by key; fails if a key appears twice or the schema is not declared."""
    table = pq.read_table(path)
    assert table.schema.equals(DECLARED_SCHEMA, check_metadata=False), f"{path}: schema differs"
    rows = table.to_pylist()
    keys = [r[ID] for r in rows]
    assert len(keys) == len(set(keys)), f"{path}: a record appears twice"
    return {r[ID]: r for r in rows}


def truth(control: SimulatorControl, day: dt.date, field: str = "date_sent") -> Rows:
    return {r[ID]: expected_row(r) for r in control.truth(field=field, start=day, end=day)}


def assert_file_equals(lake_root: Path, day: dt.date, expected: Rows | None, why: str = "") -> None:
    """The day's file holds exactly `expected`, field for field (None: no file)."""
    path = day_file(lake_root, day)
    if expected is None:
        assert not path.exists(), f"{day}: a file exists but none was expected {why}"
        return
    assert path.exists(), f"{day}: no file {why}"
    rows = read_rows(path)
    missing, extra = set(expected) - set(rows), set(rows) - set(expected)
    assert not missing and not extra, (
        f"{day} {why}: missing {sorted(missing)[:5]} ({len(missing)}), "
        f"unexpected {sorted(extra)[:5]} ({len(extra)})"
    )
    for key, want in expected.items():
        got = {k: rows[key][k] for k in want}
        assert got == want, f"{day} {why}: record {key} differs: {got} != {want}"
        assert rows[key]["synced_at"] is not None
    assert footer(lake_root, day)[KV_DAY] == day.isoformat()


def table_files(lake_root: Path) -> list[str]:
    """Every file (any name) under the table's folder."""
    out = []
    for folder, _, names in os.walk(lake_root / "customergauge" / TABLE):
        out.extend(os.path.join(folder, n) for n in names)
    return sorted(out)


def staging_files(lake_root: Path) -> list[str]:
    out = []
    for folder, _, names in os.walk(lake_root / "customergauge" / "_staging"):
        out.extend(os.path.join(folder, n) for n in names)
    return out


def assert_lake_tidy(lake_root: Path) -> None:
    """Only day files in the table, nothing left in staging after a finished run."""
    for path in table_files(lake_root):
        assert path.endswith("/data.parquet") and "/date=" in path, f"stray file {path}"
    assert staging_files(lake_root) == [], "a staging file outlived its run"


# --- a reader that scans the lake while it is being written ------------------------------


class LakeReader:
    """Scans the table over and over in a thread, as query engines would, while runs write it.

    Per file, with pyarrow, opening each file once: any unreadable or partial file, a schema
    other than the declared one, a file in the wrong folder or a record seen twice is a
    violation. Every few scans, the whole table with polars: a scan that answers must not
    show a record twice; a scan that fails loudly is kept apart in `engine_errors` (polars
    reads a file's footer and its data in separate opens, so a day replaced between the two
    can fail the query: see docs/guarantees.md)."""

    def __init__(self, lake_root: Path) -> None:
        self.table_dir = lake_root / "customergauge" / TABLE
        self.pattern = str(self.table_dir / "**" / "*.parquet")
        self.violations: list[str] = []
        self.engine_errors: list[str] = []
        self.scans = 0
        self.engine_scans = 0
        self.files_read = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lake-reader", daemon=True)

    def __enter__(self) -> LakeReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
            except BaseException as exc:  # a reader that dies silently proves nothing
                self.violations.append(f"the reader crashed: {type(exc).__name__}: {exc}")
                return
            self._stop.wait(0.02)

    def scan_once(self) -> None:
        self.scans += 1
        keys_seen: dict[int, str] = {}
        paths = glob.glob(self.pattern, recursive=True)
        for path in paths:
            try:
                with pq.ParquetFile(path) as parquet_file:  # one open: one version of the file
                    kv = {
                        k.decode(): v.decode()
                        for k, v in (parquet_file.metadata.metadata or {}).items()
                    }
                    table = parquet_file.read()
            except FileNotFoundError:
                self.violations.append(f"{path}: listed but gone (files are never deleted)")
                continue
            except BaseException as exc:
                self.violations.append(f"{path}: unreadable: {type(exc).__name__}: {exc}")
                continue
            self.files_read += 1
            if not table.schema.equals(DECLARED_SCHEMA, check_metadata=False):
                self.violations.append(f"{path}: schema differs from the declared one")
            folder_day = os.path.basename(os.path.dirname(path)).removeprefix("date=")
            if kv.get(KV_DAY) != folder_day:
                self.violations.append(f"{path}: footer day {kv.get(KV_DAY)!r} in the wrong folder")
            for key in table.column(ID).to_pylist():
                if key in keys_seen:
                    self.violations.append(f"{path}: record {key} also in {keys_seen[key]}")
                keys_seen[key] = path
        if self.scans % 10 == 0 and paths:
            self.scan_with_polars()

    def scan_with_polars(self) -> pl.DataFrame | None:
        self.engine_scans += 1
        try:
            frame = (
                pl.scan_parquet(self.pattern, hive_partitioning=True)
                .select(pl.col(ID), pl.col("date"))
                .collect()
            )
        except BaseException as exc:  # polars raises PanicException, a BaseException
            self.engine_errors.append(f"polars: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        if frame.height != frame[ID].n_unique():
            self.violations.append("a polars scan saw a record twice")
        return frame


def event_log(instance: DagsterInstance, run_id: str) -> str:
    """Every event of the run, serialized: what a secret or personal value must not be in."""
    return "\n".join(serialize_value(entry) for entry in instance.all_logs(run_id))


def personal_values(control: SimulatorControl, day: dt.date) -> list[str]:
    """The day's e-mail addresses, phones and last names, as the simulator holds them."""
    out = []
    for record in control.truth(field="date_sent", start=day, end=day):
        contact = record.get("contact") or {}
        out += [record.get("email"), record.get("phone"), contact.get("last_name")]
    return [v for v in out if isinstance(v, str) and len(v) > 4]
