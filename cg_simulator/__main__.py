"""Run the simulator: ``python -m cg_simulator --port 8765 --records 5000``.

Prints exactly one line, ``CustomerGauge simulator listening on http://HOST:PORT``, then
serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from types import FrameType
from zoneinfo import ZoneInfo

from cg_simulator.dataset import parse_day
from cg_simulator.server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimulatorServer


def _day(text: str) -> dt.date:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except Exception as exc:
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r}") from exc
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cg_simulator",
        description="A local CustomerGauge v7 sync API over seeded data.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--start", type=_day, help="first date_sent day (default today-13)")
    parser.add_argument("--end", type=_day, help="last date_sent day (default today)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    parser.add_argument(
        "--live-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="add one record for today every SECONDS (0: off)",
    )
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="keep the data and the live additions in FILE, so a restart serves the same records",
    )
    parser.add_argument(
        "--respond-share",
        type=float,
        default=0.0,
        help="share of the generated invitations that are already answered (responses), 0..1",
    )
    parser.add_argument(
        "--responses-order",
        choices=("answer", "cgid"),
        default="answer",
        help="the order the responses cursor follows: of answering, or the invitation's CGID",
    )
    parser.add_argument(
        "--timezone",
        type=_timezone,
        default="UTC",
        help="the simulated system's time zone (for 'today')",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    today = dt.datetime.now(ZoneInfo(args.timezone)).date()
    end = args.end or today
    start = args.start or end - dt.timedelta(days=13)
    if start > end:
        print("--start must not be after --end", file=sys.stderr)
        return 2
    server = SimulatorServer(
        host=args.host,
        port=args.port,
        records=args.records,
        start=start,
        end=end,
        seed=args.seed,
        client_id=args.client_id,
        client_secret=args.client_secret,
        latency_ms=args.latency_ms,
        live_every_seconds=args.live_every,
        timezone=args.timezone,
        journal=args.journal,
        respond_share=args.respond_share,
        responses_order=args.responses_order,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    print(f"CustomerGauge simulator listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
