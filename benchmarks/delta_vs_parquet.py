"""CG_TABLE_FORMAT=delta against parquet, same data, same run (`make bench` runs it after bench.py).

    python benchmarks/delta_vs_parquet.py [--records 100000] [--days 30] [--repeats 3]
                                          [--commits 20000]

1. The sync: contenders.py `ours` into a Parquet lake and into a Delta lake, alternately,
   against one simulator process: records/s, peak RSS (wait4) and bytes written (the
   table folders, the Delta log included; staging and locks excluded). Medians of repeats.
2. Readers while a day is replaced again and again, for both formats
   (cg_assets_tests/test_lake/reader_stress.py): scans, errors and wrong counts per engine.
3. The log after many commits: a table given --commits one-day commits (checkpoints every
   100, as the lake writes them), then the time to open it (DeltaTable + the day index the
   lake builds), median of 5.

Writes benchmarks/out/delta_vs_parquet.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    CONTENDERS,
    OUT_DIR,
    Simulator,
    child_env,
    log,
    run_child,
    tree_bytes,
)

START = dt.date(2026, 10, 1)
TARGET_OVERHEAD = 0.15  # the issue: delta costs at most 15 % more than parquet


def sync_once(sim: Simulator, table_format: str, days: int, work: Path, tag: str) -> dict[str, Any]:
    out = work / f"{tag}-lake"
    result_path = work / f"{tag}.json"
    cmd = [
        sys.executable,
        str(CONTENDERS),
        "ours",
        "--api-url",
        sim.url,
        "--start",
        START.isoformat(),
        "--days",
        str(days),
        "--out",
        str(out),
        "--result",
        str(result_path),
        "--table-format",
        table_format,
    ]
    proc = run_child(cmd, child_env(), work / f"{tag}.log")
    if proc["exit_code"] != 0:
        raise RuntimeError(f"{tag} failed: see {work}/{tag}.log")
    result = json.loads(result_path.read_text())
    written = tree_bytes(out / "customergauge", skip=("_staging", "_locks"))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "records": result["records"],
        "seconds": result["seconds"],
        "records_per_s": result["records"] / result["seconds"],
        "peak_rss_mb": proc["peak_rss_mb"],
        "bytes_written": written,
    }


def sync_figures(records: int, days: int, repeats: int, work: Path) -> dict[str, Any]:
    end = START + dt.timedelta(days=days - 1)
    sim = Simulator(records, START, end, work / "simulator.log")
    runs: dict[str, list[dict[str, Any]]] = {"parquet": [], "delta": []}
    try:
        for i in range(repeats):
            for table_format in ("parquet", "delta") if i % 2 == 0 else ("delta", "parquet"):
                log(f"sync {table_format} #{i + 1}")
                runs[table_format].append(
                    sync_once(sim, table_format, days, work, f"{table_format}-{i}")
                )
    finally:
        sim.stop()
    out: dict[str, Any] = {}
    for table_format, rows in runs.items():
        out[table_format] = {
            key: statistics.median(r[key] for r in rows)
            for key in ("records", "records_per_s", "peak_rss_mb", "bytes_written")
        }
    out["overhead"] = out["parquet"]["records_per_s"] / out["delta"]["records_per_s"] - 1
    return out


def reader_figures(replacements: int) -> dict[str, Any]:
    from cg_assets_tests.test_lake.reader_stress import replace_while_reading

    out = {}
    for table_format in ("parquet", "delta"):
        log(f"readers during replacement: {table_format}")
        root = tempfile.mkdtemp(prefix=f"cg-stress-{table_format}-")
        try:
            out[table_format] = replace_while_reading(
                table_format, root, replacements=replacements
            ).as_json()
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return out


def log_figures(commits: int) -> dict[str, Any]:
    import pyarrow as pa

    from cg_assets.lake.delta_lake import DeltaLake
    from cg_assets.lake.parquet_lake import KV_CURSOR

    root = tempfile.mkdtemp(prefix="cg-delta-log-")
    schema = pa.schema([pa.field("k", pa.int64())])
    try:
        lake = DeltaLake(root)
        lake.ensure_writable()
        started = time.perf_counter()
        for i in range(commits):
            # Hourly catch-ups of a few months of days: the same days over and over.
            day = START + dt.timedelta(days=i % 365)
            with lake.day_writer("t", day, schema) as writer:
                writer.write(pa.table({"k": [i]}, schema=schema))
                writer.commit({KV_CURSOR: str(i)})
            if (i + 1) % 2000 == 0:
                log(f"log: {i + 1} commits")
        write_seconds = time.perf_counter() - started
        opens = []
        for _ in range(5):
            started = time.perf_counter()
            fresh = DeltaLake(root)
            state = fresh.day_state("t", START)
            opens.append(time.perf_counter() - started)
            assert state is not None
        log_dir = Path(root) / "customergauge" / "t" / "_delta_log"
        return {
            "commits": commits,
            "commits_per_s": commits / write_seconds,
            "open_and_day_state_ms_median": statistics.median(opens) * 1000,
            "log_files": sum(1 for _ in log_dir.iterdir()),
            "checkpoints": sum(1 for p in log_dir.iterdir() if ".checkpoint." in p.name),
            "version": fresh.delta_table("t").version(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(results: dict[str, Any]) -> str:
    lines = ["# Delta against Parquet (benchmarks/delta_vs_parquet.py)", ""]
    sync = results.get("sync")
    if sync:
        lines += [
            f"Sync of {sync['parquet']['records']:,} records, one process per run, medians:",
            "",
            "| format | records/s | peak RSS (MB) | bytes written |",
            "|---|---:|---:|---:|",
        ]
        for table_format in ("parquet", "delta"):
            row = sync[table_format]
            lines.append(
                f"| {table_format} | {row['records_per_s']:,.0f} | {row['peak_rss_mb']:.0f} | "
                f"{row['bytes_written']:,.0f} |"
            )
        verdict = "met" if sync["overhead"] <= TARGET_OVERHEAD else "missed"
        lines += [
            "",
            f"Delta costs {sync['overhead']:+.1%} time against parquet (target ≤ +15 %: {verdict}).",
            "",
        ]
    readers = results.get("readers")
    if readers:
        lines += [
            "Readers while one day is replaced again and again:",
            "",
            "| format | engine | scans | errors | wrong counts |",
            "|---|---|---:|---:|---:|",
        ]
        for table_format, row in readers.items():
            for engine in ("polars", "duckdb"):
                lines.append(
                    f"| {table_format} | {engine} | {row['scans'].get(engine, 0)} | "
                    f"{row['errors'].get(engine, 0)} | {row['wrong_counts'].get(engine, 0)} |"
                )
        lines.append("")
    log_result = results.get("log")
    if log_result:
        lines += [
            f"Log after {log_result['commits']:,} commits ({log_result['checkpoints']} checkpoints, "
            f"{log_result['log_files']} files in _delta_log): opening the table and reading a "
            f"day's state takes {log_result['open_and_day_state_ms_median']:.0f} ms (median of 5); "
            f"commits ran at {log_result['commits_per_s']:.0f}/s.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replacements", type=int, default=200)
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--skip", action="append", default=[], choices=["sync", "readers", "log"])
    args = parser.parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cg-delta-bench-"))
    results: dict[str, Any] = {}
    try:
        if "sync" not in args.skip:
            results["sync"] = sync_figures(args.records, args.days, args.repeats, work)
        if "readers" not in args.skip:
            results["readers"] = reader_figures(args.replacements)
        if "log" not in args.skip:
            results["log"] = log_figures(args.commits)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (OUT_DIR / "delta_vs_parquet.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    (OUT_DIR / "delta_vs_parquet.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
