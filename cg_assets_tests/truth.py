"""The simulator's truth, turned into expected lake rows by a conversion written
independently of cg_assets.lake.schema, so a bug there cannot hide in both."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cg_simulator import SimulatorControl

NULL_DATES = ("", "0000-00-00 00:00:00", None)
DATE_FIELDS = (
    "date_creation",
    "date_order",
    "date_sent",
    "date_email_sent",
    "date_opened",
    "date_clicked",
)


def expected_row(record: dict[str, Any]) -> dict[str, Any]:
    contact = record.get("contact") or {}
    account = record.get("account") or {}
    row = {
        "number_customergauge": record["number_customergauge"],
        "status": record.get("status"),
        "contact_first_name": contact.get("first_name"),
        "contact_last_name": contact.get("last_name"),
        "account_name": account.get("name"),
        "account_number": account.get("number"),
        "number_customer": record.get("number_customer"),
        "number_order": record.get("number_order"),
        "email": record.get("email"),
        "phone": record.get("phone"),
        "language": record.get("language"),
        "link": record.get("link"),
        "properties": record.get("properties"),
    }
    for name in DATE_FIELDS:
        value = record.get(name)
        row[name] = (
            None if value in NULL_DATES else dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        )
    return row


def truth_rows(
    control: SimulatorControl, day: dt.date, field: str = "date_sent"
) -> dict[int, dict[str, Any]]:
    records = control.truth(field=field, start=day, end=day)
    return {r["number_customergauge"]: expected_row(r) for r in records}


def day_file(lake_root: Path, day: dt.date, table: str = "non_responses") -> Path:
    return lake_root / "customergauge" / table / f"date={day.isoformat()}" / "data.parquet"


def lake_rows(lake_root: Path, day: dt.date) -> list[dict[str, Any]]:
    return pq.read_table(day_file(lake_root, day)).to_pylist()


def assert_day_equals_truth(lake_root: Path, control: SimulatorControl, day: dt.date) -> int:
    """Record for record and field for field; returns the row count."""
    return assert_rows_equal_truth(lake_rows(lake_root, day), control, day)


def assert_rows_equal_truth(
    rows: list[dict[str, Any]], control: SimulatorControl, day: dt.date
) -> int:
    """A day's lake rows against the simulator's truth for that day; returns the row count."""
    expected = truth_rows(control, day)
    keys = [r["number_customergauge"] for r in rows]
    assert len(keys) == len(set(keys)), "a record key appears twice in the partition"
    assert set(keys) == set(expected), (
        f"missing {sorted(set(expected) - set(keys))[:5]}, unexpected {sorted(set(keys) - set(expected))[:5]}"
    )
    for row in rows:
        want = expected[row["number_customergauge"]]
        got = {k: row[k] for k in want}
        assert got == want, f"record {row['number_customergauge']} differs"
        assert row["extra_fields"] is None
        assert row["synced_at"] is not None
    return len(rows)


def metadata_values(metadata: Any) -> dict[str, Any]:
    """A materialization's metadata as plain values, the cursor decoded by the lake's codec
    (it is stored as JSON text, so that an int, a string and "no cursor" stay apart)."""
    from cg_assets.lake.cursor_codec import decode_cursor

    values = {k: v.value for k, v in metadata.items()}
    if "cursor" in values:
        values["cursor"] = decode_cursor(values["cursor"])
    return values


# -- responses -------------------------------------------------------------------------------

RESPONSE_DECLARED = {
    "number_customergauge",
    "contact",
    "account",
    "number_customer",
    "number_order",
    "email",
    "phone",
    "language",
    "link",
    "properties",
    "drivers",
    "date_survey_response",
    "nps",
    "comment",
    *DATE_FIELDS,
}


def expected_response_row(record: dict[str, Any]) -> dict[str, Any]:
    """A response as its lake row: the invitation's columns, date_survey_response, the
    declared keys of properties and drivers; everything else in extra_fields."""
    row = expected_row(record)
    del row["status"]
    row["properties"] = [
        {"field": p.get("field"), "reference": p.get("reference")}
        for p in record.get("properties") or []
    ]
    row["drivers"] = [{"label": d.get("label")} for d in record.get("drivers") or []]
    value = record.get("date_survey_response")
    row["date_survey_response"] = (
        None if value in NULL_DATES else dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    )
    row["nps"] = record.get("nps")
    row["comment"] = record.get("comment")
    extra = {k: v for k, v in record.items() if k not in RESPONSE_DECLARED}
    item_extras = [
        {k: v for k, v in p.items() if k not in ("field", "reference")}
        for p in record.get("properties") or []
    ]
    if any(item_extras):
        extra["properties"] = item_extras
    row["extra_fields"] = extra or None
    return row


def response_truth_rows(
    control: SimulatorControl, day: dt.date, field: str = "date_sent"
) -> dict[int, dict[str, Any]]:
    records = control.truth(field=field, start=day, end=day, endpoint="responses")
    return {r["number_customergauge"]: expected_response_row(r) for r in records}


def assert_responses_day_equals_truth(
    lake_root: Path, control: SimulatorControl, day: dt.date, field: str = "date_sent"
) -> int:
    """A responses day file against the simulator's truth, record for record, field for
    field, the kept extra_fields included; returns the row count."""
    rows = pq.read_table(day_file(lake_root, day, "responses")).to_pylist()
    expected = response_truth_rows(control, day, field)
    keys = [r["number_customergauge"] for r in rows]
    assert len(keys) == len(set(keys)), "a record key appears twice in the partition"
    assert set(keys) == set(expected)
    for row in rows:
        want = dict(expected[row["number_customergauge"]])
        want_extra = want.pop("extra_fields")
        got = {k: row[k] for k in want}
        assert got == want, f"response {row['number_customergauge']} differs"
        got_extra = json.loads(row["extra_fields"]) if row["extra_fields"] else None
        assert got_extra == want_extra, f"response {row['number_customergauge']}: extras differ"
        assert row["synced_at"] is not None
    return len(rows)
