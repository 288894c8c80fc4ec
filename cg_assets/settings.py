"""Every setting of cg_assets: what it accepts, its default, what it means, the error naming it.

A setting has two forms:
- the text of its CG_* variable (`CG_PER_PAGE=50`), read by `make run`'s pre-check
  (settings_check.py) and by a defs.yaml attribute written `"{{ env.CG_PER_PAGE }}"`
  (cg_assets/defs/customergauge/defs.yaml is this project's own);
- a typed value (`per_page: 50`): an attribute of `CustomerGaugeComponent`, a field of a
  resource.

One `Rule` per setting turns the text into the typed value and checks a typed value, so
both forms accept and refuse the same values, in the same words. The settings the code
uses (`LoadSettings`, `ClientSettings`, `PrivacySettings`) are built from typed values
only (`load_settings`, `client_settings`, `privacy_settings`); `from_env` parses the text
with the rules, then goes the same way. This module is the one place that parses CG_*
text: a run never does, it gets typed values.

Defaults are the dataclasses' below; descriptions the rules'. The component's attribute
reference (docs/component.md) and the variable table of docs/configuration.md are
generated from them (cg_assets/components/reference.py).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cg_assets.customergauge import wire


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it and what it accepts."""


class MissingSetting(SettingsError):
    """A setting a run needs is not set at all (not a bad value): the run fails at its start,
    naming it, as it does for unset credentials, while the code location still loads (a
    fresh clone, `dg check defs` in CI)."""


class Refused(ValueError):
    """A parser's own reason; `{name}` in it becomes the variable or attribute at fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def naming(self, name: str) -> SettingsError:
        return SettingsError(self.reason.replace("{name}", name))


PREFIX = "CG_"


def variable_of(name: str) -> str:
    """Each setting's variable is its attribute upper-cased: per_page <-> CG_PER_PAGE."""
    return PREFIX + name.upper()


def _plain(value: Any) -> Any:
    """A resource's Enum field as its value, so the rules see "eu", not Region.eu."""
    return value.value if isinstance(value, Enum) else value


def _shown(value: Any) -> str:
    value = _plain(value)
    return value.isoformat() if isinstance(value, dt.date) else repr(value)


@dataclass(frozen=True)
class Rule:
    """What one setting accepts, in both forms, and what it is for.

    `parse` turns the variable's text into the typed value and `check` checks (and
    normalises) a typed value; both raise ValueError (or `Refused`) for a value refused.
    They return the form an attribute and a resource field hold (a timeout's one number is
    [n, n]); the settings dataclasses are built from that form."""

    name: str  # the attribute and resource field; the variable is CG_ + NAME
    accepts: str
    description: str
    parse: Callable[[str], Any]
    check: Callable[[Any], Any]
    # A path keeps its white space, so that a stray space or newline is refused, not dropped.
    strip: bool = True

    @property
    def variable(self) -> str:
        return variable_of(self.name)

    def is_unset(self, raw: str | None) -> bool:
        return raw is None or (raw.strip() == "" if self.strip else raw == "")

    def from_text(self, raw: str, name: str | None = None) -> Any:
        """The typed value of a variable's text; refused naming `name` (default: the variable)."""
        name = name or self.variable
        text = raw.strip() if self.strip else raw
        try:
            return self.parse(text)
        except Refused as exc:
            raise exc.naming(name) from None
        except SettingsError:
            raise
        except (ValueError, TypeError, ArithmeticError, zoneinfo.ZoneInfoNotFoundError):
            raise SettingsError(f"{name}={text!r} is invalid: expected {self.accepts}.") from None

    def of(self, value: Any, name: str | None = None) -> Any:
        """A typed value, checked; refused naming `name` (default: the attribute)."""
        name = name or self.name
        try:
            return self.check(_plain(value))
        except Refused as exc:
            raise exc.naming(name) from None
        except SettingsError:
            raise
        except (ValueError, TypeError, ArithmeticError, zoneinfo.ZoneInfoNotFoundError):
            raise SettingsError(
                f"{name}={_shown(value)} is invalid: expected {self.accepts}."
            ) from None

    def read(self, env: Mapping[str, str]) -> Any | None:
        """The variable's value in `env`, typed; None when it is unset or blank."""
        raw = env.get(self.variable)
        return None if raw is None or self.is_unset(raw) else self.from_text(raw)


