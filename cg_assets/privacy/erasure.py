"""Erasure: remove listed contacts from every day file of every table, and keep them out.

The identifiers (e-mail addresses or number_customer values, one a line or in a CSV column:
see identifiers.py) are hashed as soon as they are read and the clear text is dropped: only keyed hashes
reach the suppression list, the audit entry and whatever the caller shows. In order:
1. the hashes are added to the suppression list (so from now on every sync, whichever
   kind, drops those contacts' records before writing);
2. every day file of every table is scanned (its e-mail and number_customer columns
   only), and each file holding a listed contact is rewritten without those rows,
   atomically, under the table day's writer lock;
3. an audit entry is written with the lake (`_audit/`): when, how many identifiers, and
   per kind how many matched rows and how many matched nothing, rows removed per table
   and day, and the hashed identifiers.
The row counts are those of the rows each rewrite actually left out. A dry run does the
scan alone and writes nothing.
A crash in between is repaired by running the same erasure again: the list and the
rewrites are idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from cg_assets.lake import formats as lake_formats
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy import store
from cg_assets.privacy.hashing import Keyring, is_hashed
from cg_assets.privacy.identifiers import read_identifier_file
from cg_assets.privacy.policy import EndpointLike, PersonalColumns
from cg_assets.privacy.rewrite import rewrite_day, waiting_day_lock
from cg_assets.privacy.suppression import (
    Entry,
    IdentifierKind,
    SuppressionList,
    identifier_hash,
)

AUDIT_DIR = "_audit"
# How long the erasure waits for a sync that holds a day (a sync holds one for seconds to
# minutes). After that it fails naming the holder; the suppression list is already in force,
# and a re-run finishes the job.
LOCK_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class HashedIdentifier:
    kind: IdentifierKind
    hashes: dict[str, str]  # key id -> hash, under every configured key


def read_identifiers(path: str, keyring: Keyring) -> list[HashedIdentifier]:
    """Hash each identifier of the file under every configured key; the clear text is not
    kept. The formats, the cleaning and the refusals: cg_assets/privacy/identifiers.py.
    The same identifier given twice (or spelled twice alike) counts once."""
    keyring.require_current("the erasure job stores keyed hashes of the identifiers")
    current = keyring.require_current("").key_id
    out: dict[tuple[str, str], HashedIdentifier] = {}
    for identifier in read_identifier_file(path):
        hashes = {
            k.key_id: identifier_hash(k, identifier.kind, identifier.value) for k in keyring.all
        }
        out.setdefault(
            (identifier.kind, hashes[current]), HashedIdentifier(identifier.kind, hashes)
        )
    return list(out.values())


def suppression_entries(
    identifiers: Sequence[HashedIdentifier], suppression: SuppressionList, keyring: Keyring
) -> list[Entry]:
    """Entries for the identifiers under the current key. An identifier already listed
    (under any configured key) keeps its subject, so a re-run after a key rotation links
    its new hash to the old one (see SuppressionList.subjects_only_under_previous_keys)."""
    subject_of = {(e.kind, e.key_id, e.hash): e.subject for e in suppression.entries}
    current = keyring.require_current("").key_id
    entries = []
    for identifier in identifiers:
        subject = next(
            (
                subject_of[(identifier.kind, key_id, h)]
                for key_id, h in identifier.hashes.items()
                if (identifier.kind, key_id, h) in subject_of
            ),
            uuid.uuid4().hex,
        )
        entries.append(Entry(subject, identifier.kind, current, identifier.hashes[current]))
    return entries


KINDS: tuple[IdentifierKind, ...] = ("email", "number_customer")


class IdentifierIndex:
    """Which of this erasure's identifiers a lake value is: its e-mail columns may hold a
    clear address or its keyed hash (under any configured key), number_customer is clear."""

    def __init__(self, identifiers: Sequence[HashedIdentifier], keyring: Keyring) -> None:
        self._keys = keyring.all
        self._by_hash: dict[tuple[str, str], int] = {}
        for index, identifier in enumerate(identifiers):
            for h in identifier.hashes.values():
                self._by_hash[(identifier.kind, h)] = index

    def _which(self, value: str, kind: IdentifierKind, may_be_hashed: bool) -> int | None:
        if may_be_hashed and is_hashed(value):
            return self._by_hash.get((kind, value))
        for key in self._keys:
            found = self._by_hash.get((kind, identifier_hash(key, kind, value)))
            if found is not None:
                return found
        return None

    def column(
        self, values: pa.Array | pa.ChunkedArray, kind: IdentifierKind, may_be_hashed: bool
    ) -> pa.Array:
        """Per row, the index of the identifier the value is, or null."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
        encoded = pc.dictionary_encode(values)
        found = [
            None if v is None or v == "" else self._which(v, kind, may_be_hashed)
            for v in encoded.dictionary.to_pylist()
        ]
        return pc.take(pa.array(found, pa.int64()), encoded.indices)


