"""Peak memory and time of one whole fetch of a day under each hostile answer (issue 21).

    python benchmarks/hostile_memory.py [--records-per-day 1000]

Each case runs in a fresh process (its peak RSS is its own): one day fetched whole with the
product's own plan and sync_day, with the default limits, against the bundled simulator
serving the fault on the day's second page. A normal day is the baseline. Prints a table
and writes benchmarks/out/hostile_memory.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path(__file__).resolve().parent / "out" / "hostile_memory.json"
DAY = dt.date(2026, 11, 2)
PASS = {"kind": "slow", "seconds": 0}
CASES: dict[str, list[dict[str, Any]]] = {
    "normal day": [],
    "gzip bomb (1 GiB inflated)": [PASS, {"kind": "gzip_bomb", "size": 1 << 30}],
    "endless body": [PASS, {"kind": "huge_body", "size": 1 << 40}],
    "20,000 levels deep": [PASS, {"kind": "deep_nesting"}],
    "transient empty page": [PASS, {"kind": "empty_page"}],
}


def one_case(url: str, token_url: str, lake_root: str) -> dict[str, Any]:
    """In the child: fetch DAY whole; the outcome, seconds and this process's peak RSS."""
    from cg_assets.customergauge.endpoints import NON_RESPONSES
    from cg_assets.customergauge.resource import CustomerGaugeResource
    from cg_assets.defs.assets import sync_options
    from cg_assets.lake.parquet_lake import ParquetLake
    from cg_assets.settings import LoadSettings
    from cg_assets.sync import plan_day, sync_day
    from cg_simulator.server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    client_resource = CustomerGaugeResource(
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        api_url=url,
        auth_url=token_url,
        max_retries=1,
        backoff_seconds=0.01,
    )
    options = sync_options(NON_RESPONSES, LoadSettings(start_date=DAY, settle_after_hours=0))
    lake = ParquetLake(lake_root)
    plan = plan_day(
        DAY,
        now=dt.datetime(2026, 11, 10, tzinfo=dt.timezone.utc),
        options=options,
        full_refresh=True,
        stored=None,
        file_state=None,
    )
    started = time.perf_counter()
    outcome = "ok"
    with client_resource.get_client() as client:
        try:
            result = sync_day(client, lake, NON_RESPONSES, DAY, plan, options)
            outcome = f"ok, {result.row_count} rows"
        except Exception as exc:  # the figure is what matters: the case's outcome is shown
            outcome = f"failed: {type(exc).__name__}"
    return {
        "outcome": outcome,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records-per-day", type=int, default=1000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_case(*args.child)))
        return 0
    from cg_simulator import SimulatorControl, running_simulator

    results: dict[str, Any] = {}
    with (
        running_simulator(
            records=args.records_per_day * 3,
            start=DAY - dt.timedelta(days=1),
            end=DAY + dt.timedelta(days=1),
            seed=5,
        ) as sim,
        SimulatorControl(sim.url) as control,
    ):
        for name, faults in CASES.items():
            control.clear_faults()
            if faults:
                control.inject(*faults)
            with tempfile.TemporaryDirectory() as tmp:
                child = subprocess.run(
                    [sys.executable, __file__, "--child", sim.url, sim.token_url, tmp],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            results[name] = json.loads(child.stdout.strip().splitlines()[-1])
            figures = results[name]
            print(
                f"{name:28} {figures['outcome']:32} {figures['seconds']:6.2f} s "
                f"{figures['peak_rss_mb']:7.1f} MB peak RSS",
                flush=True,
            )
    normal = results["normal day"]["peak_rss_mb"]
    worst = max(r["peak_rss_mb"] for r in results.values())
    print(f"worst peak RSS / a normal day's: {worst / normal:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
