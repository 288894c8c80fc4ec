"""One HTTP attempt: a pooled `requests.Session`, explicit timeouts, and the sorting of
failures into transient (retry) and final (raise). Retrying itself lives in retry.py."""

from __future__ import annotations

from typing import Any

import requests

from cg_assets.customergauge import wire
from cg_assets.customergauge.errors import ApiRequestError
from cg_assets.customergauge.retry import TransientError, parse_retry_after

try:  # orjson decodes a 1000-record page about 2x faster than json (see BENCHMARKS.md)
    from orjson import JSONDecodeError as _JSONDecodeError
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    from json import JSONDecodeError as _JSONDecodeError
    from json import loads as json_loads

USER_AGENT = "cg_assets/0.1 (+Dagster CustomerGauge lake sync; python-requests)"
BODY_QUOTE_CHARS = 200


def quote_body(body: bytes) -> str:
    """The start of an error body (a 4xx or 5xx: an API message or a gateway's page)."""
    text = body[:BODY_QUOTE_CHARS].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    suffix = "…" if len(body) > BODY_QUOTE_CHARS else ""
    return f"{text!r}{suffix} ({len(body)} bytes)"


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def attempt(
    session: requests.Session,
    method: str,
    url: str,
    timeout: tuple[float, float],
    **kwargs: Any,
) -> requests.Response:
    """Send one request and read its whole body; raise TransientError for what a retry may fix."""
    try:
        response = session.request(method, url, timeout=timeout, stream=True, **kwargs)
        _read_body(response)  # now, so a drop mid-body is caught here
    except requests.Timeout as exc:
        raise TransientError(
            "timeout",
            f"no answer within {timeout[0]:.0f}/{timeout[1]:.0f} s "
            f"(connect/read, CG_HTTP_TIMEOUT): {type(exc).__name__}",
        ) from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientError(
            "connection", f"connection failed or dropped: {type(exc).__name__}"
        ) from None
    if response.status_code == 429:
        retry_after = parse_retry_after(response.headers.get(wire.RETRY_AFTER_HEADER))
        raise TransientError("429", "HTTP 429 Too Many Requests", retry_after)
    if response.status_code >= 500:
        raise TransientError("5xx", f"HTTP {response.status_code}: {quote_body(response.content)}")
    return response


def _read_body(response: requests.Response) -> None:
    """Read the body into `response.content`, as requests does without stream=True, but in
    one read (`iter_content(None)`) instead of 10 KiB chunks: about 2 ms less CPU per
    1 MB page (BENCHMARKS.md). The same requests code raises the same exceptions for a
    body cut short, a read timeout or bad gzip; the connection goes back to the pool once
    the body is read, as before."""
    if response.status_code == 0 or response.raw is None:  # as requests' Response.content
        response.content  # noqa: B018
        return
    response._content = b"".join(response.iter_content(None)) or b""


def raise_for_unexpected(response: requests.Response, what: str) -> None:
    """A 4xx we do not handle (401 and 429 are handled by the callers) is a request to fix."""
    if 400 <= response.status_code < 500:
        raise ApiRequestError(
            f"{what} was refused with HTTP {response.status_code}: {quote_body(response.content)}",
            status=response.status_code,
        )


def describe_broken_body(body: bytes) -> str:
    """A 200 body that is not what it should be, for an error message. A page holds records
    (names, e-mail addresses) and a token response a token, so anything that may be JSON is
    described, never quoted; a body that is plainly not JSON (a gateway's HTML page) is."""
    head = body.lstrip()[:1]
    if head in (b"{", b"[", b'"') or not body.strip():
        return f"{len(body)} bytes starting with {head.decode(errors='replace')!r} (not quoted: a page may hold personal data, a token response a token)"
    return quote_body(body)


def decode_json_body(response: requests.Response, what: str) -> Any:
    """The decoded JSON body; a 200 that is not JSON (an HTML error page, a cut body) is transient."""
    try:
        return json_loads(response.content)
    except (_JSONDecodeError, ValueError, UnicodeDecodeError):
        raise TransientError(
            "bad_body",
            f"{what} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{describe_broken_body(response.content)}",
        ) from None
