"""What the answer window costs: API requests and seconds per day of operation.

    python benchmarks/window_cost.py [--invitations 1000] [--window 30] [--response-rate 0.3]

One simulated day of the product's own plan, against the bundled simulator over HTTP, for
a tenant sending N invitations a day, with the same plan_day the assets run:
- the hourly schedule: today and yesterday, 24 times (non-responses caught up from the
  cursor, fetched whole every 20 h; responses fetched whole, as their cursor may follow
  the CGID);
- the sensor: every settled day still inside the window fetched whole once (both tables).

Printed for CG_ANSWER_WINDOW_DAYS=0 (every day final at the 48 h settle, the behaviour
before the window) and for --window, with the difference: the window's extra requests
and seconds per day. Writes benchmarks/out/window_cost.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.defs.assets import sync_options
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import LoadSettings
from cg_assets.sync import StoredState, plan_day, sync_day
from cg_simulator import SimulatorControl, running_simulator
from cg_simulator.server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

OUT = Path(__file__).resolve().parent / "out" / "window_cost.json"
UTC = dt.timezone.utc


def simulate_day(
    url: str, token_url: str, settings: LoadSettings, today: dt.date, lake_root: Path
) -> dict[str, Any]:
    """Load every day once (not counted), then one day of operation (counted)."""
    resource = CustomerGaugeResource(
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        api_url=url,
        auth_url=token_url,
    )
    lake = ParquetLake(str(lake_root))
    days = [
        settings.start_date + dt.timedelta(days=n)
        for n in range((today - settings.start_date).days + 1)
    ]
    morning = dt.datetime.combine(today, dt.time(0, 5), tzinfo=UTC)
    stored: dict[tuple[str, dt.date], StoredState] = {}

    def sync(client: Any, endpoint: Any, day: dt.date, now: dt.datetime) -> int:
        options = sync_options(endpoint, settings)
        plan = plan_day(
            day,
            now=now,
            options=options,
            full_refresh=False,
            stored=stored.get((endpoint.name, day)),
            file_state=lake.day_state(endpoint.name, day),
        )
        if not plan.fetches:
            return 0
        result = sync_day(client, lake, endpoint, day, plan, options)
        stored[(endpoint.name, day)] = StoredState(
            result.cursor, options.date_field, options.timezone, plan.settled_after, plan.final
        )
        return result.stats.requests

    with resource.get_client() as client:
        # The lake as it stands the evening before: every day synced as the product would
        # have left it (a whole fetch a day for open days, closed ones final).
        for day in days:
            for endpoint in ENDPOINTS:
                sync(client, endpoint, day, morning - dt.timedelta(hours=23))
        requests = 0
        started = time.perf_counter()
        for hour in range(24):
            now = morning + dt.timedelta(hours=hour)
            for day in (today - dt.timedelta(days=1), today):
                for endpoint in ENDPOINTS:
                    requests += sync(client, endpoint, day, now)
        # The sensor's pass at noon: the plan fetches open days whole, skips closed ones.
        sensor_now = morning + dt.timedelta(hours=12)
        for day in days[:-2]:
            for endpoint in ENDPOINTS:
                requests += sync(client, endpoint, day, sensor_now)
        seconds = time.perf_counter() - started
    return {"requests_per_day": requests, "seconds_per_day": round(seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invitations", type=int, default=1000, help="sent per day")
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--response-rate", type=float, default=0.3)
    args = parser.parse_args(argv)
    today = dt.date(2026, 11, 30)
    start = today - dt.timedelta(days=args.window + 3)
    days = (today - start).days + 1
    results: dict[str, Any] = {
        "invitations_per_day": args.invitations,
        "response_rate": args.response_rate,
    }
    for window in (0, args.window):
        settings = LoadSettings(start_date=start, answer_window_days=window)
        with (
            running_simulator(
                records=args.invitations * days,
                start=start,
                end=today,
                seed=3,
                respond_share=args.response_rate,
                responses_order="cgid",
            ) as sim,
            SimulatorControl(sim.url),
            tempfile.TemporaryDirectory() as tmp,
        ):
            results[f"window_{window}"] = simulate_day(
                sim.url, sim.token_url, settings, today, Path(tmp)
            )
        print(f"CG_ANSWER_WINDOW_DAYS={window}: {results[f'window_{window}']}", flush=True)
    extra = (
        results[f"window_{args.window}"]["requests_per_day"]
        - results["window_0"]["requests_per_day"]
    )
    results["extra_requests_per_day"] = extra
    print(
        f"{args.invitations} invitations a day, response rate {args.response_rate:.0%}: the "
        f"{args.window}-day window costs {extra} more requests a day"
    )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
