"""Alerts without Dagster+: a sensor per tenant posting to a Slack-compatible incoming webhook.

Open-source Dagster has no alert policies; each tick a tenant's sensor (`<key_prefix>_alerts`,
the project's own `customergauge_alerts`) reads what the instance recorded since the last
one about that tenant's tables only (its failed sync steps, and the results of three checks
per sync table, through indexed queries: no scan of the event log) and posts one message
(JSON `{"text": ...}`) per event:
- a sync day that failed, with its error (secrets redacted by the client, e-mail-like
  text masked here, cut to ERROR_EXCERPT characters); the same day failing the same way
  again (the settle sensor's retries) is not posted again;
- a hole or an overdue close (`every_day_settled` failing): once per day listed;
- a red freshness check (`recent_days_fresh`): once per verdict (which days, how late);
- a new untyped field (`no_new_fields`): once per table and path.

Opt-in per tenant: a tenant gets the sensor when its `alert_webhook_url` attribute is set
(`"{{ env.NAME }}"`; the project's own reads CG_ALERT_WEBHOOK_URL). The URL is read through
that `dagster.EnvVar` when the sensor ticks, skipping while the variable is unset, and is
never logged or shown (it is a secret: anyone holding it can post to the channel). Two
tenants of one code location each post to their own webhook about their own tables.

A post that fails fails nothing: it is kept in the cursor and tried again at the next tick
(at most MAX_PENDING kept). On its first tick the sensor starts at the end of the event
log: it reports what happens from then on, not history.
"""

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetsDefinition,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    EnvVar,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from cg_assets.defs import checks, day_freshness, schema_drift
from cg_assets.defs.automation import sensor_status
from cg_assets.defs.tenant import DEFAULT_TENANT, Tenant
from cg_assets.settings import LoadSettings

SENSOR_SUFFIX = "alerts"
SENSOR_NAME = DEFAULT_TENANT.name(SENSOR_SUFFIX)  # the project's own: customergauge_alerts
TICK_SECONDS = 60
EVENTS_PER_TICK = 500
MAX_PENDING = 50
REMEMBERED = 1000  # drift paths and failed days already posted
ERROR_EXCERPT = 300
POST_TIMEOUT_SECONDS = 10.0
SAMPLE = 10
PREFIX = "cg_assets"
_EMAIL = re.compile(r"[^\s@'\"<>()]+@[^\s@'\"<>()]+")


@dataclass
class AlertState:
    started: bool = False
    # The newest run update read (seconds since the epoch) and the failed runs already read.
    runs_after: float = 0.0
    runs_seen: list[str] = field(default_factory=list)
    checks_after: dict[str, int] = field(default_factory=dict)  # per check key: record id
    holes: dict[str, list[str]] = field(default_factory=dict)  # days posted, per table
    fresh: dict[str, str] = field(default_factory=dict)  # verdict posted, per table
    drift: list[str] = field(default_factory=list)  # "table path" posted
    failed: list[str] = field(default_factory=list)  # "table day error" posted
    pending: list[str] = field(default_factory=list)  # messages whose post failed

    @classmethod
    def parse(cls, cursor: str | None) -> "AlertState":
        if not cursor:
            return cls()
        return cls(**json.loads(cursor))

    def dump(self) -> str:
        self.runs_seen = self.runs_seen[-REMEMBERED:]
        self.drift = self.drift[-REMEMBERED:]
        self.failed = self.failed[-REMEMBERED:]
        self.pending = self.pending[-MAX_PENDING:]
        return json.dumps(self.__dict__, sort_keys=True)


def scrub(text: str) -> str:
    """One line, e-mail-like text masked, cut short: an error may quote a record."""
    line = " ".join(text.split())
    line = _EMAIL.sub("<e-mail>", line)
    return line[:ERROR_EXCERPT] + ("…" if len(line) > ERROR_EXCERPT else "")


ALERTED_CHECKS = (checks.NO_HOLES, day_freshness.CHECK_NAME, schema_drift.CHECK_NAME)
DONE = {"SUCCEEDED", "FAILED"}  # AssetCheckExecutionRecordStatus values (not exported)


