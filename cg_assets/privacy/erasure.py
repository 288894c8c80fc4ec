"""Erasure: remove listed contacts from every day file of every table, and keep them out.

The identifiers (e-mail addresses or number_customer values, one a line in a text file)
are hashed as soon as they are read and the clear text is dropped: only keyed hashes
reach the suppression list, the audit entry and whatever the caller shows. In order:
1. the hashes are added to the suppression list (so from now on every sync, whichever
   kind, drops those contacts' records before writing);
2. every day file of every table is scanned (its e-mail and number_customer columns
   only), and each file holding a listed contact is rewritten without those rows,
   atomically, under the table day's writer lock;
3. an audit entry is written with the lake (`_audit/`): when, how many identifiers, rows
   removed per table and day, and the hashed identifiers.
A crash in between is repaired by running the same erasure again: the list and the
rewrites are idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc

from cg_assets.lake import formats as lake_formats
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy import store
from cg_assets.privacy.hashing import Keyring
from cg_assets.privacy.policy import DayPrivacy, EndpointLike, PersonalColumns
from cg_assets.privacy.rewrite import rewrite_day, waiting_day_lock
from cg_assets.privacy.suppression import (
    Entry,
    IdentifierKind,
    SuppressionList,
    SuppressionMatcher,
    identifier_hash,
)
from cg_assets.settings import SettingsError

AUDIT_DIR = "_audit"
# How long the erasure waits for a sync that holds a day (a sync holds one for seconds to
# minutes). After that it fails naming the holder; the suppression list is already in force,
# and a re-run finishes the job.
LOCK_WAIT_SECONDS = 600.0


class IdentifiersFileError(SettingsError):
    """The identifiers file cannot be used; the message never quotes a line of it."""


@dataclass(frozen=True)
class HashedIdentifier:
    kind: IdentifierKind
    hashes: dict[str, str]  # key id -> hash, under every configured key


def read_identifiers(path: str, keyring: Keyring) -> list[HashedIdentifier]:
    """Hash each identifier of the file under every configured key; the clear text is not kept.

    A line with an @ is an e-mail address, any other non-empty line a number_customer;
    blank lines and lines starting with # are skipped. Errors name the line number only.
    """
    keyring.require_current("the erasure job stores keyed hashes of the identifiers")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IdentifiersFileError(
            f"identifiers_file {path!r} does not exist: give the path of a text file, one "
            "e-mail address or number_customer a line, readable where the run executes."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentifiersFileError(
            f"identifiers_file {path!r} cannot be read as UTF-8 text ({type(exc).__name__})."
        ) from None
    out: dict[tuple[str, str], HashedIdentifier] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind: IdentifierKind = "email" if "@" in line else "number_customer"
        if kind == "email":
            local, _, domain = line.partition("@")
            if not local or not domain or "@" in domain or any(c.isspace() for c in line):
                raise IdentifiersFileError(
                    f"identifiers_file {path!r}, line {number}: not an e-mail address (one @, no "
                    "spaces) nor a number_customer (no @). The line itself is not shown."
                )
        hashes = {k.key_id: identifier_hash(k, kind, line) for k in keyring.all}
        current = hashes[keyring.require_current("").key_id]
        out.setdefault((kind, current), HashedIdentifier(kind, hashes))
    if not out:
        raise IdentifiersFileError(
            f"identifiers_file {path!r} holds no identifier: expected one e-mail address or "
            "number_customer a line."
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


@dataclass
class ErasureReport:
    erasure_id: str
    started_at: str
    identifiers: int
    identifiers_by_kind: dict[str, int]
    hashed_identifiers: list[dict[str, str]]  # kind, key_id, hash
    rows_removed: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> day -> rows
    days_scanned: int = 0
    suppression_file: str | None = None
    audit_file: str | None = None
    # Erased contacts with no hash under the current key (only under CG_PII_PREVIOUS_KEYS):
    # while this is above 0, the previous keys are still needed (README, rotating the key).
    contacts_only_under_previous_keys: int = 0

    @property
    def total_rows_removed(self) -> int:
        return sum(sum(days.values()) for days in self.rows_removed.values())

    def as_json(self) -> dict[str, object]:
        return {
            "erasure_id": self.erasure_id,
            "started_at": self.started_at,
            "identifiers": self.identifiers,
            "identifiers_by_kind": self.identifiers_by_kind,
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
) -> ErasureReport:
    """Carry out one erasure (see the module docstring); `on_day(table, day, rows_removed)`
    is called after each rewritten file."""
    now = dt.datetime.now(dt.timezone.utc)
    suppression = SuppressionList.load(lake)
    entries = suppression_entries(identifiers, suppression, keyring)
    report = ErasureReport(
        erasure_id=uuid.uuid4().hex[:12],
        started_at=now.isoformat(timespec="seconds"),
        identifiers=len(identifiers),
        identifiers_by_kind={
            kind: sum(1 for i in identifiers if i.kind == kind)
            for kind in ("email", "number_customer")
        },
        hashed_identifiers=[{"kind": e.kind, "key_id": e.key_id, "hash": e.hash} for e in entries],
    )
    report.suppression_file = suppression.add(entries, now)
    # Only this erasure's identifiers (and their hashes under every configured key): the
    # rest of the list was applied by the erasures and syncs before.
    hashes: dict[tuple[str, str], set[str]] = {}
    for identifier in identifiers:
        for key_id, h in identifier.hashes.items():
            hashes.setdefault((identifier.kind, key_id), set()).add(h)
    matcher = SuppressionMatcher(keyring, hashes)
    for endpoint in endpoints:
        columns = PersonalColumns.of(endpoint)
        wanted = [*columns.emails, *columns.customer_numbers]
        if not wanted:
            continue
        for day in lake.days(endpoint.name):
            report.days_scanned += 1
            # Matched under the lock: a sync that read the suppression list before this
            # erasure added to it may publish the day up to the moment it lets the lock go.
            with waiting_day_lock(lake, endpoint.name, day, holder, LOCK_WAIT_SECONDS):
                if not _day_matches(lake, endpoint.name, day, wanted, matcher, columns):
                    continue
                # "keep": only this erasure's rows go; the file's values are left as they are.
                without_erased = DayPrivacy("keep", None, columns, matcher)
                done = rewrite_day(lake, endpoint.name, day, without_erased.apply, {})
            if done is None or done.rows_before == done.rows_after:
                continue
            removed = done.rows_before - done.rows_after
            report.rows_removed.setdefault(endpoint.name, {})[day.isoformat()] = removed
            if on_day is not None:
                on_day(endpoint.name, day, removed)
        if report.rows_removed.get(endpoint.name):
            # A Delta table keeps the replaced files for older versions: delete them now.
            lake_formats.vacuum(lake, endpoint.name)
    report.contacts_only_under_previous_keys = suppression.subjects_only_under_previous_keys(
        keyring
    )
    report.audit_file = write_audit(lake, report, now)
    return report


def _day_matches(
    lake: ParquetLake,
    table: str,
    day: dt.date,
    wanted: list[str],
    matcher: SuppressionMatcher,
    columns: PersonalColumns,
) -> bool:
    """Does the day hold a listed contact? Reads only the identifier columns."""
    parquet_file = lake.open_day(table, day)
    if parquet_file is None:
        return False
    with parquet_file:
        present = [c for c in wanted if c in parquet_file.schema_arrow.names]
        table_data = parquet_file.read(columns=present)
    drop = matcher.rows_to_drop(
        table_data,
        [c for c in columns.emails if c in present],
        [c for c in columns.customer_numbers if c in present],
    )
    return bool(pc.any(drop).as_py())


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