# --- kinds of rule -----------------------------------------------------------------------


def _whole_number(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(value)
        return value

    return check


def whole(name: str, low: int, high: int, accepts: str, description: str) -> Rule:
    check = _whole_number(low, high)
    return Rule(name, accepts, description, parse=lambda raw: check(int(raw)), check=check)


# float() takes "inf", "nan" and "1e-300": none is a usable number of seconds or a rate.
MAX_SECONDS = 86400.0  # a day: more is a typo, and would hang a run rather than fail it


def _real_number(low: float, high: float, low_inclusive: bool = True) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(value)
        number = float(value)
        if not math.isfinite(number) or number > high or number < low:
            raise ValueError(value)
        if number == low and not low_inclusive:
            raise ValueError(value)
        return number

    return check


def number(
    name: str, low: float, high: float, accepts: str, description: str, low_inclusive: bool = True
) -> Rule:
    check = _real_number(low, high, low_inclusive)
    return Rule(name, accepts, description, parse=lambda raw: check(float(raw)), check=check)


def choice(name: str, choices: Iterable[str], accepts: str, description: str) -> Rule:
    allowed = tuple(choices)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise ValueError(value)
        return value.lower()

    return Rule(name, accepts, description, parse=check, check=check)


def text(
    name: str, parse: Callable[[str], Any], accepts: str, description: str, strip: bool = True
) -> Rule:
    """A setting whose typed form is text too (a URL, a zone, a path): checked by its parser."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(value)
        return parse(value)

    return Rule(name, accepts, description, parse=parse, check=check, strip=strip)


# --- parsers of one kind of text --------------------------------------------------------


def parse_timezone(raw: str) -> str:
    # ZoneInfo accepts file paths relative to the zoneinfo folder; a key with ".." is not a zone.
    if ".." in raw or raw.startswith("/") or not raw:
        raise ValueError(raw)
    zoneinfo.ZoneInfo(raw)
    return raw


def parse_http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw.rstrip("/")


def parse_iso_date(raw: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValueError(raw)
    return dt.date.fromisoformat(raw)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise TypeError(value)  # a moment is not a day
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return parse_iso_date(value)
    raise TypeError(value)


# A timeout under a millisecond can never be met; a rate below one request in 1000 s, or
# above 10,000 a second, is a typo.
_timeout_seconds = _real_number(0.001, MAX_SECONDS)


def parse_timeout(raw: str) -> list[float]:
    """CONNECT,READ seconds, or one number for both: [connect, read]."""
    return _timeout([float(p) for p in raw.split(",")])


def _timeout(value: Any) -> list[float]:
    pieces = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(pieces) == 1:
        pieces = pieces * 2
    if len(pieces) != 2:
        raise ValueError(value)
    return [_timeout_seconds(p) for p in pieces]


# Query parameters the sync itself sends: one of them in CG_EXTRA_PARAMS would change which
# records a day gets (the period), where paging resumes (the cursor), the page size or the
# expansions, with the run still reporting success.
RESERVED_PARAMS = (wire.PARAM_PER_PAGE, wire.PARAM_CURSOR, wire.PARAM_WITH, "with")
RESERVED_PREFIXES = ("period",)


def extra_param_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """The (name, value) pairs of a query string, refused if the sync sets one of them."""
    pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    if not pairs:
        raise ValueError(raw)
    for name, _ in pairs:
        plain = name.strip().lower()
        if plain in RESERVED_PARAMS or plain.startswith(RESERVED_PREFIXES):
            raise Refused(
                f"{{name}} sets {name!r}, which the sync sets itself (the period filter "
                "period[field]/period[start]/period[end], cursor, per_page and the with[] "
                "expansions are reserved): use the date field settings (CG_DATE_FIELD / "
                "CG_RESPONSES_DATE_FIELD) and the page size (CG_PER_PAGE) instead, and keep "
                "{name} for other filters such as filter[cgid]=12."
            )
    return tuple(pairs)


def _query_string(raw: str) -> str:
    extra_param_pairs(raw)
    return raw


def _lake_root(raw: str) -> str:
    """A path or URI, refused when it would silently be another one: white space (a stray
    space or newline from a .env file or a YAML block), a `~` (not expanded: it would make a
    folder named `~`), control characters."""
    if not raw or any(c.isspace() or not c.isprintable() for c in raw):
        raise Refused(
            "{name} contains white space or a control character (a space, tab or "
            "newline, perhaps at either end): the lake would be written somewhere else. Give "
            "the path or URI alone, without spaces, for example /srv/cg/lake or "
            "s3://bucket/lake."
        )
    if raw.startswith("~") or "/~" in raw:
        raise Refused(
            f"{{name}}={raw!r} contains `~`, which is not expanded here (a folder named `~` "
            "would be created): give an absolute path such as /home/you/lake."
        )
    return raw


def parse_path(variable: str, raw: str) -> str:
    """`raw` as a lake root, refused naming `variable` (see _lake_root)."""
    try:
        return _lake_root(raw)
    except Refused as exc:
        raise exc.naming(variable) from None


def _names(value: Any) -> list[str]:
    """Segment names: each once (case aside) and none empty."""
    names = [part.strip() for part in (value.split(",") if isinstance(value, str) else value)]
    if any(not isinstance(n, str) or not n for n in names):
        raise ValueError(value)
    if len({n.casefold() for n in names}) != len(names):
        raise ValueError(value)
    return names


def parse_name_list(raw: str) -> frozenset[str]:
    return frozenset(_names(raw))


def _on_off(raw: str) -> bool:
    if raw.lower() not in AUTOMATION_CHOICES:
        raise ValueError(raw)
    return raw.lower() == "on"


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _adopt_api(raw: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{16}", raw.strip()):
        raise ValueError(raw)
    return raw.strip()


# --- the typed settings ------------------------------------------------------------------

AUTOMATION_CHOICES = ("on", "off")
SCHEMA_CONTRACT_CHOICES = ("evolve", "freeze")
DEFAULT_START_DATE = dt.date(2024, 1, 1)


@dataclass(frozen=True)
class LoadSettings:
    """What shapes the definitions: partitions, checks, automation."""

    timezone: str = "UTC"
    start_date: dt.date = DEFAULT_START_DATE
    date_field: str = "date_sent"  # non-responses (CG_DATE_FIELD)
    # Responses: date_sent by default, so a record's send day is one partition in both tables.
    responses_date_field: str = "date_sent"
    settle_after_hours: int = 48
    # A send day stays open for answers this long after it ends: it is fetched whole about
    # once a day until then, and final after (people answer reminders for weeks).
    answer_window_days: int = 30
    automation: bool = False
    schedule_minute: int = 5
    settle_max_per_tick: int = 3
    sensor_interval_seconds: int = 300
    # evolve: a new untyped field is kept and warned of; freeze: its day fails (docs/operations.md)
    schema_contract: str = "evolve"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def date_field_for(self, variable: str) -> str:
        """The date field an endpoint row's setting (its variable's name) picks."""
        fields = {
            "CG_DATE_FIELD": self.date_field,
            "CG_RESPONSES_DATE_FIELD": self.responses_date_field,
        }
        if variable not in fields:
            raise SettingsError(
                f"{variable} is not a date-field setting: expected one of {sorted(fields)}."
            )
        return fields[variable]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoadSettings:
        return load_settings(_read(LOAD_RULES, env), variable_of)


DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 6
DEFAULT_RETRY_BUDGET_SECONDS = 600.0
DEFAULT_BACKOFF_SECONDS = 1.0
DEFAULT_LAKE_ROOT = "data/lake"
MAX_CONCURRENCY = 16
# Hardening (docs/hardening.md): deadlines a server cannot stretch, limits read as it reads.
DEFAULT_HEADERS_DEADLINE_SECONDS = 90.0
DEFAULT_RESPONSE_DEADLINE_SECONDS = 300.0
MAX_DEADLINE_SECONDS = 86400.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_BODY_BYTES_RANGE = (64 * 1024, 4 * 1024**3)
DEFAULT_MAX_JSON_DEPTH = 64
MAX_JSON_DEPTH_RANGE = (8, 512)  # orjson refuses past 1024; pyarrow crashes some thousands deep
DEFAULT_MAX_PAGES_PER_DAY = 5000
MAX_PAGES_PER_DAY_RANGE = (1, 10_000_000)


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to talk to CustomerGauge (secrets excluded)."""

    api_url: str
    auth_url: str
    per_page: int = wire.PER_PAGE_MAX
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    extra_params: tuple[tuple[str, str], ...] = ()
    concurrency: int = 1  # days of one run that sync at the same time
    max_requests_per_second: float | None = None  # over all of them; None: no ceiling
    # Hardening against a broken or hostile API (docs/hardening.md).
    headers_deadline_seconds: float = DEFAULT_HEADERS_DEADLINE_SECONDS
    response_deadline_seconds: float = DEFAULT_RESPONSE_DEADLINE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    max_pages_per_day: int = DEFAULT_MAX_PAGES_PER_DAY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        return client_settings(_read(CLIENT_RULES, env), variable_of)


