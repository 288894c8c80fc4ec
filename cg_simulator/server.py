"""The simulator's HTTP side: a ThreadingHTTPServer speaking the CustomerGauge v7 wire format.

Routes: the token endpoint (``POST /oauth2/token``), the non-responses and responses sync
endpoints and the control endpoints under ``/_sim`` (no auth; see control.py for a client). The server
never logs requests, so tokens and secrets are never printed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import math
import secrets
import socket
import sys
import threading
import time
import traceback
import zlib
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from cg_assets.customergauge import wire
from cg_simulator import faults as flt
from cg_simulator.dataset import (
    DATE_SENT,
    ENDPOINT_FIELDS,
    NON_RESPONSES,
    RESPONSE_EXPANSIONS,
    RESPONSES,
    Dataset,
    dumps,
    loads,
    parse_day,
)
from cg_simulator.journal import Journal

DEMO_CLIENT_ID = "cg-demo-client"
DEMO_CLIENT_SECRET = "cg-demo-secret-do-not-use"

TOKEN_PATH = urlsplit(wire.DEFAULT_AUTH_URL_TEMPLATE).path
API_PATHS = {wire.NON_RESPONSES_PATH: NON_RESPONSES, wire.RESPONSES_PATH: RESPONSES}
CONTROL_PREFIX = "/_sim"
DEFAULT_PER_PAGE = 100
REQUEST_LOG_SIZE = 200
DEFAULT_PREWARM_RECORDS = 100_000  # serialized at start; the rest on first serve

_DATE_SHAPE = wire.PERIOD_DATE_FORMAT.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")
UNAUTHENTICATED = "Unauthenticated."
INVALID_DATA = "The given data was invalid."
TOKEN_TYPE_KEY = "token_type"
ERROR_KEY = "error"
BAD_DATE_VALUE = "31/02/2026 25:00"
JSON_TYPE = "application/json"
HTML_TYPE = "text/html"
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

# how a response leaves the socket
NORMAL = "normal"
DROP = "drop"  # read the request, close without answering
DROP_MID_BODY = "drop_mid_body"  # full Content-Length, half the body, then close
DRIBBLE = "dribble"  # the body one byte every `pace` seconds
SLOW_HEADERS = "slow_headers"  # each header line `pace` seconds after the last
STREAM = "stream"  # `Response.chunks` written one after another, no Content-Length, then close

_PAGE_OPEN = b"{" + dumps(wire.BODY_DATA) + b":["
_PAGE_CLOSE = b"]," + dumps(wire.BODY_CURSOR) + b":{" + dumps(wire.BODY_CURSOR_NEXT) + b":%d}}"
_TRUTH_CLOSE = b"]}"


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    mode: str = NORMAL
    records: int = 0  # records of a page, counted when delivered whole
    pace: float = 0.0  # DRIBBLE, SLOW_HEADERS
    chunks: Iterator[bytes] | None = None  # STREAM
    encoding: str | None = None  # the Content-Encoding header


def json_response(
    status: int, payload: object, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status, dumps(payload), headers=list(headers or []))


def _unauthenticated() -> Response:
    return json_response(401, {wire.BODY_MESSAGE: UNAUTHENTICATED})


def _invalid_client() -> Response:
    return json_response(401, {ERROR_KEY: "invalid_client", wire.BODY_MESSAGE: UNAUTHENTICATED})


@dataclass
class _Token:
    issued: float
    ttl: float
    uses: int = 0


class _Stats:
    def __init__(self) -> None:
        self.api_requests = 0
        self.token_requests = 0
        self.records_served = 0
        self.dropped = 0
        self.status_counts: Counter[int] = Counter()
        # API requests, newest last: path, query, "at" (time.monotonic() on arrival) and
        # "status" (None until answered; 0 for a dropped connection).
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)


class ValidationFailed(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class PageQuery:
    per_page: int
    cursor: int | None
    with_properties: bool
    field: str | None
    start: dt.date | None
    end: dt.date | None
    expand: tuple[str, ...] = ()


def _last(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _strict_int(text: str) -> int | None:
    text = text.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii():
        return None
    return int(text)


def parse_page_query(
    query: Mapping[str, list[str]], period_fields: tuple[str, ...] = wire.PERIOD_FIELDS
) -> PageQuery:
    """Validate a sync endpoint's query; ValidationFailed with per-param errors."""
    errors: dict[str, list[str]] = {}
    per_page = DEFAULT_PER_PAGE
    raw = _last(query, wire.PARAM_PER_PAGE)
    if raw is not None:
        value = _strict_int(raw)
        if value is None:
            errors[wire.PARAM_PER_PAGE] = [f"The {wire.PARAM_PER_PAGE} must be an integer."]
        elif not wire.PER_PAGE_MIN <= value <= wire.PER_PAGE_MAX:
            errors[wire.PARAM_PER_PAGE] = [
                f"The {wire.PARAM_PER_PAGE} must be between {wire.PER_PAGE_MIN} "
                f"and {wire.PER_PAGE_MAX}."
            ]
        else:
            per_page = value
    cursor = None
    raw = _last(query, wire.PARAM_CURSOR)
    if raw is not None:
        cursor = _strict_int(raw)
        if cursor is None:
            errors[wire.PARAM_CURSOR] = [f"The {wire.PARAM_CURSOR} must be an integer."]
    with_properties = wire.WITH_PROPERTIES in query.get(wire.PARAM_WITH, [])
    period_field = _last(query, wire.PARAM_PERIOD_FIELD)
    if period_field is not None and period_field not in period_fields:
        errors[wire.PARAM_PERIOD_FIELD] = [
            f"The selected {wire.PARAM_PERIOD_FIELD} is invalid; "
            f"expected one of {', '.join(period_fields)}."
        ]
    dates: dict[str, dt.date | None] = {}
    for name in (wire.PARAM_PERIOD_START, wire.PARAM_PERIOD_END):
        raw = _last(query, name)
        dates[name] = None
        if raw is not None:
            try:
                dates[name] = parse_day(raw)
            except ValueError:
                errors[name] = [f"The {name} does not match the format {_DATE_SHAPE}."]
    start, end = dates[wire.PARAM_PERIOD_START], dates[wire.PARAM_PERIOD_END]
    has_bound = wire.PARAM_PERIOD_START in query or wire.PARAM_PERIOD_END in query
    if has_bound and period_field is None:
        errors[wire.PARAM_PERIOD_FIELD] = [
            f"The {wire.PARAM_PERIOD_FIELD} field is required when "
            f"{wire.PARAM_PERIOD_START} or {wire.PARAM_PERIOD_END} is present."
        ]
    if start is not None and end is not None and start > end:
        errors[wire.PARAM_PERIOD_END] = [
            f"The {wire.PARAM_PERIOD_END} must be a date after or equal to "
            f"{wire.PARAM_PERIOD_START}."
        ]
    if errors:
        raise ValidationFailed(errors)
    expand = tuple(query.get(wire.PARAM_WITH, []))
    return PageQuery(per_page, cursor, with_properties, period_field, start, end, expand)


