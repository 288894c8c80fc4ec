"""Injected faults (a FIFO queue consumed by the next matching requests) and run-time config.

A fault is a JSON object such as ``{"kind": "status", "code": 429, "retry_after": 2}``
with optional ``times`` (default 1) and ``target`` ("api", the default: the sync
endpoint; or "token": the token endpoint).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

TARGET_API = "api"
TARGET_TOKEN = "token"
TARGETS = (TARGET_API, TARGET_TOKEN)

# transport / gateway faults: work on both targets
STATUS = "status"
SLOW = "slow"
DROP = "drop"
DROP_MID_BODY = "drop_mid_body"
TRUNCATE = "truncate"
HTML = "html"
UNAUTHORIZED = "unauthorized"
# bad-contract faults: change a 200 page of the sync endpoint
BAD_DATA = "bad_data"
MISSING_KEY = "missing_key"
BAD_DATE = "bad_date"
STUCK_CURSOR = "stuck_cursor"
OMIT_CURSOR = "omit_cursor"
OUT_OF_DAY = "out_of_day"
# hostile answers (issue 21; docs/hardening.md), on both targets:
DRIBBLE = "dribble"  # the answer's body one byte every `seconds`
SLOW_HEADERS = "slow_headers"  # the status line and each header line `seconds` apart
GZIP_BOMB = "gzip_bomb"  # a 200 whose small gzip'd body inflates to `size` bytes
HUGE_BODY = "huge_body"  # a 200 of `size` bytes with no Content-Length (close-delimited)
DEEP_NESTING = "deep_nesting"  # a 200 whose `data` nests arrays `depth` levels deep
ECHO = "echo"  # HTTP `code` whose body repeats the request's (a form's secret, say)
# ... and on pages only:
ENDLESS_PAGES = "endless_pages"  # past the last record, one made-up record a page, for ever
HUGE_KEY = "huge_key"  # the first record's key is above 2**63
EMPTY_PAGE = "empty_page"  # `{"data": []}` with the cursor sent: a transient "done"
MISSING_RECORD = "missing_record"  # the page without its first record, cursor unchanged

TRANSPORT_KINDS = (
    STATUS,
    SLOW,
    DROP,
    DROP_MID_BODY,
    TRUNCATE,
    HTML,
    UNAUTHORIZED,
    DRIBBLE,
    SLOW_HEADERS,
    GZIP_BOMB,
    HUGE_BODY,
    DEEP_NESTING,
    ECHO,
)
CONTRACT_KINDS = (
    BAD_DATA,
    MISSING_KEY,
    BAD_DATE,
    STUCK_CURSOR,
    OMIT_CURSOR,
    OUT_OF_DAY,
    ENDLESS_PAGES,
    HUGE_KEY,
    EMPTY_PAGE,
    MISSING_RECORD,
)
KINDS = TRANSPORT_KINDS + CONTRACT_KINDS


@dataclass
class Fault:
    kind: str
    times: int = 1
    target: str = TARGET_API
    code: int = 500  # status
    retry_after: Any = None  # status: sent as the Retry-After header when not None
    body: Any = None  # status: a str is sent as is, anything else as JSON
    seconds: float = 1.0  # slow, dribble, slow_headers
    size: int = 64 * 1024 * 1024  # gzip_bomb, huge_body: bytes once inflated
    depth: int = 20_000  # deep_nesting

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(spec: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"fault {name!r} must be an int from {low} to {high}, got {value!r}")
    return value


def parse_fault(spec: Mapping[str, Any]) -> Fault:
    """Validate one fault spec; ValueError with a readable message when it is wrong."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a fault must be an object, got {spec!r}")
    known = {f.name for f in fields(Fault)}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(known)}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault 'kind' must be one of {list(KINDS)}, got {kind!r}")
    target = spec.get("target", TARGET_API)
    if target not in TARGETS:
        raise ValueError(f"fault 'target' must be one of {list(TARGETS)}, got {target!r}")
    if target == TARGET_TOKEN and kind in CONTRACT_KINDS:
        raise ValueError(f"fault kind {kind!r} only applies to target {TARGET_API!r}")
    seconds = spec.get("seconds", 1.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"fault 'seconds' must be a number >= 0, got {seconds!r}")
    retry_after = spec.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, int | float | str):
        raise ValueError(f"fault 'retry_after' must be a number or a string, got {retry_after!r}")
    return Fault(
        kind=kind,
        times=_int(spec, "times", 1, 1, 1_000_000),
        target=target,
        code=_int(spec, "code", 500, 100, 599),
        retry_after=retry_after,
        body=spec.get("body"),
        seconds=float(seconds),
        size=_int(spec, "size", 64 * 1024 * 1024, 16, 1 << 40),
        depth=_int(spec, "depth", 20_000, 1, 10_000_000),
    )