TABLE_FORMATS = ("parquet", "delta")
PII_MODES = ("keep", "hash", "drop")


@dataclass(frozen=True)
class PrivacySettings:
    """What the lake keeps of personal data, and for how long."""

    mode: str = "keep"
    retention_days: int | None = None  # None: clear values are kept for ever
    # Segment names whose values stay clear in hash and drop mode (CG_PII_CLEAR_SEGMENTS).
    clear_segments: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PrivacySettings:
        return privacy_settings(_read(PRIVACY_RULES, env), variable_of)


class Region(str, Enum):
    """A resource field's choices (Dagster's config has enums, not Literal)."""

    eu = "eu"
    us = "us"
    au = "au"


class TableFormat(str, Enum):
    parquet = "parquet"
    delta = "delta"


class PiiMode(str, Enum):
    keep = "keep"
    hash = "hash"
    drop = "drop"


# --- the rules ---------------------------------------------------------------------------

_hours = "a whole number of hours from 0 to 8784"
_seconds = f"a number of seconds above 0, at most {MAX_DEADLINE_SECONDS:.0f}"

LOAD_RULES: tuple[Rule, ...] = (
    text(
        "timezone",
        parse_timezone,
        "an IANA time zone name such as UTC or Europe/Amsterdam",
        "The IANA name of the CustomerGauge system's time zone: partitions are its days.",
    ),
    Rule(
        "start_date",
        "a date YYYY-MM-DD",
        "The first partition (YYYY-MM-DD), not in the future.",
        parse=parse_iso_date,
        check=_date,
    ),
    choice(
        "date_field",
        wire.PERIOD_FIELDS,
        "one of " + ", ".join(wire.PERIOD_FIELDS),
        "Which date puts a non-response in a day: " + ", ".join(wire.PERIOD_FIELDS) + ".",
    ),
    choice(
        "responses_date_field",
        wire.RESPONSES_PERIOD_FIELDS,
        "one of " + ", ".join(wire.RESPONSES_PERIOD_FIELDS),
        "Which date puts a response in a day: date_sent (the same partition as its invitation "
        "in non-responses), date_creation, date_order or date_survey_response (the day it was "
        "answered).",
    ),
    whole(
        "settle_after_hours",
        0,
        24 * 366,
        _hours,
        "How long after a day ends it is re-synced in full and marked settled.",
    ),
    whole(
        "answer_window_days",
        0,
        366,
        "a whole number of days from 0 (final at the settle) to 366",
        "How long after a day ends it stays open for answers (fetched whole about daily), "
        "then closed, final; 0: final at the settle.",
    ),
    Rule(
        "automation",
        "on or off",
        "Whether the schedules and sensors start running (on) or stopped (off).",
        parse=_on_off,
        check=_boolean,
    ),
    whole("schedule_minute", 0, 59, "a minute from 0 to 59", "Minute of the hourly catch-up."),
    whole(
        "settle_max_per_tick",
        1,
        100,
        "a whole number from 1 to 100",
        "Most runs the settle sensor requests per tick.",
    ),
    whole(
        "sensor_interval_seconds",
        30,
        86400,
        "a whole number of seconds from 30 to 86400",
        "How often the settle sensor runs, in seconds.",
    ),
    choice(
        "schema_contract",
        SCHEMA_CONTRACT_CHOICES,
        "evolve (keep new fields in extra_fields, warn) or freeze (fail the day)",
        "evolve: fields we do not type land in extra_fields and are named in metadata and the "
        "WARN check no_new_fields; freeze: a day with a new field fails, naming it, and nothing "
        "is written (docs/operations.md).",
    ),
)


