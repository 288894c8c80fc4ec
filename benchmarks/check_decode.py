"""Check that RecordDecoder's fast paths decode exactly like its exact path.

    python benchmarks/check_decode.py [--pages 3000] [--seed 1]

`RecordDecoder.decode` tries Arrow's JSON reader on the raw body, then Arrow's conversion
of the decoded dicts, then the exact column-by-column path (cg_assets/lake/decode.py).
This script builds pages of simulator records, breaks them in every way it knows (wrong
JSON types, unknown fields, odd dates, repeated keys, ...), and asserts that
`decode(records, body=...)`, `decode(records)` and `_decode_exact(records)` give equal
batches or raise the same error. Exits non-zero on the first difference.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES  # noqa: E402
from cg_assets.simulator.dataset import Dataset  # noqa: E402

SYNCED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)
TEXT_FIELDS = (
    "status",
    "number_customer",
    "number_order",
    "email",
    "phone",
    "language",
    "link",
)
DATE_FIELDS = (
    "date_creation",
    "date_order",
    "date_sent",
    "date_email_sent",
    "date_opened",
    "date_clicked",
)
ODD_VALUES: tuple[Any, ...] = (
    None,
    "",
    "x",
    "123",
    0,
    7,
    -3,
    1.5,
    2.0,
    True,
    False,
    [],
    ["a"],
    {},
    {"a": 1},
    'Zoë 伟 \u2028 \\ " \n',
    2**70,
)
ODD_DATES: tuple[Any, ...] = (
    "",
    "0000-00-00 00:00:00",
    None,
    "2026-02-31 10:00:00",
    "2026-1-1 00:00:00",
    "2026-10-01T10:00:00",
    "2026-10-01 10:00:00Z",
    "2026-10-01",
    "2026-10-01 24:00:00",
    " 2026-10-01 10:00:00",
    12,
    "\uff12\uff10\uff12\uff16-10-01 10:00:00",  # full-width digits
)


def mutate(record: dict[str, Any], rng: random.Random) -> str:
    """Break one record in one way; returns what was done."""
    kind = rng.choice(
        [
            "text",
            "date",
            "key",
            "drop",
            "nested",
            "nested_value",
            "properties",
            "property_item",
            "unknown_top",
            "unknown_nested",
            "unknown_property_key",
        ]
    )
    if kind == "text":
        name = rng.choice(TEXT_FIELDS)
        record[name] = rng.choice(ODD_VALUES)
    elif kind == "date":
        record[rng.choice(DATE_FIELDS)] = rng.choice(ODD_DATES)
    elif kind == "key":
        record["number_customergauge"] = rng.choice(
            [None, "3400003", "x", 1.0, 2.5, True, -1, 0, 2**63 - 1, 2**63, "٣٤"]
        )
    elif kind == "drop":
        record.pop(rng.choice(list(record)), None)
    elif kind == "nested":
        record[rng.choice(["contact", "account"])] = rng.choice(ODD_VALUES)
    elif kind == "nested_value":
        parent = rng.choice(["contact", "account"])
        if isinstance(record.get(parent), dict):
            child = rng.choice(list(record[parent]) or ["name"])
            record[parent][child] = rng.choice(ODD_VALUES)
    elif kind == "properties":
        record["properties"] = rng.choice(ODD_VALUES)
    elif kind == "property_item":
        props = record.get("properties")
        if isinstance(props, list) and props:
            i = rng.randrange(len(props))
            if rng.random() < 0.5:
                props[i] = rng.choice(ODD_VALUES)
            elif isinstance(props[i], dict):
                props[i][rng.choice(["field", "reference"])] = rng.choice(ODD_VALUES)
    elif kind == "unknown_top":
        record[rng.choice(["survey_id", "channel", "date_reminded"])] = rng.choice(ODD_VALUES)
    elif kind == "unknown_nested":
        parent = rng.choice(["contact", "account"])
        if isinstance(record.get(parent), dict):
            record[parent][rng.choice(["email", "segment"])] = rng.choice(ODD_VALUES)
    elif kind == "unknown_property_key":
        props = record.get("properties")
        if isinstance(props, list) and props and isinstance(props[0], dict):
            props[0]["extra"] = rng.choice(ODD_VALUES)
    return kind


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "batch", fn(*args, **kwargs)
    except Exception as exc:  # compared by type and message
        return "error", f"{type(exc).__name__}: {exc}"


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a[1] == b[1]
    return a[1].schema.equals(b[1].schema, check_metadata=True) and a[1].equals(b[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    dataset = Dataset(
        records=400,
        start=dt.date(2026, 10, 1),
        end=dt.date(2026, 10, 3),
        seed=args.seed,
        respond_share=0.5,
    )
    for endpoint, base in ((NON_RESPONSES, dataset.records()), (RESPONSES, dataset.responses())):
        code = check(endpoint.decoder(), base, rng, args.pages, endpoint.name)
        if code:
            return code
    return 0


def check(
    decoder: Any, base: list[dict[str, Any]], rng: random.Random, pages: int, name: str
) -> int:
    counts = {"clean": 0, "broken": 0, "json_path": 0, "dict_path": 0, "exact_path": 0}
    for page_number in range(pages):
        size = rng.choice([1, 2, 5, 50])
        records = copy.deepcopy(rng.sample(base, size))
        broken = page_number % 4 != 0
        if broken:
            for _ in range(rng.choice([1, 1, 2, 3])):
                mutate(rng.choice(records), rng)
        try:
            body = orjson.dumps({"data": records, "cursor": {"next": 1}})
        except TypeError:  # an int past 64 bits: orjson cannot write it, the API would not
            continue
        if broken and rng.random() < 0.05:
            # a repeated key in the JSON text: orjson keeps the last value
            body = body.replace(b'"status":', b'"status":"dup","status":', 1)
        try:
            decoded = orjson.loads(body)["data"]
        except orjson.JSONDecodeError:
            continue
        counts["broken" if broken else "clean"] += 1
        where = f"page {page_number}"
        exact = outcome(decoder._decode_exact, decoded, SYNCED, where)
        with_body = outcome(decoder.decode, decoded, SYNCED, where, body=body)
        without = outcome(decoder.decode, decoded, SYNCED, where)
        if not (same(exact, with_body) and same(exact, without)):
            print(f"{name}: DIFFERENCE on page {page_number}: {body[:2000]!r}")
            for name, result in (("exact", exact), ("body", with_body), ("dicts", without)):
                print(f"  {name}: {result[1] if result[0] == 'error' else result[1].to_pylist()}")
            return 1
        if decoder._decode_json(body, decoded, SYNCED) is not None:
            counts["json_path"] += 1
        elif decoder._decode_fast(decoded, SYNCED) is not None:
            counts["dict_path"] += 1
        else:
            counts["exact_path"] += 1
    print(f"{name}: all paths agree: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