def _flat_query(query: Mapping[str, list[str]]) -> dict[str, str | list[str]]:
    return {k: v[0] if len(v) == 1 else list(v) for k, v in query.items()}


def _header_value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _today(timezone: str | None) -> dt.date:
    return _now(timezone).date()


def _now(timezone: str | None) -> dt.datetime:
    """The naive wall-clock time of the simulated system."""
    if timezone:
        return dt.datetime.now(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
    return dt.datetime.now().replace(microsecond=0)


class SimulatorServer:
    """A local CustomerGauge API over real HTTP, serving a seeded in-memory data set."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        records: int = 2000,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        seed: int = 1,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        latency_ms: float = 0.0,
        live_every_seconds: float = 0.0,
        timezone: str | None = None,
        prewarm_records: int = DEFAULT_PREWARM_RECORDS,
        journal: str | None = None,
        respond_share: float = 0.0,
        responses_order: str = "answer",
    ) -> None:
        self._timezone = timezone
        self._journal = Journal(journal) if journal else None
        stored, live_events = self._journal.load_events() if self._journal else (None, [])
        # Generated records are dated up to now, never later: a restart regenerates with
        # the first session's moment, so it serves exactly the same records.
        not_after = _now(timezone)
        if stored is not None:  # a restart: serve exactly the data of the first session
            seed, records, start, end = (
                stored["seed"],
                stored["records"],
                stored["start"],
                stored["end"],
            )
            respond_share = stored.get("respond_share", 0.0)
            not_after = (
                dt.datetime.fromisoformat(stored["not_after"]) if stored.get("not_after") else None
            )
        today = _today(timezone)
        end_day = parse_day(end) if end is not None else today
        start_day = parse_day(start) if start is not None else end_day - dt.timedelta(days=13)
        self._generation = {
            "seed": seed,
            "records": records,
            "start": start_day,
            "end": end_day,
            "respond_share": float(respond_share),
            "not_after": not_after,
        }
        self._client_id = client_id
        self._client_secret = client_secret
        self._lock = threading.Lock()
        self._defaults = flt.SimConfig()
        self._defaults.update({"latency_ms": latency_ms, "responses_order": responses_order})
        self._config = self._defaults.copy()
        self._faults = flt.FaultQueue()
        self._stats = _Stats()
        self._tokens: dict[str, _Token] = {}
        self._throttled_until = 0.0  # time.monotonic() when the current storm ends
        self._answered_since_storm = 0
        self._prewarm_records = prewarm_records
        self._live_every = float(live_every_seconds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dataset = Dataset(**self._generation, prewarm=prewarm_records)
        for kind, at in live_events:
            if kind == "answer":
                self._dataset.answer_live(at)
            else:
                self._dataset.add_records(at.date(), 1, at=at)
        self._live_ticks = 0
        if self._journal:
            self._journal.begin(
                {
                    "seed": seed,
                    "records": records,
                    "start": start_day.isoformat(),
                    "end": end_day.isoformat(),
                    "respond_share": float(respond_share),
                    "not_after": not_after.isoformat() if not_after else None,
                }
            )
        self._httpd = _HTTPServer((host, port), self)
        self._started = False

    # --- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    def start(self) -> SimulatorServer:
        """Serve in daemon threads; returns self."""
        if self._started:
            return self
        self._started = True
        serve = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="cg-simulator",
            daemon=True,
        )
        serve.start()
        self._threads.append(serve)
        if self._live_every > 0:
            live = threading.Thread(target=self._live_loop, name="cg-simulator-live", daemon=True)
            live.start()
            self._threads.append(live)
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and the listening socket."""
        self._stop.set()
        if self._started:
            self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self._started = False

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _live_loop(self) -> None:
        while not self._stop.wait(self._live_every):
            now = _now(self._timezone)
            self._dataset.add_records(now.date(), 1, at=now)
            if self._journal:
                self._journal.record_live(now)
            self._live_ticks += 1
            if self._live_ticks % 2 == 0:  # and every other tick, someone answers
                if self._dataset.answer_live(now) and self._journal:
                    self._journal.record_answer(now)

    def reset(
        self,
        *,
        seed: int | None = None,
        records: int | None = None,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        respond_share: float | None = None,
    ) -> None:
        """Regenerate the data (given values replace the current ones); clear faults,
        config and stats. Issued tokens stay valid."""
        generation = dict(self._generation)
        for name, value in (("seed", seed), ("records", records)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name} must be an int")
                generation[name] = value
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                generation[name] = parse_day(value)
        if respond_share is not None:
            if isinstance(respond_share, bool) or not 0 <= float(respond_share) <= 1:
                raise ValueError("respond_share must be a number from 0 to 1")
            generation["respond_share"] = float(respond_share)
        dataset = Dataset(**generation, prewarm=self._prewarm_records)
        with self._lock:
            self._generation = generation
            self._dataset = dataset
            self._faults.clear()
            self._config = self._defaults.copy()
            self._stats = _Stats()
            self._throttled_until = 0.0
            self._answered_since_storm = 0

    # --- state helpers ----------------------------------------------------------------
    def configure(self, **changes: Any) -> dict[str, Any]:
        with self._lock:
            self._config.update(changes)
            if any(name.startswith("throttle_") for name in changes):
                # A new throttle starts counting afresh: the same data meets the same storms.
                self._throttled_until = 0.0
                self._answered_since_storm = 0
            return self._config.as_dict()

    def inject(self, *faults: Mapping[str, Any]) -> None:
        self._faults.add(list(faults))
        for spec in faults:
            if spec.get("kind") == flt.GZIP_BOMB:
                # Packed now, not when served: packing 256 MB takes seconds, which would
                # read as a slow server and trip the client's headers deadline instead.
                _gzip_bomb(flt.parse_fault(spec).size)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            s = self._stats
            return {
                "api_requests": s.api_requests,
                "token_requests": s.token_requests,
                "records_served": s.records_served,
                "status_counts": {str(k): v for k, v in sorted(s.status_counts.items())},
                "dropped_connections": s.dropped,
                "faults_pending": self._faults.pending(),
                "live_records": len(self._dataset),
                "responses": self._dataset.response_count(),
                "requests": list(s.requests),
            }

    def _count(self, response: Response) -> None:
        with self._lock:
            if response.mode == NORMAL:
                self._stats.status_counts[response.status] += 1
                self._stats.records_served += response.records
            else:
                self._stats.dropped += 1

    # --- routing ----------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query_string: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        query = parse_qs(query_string, keep_blank_values=True)
        if path in API_PATHS:
            if method != "GET":
                return json_response(405, {wire.BODY_MESSAGE: "Method not allowed."})
            return self._api(path, query, headers)
        if path == TOKEN_PATH:
            if method != "POST":
                return json_response(405, {wire.BODY_MESSAGE: "Method not allowed."})
            return self._token(body)
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(method, path[len(CONTROL_PREFIX) :], query, body)
        return json_response(404, {wire.BODY_MESSAGE: "Not found."})

    # --- token endpoint ---------------------------------------------------------------
    def _token(self, body: bytes) -> Response:
        with self._lock:
            self._stats.token_requests += 1
            config = self._config.copy()
        fault = self._faults.take(flt.TARGET_TOKEN)
        response = self._token_response(body, config, fault)
        self._count(response)
        return response

    def _token_response(
        self, body: bytes, config: flt.SimConfig, fault: flt.Fault | None
    ) -> Response:
        kind = fault.kind if fault else None
        early = self._gateway_fault(fault, body)
        if early is not None:
            return early
        if kind == flt.UNAUTHORIZED:
            return _invalid_client()
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if _last(form, wire.TOKEN_FORM_GRANT_TYPE) != wire.TOKEN_GRANT_TYPE:
            response = json_response(400, {ERROR_KEY: "unsupported_grant_type"})
        else:
            client_id = _last(form, wire.TOKEN_FORM_CLIENT_ID) or ""
            client_secret = _last(form, wire.TOKEN_FORM_CLIENT_SECRET) or ""
            valid = hmac.compare_digest(client_id.encode(), self._client_id.encode())
            valid &= hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
            if not valid or config.revoked:
                response = _invalid_client()
            else:
                token = secrets.token_hex(20)
                ttl = config.token_ttl_seconds
                with self._lock:
                    now = time.monotonic()
                    for old in [
                        t for t, info in self._tokens.items() if now >= info.issued + info.ttl
                    ]:
                        del self._tokens[old]
                    self._tokens[token] = _Token(issued=now, ttl=ttl)
                payload: dict[str, Any] = {
                    wire.TOKEN_RESPONSE_ACCESS_TOKEN: token,
                    TOKEN_TYPE_KEY: wire.AUTH_SCHEME,
                }
                if not config.omit_expires_in:
                    payload[wire.TOKEN_RESPONSE_EXPIRES_IN] = int(ttl) if ttl.is_integer() else ttl
                response = json_response(200, payload)
        return self._transport_fault(kind, response, fault)

    # --- sync endpoint ----------------------------------------------------------------
    def _api(
        self, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> Response:
        entry: dict[str, Any] = {
            "path": path,
            "query": _flat_query(query),
            "at": time.monotonic(),
            "status": None,  # set below: the dict's size never changes once it is logged
        }
        with self._lock:
            self._stats.api_requests += 1
            self._stats.requests.append(entry)
            config = self._config.copy()
            throttled = self._throttle(config, entry["at"])
        if throttled is not None:
            response = throttled
        else:
            fault = self._faults.take(flt.TARGET_API)
            if config.latency_ms > 0:
                time.sleep(config.latency_ms / 1000.0)
            response = self._api_response(API_PATHS[path], query, headers, config, fault)
        entry["status"] = response.status if response.mode != DROP else 0
        self._count(response)
        return response

    def _throttle(self, config: flt.SimConfig, now: float) -> Response | None:
        """A 429 while a throttle storm lasts (a storm starts after every
        `throttle_every_requests` requests answered); None otherwise. Holds self._lock."""
        every = config.throttle_every_requests
        if every is None:
            return None
        if now >= self._throttled_until:
            if self._answered_since_storm < every:
                self._answered_since_storm += 1
                return None
            self._throttled_until = now + config.throttle_seconds
            self._answered_since_storm = 0
        headers = []
        if config.throttle_retry_after:
            left = math.ceil(self._throttled_until - now)
            headers.append((wire.RETRY_AFTER_HEADER, str(max(1, left))))
        return json_response(429, {wire.BODY_MESSAGE: "Too Many Attempts."}, headers)

    def _gateway_fault(self, fault: flt.Fault | None, request: bytes = b"") -> Response | None:
        """Faults answered before the application sees the request (None: carry on)."""
        if fault is not None and fault.kind in _HOSTILE:
            return _HOSTILE[fault.kind](fault, request)
        if fault is None or fault.kind not in (flt.STATUS, flt.DROP, flt.HTML, flt.SLOW):
            return None
        if fault.kind == flt.SLOW:
            time.sleep(fault.seconds)
            return None
        if fault.kind == flt.DROP:
            return Response(0, mode=DROP)
        if fault.kind == flt.HTML:
            return Response(200, NGINX_502, content_type=HTML_TYPE)
        # status
        headers = []
        if fault.retry_after is not None:
            headers.append((wire.RETRY_AFTER_HEADER, _header_value(fault.retry_after)))
        body = fault.body
        if body is None:
            if fault.code == 429:
                message = "Too Many Attempts."
            else:
                try:
                    message = HTTPStatus(fault.code).phrase
                except ValueError:
                    message = "Error"
            return json_response(fault.code, {wire.BODY_MESSAGE: message}, headers)
        if isinstance(body, str):
            data = body.encode("utf-8")
            try:
                loads(data)
                content_type = JSON_TYPE
            except ValueError:
                content_type = "text/plain; charset=utf-8"
            return Response(fault.code, data, content_type=content_type, headers=headers)
        return json_response(fault.code, body, headers)

    @staticmethod
    def _transport_fault(
        kind: str | None, response: Response, fault: flt.Fault | None = None
    ) -> Response:
        if kind in (flt.DRIBBLE, flt.SLOW_HEADERS) and fault is not None:
            response.mode = DRIBBLE if kind == flt.DRIBBLE else SLOW_HEADERS
            response.pace = fault.seconds
        elif kind == flt.TRUNCATE:
            response.body = response.body[: len(response.body) // 2]
            response.records = 0
        elif kind == flt.DROP_MID_BODY:
            response.mode = DROP_MID_BODY
        return response

    def _authenticate(self, headers: Mapping[str, str], config: flt.SimConfig) -> str | None:
        scheme, _, token = (headers.get(wire.AUTH_HEADER) or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != wire.AUTH_SCHEME.lower() or not token:
            return None
        with self._lock:
            info = self._tokens.get(token)
            if info is None:
                return None
            if time.monotonic() >= info.issued + info.ttl:
                del self._tokens[token]
                return None
            limit = config.expire_tokens_after_requests
            if limit is not None and info.uses >= limit:
                return None
            info.uses += 1
        return token

    def _revoke_token(self, headers: Mapping[str, str]) -> None:
        _, _, token = (headers.get(wire.AUTH_HEADER) or "").strip().partition(" ")
        with self._lock:
            self._tokens.pop(token.strip(), None)

    def _api_response(
        self,
        endpoint: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        config: flt.SimConfig,
        fault: flt.Fault | None,
    ) -> Response:
        kind = fault.kind if fault else None
        echoed = f"{wire.AUTH_HEADER}: {headers.get(wire.AUTH_HEADER)}".encode()
        early = self._gateway_fault(fault, echoed)
        if early is not None:
            return early
        if kind == flt.UNAUTHORIZED:
            self._revoke_token(headers)
            return _unauthenticated()
        if self._authenticate(headers, config) is None:
            return self._transport_fault(kind, _unauthenticated())
        try:
            q = parse_page_query(query, ENDPOINT_FIELDS[endpoint])
        except ValidationFailed as exc:
            body = {wire.BODY_MESSAGE: INVALID_DATA, "errors": exc.errors}
            return self._transport_fault(kind, json_response(422, body))
        limit = q.per_page
        if config.max_page_size is not None:
            limit = min(limit, config.max_page_size)
        dataset = self._dataset
        window = {"field": q.field, "start": q.start, "end": q.end, "after": q.cursor}
        if endpoint == RESPONSES:
            parts, last_pk = dataset.response_page(
                **window, limit=limit, expand=q.expand, order=config.responses_order
            )
        else:
            parts, last_pk = dataset.page(**window, limit=limit, with_properties=q.with_properties)
        if config.extra_personal_fields and endpoint != RESPONSES:
            parts = [with_personal_extras(part) for part in parts]
        if config.unknown_field:
            parts = [with_unknown_field(part, config.unknown_field) for part in parts]
        sent_cursor = q.cursor if q.cursor is not None else 0
        next_cursor = last_pk if last_pk is not None else sent_cursor
        if kind is None and parts and q.start is not None:
            if q.start.isoformat() in config.broken_days:
                kind = flt.BAD_DATE  # a persistently broken day (config broken_days)
        if kind in flt.CONTRACT_KINDS:
            body = self._break_contract(kind, dataset, q, parts, next_cursor, sent_cursor)
        else:
            body = _PAGE_OPEN + b",".join(parts) + _PAGE_CLOSE % next_cursor
        response = Response(200, body, records=len(parts))
        return self._transport_fault(kind, response, fault)

    @staticmethod
    def _break_contract(
        kind: str | None,
        dataset: Dataset,
        q: PageQuery,
        parts: list[bytes],
        next_cursor: int,
        sent_cursor: int,
    ) -> bytes:
        records = [loads(part) for part in parts]
        cursor = {wire.BODY_CURSOR_NEXT: next_cursor}
        page: dict[str, Any] = {wire.BODY_DATA: records, wire.BODY_CURSOR: cursor}
        if kind == flt.BAD_DATA:
            page[wire.BODY_DATA] = {str(i): record for i, record in enumerate(records)}
        elif kind == flt.MISSING_KEY and records:
            del records[0][wire.RECORD_KEY]
        elif kind == flt.BAD_DATE and records:
            records[0][DATE_SENT] = BAD_DATE_VALUE
        elif kind == flt.STUCK_CURSOR:
            cursor[wire.BODY_CURSOR_NEXT] = sent_cursor
        elif kind == flt.OMIT_CURSOR:
            del page[wire.BODY_CURSOR]
        elif kind == flt.HUGE_KEY and records:
            records[0][wire.RECORD_KEY] = HUGE_KEY
        elif kind == flt.MISSING_RECORD and records:
            del page[wire.BODY_DATA][0]
        elif kind == flt.EMPTY_PAGE:
            page[wire.BODY_DATA] = []
            cursor[wire.BODY_CURSOR_NEXT] = sent_cursor
        elif kind == flt.ENDLESS_PAGES and not records:
            made_up = _made_up_record(dataset, q, sent_cursor + 1)
            if made_up is not None:
                page[wire.BODY_DATA] = [made_up]
                cursor[wire.BODY_CURSOR_NEXT] = sent_cursor + 1
        elif kind == flt.OUT_OF_DAY:
            template = records[0] if records else None
            if template is None:
                first = dataset.select(limit=1)
                template = dataset.record(first[0]) if first else None
            if template is not None:
                extra = loads(dumps(template))
                if not q.with_properties:
                    extra.pop(wire.WITH_PROPERTIES, None)
                if q.end is not None:
                    outside = q.end + dt.timedelta(days=1)
                elif q.start is not None:
                    outside = q.start - dt.timedelta(days=1)
                else:
                    outside = dataset.start - dt.timedelta(days=1)
                day = outside.strftime(wire.PERIOD_DATE_FORMAT)
                for name in {DATE_SENT, q.field or DATE_SENT}:
                    extra[name] = day + str(extra[name])[len(day) :]
                extra[wire.RECORD_KEY] = int(extra[wire.RECORD_KEY]) + 1  # never a real key
                records.append(extra)
        return dumps(page)

    # --- control endpoints ------------------------------------------------------------
    def _control(
        self, method: str, route: str, query: Mapping[str, list[str]], body: bytes
    ) -> Response:
        try:
            payload = loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            return self._control_route(method, route, query, payload)
        except ValueError as exc:
            return json_response(400, {ERROR_KEY: str(exc)})

    def _control_route(
        self, method: str, route: str, query: Mapping[str, list[str]], payload: dict[str, Any]
    ) -> Response:
        key = (method, route)
        if key == ("GET", "/health"):
            return json_response(200, {"ok": True})
        if key == ("GET", "/stats"):
            return json_response(200, self.stats())
        if key == ("POST", "/stats/reset"):
            with self._lock:
                self._stats = _Stats()
            return json_response(200, {"ok": True})
        if key == ("GET", "/truth"):
            return self._truth(query)
        if key == ("POST", "/records/add"):
            field_name = payload.get("field", DATE_SENT)
            if field_name not in wire.PERIOD_FIELDS:
                raise ValueError(f"field must be one of {list(wire.PERIOD_FIELDS)}")
            if "day" not in payload or "count" not in payload:
                raise ValueError("give day and count")
            keys = self._dataset.add_records(payload["day"], payload["count"], field_name)
            return json_response(200, {"keys": keys})
        if key in (("POST", "/records/fail"), ("POST", "/records/respond")):
            keys = payload.get("keys")
            if keys is not None and (
                not isinstance(keys, list) or not all(isinstance(k, int) for k in keys)
            ):
                raise ValueError("keys must be a list of ints")
            if route == "/records/fail":
                done = self._dataset.fail_records(
                    keys, day=payload.get("day"), count=payload.get("count")
                )
            else:  # answered: they move from non-responses to responses
                at = payload.get("at")
                done = self._dataset.respond_records(
                    keys,
                    day=payload.get("day"),
                    count=payload.get("count"),
                    at=dt.datetime.fromisoformat(at) if at else None,
                    latest=_now(self._timezone),
                )
            return json_response(200, {"keys": done})
        if key == ("POST", "/faults"):
            specs = payload.get("faults")
            if not isinstance(specs, list):
                raise ValueError('give {"faults": [...]}')
            self.inject(*specs)
            return json_response(200, {"faults_pending": self._faults.pending()})
        if key == ("DELETE", "/faults"):
            self._faults.clear()
            return json_response(200, {"faults_pending": 0})
        if key == ("GET", "/faults"):
            return json_response(200, {"faults": self._faults.snapshot()})
        if key == ("POST", "/config"):
            return json_response(200, self.configure(**payload))
        if key == ("GET", "/config"):
            with self._lock:
                return json_response(200, self._config.as_dict())
        if key == ("POST", "/reset"):
            unknown = set(payload) - {"seed", "records", "start", "end", "respond_share"}
            if unknown:
                raise ValueError(f"unknown reset keys {sorted(unknown)}")
            self.reset(**payload)
            return json_response(200, {"ok": True, "records": len(self._dataset)})
        return json_response(404, {ERROR_KEY: f"no control endpoint {method} {route}"})

    def _truth(self, query: Mapping[str, list[str]]) -> Response:
        endpoint = _last(query, "endpoint") or NON_RESPONSES
        if endpoint not in ENDPOINT_FIELDS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINT_FIELDS)}")
        field_name = _last(query, "field") or DATE_SENT
        if field_name not in ENDPOINT_FIELDS[endpoint]:
            raise ValueError(f"field must be one of {list(ENDPOINT_FIELDS[endpoint])}")
        start = _last(query, "start")
        end = _last(query, "end")
        start_day = parse_day(start) if start else None
        end_day = parse_day(end) if end else None
        dataset = self._dataset
        with dataset.lock:
            if endpoint == RESPONSES:
                rpks = dataset.select_responses(field_name, start_day, end_day)
                if self._config.responses_order == "cgid":  # the API's order, as served
                    rpks.sort(key=dataset.response_pk)
                parts = dataset.render_responses(rpks, RESPONSE_EXPANSIONS)
            else:
                pks = dataset.select(field_name, start_day, end_day)
                parts = dataset.render(pks, with_properties=True)
        with self._lock:
            extras = self._config.extra_personal_fields
            unknown = self._config.unknown_field
        if extras and endpoint != RESPONSES:
            parts = [with_personal_extras(part) for part in parts]
        if unknown:
            parts = [with_unknown_field(part, unknown) for part in parts]
        return Response(200, _PAGE_OPEN + b",".join(parts) + _TRUTH_CLOSE)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimulatorServer) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CustomerGaugeSimulator/1.0"
    sys_version = ""
    timeout = 120.0  # idle keep-alive connections are closed after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: never print requests (they carry tokens and secrets)."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(json_response(400, {wire.BODY_MESSAGE: "Bad Content-Length."}))
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        try:
            response = self.server.sim.handle(
                self.command, split.path, split.query, self.headers, body
            )
        except Exception:
            traceback.print_exc(limit=5, file=sys.stderr)
            response = json_response(500, {wire.BODY_MESSAGE: "Server Error"})
        self._send(response)

    def _send(self, response: Response) -> None:
        if response.mode == DROP:
            self.close_connection = True
            return
        body = response.body
        reason = self.responses.get(response.status, ("",))[0]
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
            f"Date: {self.date_time_string()}",
            f"Server: {self.server_version}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if response.encoding is not None:
            lines.append(f"Content-Encoding: {response.encoding}")
        if response.mode == STREAM:
            self.close_connection = True
            lines = [line for line in lines if not line.startswith("Content-Length:")]
            lines.append("Connection: close")
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            for chunk in response.chunks or ():
                self.wfile.write(chunk)
            return
        if response.mode in (DRIBBLE, SLOW_HEADERS):
            self._send_slowly(response, lines, body)
            return
        if response.mode == DROP_MID_BODY:
            self.close_connection = True
            body = body[: len(body) // 2]
        elif self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _send_slowly(self, response: Response, lines: list[str], body: bytes) -> None:
        """A server that never stops sending, but sends almost nothing: each header line
        (SLOW_HEADERS) or each byte of the body (DRIBBLE) `pace` seconds apart. Stops when
        the client hangs up."""
        self.close_connection = True
        lines.append("Connection: close")
        if response.mode == SLOW_HEADERS:
            for line in lines:
                self.wfile.write((line + "\r\n").encode("latin-1"))
                self.wfile.flush()
                time.sleep(response.pace)
            self.wfile.write(b"\r\n" + body)
            return
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            time.sleep(response.pace)


HUGE_KEY = 2**63 + 7  # a key past int64 (fault huge_key)
_BLOCK = 1024 * 1024


def _page_opening(size: int) -> Iterator[bytes]:
    """`size` bytes of a page body that opens and then is all whitespace (valid, so far)."""
    yield _PAGE_OPEN
    left = size - len(_PAGE_OPEN)
    block = b" " * _BLOCK
    while left > 0:
        yield block[: min(left, _BLOCK)]
        left -= _BLOCK


@functools.lru_cache(maxsize=4)
def _gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(packer.compress(part) for part in _page_opening(size)) + packer.flush()


def _bomb(fault: flt.Fault, request: bytes) -> Response:
    return Response(200, _gzip_bomb(fault.size), encoding="gzip")


def _huge(fault: flt.Fault, request: bytes) -> Response:
    return Response(200, mode=STREAM, chunks=_page_opening(fault.size))


def _deep(fault: flt.Fault, request: bytes) -> Response:
    depth = fault.depth
    return Response(200, _PAGE_OPEN + b"[" * depth + b"]" * depth + _PAGE_CLOSE % 1)


def _echo(fault: flt.Fault, request: bytes) -> Response:
    body = b"<html><body>Bad request: " + request + b"</body></html>"
    return Response(fault.code, body, content_type=HTML_TYPE)


_HOSTILE = {flt.GZIP_BOMB: _bomb, flt.HUGE_BODY: _huge, flt.DEEP_NESTING: _deep, flt.ECHO: _echo}


def _made_up_record(dataset: Dataset, q: PageQuery, key: int) -> dict[str, Any] | None:
    """A record of the queried day with key `key` (fault endless_pages)."""
    first = dataset.select(limit=1)
    if not first:
        return None
    record = loads(dumps(dataset.record(first[0])))
    if not q.with_properties:
        record.pop(wire.WITH_PROPERTIES, None)
    if q.start is not None:
        day = q.start.strftime(wire.PERIOD_DATE_FORMAT)
        for name in {DATE_SENT, q.field or DATE_SENT}:
            record[name] = day + str(record[name])[len(day) :]
    record[wire.RECORD_KEY] = key
    return record


def with_unknown_field(part: bytes, path: str) -> bytes:
    """A rendered record with `path` (dotted: nested objects) set to a constant value."""
    record = loads(part)
    *parents, name = path.split(".")
    node = record
    for parent in parents:
        child = node.get(parent)
        if not isinstance(child, dict):
            child = node[parent] = {}
        node = child
    node[name] = "drift"
    return dumps(record)


def with_personal_extras(part: bytes) -> bytes:
    """A rendered record with fields no endpoint row declares, holding the contact's own
    personal data where a new API version might put it: an unknown key inside a known
    object, a top-level field, a nested object with a list of objects, free text, two
    segment values (properties), plus a field with nothing personal in it."""
    record = loads(part)
    contact = record.get("contact") or {}
    first, last = contact.get("first_name"), contact.get("last_name")
    email, phone = record.get("email"), record.get("phone")
    record["contact"] = {**contact, "mobile": phone}
    record["secondary_email"] = email.upper() if email else email
    record["recipient"] = {
        "full_name": f"{first} {last}",
        "addresses": [{"kind": "work", "email": email}, {"kind": "phone", "phone": phone}],
    }
    record["notes"] = f"Prefers e-mail: {email}"
    record["survey_meta"] = {"channel": "email", "wave": 2}
    if isinstance(record.get("properties"), list):  # segment values can hold them too
        record["properties"] = [
            *record["properties"],
            {"field": "Contact E-mail", "reference": email},
            {"field": "Callback Number", "reference": phone},
        ]
    return dumps(record)