class FaultQueue:
    """FIFO of faults; each request takes the first fault for its target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()

    def add(self, specs: list[Mapping[str, Any]]) -> None:
        """Append faults (all validated first: a bad one adds none)."""
        parsed = [parse_fault(spec) for spec in specs]
        with self._lock:
            self._queue.extend(parsed)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, target: str) -> Fault | None:
        """Consume one use of the first pending fault for `target`."""
        with self._lock:
            for fault in self._queue:
                if fault.target == target:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._queue.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        """How many requests the queued faults will still hit (sum of `times`)."""
        with self._lock:
            return sum(f.times for f in self._queue)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._queue]


@dataclass
class SimConfig:
    """Behaviour that persists until reset."""

    latency_ms: float = 0.0  # sleep per API request
    max_page_size: int | None = None  # cap pages below per_page (short pages)
    expire_tokens_after_requests: int | None = None  # a token dies after n API requests
    token_ttl_seconds: float = 3600.0
    omit_expires_in: bool = False
    revoked: bool = False  # the token endpoint refuses the credentials
    # records carry fields the sync does not declare, holding the contact's personal data
    # (e-mail, phone, name at several depths), in API pages and in the truth alike
    extra_personal_fields: bool = False
    # Days (YYYY-MM-DD) whose pages break the contract (a malformed date) until repaired:
    # a day that fails every run for as long as it stays in this list.
    broken_days: list[str] = field(default_factory=list)
    # A rate limiter's storms: after every n API requests it answers, the API answers every
    # request with 429 for throttle_seconds (with a Retry-After of the whole seconds left
    # when throttle_retry_after). The same data gives the same storms at any concurrency.
    throttle_every_requests: int | None = None
    throttle_seconds: float = 1.0
    throttle_retry_after: bool = True
    # Which order the responses cursor follows: "answer" (rpk, the order of answering) or
    # "cgid" (the invitation's number_customergauge, as the vendor's older pages say).
    responses_order: str = "answer"
    # A field no endpoint row declares, added to every record of both endpoints (a dotted
    # path such as "survey_meta.wave" nests it), with a constant, non-personal value: a
    # tenant's schema drifting (docs/operations.md).
    unknown_field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def copy(self) -> SimConfig:
        return SimConfig(**{**self.as_dict(), "broken_days": list(self.broken_days)})

    def update(self, changes: Mapping[str, Any]) -> None:
        """Merge a partial config (validated as a whole first); ValueError when wrong."""
        merged = self.as_dict()
        unknown = set(changes) - set(merged)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(merged)}")
        merged.update(changes)
        _check_number(merged, "latency_ms", allow_none=False)
        _check_number(merged, "token_ttl_seconds", allow_none=False)
        _check_number(merged, "throttle_seconds", allow_none=False)
        _check_int(merged, "max_page_size", 1)
        _check_int(merged, "expire_tokens_after_requests", 0)
        _check_int(merged, "throttle_every_requests", 1)
        for name in ("omit_expires_in", "revoked", "extra_personal_fields", "throttle_retry_after"):
            if not isinstance(merged[name], bool):
                raise ValueError(f"config {name!r} must be true or false")
        if merged["responses_order"] not in ("answer", "cgid"):
            raise ValueError("config 'responses_order' must be 'answer' or 'cgid'")
        unknown = merged["unknown_field"]
        if unknown is not None and not (
            isinstance(unknown, str) and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", unknown)
        ):
            raise ValueError("config 'unknown_field' must be null or a dotted field name")
        broken = merged["broken_days"]
        if not isinstance(broken, list) or not all(isinstance(d, str) for d in broken):
            raise ValueError("config 'broken_days' must be a list of YYYY-MM-DD strings")
        for day in broken:
            dt.date.fromisoformat(day)  # ValueError names the bad day
        for name, value in merged.items():
            setattr(self, name, value)


def _check_number(data: dict[str, Any], name: str, *, allow_none: bool) -> None:
    value = data[name]
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"config {name!r} must be a number >= 0, got {value!r}")
    data[name] = float(value)


def _check_int(data: dict[str, Any], name: str, low: int) -> None:
    value = data[name]
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"config {name!r} must be null or an int >= {low}, got {value!r}")
