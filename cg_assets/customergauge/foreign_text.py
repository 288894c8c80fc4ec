"""What of a server's text may go into our messages (errors, logs, event metadata).

A body we did not expect can hold anything: a 4xx that repeats the records it refused,
a gateway page quoting the request, a token endpoint echoing its form with the client
secret URL-encoded in it (issue 21). Messages land in the event log, the runs index and
compute logs, so bodies are described, not quoted: their size and kind, the API's own
error message when there is one, or an HTML page's title, each scrubbed and capped.
A value of a record (a date that does not parse, a key that is not a number) is quoted
only when it plainly holds nothing personal.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from typing import Any

from cg_assets.customergauge import wire

QUOTE_CHARS = 160  # of any one piece of foreign text
MESSAGE_CHARS = 2000  # of a whole failure message recorded in an event

# The fields an API (or an OAuth server, RFC 6749 §5.2) puts its own message in.
_MESSAGE_FIELDS = (wire.BODY_MESSAGE, "error", "error_description", "detail", "title")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
# What scrubbing replaces in a quoted message: e-mail addresses, runs of digits long
# enough to be a phone number, and long runs without spaces (a token, a secret in any
# encoding, base64, a query string) - none of which a human-written message needs.
_EMAIL = re.compile(r"[^\s@]{1,64}@[^\s@]{1,255}")
_DIGITS = re.compile(r"\+?\d[\d \-().]{6,}\d")
_LONG_WORD = re.compile(r"\S{25,}")
# A value that is plainly a date, a time or a number, or an empty one: safe to quote.
_DATE_LIKE = re.compile(r"[0-9 :.\-+TZ/]{0,40}")


def scrub(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` on one line, without what may be personal or secret, at most `limit` chars."""
    text = " ".join(text.split())[: limit * 4]
    text = _EMAIL.sub("<e-mail>", text)
    text = _LONG_WORD.sub(lambda m: f"<{len(m.group())} chars>", text)
    text = _DIGITS.sub("<number>", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_body(body: bytes) -> str:
    """A body for an error message: its size and kind, and what of it is safe to show."""
    size = f"{len(body)} bytes"
    head = body.lstrip()[:1]
    if not body.strip():
        return f"an empty body ({size})"
    if head in (b"{", b"["):
        message = _api_message(body)
        said = f": {message!r}" if message else ""
        return f"{size} of JSON{said} (the rest not quoted: it may hold personal data)"
    if head == b"<":
        title = _TITLE.search(body[:65536])
        said = ""
        if title:
            said = f" titled {scrub(title.group(1).decode('utf-8', errors='replace'))!r}"
        return f"an HTML page of {size}{said} (not quoted)"
    first_line = body[: QUOTE_CHARS * 4].decode("utf-8", errors="replace").splitlines()[0]
    return f"{size} of text starting {scrub(first_line, 80)!r}"


def _api_message(body: bytes) -> str | None:
    if len(body) > 1 << 20:
        return None  # a message is short; a large body is a page, not worth parsing here
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    parts = [decoded[f] for f in _MESSAGE_FIELDS if isinstance(decoded.get(f), str)]
    # A validation error names the parameters it refused (Laravel's `errors`); the names
    # are ours, the messages the API's: both say what to fix, neither holds a record.
    errors = decoded.get("errors")
    if isinstance(errors, dict):
        for name, said in list(errors.items())[:5]:
            first = said[0] if isinstance(said, list) and said else said
            parts.append(f"{name}: {first}" if isinstance(first, str) else str(name))
    return scrub(" - ".join(parts), QUOTE_CHARS * 2) if parts else None


def describe_value(value: Any) -> str:
    """A record's value for an error message: quoted when plainly a date, a number or
    empty, else only its type and length (a free-text field may hold an address)."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    if isinstance(value, str) and _DATE_LIKE.fullmatch(value):
        return repr(value)
    if isinstance(value, str):
        return f"a text of {len(value)} characters (not quoted: it may be personal)"
    return f"a {type(value).__name__} (not quoted)"


def secret_forms(secret: str) -> set[str]:
    """`secret` as it may appear in a foreign body: literally and in the encodings a form,
    a URL, JSON or Basic auth give it."""
    if not secret:
        return set()
    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    }
    return {form for form in forms if form}


def redact(text: str, secrets: list[str]) -> str:
    """`text` without any of `secrets` in any of their forms, capped for an event."""
    forms = sorted({f for s in secrets for f in secret_forms(s)}, key=len, reverse=True)
    for form in forms:
        text = text.replace(form, "***")
    if len(text) > MESSAGE_CHARS:
        text = text[: MESSAGE_CHARS - 1] + "…"
    return text
