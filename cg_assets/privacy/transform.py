"""Hash or null the personal values of Arrow arrays and of `extra_fields` JSON.

Arrays keep their type (the schema of a file never changes with the mode): a hash is a
string in a string column; nested columns (structs, lists, at any depth) are walked and
their string leaves hashed; a personal leaf that is not a string (a number, a date) cannot
hold a hash without changing its type, so it is nulled in `hash` mode too.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from cg_assets.privacy.hashing import PiiKey
from cg_assets.privacy.rules import PiiKind, looks_like_email, personal_key

Treatment = Literal["keep", "hash", "drop"]


def treat_column(
    column: pa.Array | pa.ChunkedArray, kind: PiiKind, treatment: Treatment, key: PiiKey | None
) -> pa.Array | pa.ChunkedArray:
    if treatment == "keep":
        return column
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array(
            [treat_column(chunk, kind, treatment, key) for chunk in column.chunks], column.type
        )
    if treatment == "drop":
        return pa.nulls(len(column), column.type)
    assert key is not None
    return _map_strings(column, lambda strings: _hash_strings(strings, kind, key))


def _hash_strings(strings: pa.Array, kind: PiiKind, key: PiiKey) -> pa.Array:
    # Personal values repeat (first names, one contact on many records): hash each distinct
    # value once.
    encoded = pc.dictionary_encode(strings)
    hashed = pa.array(
        [None if v is None else key.hash_value(kind, v) for v in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    return pc.take(hashed, encoded.indices).cast(strings.type)


def _map_strings(array: pa.Array, hash_strings: Any) -> pa.Array:
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return hash_strings(array)
    if pa.types.is_struct(kind):
        children = [_map_strings(child, hash_strings) for child in array.flatten()]
        return pa.StructArray.from_arrays(
            children, fields=list(kind), mask=array.is_null() if array.null_count else None
        )
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        cls = pa.ListArray if pa.types.is_list(kind) else pa.LargeListArray
        return cls.from_arrays(
            array.offsets,
            _map_strings(array.values, hash_strings),
            type=kind,
            mask=array.is_null() if array.null_count else None,
        )
    return pa.nulls(len(array), kind)  # a non-string personal leaf cannot hold a hash


def treat_extras(
    column: pa.Array | pa.ChunkedArray, treatment: Treatment, key: PiiKey | None
) -> pa.Array | pa.ChunkedArray:
    """`extra_fields` JSON text with personal keys (rules.personal_key) and e-mail-looking
    strings hashed or nulled, at any depth."""
    if treatment == "keep":
        return column
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array(
            [treat_extras(c, treatment, key) for c in column.chunks], column.type
        )
    if column.null_count == len(column):
        return column
    out = []
    for text in column.to_pylist():
        if text is None:
            out.append(None)
            continue
        try:
            value = json.loads(text)
        except ValueError:
            # Not JSON (written by hand?): treat the whole text as personal, never keep it.
            out.append(_treat_scalar(text, "text", treatment, key))
            continue
        out.append(
            json.dumps(_walk(value, None, treatment, key), ensure_ascii=False, sort_keys=True)
        )
    return pa.array(out, column.type)


def _walk(value: Any, kind: PiiKind | None, treatment: Treatment, key: PiiKey | None) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, personal_key(k) or kind, treatment, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, kind, treatment, key) for v in value]
    if value is None:
        return None
    if kind is not None:
        return _treat_scalar(value, kind, treatment, key)
    if isinstance(value, str) and looks_like_email(value):
        whole = looks_like_email(value, whole=True)
        return _treat_scalar(value, "email" if whole else "text", treatment, key)
    return value


def _treat_scalar(value: Any, kind: PiiKind, treatment: Treatment, key: PiiKey | None) -> Any:
    if treatment == "drop" or isinstance(value, bool):
        return None
    assert key is not None
    return key.hash_value(kind, value if isinstance(value, str) else str(value))
