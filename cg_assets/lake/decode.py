"""Wire records -> one RecordBatch of a table's declared schema (columns.py).

Three paths, tried in turn, give the same batch (test_lake/test_decode_paths.py and
benchmarks/check_decode.py compare them on generated and broken pages):
1. Arrow's JSON reader parses the page's raw body (envelope.py). On the happy path this is
   the page's only parse: the client calls `read_page` on the body, which returns the
   records as Arrow arrays and the cursor, and `decode` assembles the batch from them; the
   dicts are decoded only for a page Arrow declines or whose arrays do not fit (paths 2, 3).
   It is the strictest: a value of another JSON type than its column's, or a repeated key,
   makes it give up.
   Fields the table does not declare are inferred by Arrow and ignored here; only then
   are the dicts decoded too (orjson) and walked in Python, to keep those fields in
   `extra_fields`. Once a page had such fields (responses always have: the answer is
   undeclared), the next pages are read skipping them, and walked: Arrow cannot infer a
   field whose values mix types, and inferring what is then thrown away costs time.
2. Arrow converts the decoded dicts in one pass, when every value is of its declared type
   (only for tables whose kinds Arrow converts exactly as path 3 does).
3. Column by column (`_decode_exact`): converts what it can (numbers in text columns, a
   "12" in an int column, ...) and raises a RecordDecodeError naming the record and field.

Nothing a record carries is dropped: whatever the table does not declare lands, as JSON in
the record's own shape, in `extra_fields`: `{"survey_id": 9, "contact": {"title": "Dr"},
"properties": [{}, {"field_id": 12}]}` (a list keeps one object per item, `{}` where the
item had nothing undeclared, so an index in it is the index in the declared column).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from cg_assets.customergauge import wire
from cg_assets.customergauge.client import PageContent
from cg_assets.customergauge.errors import ApiContractError
from cg_assets.customergauge.foreign_text import describe_value
from cg_assets.lake import envelope
from cg_assets.lake.columns import (
    TIMESTAMP_TYPE,
    Column,
    Kind,
    arrow_schema,
    key_column,
    known_tree,
)
from cg_assets.lake.envelope import ArrowPage

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
_DATE_RE = re.compile(_DATE_PATTERN)
_INT_RE = re.compile(r"^[+-]?\d+$")
_NULL_DATES = pa.array(wire.NULL_DATES, pa.string())
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Kinds that Arrow converts from Python values exactly as the exact path does (it would,
# say, turn True into 1 in an int column): only tables made of these use the dict path.
_DICT_PATH_KINDS = frozenset({"key", "string", "timestamp"})


class RecordDecodeError(ApiContractError):
    """A record does not fit the declared schema; names the page, the record and the field."""


class _Misfit(Exception):
    """A value that does not convert to its kind (turned into a RecordDecodeError)."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


