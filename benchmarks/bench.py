"""`make bench`: cg_assets against the raw API floor and dlt, on one simulator, side by side.

    python benchmarks/bench.py            # 100k records / 30 days, 0 and 50 ms, 3 runs each,
                                          # + concurrency 1/2/4/8 at 100 ms and a throttled run
    python benchmarks/bench.py --full     # and 1M records
    python benchmarks/bench.py --help

The simulator runs in its own process; each contender run is a child process (peak RSS
from wait4), timed on its own work; the simulator counts the requests it served. Run
order is round-robin (floor, ours, dagster CLI, dlt, then again), so load that drifts
during a run hits every contender alike. Medians of --runs runs are reported.

Writes a table to stdout and benchmarks/out/latest.txt, and every number to
benchmarks/out/bench-<time>.json and benchmarks/out/latest.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
CONTENDERS = BENCH_DIR / "contenders.py"
DLT_VENV = BENCH_DIR / ".venv-dlt"
DLT_REQUIREMENTS = BENCH_DIR / "requirements-dlt.txt"
OUT_DIR = BENCH_DIR / "out"
if str(ROOT) not in sys.path:  # run as a script: the work tree's cg_assets, as the children
    sys.path.insert(0, str(ROOT))

ASSET = "customergauge/non_responses"
SEED = 7
CHILD_TIMEOUT = 1800.0
SIM_START_TIMEOUT = 600.0

# Targets from the benchmark's issue: reported, never asserted.
TARGET_FLOOR_RATIO_0MS = 0.8
TARGET_FLOOR_RATIO_LATENCY = 0.95
TARGET_DLT_RATIO = 5.0
TARGET_RSS_GROWTH = 0.20
TARGET_RSS_1M_MB = 400.0
TARGET_CATCH_UP_REQUESTS_PER_PARTITION = 2
TARGET_CATCH_UP_BODY_SECONDS = 1.0
TARGET_CONCURRENCY_SPEEDUP = 3.0  # CG_CONCURRENCY=4 over the sequential floor, 100 ms, 8 days
CONCURRENCY_TARGET_LEVEL = 4


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(**extra: str) -> dict[str, str]:
    # No CG_* setting of the caller's shell reaches a contender: only the benchmark's own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CG_")}
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- processes ---------------------------------------------------------------------------


class Simulator:
    """`python -m cg_simulator` in its own process, so its CPU and memory are not a
    contender's."""

    def __init__(self, records: int, start: dt.date, end: dt.date, log_path: Path) -> None:
        self.log_handle = open(log_path, "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cg_simulator",
                "--port",
                "0",
                "--records",
                str(records),
                "--start",
                start.isoformat(),
                "--end",
                end.isoformat(),
                "--seed",
                str(SEED),
                "--latency-ms",
                "0",
            ],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=self.log_handle,
            text=True,
        )
        try:
            self.url = self._wait_for_url()
            from cg_simulator import SimulatorControl

            self.control = SimulatorControl(self.url, timeout=120)
        except BaseException:
            self.stop()
            raise

    def _wait_for_url(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + SIM_START_TIMEOUT
        prefix = "CustomerGauge simulator listening on "
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
                if not line and self.proc.poll() is not None:
                    break
        self.stop()
        raise RuntimeError("the simulator did not start (see its log in benchmarks/out/)")

    def configure_latency(self, latency_ms: float) -> None:
        self.control.configure(latency_ms=latency_ms)

    def stats(self) -> dict[str, Any]:
        stats = self.control.stats()
        out = {k: stats[k] for k in ("api_requests", "token_requests", "records_served")}
        out["throttled"] = stats["status_counts"].get("429", 0)
        return out

    def stop(self) -> None:
        if self.log_handle.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_handle.close()


def run_child(cmd: list[str], env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """Run one child to completion: its exit code, wall seconds and peak RSS (wait4)."""
    with open(log_path, "w") as log_handle:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_handle, stderr=log_handle)
        timer = threading.Timer(CHILD_TIMEOUT, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": proc.returncode,
        "process_seconds": wall,
        # Linux: KiB; the largest process of the child's tree (waited-for descendants too).
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def tree_bytes(path: Path, skip: tuple[str, ...] = ()) -> int:
    total = 0
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            total += os.path.getsize(os.path.join(folder, name))
    return total


# -- the dlt environment -----------------------------------------------------------------


def dlt_python(install: bool) -> Path | None:
    """benchmarks/.venv-dlt/bin/python, created from requirements-dlt.txt on first use."""
    python = DLT_VENV / "bin" / "python"
    stamp = DLT_VENV / ".requirements"
    wanted = DLT_REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not install:
        return None
    log(f"creating the dlt environment {DLT_VENV.relative_to(ROOT)} (once)")
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        subprocess.run([base, "-m", "venv", "--clear", str(DLT_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(DLT_REQUIREMENTS),
            ],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        log(f"could not create the dlt environment ({exc}); dlt is skipped")
        return None
    stamp.write_text(wanted)
    (DLT_VENV / ".gitignore").write_text("*\n")  # git and ruff skip it (as venv does on 3.13)
    return python


# -- one benchmark -----------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.start = dt.date.fromisoformat(args.start)
        self.end = self.start + dt.timedelta(days=args.days - 1)
        self.work = Path(tempfile.mkdtemp(prefix="cg-bench-"))
        self.logs = OUT_DIR / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.dlt = None if "dlt" not in args.contenders else dlt_python(install=True)
        self.results: dict[str, Any] = {"sizes": {}, "ours_concurrency": args.ours_concurrency}
        self.sim: Simulator | None = None
        self.kept_cli: tuple[Path, Path] | None = None  # (DAGSTER_HOME, lake) for catch-up

    # -- contenders ----------------------------------------------------------------------

    def _contender_cmd(
        self, python: str, name: str, out: Path, result: Path, days: int | None = None
    ) -> list[str]:
        assert self.sim is not None
        return [
            python,
            str(CONTENDERS),
            name,
            "--api-url",
            self.sim.url,
            "--start",
            self.start.isoformat(),
            "--days",
            str(days or self.args.days),
            "--out",
            str(out),
            "--result",
            str(result),
        ]

    def run_contender(
        self,
        name: str,
        tag: str,
        extra: list[str] = (),
        *,
        days: int | None = None,
        check: Callable[[Path], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """floor, ours or dlt: one child run, its own timing plus RSS, requests, bytes;
        `check(out)` looks at what it wrote before it is deleted."""
        assert self.sim is not None
        out = self.work / f"{tag}-out"
        result_path = self.work / f"{tag}.json"
        python = str(self.dlt) if name == "dlt" else sys.executable
        self.sim.control.reset_stats()
        proc = run_child(
            self._contender_cmd(python, name, out, result_path, days) + list(extra),
            child_env(),
            self.logs / f"{tag}.log",
        )
        served = self.sim.stats()
        if proc["exit_code"] != 0 or not result_path.exists():
            raise RuntimeError(
                f"{tag} failed (exit {proc['exit_code']}): see {self.logs}/{tag}.log"
            )
        result = json.loads(result_path.read_text())
        data_dir = out / "customergauge" if name == "dlt" else out
        written = tree_bytes(data_dir, skip=("_staging",)) if data_dir.exists() else 0
        checked = check(out) if check is not None else {}
        shutil.rmtree(out, ignore_errors=True)
        # ours --catch-up: the catch-up pass's requests are reported with the catch-up.
        catch_up_requests = result.get("catch_up", {}).get("requests", 0)
        row = {
            "seconds": result["seconds"],
            "records": result["records"],
            "records_per_s": result["records"] / result["seconds"],
            **proc,
            "api_requests": served["api_requests"] - catch_up_requests,
            "token_requests": served["token_requests"],
            "throttled": served["throttled"],
            "bytes_written": written,
            **checked,
            "detail": {k: v for k, v in result.items() if k not in ("seconds", "records")},
        }
        return row

    def _cli_env(self, home: Path, lake: Path) -> dict[str, str]:
        assert self.sim is not None
        return child_env(
            DAGSTER_HOME=str(home),
            CG_API_URL=self.sim.url,
            CG_AUTH_URL=self.sim.url + "/oauth2/token",
            CG_CLIENT_ID="cg-demo-client",
            CG_CLIENT_SECRET="cg-demo-secret-do-not-use",
            CG_START_DATE=self.start.isoformat(),
            CG_TIMEZONE="UTC",
            CG_DATE_FIELD="date_sent",
            # A year: the benchmark's days stay unsettled, so a second run catches up from
            # the stored cursors (the first fetches each day whole, as a settle would).
            CG_SETTLE_AFTER_HOURS="8784",
            CG_AUTOMATION="off",
            CG_LAKE_ROOT=str(lake),
        )

    def _cli_once(
        self, home: Path, lake: Path, first: dt.date, last: dt.date, tag: str, inspect: bool = True
    ) -> dict:
        assert self.sim is not None
        cmd = [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "cg_assets.definitions",
            "--select",
            ASSET,
            "--partition-range",
            f"{first.isoformat()}...{last.isoformat()}",
        ]
        env = self._cli_env(home, lake)
        self.sim.control.reset_stats()
        proc = run_child(cmd, env, self.logs / f"{tag}.log")
        served = self.sim.stats()
        if proc["exit_code"] != 0:
            raise RuntimeError(
                f"{tag} failed (exit {proc['exit_code']}): see {self.logs}/{tag}.log"
            )
        if not inspect:
            return {**proc, "served": served, "run": {}}
        result_path = self.work / f"{tag}-run.json"
        helper = run_child(
            [sys.executable, str(CONTENDERS), "dagster-run", "--result", str(result_path)],
            env,
            self.logs / f"{tag}-run.log",
        )
        run = json.loads(result_path.read_text()) if helper["exit_code"] == 0 else {}
        return {**proc, "served": served, "run": run}

    def run_cli(self, tag: str, keep: bool) -> dict[str, Any]:
        """`dagster asset materialize --partition-range` into a fresh instance and lake."""
        home = self.work / f"{tag}-home"
        lake = self.work / f"{tag}-lake"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        # The run's own account (body and step seconds) only for the run kept for the
        # catch-up: reading it back costs a Dagster start-up.
        once = self._cli_once(home, lake, self.start, self.end, tag, inspect=keep)
        run = once["run"]
        records = lake_rows(lake)
        row = {
            "seconds": once["process_seconds"],
            "records": records,
            "records_per_s": records / once["process_seconds"],
            "exit_code": once["exit_code"],
            "process_seconds": once["process_seconds"],
            "peak_rss_mb": once["peak_rss_mb"],
            "cpu_seconds": once["cpu_seconds"],
            "api_requests": once["served"]["api_requests"],
            "token_requests": once["served"]["token_requests"],
            "bytes_written": tree_bytes(lake, skip=("_staging",)),
            "detail": {
                "body_seconds": run.get("body_seconds"),
                "step_seconds": run.get("step_seconds"),
                "sync_seconds": run.get("sync_seconds"),
                "run_seconds": run.get("run_seconds"),
            },
        }
        if keep:
            self._drop_kept_cli()
            self.kept_cli = (home, lake)
        else:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(lake, ignore_errors=True)
        return row

    def _drop_kept_cli(self) -> None:
        if self.kept_cli is not None:
            for path in self.kept_cli:
                shutil.rmtree(path, ignore_errors=True)
            self.kept_cli = None

    def run_catch_up_cli(self, size_key: str) -> dict[str, Any]:
        """Catch-ups with nothing new, on the instance of the last full CLI run."""
        if self.kept_cli is None:
            return {}
        home, lake = self.kept_cli
        out: dict[str, Any] = {}
        hourly_first = max(self.start, self.end - dt.timedelta(days=1))
        scenarios = [("hourly_2_partitions", hourly_first)]
        if self.args.full:
            scenarios.append(("all_partitions", self.start))
        for label, first in scenarios:
            runs = []
            for i in range(self.args.runs):
                tag = f"{size_key}-catchup-{label}-{i + 1}"
                log(f"{tag}")
                once = self._cli_once(home, lake, first, self.end, tag)
                run = once["run"]
                partitions = run.get("partitions") or ((self.end - first).days + 1)
                runs.append(
                    {
                        "partitions": partitions,
                        "api_requests": once["served"]["api_requests"],
                        "token_requests": once["served"]["token_requests"],
                        "requests_per_partition": once["served"]["api_requests"] / partitions,
                        "body_seconds": run.get("body_seconds"),
                        "step_seconds": run.get("step_seconds"),
                        "sync_seconds": run.get("sync_seconds"),
                        "cli_seconds": once["process_seconds"],
                        "fetches": run.get("fetches"),
                        "peak_rss_mb": once["peak_rss_mb"],
                    }
                )
            out[label] = {"runs": runs, "median": medians(runs)}
        return out

    # -- concurrent day streams ----------------------------------------------------------

    def run_concurrency_table(self, size_key: str) -> dict[str, Any]:
        """The sequential floor and ours at each CG_CONCURRENCY level, on the first
        --concurrency-days days at --concurrency-latency ms a page, round-robin."""
        args = self.args
        assert self.sim is not None
        self.sim.configure_latency(args.concurrency_latency)
        names = ["floor", *[str(level) for level in args.concurrency_levels]]
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for i in range(args.runs):
            for name in names:
                tag = f"{size_key}-concurrency-{args.concurrency_latency:g}ms-{name}-{i + 1}"
                log(tag)
                if name == "floor":
                    row = self.run_contender("floor", tag, days=args.concurrency_days)
                else:
                    row = self.run_contender(
                        "ours", tag, ["--concurrency", name], days=args.concurrency_days
                    )
                rows[name].append(row)
        return {
            "size": size_key,
            "latency_ms": args.concurrency_latency,
            "days": args.concurrency_days,
            "rows": {name: {"runs": runs, "median": medians(runs)} for name, runs in rows.items()},
        }

    def run_throttled(self, size_key: str) -> dict[str, Any]:
        """The API throttles: a --throttle-seconds storm of 429s after every --throttle-every
        requests it answers, so the same days meet the same storms at any concurrency. Ours
        at concurrency 1 and 4, and 4 with a gate per stream (what a client without the
        shared gate would do), with and without Retry-After; the simulator counts the 429s,
        each lake is compared with the simulator's truth."""
        args = self.args
        assert self.sim is not None
        self.sim.configure_latency(args.concurrency_latency)
        days = args.concurrency_days
        many = str(CONCURRENCY_TARGET_LEVEL)
        variants = {
            "1": ["--concurrency", "1"],
            many: ["--concurrency", many],
            f"{many}-own-gates": ["--concurrency", many, "--own-gates"],
        }
        out: dict[str, Any] = {
            "size": size_key,
            "latency_ms": args.concurrency_latency,
            "days": days,
            "throttle_every_requests": args.throttle_every,
            "throttle_seconds": args.throttle_seconds,
            "storms": {},
        }
        try:
            for retry_after in (True, False):
                storm = "retry_after" if retry_after else "no_retry_after"
                rows: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
                for i in range(args.throttled_runs):
                    for name, extra in variants.items():
                        tag = f"{size_key}-throttled-{storm}-c{name}-{i + 1}"
                        log(tag)
                        # Set before every run: the storms count from its first request.
                        self.sim.control.configure(
                            throttle_every_requests=args.throttle_every,
                            throttle_seconds=args.throttle_seconds,
                            throttle_retry_after=retry_after,
                        )
                        rows[name].append(
                            self.run_contender(
                                "ours",
                                tag,
                                extra,
                                days=days,
                                check=lambda out: self._lake_vs_truth(out, days),
                            )
                        )
                out["storms"][storm] = {
                    name: {"runs": runs, "median": medians(runs)} for name, runs in rows.items()
                }
        finally:
            self.sim.control.configure(throttle_every_requests=None)
        return out

    def _lake_vs_truth(self, lake: Path, days: int) -> dict[str, Any]:
        """Every day's rows against the simulator's truth (cg_assets_tests/truth.py, a
        conversion written apart from the lake's)."""
        from cg_assets_tests.truth import assert_day_equals_truth

        assert self.sim is not None
        try:
            for offset in range(days):
                assert_day_equals_truth(lake, self.sim.control, self.start + dt.timedelta(offset))
        except (AssertionError, OSError) as exc:
            return {"lake_equals_truth": False, "lake_mismatch": str(exc)[:500]}
        return {"lake_equals_truth": True}

    # -- the whole run -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        args = self.args
        try:
            for records in args.records:
                self.run_size(records)
        finally:
            if self.sim is not None:
                self.sim.stop()
            shutil.rmtree(self.work, ignore_errors=True)
        return self.results

    def run_size(self, records: int) -> None:
        args = self.args
        size_key = f"{records // 1000}k" if records < 1_000_000 else f"{records / 1e6:g}M"
        log(f"{size_key}: starting the simulator ({records} records, {args.days} days)")
        self.sim = Simulator(records, self.start, self.end, self.logs / f"simulator-{size_key}.log")
        size: dict[str, Any] = {"records": records, "latencies": {}}
        self.results["sizes"][size_key] = size
        try:
            # The simulator serializes records lazily past its first 100k: one untimed pass
            # serializes them all, so no contender pays for it.
            log(f"{size_key}: warm-up pass (untimed)")
            self.run_contender("floor", f"{size_key}-warmup")
            self._drop_kept_cli()
            for latency in args.latencies:
                self.sim.configure_latency(latency)
                contenders = [
                    c
                    for c in MAIN_CONTENDERS
                    if c in args.contenders
                    and (latency == 0 or args.all_latencies or c in IN_PROCESS)
                    and not (c == "dlt" and self.dlt is None)
                ]
                # dlt takes minutes per run at 1M records: --dlt-runs-1m of them there.
                runs_of = {c: args.runs for c in contenders}
                if "dlt" in runs_of and records >= 1_000_000:
                    runs_of["dlt"] = min(args.runs, args.dlt_runs_1m)
                rows: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
                for i in range(args.runs):
                    for name in contenders:
                        if i >= runs_of[name]:
                            continue
                        tag = f"{size_key}-{latency:g}ms-{name}-{i + 1}"
                        log(tag)
                        if name == "cli":
                            keep = latency == 0 and i == args.runs - 1
                            rows[name].append(self.run_cli(tag, keep=keep))
                        elif name == "ours" and latency == 0:
                            # then a catch-up of every day with nothing new (untimed above)
                            rows[name].append(self.run_contender(name, tag, ["--catch-up"]))
                        elif name == OURS_CONCURRENT:
                            rows[name].append(
                                self.run_contender(
                                    "ours", tag, ["--concurrency", str(args.ours_concurrency)]
                                )
                            )
                        else:
                            rows[name].append(self.run_contender(name, tag))
                size["latencies"][f"{latency:g}"] = {
                    name: {"runs": runs, "median": medians(runs)} for name, runs in rows.items()
                }
            if args.concurrency_levels and "concurrency" not in self.results:
                self.results["concurrency"] = self.run_concurrency_table(size_key)
            if args.throttle_every and "throttled" not in self.results:
                self.results["throttled"] = self.run_throttled(size_key)
            self.sim.configure_latency(0)
            size["catch_up"] = {}
            if "cli" in args.contenders:
                size["catch_up"]["cli"] = self.run_catch_up_cli(size_key)
            ours_0ms = size["latencies"].get("0", {}).get("ours")
            if ours_0ms:
                runs = [r["detail"]["catch_up"] for r in ours_0ms["runs"]]
                size["catch_up"]["in_process"] = {"runs": runs, "median": medians(runs)}
            if args.profile and "ours" in args.contenders:
                path = OUT_DIR / f"profile-ours-{size_key}.txt"
                log(f"{size_key}: cProfile of ours -> {path.relative_to(ROOT)}")
                self.run_contender("ours", f"{size_key}-profile", ["--profile", str(path)])
        finally:
            self._drop_kept_cli()
            self.sim.stop()
            self.sim = None


def lake_rows(lake: Path) -> int:
    import pyarrow.parquet as pq

    return sum(
        pq.read_metadata(path).num_rows
        for path in (lake / "customergauge").glob("*/date=*/data.parquet")
    )


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(runs)}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = statistics.median(values)
            if key in ("records_per_s", "seconds"):
                out[f"{key}_min"] = min(values)
                out[f"{key}_max"] = max(values)
    return out


# -- the report --------------------------------------------------------------------------

OURS_CONCURRENT = "ours-concurrent"
MAIN_CONTENDERS = ("floor", "ours", OURS_CONCURRENT, "cli", "dlt")
IN_PROCESS = ("floor", "ours", OURS_CONCURRENT)  # run at every latency
LABELS = {
    "floor": "raw floor (requests+orjson)",
    "ours": "cg_assets sync (in-process)",
    OURS_CONCURRENT: "cg_assets CG_CONCURRENCY={n}",
    "cli": "cg_assets dagster CLI",
    "dlt": "dlt rest_api -> parquet",
}


def versions(results: dict[str, Any]) -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("dagster", "pyarrow", "requests", "orjson", "polars"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "-"
    for size in results["sizes"].values():
        for latency in size["latencies"].values():
            if "dlt" in latency:
                out["dlt"] = latency["dlt"]["runs"][0]["detail"].get("dlt_version", "?")
    out["cpus"] = str(os.cpu_count())
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    lines = []
    head = (
        f"{'records':>8} {'lat':>5}  {'contender':<28} {'n':>2} {'records/s':>10} {'wall s':>7} "
        f"{'(min-max)':>13} {'peak RSS MB':>11} {'API req':>8} {'bytes written':>14} "
        f"{'/floor':>7} {'ours/dlt':>8}"
    )
    lines += [head, "-" * len(head)]
    summary: dict[str, Any] = {}
    for size_key, size in results["sizes"].items():
        for latency, contenders in size["latencies"].items():
            floor = contenders.get("floor", {}).get("median", {}).get("records_per_s")
            ours = contenders.get("ours", {}).get("median", {}).get("records_per_s")
            dlt = contenders.get("dlt", {}).get("median", {}).get("records_per_s")
            summary[f"{size_key}@{latency}ms"] = {
                "ours_over_floor": ratio(ours, floor),
                "ours_over_dlt": ratio(ours, dlt),
                "cli_over_floor": ratio(
                    contenders.get("cli", {}).get("median", {}).get("records_per_s"), floor
                ),
                "ours_concurrent_over_floor": ratio(
                    contenders.get(OURS_CONCURRENT, {}).get("median", {}).get("records_per_s"),
                    floor,
                ),
            }
            for name in MAIN_CONTENDERS:
                if name not in contenders:
                    continue
                m = contenders[name]["median"]
                spread = f"{m['seconds_min']:.2f}-{m['seconds_max']:.2f}"
                label = LABELS[name].format(n=results.get("ours_concurrency", "N"))
                lines.append(
                    f"{size_key:>8} {latency + 'ms':>5}  {label:<28} {m['n']:>2} "
                    f"{m['records_per_s']:>10,.0f} {m['seconds']:>7.2f} {spread:>13} "
                    f"{m['peak_rss_mb']:>11.0f} {m['api_requests']:>8.0f} "
                    f"{m['bytes_written']:>14,.0f} "
                    f"{fmt(ratio(m['records_per_s'], floor), '.2f') if name != 'floor' else '':>7} "
                    f"{fmt(ratio(ours, dlt), '.1f') if name == 'ours' else '':>8}"
                )
        lines.append("")
    lines.append("catch-up with nothing new (medians):")
    for size_key, size in results["sizes"].items():
        for label, block in size.get("catch_up", {}).get("cli", {}).items():
            m = block["median"]
            lines.append(
                f"  {size_key:>5} dagster CLI, {m['partitions']:.0f} partitions ({label}): "
                f"{m['api_requests']:.0f} API requests "
                f"({m['requests_per_partition']:.1f}/partition), "
                f"asset body {fmt(m.get('body_seconds'), '.2f')} s "
                f"(of which sync_day {fmt(m.get('sync_seconds'), '.2f')} s; step "
                f"{fmt(m.get('step_seconds'), '.2f')} s), CLI wall {m['cli_seconds']:.1f} s"
            )
        block = size.get("catch_up", {}).get("in_process")
        if block:
            m = block["median"]
            lines.append(
                f"  {size_key:>5} in-process {m['partitions']:.0f} partitions: "
                f"{m['requests']:.0f} API requests, {m['seconds']:.2f} s (plan_day + sync_day)"
            )
    lines += concurrency_report(results, summary)
    summary["targets"] = targets(results, summary)
    lines.append("")
    lines.append("targets:")
    for item in summary["targets"]:
        lines.append(f"  [{item['status']:>4}] {item['target']}: {item['measured']}")
    return "\n".join(lines), summary


def concurrency_report(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """The CG_CONCURRENCY table and the throttled run; fills summary["concurrency"]."""
    lines: list[str] = []
    table = results.get("concurrency")
    if table:
        rows = table["rows"]
        floor = rows["floor"]["median"]
        lines += [
            "",
            f"CG_CONCURRENCY at {table['latency_ms']:g} ms a page, {table['days']} days of the "
            f"{table['size']} set (medians of {floor['n']}):",
            f"  {'contender':<30} {'records/s':>10} {'wall s':>7} {'(min-max)':>13} "
            f"{'peak RSS MB':>11} {'API req':>8} {'x floor':>8}",
        ]
        for name, block in rows.items():
            m = block["median"]
            label = "raw floor (sequential)" if name == "floor" else f"ours, concurrency {name}"
            speedup = ratio(m["records_per_s"], floor["records_per_s"])
            lines.append(
                f"  {label:<30} {m['records_per_s']:>10,.0f} {m['seconds']:>7.2f} "
                f"{m['seconds_min']:.2f}-{m['seconds_max']:.2f}".ljust(66)
                + f" {m['peak_rss_mb']:>11.0f} {m['api_requests']:>8.0f} "
                f"{fmt(speedup, '.2f') if name != 'floor' else '':>8}"
            )
            if name != "floor":
                summary.setdefault("concurrency", {})[name] = speedup
    throttled = results.get("throttled")
    if throttled:
        lines += [
            "",
            f"throttled: a {throttled['throttle_seconds']:g} s storm of 429s after every "
            f"{throttled['throttle_every_requests']} requests answered, "
            f"{throttled['latency_ms']:g} ms a page, {throttled['days']} days:",
        ]
        for storm, rows in throttled["storms"].items():
            lines.append(f"  {storm.replace('_', ' ')}:")
            for name, block in rows.items():
                runs = block["runs"]
                label = (
                    f"concurrency {name.split('-')[0]}, a gate per stream"
                    if "own" in name
                    else f"concurrency {name}, shared gate"
                )
                lines.append(
                    f"    {label:<34} 429s drawn per run {[r['throttled'] for r in runs]}, "
                    f"wall s {[round(r['seconds'], 2) for r in runs]}, lake equals the truth: "
                    f"{all(r.get('lake_equals_truth') for r in runs)}"
                )
    return lines


def targets(results: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, str]]:
    out = []

    def add(target: str, value: float | None, ok: bool | None, measured: str) -> None:
        status = "-" if value is None or ok is None else ("met" if ok else "MISS")
        out.append({"target": target, "measured": measured, "status": status})

    for key, s in summary.items():
        if "@" not in key:
            continue  # not a size@latency block
        size_key, latency = key.split("@")
        latency = latency.removesuffix("ms")
        r = s["ours_over_floor"]
        goal = TARGET_FLOOR_RATIO_0MS if latency == "0" else TARGET_FLOOR_RATIO_LATENCY
        add(
            f"ours >= {goal} x floor ({size_key}, {latency} ms)",
            r,
            None if r is None else r >= goal,
            fmt(r, ".2f"),
        )
        d = s["ours_over_dlt"]
        if d is not None:
            add(
                f"ours >= {TARGET_DLT_RATIO:g} x dlt ({size_key}, {latency} ms)",
                d,
                d >= TARGET_DLT_RATIO,
                fmt(d, ".1f"),
            )
    speedup = summary.get("concurrency", {}).get(str(CONCURRENCY_TARGET_LEVEL))
    table = results.get("concurrency")
    if table:
        add(
            f"ours at concurrency {CONCURRENCY_TARGET_LEVEL} >= {TARGET_CONCURRENCY_SPEEDUP:g} x "
            f"sequential floor ({table['latency_ms']:g} ms, {table['days']} days)",
            speedup,
            None if speedup is None else speedup >= TARGET_CONCURRENCY_SPEEDUP,
            fmt(speedup, ".2f"),
        )
    throttled = results.get("throttled")
    for storm, rows in (throttled or {}).get("storms", {}).items():
        one = [r["throttled"] for r in rows["1"]["runs"]]
        many = [r["throttled"] for r in rows[str(CONCURRENCY_TARGET_LEVEL)]["runs"]]
        equal = all(r.get("lake_equals_truth") for block in rows.values() for r in block["runs"])
        add(
            f"throttled ({storm.replace('_', ' ')}): concurrency {CONCURRENCY_TARGET_LEVEL} "
            "draws no more 429s than concurrency 1 (median), lakes equal the truth",
            max(many),
            statistics.median(many) <= statistics.median(one) and equal,
            f"429s {many} vs {one}; lakes equal the truth: {equal}",
        )
    sizes = results["sizes"]
    rss = {
        k: v["latencies"].get("0", {}).get("ours", {}).get("median", {}).get("peak_rss_mb")
        for k, v in sizes.items()
    }
    if rss.get("100k") and rss.get("1M"):
        growth = rss["1M"] / rss["100k"] - 1
        add(
            f"ours peak RSS growth 100k -> 1M < {TARGET_RSS_GROWTH:.0%}",
            growth,
            growth < TARGET_RSS_GROWTH,
            f"{rss['100k']:.0f} -> {rss['1M']:.0f} MB ({growth:+.0%})",
        )
    if rss.get("1M"):
        add(
            f"ours peak RSS at 1M < {TARGET_RSS_1M_MB:.0f} MB",
            rss["1M"],
            rss["1M"] < TARGET_RSS_1M_MB,
            f"{rss['1M']:.0f} MB",
        )
    for size_key, size in sizes.items():
        for label, block in size.get("catch_up", {}).get("cli", {}).items():
            if label != "hourly_2_partitions":
                continue  # the target is the hourly catch-up (today and yesterday)
            m = block["median"]
            per = m["requests_per_partition"]
            add(
                f"catch-up ({size_key}, {label}) <= {TARGET_CATCH_UP_REQUESTS_PER_PARTITION} "
                "requests/partition",
                per,
                per <= TARGET_CATCH_UP_REQUESTS_PER_PARTITION,
                f"{per:.1f}",
            )
            step = m.get("body_seconds")
            add(
                f"catch-up ({size_key}, {label}) asset body < {TARGET_CATCH_UP_BODY_SECONDS:g} s",
                step,
                None if step is None else step < TARGET_CATCH_UP_BODY_SECONDS,
                f"{fmt(step, '.2f')} s",
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="add the 1M-record size, and a catch-up of all 30 days (about 25 min more)",
    )
    parser.add_argument(
        "--report", metavar="JSON", help="only print the table of a saved run (benchmarks/out/)"
    )
    parser.add_argument(
        "--records",
        type=int,
        action="append",
        help="record counts to run (repeatable; default 100000, and 1000000 with --full)",
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", default="2026-10-01", help="first day (YYYY-MM-DD)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--latencies",
        type=float,
        nargs="+",
        default=[0.0, 50.0],
        help="simulated server latency per request, ms",
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=list(MAIN_CONTENDERS),
        choices=list(MAIN_CONTENDERS),
    )
    parser.add_argument(
        "--ours-concurrency",
        type=int,
        default=CONCURRENCY_TARGET_LEVEL,
        help=f"days at once of the {OURS_CONCURRENT} contender (CG_CONCURRENCY)",
    )
    parser.add_argument(
        "--concurrency-levels",
        type=int,
        nargs="*",
        default=[1, 2, 4, 8],
        help="the CG_CONCURRENCY table (none: skip it)",
    )
    parser.add_argument(
        "--concurrency-latency",
        type=float,
        default=100.0,
        help="ms a page for the concurrency table and the throttled run",
    )
    parser.add_argument(
        "--concurrency-days",
        type=int,
        default=8,
        help="days for the concurrency table and the throttled run",
    )
    parser.add_argument(
        "--throttle-every",
        type=int,
        default=10,
        help="throttled run: a storm of 429s after every N requests (0: skip the run)",
    )
    parser.add_argument(
        "--throttle-seconds", type=float, default=1.0, help="throttled run: storm length"
    )
    parser.add_argument(
        "--throttled-runs",
        type=int,
        default=1,
        help="runs of each throttled variant (default 1: its 429 counts vary little, and six "
        "variants of storms take a while)",
    )
    parser.add_argument(
        "--all-latencies",
        action="store_true",
        help="run dlt and the dagster CLI at every latency too (default: at 0 ms only, to "
        "stay within 10 minutes)",
    )
    parser.add_argument(
        "--dlt-runs-1m",
        type=int,
        default=1,
        help="runs of dlt at 1M records (default 1: about 10 minutes each on 2 cores)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also write a cProfile of ours to benchmarks/out/"
    )
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        table, _ = report(saved)
        print(saved["header"] + "\n" + table if "header" in saved else table)
        return 0
    if not args.records:
        args.records = [100_000] + ([1_000_000] if args.full else [])
    if "floor" not in args.contenders:
        args.contenders = ["floor", *args.contenders]  # the warm-up pass and the ratios
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = os.getloadavg()
    results = Bench(args).run()
    load_after = os.getloadavg()
    table, summary = report(results)
    results.update(
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(),
            "duration_s": time.time() - started,
            "load_before": load_before,
            "load_after": load_after,
            "versions": versions(results),
            "summary": summary,
            "settings": {
                "days": args.days,
                "start": args.start,
                "runs": args.runs,
                "latencies_ms": args.latencies,
                "per_page": 1000,
            },
        }
    )
    header = (
        f"cg_assets benchmark {results['started']} ({results['duration_s']:.0f} s), "
        f"{args.days} days from {args.start}, median of {args.runs} runs, "
        f"load {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} cores\n"
        + "versions: "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
        + "\n"
    )
    results["header"] = header
    text = header + "\n" + table + "\n"
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    (OUT_DIR / f"bench-{stamp}.json").write_text(json.dumps(results, indent=2))
    (OUT_DIR / "latest.json").write_text(json.dumps(results, indent=2))
    (OUT_DIR / "latest.txt").write_text(text)
    log(f"wrote {OUT_DIR.relative_to(ROOT)}/bench-{stamp}.json and latest.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
