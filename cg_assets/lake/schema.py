"""The declared Arrow schema of a lake table, and the decoding of wire records into it.

An endpoint declares its columns (endpoints.py); this module turns a page of wire
records into one `pyarrow.RecordBatch` of exactly that schema. A clean page is parsed by
Arrow straight from its JSON body (or converted from the decoded dicts in one pass); any
other page goes column by column, which names the record and field that do not fit
(`RecordDecoder.decode`).

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
import pyarrow.json as pa_json

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
        self._fast = _FastPlan.build(self.columns)

    def decode(
        self,
        records: list[Any],
        synced_at: dt.datetime,
        where: str,
        body: bytes | None = None,
    ) -> pa.RecordBatch:
        """One page of wire records as a RecordBatch of the declared schema.

        `body`, when given, is the raw JSON body `records` were decoded from (its `data`).
        Three paths, tried in turn, give the same batch (benchmarks/check_decode.py
        compares them on generated and broken pages):
        1. Arrow's JSON reader parses `body` (C++, without the GIL, so it overlaps the
           next page's fetch). It is stricter than the others: any value that is not of its
           column's JSON type, a repeated key or a field this version does not know makes
           it give up.
        2. Arrow converts the decoded dicts in one pass, when every value is of its
           declared type.
        3. Column by column (`_decode_exact`): converts what it can (numbers in text
           columns, ...) and raises a RecordDecodeError naming the record and field.
        """
        if self._fast is not None and records:
            batch = None
            if body is not None:
                batch = self._decode_json(body, len(records), synced_at)
            if batch is None:
                batch = self._decode_fast(records, synced_at)
            if batch is not None:
                return batch
        return self._decode_exact(records, synced_at, where)

    def _decode_exact(
        self, records: list[Any], synced_at: dt.datetime, where: str
    ) -> pa.RecordBatch:
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

    # -- the fast path -----------------------------------------------------------------

    def _decode_json(
        self, body: bytes, count: int, synced_at: dt.datetime
    ) -> pa.RecordBatch | None:
        """The page's `data` parsed by Arrow's JSON reader, or None: take another path.

        Arrow fails on a value of another JSON type than its column's (a number in a text
        column, a float or a string key, an object that is not an object) and on a repeated
        key; fields not in the declared schema are inferred, which changes the parsed type,
        so a page with unknown fields (they go to `extra_fields`) is left to the dict paths.
        """
        plan = self._fast
        assert plan is not None
        try:
            table = pa_json.read_json(
                pa.py_buffer(body),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=plan.body_schema, unexpected_field_behavior="infer"
                ),
            )
        except (pa.ArrowException, ValueError, TypeError):
            return None
        if table.num_rows != 1:
            return None
        data = table.column(wire.BODY_DATA)
        if data.type != plan.body_schema.field(wire.BODY_DATA).type:
            return None  # unknown fields were inferred
        records = data.chunk(0).flatten()
        if len(records) != count or records.null_count:
            return None
        top = records.flatten()
        if top[plan.key_index].null_count:
            return None  # a record without its key: the exact path names it
        return self._assemble(top, count, synced_at, None)

    def _decode_fast(self, records: list[Any], synced_at: dt.datetime) -> pa.RecordBatch | None:
        """The decoded dicts converted by Arrow in one pass, or None: take the exact path.

        Returns None whenever a value might convert differently on the exact path: a
        record that is not a dict, a key that is not an int (Arrow would truncate a float),
        a nested object that is neither a dict nor null, a value Arrow rejects for its
        column, a date that is not well formed.
        """
        plan = self._fast
        assert plan is not None
        key = plan.key
        for r in records:
            if type(r) is not dict or type(r.get(key)) is not int:
                return None
        extras = not plan.known_top.issuperset(set().union(*records))
        for parent, known in plan.nested:
            for r in records:
                value = r.get(parent)
                if value is None:
                    continue
                if type(value) is not dict:
                    return None
                if not extras and not value.keys() <= known:
                    extras = True
        try:
            top = pa.array(records, plan.wire_type).flatten()
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None
        extra = pa.array(self._extra_fields(records), pa.string()) if extras else None
        return self._assemble(top, len(records), synced_at, extra)

    def _assemble(
        self,
        top: list[pa.Array],
        count: int,
        synced_at: dt.datetime,
        extra: pa.Array | None,
    ) -> pa.RecordBatch | None:
        """The batch from the wire struct's fields; None if a date is not clean."""
        plan = self._fast
        assert plan is not None
        arrays: list[pa.Array] = []
        nested: dict[int, list[pa.Array]] = {}
        for index, child in plan.sources:
            if child is None:
                arrays.append(top[index])
            else:
                if index not in nested:
                    nested[index] = top[index].flatten()
                arrays.append(nested[index][child])
        if plan.dates:
            dates = self._dates_fast([arrays[i] for i in plan.dates])
            if dates is None:
                return None
            for i, array in zip(plan.dates, dates, strict=True):
                arrays[i] = array
        arrays.append(extra if extra is not None else pa.nulls(count, pa.string()))
        arrays.append(pa.repeat(pa.scalar(synced_at, pa.timestamp("us", tz="UTC")), count))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _dates_fast(columns: list[pa.Array]) -> list[pa.Array] | None:
        """`_date_array` for all date columns of a page at once; None if any is not clean."""
        text = pa.concat_arrays(columns) if len(columns) > 1 else columns[0]
        is_null_spelling = pc.is_in(text, value_set=_NULL_DATES)
        text = pc.if_else(is_null_spelling, pa.scalar(None, pa.string()), text)
        well_formed = pc.fill_null(pc.match_substring_regex(text, _DATE_PATTERN), True)
        if not pc.all(well_formed).as_py():
            return None
        try:
            stamps = text.cast(TIMESTAMP)
        except pa.ArrowInvalid:
            return None
        out, offset = [], 0
        for column in columns:
            out.append(stamps.slice(offset, len(column)))
            offset += len(column)
        return out

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


