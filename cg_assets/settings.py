"""Every environment variable cg_assets reads: parse, validate, default, and the error that names it.

Two moments read settings:
- load time (the code location loads): what shapes definitions, such as partitions and
  automation. A bad value fails the load; every one has a default so that
  `dg check defs` passes on a fresh clone.
- run time (a run starts): connection and lake settings. A bad value fails the run
  at its start. Secrets are not here: they reach the resource through `dagster.EnvVar`.

The table in docs/configuration.md mirrors this module; keep them in step.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from cg_assets.customergauge import wire

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it and what it accepts."""


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _parse(
    env: Mapping[str, str],
    name: str,
    default: T,
    parse: Callable[[str], T],
    accepts: str,
) -> T:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except SettingsError:
        raise  # a parser's own message, already naming the variable
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise SettingsError(f"{name}={raw!r} is invalid: expected {accepts}.") from exc


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


# float() takes "inf", "nan" and "1e-300": none is a usable number of seconds or a rate.
MAX_SECONDS = 86400.0  # a day: more is a typo, and would hang a run rather than fail it


def _float_in(low: float, high: float, low_inclusive: bool = True) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value) or value > high:
            raise ValueError(raw)
        if value < low or (value == low and not low_inclusive):
            raise ValueError(raw)
        return value

    return parse


_positive_float = _float_in(0.0, MAX_SECONDS, low_inclusive=False)
_non_negative_float = _float_in(0.0, MAX_SECONDS)
# A timeout under a millisecond can never be met; a rate below one request in 1000 s, or
# above 10,000 a second, is a typo.
_timeout_seconds = _float_in(0.001, MAX_SECONDS)
_requests_per_second = _float_in(0.001, 10_000.0)


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def parse_timezone(raw: str) -> str:
    # ZoneInfo accepts file paths relative to the zoneinfo folder; a key with ".." is not a zone.
    if ".." in raw or raw.startswith("/"):
        raise ValueError(raw)
    zoneinfo.ZoneInfo(raw)
    return raw


def parse_http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw.rstrip("/")


def parse_timeout(raw: str) -> tuple[float, float]:
    pieces = [p.strip() for p in raw.split(",")]
    if len(pieces) == 1:
        value = _timeout_seconds(pieces[0])
        return value, value
    if len(pieces) == 2:
        return _timeout_seconds(pieces[0]), _timeout_seconds(pieces[1])
    raise ValueError(raw)


# Query parameters the sync itself sends: one of them in CG_EXTRA_PARAMS would change which
# records a day gets (the period), where paging resumes (the cursor), the page size or the
# expansions, with the run still reporting success.
RESERVED_PARAMS = (wire.PARAM_PER_PAGE, wire.PARAM_CURSOR, wire.PARAM_WITH, "with")
RESERVED_PREFIXES = ("period",)


