"""The simulator's data: a seeded generator, an indexed in-memory store and its mutations.

Each record has an internal primary key ``pk`` (an int, never exposed on the wire). The
three period dates of every record are generated eagerly (they feed the indexes); the rest
of a record is derived on demand from a per-record ``random.Random(seed, pk)`` and cached
as JSON bytes the first time it is served, so a page is built by joining bytes.

Indexes: one global sorted list of live pks, and per period field a dict
day-string -> sorted list of live pks (plus the sorted list of day strings), so a page is
found with ``bisect`` on the cursor and ``heapq.merge`` across days, never a full scan.

Dates are naive ``RECORD_DATE_FORMAT`` strings in the simulated system's time zone; inside
this module they are ints: seconds since 1970-01-01 00:00:00 on that naive clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import json
import random
import threading
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from itertools import islice
from typing import Any

from cg_assets.customergauge import wire

try:  # optional speed-up; the simulator runs on the standard library alone
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

DATE_SENT, DATE_CREATION, DATE_ORDER = wire.PERIOD_FIELDS

KEY_BASE = 3_400_000
KEY_STEP = 3
FAILED_STATUS = "survey-failed"
STATUSES = ("survey-sent", "survey-opened", "survey-clicked", "reminder-sent")
_STATUS_WEIGHTS = (40, 25, 15, 20)
PROPERTIES = wire.WITH_PROPERTIES

# status by one random byte, following the weights
_STATUS_BY_BYTE = tuple(
    next(
        status
        for status, cumulative in zip(
            STATUSES,
            [sum(_STATUS_WEIGHTS[: i + 1]) for i in range(len(STATUSES))],
            strict=True,
        )
        if b * sum(_STATUS_WEIGHTS) < cumulative * 256
    )
    for b in range(256)
)

_DAY = 86_400
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_MAX_CREATION_LAG = 36 * 3600  # date_creation = date_sent - 0..36 h
_MAX_ORDER_LAG = 10 * _DAY  # date_order = date_creation - 0..10 days

# (display, ascii for e-mail addresses)
_FIRST_NAMES = (
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("José", "jose"),
    ("伟", "wei"),
    ("Anna", "anna"),
    ("Søren", "soren"),
    ("François", "francois"),
    ("Mårten", "marten"),
    ("João", "joao"),
    ("Agnieszka", "agnieszka"),
    ("Jan", "jan"),
    ("Emma", "emma"),
    ("Björn", "bjorn"),
    ("Chloé", "chloe"),
    ("Mei", "mei"),
    ("Siobhán", "siobhan"),
    ("Pieter", "pieter"),
    ("Noah", "noah"),
    ("Ana", "ana"),
    ("Jürgen", "juergen"),
)
_LAST_NAMES = (
    ("de Vries", "devries"),
    ("Müller", "mueller"),
    ("Nowak", "nowak"),
    ("García", "garcia"),
    ("张", "zhang"),
    ("O'Brien", "obrien"),
    ("Søndergaard", "sondergaard"),
    ("Dubois", "dubois"),
    ("Silva", "silva"),
    ("Jansen", "jansen"),
    ("Smith", "smith"),
    ("Kowalczyk", "kowalczyk"),
    ("Ærø", "aero"),
    ("李", "li"),
    ("van den Berg", "vandenberg"),
    ("Gonçalves", "goncalves"),
)
_ACCOUNTS = (
    "ACME",
    "Ærøskøbing Shipping ApS",
    "Zoë's Café B.V.",
    "北京星辰科技有限公司",
    "Łódź Logistics Sp. z o.o.",
    "Müller & Söhne GmbH",
    "Café São Paulo Ltda.",
    "Nordic Fjord AS",
    "Globex Corporation",
    "Initech",
    "Société d'Électricité du Nord",
    "Umbrella Health",
    "Zürich Rück AG",
    "Groningen Gasunie-achtig N.V.",
)
_DOMAINS = ("example.com", "example.nl", "example.de", "mail.example.org", "example.co.uk")
_LANGUAGES = ("EN", "EN", "EN", "NL", "NL", "DE", "FR", "ES", "PT", "ZH", "PL", "DA")
_PHONE_PREFIXES = (31, 49, 33, 34, 351, 86, 48, 45, 44, 1)
_COUNTRIES = ("NL", "DE", "FR", "ES", "PT", "CN", "PL", "DK", "GB", "US", "BE")
_DIVISIONS = ("Global", "EMEA", "APAC", "Americas")
_TOUCHPOINTS = ("Relationship", "Transactional", "Onboarding", "Support")
_SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
_LINK_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_LINK_PREFIX = f"https://survey.{wire.REGIONS[0]}.customergauge.com/r/"


def dumps(obj: object) -> bytes:
    """Compact JSON as UTF-8 bytes (orjson when importable)."""
    if _orjson is not None:
        return _orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON (orjson when importable)."""
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data)


