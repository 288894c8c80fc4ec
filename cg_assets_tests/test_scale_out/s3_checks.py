"""What the S3 tests check, shared: day files against the simulator's truth, what a reader
listing the bucket sees, and a count of what reached the S3 server."""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest

from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets_tests.truth import assert_rows_equal_truth, metadata_values
from cg_simulator import SimulatorControl

TABLE = "non_responses"
DAY_KEY = re.compile(r"^lake/customergauge/non_responses/date=\d{4}-\d{2}-\d{2}/data\.parquet$")


def assert_lake_day_equals_truth(lake: ParquetLake, control: SimulatorControl, day: Any) -> int:
    """Record for record and field for field, read back through the lake's own filesystem."""
    table = lake.read_day(TABLE, day)
    assert table is not None, f"no file for {day}"
    return assert_rows_equal_truth(table.to_pylist(), control, day)


def check_reader_view(bucket: Any, prefix: str = "lake/customergauge/non_responses/") -> int:
    """List the table's prefix as any reader would and read every object in it: only day
    files, each a complete Parquet file, no record twice. Returns the rows seen."""
    rows = 0
    for key in bucket.keys(prefix):
        assert DAY_KEY.match(key), f"a reader listing the table sees {key!r}"
        body = bucket.get(key)
        table = pq.read_table(io.BytesIO(body))  # fails on a partial or truncated file
        ids = table.column("number_customergauge").to_pylist()
        assert len(ids) == len(set(ids)), f"{key}: a record twice"
        rows += len(ids)
    return rows


class S3Calls:
    """Counts the S3 operations the moto server performs, and can run a hook inside one
    (the server runs in this process, so its backend can be wrapped)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.s3.models import S3Backend

        self.counts: Counter[str] = Counter()
        self.keys: list[tuple[str, str]] = []
        self.hooks: dict[str, Callable[..., None]] = {}
        self._lock = threading.Lock()
        for name in (
            "put_object",
            "create_multipart_upload",
            "upload_part",
            "complete_multipart_upload",
        ):
            original = getattr(S3Backend, name)
            monkeypatch.setattr(S3Backend, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        calls = self

        def wrapper(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with calls._lock:
                calls.counts[name] += 1
                if name in ("put_object", "create_multipart_upload"):
                    calls.keys.append((name, kwargs.get("key_name") or args[1]))
            hook = calls.hooks.get(name)
            if hook is not None:
                hook(*args, **kwargs)
            return original(backend, *args, **kwargs)

        return wrapper

    @contextlib.contextmanager
    def hook(self, name: str, fn: Callable[..., None]) -> Iterator[None]:
        self.hooks[name] = fn
        try:
            yield
        finally:
            self.hooks.pop(name, None)


def materialize_days(
    instance: Any,
    resources: dict[str, Any],
    settings: Any,
    *,
    day: Any = None,
    range_: tuple[Any, Any] | None = None,
) -> Any:
    """One run of the non-responses asset for a day or a range (a single-run backfill)."""
    from dagster import materialize

    from cg_assets.customergauge.endpoints import NON_RESPONSES
    from cg_assets.defs.assets import build_sync_asset

    tags = {}
    if range_:
        tags = {
            "dagster/asset_partition_range_start": range_[0].isoformat(),
            "dagster/asset_partition_range_end": range_[1].isoformat(),
        }
    return materialize(
        [build_sync_asset(NON_RESPONSES, settings)],
        partition_key=None if range_ else day.isoformat(),
        tags=tags,
        instance=instance,
        resources=resources,
    )


def latest_metadata(instance: Any, day: Any) -> dict[str, Any]:
    """The day's latest materialization metadata, as the instance stores it."""
    from dagster import AssetRecordsFilter

    from cg_assets.customergauge.endpoints import NON_RESPONSES
    from cg_assets.defs.assets import asset_key_for

    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=asset_key_for(NON_RESPONSES), asset_partitions=[day.isoformat()]
        ),
        limit=1,
    ).records
    assert records, f"no materialization for {day}"
    return metadata_values(records[0].asset_materialization.metadata)