def _whole_up_to(name: str, bounds: tuple[int, int], unit: str, description: str) -> Rule:
    low, high = bounds
    return whole(name, low, high, f"a whole number of {unit} from {low} to {high}", description)


CLIENT_RULES: tuple[Rule, ...] = (
    choice(
        "region",
        wire.REGIONS,
        "one of " + ", ".join(wire.REGIONS),
        "eu, us or au: the region in the URL you log in at (cvm.{region}.customergauge.com); "
        "required unless both api_url and auth_url are set.",
    ),
    text(
        "api_url",
        parse_http_url,
        "an http(s) URL such as https://api.eu.customergauge.com",
        "The API base URL; default https://api.{region}.customergauge.com.",
    ),
    text(
        "auth_url",
        parse_http_url,
        "an http(s) URL such as https://auth.eu.customergauge.com/oauth2/token",
        "The OAuth2 token endpoint; default https://auth.{region}.customergauge.com/oauth2/token.",
    ),
    whole(
        "per_page",
        wire.PER_PAGE_MIN,
        wire.PER_PAGE_MAX,
        f"a whole number from {wire.PER_PAGE_MIN} to {wire.PER_PAGE_MAX}",
        "Records per page, 1-1000.",
    ),
    Rule(
        "http_timeout",
        "seconds as CONNECT,READ (for example 10,60) or one number for both, each from "
        "0.001 to 86400",
        "Connect and read timeouts in seconds, as CONNECT,READ ([connect, read] in YAML) or one "
        "number for both, each 0.001-86400.",
        parse=parse_timeout,
        check=_timeout,
    ),
    whole(
        "max_retries",
        0,
        50,
        "a whole number from 0 to 50",
        "Retries of one request (429, 5xx, timeouts, drops, broken bodies), 0-50.",
    ),
    number(
        "retry_budget_seconds",
        0.0,
        MAX_SECONDS,
        "a number of seconds above 0, at most 86400",
        "Total time one request may spend retrying, in seconds.",
        low_inclusive=False,
    ),
    number(
        "backoff_seconds",
        0.0,
        MAX_SECONDS,
        "a number of seconds from 0 to 86400",
        "First back-off step in seconds (jittered, doubling, capped at 60 s).",
    ),
    text(
        "extra_params",
        _query_string,
        "a URL query string such as filter[cgid]=12&outbound=ref",
        "An extra query string sent on every page, e.g. the CGID or Outbound filters "
        "(filter[cgid]=12); period[...], cursor, per_page and with[] are refused (the sync "
        "sets them).",
    ),
    whole(
        "concurrency",
        1,
        MAX_CONCURRENCY,
        f"a whole number of days to sync at the same time, from 1 to {MAX_CONCURRENCY}",
        "Days of one run that sync at the same time, 1-16 (docs/syncing.md: Concurrent days "
        "and the rate gate).",
    ),
    number(
        "max_requests_per_second",
        0.001,
        10_000.0,
        "a number of requests per second from 0.001 to 10000 (leave it unset for no ceiling)",
        "Most requests per second over all of a run's days together, 0.001-10000; unset: no "
        "ceiling.",
    ),
    number(
        "http_headers_deadline_seconds",
        0.0,
        MAX_DEADLINE_SECONDS,
        _seconds,
        "Seconds a response's headers may take, however the server trickles them "
        "(docs/hardening.md).",
        low_inclusive=False,
    ),
    number(
        "http_response_deadline_seconds",
        0.0,
        MAX_DEADLINE_SECONDS,
        _seconds,
        "Seconds a whole response may take (docs/hardening.md).",
        low_inclusive=False,
    ),
    _whole_up_to(
        "max_body_bytes",
        MAX_BODY_BYTES_RANGE,
        "bytes",
        "Largest response body read, inflated (docs/hardening.md).",
    ),
    _whole_up_to(
        "max_json_depth",
        MAX_JSON_DEPTH_RANGE,
        "levels",
        "Deepest JSON nesting accepted (docs/hardening.md).",
    ),
    _whole_up_to(
        "max_pages_per_day",
        MAX_PAGES_PER_DAY_RANGE,
        "pages",
        "Most pages one day may take (docs/hardening.md).",
    ),
)

