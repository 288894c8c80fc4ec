"""Decoding wire records into the declared Arrow schema."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.lake.schema import RecordDecodeError

DECODER = NON_RESPONSES.decoder()
SYNCED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)


def wire_record(**overrides: object) -> dict:
    record = {
        "status": "survey-clicked",
        "contact": {"first_name": "Zoë", "last_name": "Łukasiewicz"},
        "account": {"name": "ACME", "number": "123"},
        "number_customergauge": 3414,
        "number_customer": "123",
        "number_order": "321",
        "email": "zoe@example.com",
        "phone": None,
        "date_creation": "2026-11-01 08:00:00",
        "date_order": "2026-10-30 12:34:56",
        "date_sent": "2026-11-02 09:15:00",
        "date_opened": "",
        "date_clicked": "0000-00-00 00:00:00",
        "date_email_sent": "2026-11-02 09:15:03",
        "language": "NL",
        "link": "https://survey.eu.customergauge.com/r/abc",
        "properties": [
            {"field": "Country", "reference": "NL"},
            {"field": "Key Contact", "reference": None},
        ],
    }
    record.update(overrides)
    return record


def decode(*records: dict) -> dict:
    batch = DECODER.decode(list(records), SYNCED, "page 1")
    assert batch.schema.equals(DECODER.schema)
    return batch.to_pylist()[0]


def test_a_record_decodes_into_every_declared_column():
    row = decode(wire_record())
    assert row["number_customergauge"] == 3414
    assert (row["contact_first_name"], row["contact_last_name"]) == ("Zoë", "Łukasiewicz")
    assert (row["account_name"], row["account_number"]) == ("ACME", "123")
    assert row["date_sent"] == dt.datetime(2026, 11, 2, 9, 15)
    assert row["date_opened"] is None and row["date_clicked"] is None  # "" and 0000-00-00 mean null
    assert row["properties"] == [
        {"field": "Country", "reference": "NL"},
        {"field": "Key Contact", "reference": None},
    ]
    assert row["extra_fields"] is None
    assert row["synced_at"] == SYNCED


def test_the_schema_has_no_null_typed_column_and_a_non_null_key():
    assert all(field.type != pa.null() for field in DECODER.schema)
    assert DECODER.schema.field("number_customergauge").nullable is False
    assert DECODER.schema.field("date_sent").type == pa.timestamp("us")


def test_an_all_null_page_keeps_the_declared_types():
    record = {"number_customergauge": 1}
    batch = DECODER.decode([record], SYNCED, "page 1")
    assert batch.schema.equals(DECODER.schema)
    assert batch.column("properties").null_count == 1


def test_fields_the_api_adds_later_are_kept_as_json():
    row = decode(
        wire_record(
            nps_segment="promoter", contact={"first_name": "A", "last_name": "B", "title": "Dr"}
        )
    )
    assert json.loads(row["extra_fields"]) == {
        "nps_segment": "promoter",
        "contact": {"title": "Dr"},
    }


def test_unknown_keys_inside_properties_items_are_kept():
    properties = [
        {"field": "Country", "reference": "NL", "field_id": 12},
        {"field": "Key Contact", "reference": None},
    ]
    row = decode(wire_record(properties=properties))
    assert row["properties"] == [
        {"field": "Country", "reference": "NL"},
        {"field": "Key Contact", "reference": None},
    ]
    assert json.loads(row["extra_fields"]) == {"properties": [{"field_id": 12}, {}]}


def test_numbers_where_text_is_declared_are_kept_as_text():
    row = decode(wire_record(number_customer=123, account={"name": "ACME", "number": 77}))
    assert row["number_customer"] == "123" and row["account_number"] == "77"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"number_customergauge": None}, "record #0: 'number_customergauge' is missing"),
        ({"number_customergauge": "abc"}, "not an integer"),
        ({"date_sent": "31/02/2026 25:00"}, "date_sent is '31/02/2026 25:00'"),
        ({"date_sent": "2026-02-31 10:00:00"}, "date_sent is '2026-02-31 10:00:00'"),
        ({"date_sent": 20261102}, "date_sent is 20261102"),
        ({"contact": "Zoë"}, "'contact' is str, expected an object"),
        ({"properties": "Country=NL"}, "properties is 'Country=NL', not a list"),
    ],
)
def test_records_that_break_the_contract_name_the_page_and_the_record(overrides, message):
    with pytest.raises(RecordDecodeError) as info:
        DECODER.decode(
            [wire_record(number_customergauge=1), wire_record(**overrides)], SYNCED, "page 7"
        )
    text = str(info.value)
    assert "page 7" in text and message.replace("#0", "#1") in text.replace("#0", "#1")
    assert "zoe@example.com" not in text  # no personal data in errors


def test_a_record_that_is_not_an_object_is_named():
    with pytest.raises(RecordDecodeError, match=r"page 3, record #1: expected an object"):
        DECODER.decode([wire_record(), ["not", "a", "record"]], SYNCED, "page 3")