def parse_day(value: dt.date | str) -> dt.date:
    """A date, or a strict ``YYYY-MM-DD`` string; ValueError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError(f"not a {wire.PERIOD_DATE_FORMAT} date: {value!r}")
    return dt.datetime.strptime(value, wire.PERIOD_DATE_FORMAT).date()


def day_string(day: dt.date) -> str:
    return day.strftime(wire.PERIOD_DATE_FORMAT)


def key_of(pk: int) -> int:
    """The public ``number_customergauge`` of a pk."""
    return KEY_BASE + pk * KEY_STEP


def pk_of(key: int) -> int | None:
    """The pk of a ``number_customergauge``, or None if no pk can have that key."""
    if not isinstance(key, int) or isinstance(key, bool):
        return None
    pk, rest = divmod(key - KEY_BASE, KEY_STEP)
    return pk if rest == 0 and pk > 0 else None


_DAY_STRINGS: dict[int, str] = {}


def _day_str(day_number: int) -> str:
    text = _DAY_STRINGS.get(day_number)
    if text is None:
        text = day_string(dt.date.fromordinal(day_number + _EPOCH_ORDINAL))
        _DAY_STRINGS[day_number] = text
    return text


# the fast path below builds exactly this format; anything else falls back to strftime
_FAST_FORMAT = wire.RECORD_DATE_FORMAT == wire.PERIOD_DATE_FORMAT + " %H:%M:%S"


def format_ts(ts: int) -> str:
    """Naive epoch seconds as a ``RECORD_DATE_FORMAT`` string."""
    if not _FAST_FORMAT:  # pragma: no cover - only if the wire format changes
        return (_EPOCH + dt.timedelta(seconds=ts)).strftime(wire.RECORD_DATE_FORMAT)
    day_number, seconds = divmod(ts, _DAY)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day_str(day_number)} {hours:02d}:{minutes:02d}:{seconds:02d}"


def day_start_ts(day: dt.date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY


def datetime_ts(moment: dt.datetime) -> int:
    """Naive epoch seconds of a naive (wall-clock) datetime."""
    return day_start_ts(moment.date()) + moment.hour * 3600 + moment.minute * 60 + moment.second


class Dataset:
    """Seeded, indexed, thread-safe store of non-response records."""

    def __init__(
        self,
        *,
        records: int,
        start: dt.date,
        end: dt.date,
        seed: int = 1,
        prewarm: int = 0,
        not_after: dt.datetime | None = None,
    ) -> None:
        """`not_after` (naive, the simulated system's wall clock): no generated record is
        dated later, so a day still in progress holds only what was sent so far (records
        arriving later come from `add_records`, e.g. the live loop). Days wholly after it get
        none of the `records`."""
        if records < 0:
            raise ValueError("records must be >= 0")
        if end < start:
            raise ValueError("end must not be before start")
        self.seed = seed
        self.start = start
        self.end = end
        self.lock = threading.RLock()
        self._mutation_rng = random.Random(seed * 7_919 + 104_729)
        self._hash_key = seed.to_bytes(16, "little", signed=True)
        # dates by pk (index 0 unused)
        self._dates: dict[str, array] = {f: array("q", [0]) for f in wire.PERIOD_FIELDS}
        self._live = bytearray(1)
        self._all: list[int] = []
        self._by_day: dict[str, dict[str, list[int]]] = {f: {} for f in wire.PERIOD_FIELDS}
        self._days: dict[str, list[str]] = {f: [] for f in wire.PERIOD_FIELDS}
        self._status: dict[int, str] = {}
        self._cache: dict[int, tuple[bytes, int]] = {}
        self.max_pk = 0
        self._not_after = None if not_after is None else datetime_ts(not_after)
        self._generate(records)
        if prewarm > 0:
            self.prewarm(prewarm)

    # --- generation -------------------------------------------------------------------
    def _generate(self, n: int) -> None:
        rng = random.Random(self.seed)
        randrange = rng.randrange
        n_days = (self.end - self.start).days + 1
        base = day_start_ts(self.start)
        sent: list[int] = []
        for d in range(n_days):
            count = (d + 1) * n // n_days - d * n // n_days
            day0 = base + d * _DAY
            span = _DAY if self._not_after is None else min(_DAY, self._not_after - day0 + 1)
            if span > 0:  # never a date_sent after not_after (creation and order are earlier)
                sent.extend(sorted([day0 + randrange(span) for _ in range(count)]))
        n = len(sent)
        # pks follow date_sent roughly, with some local shuffling
        rand = rng.random
        for i in range(n - 1):
            if rand() < 0.1:
                j = min(n - 1, i + randrange(1, 5))
                sent[i], sent[j] = sent[j], sent[i]
        creation = [s - randrange(_MAX_CREATION_LAG + 1) for s in sent]
        order = [c - randrange(_MAX_ORDER_LAG + 1) for c in creation]
        self._dates[DATE_SENT].extend(sent)
        self._dates[DATE_CREATION].extend(creation)
        self._dates[DATE_ORDER].extend(order)
        self._live.extend(b"\x01" * n)
        self._all = list(range(1, n + 1))
        self.max_pk = n
        for field, values in self._dates.items():
            by_number: dict[int, list[int]] = {}
            for pk in range(1, n + 1):
                day_number = values[pk] // _DAY
                bucket = by_number.get(day_number)
                if bucket is None:
                    by_number[day_number] = [pk]
                else:
                    bucket.append(pk)
            self._by_day[field] = {_day_str(k): v for k, v in by_number.items()}
            self._days[field] = sorted(self._by_day[field])

    def _build(self, pk: int) -> dict[str, Any]:
        """The full record (with properties, as the last key) of a pk.

        Every value comes from 64 bytes of a BLAKE2b keyed by the seed (faster than
        seeding a ``random.Random`` per record, and just as deterministic).
        """
        h = hashlib.blake2b(pk.to_bytes(8, "little"), digest_size=64, key=self._hash_key).digest()

        def num(a: int, b: int, low: int, high: int) -> int:
            return low + int.from_bytes(h[a:b], "little") % (high - low)

        first, first_ascii = _FIRST_NAMES[h[0] % len(_FIRST_NAMES)]
        last, last_ascii = _LAST_NAMES[h[1] % len(_LAST_NAMES)]
        status = _STATUS_BY_BYTE[h[2]]
        sent = self._dates[DATE_SENT][pk]
        if status in STATUSES[1:3] or (status == STATUSES[3] and h[5] < 77):
            opened_ts = sent + num(6, 9, 60, 3 * _DAY)
            opened = format_ts(opened_ts)
        else:
            opened_ts = None
            opened = wire.NULL_DATES[h[11] % len(wire.NULL_DATES)]
        if status == STATUSES[2] and opened_ts is not None:
            clicked = format_ts(opened_ts + num(9, 11, 5, 3600))
        else:
            clicked = wire.NULL_DATES[h[12] % len(wire.NULL_DATES)]
        phone = (
            None
            if h[17] < 64
            else f"+{_PHONE_PREFIXES[h[18] % len(_PHONE_PREFIXES)]} "
            f"{num(19, 23, 100_000_000, 999_999_999)}"
        )
        link = "".join([_LINK_ALPHABET[b % len(_LINK_ALPHABET)] for b in h[23:33]])
        manager = f"{_FIRST_NAMES[h[34] % len(_FIRST_NAMES)][0]} {_LAST_NAMES[h[35] % len(_LAST_NAMES)][0]}"
        properties = [
            {"field": "Country", "reference": _COUNTRIES[h[36] % len(_COUNTRIES)]},
            {
                "field": "Division",
                "reference": None if h[37] < 26 else _DIVISIONS[h[38] % len(_DIVISIONS)],
            },
            {"field": "Touchpoint", "reference": _TOUCHPOINTS[h[39] % len(_TOUCHPOINTS)]},
            {
                "field": "Key Contact",
                "reference": None if h[40] < 179 else ("Yes", "No")[h[41] & 1],
            },
            {
                "field": "Segment A",
                "reference": None if h[42] < 154 else _SEGMENTS[h[43] % len(_SEGMENTS)],
            },
            {"field": "Account Manager", "reference": None if h[44] < 128 else manager},
        ]
        return {
            "status": self._status.get(pk, status),
            "contact": {"first_name": first, "last_name": last},
            "account": {
                "name": _ACCOUNTS[h[45] % len(_ACCOUNTS)],
                "number": None if h[13] < 51 else str(num(14, 17, 100, 99_999)),
            },
            wire.RECORD_KEY: key_of(pk),
            "number_customer": str(num(46, 49, 100_000, 999_999)),
            "number_order": f"SO-{num(49, 53, 1_000_000, 9_999_999)}",
            "email": f"{first_ascii}.{last_ascii}{1 + h[53] % 99}@{_DOMAINS[h[54] % len(_DOMAINS)]}",
            "phone": phone,
            DATE_CREATION: format_ts(self._dates[DATE_CREATION][pk]),
            DATE_ORDER: format_ts(self._dates[DATE_ORDER][pk]),
            DATE_SENT: format_ts(sent),
            "date_opened": opened,
            "date_clicked": clicked,
            "date_email_sent": format_ts(sent + num(3, 5, 0, 900)),
            "language": _LANGUAGES[h[55] % len(_LANGUAGES)],
            "link": f"{_LINK_PREFIX}{link}-r_{1 + h[33] % 98}",
            PROPERTIES: properties,
        }

    def _encoded(self, pk: int) -> tuple[bytes, int]:
        cached = self._cache.get(pk)
        if cached is None:
            data = dumps(self._build(pk))
            if _orjson is not None:
                # orjson's bytes keep a large over-allocated buffer: keep a tight copy
                data = bytes(memoryview(data))
            cut = data.rfind(b',"' + PROPERTIES.encode() + b'":')
            cached = (data, cut)
            self._cache[pk] = cached
        return cached

    def prewarm(self, limit: int | None = None) -> int:
        """Serialize the first `limit` live records (all if None) now, instead of on first
        serve. Returns how many were serialized."""
        done = 0
        with self.lock:
            last = self.max_pk if limit is None else min(self.max_pk, limit)
            for pk in range(1, last + 1):
                if self._live[pk] and pk not in self._cache:
                    self._encoded(pk)
                    done += 1
        return done

    # --- reading ----------------------------------------------------------------------
    def __len__(self) -> int:
        with self.lock:
            return len(self._all)

    def is_live(self, pk: int) -> bool:
        return 0 < pk <= self.max_pk and bool(self._live[pk])

    def select(
        self,
        field: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[int]:
        """Live pks in pk order, whose `field` day is in [start, end], pk > after."""
        with self.lock:
            if field is None or (start is None and end is None):
                pks = self._all
                i = 0 if after is None else bisect_right(pks, after)
                return pks[i:] if limit is None else pks[i : i + limit]
            days = self._days[field]
            lo = 0 if start is None else bisect_left(days, day_string(start))
            hi = len(days) if end is None else bisect_right(days, day_string(end))
            by_day = self._by_day[field]
            slices = []
            for day in days[lo:hi]:
                pks = by_day[day]
                i = 0 if after is None else bisect_right(pks, after)
                if i < len(pks):
                    slices.append(pks[i:] if limit is None else pks[i : i + limit])
            if not slices:
                return []
            if len(slices) == 1:
                return slices[0]
            if limit is not None:
                # a full slice alone holds `limit` pks <= its last one: nothing above can win
                full = [s[-1] for s in slices if len(s) == limit]
                if full:
                    bound = min(full)
                    slices = [s[: bisect_right(s, bound)] for s in slices if s[0] <= bound]
            merged = heapq.merge(*slices)
            return list(merged if limit is None else islice(merged, limit))

    def render(self, pks: Iterable[int], *, with_properties: bool) -> list[bytes]:
        """The JSON bytes of each pk's record (with or without its properties)."""
        with self.lock:
            encoded = self._encoded
            if with_properties:
                return [encoded(pk)[0] for pk in pks]
            parts = []
            for pk in pks:
                data, cut = encoded(pk)
                parts.append(data[:cut] + b"}")
            return parts

    def page(
        self,
        *,
        field: str | None,
        start: dt.date | None,
        end: dt.date | None,
        after: int | None,
        limit: int,
        with_properties: bool,
    ) -> tuple[list[bytes], int | None]:
        """One page: the records' JSON bytes and the pk of the last one (None if empty)."""
        with self.lock:
            pks = self.select(field, start, end, after, limit)
            return self.render(pks, with_properties=with_properties), (pks[-1] if pks else None)

    def record(self, pk: int) -> dict[str, Any]:
        """One record as served with properties."""
        with self.lock:
            return loads(self._encoded(pk)[0])

    def records(
        self, field: str = DATE_SENT, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[dict[str, Any]]:
        """Every live record matching the filter, pk order, with properties."""
        with self.lock:
            return [
                loads(b) for b in self.render(self.select(field, start, end), with_properties=True)
            ]

    def date_ts(self, field: str, pk: int) -> int:
        return self._dates[field][pk]

    # --- mutations --------------------------------------------------------------------
    def add_records(
        self,
        day: dt.date | str,
        count: int,
        field: str = DATE_SENT,
        *,
        at: dt.datetime | None = None,
    ) -> list[int]:
        """Add `count` records whose `field` falls on `day` (at time `at` if given).

        They get new pks above every existing one. Returns their keys.
        """
        day = parse_day(day)
        if field not in wire.PERIOD_FIELDS:
            raise ValueError(f"unknown field {field!r}")
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be an int >= 0")
        rng = self._mutation_rng
        base = day_start_ts(day)
        keys = []
        with self.lock:
            for _ in range(count):
                if at is not None:
                    t = datetime_ts(at)
                else:
                    t = base + rng.randrange(_DAY)
                if field == DATE_SENT:
                    sent = t
                    creation = sent - rng.randrange(_MAX_CREATION_LAG + 1)
                    order = creation - rng.randrange(_MAX_ORDER_LAG + 1)
                elif field == DATE_CREATION:
                    creation = t
                    sent = creation + rng.randrange(_MAX_CREATION_LAG + 1)
                    order = creation - rng.randrange(_MAX_ORDER_LAG + 1)
                else:
                    order = t
                    creation = order + rng.randrange(_MAX_ORDER_LAG + 1)
                    sent = creation + rng.randrange(_MAX_CREATION_LAG + 1)
                self.max_pk += 1
                pk = self.max_pk
                for f, value in ((DATE_SENT, sent), (DATE_CREATION, creation), (DATE_ORDER, order)):
                    self._dates[f].append(value)
                    day_key = _day_str(value // _DAY)
                    bucket = self._by_day[f].get(day_key)
                    if bucket is None:
                        self._by_day[f][day_key] = [pk]
                        insort(self._days[f], day_key)
                    else:
                        bucket.append(pk)
                self._live.append(1)
                self._all.append(pk)
                keys.append(key_of(pk))
        return keys

    def _pick(
        self,
        keys: Iterable[int] | None,
        day: dt.date | str | None,
        count: int | None,
        *,
        exclude_failed: bool,
    ) -> list[int]:
        if keys is not None:
            pks: dict[int, None] = {}
            for key in keys:
                pk = pk_of(key)
                if pk is not None and self.is_live(pk):
                    pks[pk] = None
            return list(pks)
        if day is None or count is None:
            raise ValueError("give either keys, or day and count")
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be an int >= 0")
        candidates = self._by_day[DATE_SENT].get(day_string(parse_day(day)), [])
        if exclude_failed:
            candidates = [pk for pk in candidates if pk not in self._status]
        chosen = self._mutation_rng.sample(candidates, min(count, len(candidates)))
        return sorted(chosen)

    def fail_records(
        self,
        keys: Iterable[int] | None = None,
        *,
        day: dt.date | str | None = None,
        count: int | None = None,
    ) -> list[int]:
        """Set the status of live records to survey-failed (pk unchanged). Returns keys."""
        with self.lock:
            pks = self._pick(keys, day, count, exclude_failed=True)
            for pk in pks:
                self._status[pk] = FAILED_STATUS
                self._cache.pop(pk, None)
            return [key_of(pk) for pk in pks]

    def respond_records(
        self,
        keys: Iterable[int] | None = None,
        *,
        day: dt.date | str | None = None,
        count: int | None = None,
    ) -> list[int]:
        """Remove live records (they became responses). Returns their keys."""
        with self.lock:
            pks = self._pick(keys, day, count, exclude_failed=False)
            for pk in pks:
                self._live[pk] = 0
                self._cache.pop(pk, None)
                self._status.pop(pk, None)
                _remove(self._all, pk)
                for f in wire.PERIOD_FIELDS:
                    day_key = _day_str(self._dates[f][pk] // _DAY)
                    _remove(self._by_day[f][day_key], pk)
            return [key_of(pk) for pk in pks]


def _remove(sorted_list: list[int], value: int) -> None:
    i = bisect_left(sorted_list, value)
    if i < len(sorted_list) and sorted_list[i] == value:
        del sorted_list[i]