class RecordDecoder:
    """Wire records -> RecordBatch of the declared schema. One instance per table."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.schema = arrow_schema(self.columns)
        self.key = key_column(self.columns)
        self._tree = known_tree(self.columns)
        self._wire_type = _wire_struct(self._tree)
        # Timestamps inside list items need a conversion the fast paths do not make.
        self._fast = not any(c.kind.has_timestamp_inside for c in self.columns)
        self._body_schema = envelope.body_schema(self._wire_type)
        self._dict_path = self._fast and all(_dict_path_kind(c.kind) for c in self.columns)
        # The last page had fields this table does not declare. Set by `decode` (main
        # thread), read by `read_page` (fetch thread): a stale value only picks the other
        # of two reads that give the same batch.
        self._expect_undeclared = False

    def read_page(self, body: bytes) -> PageContent | None:
        """The client's `PageReader`: a 2xx body's records (an `ArrowPage`) and cursor from
        one parse by Arrow, or None: the client decodes the body to dicts and checks it.

        Runs on the client's fetch thread. Declines tables the fast paths do not serve
        (timestamps inside lists) and any body Arrow does not take whole.
        """
        if not self._fast:
            return None
        read = None
        undeclared = True  # unknown unless Arrow infers: then its types tell
        if not self._expect_undeclared:
            read = envelope.read_body(body, self._body_schema)
            # Any undeclared field, at any depth, makes Arrow infer a child.
            undeclared = read is not None and read[0].type != self._wire_type
        if read is None:
            read = envelope.read_body(body, self._body_schema, infer=False)
            undeclared = True
        if read is None:
            return None
        records, next_cursor = read
        objects = None
        if undeclared and len(records):
            objects = _data_objects(body, len(records))
            if objects is None:
                return None
        page = ArrowPage(records, undeclared and objects is not None, objects, body)
        return PageContent(page, len(records), next_cursor)

    def decode(
        self,
        records: list[Any] | ArrowPage,
        synced_at: dt.datetime,
        where: str,
        body: bytes | None = None,
    ) -> pa.RecordBatch:
        """One page of wire records as a RecordBatch of the declared schema.

        `records` are the decoded dicts of the page's `data`, or what `read_page` made of
        its body. `body`, when given with dicts, is the raw JSON body they were decoded from.
        """
        if isinstance(records, ArrowPage):
            page = records
            batch = self._from_arrow(page.records, page.undeclared, page.objects, synced_at)
            if batch is not None:
                return batch
            # The arrays do not fit (a bad date, a record without its key, ...): the dict
            # paths convert or name the record, as for a body Arrow declined.
            records = page.objects if page.objects is not None else _page_objects(page.body, where)
            body = None  # Arrow's read is done and did not fit
        if self._fast and records:
            batch = None
            if body is not None:
                batch = self._decode_json(body, records, synced_at)
            if batch is None and self._dict_path:
                batch = self._decode_fast(records, synced_at)
            if batch is not None:
                return batch
        return self._decode_exact(records, synced_at, where)

    def empty(self) -> pa.Table:
        return self.schema.empty_table()

    # -- the fast paths ----------------------------------------------------------------

    def _decode_json(
        self, body: bytes, records: list[Any], synced_at: dt.datetime
    ) -> pa.RecordBatch | None:
        """The page's `data` parsed by Arrow's JSON reader, or None: take another path."""
        count = len(records)
        top = None
        if not self._expect_undeclared:
            top = envelope.read_records(body, self._body_schema, count)
            # Any undeclared field, at any depth, makes Arrow infer a child: only then do
            # the dicts need a walk for extra_fields.
            undeclared = top is not None and top.type != self._wire_type
        if top is None:
            top = envelope.read_records(body, self._body_schema, count, infer=False)
            undeclared = True  # unknown: the walk tells
        if top is None:
            return None
        return self._from_arrow(top, undeclared, records, synced_at)

    def _from_arrow(
        self,
        top: pa.StructArray,
        undeclared: bool,
        records: list[Any] | None,
        synced_at: dt.datetime,
    ) -> pa.RecordBatch | None:
        """The batch from Arrow's records; `records` (the dicts) are walked for extra_fields
        when the page may carry undeclared fields. None: take another path."""
        if undeclared and (records is None or not all(type(r) is dict for r in records)):
            return None
        batch = self._assemble(top, synced_at, records if undeclared else None)
        if batch is not None:
            self._expect_undeclared = (
                undeclared and batch.column(len(self.columns)).null_count < batch.num_rows
            )
        return batch

    def _decode_fast(self, records: list[Any], synced_at: dt.datetime) -> pa.RecordBatch | None:
        """The decoded dicts converted by Arrow in one pass, or None: take the exact path.

        Returns None whenever a value might convert differently on the exact path: a
        record that is not a dict, a key that is not an int (Arrow would truncate a float),
        an object on a column's path that is neither a dict nor null, a list of objects
        that is not a list of dicts, a value Arrow rejects, a date that is not well formed.
        """
        key = self.key.source
        for r in records:
            if type(r) is not dict or type(_get(r, key)) is not int:
                return None
            if not _shapes_ok(r, self._tree):
                return None
        try:
            top = pa.array(records, self._wire_type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None
        return self._assemble(top, synced_at, records)

    def _assemble(
        self, top: pa.StructArray, synced_at: dt.datetime, records: list[Any] | None
    ) -> pa.RecordBatch | None:
        """The batch from the parsed record structs; None if anything is not clean.

        `records`, when given, are walked for the fields the table does not declare.
        """
        count = len(top)
        children: dict[tuple[str, ...], list[pa.Array]] = {}

        def at(path: tuple[str, ...]) -> pa.Array | None:
            parent = top if len(path) == 1 else at(path[:-1])
            if parent is None:
                return None
            index = parent.type.get_field_index(path[-1])
            if index < 0:
                return None
            prefix = path[:-1]
            if prefix not in children:
                children[prefix] = parent.flatten()  # merges the parent's nulls
            return children[prefix][index]

        arrays: list[pa.Array] = []
        dates: list[int] = []
        for c in self.columns:
            array = at(c.source)
            if array is None:
                return None
            if c.kind.name == "timestamp":
                dates.append(len(arrays))
            elif array.type != c.kind.wire_type:
                if c.kind.name != "struct_list":
                    return None
                try:  # drops the item keys Arrow inferred (they are in extra_fields)
                    array = array.cast(c.kind.wire_type)
                except (pa.ArrowException, ValueError, TypeError):
                    return None
            if c.is_key and array.null_count:
                return None  # a record without its key: the exact path names it
            arrays.append(array)
        if dates:
            parsed = _dates_fast([arrays[i] for i in dates])
            if parsed is None:
                return None
            for i, array in zip(dates, parsed, strict=True):
                arrays[i] = array
        if records is None:
            arrays.append(pa.nulls(count, pa.string()))
        else:
            arrays.append(pa.array(self._extra_fields(records), pa.string()))
        arrays.append(pa.repeat(pa.scalar(synced_at, pa.timestamp("us", tz="UTC")), count))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    # -- the exact path ------------------------------------------------------------------

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

    def _column(self, records: list[dict[str, Any]], column: Column, where: str) -> pa.Array:
        values = self._values(records, column, where)
        kind = column.kind.name
        if kind == "key":
            return self._key_array(values, where)
        if kind == "timestamp":
            return self._date_array(values, records, column, where)
        if kind == "string":
            try:
                return pa.array(values, pa.string())
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                return pa.array([_as_text(v) for v in values], pa.string())
        converted = []
        for i, value in enumerate(values):
            try:
                converted.append(_convert(value, column.kind))
            except _Misfit as misfit:
                shown = f"a {type(value).__name__}" if column.personal else _short(value)
                raise RecordDecodeError(
                    f"{where}, record #{i} ({self._label(records[i])}): {column.name} is "
                    f"{shown}, not {misfit.expected}."
                ) from None
        return pa.array(converted, column.arrow_type)

    def _values(self, records: list[dict[str, Any]], column: Column, where: str) -> list[Any]:
        source = column.source
        if len(source) == 1:
            (name,) = source
            return [r.get(name) for r in records]
        out = []
        for i, r in enumerate(records):
            value: Any = r
            for depth, part in enumerate(source):
                if value is None:
                    break
                if not isinstance(value, dict):
                    raise RecordDecodeError(
                        f"{where}, record #{i} ({self._label(r)}): "
                        f"'{'.'.join(source[:depth])}' is {type(value).__name__}, expected an object."
                    )
                value = value.get(part)
            out.append(value)
        return out

    def _key_array(self, values: list[Any], where: str) -> pa.Array:
        for i, v in enumerate(values):
            if (
                v is None
                or isinstance(v, bool)
                or not (isinstance(v, int) or (isinstance(v, str) and v.isdigit()))
            ):
                problem = "is missing" if v is None else f"is {_short(v)}, not an integer"
                raise RecordDecodeError(f"{where}, record #{i}: '{self.key.name}' {problem}.")
        keys = [int(v) for v in values]
        for i, k in enumerate(keys):
            if not _INT64_MIN <= k <= _INT64_MAX:  # Arrow would raise a bare OverflowError
                raise RecordDecodeError(
                    f"{where}, record #{i}: '{self.key.name}' is {len(str(k))} digits long, "
                    "past a 64-bit integer (the lake's key type)."
                )
        return pa.array(keys, pa.int64())

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
        is_null_spelling = pc.is_in(text, value_set=_NULL_DATES)
        text = pc.if_else(is_null_spelling, pa.scalar(None, pa.string()), text)
        well_formed = pc.fill_null(pc.match_substring_regex(text, _DATE_PATTERN), True)
        if not pc.all(well_formed).as_py():
            index = pc.index(well_formed, False).as_py()
            raise self._bad_date(records, index, column, values[index], where)
        try:
            return text.cast(TIMESTAMP_TYPE)
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
            f"{describe_value(value)}, expected 'YYYY-MM-DD HH:MM:SS' or an empty date."
        )

    def _extra_fields(self, records: list[dict[str, Any]]) -> list[str | None]:
        tree = self._tree
        out: list[str | None] = []
        for r in records:
            extra = _undeclared(r, tree)
            out.append(_json_text(extra) if extra else None)
        return out

    def _label(self, record: dict[str, Any]) -> str:
        return f"{self.key.name} {describe_value(_get(record, self.key.source))}"


# -- helpers -------------------------------------------------------------------------------


def _wire_struct(tree: dict[str, object]) -> pa.StructType:
    return pa.struct(
        [
            (name, _wire_struct(node) if isinstance(node, dict) else node.wire_type)  # type: ignore[union-attr]
            for name, node in tree.items()
        ]
    )


def _data_objects(body: bytes, count: int) -> list[dict[str, Any]] | None:
    """The body's `data` as `count` dicts, or None if orjson does not read it so."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    data = decoded.get(wire.BODY_DATA) if type(decoded) is dict else None
    if type(data) is not list or len(data) != count or not all(type(r) is dict for r in data):
        return None
    return data


