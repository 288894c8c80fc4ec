"""The personal-data policy of one lake: what every write does with personal values.

- `LakePrivacy` (one per run) holds the mode (CG_PII_MODE), the keys, the retention
  (CG_PII_RETENTION_DAYS) and the suppression list, and checks at the run's start that they
  fit together (hash mode needs a key, so does retention, so does a non-empty suppression list).
- `DayPrivacy` (one per table day) is what a writer calls on every batch before writing it
  (`apply`): suppressed contacts' rows removed, then the personal columns and the personal
  values in `extra_fields` and the segment values (unless CG_PII_CLEAR_SEGMENTS names their
  segment; segments.py) kept, hashed or nulled. Its `footer` says in the file what was
  done (`cg_assets.pii`: clear | hashed | dropped, and the key's id).

A day older than the retention gets at least `hash` (`drop` in drop mode) whatever the mode,
so a full refresh of an old day never brings clear values back.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from cg_assets import clock
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.lake.schema import EXTRA_FIELDS_COLUMN
from cg_assets.privacy.hashing import Keyring, PiiKey
from cg_assets.privacy.requirements import require_keys
from cg_assets.privacy.rules import PiiKind, kind_of_name
from cg_assets.privacy.segments import clear_names, treat_segments
from cg_assets.privacy.suppression import SuppressionList, SuppressionMatcher
from cg_assets.privacy.transform import Treatment, treat_column, treat_extras
from cg_assets.settings import PrivacySettings

PiiState = Literal["clear", "hashed", "dropped"]
STATE_OF: dict[Treatment, PiiState] = {"keep": "clear", "hash": "hashed", "drop": "dropped"}
PROTECTION: dict[str, int] = {"clear": 0, "hashed": 1, "dropped": 2}
KV_PII = "cg_assets.pii"  # clear | hashed | dropped: what the file's personal columns hold
KV_PII_KEY_ID = "cg_assets.pii_key_id"  # the id of the key that made its hashes
CUSTOMER_NUMBER_COLUMN = "number_customer"


class ColumnLike(Protocol):
    name: str
    personal: bool


class EndpointLike(Protocol):
    name: str
    columns: Sequence[ColumnLike]


@dataclass(frozen=True)
class PersonalColumns:
    """An endpoint row's personal columns (flagged `personal=True`) and the columns an
    erasure identifier is matched against: its personal e-mail columns and number_customer."""

    personal: tuple[tuple[str, PiiKind], ...]
    emails: tuple[str, ...]
    customer_numbers: tuple[str, ...]
    # Segment columns: (column, name item, value item); see segments.py.
    segments: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def of(cls, endpoint: EndpointLike) -> PersonalColumns:
        personal = tuple((c.name, kind_of_name(c.name)) for c in endpoint.columns if c.personal)
        return cls(
            personal=personal,
            emails=tuple(name for name, kind in personal if kind == "email"),
            customer_numbers=tuple(
                c.name for c in endpoint.columns if c.name == CUSTOMER_NUMBER_COLUMN
            ),
            segments=tuple(
                (c.name, *c.segments)
                for c in endpoint.columns
                if getattr(c, "segments", None) is not None and not c.personal
            ),
        )


def file_pii_state(footer: dict[str, str] | None) -> PiiState:
    """A file written before the policy existed has no pii entry: its values are clear."""
    state = (footer or {}).get(KV_PII, "clear")
    return state if state in PROTECTION else "clear"  # type: ignore[return-value]


class DayPrivacy:
    """Applied to every batch written to one table day."""

    def __init__(
        self,
        treatment: Treatment,
        key: PiiKey | None,
        columns: PersonalColumns,
        matcher: SuppressionMatcher | None,
        clear_segments: frozenset[str] = frozenset(),
    ) -> None:
        self.treatment = treatment
        self.key = key
        self.columns = columns
        self.matcher = matcher
        self.clear_segments = clear_names(clear_segments)  # CG_PII_CLEAR_SEGMENTS
        self.suppressed_rows = 0

    @property
    def state(self) -> PiiState:
        return STATE_OF[self.treatment]

    def apply(self, data: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
        if self.matcher is not None and data.num_rows:
            drop = self.matcher.rows_to_drop(
                data, self.columns.emails, self.columns.customer_numbers
            )
            dropped = pc.sum(drop).as_py() or 0
            if dropped:
                data = data.filter(pc.invert(drop))
                self.suppressed_rows += dropped
        if self.treatment == "keep":
            return data
        kinds = dict(self.columns.personal)
        segments = {name: items for name, *items in self.columns.segments}
        arrays = []
        for field, column in zip(data.schema, data.columns, strict=True):
            if field.name in kinds:
                column = treat_column(column, kinds[field.name], self.treatment, self.key)
            elif field.name in segments:
                name_item, value_item = segments[field.name]
                column = treat_segments(
                    column, name_item, value_item, self.treatment, self.key, self.clear_segments
                )
            elif field.name == EXTRA_FIELDS_COLUMN:
                column = treat_extras(column, self.treatment, self.key)
            arrays.append(column)
        return type(data).from_arrays(arrays, schema=data.schema)

    def footer(self) -> dict[str, str]:
        return {
            KV_PII: self.state,
            KV_PII_KEY_ID: self.key.key_id if self.treatment == "hash" and self.key else "",
        }


class LakePrivacy:
    """The policy of one run over one lake."""

    def __init__(
        self,
        lake: ParquetLake,
        settings: PrivacySettings,
        keyring: Keyring,
        suppression: SuppressionList | None = None,
    ) -> None:
        self.lake = lake
        self.settings = settings
        self.keyring = keyring
        self.suppression = suppression if suppression is not None else SuppressionList.load(lake)
        self.validate()

    def validate(self) -> None:
        """Fail at a run's start, naming the variable, when the settings cannot be honoured."""
        has_list = bool(self.suppression.entries)
        require_keys(self.settings, self.keyring, suppression_list=has_list)
        if has_list:
            self.suppression.check_keys(self.keyring)

    def past_retention(self, day: dt.date, today: dt.date) -> bool:
        days = self.settings.retention_days
        return days is not None and (today - day).days > days

    def treatment_for(self, day: dt.date, today: dt.date) -> Treatment:
        mode: Treatment = self.settings.mode  # type: ignore[assignment]
        if mode == "keep" and self.past_retention(day, today):
            return "hash"
        return mode

    def retention_treatment(self) -> Treatment:
        return "drop" if self.settings.mode == "drop" else "hash"

    def for_day(self, endpoint: EndpointLike, day: dt.date, timezone: str) -> DayPrivacy:
        """Call with the table day's writer lock held: the list is re-read here, so an
        erasure that finished a moment ago applies to this write."""
        self.suppression.refresh()
        self.validate()
        today = clock.utc_now().astimezone(zoneinfo.ZoneInfo(timezone)).date()
        return DayPrivacy(
            self.treatment_for(day, today),
            self.keyring.current,
            PersonalColumns.of(endpoint),
            self.suppression.matcher(self.keyring),
            self.settings.clear_segments,
        )


class _NoPrivacy:
    """sync_day without a policy (benchmarks, old callers): writes what it fetched."""

    def for_day(self, endpoint: EndpointLike, day: dt.date, timezone: str) -> DayPrivacy:
        return DayPrivacy("keep", None, PersonalColumns.of(endpoint), None)


NO_PRIVACY = _NoPrivacy()