def parse_extra_params(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    if not pairs:
        raise ValueError(raw)
    for name, _ in pairs:
        plain = name.strip().lower()
        if plain in RESERVED_PARAMS or plain.startswith(RESERVED_PREFIXES):
            raise SettingsError(
                f"CG_EXTRA_PARAMS sets {name!r}, which the sync sets itself (the period filter "
                "period[field]/period[start]/period[end], cursor, per_page and the with[] "
                "expansions are reserved): use CG_DATE_FIELD / CG_RESPONSES_DATE_FIELD and "
                "CG_PER_PAGE instead, and keep CG_EXTRA_PARAMS for other filters such as "
                "filter[cgid]=12."
            )
    return tuple(pairs)


def parse_path(variable: str, raw: str) -> str:
    """A path or URI from the environment, refused when it would silently be another one:
    white space (a stray space or newline from a .env file or a YAML block), a `~` (not
    expanded: it would make a folder named `~`), control characters."""
    if any(c.isspace() or not c.isprintable() for c in raw):
        raise SettingsError(
            f"{variable} contains white space or a control character (a space, tab or "
            "newline, perhaps at either end): the lake would be written somewhere else. Give "
            "the path or URI alone, without spaces, for example /srv/cg/lake or "
            "s3://bucket/lake."
        )
    if raw.startswith("~") or "/~" in raw:
        raise SettingsError(
            f"{variable}={raw!r} contains `~`, which is not expanded here (a folder named `~` "
            "would be created): give an absolute path such as /home/you/lake."
        )
    return raw


# --- load-time settings -----------------------------------------------------------------

AUTOMATION_CHOICES = ("on", "off")
SCHEMA_CONTRACT_CHOICES = ("evolve", "freeze")
DEFAULT_START_DATE = dt.date(2024, 1, 1)


@dataclass(frozen=True)
class LoadSettings:
    """Read when the code location loads: they shape partitions, checks and automation."""

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
        env = os.environ if env is None else env
        timezone = _parse(
            env,
            "CG_TIMEZONE",
            cls.timezone,
            parse_timezone,
            "an IANA time zone name such as UTC or Europe/Amsterdam",
        )
        start_date = _parse(env, "CG_START_DATE", cls.start_date, _iso_date, "a date YYYY-MM-DD")
        today = dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()
        if start_date > today:
            raise SettingsError(
                f"CG_START_DATE={start_date.isoformat()!r} is in the future (today is "
                f"{today.isoformat()} in {timezone}): expected a date YYYY-MM-DD on or before today."
            )
        return cls(
            timezone=timezone,
            start_date=start_date,
            date_field=_parse(
                env,
                "CG_DATE_FIELD",
                cls.date_field,
                _choice(*wire.PERIOD_FIELDS),
                "one of " + ", ".join(wire.PERIOD_FIELDS),
            ),
            responses_date_field=_parse(
                env,
                "CG_RESPONSES_DATE_FIELD",
                cls.responses_date_field,
                _choice(*wire.RESPONSES_PERIOD_FIELDS),
                "one of " + ", ".join(wire.RESPONSES_PERIOD_FIELDS),
            ),
            settle_after_hours=_parse(
                env,
                "CG_SETTLE_AFTER_HOURS",
                cls.settle_after_hours,
                _int_in(0, 24 * 366),
                "a whole number of hours from 0 to 8784",
            ),
            answer_window_days=_parse(
                env,
                "CG_ANSWER_WINDOW_DAYS",
                cls.answer_window_days,
                _int_in(0, 366),
                "a whole number of days from 0 (final at the settle) to 366",
            ),
            automation=_parse(
                env, "CG_AUTOMATION", "off", _choice(*AUTOMATION_CHOICES), "on or off"
            )
            == "on",
            schedule_minute=_parse(
                env,
                "CG_SCHEDULE_MINUTE",
                cls.schedule_minute,
                _int_in(0, 59),
                "a minute from 0 to 59",
            ),
            settle_max_per_tick=_parse(
                env,
                "CG_SETTLE_MAX_PER_TICK",
                cls.settle_max_per_tick,
                _int_in(1, 100),
                "a whole number from 1 to 100",
            ),
            sensor_interval_seconds=_parse(
                env,
                "CG_SENSOR_INTERVAL_SECONDS",
                cls.sensor_interval_seconds,
                _int_in(30, 86400),
                "a whole number of seconds from 30 to 86400",
            ),
            schema_contract=_parse(
                env,
                "CG_SCHEMA_CONTRACT",
                cls.schema_contract,
                _choice(*SCHEMA_CONTRACT_CHOICES),
                "evolve (keep new fields in extra_fields, warn) or freeze (fail the day)",
            ),
        )


def _iso_date(raw: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValueError(raw)
    return dt.date.fromisoformat(raw)


# --- run-time settings ------------------------------------------------------------------

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
    """Read when a run starts: where and how to talk to CustomerGauge (secrets excluded)."""

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
        env = os.environ if env is None else env
        region = _parse(
            env, "CG_REGION", None, _choice(*wire.REGIONS), "one of " + ", ".join(wire.REGIONS)
        )
        api_url = _parse(
            env,
            "CG_API_URL",
            None,
            parse_http_url,
            "an http(s) URL such as https://api.eu.customergauge.com",
        )
        auth_url = _parse(
            env,
            "CG_AUTH_URL",
            None,
            parse_http_url,
            "an http(s) URL such as https://auth.eu.customergauge.com/oauth2/token",
        )
        if region is None and (api_url is None or auth_url is None):
            raise SettingsError(
                "CG_REGION is not set: expected one of "
                + ", ".join(wire.REGIONS)
                + " (the region in the URL you log in at, cvm.{region}.customergauge.com), "
                "or set both CG_API_URL and CG_AUTH_URL."
            )
        connect_timeout, read_timeout = _parse(
            env,
            "CG_HTTP_TIMEOUT",
            (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT),
            parse_timeout,
            "seconds as CONNECT,READ (for example 10,60) or one number for both, each from "
            "0.001 to 86400",
        )
        return cls(
            api_url=api_url or wire.DEFAULT_API_URL_TEMPLATE.format(region=region),
            auth_url=auth_url or wire.DEFAULT_AUTH_URL_TEMPLATE.format(region=region),
            per_page=_parse(
                env,
                "CG_PER_PAGE",
                cls.per_page,
                _int_in(wire.PER_PAGE_MIN, wire.PER_PAGE_MAX),
                f"a whole number from {wire.PER_PAGE_MIN} to {wire.PER_PAGE_MAX}",
            ),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_retries=_parse(
                env,
                "CG_MAX_RETRIES",
                cls.max_retries,
                _int_in(0, 50),
                "a whole number from 0 to 50",
            ),
            retry_budget_seconds=_parse(
                env,
                "CG_RETRY_BUDGET_SECONDS",
                cls.retry_budget_seconds,
                _positive_float,
                "a number of seconds above 0, at most 86400",
            ),
            backoff_seconds=_parse(
                env,
                "CG_BACKOFF_SECONDS",
                cls.backoff_seconds,
                _non_negative_float,
                "a number of seconds from 0 to 86400",
            ),
            extra_params=_parse(
                env,
                "CG_EXTRA_PARAMS",
                (),
                parse_extra_params,
                "a URL query string such as filter[cgid]=12&outbound=ref",
            ),
            concurrency=_parse(
                env,
                "CG_CONCURRENCY",
                cls.concurrency,
                _int_in(1, MAX_CONCURRENCY),
                f"a whole number of days to sync at the same time, from 1 to {MAX_CONCURRENCY}",
            ),
            max_requests_per_second=_parse(
                env,
                "CG_MAX_REQUESTS_PER_SECOND",
                cls.max_requests_per_second,
                _requests_per_second,
                "a number of requests per second from 0.001 to 10000 (leave it unset for no "
                "ceiling)",
            ),
            **_hardening_from_env(env),
        )


def _seconds_up_to(high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = _positive_float(raw)
        if value > high:
            raise ValueError(raw)
        return value

    return parse


def _hardening_from_env(env: Mapping[str, str]) -> dict[str, float | int]:
    """The deadlines and limits of docs/hardening.md (ClientSettings' last fields)."""
    seconds = f"a number of seconds above 0, at most {MAX_DEADLINE_SECONDS:.0f}"
    headers = _parse(
        env,
        "CG_HTTP_HEADERS_DEADLINE_SECONDS",
        DEFAULT_HEADERS_DEADLINE_SECONDS,
        _seconds_up_to(MAX_DEADLINE_SECONDS),
        seconds,
    )
    response = _parse(
        env,
        "CG_HTTP_RESPONSE_DEADLINE_SECONDS",
        DEFAULT_RESPONSE_DEADLINE_SECONDS,
        _seconds_up_to(MAX_DEADLINE_SECONDS),
        seconds,
    )
    if headers > response:
        raise SettingsError(
            f"CG_HTTP_HEADERS_DEADLINE_SECONDS={headers:g} is longer than "
            f"CG_HTTP_RESPONSE_DEADLINE_SECONDS={response:g}: expected the headers' deadline "
            "to be at most the whole answer's."
        )

    def whole(name: str, default: int, bounds: tuple[int, int], unit: str) -> int:
        low, high = bounds
        return _parse(
            env, name, default, _int_in(low, high), f"a whole number of {unit} from {low} to {high}"
        )

    return {
        "headers_deadline_seconds": headers,
        "response_deadline_seconds": response,
        "max_body_bytes": whole(
            "CG_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_RANGE, "bytes"
        ),
        "max_json_depth": whole(
            "CG_MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_RANGE, "levels"
        ),
        "max_pages_per_day": whole(
            "CG_MAX_PAGES_PER_DAY", DEFAULT_MAX_PAGES_PER_DAY, MAX_PAGES_PER_DAY_RANGE, "pages"
        ),
    }


def lake_root_from_env(env: Mapping[str, str] | None = None) -> str:
    """CG_LAKE_ROOT, read when a run starts: a local path or a pyarrow filesystem URI."""
    env = os.environ if env is None else env
    value = env.get("CG_LAKE_ROOT")
    if value is None or value == "":
        return DEFAULT_LAKE_ROOT
    return parse_path("CG_LAKE_ROOT", value)


TABLE_FORMATS = ("parquet", "delta")


def table_format_from_env(env: Mapping[str, str] | None = None) -> str:
    """CG_TABLE_FORMAT, read when a run starts: one Parquet file per day (parquet), or a
    Delta table per endpoint, one commit per day (delta; docs/delta.md)."""
    env = os.environ if env is None else env
    return _parse(env, "CG_TABLE_FORMAT", "parquet", _choice(*TABLE_FORMATS), "parquet or delta")


# --- personal data (run time; the key itself comes through dagster.EnvVar) -------------

PII_MODES = ("keep", "hash", "drop")


@dataclass(frozen=True)
class PrivacySettings:
    """Read when a run starts: what the lake keeps of personal data, and for how long."""

    mode: str = "keep"
    retention_days: int | None = None  # None: clear values are kept for ever
    # Segment names whose values stay clear in hash and drop mode (CG_PII_CLEAR_SEGMENTS).
    clear_segments: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PrivacySettings:
        env = os.environ if env is None else env
        return cls(
            mode=_parse(
                env,
                "CG_PII_MODE",
                cls.mode,
                _choice(*PII_MODES),
                "keep (personal columns in clear), hash (HMAC-SHA256 under CG_PII_KEY) or drop "
                "(personal columns all null)",
            ),
            retention_days=_parse(
                env,
                "CG_PII_RETENTION_DAYS",
                None,
                _int_in(0, 36600),
                "a whole number of days from 0 to 36600, or unset to keep clear values for ever",
            ),
            clear_segments=_parse(
                env,
                "CG_PII_CLEAR_SEGMENTS",
                cls.clear_segments,
                parse_name_list,
                "comma-separated segment (property field) names whose values are not personal, "
                "such as Country,Division, each name once and none empty",
            ),
        )


def parse_name_list(raw: str) -> frozenset[str]:
    names = [part.strip() for part in raw.split(",")]
    if any(not n for n in names) or len({n.casefold() for n in names}) != len(names):
        raise ValueError(raw)
    return frozenset(names)
