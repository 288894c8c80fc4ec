"""Schema drift, named: the field paths a day carried that its table does not type, and the
typed columns it never filled.

Our names for some fields are guesses; a tenant's records may carry fields we do not
type (they land in `extra_fields`, decode.py) and leave typed ones empty (a wrong guess).
`DayDrift` keeps running totals over the batches that go into a day's file: per path in
`extra_fields`, how many values were not null; per typed column, how many rows it filled.
Only paths and counts: never a value, since extras may hold personal data.

A path names a field in the record's own shape: `survey_meta.channel`, `properties[].
field_id` (an item of a list). The extras of a batch are parsed by Arrow's JSON reader in
one call (C++, no Python per record); values whose types mix, which Arrow cannot infer,
are walked in Python instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from cg_assets.lake.columns import EXTRA_FIELDS_COLUMN

MAX_PATHS = 200  # in metadata: a tenant with thousands of question ids stays readable


class SchemaFrozenError(Exception):
    """CG_SCHEMA_CONTRACT=freeze and a day carried a field path not seen before."""


def extra_paths(column: pa.Array | pa.ChunkedArray) -> Counter[str]:
    """Each path in the column's JSON objects, with how many of its values are not null."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    texts = pc.drop_null(column)
    if len(texts) == 0:
        return Counter()
    one_list = pa.ListArray.from_arrays(pa.array([0, len(texts)], pa.int32()), texts)
    joined = pc.binary_join(one_list, "\n")[0].as_buffer()  # JSON lines: no newline inside
    try:
        table = pj.read_json(pa.BufferReader(joined))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _walk_texts(texts.to_pylist())
    out: Counter[str] = Counter()
    for name, chunks in zip(table.column_names, table.columns, strict=True):
        _count_array(name, chunks.combine_chunks(), out)
    return out


def _count_array(path: str, array: pa.Array, out: Counter[str]) -> None:
    kind = array.type
    if pa.types.is_struct(kind) and kind.num_fields:
        for field, child in zip(kind, array.flatten(), strict=True):  # flatten: parent nulls
            _count_array(f"{path}.{field.name}", child, out)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        _count_array(f"{path}[]", array.flatten(), out)
    else:
        out[path] += len(array) - array.null_count


def _walk_texts(texts: Iterable[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for text in texts:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # not written by decode.py: nothing to name
        if isinstance(value, dict):
            for name, child in value.items():
                _walk(name, child, out)
    return out


def _walk(path: str, value: Any, out: Counter[str]) -> None:
    if isinstance(value, dict) and value:
        for name, child in value.items():
            _walk(f"{path}.{name}", child, out)
    elif isinstance(value, list):
        for item in value:
            if item != {}:  # `{}`: an item with nothing undeclared (decode.py)
                _walk(f"{path}[]", item, out)
    else:
        out[path] += value is not None


class DayDrift:
    """Running totals over what goes into one table day's file."""

    def __init__(self, typed: Sequence[str], never_null_checked: Iterable[str] = ()) -> None:
        self.typed = tuple(typed)
        # Columns emptied on purpose (personal columns in CG_PII_MODE=drop): not drift.
        self.skipped = frozenset(never_null_checked)
        self.rows = 0
        self.filled: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()

    def observe(self, data: pa.RecordBatch | pa.Table) -> None:
        rows = data.num_rows
        if not rows:
            return
        self.rows += rows
        for name in self.typed:
            self.filled[name] += rows - data.column(name).null_count
        extra = data.column(EXTRA_FIELDS_COLUMN)
        if extra.null_count < rows:
            self.paths.update(extra_paths(extra))

    @property
    def extra_field_paths(self) -> dict[str, int]:
        return dict(sorted(self.paths.items())[:MAX_PATHS])

    @property
    def null_columns(self) -> list[str]:
        """Typed columns null in every row of a non-empty day."""
        if not self.rows:
            return []
        return [c for c in self.typed if not self.filled[c] and c not in self.skipped]

    def new_paths(self, known: Iterable[str]) -> list[str]:
        return sorted(set(self.paths) - set(known))
