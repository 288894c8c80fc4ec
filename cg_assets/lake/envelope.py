"""A page body `{"data": [...], "cursor": {"next": ...}}` parsed by Arrow straight into records.

On the happy path this is the page's only parse: the client hands the raw body to the
table's decoder (`RecordDecoder.read_page`, a `PageReader`), which reads it here, records and
cursor at once, with Arrow's JSON reader (C++, without the GIL, so it overlaps the work of
the main thread). A body Arrow does not take whole is declined, and the client decodes it
to Python objects as before (client.py), so contract errors keep their messages.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from cg_assets.customergauge import wire

_OPENS_OBJECT = re.compile(rb"\s*\{")
# Declared so that Arrow checks it: a cursor.next that is not a 64-bit integer (a string,
# a bool, 1.5) makes the read give up, and the client's own checks see that body.
_CURSOR_TYPE = pa.struct([pa.field(wire.BODY_CURSOR_NEXT, pa.int64())])


@dataclass(frozen=True)
class ArrowPage:
    """A page's records as Arrow read them from its body (`Page.records` on the happy path)."""

    records: pa.StructArray  # one struct per record: declared fields, plus inferred ones
    # The records may carry fields the table does not declare (`objects` holds them).
    undeclared: bool
    # The decoded dicts of `data`, only when `undeclared`: `extra_fields` keeps those
    # fields in the record's own shape, which Arrow's inferred types cannot give back
    # exactly (a null and a missing field look alike there).
    objects: list[Any] | None
    body: bytes = field(repr=False)  # for the dict paths, should the Arrow arrays not fit


def body_schema(record_type: pa.StructType) -> pa.Schema:
    """The explicit schema of a page body whose records are of `record_type`."""
    return pa.schema(
        [
            pa.field(wire.BODY_DATA, pa.list_(record_type)),
            pa.field(wire.BODY_CURSOR, _CURSOR_TYPE),
        ]
    )


def read_body(
    body: bytes, schema: pa.Schema, *, infer: bool = True
) -> tuple[pa.StructArray, int | None] | None:
    """The page's records as one StructArray and its `cursor.next`, or None: Arrow declines.

    Declared fields get their declared type. Fields the schema does not know are inferred
    and appear as extra struct children (`infer`), or are skipped. Arrow gives up (None)
    on a value of another JSON type than its field's, on a repeated key, on a `data` that
    is missing or not a list of objects, on a null record, and, inferring, on a field whose
    values it cannot unify (an int here, a string there).
    """
    if not _is_one_utf8_object(body):
        return None
    try:
        table = pa_json.read_json(
            pa.py_buffer(body),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer" if infer else "ignore"
            ),
        )
    except (pa.ArrowException, ValueError, TypeError):
        return None
    if table.num_rows != 1:
        return None
    column = table.column(wire.BODY_DATA)
    if column.num_chunks != 1:
        return None
    data = column.chunk(0)
    if data.null_count or not pa.types.is_struct(data.type.value_type):
        return None  # `data` missing or null: the client's checks name it
    records = data.flatten()
    if records.null_count:
        return None
    cursor = table.column(wire.BODY_CURSOR)[0].as_py()  # None when the body has no cursor
    return records, cursor.get(wire.BODY_CURSOR_NEXT) if cursor else None


def _is_one_utf8_object(body: bytes) -> bool:
    """What Arrow may read: a body that starts with `{`, ends with `}`, and is valid UTF-8.

    pyarrow 26's JSON reader crashes the process (a segfault, no exception) on a bare
    `null` body, which a broken API could send, and it takes invalid UTF-8 inside a string
    into a string column as it is. The client's own path turns both into a retry
    (`bad_body`), as before the reader.
    """
    if _OPENS_OBJECT.match(body) is None or not body[-64:].rstrip().endswith(b"}"):
        return False
    # The whole body as one Arrow string, checked in C++ without a copy (~0.1 ms a page).
    offsets = pa.py_buffer(struct.pack("<qq", 0, len(body)))
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(body)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def read_records(
    body: bytes, schema: pa.Schema, count: int, *, infer: bool = True
) -> pa.StructArray | None:
    """The page's records as one StructArray of `count` records, or None (see read_body)."""
    read = read_body(body, schema, infer=infer)
    if read is None or len(read[0]) != count:
        return None
    return read[0]
