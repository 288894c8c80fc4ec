"""Segment values (`properties`: a list of {field, reference}) in hash and drop mode.

A segment's value is whatever the tenant put there: a country, a division, but also an
"Account Manager" (a person's name), a contact's e-mail or phone. So a value is personal by
default: hashed (normalised like a name) or nulled like the other personal columns. The
segment's name (`field`) is not: it is the tenant's vocabulary, and it is what says which
values may stay clear. The user lists those (CG_PII_CLEAR_SEGMENTS=Country,Division;
matched case-insensitively, surrounding spaces ignored), and even there a value that looks
like an e-mail address or a phone number is always treated.

A value that already is a hash is left alone (hashing.PiiKey.hash_value), so re-writing a
hashed day never hashes twice; null stays null.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from cg_assets.privacy.hashing import PiiKey
from cg_assets.privacy.rules import PiiKind, looks_like_email, looks_like_phone
from cg_assets.privacy.transform import Treatment


def segment_name(name: str) -> str:
    """How a segment's name is compared with the allow-list."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


def clear_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(segment_name(n) for n in names)


def _kind_of_value(value: str) -> PiiKind:
    if looks_like_email(value):
        return "email" if looks_like_email(value, whole=True) else "text"
    return "phone" if looks_like_phone(value) else "name"


def treat_segments(
    column: pa.Array | pa.ChunkedArray,
    name_item: str,
    value_item: str,
    treatment: Treatment,
    key: PiiKey | None,
    allowed: frozenset[str],
) -> pa.Array | pa.ChunkedArray:
    """The column with each item's value treated unless its name is allowed (and the value
    looks like no e-mail or phone). Type, names, nulls and list lengths are kept."""
    if treatment == "keep":
        return column
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array(
            [
                treat_segments(c, name_item, value_item, treatment, key, allowed)
                for c in column.chunks
            ],
            column.type,
        )
    if column.offset:  # a slice of a batch: rebuilding needs offsets and nulls from 0
        column = pa.concat_arrays([column])
    items: pa.StructArray = column.values  # every item of every row (offsets keep the rows)
    struct_type = items.type
    children = items.flatten()
    names = [f.name for f in struct_type]
    values = children[names.index(value_item)]
    if len(values) == 0 or values.null_count == len(values):
        return column
    # Each distinct value decided once: is it always personal, and what it becomes.
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary.to_pylist()
    always = [v is not None and _always_personal(v) for v in distinct]
    if treatment == "drop":
        treated = [None] * len(distinct)
    else:
        assert key is not None
        treated = [None if v is None else key.hash_value(_kind_of_value(v), v) for v in distinct]
    treated_values = pc.take(pa.array(treated, values.type), encoded.indices)
    always_values = pc.take(pa.array(always, pa.bool_()), encoded.indices)
    encoded_names = pc.dictionary_encode(children[names.index(name_item)])
    listed = [
        n is not None and segment_name(n) in allowed for n in encoded_names.dictionary.to_pylist()
    ]
    on_list = pc.fill_null(pc.take(pa.array(listed, pa.bool_()), encoded_names.indices), False)
    keep_clear = pc.and_(on_list, pc.invert(pc.fill_null(always_values, False)))
    children[names.index(value_item)] = pc.if_else(keep_clear, values, treated_values)
    rebuilt = pa.StructArray.from_arrays(
        children, fields=list(struct_type), mask=items.is_null() if items.null_count else None
    )
    cls = pa.ListArray if pa.types.is_list(column.type) else pa.LargeListArray
    return cls.from_arrays(
        column.offsets,
        rebuilt,
        type=column.type,
        mask=column.is_null() if column.null_count else None,
    )


def _always_personal(value: str) -> bool:
    return looks_like_email(value) or looks_like_phone(value)
