"""One materialization of the non-responses asset in a process of its own, for the crash
tests: ``python _sync_worker.py`` with DAGSTER_HOME set (the instance is shared with the
test through that folder's SQLite files). It imports everything first, then reads its
spec, one JSON line, from stdin: the test starts the next worker while the current one
runs, so the start-up of Python and Dagster stays off the critical path.

The spec may ask the process to SIGKILL itself at a precise point, counted in this
process; the test also kills workers from outside at random moments:

- ``{"at": "write", "nth": n}``: right after the n-th row group reached the staging file
  (row groups are made tiny, so a day's file is written in many pieces).
- ``{"at": "before_publish", "nth": n}``: the n-th day's new file is complete in staging,
  not yet renamed into the table.
- ``{"at": "after_publish", "nth": n}``: the n-th day's file is published, and Dagster
  has not recorded its materialization (between the write and the metadata record).
- ``{"at": "after_materialization", "nth": n}``: right after Dagster stored the n-th
  materialization event of the run (the other days of a range are not recorded yet).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import time
from typing import Any

START_DATE = dt.date(2026, 10, 1)  # the first partition; the test's data starts there


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def counter(nth: int) -> Any:
    seen = {"n": 0}

    def hit() -> bool:
        seen["n"] += 1
        return seen["n"] == nth

    return hit


def install_kill_point(at: str, nth: int) -> None:
    import pyarrow.parquet as pq
    from dagster import DagsterInstance

    from cg_assets.lake import parquet_lake

    hit = counter(nth)
    if at == "write":
        parquet_lake.ROW_GROUP_ROWS = 8
        write_table = pq.ParquetWriter.write_table

        def write_then_die(self: Any, *args: Any, **kwargs: Any) -> None:
            write_table(self, *args, **kwargs)  # a row group, but no footer yet
            if hit():
                die()

        pq.ParquetWriter.write_table = write_then_die
    elif at in ("before_publish", "after_publish"):
        publish = parquet_lake.DayWriter._publish

        def publish_and_die(self: Any) -> None:
            if at == "before_publish" and hit():
                die()
            publish(self)
            if at == "after_publish" and hit():
                die()

        parquet_lake.DayWriter._publish = publish_and_die
    elif at == "after_materialization":
        handle = DagsterInstance.handle_new_event

        def handle_and_die(self: Any, event: Any, **kwargs: Any) -> None:
            handle(self, event, **kwargs)
            dagster_event = event.dagster_event
            if (
                dagster_event is not None
                and dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                and hit()
            ):
                die()

        DagsterInstance.handle_new_event = handle_and_die
    else:
        raise SystemExit(f"unknown kill point {at!r}")


def main() -> int:
    from dagster import DagsterInstance, asset, materialize

    from cg_assets.customergauge.endpoints import NON_RESPONSES
    from cg_assets.customergauge.resource import CustomerGaugeResource
    from cg_assets.defs.assets import build_sync_asset
    from cg_assets.defs.io_managers import LAKE_IO_MANAGER_KEY, LakeFrameIOManager
    from cg_assets.defs.resources import LakeResource
    from cg_assets.settings import LoadSettings

    # Warm up before the spec arrives: open the shared instance, build both assets, and
    # run a trivial materialization so that Dagster's lazy imports are done.
    instance = DagsterInstance.get()  # DAGSTER_HOME: shared with the test
    assets = {
        settle: build_sync_asset(
            NON_RESPONSES,
            LoadSettings(
                start_date=START_DATE,
                settle_after_hours=0 if settle else 8784,
                answer_window_days=366,
            ),
        )
        for settle in (False, True)
    }

    @asset
    def warm_up() -> None:
        return None

    materialize([warm_up], instance=DagsterInstance.ephemeral())
    line = sys.stdin.readline()
    if not line.strip():
        instance.dispose()
        return 0  # not needed after all
    spec = json.loads(line)
    started = time.monotonic()
    if spec.get("kill"):
        install_kill_point(spec["kill"]["at"], spec["kill"]["nth"])
    resources = {
        "customergauge": CustomerGaugeResource(**spec["client"]),
        "lake": LakeResource(root=spec["lake_root"]),
        # the sync assets name its key, though they write no output through it
        LAKE_IO_MANAGER_KEY: LakeFrameIOManager(root=spec["lake_root"]),
    }
    first, last = spec["first"], spec["last"]
    with instance:
        result = materialize(
            [assets[spec["settle"]]],
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config={
                "ops": {"customergauge__non_responses": {"config": {"full_refresh": True}}}
            },
        )
    print(
        f"worker: success={result.success} after {time.monotonic() - started:.2f} s "
        f"at {time.time():.2f}",
        flush=True,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Everything is on disk (SQLite commits each event); skip the interpreter's slow
    # teardown of Dagster's threads and pools, which costs seconds per worker.
    os._exit(code)