def _page_objects(body: bytes, where: str) -> list[Any]:
    """The body's `data` decoded to Python objects, for the dict paths."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # Arrow read it, orjson does not: name it
        raise RecordDecodeError(f"{where}: the body is not JSON that orjson reads: {exc}") from None
    data = decoded.get(wire.BODY_DATA) if isinstance(decoded, dict) else None
    if not isinstance(data, list):
        raise RecordDecodeError(f"{where}: '{wire.BODY_DATA}' is not a list of records.")
    return data


def _dict_path_kind(kind: Kind) -> bool:
    if kind.name == "struct_list":
        return all(_dict_path_kind(i.kind) for i in kind.items)
    return kind.name in _DICT_PATH_KINDS


def _get(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _shapes_ok(value: dict[str, Any], tree: dict[str, object]) -> bool:
    """Objects on declared paths are dicts (or null), lists of objects are lists of dicts."""
    for name, node in tree.items():
        child = value.get(name)
        if child is None:
            continue
        if isinstance(node, dict):
            if type(child) is not dict or not _shapes_ok(child, node):
                return False
        elif node.name == "struct_list":  # type: ignore[union-attr]
            if type(child) is not list or not all(_items_ok(i, node) for i in child):  # type: ignore[arg-type]
                return False
    return True


def _items_ok(item: Any, kind: Kind) -> bool:
    if item is None:
        return True
    if type(item) is not dict:
        return False
    for declared in kind.items:
        if declared.kind.name == "struct_list":
            value = item.get(declared.name)
            if value is not None and (
                type(value) is not list or not all(_items_ok(i, declared.kind) for i in value)
            ):
                return False
    return True


def _undeclared(value: dict[str, Any], tree: dict[str, object]) -> dict[str, Any]:
    """What `value` carries that `tree` does not declare, in `value`'s shape."""
    out: dict[str, Any] = {}
    for name, child in value.items():
        if name not in tree:
            out[name] = child
            continue
        node = tree[name]
        if isinstance(node, dict):
            if isinstance(child, dict):
                inner = _undeclared(child, node)
                if inner:
                    out[name] = inner
        elif node.name == "struct_list" and isinstance(child, list):  # type: ignore[union-attr]
            items = _undeclared_in_items(child, node)  # type: ignore[arg-type]
            if items is not None:
                out[name] = items
    return out


