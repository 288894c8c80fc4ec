"""One benchmark contender per invocation, run by bench.py as a child process.

    python benchmarks/contenders.py CONTENDER --api-url URL --start DAY --days N --out DIR --result FILE

Each contender times only its own work (imports and interpreter start-up excluded) and
writes a JSON result to --result; bench.py measures the process's peak RSS (wait4), the
requests the simulator served and the bytes under --out.

Contenders:
- floor: a bare loop of authenticated `requests` GETs + the JSON decoder cg_assets uses
  (orjson), per day with the period filter, up to and including each day's empty page;
  keeps nothing.
- ours: cg_assets' sync into a Parquet lake, per day `plan_day` + `sync_day`, as the asset
  body does (cg_assets/defs/assets.py), without Dagster; `--concurrency N` runs N days at
  once on one client (`run_days`), as CG_CONCURRENCY does.
- dlt: dlt's rest_api source into its filesystem destination as Parquet. Runs in the
  benchmark-only virtualenv (benchmarks/.venv-dlt), so it imports nothing from cg_assets.
- dagster-run: reads a finished `dagster asset materialize` run from DAGSTER_HOME (its step
  duration = the asset body, its materializations) for bench.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from typing import Any

# The simulator's demo credentials (cg_simulator.server); repeated here because the
# dlt environment cannot import cg_assets.
CLIENT_ID = "cg-demo-client"
CLIENT_SECRET = "cg-demo-secret-do-not-use"
TOKEN_PATH = "/oauth2/token"
PATH = "/v7/rest/sync/non-responses"
DATE_FIELD = "date_sent"
PER_PAGE = 1000
# The benchmark's days are weeks old; a settle lag of a year keeps them "not settled", so a
# sync of a day with a stored cursor is an incremental catch-up (cg_assets.sync.plan_day).
SETTLE_AFTER_HOURS = "8784"
ASSET_STEP_KEY = "customergauge__non_responses"


def _days(start: str, count: int) -> list[dt.date]:
    first = dt.date.fromisoformat(start)
    return [first + dt.timedelta(days=i) for i in range(count)]


# -- floor -------------------------------------------------------------------------------


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - cg_assets falls back the same way
        from json import loads

    started = time.perf_counter()
    session = requests.Session()
    token = session.post(
        args.api_url + TOKEN_PATH,
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=60,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    records = requests_made = 0
    for day in _days(args.start, args.days):
        cursor = None
        while True:
            params = [
                ("per_page", str(PER_PAGE)),
                ("with[]", "properties"),
                ("period[field]", DATE_FIELD),
                ("period[start]", day.isoformat()),
                ("period[end]", day.isoformat()),
            ]
            if cursor is not None:
                params.append(("cursor", str(cursor)))
            response = session.get(args.api_url + PATH, params=params, headers=headers, timeout=60)
            requests_made += 1
            response.raise_for_status()
            body = loads(response.content)
            data = body["data"]
            if not data:
                break
            records += len(data)
            cursor = body["cursor"]["next"]
    return {
        "seconds": time.perf_counter() - started,
        "records": records,
        "client_requests": requests_made,
    }


# -- ours --------------------------------------------------------------------------------


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    import cProfile
    import pstats

    from cg_assets.customergauge.client import CustomerGaugeClient
    from cg_assets.customergauge.endpoints import NON_RESPONSES
    from cg_assets.day_runner import run_days
    from cg_assets.lake.formats import open_lake
    from cg_assets.settings import ClientSettings, LoadSettings
    from cg_assets.sync import DayResult, StoredState, SyncOptions, plan_day, sync_day

    # As the CLI contender: days this old are not settled, so a first sync fetches each day
    # whole (run_full, the same path as a settle) and a second one catches up from cursors.
    settings = LoadSettings.from_env(
        {"CG_START_DATE": args.start, "CG_SETTLE_AFTER_HOURS": SETTLE_AFTER_HOURS}
    )
    options = SyncOptions(settings.date_field, settings.timezone, settings.settle_after_hours)
    if args.own_gates:
        # The counterfactual for the throttled benchmark: each day stream backs off on its
        # own (its own gate), as a client without the shared rate gate would.
        from cg_assets.customergauge.gate import RateGate

        shared_stream = CustomerGaugeClient.stream

        def stream_with_its_own_gate(self: CustomerGaugeClient) -> CustomerGaugeClient:
            view = shared_stream(self)
            view._retry.gate = RateGate()
            return view

        CustomerGaugeClient.stream = stream_with_its_own_gate  # type: ignore[method-assign]
    if args.table_format == "delta":
        import cg_assets.lake.delta_lake  # noqa: F401 (imports are not timed: deltalake's too)
    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profile:
        profile.enable()
    client = CustomerGaugeClient(
        ClientSettings(
            api_url=args.api_url, auth_url=args.api_url + TOKEN_PATH, concurrency=args.concurrency
        ),
        CLIENT_ID,
        CLIENT_SECRET,
    )
    lake = open_lake(args.out, args.table_format)
    lake.ensure_writable()
    rows = 0
    modes: dict[str, int] = {}
    stored: dict[dt.date, StoredState] = {}

    def sync_all(stored: dict[dt.date, StoredState]) -> tuple[list[DayResult], int]:
        """As the asset body: plan + sync per day, `--concurrency` days at once (run_days)."""
        results: list[DayResult] = []
        incremental = 0

        def work(day: dt.date) -> DayResult:
            plan = plan_day(
                day,
                now=dt.datetime.now(settings.tz),
                options=options,
                full_refresh=False,
                stored=stored.get(day),
                file_state=lake.day_state(NON_RESPONSES.name, day),
            )
            return sync_day(client, lake, NON_RESPONSES, day, plan, options)

        def on_result(day: dt.date, result: DayResult | None, error: BaseException | None) -> None:
            nonlocal incremental
            if error is not None:
                raise error
            assert result is not None
            results.append(result)
            incremental += not result.plan.full_fetch

        run_days(_days(args.start, args.days), work, args.concurrency, on_result)
        return results, incremental

    with client:
        results, _ = sync_all({})
        rows = sum(r.row_count for r in results)
        modes: dict[str, int] = {}
        for result in results:
            modes[result.plan.mode] = modes.get(result.plan.mode, 0) + 1
            stored[result.day] = StoredState(result.cursor, options.date_field, options.timezone)
        seconds = time.perf_counter() - started
        if profile:
            profile.disable()
            with open(args.profile, "w") as handle:
                pstats.Stats(profile, stream=handle).sort_stats("cumulative").print_stats(45)
                pstats.Stats(profile, stream=handle).sort_stats("tottime").print_stats(30)
        out: dict[str, Any] = {
            "seconds": seconds,
            "records": rows,
            "client_requests": client.stats.requests,
            "retries": dict(client.stats.retries),
            "gate_pauses": client.gate.pauses,
            "concurrency": args.concurrency,
            "modes": modes,
        }
        if args.catch_up:
            # Nothing new on the server: each day catches up from the cursor just stored.
            before = client.stats.requests
            started = time.perf_counter()
            _, incremental = sync_all(stored)
            out["catch_up"] = {
                "seconds": time.perf_counter() - started,
                "requests": client.stats.requests - before,
                "partitions": args.days,
                "incremental": incremental,
            }
    return out


# -- dlt ---------------------------------------------------------------------------------


def run_dlt(args: argparse.Namespace) -> dict[str, Any]:
    # No network but the simulator: dlt's anonymous telemetry stays off.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("DLT_DATA_DIR", os.path.join(args.out, "_dlt_home"))
    import dlt
    from dlt.sources.rest_api import rest_api_source

    days = [d.isoformat() for d in _days(args.start, args.days)]

    # The days to sync, as a parent resource: one paginated request sequence per day,
    # in order, each ending on its empty page. Not loaded itself (selected=False).
    @dlt.resource(name="days", selected=False)
    def day_list() -> Any:
        yield [{"day": d} for d in days]

    source = rest_api_source(
        {
            "client": {
                "base_url": args.api_url,
                "auth": {
                    "type": "oauth2_client_credentials",
                    "access_token_url": args.api_url + TOKEN_PATH,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                },
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "cursor.next",
                    "cursor_param": "cursor",
                    "stop_after_empty_page": True,
                },
            },
            "resource_defaults": {"write_disposition": "append"},
            "resources": [
                day_list,
                {
                    "name": "non_responses",
                    "endpoint": {
                        "path": PATH,
                        "data_selector": "data",
                        "params": {
                            "per_page": PER_PAGE,
                            "with[]": "properties",
                            "period[field]": DATE_FIELD,
                            "period[start]": "{resources.days.day}",
                            "period[end]": "{resources.days.day}",
                        },
                    },
                },
            ],
        }
    )
    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="cg_bench",
        destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.abspath(args.out)),
        dataset_name="customergauge",
        pipelines_dir=os.path.join(args.out, "_pipelines"),
    )
    pipeline.run(source, loader_file_format="parquet")
    seconds = time.perf_counter() - started
    trace = pipeline.last_trace
    row_counts = dict(trace.last_normalize_info.row_counts)
    steps = {s.step: (s.finished_at - s.started_at).total_seconds() for s in trace.steps}
    return {
        "seconds": seconds,
        "records": row_counts.get("non_responses", 0),
        "row_counts": row_counts,
        "steps": steps,
        "dlt_version": dlt.__version__,
        "data_dirs": ["customergauge"],
    }


# -- a finished dagster run --------------------------------------------------------------


def run_dagster_run(args: argparse.Namespace) -> dict[str, Any]:
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    with DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return {"error": "no run"}
        run = runs[0]
        # The asset's step (the freshness check runs as a step of its own): from its
        # STEP_START to its first STEP_OUTPUT is the asset function's body (plan, sync and
        # the inline checks); Dagster then logs the materializations and check results.
        step_start = body_end = step_end = None
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key != ASSET_STEP_KEY:
                continue
            kind = event.event_type_value
            if kind == "STEP_START":
                step_start = entry.timestamp
            elif kind == "STEP_OUTPUT" and body_end is None:
                body_end = entry.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                step_end = entry.timestamp
        body_seconds = body_end - step_start if step_start and body_end else None
        step_seconds = step_end - step_start if step_start and step_end else None
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(["customergauge", "non_responses"])),
            limit=10_000,
        ).records
        sync_seconds = api_requests = rows = 0.0
        modes: dict[str, int] = {}
        fetches: dict[str, int] = {}
        for record in records:
            if record.run_id != run.run_id:
                continue
            md = record.asset_materialization.metadata  # type: ignore[union-attr]
            sync_seconds += md["sync_seconds"].value
            api_requests += md["api_requests"].value
            rows += md["dagster/row_count"].value
            mode = md["mode"].value
            modes[mode] = modes.get(mode, 0) + 1
            fetch = md["fetch"].value
            fetches[fetch] = fetches.get(fetch, 0) + 1
        run_stats = instance.get_run_stats(run.run_id)
        return {
            "status": run.status.value,
            "body_seconds": body_seconds,
            "step_seconds": step_seconds,
            "run_seconds": (run_stats.end_time or 0) - (run_stats.start_time or 0),
            "partitions": sum(modes.values()),
            "sync_seconds": sync_seconds,
            "api_requests": int(api_requests),
            "rows": int(rows),
            "modes": modes,
            "fetches": fetches,
        }


CONTENDERS = {
    "floor": run_floor,
    "ours": run_ours,
    "dlt": run_dlt,
    "dagster-run": run_dagster_run,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--api-url", default="")
    parser.add_argument("--start", default="2026-10-01")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--out", default="")
    parser.add_argument("--result", required=True)
    parser.add_argument("--profile", default="", help="ours: write a cProfile summary here")
    parser.add_argument(
        "--catch-up", action="store_true", help="ours: then catch every day up (nothing new)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="ours: days synced at once (CG_CONCURRENCY)"
    )
    parser.add_argument(
        "--table-format", default="parquet", help="ours: parquet or delta (CG_TABLE_FORMAT)"
    )
    parser.add_argument(
        "--own-gates",
        action="store_true",
        help="ours: a rate gate per day stream instead of the shared one (a counterfactual)",
    )
    args = parser.parse_args()
    result = CONTENDERS[args.contender](args)
    with open(args.result, "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
