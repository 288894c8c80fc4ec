"""Sum a py-spy raw profile of the `ours` contender into the stages of the sync path.

    py-spy record --format raw --threads -r 200 -o ours.txt -- \\
        python benchmarks/contenders.py ours --api-url URL --out /tmp/lake --result /tmp/r.json
    python benchmarks/spy_summary.py ours.txt

py-spy samples every thread, also while it runs C code without the GIL (Arrow's JSON
reader, Parquet encoding), so the shares add up to thread time, not wall time.
"""

from __future__ import annotations

import collections
import sys

# Each sample goes to the innermost frame that names a stage.
STAGES = (
    ("imports", "_find_and_load"),
    ("fetch: orjson decode (as the floor)", "decode_json_body"),
    ("fetch: read the body", "_read_body"),
    ("fetch: send the request, headers", "Session.request"),
    ("fetch: paging, token, retries", "iter_pages"),
    ("decode: Arrow JSON reader (no GIL)", "_decode_json"),
    ("decode: assemble columns", "_assemble"),
    ("decode: dict -> Arrow fallback", "_decode_fast"),
    ("decode: exact fallback", "_decode_exact"),
    ("decode: dates", "_dates_fast"),
    ("decode: other", "RecordDecoder.decode"),
    ("in-day filter", "_keep_in_day"),
    ("parquet: encode + write row group", "write_table"),
    ("parquet: commit, fsync, rename", "DayWriter.commit"),
    ("status counts, preview", "_Output.observe"),
    ("prefetch queue", "prefetch"),
    ("run_full: dedupe loop", "run_full"),
    ("page release, generator", "_batches"),
    ("read previous day file", "read_day"),
)


def main(path: str) -> int:
    totals: collections.Counter[tuple[str, str]] = collections.Counter()
    all_samples = 0
    for line in open(path):
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        thread = "fetch thread" if "cg-prefetch" in stack else "main thread"
        stage = "other"
        for frame in reversed(stack.split(";")):
            found = next((name for name, key in STAGES if key in frame), None)
            if found:
                stage = found
                break
        totals[(thread, stage)] += samples
        all_samples += samples
    print(f"{'thread':<13} {'stage':<40} {'samples':>8} {'share':>6}")
    for (thread, stage), samples in totals.most_common():
        print(f"{thread:<13} {stage:<40} {samples:>8} {samples / all_samples:>6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