def _undeclared_in_items(items: list[Any], kind: Kind) -> list[dict[str, Any]] | None:
    declared = {i.name: i.kind for i in kind.items}
    out: list[dict[str, Any]] = []
    found = False
    for item in items:
        extra: dict[str, Any] = {}
        if isinstance(item, dict):
            for name, value in item.items():
                item_kind = declared.get(name)
                if item_kind is None:
                    extra[name] = value
                elif item_kind.name == "struct_list" and isinstance(value, list):
                    inner = _undeclared_in_items(value, item_kind)
                    if inner is not None:
                        extra[name] = inner
        found = found or bool(extra)
        out.append(extra)
    return out if found else None


def _dates_fast(columns: list[pa.Array]) -> list[pa.Array] | None:
    """All date columns of a page at once; None if any is not clean."""
    text = pa.concat_arrays(columns) if len(columns) > 1 else columns[0]
    is_null_spelling = pc.is_in(text, value_set=_NULL_DATES)
    text = pc.if_else(is_null_spelling, pa.scalar(None, pa.string()), text)
    well_formed = pc.fill_null(pc.match_substring_regex(text, _DATE_PATTERN), True)
    if not pc.all(well_formed).as_py():
        return None
    try:
        stamps = text.cast(TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        return None
    out, offset = [], 0
    for column in columns:
        out.append(stamps.slice(offset, len(column)))
        offset += len(column)
    return out


def _convert(value: Any, kind: Kind) -> Any:
    """One value as the Python value of its kind's Arrow type; _Misfit if it does not fit."""
    if value is None:
        return None
    name = kind.name
    if name == "string":
        return _as_text(value)
    if name == "int":
        if isinstance(value, bool):
            raise _Misfit("an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and _INT_RE.match(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or not _INT64_MIN <= value <= _INT64_MAX:
            raise _Misfit("a 64-bit integer")
        return value
    if name == "float":
        if isinstance(value, bool):
            raise _Misfit("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _Misfit("a number")
    if name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _Misfit("true or false")
    if name == "timestamp":
        if not isinstance(value, str):
            raise _Misfit("'YYYY-MM-DD HH:MM:SS' or an empty date")
        if value in wire.NULL_DATES:
            return None
        try:
            if not _DATE_RE.match(value):
                raise ValueError(value)
            return dt.datetime.strptime(value, wire.RECORD_DATE_FORMAT)
        except ValueError:
            raise _Misfit("'YYYY-MM-DD HH:MM:SS' or an empty date") from None
    if name == "string_list":
        if not isinstance(value, list):
            raise _Misfit("a list of strings")
        return [_as_text(v) for v in value]
    if name == "struct_list":
        if not isinstance(value, list) or not all(i is None or isinstance(i, dict) for i in value):
            raise _Misfit(f"a {kind.describe()} objects")
        return [
            None
            if item is None
            else {i.name: _convert(item.get(i.name), i.kind) for i in kind.items}
            for item in value
        ]
    raise _Misfit(kind.describe())  # the key is converted by _key_array


def _json_text(value: Any) -> str:
    """Compact JSON, keys sorted (orjson: about 5x faster than json on a responses page)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer past 64 bits: json writes it
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
