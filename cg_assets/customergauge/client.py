"""Cursor paging of the CustomerGauge v7 sync APIs, with token refresh and retries.

No Dagster here: the resource (resource.py) builds a client from settings; sync.py
consumes its pages.
"""

from __future__ import annotations

import datetime as dt
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
    AuthenticationError,
    CustomerGaugeError,
)
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
class Page:
    """One page of records and the cursor that resumes right after it."""

    number: int  # 1-based within one `iter_pages` call
    records: list[dict[str, Any]]
    cursor: Cursor | None
    sent_cursor: Cursor | None
    body_bytes: int
    # The raw response body `records` was decoded from, so a consumer can convert it
    # straight to Arrow (schema.RecordDecoder) instead of walking the decoded dicts.
    body: bytes | None = field(default=None, repr=False, compare=False)


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


class CustomerGaugeClient:
    def __init__(
        self,
        settings: ClientSettings,
        client_id: str,
        client_secret: str,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._session = session or http.new_session()
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._secret = client_secret
        self._retry = RetryPolicy(
            max_retries=settings.max_retries,
            budget_seconds=settings.retry_budget_seconds,
            backoff_seconds=settings.backoff_seconds,
            on_retry=self._count_retry,
            sleep=sleep,
        )
        self._tokens = TokenProvider(
            self._session, settings.auth_url, client_id, client_secret, self._timeout, self._retry
        )

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
    ) -> Iterator[Page]:
        """Pages after `cursor` (from the start if None) until the API returns an empty `data`.

        The last page yielded is that empty page, so callers always learn the final cursor.
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
            records, next_cursor, body = self._get_page(url, params, what)
            # [assumed] integer cursors only grow (records come in primary-key order).
            went_back = (
                isinstance(next_cursor, int) and isinstance(cursor, int) and next_cursor < cursor
            )
            if records and (
                next_cursor is None
                or next_cursor == cursor
                or next_cursor in seen_cursors
                or went_back
            ):
                raise ApiContractError(
                    f"{what}: the page has {len(records)} records but its cursor.next "
                    f"({next_cursor!r}) does not advance; stopping rather than looping forever."
                )
            sent = cursor
            if next_cursor is not None:
                seen_cursors.add(next_cursor)
                cursor = next_cursor
            self.stats.pages += 1
            self.stats.records += len(records)
            yield Page(number, records, cursor, sent, len(body), body)
            if not records:
                return

    # -- one page, with token refresh and retries -------------------------------------

    def _get_page(
        self, url: str, params: list[tuple[str, str]], what: str
    ) -> tuple[list[dict[str, Any]], Cursor | None, bytes]:
        refreshed = False
        while True:
            token = self._tokens.token()
            self.stats.token_requests = self._tokens.tokens_fetched
            try:
                response, body = self._retry.run(
                    lambda token=token: self._attempt_page(url, params, token, what), what
                )
            except _Unauthorized:
                if refreshed:
                    raise AuthenticationError(
                        f"{what}: CustomerGauge answered 401 Unauthenticated to a freshly issued "
                        "token. Check that the Connected App (CG_CLIENT_ID) may read this API and "
                        "that CG_API_URL and CG_AUTH_URL belong to the same region."
                    ) from None
                # A token can expire early or be revoked server-side: fetch one and retry once.
                self._tokens.invalidate()
                refreshed = True
                continue
            return *self._parse_body(body, what), response.content

    def _attempt_page(
        self, url: str, params: list[tuple[str, str]], token: str, what: str
    ) -> tuple[requests.Response, Any]:
        self.stats.requests += 1
        headers = {wire.AUTH_HEADER: f"{wire.AUTH_SCHEME} {token}"}
        response = http.attempt(
            self._session, "GET", url, self._timeout, params=params, headers=headers
        )
        self.stats.bytes += len(response.content)
        if response.status_code == 401:
            raise _Unauthorized
        http.raise_for_unexpected(response, what)
        body = http.decode_json_body(response, what)
        if not isinstance(body, dict):
            raise TransientError(
                "bad_body",
                f"{what}: the body is JSON but not an object: {http.quote_body(response.content)}",
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

    def _count_retry(self, cause: str) -> None:
        self.stats.retries[cause] += 1

    @property
    def tokens_fetched(self) -> int:
        return self._tokens.tokens_fetched

    def redact(self, text: str) -> str:
        """Belt and braces for messages built from foreign text: drop the secret and the token."""
        for secret in (self._secret, self._tokens.current):
            if secret:
                text = text.replace(secret, "***")
        return text


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
    "Period",
]
