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

Responses: answering a non-response removes it from the non-responses indexes and gives
it a response pk ``rpk`` (the responses table's own primary key, in order of answering).
Which order the responses cursor follows is not known for the v7 API, so both are served
(``order`` of ``response_page``, the server's ``responses_order``): ``answer`` pages by
rpk, so a stored cursor sees records answered later; ``cgid`` pages by the invitation's
pk, as the vendor's older pages say ("ordered by CGID"), so an answer to an older
invitation lands below a stored cursor. A response keeps its ``number_customergauge``
and its invitation's fields, loses its ``status``, and gains a ``date_survey_response``
and the answer: ``nps`` (0-10) and ``comment`` as the vendor's older pages name them;
``questions`` and ``tags`` in shapes of the simulator's own.

Answer timing (``answer_lag``): most answers come within 2 days of the invitation, a tail
runs for weeks after reminders, and a few come later than any 30-day window.
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
DATE_SURVEY_RESPONSE = wire.DATE_SURVEY_RESPONSE
NON_RESPONSES = "non_responses"
RESPONSES = "responses"
ENDPOINT_FIELDS = {
    NON_RESPONSES: wire.NON_RESPONSES_PERIOD_FIELDS,
    RESPONSES: wire.RESPONSES_PERIOD_FIELDS,
}
RESPONSE_EXPANSIONS = (wire.WITH_DRIVERS, wire.WITH_TAGS, wire.WITH_QUESTIONS, wire.WITH_PROPERTIES)
RESPONSES_ORDERS = ("answer", "cgid")
# How long after the invitation an answer comes: (share, shortest, longest) in seconds.
# 70 % within 2 days, 22 % within 2 weeks (reminders), 6 % up to 35 days, 2 % up to 60.
_ANSWER_LAGS = (
    (0.70, 60, 2 * 86_400),
    (0.22, 2 * 86_400, 14 * 86_400),
    (0.06, 14 * 86_400, 35 * 86_400),
    (0.02, 35 * 86_400, 60 * 86_400),
)


def answer_lag(rng: random.Random) -> int:
    """Seconds from invitation to answer, drawn from _ANSWER_LAGS."""
    pick = rng.random()
    for share, low, high in _ANSWER_LAGS:
        if pick < share:
            return rng.randrange(low, high)
        pick -= share
    return rng.randrange(_ANSWER_LAGS[-1][1], _ANSWER_LAGS[-1][2])


_COMMENTS = (
    "Great service, quick delivery.",
    "Support took too long to answer.",
    "Prijs-kwaliteit is prima.",
    "Die Lieferung kam zu spät.",
    "Très satisfait ✔",
    None,
)
_DRIVERS = ("Price", "Product Quality", "Delivery", "Support", "Ease of Use", "Communication")
_TAGS = ("vip", "follow-up", "churn-risk", "upsell", "promoter-program")

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
        respond_share: float = 0.0,
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
        # responses: rpk -> pk and the reverse, the answer time by pk, indexes by rpk
        self._rpk_pk: dict[int, int] = {}
        self._pk_rpk: dict[int, int] = {}
        self._answered: dict[int, int] = {}
        self._r_all: list[int] = []
        self._r_by_day: dict[str, dict[str, list[int]]] = {
            f: {} for f in wire.RESPONSES_PERIOD_FIELDS
        }
        self._r_days: dict[str, list[str]] = {f: [] for f in wire.RESPONSES_PERIOD_FIELDS}
        self._r_cache: dict[int, bytes] = {}
        self.max_rpk = 0
        # the same responses indexed by the invitation's pk (the CGID order), kept sorted
        self._c_all: list[int] = []
        self._c_by_day: dict[str, dict[str, list[int]]] = {
            f: {} for f in wire.RESPONSES_PERIOD_FIELDS
        }
        self._c_days: dict[str, list[str]] = {f: [] for f in wire.RESPONSES_PERIOD_FIELDS}
        self._not_after = None if not_after is None else datetime_ts(not_after)
        self._generate(records)
        if respond_share > 0:
            self._answer_share(respond_share)
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
            return _select(self._all, self._by_day, self._days, field, start, end, after, limit)

    def select_responses(
        self,
        field: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[int]:
        """Response pks (rpk) in order, whose `field` day is in [start, end], rpk > after."""
        with self.lock:
            return _select(
                self._r_all, self._r_by_day, self._r_days, field, start, end, after, limit
            )

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

    def _build_response(self, pk: int) -> dict[str, Any]:
        """The full response record of an answered pk (every expansion included)."""
        h = hashlib.blake2b(
            pk.to_bytes(8, "little"), digest_size=32, key=self._hash_key + b"answer"
        ).digest()
        record = self._build(pk)
        record.pop("status", None)
        properties = record.pop(PROPERTIES)
        # [simulator] the responses API's property items carry an id besides {field,
        # reference}: a nested key cg_assets does not declare, kept in extra_fields.
        for index, item in enumerate(properties):
            item["field_id"] = 100 + index
        answered = self._answered[pk]
        sent = self._dates[DATE_SENT][pk]
        # Answering takes opening the invitation and clicking its link.
        if record["date_opened"] in wire.NULL_DATES:
            record["date_opened"] = format_ts(max(sent, answered - 120))
        if record["date_clicked"] in wire.NULL_DATES:
            record["date_clicked"] = format_ts(max(sent, answered - 60))
        record[DATE_SURVEY_RESPONSE] = format_ts(answered)
        record[wire.NPS] = h[0] % 11
        record[wire.COMMENT] = _COMMENTS[h[1] % len(_COMMENTS)]
        record[wire.WITH_DRIVERS] = [
            {wire.DRIVER_LABEL: _DRIVERS[(h[2] + i) % len(_DRIVERS)]} for i in range(h[3] % 3)
        ]
        record[wire.WITH_TAGS] = [_TAGS[(h[4] + i) % len(_TAGS)] for i in range(h[5] % 3)]
        record[wire.WITH_QUESTIONS] = [
            {"question_id": 1, "type": "nps", "answer": record[wire.NPS]},
            {"question_id": 2, "type": "text", "answer": record[wire.COMMENT]},
        ]
        record[PROPERTIES] = properties
        return record

    def render_responses(self, rpks: Iterable[int], expand: Iterable[str]) -> list[bytes]:
        """The JSON bytes of each response, with the requested expansions only."""
        wanted = set(expand)
        dropped = [e for e in RESPONSE_EXPANSIONS if e not in wanted]
        with self.lock:
            parts = []
            for rpk in rpks:
                data = self._r_cache.get(rpk)
                if data is None:
                    data = dumps(self._build_response(self._rpk_pk[rpk]))
                    self._r_cache[rpk] = data
                if dropped:
                    record = loads(data)
                    for name in dropped:
                        record.pop(name, None)
                    data = dumps(record)
                parts.append(data)
            return parts

    def response_page(
        self,
        *,
        field: str | None,
        start: dt.date | None,
        end: dt.date | None,
        after: int | None,
        limit: int,
        expand: Iterable[str],
        order: str = "answer",
    ) -> tuple[list[bytes], int | None]:
        """One page of responses and its cursor: the rpk of the last one in answer order,
        its invitation's pk in cgid order (None if empty)."""
        if order not in RESPONSES_ORDERS:
            raise ValueError(f"order must be one of {RESPONSES_ORDERS}, got {order!r}")
        with self.lock:
            if order == "answer":
                rpks = self.select_responses(field, start, end, after, limit)
                return self.render_responses(rpks, expand), (rpks[-1] if rpks else None)
            pks = _select(
                self._c_all, self._c_by_day, self._c_days, field, start, end, after, limit
            )
            rpks = [self._pk_rpk[pk] for pk in pks]
            return self.render_responses(rpks, expand), (pks[-1] if pks else None)

    def responses(
        self, field: str = DATE_SENT, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[dict[str, Any]]:
        """Every response matching the filter, in rpk order, with every expansion."""
        with self.lock:
            rpks = self.select_responses(field, start, end)
            return [loads(b) for b in self.render_responses(rpks, RESPONSE_EXPANSIONS)]

    def response_pk(self, rpk: int) -> int:
        """The invitation's pk of a response (its CGID order)."""
        return self._rpk_pk[rpk]

    def response_count(self) -> int:
        with self.lock:
            return len(self._r_all)

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
        at: dt.datetime | None = None,
        latest: dt.datetime | None = None,
    ) -> list[int]:
        """Answer live non-responses: they leave non-responses and become responses, same key.

        The answer time is `at`, else `answer_lag` after the invitation was sent, but not
        after `latest` (the simulated system's now) if given.
        Returns their keys.
        """
        with self.lock:
            pks = self._pick(keys, day, count, exclude_failed=False)
            for pk in pks:
                sent = self._dates[DATE_SENT][pk]
                if at is not None:
                    answered = datetime_ts(at)
                else:
                    answered = sent + answer_lag(self._mutation_rng)
                    if latest is not None:
                        answered = min(answered, datetime_ts(latest))
                self._answer(pk, max(answered, sent))
            return [key_of(pk) for pk in pks]

    def _answer(self, pk: int, answered: int) -> None:
        self._live[pk] = 0
        self._cache.pop(pk, None)
        self._status.pop(pk, None)
        _remove(self._all, pk)
        for f in wire.PERIOD_FIELDS:
            _remove(self._by_day[f][_day_str(self._dates[f][pk] // _DAY)], pk)
        self.max_rpk += 1
        rpk = self.max_rpk
        self._rpk_pk[rpk] = pk
        self._pk_rpk[pk] = rpk
        self._answered[pk] = answered
        self._r_all.append(rpk)
        for f in wire.RESPONSES_PERIOD_FIELDS:
            value = answered if f == DATE_SURVEY_RESPONSE else self._dates[f][pk]
            day_key = _day_str(value // _DAY)
            bucket = self._r_by_day[f].get(day_key)
            if bucket is None:
                self._r_by_day[f][day_key] = [rpk]
                insort(self._r_days[f], day_key)
            else:
                bucket.append(rpk)
            cgid_bucket = self._c_by_day[f].get(day_key)
            if cgid_bucket is None:
                self._c_by_day[f][day_key] = [pk]
                insort(self._c_days[f], day_key)
            else:
                insort(cgid_bucket, pk)
        insort(self._c_all, pk)

    def _answer_share(self, share: float) -> None:
        """Answer about `share` of the generated records, deterministically, in send order."""
        rng = random.Random(self.seed * 31 + 7)
        last = day_start_ts(self.end) + _DAY - 1  # never after the generated range
        chosen = [pk for pk in range(1, self.max_pk + 1) if rng.random() < share]
        answers = {pk: min(last, self._dates[DATE_SENT][pk] + answer_lag(rng)) for pk in chosen}
        with self.lock:
            for pk in sorted(chosen, key=lambda p: (answers[p], p)):
                self._answer(pk, answers[pk])

    def answer_live(self, at: dt.datetime) -> list[int]:
        """Answer one invitation sent on `at`'s day or the day before (the live demo), chosen
        from `at` alone so that a journal replay answers the same one."""
        with self.lock:
            candidates: list[int] = []
            for day in (at.date() - dt.timedelta(days=1), at.date()):
                candidates += self._by_day[DATE_SENT].get(day_string(day), [])
            if not candidates:
                return []
            pk = sorted(candidates)[(datetime_ts(at) * 2_654_435_761) % len(candidates)]
            self._answer(pk, max(datetime_ts(at), self._dates[DATE_SENT][pk]))
            return [key_of(pk)]


def _select(
    all_pks: list[int],
    by_day: dict[str, dict[str, list[int]]],
    days_by_field: dict[str, list[str]],
    field: str | None,
    start: dt.date | None,
    end: dt.date | None,
    after: int | None,
    limit: int | None,
) -> list[int]:
    """Ids in order, whose `field` day is in [start, end], id > after (caller holds the lock)."""
    if field is None or (start is None and end is None):
        i = 0 if after is None else bisect_right(all_pks, after)
        return all_pks[i:] if limit is None else all_pks[i : i + limit]
    days = days_by_field[field]
    lo = 0 if start is None else bisect_left(days, day_string(start))
    hi = len(days) if end is None else bisect_right(days, day_string(end))
    day_index = by_day[field]
    slices = []
    for day in days[lo:hi]:
        pks = day_index[day]
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


def _remove(sorted_list: list[int], value: int) -> None:
    i = bisect_left(sorted_list, value)
    if i < len(sorted_list) and sorted_list[i] == value:
        del sorted_list[i]
