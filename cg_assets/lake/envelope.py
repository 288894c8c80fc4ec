"""A page body `{"data": [...], "cursor": {...}}` parsed by Arrow straight into records.

The client decodes every body with orjson to check the envelope (client.py); this module
parses the same bytes a second time with Arrow's JSON reader (C++, without the GIL, so it
overlaps the next page's fetch), which is cheaper than converting the decoded dicts.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.json as pa_json

from cg_assets.customergauge import wire


def body_schema(record_type: pa.StructType) -> pa.Schema:
    """The explicit schema of a page body whose records are of `record_type`."""
    return pa.schema([pa.field(wire.BODY_DATA, pa.list_(record_type))])


def read_records(
    body: bytes, schema: pa.Schema, count: int, *, infer: bool = True
) -> pa.StructArray | None:
    """The page's records as one StructArray, or None: the body is left to the dict paths.

    Declared fields get their declared type. Fields the schema does not know are inferred
    and appear as extra struct children (`infer`), or are skipped. Arrow gives up (None)
    on a value of another JSON type than its field's, on a repeated key, and, inferring,
    on a field whose values it cannot unify (an int here, a string there).
    """
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
    data = table.column(wire.BODY_DATA)
    if not pa.types.is_list(data.type) or not pa.types.is_struct(data.type.value_type):
        return None
    records = data.chunk(0).flatten()
    if len(records) != count or records.null_count:
        return None
    return records
