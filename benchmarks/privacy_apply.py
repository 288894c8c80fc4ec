"""What the personal-data policy costs per write: DayPrivacy.apply over decoded pages.

    PYTHONPATH=. .venv/bin/python benchmarks/privacy_apply.py [records]

Decodes `records` simulator records (pages of 1000, as a sync does), then times, on the
same batches: keep (nothing to do), keep with a suppression list of 1000 erased contacts,
hash, and hash with personal data in kept extras (the simulator's extra_personal_fields).
Prints seconds and records per second; nothing is asserted (timings depend on the machine).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
import uuid

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.hashing import Keyring, PiiKey
from cg_assets.privacy.policy import DayPrivacy, PersonalColumns
from cg_assets.privacy.suppression import Entry, SuppressionList, identifier_hash
from cg_simulator.dataset import Dataset, loads
from cg_simulator.server import with_personal_extras

KEY = PiiKey("benchmark-key-0123456789abcdef0123456789abcdef")


def batches(records: int, extras: bool) -> list:
    data = Dataset(records=records, start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 10))
    parts = data.render(range(1, records + 1), with_properties=True)
    if extras:
        parts = [with_personal_extras(p) for p in parts]
    decoder = NON_RESPONSES.decoder()
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for start in range(0, len(parts), 1000):
        page = [loads(p) for p in parts[start : start + 1000]]
        out.append(decoder.decode(page, now, "benchmark"))
    return out


def timed(label: str, privacy: DayPrivacy, pages: list) -> None:
    started = time.perf_counter()
    rows = sum(privacy.apply(b).num_rows for b in pages)
    seconds = time.perf_counter() - started
    total = sum(b.num_rows for b in pages)
    print(f"{label:<42} {seconds:7.3f} s  {total / seconds:>11,.0f} records/s  ({rows} kept)")


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    columns = PersonalColumns.of(NON_RESPONSES)
    plain, with_extras = batches(records, False), batches(records, True)
    with tempfile.TemporaryDirectory() as root:
        suppression = SuppressionList(ParquetLake(root))
        emails = [f"erased{i}@example.org" for i in range(1000)]
        suppression.entries = [
            Entry(uuid.uuid4().hex, "email", KEY.key_id, identifier_hash(KEY, "email", e))
            for e in emails
        ]
        matcher = suppression.matcher(Keyring(KEY))
    print(f"{records:,} records, pages of 1000")
    timed("keep", DayPrivacy("keep", None, columns, None), plain)
    timed("keep + 1000 suppressed contacts", DayPrivacy("keep", KEY, columns, matcher), plain)
    timed("hash", DayPrivacy("hash", KEY, columns, None), plain)
    timed("hash, personal data in extras", DayPrivacy("hash", KEY, columns, None), with_extras)
    timed("drop", DayPrivacy("drop", None, columns, None), plain)


if __name__ == "__main__":
    main()