PRIVACY_RULES: tuple[Rule, ...] = (
    choice(
        "pii_mode",
        PII_MODES,
        "keep (personal columns in clear), hash (HMAC-SHA256 under CG_PII_KEY) or drop "
        "(personal columns all null)",
        "Personal columns kept clear (keep), HMAC-SHA256-hashed under the PII key (hash) or "
        "nulled (drop); docs/personal-data.md.",
    ),
    whole(
        "pii_retention_days",
        0,
        36600,
        "a whole number of days from 0 to 36600, or unset to keep clear values for ever",
        "Days after which a day's personal columns are hashed (nulled in drop mode), "
        "0-36600; unset: for ever.",
    ),
    Rule(
        "pii_clear_segments",
        "comma-separated segment (property field) names whose values are not personal, "
        "such as Country,Division, each name once and none empty",
        "Segment (properties field) names whose values stay clear in hash and drop mode, "
        "e.g. Country,Division (docs/privacy.md).",
        parse=_names,
        check=_names,
    ),
)

LAKE_RULES: tuple[Rule, ...] = (
    text(
        "lake_root",
        _lake_root,
        "a local folder or s3://bucket/prefix",
        "Where the lake lives: a local folder or a pyarrow filesystem URI (s3://bucket/prefix, "
        "docs/production.md); white space and ~ are refused.",
        strip=False,
    ),
    choice(
        "table_format",
        TABLE_FORMATS,
        "parquet or delta",
        "parquet: one Parquet file per day; delta: one Delta table per table, a commit per day "
        "(docs/delta.md).",
    ),
    text(
        "adopt_api",
        _adopt_api,
        "the 16-character fingerprint a run's error printed",
        "The fingerprint of a new API (printed by the run's error) to move a lake and an "
        "instance to it deliberately, for one run (docs/getting-started.md).",
    ),
)

