"""Typed column kinds at any depth, and undeclared fields kept at any depth."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pyarrow as pa
import pytest

from cg_assets.lake.columns import (
    BOOL,
    FLOAT,
    INT,
    KEY,
    STRING,
    STRING_LIST,
    TIMESTAMP,
    Column,
    Item,
    arrow_schema,
    struct_list,
)
from cg_assets.lake.decode import RecordDecodeError, RecordDecoder

SYNCED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)

OPTIONS = struct_list(
    Item("label", STRING),
    Item("weight", FLOAT),
    Item("chosen", BOOL),
    Item("codes", STRING_LIST),
)
COLUMNS = (
    Column("id", ("id",), KEY, "key"),
    Column("count", ("stats", "count"), INT, "int at depth 2"),
    Column("ratio", ("stats", "ratio"), FLOAT, "float at depth 2"),
    Column("flag", ("meta", "flags", "on"), BOOL, "bool at depth 3"),
    Column("when", ("meta", "flags", "when"), TIMESTAMP, "timestamp at depth 3"),
    Column("tags", ("tags",), STRING_LIST, "list of strings"),
    Column("note", ("note",), STRING, "personal text", personal=True),
    Column("age", ("age",), INT, "a personal number", personal=True),
    Column(
        "questions",
        ("questions",),
        struct_list(
            Item("id", INT), Item("text", STRING), Item("options", OPTIONS)
        ),  # structs in structs
        "list of structs with a list of structs inside",
    ),
)
# The same with a timestamp inside list items (only the exact path converts those).
DEEP_TIME = (
    *COLUMNS[:-1],
    Column(
        "questions",
        ("questions",),
        struct_list(Item("id", INT), Item("answered_at", TIMESTAMP), Item("options", OPTIONS)),
        "list of structs with a timestamp",
    ),
)


def record(**overrides: object) -> dict:
    r = {
        "id": 7,
        "stats": {"count": 3, "ratio": 0.5},
        "meta": {"flags": {"on": True, "when": "2026-11-02 09:15:00"}},
        "tags": ["vip", None],
        "note": "call Zoë back",
        "questions": [
            {
                "id": 1,
                "text": "Why?",
                "options": [
                    {"label": "Price", "weight": 1, "chosen": False, "codes": ["a", "b"]},
                    None,
                ],
            }
        ],
    }
    r.update(overrides)
    return r


def body(*records: dict) -> bytes:
    return orjson.dumps({"data": list(records), "cursor": {"next": 1}})


def all_types(t: pa.DataType) -> list[pa.DataType]:
    out = [t]
    if pa.types.is_list(t):
        out += all_types(t.value_type)
    elif pa.types.is_struct(t):
        for f in t:
            out += all_types(f.type)
    return out


def test_every_kind_has_its_arrow_type_at_any_depth_and_none_is_null():
    schema = arrow_schema(DEEP_TIME)
    assert schema.field("count").type == pa.int64()
    assert schema.field("ratio").type == pa.float64()
    assert schema.field("flag").type == pa.bool_()
    assert schema.field("when").type == pa.timestamp("us")
    assert schema.field("tags").type == pa.list_(pa.string())
    question = schema.field("questions").type.value_type
    assert question.field("answered_at").type == pa.timestamp("us")
    option = question.field("options").type.value_type
    assert option.field("weight").type == pa.float64()
    assert option.field("codes").type == pa.list_(pa.string())
    assert not any(pa.types.is_null(t) for f in schema for t in all_types(f.type))


@pytest.mark.parametrize("columns", [COLUMNS, DEEP_TIME], ids=["fast-paths", "exact-only"])
def test_a_record_decodes_into_every_kind(columns):
    decoder = RecordDecoder(columns)
    r = record()
    if columns is DEEP_TIME:
        r["questions"][0]["answered_at"] = "2026-11-02 09:20:00"
    batch = decoder.decode([r], SYNCED, "page 1", body=body(r))
    assert batch.schema.equals(decoder.schema)
    row = batch.to_pylist()[0]
    assert (row["id"], row["count"], row["ratio"], row["flag"]) == (7, 3, 0.5, True)
    assert row["when"] == dt.datetime(2026, 11, 2, 9, 15)
    assert row["tags"] == ["vip", None]
    question = row["questions"][0]
    assert question["options"][0] == {
        "label": "Price",
        "weight": 1.0,
        "chosen": False,
        "codes": ["a", "b"],
    }
    assert question["options"][1] is None
    if columns is DEEP_TIME:
        assert question["answered_at"] == dt.datetime(2026, 11, 2, 9, 20)
        # this declaration has no "text" key in its items: the value is kept all the same
        assert json.loads(row["extra_fields"]) == {"questions": [{"text": "Why?"}]}
    else:
        assert row["extra_fields"] is None


def test_undeclared_fields_are_kept_at_every_depth_in_the_records_shape():
    r = record(survey_id=99)
    r["stats"]["median"] = 2
    r["questions"][0]["kind"] = "nps"
    r["questions"][0]["options"][0]["colour"] = "red"
    r["questions"].append({"id": 2, "text": "And?", "options": []})
    decoder = RecordDecoder(COLUMNS)
    want = {
        "survey_id": 99,
        "stats": {"median": 2},
        "questions": [{"kind": "nps", "options": [{"colour": "red"}, {}]}, {}],
    }
    for batch in (
        decoder.decode([r], SYNCED, "p", body=body(r)),  # Arrow's JSON reader
        decoder._decode_exact([r], SYNCED, "p"),
    ):
        row = batch.to_pylist()[0]
        assert json.loads(row["extra_fields"]) == want
        assert row["questions"][0]["options"][0]["label"] == "Price"  # declared keys stay typed


def test_the_json_reader_and_the_exact_path_give_the_same_batch():
    decoder = RecordDecoder(COLUMNS)
    records = [
        record(),
        record(id=8, stats=None, meta={"flags": None}, tags=None, questions=None, note=None),
        record(id=9, extra={"deep": [1, 2]}),
    ]
    fast = decoder._decode_json(body(*records), records, SYNCED)
    assert fast is not None  # the JSON reader took the page, unknown fields and all
    assert fast.equals(decoder._decode_exact(records, SYNCED, "p"))


def test_an_all_null_page_keeps_every_declared_type():
    decoder = RecordDecoder(DEEP_TIME)
    batch = decoder.decode([{"id": 1}], SYNCED, "p", body=body({"id": 1}))
    assert batch.schema.equals(decoder.schema)
    assert batch.column("questions").null_count == 1


def test_values_are_converted_where_that_is_safe():
    decoder = RecordDecoder(COLUMNS)
    r = record(stats={"count": "12", "ratio": 3}, meta={"flags": {"on": "true", "when": ""}})
    row = decoder.decode([r], SYNCED, "p", body=body(r)).to_pylist()[0]
    assert (row["count"], row["ratio"], row["flag"], row["when"]) == (12, 3.0, True, None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stats": {"count": "twelve"}}, "count is 'twelve', not a 64-bit integer"),
        ({"stats": {"count": 1.5}}, "count is 1.5, not a 64-bit integer"),
        ({"meta": {"flags": {"on": "maybe"}}}, "flag is 'maybe', not true or false"),
        ({"tags": "vip"}, "tags is 'vip', not a list of strings"),
        ({"questions": ["Why?"]}, "questions is ['Why?'], not a list of {id, text, options}"),
        ({"meta": {"flags": "on"}}, "'meta.flags' is str, expected an object"),
        ({"age": "Zoë's"}, "age is a str, not a 64-bit integer"),  # personal: value not shown
    ],
)
def test_a_value_that_does_not_fit_names_the_record_and_the_column(overrides, message):
    decoder = RecordDecoder(COLUMNS)
    r = record(**overrides)
    with pytest.raises(RecordDecodeError) as info:
        decoder.decode([record(), r], SYNCED, "page 4", body=body(record(), r))
    text = str(info.value)
    assert "page 4, record #1 (id 7)" in text and message in text
    assert "Zoë" not in text


def test_a_declaration_that_cannot_work_is_refused():
    with pytest.raises(ValueError, match="declared twice"):
        RecordDecoder((*COLUMNS, Column("again", ("tags",), STRING, "")))
    with pytest.raises(ValueError, match="exactly one key"):
        RecordDecoder(COLUMNS[1:])
    with pytest.raises(ValueError, match="each once"):
        struct_list(Item("a", STRING), Item("a", INT))
