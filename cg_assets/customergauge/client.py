"""Cursor paging of the CustomerGauge v7 sync APIs, with token refresh and retries; one
client can serve several day streams side by side (`CustomerGaugeClient.stream`).

No Dagster here: the resource (resource.py) builds a client from settings; sync.py
consumes its pages.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from cg_assets.customergauge import http, wire
from cg_assets.customergauge.auth import TokenProvider
from cg_assets.customergauge.errors import (
    ApiContractError,
    ApiLimitError,
    AuthenticationError,
    CustomerGaugeError,
)
from cg_assets.customergauge.foreign_text import describe_body, redact
from cg_assets.customergauge.gate import RateGate
from cg_assets.customergauge.retry import RetryPolicy, TransientError
from cg_assets.settings import ClientSettings

Cursor = int | str


@dataclass(frozen=True)
class Period:
    """The period filter: records whose `field` falls from `start` to `end`, both inclusive."""

    field: str
    start: dt.date
    end: dt.date

    def params(self) -> list[tuple[str, str]]:
        return [
            (wire.PARAM_PERIOD_FIELD, self.field),
            (wire.PARAM_PERIOD_START, self.start.strftime(wire.PERIOD_DATE_FORMAT)),
            (wire.PARAM_PERIOD_END, self.end.strftime(wire.PERIOD_DATE_FORMAT)),
        ]


@dataclass(frozen=True)
class PageContent:
    """What a `PageReader` made of a page body that keeps the paging contract."""

    # The page's `data` in the reader's own form (a decoder's Arrow arrays, say).
    records: Any
    count: int  # records on the page
    next_cursor: Cursor | None  # `cursor.next`; None when the body has none


# Reads a 2xx page body in one parse, or declines (None): then the client decodes it to
# Python objects and checks the envelope itself, as without a reader. A reader must decline
# every body it does not fully understand, and never raise: the client's own path holds
# the error messages and the retry of a broken body.
PageReader = Callable[[bytes], PageContent | None]


@dataclass(frozen=True)
class Page:
    """One page of records and the cursor that resumes right after it."""

    number: int  # 1-based within one `iter_pages` call
    # The decoded `data` (a list of dicts), or what the `PageReader` made of it.
    records: Any
    cursor: Cursor | None
    sent_cursor: Cursor | None
    body_bytes: int
    # The raw response body `records` was decoded from, so a consumer can convert it
    # straight to Arrow (schema.RecordDecoder) instead of walking the decoded dicts.
    body: bytes | None = field(default=None, repr=False, compare=False)
    count: int = 0  # records on the page, whatever form `records` takes


@dataclass
class ClientStats:
    """What the client did; assets report the difference over a sync."""

    requests: int = 0
    pages: int = 0
    records: int = 0
    bytes: int = 0
    token_requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> ClientStats:
        return ClientStats(
            self.requests,
            self.pages,
            self.records,
            self.bytes,
            self.token_requests,
            Counter(self.retries),
        )

    def since(self, earlier: ClientStats) -> ClientStats:
        return ClientStats(
            self.requests - earlier.requests,
            self.pages - earlier.pages,
            self.records - earlier.records,
            self.bytes - earlier.bytes,
            self.token_requests - earlier.token_requests,
            self.retries - earlier.retries,
        )


# A request may renew the token this often after 401s when other streams' requests used up
# each renewed token first (possible only with tokens that die after a few requests).
MAX_TOKEN_RENEWALS_PER_REQUEST = 3


@dataclass
class _Shared:
    """What every stream of one client shares: settings, the token cache, the rate gate and
    the totals. Nothing here belongs to one thread."""

    settings: ClientSettings
    secret: str
    tokens: TokenProvider
    gate: RateGate
    totals: ClientStats
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards `totals`


class CustomerGaugeClient:
    """A client, or one stream of a client (`stream()`).

    Several streams (one per day synced side by side, each used by one thread at a time)
    share one token cache, one rate gate and the totals in `stats` of the client they came
    from; each has its own `stats` and its own `requests.Session`.

    Why a session per stream rather than one shared: requests does not promise that a
    `Session` is thread-safe (its cookie jar and adapters are mutated per request), so
    sharing one would rest on undocumented behaviour. A stream's session is used by one
    thread at a time and shares nothing mutable; the cost is one connection (TCP and TLS
    handshake) per stream, small next to a day's pages, and kept alive across its pages.
    """

    def __init__(
        self,
        settings: ClientSettings,
        client_id: str,
        client_secret: str,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = http.limits_from(settings)
        shared = _Shared(
            settings=settings,
            secret=client_secret,
            tokens=TokenProvider(settings.auth_url, client_id, client_secret, limits),
            gate=RateGate(settings.max_requests_per_second, clock=clock, sleep=sleep),
            totals=ClientStats(),
            sleep=sleep,
            clock=clock,
        )
        self._attach(shared, session or http.new_session(), own_stats=False)

    def _attach(self, shared: _Shared, session: requests.Session, *, own_stats: bool) -> None:
        self._shared = shared
        self.settings = shared.settings
        # A stream counts into its own stats and the client's totals; the client into totals.
        self.stats = ClientStats() if own_stats else shared.totals
        self._sinks = (self.stats, shared.totals) if own_stats else (shared.totals,)
        self._session = session
        self._limits = http.limits_from(shared.settings)
        self._retry = RetryPolicy(
            max_retries=shared.settings.max_retries,
            budget_seconds=shared.settings.retry_budget_seconds,
            backoff_seconds=shared.settings.backoff_seconds,
            on_retry=self._count_retry,
            sleep=shared.sleep,
            clock=shared.clock,
            gate=shared.gate,
        )

    def stream(self) -> CustomerGaugeClient:
        """A stream for one thread (one day): shares this client's token, rate gate and
        totals; its own `stats` count only its requests. Close it when done (`with`)."""
        view = object.__new__(CustomerGaugeClient)
        view._attach(self._shared, http.new_session(), own_stats=True)
        return view

    @property
    def gate(self) -> RateGate:
        return self._shared.gate

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CustomerGaugeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_pages(
        self,
        path: str,
        *,
        period: Period | None = None,
        cursor: Cursor | None = None,
        expand: Sequence[str] = (),
        extra_params: Sequence[tuple[str, str]] = (),
        reader: PageReader | None = None,
    ) -> Iterator[Page]:
        """Pages after `cursor` (from the start if None) until the API returns an empty `data`.

        The last page yielded is that empty page, so callers always learn the final cursor.
        `reader`, when given, parses each body once into its own form (`Page.records`);
        without it, or when it declines a body, `records` is the list of decoded dicts.
        """
        fixed_params: list[tuple[str, str]] = [(wire.PARAM_PER_PAGE, str(self.settings.per_page))]
        fixed_params += [(wire.PARAM_WITH, name) for name in expand]
        # The period filter goes on EVERY page: a client that sends it only on the first
        # page silently pages through the whole account (a bug seen in a public client).
        fixed_params += period.params() if period else []
        fixed_params += list(self.settings.extra_params) + list(extra_params)
        url = self.settings.api_url + path
        seen_cursors: set[Cursor] = set()
        number = 0
        while True:
            number += 1
            params = list(fixed_params)
            if cursor is not None:
                params.append((wire.PARAM_CURSOR, str(cursor)))
            what = f"GET {path} page {number} (cursor {cursor if cursor is not None else 'none'})"
            if number > self.settings.max_pages_per_day:
                day = f" for {period.start.isoformat()}" if period else ""
                raise ApiLimitError(
                    f"{what}: the API has sent {number - 1} pages{day} without the empty page "
                    f"that ends a day, the limit of {self.settings.max_pages_per_day} pages "
                    "(CG_MAX_PAGES_PER_DAY); stopping rather than paging for ever.",
                    setting="CG_MAX_PAGES_PER_DAY",
                )
            records, count, next_cursor, body = self._get_page(url, params, what, reader)
            # [assumed] integer cursors only grow (records come in primary-key order).
            went_back = (
                isinstance(next_cursor, int) and isinstance(cursor, int) and next_cursor < cursor
            )
            if count and (
                next_cursor is None
                or next_cursor == cursor
                or next_cursor in seen_cursors
                or went_back
            ):
                raise ApiContractError(
                    f"{what}: the page has {count} records but its cursor.next "
                    f"({next_cursor!r}) does not advance; stopping rather than looping forever."
                )
            sent = cursor
            if next_cursor is not None:
                seen_cursors.add(next_cursor)
                cursor = next_cursor
            self._count(pages=1, records=count)
            yield Page(number, records, cursor, sent, len(body), body, count)
            if not count:
                return

    # -- one page, with token refresh and retries -------------------------------------

    def _get_page(
        self, url: str, params: list[tuple[str, str]], what: str, reader: PageReader | None
    ) -> tuple[Any, int, Cursor | None, bytes]:
        tokens = self._shared.tokens
        renewals = 0
        while True:
            token, fetched = tokens.token(self._session, self._retry)
            if fetched:
                self._count(token_requests=1)
            try:
                response, body = self._retry.run(
                    lambda token=token: self._attempt_page(url, params, token, what, reader),
                    what,
                )
            except _Unauthorized:
                if (renewals and tokens.was_refused_fresh(token)) or (
                    renewals >= MAX_TOKEN_RENEWALS_PER_REQUEST
                ):
                    raise AuthenticationError(
                        f"{what}: CustomerGauge answered 401 Unauthenticated to a freshly issued "
                        "token. Check that the Connected App (CG_CLIENT_ID) may read this API and "
                        "that CG_API_URL and CG_AUTH_URL belong to the same region."
                    ) from None
                # A token can expire early or be revoked server-side: renew it (once for all
                # streams: a stream whose 401 comes after another's renewal reuses the new
                # token) and retry.
                tokens.invalidate(token)
                renewals += 1
                continue
            if isinstance(body, PageContent):
                return body.records, body.count, body.next_cursor, response.content
            data, next_cursor = self._parse_body(body, what)
            return data, len(data), next_cursor, response.content

    def _attempt_page(
        self,
        url: str,
        params: list[tuple[str, str]],
        token: str,
        what: str,
        reader: PageReader | None,
    ) -> tuple[requests.Response, Any]:
        self._count(requests=1)
        headers = {wire.AUTH_HEADER: f"{wire.AUTH_SCHEME} {token}"}
        response = http.attempt(
            self._session, "GET", url, self._limits, what, params=params, headers=headers
        )
        self._count(bytes_=len(response.content))
        if response.status_code == 401:
            raise _Unauthorized
        if 200 <= response.status_code < 300:
            self._shared.tokens.accepted(token)
        http.raise_for_unexpected(response, what)
        # The happy path: the reader parses the body once. A body it declines goes the
        # Python-object way below, whose errors (a broken body is retried like a 5xx, from
        # inside this attempt) and messages do not depend on the reader.
        content = reader(response.content) if reader is not None else None
        if content is not None:
            return response, content
        body = http.decode_json_body(response, what)
        if not isinstance(body, dict):
            raise TransientError(
                "bad_body",
                f"{what}: the body is JSON but not an object: {describe_body(response.content)}",
            )
        return response, body

    @staticmethod
    def _parse_body(body: dict[str, Any], what: str) -> tuple[list[dict[str, Any]], Cursor | None]:
        data = body.get(wire.BODY_DATA)
        if not isinstance(data, list):
            raise ApiContractError(
                f"{what}: '{wire.BODY_DATA}' is {type(data).__name__}, expected a list of records."
            )
        cursor_obj = body.get(wire.BODY_CURSOR)
        next_cursor = (
            cursor_obj.get(wire.BODY_CURSOR_NEXT) if isinstance(cursor_obj, dict) else None
        )
        if next_cursor is not None and (
            isinstance(next_cursor, bool) or not isinstance(next_cursor, (int, str))
        ):
            raise ApiContractError(f"{what}: cursor.next is {next_cursor!r}, expected an integer.")
        return data, next_cursor

    def _count(
        self,
        *,
        requests: int = 0,
        pages: int = 0,
        records: int = 0,
        bytes_: int = 0,
        token_requests: int = 0,
        retry: str | None = None,
    ) -> None:
        with self._shared.lock:  # totals are shared by every stream's thread
            for stats in self._sinks:
                stats.requests += requests
                stats.pages += pages
                stats.records += records
                stats.bytes += bytes_
                stats.token_requests += token_requests
                if retry is not None:
                    stats.retries[retry] += 1

    def _count_retry(self, cause: str) -> None:
        self._count(retry=cause)

    @property
    def tokens_fetched(self) -> int:
        return self._shared.tokens.tokens_fetched

    def redact(self, text: str) -> str:
        """Belt and braces for messages built from foreign text: drop the secret and the token."""
        return redact(text, [s for s in (self._shared.secret, self._shared.tokens.current) if s])


class _Unauthorized(Exception):
    """A 401 on a page request: refresh the token once (not a transient retry)."""


__all__ = [
    "ApiContractError",
    "AuthenticationError",
    "ClientStats",
    "Cursor",
    "CustomerGaugeClient",
    "CustomerGaugeError",
    "Page",
    "PageContent",
    "PageReader",
    "Period",
]