@dataclass
class Matches:
    """What a scan found: rows matched (each once), rows by the kind of identifier that
    matched them (a row matched by its e-mail and its number_customer counts in both), and
    the indexes of the identifiers that matched at least one row."""

    rows: int = 0
    rows_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    identifiers: set[int] = field(default_factory=set)

    def add(self, other: Matches) -> None:
        self.rows += other.rows
        for kind, n in other.rows_by_kind.items():
            self.rows_by_kind[kind] += n
        self.identifiers |= other.identifiers


def match_rows(
    data: pa.RecordBatch | pa.Table, index: IdentifierIndex, columns: PersonalColumns
) -> tuple[pa.Array, Matches]:
    """(a mask of the rows an identifier matches, what matched)."""
    found = Matches()
    mask = pa.array([False] * data.num_rows, pa.bool_())
    names = set(data.schema.names)
    for kind, wanted, may_be_hashed in (
        ("email", columns.emails, True),
        ("number_customer", columns.customer_numbers, False),
    ):
        of_kind = pa.array([False] * data.num_rows, pa.bool_())
        for name in (c for c in wanted if c in names):
            which = index.column(data.column(name), kind, may_be_hashed)
            of_kind = pc.or_(of_kind, pc.is_valid(which))
            found.identifiers.update(v for v in pc.unique(which.drop_null()).to_pylist())
        found.rows_by_kind[kind] = pc.sum(of_kind).as_py() or 0
        mask = pc.or_(mask, of_kind)
    found.rows = pc.sum(mask).as_py() or 0
    return mask, found


@dataclass
class ErasureReport:
    erasure_id: str
    started_at: str
    identifiers: int
    identifiers_by_kind: dict[str, int]
    hashed_identifiers: list[dict[str, str]]  # kind, key_id, hash
    dry_run: bool = False
    rows_removed: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> day -> rows
    # Per kind: given, matched (identifiers that matched a row), unmatched, rows (matched by
    # that kind), already_listed (in the suppression list before this erasure). Counts only.
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    days_scanned: int = 0
    suppression_file: str | None = None
    audit_file: str | None = None
    # Erased contacts with no hash under the current key (only under CG_PII_PREVIOUS_KEYS):
    # while this is above 0, the previous keys are still needed (docs/personal-data.md, rotating the key).
    contacts_only_under_previous_keys: int = 0

    @property
    def total_rows_removed(self) -> int:
        return sum(sum(days.values()) for days in self.rows_removed.values())

    @property
    def unmatched(self) -> int:
        return sum(counts["unmatched"] for counts in self.by_kind.values())

    def as_json(self) -> dict[str, object]:
        return {
            "erasure_id": self.erasure_id,
            "started_at": self.started_at,
            "dry_run": self.dry_run,
            "identifiers": self.identifiers,
            "identifiers_by_kind": self.identifiers_by_kind,
            "by_kind": self.by_kind,
            "unmatched": self.unmatched,
            "hashed_identifiers": self.hashed_identifiers,
            "rows_removed": self.rows_removed,
            "total_rows_removed": self.total_rows_removed,
            "days_scanned": self.days_scanned,
            "suppression_file": self.suppression_file,
        }