@dataclass(frozen=True)
class AlertScope:
    """What one tenant's sensor watches: its sync steps (a failed one is a sync day that
    failed) and its sync tables' checks. Another tenant's are not its business: they go to
    that tenant's webhook."""

    steps: Mapping[str, str]  # step key -> table, e.g. "cg_eu__responses" -> "cg_eu/responses"
    check_keys: tuple[AssetCheckKey, ...]

    @classmethod
    def of(cls, sync_assets: Sequence[AssetsDefinition]) -> "AlertScope":
        # Step keys from the definitions themselves, not rebuilt from Dagster's naming rule.
        return cls(
            steps={a.node_def.name: a.key.to_user_string() for a in sync_assets},
            check_keys=tuple(
                AssetCheckKey(a.key, name) for a in sync_assets for name in ALERTED_CHECKS
            ),
        )


def _failed_runs(instance: DagsterInstance, state: AlertState) -> list[str]:
    """Failed runs not read yet (ids), oldest first; the state moves on. Every tenant's
    sensor reads them all: which failures are its own is told by the failed steps' keys,
    not by the run's asset selection, which is empty for an ad hoc materialization."""
    records = instance.get_run_records(
        RunsFilter(
            statuses=[DagsterRunStatus.FAILURE],
            # a little overlap: runs updated in the same second are told apart by id
            updated_after=dt.datetime.fromtimestamp(state.runs_after - 1, dt.timezone.utc),
        ),
        limit=EVENTS_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    out = []
    for record in records:
        state.runs_after = max(state.runs_after, record.update_timestamp.timestamp())
        run_id = record.dagster_run.run_id
        if run_id not in state.runs_seen:
            state.runs_seen.append(run_id)
            out.append(run_id)
    return out


def _new_evaluations(instance: DagsterInstance, state: AlertState, scope: AlertScope) -> list[Any]:
    """Check evaluations recorded since the last tick, per check key, oldest first."""
    out = []
    storage = instance.event_log_storage
    for check_key in scope.check_keys:
        name = check_key.to_user_string()
        after = state.checks_after.get(name, 0)
        history = storage.get_asset_check_execution_history(check_key, limit=EVENTS_PER_TICK)
        for record in sorted((r for r in history if r.id > after), key=lambda r: r.id):
            state.checks_after[name] = record.id
            if record.status.value not in DONE:
                continue  # planned: its result, if any, is a record of its own (a later id)
            event = record.event.dagster_event if record.event is not None else None
            if event is not None and event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                out.append(event.asset_check_evaluation_data)
    return out


def _start(instance: DagsterInstance, state: AlertState, scope: AlertScope) -> None:
    """The first tick: start at the end of the log (history is not posted)."""
    state.started = True
    latest = instance.get_run_records(limit=1, order_by="update_timestamp", ascending=False)
    state.runs_after = latest[0].update_timestamp.timestamp() if latest else 0.0
    state.runs_seen = [r.dagster_run.run_id for r in latest]
    for check_key in scope.check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
        state.checks_after[check_key.to_user_string()] = history[0].id if history else 0


def _failure_messages(
    instance: DagsterInstance, run_id: str, state: AlertState, scope: AlertScope
) -> list[str]:
    out = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        out.extend(_step_failure_messages(entry, state, scope))
    return out


def _step_failure_messages(entry: Any, state: AlertState, scope: AlertScope) -> list[str]:
    table = scope.steps.get(entry.step_key or "")
    event = entry.dagster_event
    data = event.step_failure_data if event is not None else None
    if table is None or data is None:
        return []
    run = entry.run_id[:8]
    metadata = data.user_failure_data.metadata if data.user_failure_data else {}
    by_day = metadata.get("errors_by_day")
    errors: dict[str, str] = (
        dict(by_day.value) if by_day is not None and isinstance(by_day.value, dict) else {}
    )
    if not errors:  # failed before any day (settings, the API's origin, the credentials)
        message = data.error.message if data.error is not None else "see the run's logs"
        errors = {"(run)": message}
    out = []
    for day, error in sorted(errors.items()):
        text = scrub(str(error))
        seen = f"{table} {day} {text}"
        if seen in state.failed:
            continue  # the same day failing the same way: posted already
        state.failed.append(seen)
        what = f"{day} failed to sync" if day != "(run)" else "a sync run failed"
        out.append(f"{PREFIX}: {table} {what}: {text} (run {run})")
    return out


def _check_messages(evaluation: Any, state: AlertState) -> list[str]:
    table = evaluation.asset_key.to_user_string()
    name = evaluation.check_name
    md = {k: v.value for k, v in evaluation.metadata.items()}
    if name == checks.NO_HOLES:
        if evaluation.passed:
            state.holes.pop(table, None)
            return []
        days = [str(d) for d in md.get("unsettled_days") or []]
        posted = set(state.holes.get(table, []))
        new = [d for d in days if d not in posted]
        state.holes[table] = sorted(posted | set(days))
        if not new:
            return []
        shown = ", ".join(new[:SAMPLE]) + (" …" if len(new) > SAMPLE else "")
        return [
            f"{PREFIX}: {table}: {len(new)} day(s) missing, failing, or not closed past their "
            f"answer window: {shown} (check {name}; the settle sensor retries them)"
        ]
    if name == day_freshness.CHECK_NAME:
        if evaluation.passed:
            state.fresh.pop(table, None)
            return []
        verdict = f"{evaluation.severity.value}:{','.join(md.get('late_days') or [])}"
        if state.fresh.get(table) == verdict:
            return []
        state.fresh[table] = verdict
        return [
            f"{PREFIX}: {table} is late ({name}, {evaluation.severity.value}): "
            f"{evaluation.description or ''}"
        ]
    if name == schema_drift.CHECK_NAME and not evaluation.passed:
        by_day: dict[str, list[str]] = md.get("new_fields_by_day") or {}
        out = []
        for day, paths in sorted(by_day.items()):
            new = [p for p in paths if f"{table} {p}" not in state.drift]
            state.drift.extend(f"{table} {p}" for p in new)
            if new:
                out.append(
                    f"{PREFIX}: {table} {day} received {len(new)} new untyped field(s): "
                    + ", ".join(new[:SAMPLE])
                    + (" …" if len(new) > SAMPLE else "")
                    + " (kept in extra_fields; see extra_field_paths)"
                )
        return out
    return []


def collect(instance: DagsterInstance, state: AlertState, scope: AlertScope) -> list[str]:
    """The messages for what happened in the scope since the state's last tick (the state
    moves on)."""
    if not state.started:
        _start(instance, state, scope)
        return []
    messages: list[str] = []
    for run_id in _failed_runs(instance, state):
        messages.extend(_failure_messages(instance, run_id, state, scope))
    for evaluation in _new_evaluations(instance, state, scope):
        messages.extend(_check_messages(evaluation, state))
    return messages


def post(url: str, text: str) -> str | None:
    """POST {"text": text}; None on success, else why (never the URL)."""
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as answer:
            answer.read()
    except urllib.error.HTTPError as error:
        return f"the webhook answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"the webhook could not be reached ({type(error).__name__})"
    return None


@dataclass(frozen=True)
class AlertTick:
    cursor: str
    posted: int
    failed: int
    notes: Sequence[str]


def evaluate_alert_tick(
    instance: DagsterInstance, scope: AlertScope, url: str, cursor: str | None
) -> AlertTick:
    state = AlertState.parse(cursor)
    messages = [*state.pending, *collect(instance, state, scope)]
    state.pending = []
    posted, notes = 0, []
    for text in messages:
        why = post(url, text)
        if why is None:
            posted += 1
        else:
            state.pending.append(text)
            notes.append(f"not posted, kept for the next tick: {why}")
    return AlertTick(state.dump(), posted, len(state.pending), notes)


def sensor_description(tenant: Tenant, url: EnvVar) -> str:
    """What the UI says of a tenant's sensor: the variable's name, never its value."""
    return (
        f"Posts to the Slack-compatible incoming webhook in {url.env_var_name} (a secret, "
        f"never shown; skips while it is unset) once per failed sync day, hole or overdue "
        f"close, red freshness check and new untyped field of {tenant.prefix}'s sync tables "
        "(docs/operations.md)."
    )


def build_alert_sensor(
    scope: AlertScope, settings: LoadSettings, url: EnvVar, tenant: Tenant = DEFAULT_TENANT
) -> SensorDefinition:
    """`tenant`'s alert sensor, watching `scope` (its sync assets) and posting to `url`."""
    variable = url.env_var_name

    @sensor(
        name=tenant.name(SENSOR_SUFFIX),
        minimum_interval_seconds=TICK_SECONDS,
        default_status=sensor_status(settings.automation),
        description=sensor_description(tenant, url),
    )
    def _alerts(context: SensorEvaluationContext) -> SkipReason:
        # Read at each tick, not at load: the value lives in the sensor's process only.
        value = (url.get_value() or "").strip()
        if not value:
            return SkipReason(f"{variable} is not set: alerts are off")
        tick = evaluate_alert_tick(context.instance, scope, value, context.cursor)
        context.update_cursor(tick.cursor)
        for note in dict.fromkeys(tick.notes):
            context.log.warning(note)
        return SkipReason(f"{tick.posted} alert(s) posted, {tick.failed} kept for a retry")

    return _alerts
