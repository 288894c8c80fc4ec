"""The declared Arrow schema of a lake table, and the decoding of wire records into it.

An endpoint declares its columns (endpoints.py); this module turns a page of wire
records into one `pyarrow.RecordBatch` of exactly that schema, column by column, so
that the Python work per record is a handful of dict look-ups.

Choices, and why:
- `contact` and `account` are flattened (`contact_first_name`, ...): flat columns read the
  same in polars, DuckDB, Spark and BI tools, and their statistics drive predicate pushdown.
- `properties` stays a list of `{field, reference}`: its fields differ per account.
- Dates become naive `timestamp[us]` in the system time zone (the API sends no offset);
  the zone is written into each file's key-value metadata. Microseconds because Parquet
  has no seconds unit and Spark reads micros natively.
- Fields the API adds later are not dropped: they land, as JSON, in `extra_fields`.
- `synced_at` (UTC) says when a row was fetched.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from cg_assets.customergauge import wire
from cg_assets.customergauge.errors import ApiContractError

ColumnKind = Literal["key", "text", "date", "properties"]

TIMESTAMP = pa.timestamp("us")
PROPERTIES_TYPE = pa.list_(pa.struct([("field", pa.string()), ("reference", pa.string())]))
_ARROW_TYPES: dict[str, pa.DataType] = {
    "key": pa.int64(),
    "text": pa.string(),
    "date": TIMESTAMP,
    "properties": PROPERTIES_TYPE,
}
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"

EXTRA_FIELDS_COLUMN = "extra_fields"
SYNCED_AT_COLUMN = "synced_at"
SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Column:
    name: str
    source: tuple[str, ...]  # path in the wire record: ("email",) or ("contact", "first_name")
    kind: ColumnKind
    description: str
    personal: bool = False  # never shown in previews or logs

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]


class RecordDecodeError(ApiContractError):
    """A record does not fit the declared schema; names the page, the record and the field."""


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    fields = [
        pa.field(
            c.name, c.arrow_type, nullable=c.kind != "key", metadata={"description": c.description}
        )
        for c in columns
    ]
    fields.append(
        pa.field(
            EXTRA_FIELDS_COLUMN,
            pa.string(),
            metadata={
                "description": "JSON object of record fields this version does not know yet (null if none)"
            },
        )
    )
    fields.append(
        pa.field(
            SYNCED_AT_COLUMN,
            pa.timestamp("us", tz="UTC"),
            nullable=False,
            metadata={"description": "When cg_assets fetched this record (UTC)"},
        )
    )
    return pa.schema(fields)


class RecordDecoder:
    """Wire records -> RecordBatch of the declared schema. One instance per table."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.schema = arrow_schema(self.columns)
        self.key = next(c for c in self.columns if c.kind == "key")
        self._known_top = {c.source[0] for c in self.columns}
        self._known_nested: dict[str, set[str]] = {}
        for c in self.columns:
            if len(c.source) == 2:
                self._known_nested.setdefault(c.source[0], set()).add(c.source[1])

    def decode(self, records: list[Any], synced_at: dt.datetime, where: str) -> pa.RecordBatch:
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise RecordDecodeError(
                    f"{where}, record #{index}: expected an object, got {type(record).__name__}."
                )
        arrays = [self._column(records, c, where) for c in self.columns]
        arrays.append(pa.array(self._extra_fields(records), pa.string()))
        arrays.append(pa.repeat(pa.scalar(synced_at, pa.timestamp("us", tz="UTC")), len(records)))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def empty(self) -> pa.Table:
        return self.schema.empty_table()

    # -- per column ------------------------------------------------------------------

    def _column(self, records: list[dict[str, Any]], column: Column, where: str) -> pa.Array:
        values = self._values(records, column, where)
        if column.kind == "key":
            return self._key_array(values, records, where)
        if column.kind == "date":
            return self._date_array(values, records, column, where)
        try:
            return pa.array(values, column.arrow_type)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        if column.kind == "text":
            return pa.array([_as_text(v) for v in values], pa.string())
        return pa.array(
            [self._properties(v, records, i, column, where) for i, v in enumerate(values)],
            PROPERTIES_TYPE,
        )

    def _values(self, records: list[dict[str, Any]], column: Column, where: str) -> list[Any]:
        if len(column.source) == 1:
            (name,) = column.source
            return [r.get(name) for r in records]
        parent, child = column.source
        try:
            return [(r.get(parent) or {}).get(child) for r in records]
        except AttributeError:
            for i, r in enumerate(records):
                if not isinstance(r.get(parent) or {}, dict):
                    raise RecordDecodeError(
                        f"{where}, record #{i} ({self._label(r)}): '{parent}' is "
                        f"{type(r[parent]).__name__}, expected an object."
                    ) from None
            raise

    def _key_array(self, values: list[Any], records: list[dict[str, Any]], where: str) -> pa.Array:
        for i, v in enumerate(values):
            if (
                v is None
                or isinstance(v, bool)
                or not (isinstance(v, int) or (isinstance(v, str) and v.isdigit()))
            ):
                problem = "is missing" if v is None else f"is {v!r}, not an integer"
                raise RecordDecodeError(f"{where}, record #{i}: '{self.key.name}' {problem}.")
        return pa.array([int(v) for v in values], pa.int64())

    def _date_array(
        self, values: list[Any], records: list[dict[str, Any]], column: Column, where: str
    ) -> pa.Array:
        try:
            text = pa.array(values, pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            index = next(
                i for i, v in enumerate(values) if v is not None and not isinstance(v, str)
            )
            raise self._bad_date(records, index, column, values[index], where) from None
        is_null_spelling = pc.is_in(text, value_set=pa.array(wire.NULL_DATES, pa.string()))
        text = pc.if_else(is_null_spelling, pa.scalar(None, pa.string()), text)
        well_formed = pc.fill_null(pc.match_substring_regex(text, _DATE_PATTERN), True)
        if not pc.all(well_formed).as_py():
            index = pc.index(well_formed, False).as_py()
            raise self._bad_date(records, index, column, values[index], where)
        try:
            return text.cast(TIMESTAMP)
        except pa.ArrowInvalid:  # well formed but impossible, such as 2026-02-31
            for i, v in enumerate(text.to_pylist()):
                try:
                    if v is not None:
                        dt.datetime.strptime(v, wire.RECORD_DATE_FORMAT)
                except ValueError:
                    raise self._bad_date(records, i, column, values[i], where) from None
            raise

    def _bad_date(
        self, records: list[dict[str, Any]], index: int, column: Column, value: Any, where: str
    ) -> RecordDecodeError:
        return RecordDecodeError(
            f"{where}, record #{index} ({self._label(records[index])}): {column.name} is "
            f"{value!r}, expected 'YYYY-MM-DD HH:MM:SS' or an empty date."
        )

    def _properties(
        self, value: Any, records: list[dict[str, Any]], index: int, column: Column, where: str
    ) -> list[dict[str, str | None]] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
            raise RecordDecodeError(
                f"{where}, record #{index} ({self._label(records[index])}): {column.name} is not a "
                "list of {field, reference} objects."
            )
        return [
            {"field": _as_text(p.get("field")), "reference": _as_text(p.get("reference"))}
            for p in value
        ]

    def _extra_fields(self, records: list[dict[str, Any]]) -> list[str | None]:
        out: list[str | None] = []
        for r in records:
            extra: dict[str, Any] = {k: r[k] for k in r.keys() - self._known_top}
            for parent, known in self._known_nested.items():
                nested = r.get(parent)
                if isinstance(nested, dict) and not nested.keys() <= known:
                    extra[parent] = {k: nested[k] for k in nested.keys() - known}
            out.append(json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None)
        return out

    def _label(self, record: dict[str, Any]) -> str:
        return f"{self.key.name} {record.get(self.key.source[0])!r}"


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def in_day_mask(dates: pa.Array | pa.ChunkedArray, day: dt.date) -> pa.Array | pa.ChunkedArray:
    """True where a timestamp falls on `day`; a null date is not on any day."""
    on_day = pc.equal(pc.cast(dates, pa.date32()), pa.scalar(day, pa.date32()))
    return pc.fill_null(on_day, False)