RULES: dict[str, Rule] = {
    r.name: r for r in (*LOAD_RULES, *CLIENT_RULES, *PRIVACY_RULES, *LAKE_RULES)
}


def _read(rules: Iterable[Rule], env: Mapping[str, str] | None) -> dict[str, Any]:
    env = os.environ if env is None else env
    return {r.name: r.read(env) for r in rules}


def _given(
    values: Mapping[str, Any], rules: Iterable[Rule], name: Callable[[str], str]
) -> dict[str, Any]:
    """The values set (not None), each checked by its rule and named by `name`."""
    return {
        r.name: r.of(values[r.name], name(r.name)) for r in rules if values.get(r.name) is not None
    }


def _same(attribute: str) -> str:
    return attribute


# --- typed values in, settings out (the resources', the component's and from_env's route) --


def load_settings(values: Mapping[str, Any], name: Callable[[str], str] = _same) -> LoadSettings:
    """LoadSettings from typed values keyed by attribute (None or absent: the default)."""
    given = _given(values, LOAD_RULES, name)
    settings = LoadSettings(**given)
    today = dt.datetime.now(settings.tz).date()
    if settings.start_date > today:
        raise SettingsError(
            f"{name('start_date')}={settings.start_date.isoformat()!r} is in the future (today "
            f"is {today.isoformat()} in {settings.timezone}): expected a date YYYY-MM-DD on or "
            "before today."
        )
    return settings