def erase(
    lake: ParquetLake,
    endpoints: Sequence[EndpointLike],
    keyring: Keyring,
    identifiers: Sequence[HashedIdentifier],
    holder: str,
    on_day: Callable[[str, dt.date, int], None] | None = None,
    dry_run: bool = False,
) -> ErasureReport:
    """Carry out one erasure (see the module docstring); `on_day(table, day, rows_removed)`
    is called after each rewritten file. A dry run scans the same files and reports the
    same counts (`rows_removed`: the rows a real run would remove now), and writes nothing:
    no suppression entry, no rewrite, no audit entry."""
    now = dt.datetime.now(dt.timezone.utc)
    suppression = SuppressionList.load(lake)
    entries = suppression_entries(identifiers, suppression, keyring)
    listed = {(e.kind, e.key_id, e.hash) for e in suppression.entries}
    report = ErasureReport(
        erasure_id=uuid.uuid4().hex[:12],
        started_at=now.isoformat(timespec="seconds"),
        identifiers=len(identifiers),
        identifiers_by_kind={kind: sum(1 for i in identifiers if i.kind == kind) for kind in KINDS},
        hashed_identifiers=[{"kind": e.kind, "key_id": e.key_id, "hash": e.hash} for e in entries],
        dry_run=dry_run,
    )
    if not dry_run:
        report.suppression_file = suppression.add(entries, now)
    index = IdentifierIndex(identifiers, keyring)
    total = Matches()
    for endpoint in endpoints:
        columns = PersonalColumns.of(endpoint)
        if not (columns.emails or columns.customer_numbers):
            continue
        for day in lake.days(endpoint.name):
            report.days_scanned += 1
            if dry_run:
                found = _scan_day(lake, endpoint.name, day, index, columns)
            else:
                # Matched under the lock: a sync that read the suppression list before this
                # erasure added to it may publish the day up to the moment it lets the lock go.
                with waiting_day_lock(lake, endpoint.name, day, holder, LOCK_WAIT_SECONDS):
                    found = _rewrite_without(lake, endpoint.name, day, index, columns)
            total.add(found)
            if not found.rows:
                continue
            report.rows_removed.setdefault(endpoint.name, {})[day.isoformat()] = found.rows
            if on_day is not None and not dry_run:
                on_day(endpoint.name, day, found.rows)
        if report.rows_removed.get(endpoint.name) and not dry_run:
            # A Delta table keeps the replaced files for older versions: delete them now.
            lake_formats.vacuum(lake, endpoint.name)
    for kind in KINDS:
        of_kind = [i for i, identifier in enumerate(identifiers) if identifier.kind == kind]
        matched = sum(1 for i in of_kind if i in total.identifiers)
        report.by_kind[kind] = {
            "given": len(of_kind),
            "matched": matched,
            "unmatched": len(of_kind) - matched,
            "rows": total.rows_by_kind[kind],
            "already_listed": sum(
                1
                for i in of_kind
                if any((kind, k, h) in listed for k, h in identifiers[i].hashes.items())
            ),
        }
    report.contacts_only_under_previous_keys = suppression.subjects_only_under_previous_keys(
        keyring
    )
    if not dry_run:
        report.audit_file = write_audit(lake, report, now)
    return report


def _scan_day(
    lake: ParquetLake, table: str, day: dt.date, index: IdentifierIndex, columns: PersonalColumns
) -> Matches:
    """What the day holds of this erasure's identifiers; reads only the identifier columns."""
    parquet_file = lake.open_day(table, day)
    if parquet_file is None:
        return Matches()
    with parquet_file:
        names = parquet_file.schema_arrow.names
        present = [c for c in (*columns.emails, *columns.customer_numbers) if c in names]
        if not present:
            return Matches()
        data = parquet_file.read(columns=present)
    return match_rows(data, index, columns)[1]


def _rewrite_without(
    lake: ParquetLake, table: str, day: dt.date, index: IdentifierIndex, columns: PersonalColumns
) -> Matches:
    """Rewrite the day without the matched rows, if it has any (call with the lock held);
    the counts are those of the rows actually left out of the new file."""
    if not _scan_day(lake, table, day, index, columns).rows:
        return Matches()
    removed = Matches()

    def without_matches(batch: pa.RecordBatch) -> pa.RecordBatch:
        mask, found = match_rows(batch, index, columns)
        removed.add(found)
        return batch.filter(pc.invert(mask)) if found.rows else batch

    done = rewrite_day(lake, table, day, without_matches, {})
    if done is None:
        return Matches()
    if done.rows_before - done.rows_after != removed.rows:  # cannot happen; never misreport
        raise RuntimeError(
            f"{table} {day.isoformat()}: the erasure counted {removed.rows} row(s) but the "
            f"rewrite removed {done.rows_before - done.rows_after}."
        )
    return removed


def write_audit(lake: ParquetLake, report: ErasureReport, now: dt.datetime) -> str:
    path = f"{store.lake_dir(lake, AUDIT_DIR)}/{store.new_file_name('-erasure.json', now)}"
    data = json.dumps(report.as_json(), indent=2, sort_keys=True).encode()
    store.put_file(lake, path, data)
    return path


def audit_entries(lake: ParquetLake) -> list[dict[str, object]]:
    folder = store.lake_dir(lake, AUDIT_DIR)
    return [
        json.loads(store.read_file(lake, path))
        for path in store.list_files(lake, folder, "-erasure.json")
    ]