_NULL_DATES = pa.array(wire.NULL_DATES, pa.string())


@dataclass(frozen=True)
class _FastPlan:
    """How `_decode_fast` reads a page: one Arrow struct type for the whole wire record."""

    wire_type: pa.StructType
    body_schema: pa.Schema  # a response body: {"data": [wire_type, ...]}
    key: str  # the key's wire name
    key_index: int  # its field in wire_type
    known_top: frozenset[str]
    nested: tuple[tuple[str, frozenset[str]], ...]  # parent -> known children
    sources: tuple[tuple[int, int | None], ...]  # per column: (top field, nested field)
    dates: tuple[int, ...]  # positions of the date columns

    @classmethod
    def build(cls, columns: Sequence[Column]) -> _FastPlan | None:
        top: dict[str, pa.DataType | dict[str, pa.DataType]] = {}
        for c in columns:
            wire_type = pa.string() if c.kind == "date" else c.arrow_type
            if len(c.source) == 1:
                if c.source[0] in top:
                    return None  # a name used twice: leave it to the exact path
                top[c.source[0]] = wire_type
            elif len(c.source) == 2:
                children = top.setdefault(c.source[0], {})
                if not isinstance(children, dict) or c.source[1] in children:
                    return None
                children[c.source[1]] = wire_type
            else:
                return None
        names = list(top)
        fields = [
            pa.field(name, pa.struct(list(t.items())) if isinstance(t, dict) else t)
            for name, t in top.items()
        ]
        sources: list[tuple[int, int | None]] = []
        for c in columns:
            index = names.index(c.source[0])
            child = top[c.source[0]]
            sources.append(
                (index, list(child).index(c.source[1]) if isinstance(child, dict) else None)
            )
        key = next(c for c in columns if c.kind == "key")
        if len(key.source) != 1:
            return None
        wire_type = pa.struct(fields)
        return cls(
            wire_type=wire_type,
            body_schema=pa.schema([pa.field(wire.BODY_DATA, pa.list_(wire_type))]),
            key=key.source[0],
            key_index=names.index(key.source[0]),
            known_top=frozenset(names),
            nested=tuple((name, frozenset(t)) for name, t in top.items() if isinstance(t, dict)),
            sources=tuple(sources),
            dates=tuple(i for i, c in enumerate(columns) if c.kind == "date"),
        )


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
