"""How an endpoint row declares its lake columns, and the one Arrow schema they make.

A `Column` maps a path in the wire record (`("email",)`, `("contact", "first_name")`, any
depth) onto a lake column of a `Kind`:

- scalars: `KEY` (int64, not null: the record key), `INT`, `FLOAT`, `BOOL`, `STRING`,
  `TIMESTAMP` (the API's `YYYY-MM-DD HH:MM:SS`, naive, in the system time zone);
- `STRING_LIST`: a list of strings;
- `struct_list(Item(...), ...)`: a list of objects with declared keys, each of any kind,
  struct lists included (any nesting depth).

Choices, and why:
- Objects on the path (`contact`, `account`) are flattened into columns: flat columns
  read the same in polars, DuckDB, Spark and BI tools, and get column statistics.
- Lists of objects (`properties`, `drivers`) stay lists: their length differs per record.
- Timestamps are microseconds because Parquet has no seconds unit and Spark reads micros.
- Nothing undeclared is dropped: it lands, as JSON in the record's shape, in
  `extra_fields` (see decode.py). So a column is declared only where its type is known.
- `synced_at` (UTC) says when a row was fetched.
- Every table has exactly this schema in every file; no column is ever Null-typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

KindName = Literal[
    "key", "int", "float", "bool", "string", "timestamp", "string_list", "struct_list"
]

TIMESTAMP_TYPE = pa.timestamp("us")
EXTRA_FIELDS_COLUMN = "extra_fields"
SYNCED_AT_COLUMN = "synced_at"
# Written into every file's footer; a file of another version is fetched again in full.
SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Kind:
    """A column's (or an item key's) type."""

    name: KindName
    items: tuple[Item, ...] = ()  # the declared keys of a struct_list's objects

    @property
    def arrow_type(self) -> pa.DataType:
        """The type stored in the lake."""
        if self.name == "struct_list":
            return pa.list_(pa.struct([(i.name, i.kind.arrow_type) for i in self.items]))
        return _SCALAR_TYPES[self.name]

    @property
    def wire_type(self) -> pa.DataType:
        """The type Arrow parses from JSON (timestamps arrive as text)."""
        if self.name == "timestamp":
            return pa.string()
        if self.name == "struct_list":
            return pa.list_(pa.struct([(i.name, i.kind.wire_type) for i in self.items]))
        return self.arrow_type

    @property
    def has_timestamp_inside(self) -> bool:
        return any(i.kind.name == "timestamp" or i.kind.has_timestamp_inside for i in self.items)

    def describe(self) -> str:
        if self.name == "struct_list":
            return "list of {" + ", ".join(i.name for i in self.items) + "}"
        return self.name


@dataclass(frozen=True)
class Item:
    """A declared key of the objects in a struct_list."""

    name: str
    kind: Kind


_SCALAR_TYPES: dict[str, pa.DataType] = {
    "key": pa.int64(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "timestamp": TIMESTAMP_TYPE,
    "string_list": pa.list_(pa.string()),
}

KEY = Kind("key")
INT = Kind("int")
FLOAT = Kind("float")
BOOL = Kind("bool")
STRING = Kind("string")
TIMESTAMP = Kind("timestamp")
STRING_LIST = Kind("string_list")


def struct_list(*items: Item) -> Kind:
    if not items or len({i.name for i in items}) != len(items):
        raise ValueError("a struct_list declares one or more keys, each once")
    if any(i.kind.name == "key" for i in items):
        raise ValueError("the record key is a top-level column, not an item key")
    return Kind("struct_list", tuple(items))


# Spellings of the first schema version, still accepted where a Column is declared.
_ALIASES: dict[str, Kind] = {
    "key": KEY,
    "int": INT,
    "float": FLOAT,
    "bool": BOOL,
    "string": STRING,
    "text": STRING,
    "timestamp": TIMESTAMP,
    "date": TIMESTAMP,
    "string_list": STRING_LIST,
}


@dataclass(frozen=True)
class Column:
    name: str
    source: tuple[str, ...]  # path in the wire record: ("email",) or ("contact", "first_name")
    kind: Kind
    description: str
    personal: bool = False  # never shown in previews or logs
    # A struct_list of named values (segment data: {field, reference}): the item holding the
    # name and the one holding the value. The values are personal in hash and drop mode
    # unless their name is on CG_PII_CLEAR_SEGMENTS (cg_assets/privacy/segments.py).
    segments: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.kind, str):
            if self.kind not in _ALIASES:
                raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}")
            object.__setattr__(self, "kind", _ALIASES[self.kind])
        if not self.source:
            raise ValueError(f"column {self.name!r}: empty source path")
        if self.segments is not None:
            items = {i.name for i in self.kind.items} if self.kind.name == "struct_list" else set()
            if not set(self.segments) <= items:
                raise ValueError(f"column {self.name!r}: segments names no item of a struct_list")

    @property
    def arrow_type(self) -> pa.DataType:
        return self.kind.arrow_type

    @property
    def is_key(self) -> bool:
        return self.kind.name == "key"


def key_column(columns: Sequence[Column]) -> Column:
    keys = [c for c in columns if c.is_key]
    if len(keys) != 1:
        raise ValueError(f"a table declares exactly one key column, not {len(keys)}")
    return keys[0]


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The table's one explicit schema: the declared columns, extra_fields, synced_at."""
    names = [c.name for c in columns]
    if len(set(names)) != len(names) or {EXTRA_FIELDS_COLUMN, SYNCED_AT_COLUMN} & set(names):
        raise ValueError(f"column names must be unique and not reserved: {names}")
    fields = [
        pa.field(
            c.name, c.arrow_type, nullable=not c.is_key, metadata={"description": c.description}
        )
        for c in columns
    ]
    fields.append(
        pa.field(
            EXTRA_FIELDS_COLUMN,
            pa.string(),
            metadata={
                "description": "JSON of everything in the record the table does not declare, in "
                "the record's shape: unknown fields, unknown keys of nested objects and of list "
                "items (null if none)"
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


def known_tree(columns: Sequence[Column]) -> dict[str, object]:
    """The declared source paths as a tree: name -> subtree (an object) or Kind (a column)."""
    tree: dict[str, object] = {}
    for c in columns:
        node = tree
        for part in c.source[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"column {c.name!r}: {part!r} is already a column")
            node = child
        if c.source[-1] in node:
            raise ValueError(f"column {c.name!r}: source {'.'.join(c.source)} declared twice")
        node[c.source[-1]] = c.kind
    return tree
