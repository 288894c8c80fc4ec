"""The suppression list: erased contacts, as keyed hashes only, kept with the lake.

`{CG_LAKE_ROOT}/customergauge/_suppressed/*.parquet`, one file per erasure, each row one
hash of one erased identifier: `subject` (a random id shared by the hashes of one
identifier under different keys), `kind` (`email` or `number_customer`), `key_id` (which
CG_PII_KEY made the hash; see hashing.PiiKey.key_id) and `hash`. No identifier is stored
in clear, so the list itself is not a list of the people who asked to be forgotten.

Every sync applies the list before it writes (policy.DayPrivacy): a record whose e-mail
or number_customer hashes to a listed hash is not written. A hash made under a key that
is no longer configured cannot be matched, so the list refuses to be used without every
key it needs (`SuppressionList.check_keys`): an erased person never comes back silently
after a key rotation.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy import store
from cg_assets.privacy.hashing import Keyring, PiiKey, PiiKeyError, is_hashed, normalise

SUPPRESSED_DIR = "_suppressed"
IdentifierKind = Literal["email", "number_customer"]
ENTRY_SCHEMA = pa.schema(
    [
        pa.field("subject", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("key_id", pa.string(), nullable=False),
        pa.field("hash", pa.string(), nullable=False),
    ]
)


def identifier_hash(key: PiiKey, kind: IdentifierKind, identifier: str) -> str:
    """The keyed hash of an erasure identifier: an e-mail normalised as in the lake's e-mail
    columns (so it matches them, clear or hashed), a number_customer with white space trimmed."""
    return key.digest(normalise("email" if kind == "email" else "text", identifier))


@dataclass(frozen=True)
class Entry:
    subject: str
    kind: IdentifierKind
    key_id: str
    hash: str


class SuppressionList:
    """The list as loaded from the lake; `refresh` reads only files it has not read yet."""

    def __init__(self, lake: ParquetLake) -> None:
        self.lake = lake
        self.folder = store.lake_dir(lake, SUPPRESSED_DIR)
        self._read: set[str] = set()
        self.entries: list[Entry] = []

    @classmethod
    def load(cls, lake: ParquetLake) -> SuppressionList:
        suppression = cls(lake)
        suppression.refresh()
        return suppression

    def refresh(self) -> None:
        for path in store.list_files(self.lake, self.folder, ".parquet"):
            if path in self._read:
                continue
            table = pq.read_table(io.BytesIO(store.read_file(self.lake, path)))
            self.entries.extend(Entry(**row) for row in table.to_pylist())
            self._read.add(path)

    def __len__(self) -> int:
        return len({e.subject for e in self.entries})

    def add(self, entries: Sequence[Entry], now: dt.datetime | None = None) -> str | None:
        """Publish new entries as one new file; returns its path (None if nothing to add)."""
        known = {(e.subject, e.key_id, e.hash) for e in self.entries}
        fresh = [e for e in entries if (e.subject, e.key_id, e.hash) not in known]
        if not fresh:
            return None
        table = pa.Table.from_pylist([e.__dict__ for e in fresh], schema=ENTRY_SCHEMA)
        path = f"{self.folder}/{store.new_file_name('.parquet', now)}"
        store.put_file(self.lake, path, store.parquet_bytes(table))
        self.entries.extend(fresh)
        self._read.add(path)
        return path

    def subjects_without_key(self, keyring: Keyring) -> dict[str, set[str]]:
        """Subjects none of whose hashes the keyring can reproduce -> the key ids they need."""
        by_subject: dict[str, set[str]] = {}
        for e in self.entries:
            by_subject.setdefault(e.subject, set()).add(e.key_id)
        known = {k.key_id for k in keyring.all}
        return {s: ids for s, ids in by_subject.items() if not ids & known}

    def subjects_only_under_previous_keys(self, keyring: Keyring) -> int:
        """Subjects with no hash under the current key: the previous keys are still needed."""
        current = keyring.current.key_id if keyring.current else None
        by_subject: dict[str, set[str]] = {}
        for e in self.entries:
            by_subject.setdefault(e.subject, set()).add(e.key_id)
        return sum(1 for ids in by_subject.values() if current not in ids)

    def check_keys(self, keyring: Keyring) -> None:
        """Refuse to sync with a list whose hashes the configured keys cannot reproduce."""
        if not self.entries:
            return
        missing = self.subjects_without_key(keyring)
        if missing:
            key_ids = sorted(set().union(*missing.values()))
            raise PiiKeyError(
                f"The suppression list ({self.folder}) holds {len(missing)} erased contact(s) "
                f"hashed under key id(s) {', '.join(key_ids)}, which neither CG_PII_KEY nor "
                "CG_PII_PREVIOUS_KEYS holds: without it a sync could bring them back. Set "
                "CG_PII_PREVIOUS_KEYS to the earlier key(s) (docs/personal-data.md, 'Rotating CG_PII_KEY')."
            )

    def matcher(self, keyring: Keyring) -> SuppressionMatcher | None:
        if not self.entries:
            return None
        self.check_keys(keyring)
        by_key: dict[tuple[str, str], set[str]] = {}
        for e in self.entries:
            by_key.setdefault((e.kind, e.key_id), set()).add(e.hash)
        return SuppressionMatcher(keyring, by_key)


class SuppressionMatcher:
    """Which rows of a batch belong to a suppressed contact."""

    def __init__(self, keyring: Keyring, hashes: dict[tuple[str, str], set[str]]) -> None:
        self._keys = [(k, k.key_id) for k in keyring.all]
        self._hashes = hashes
        self._any = {
            kind: set().union(*(h for (k, _), h in hashes.items() if k == kind))
            for kind in ("email", "number_customer")
        }

    def matches(
        self, values: pa.Array | pa.ChunkedArray, kind: IdentifierKind, may_be_hashed: bool
    ) -> pa.Array:
        """True where a value is (or hashes to) a suppressed identifier of `kind`."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
        encoded = pc.dictionary_encode(values)
        hits = [
            v is not None and self._is_suppressed(v, kind, may_be_hashed)
            for v in encoded.dictionary.to_pylist()
        ]
        return pc.fill_null(pc.take(pa.array(hits, pa.bool_()), encoded.indices), False)

    def _is_suppressed(self, value: str, kind: IdentifierKind, may_be_hashed: bool) -> bool:
        if may_be_hashed and is_hashed(value):
            return value in self._any[kind]
        for key, key_id in self._keys:
            listed = self._hashes.get((kind, key_id))
            if listed and identifier_hash(key, kind, value) in listed:
                return True
        return False

    def rows_to_drop(
        self,
        data: pa.RecordBatch | pa.Table,
        email_columns: Iterable[str],
        customer_columns: Iterable[str],
    ) -> pa.Array:
        drop = pc.fill_null(pa.nulls(data.num_rows, pa.bool_()), False)
        for name in email_columns:
            drop = pc.or_(drop, self.matches(data.column(name), "email", may_be_hashed=True))
        for name in customer_columns:
            drop = pc.or_(
                drop, self.matches(data.column(name), "number_customer", may_be_hashed=False)
            )
        return drop