def client_settings(
    values: Mapping[str, Any], name: Callable[[str], str] = _same
) -> ClientSettings:
    """ClientSettings from typed values keyed by attribute (None or absent: the default).
    Raises MissingSetting when neither a region nor both URLs are given."""
    given = _given(values, CLIENT_RULES, name)
    region = given.pop("region", None)
    api_url = given.pop("api_url", None)
    auth_url = given.pop("auth_url", None)
    headers = given.pop("http_headers_deadline_seconds", DEFAULT_HEADERS_DEADLINE_SECONDS)
    response = given.pop("http_response_deadline_seconds", DEFAULT_RESPONSE_DEADLINE_SECONDS)
    if headers > response:
        raise SettingsError(
            f"{name('http_headers_deadline_seconds')}={headers:g} is longer than "
            f"{name('http_response_deadline_seconds')}={response:g}: expected the headers' "
            "deadline to be at most the whole answer's."
        )
    connect, read = given.pop("http_timeout", (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT))
    extra = given.pop("extra_params", None)
    if region is None and (api_url is None or auth_url is None):
        raise MissingSetting(
            f"{name('region')} is not set: expected one of "
            + ", ".join(wire.REGIONS)
            + " (the region in the URL you log in at, cvm.{region}.customergauge.com), "
            f"or set both {name('api_url')} and {name('auth_url')}."
        )
    return ClientSettings(
        api_url=api_url or wire.DEFAULT_API_URL_TEMPLATE.format(region=region),
        auth_url=auth_url or wire.DEFAULT_AUTH_URL_TEMPLATE.format(region=region),
        connect_timeout=connect,
        read_timeout=read,
        extra_params=extra_param_pairs(extra) if extra else (),
        headers_deadline_seconds=headers,
        response_deadline_seconds=response,
        **given,
    )


def check_client_values(values: Mapping[str, Any], name: Callable[[str], str] = _same) -> None:
    """Every value `client_settings` takes, checked; a region not set yet is left to the run."""
    try:
        client_settings(values, name)
    except MissingSetting:
        pass


def privacy_settings(
    values: Mapping[str, Any], name: Callable[[str], str] = _same
) -> PrivacySettings:
    """PrivacySettings from typed values keyed by attribute (None or absent: the default)."""
    given = _given(values, PRIVACY_RULES, name)
    return PrivacySettings(
        mode=given.get("pii_mode", PrivacySettings.mode),
        retention_days=given.get("pii_retention_days"),
        clear_segments=frozenset(given.get("pii_clear_segments", ())),
    )


def lake_root_from_env(env: Mapping[str, str] | None = None) -> str:
    """CG_LAKE_ROOT (for the pre-check and the command-line tools): a local path or a
    pyarrow filesystem URI; unset: data/lake."""
    value = RULES["lake_root"].read(os.environ if env is None else env)
    return DEFAULT_LAKE_ROOT if value is None else value


def table_format_from_env(env: Mapping[str, str] | None = None) -> str:
    """CG_TABLE_FORMAT: one Parquet file per day (parquet), or a Delta table per endpoint,
    one commit per day (delta; docs/delta.md)."""
    value = RULES["table_format"].read(os.environ if env is None else env)
    return "parquet" if value is None else value
