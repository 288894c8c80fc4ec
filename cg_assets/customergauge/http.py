"""One HTTP attempt: a pooled `requests.Session`, explicit timeouts, and the sorting of
failures into transient (retry) and final (raise). Retrying itself lives in retry.py."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from cg_assets.customergauge import deadline, wire
from cg_assets.customergauge.body import BodyLimits, check_depth, read_limited
from cg_assets.customergauge.errors import ApiLimitError, ApiRequestError
from cg_assets.customergauge.foreign_text import describe_body
from cg_assets.customergauge.retry import TransientError, parse_retry_after
from cg_assets.settings import ClientSettings

try:  # orjson decodes a 1000-record page about 2x faster than json (see BENCHMARKS.md)
    from orjson import JSONDecodeError as _JSONDecodeError
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    from json import JSONDecodeError as _JSONDecodeError
    from json import loads as json_loads

USER_AGENT = "cg_assets/0.1 (+Dagster CustomerGauge lake sync; python-requests)"


@dataclass(frozen=True)
class Limits:
    """How long one attempt may take and how much it may read (settings.py names each)."""

    connect_timeout: float
    read_timeout: float  # per socket read
    headers_deadline: float  # from sending to the last header
    response_deadline: float  # from sending to the last byte of the body
    body: BodyLimits

    @property
    def timeout(self) -> tuple[float, float]:
        return self.connect_timeout, self.read_timeout


def limits_from(settings: ClientSettings) -> Limits:
    return Limits(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        headers_deadline=settings.headers_deadline_seconds,
        response_deadline=settings.response_deadline_seconds,
        body=BodyLimits(settings.max_body_bytes, settings.max_json_depth),
    )


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    # Only what body.py inflates itself, a bounded piece at a time.
    session.headers["Accept-Encoding"] = "gzip, deflate"
    adapter = deadline.new_adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def attempt(
    session: requests.Session,
    method: str,
    url: str,
    limits: Limits,
    what: str,
    **kwargs: Any,
) -> requests.Response:
    """Send one request and read its whole body; raise TransientError for what a retry may
    fix (a deadline passed included), ApiLimitError for a body past a limit."""
    with deadline.Watch(limits.headers_deadline, limits.response_deadline) as watch:
        response: requests.Response | None = None
        try:
            response = session.request(method, url, timeout=limits.timeout, stream=True, **kwargs)
            watch.headers_received()
            _read_body(response, what, limits.body, watch)
        except (TransientError, ApiLimitError):
            _close(response)
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            _close(response)
            if watch.fired:
                raise _deadline_passed(watch) from None
            raise TransientError(
                "timeout",
                f"no answer within {limits.connect_timeout:g}/{limits.read_timeout:g} s "
                f"(connect/read, CG_HTTP_TIMEOUT): {type(exc).__name__}",
            ) from None
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            _close(response)
            if watch.fired:
                raise _deadline_passed(watch) from None
            raise TransientError(
                "connection", f"connection failed or dropped: {type(exc).__name__}"
            ) from None
        if watch.fired:  # the body's reading stopped at its deadline
            _close(response)
            raise _deadline_passed(watch)
    if response.status_code == 429:
        retry_after = parse_retry_after(response.headers.get(wire.RETRY_AFTER_HEADER))
        raise TransientError("429", "HTTP 429 Too Many Requests", retry_after)
    if response.status_code >= 500:
        raise TransientError(
            "5xx", f"HTTP {response.status_code}: {describe_body(response.content)}"
        )
    return response


def _deadline_passed(watch: deadline.Watch) -> TransientError:
    return TransientError("deadline", f"{watch.describe()}")


def _close(response: requests.Response | None) -> None:
    """A response left half read: its connection is not reused."""
    if response is not None:
        response.close()


def _read_body(
    response: requests.Response, what: str, limits: BodyLimits, watch: deadline.Watch
) -> None:
    """Read the body into `response.content` as requests does without stream=True, but
    within the limits (body.py), and check its nesting before any parser sees it."""
    if response.status_code == 0 or response.raw is None:  # as requests' Response.content
        response.content  # noqa: B018
        return
    content = read_limited(response, what, limits, watch)
    response._content = content
    response._content_consumed = True
    if not watch.fired:
        check_depth(content, what, limits.max_json_depth)


def raise_for_unexpected(response: requests.Response, what: str) -> None:
    """A 4xx we do not handle (401 and 429 are handled by the callers) is a request to fix."""
    if 400 <= response.status_code < 500:
        raise ApiRequestError(
            f"{what} was refused with HTTP {response.status_code}: {describe_body(response.content)}",
            status=response.status_code,
        )


def decode_json_body(response: requests.Response, what: str) -> Any:
    """The decoded JSON body; a 200 that is not JSON (an HTML error page, a cut body) is transient."""
    try:
        return json_loads(response.content)
    except (_JSONDecodeError, ValueError, UnicodeDecodeError):
        raise TransientError(
            "bad_body",
            f"{what} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{describe_body(response.content)}",
        ) from None
