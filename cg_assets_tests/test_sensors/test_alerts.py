"""The alert sensor against a webhook server of the test's own on loopback, reading a real
instance's events from real sync runs (and check results reported to it); two component
tenants, each with its own sensor and webhook, against the simulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    SensorDefinition,
    SkipReason,
    build_sensor_context,
)

from cg_assets.components.project import build_definitions
from cg_assets.customergauge.endpoints import ENDPOINTS, NON_RESPONSES
from cg_assets.defs import alerts, checks, day_freshness, schema_drift
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE
from cg_assets_tests.test_component.test_component import attributes, error_chain, load_tenants
from cg_assets_tests.test_privacy.helpers import sync
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

KEY = asset_key_for(NON_RESPONSES)
TABLE = KEY.to_user_string()
DAYS = [SIM_START + dt.timedelta(days=i) for i in range(5)]
# The project's own tenant: its sync tables, as its sensor watches them.
SCOPE = alerts.AlertScope.of([build_sync_asset(e, LoadSettings()) for e in ENDPOINTS])


class Webhook:
    """A Slack-style incoming webhook: records each JSON body; answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if hook.status == 200:
                    hook.bodies.append(body)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-path"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]


@contextmanager
def serving() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serving() as hook:
        yield hook


class Alerts:
    def __init__(self, instance: DagsterInstance, webhook: Webhook) -> None:
        self.instance, self.webhook, self.cursor = instance, webhook, None

    def tick(self) -> alerts.AlertTick:
        before = len(self.webhook.bodies)
        tick = alerts.evaluate_alert_tick(self.instance, SCOPE, self.webhook.url, self.cursor)
        self.cursor = tick.cursor
        self.new = self.webhook.texts()[before:]
        return tick


def test_one_message_per_failed_day_without_secrets_or_personal_data_and_never_twice(
    instance, resources, control, webhook
):
    control.configure(extra_personal_fields=True)  # records carry e-mails where errors may look
    assert sync(instance, resources, DAYS[0]).success
    ticker = Alerts(instance, webhook)
    ticker.tick()  # the first tick starts at the end of the log: history is not posted
    assert ticker.new == []

    control.configure(broken_days=[DAYS[1].isoformat(), DAYS[2].isoformat()])
    assert not sync(instance, resources, DAYS[0], DAYS[3], raise_on_error=False).success
    ticker.tick()
    assert len(ticker.new) == 2
    for day, text in zip(DAYS[1:3], ticker.new, strict=True):
        assert f"{TABLE} {day.isoformat()} failed to sync" in text
    body = json.dumps(webhook.bodies)
    assert DEMO_CLIENT_SECRET not in body and webhook.url not in body
    assert "@" not in body
    ticker.tick()
    assert ticker.new == []  # at most once per event
    # the same days failing the same way again: not posted again
    assert not sync(instance, resources, DAYS[1], DAYS[2], raise_on_error=False).success
    ticker.tick()
    assert ticker.new == []

    # a post that fails fails nothing, and is tried again at the next tick
    control.configure(broken_days=[], unknown_field="survey_meta.wave_code")
    assert sync(instance, resources, DAYS[4]).success
    webhook.status = 500
    down = ticker.tick()
    assert (down.posted, down.failed) == (0, 1) and webhook.url not in " ".join(down.notes)
    webhook.status = 200
    ticker.tick()
    (drift,) = ticker.new
    assert "survey_meta.wave_code" in drift and DAYS[4].isoformat() in drift
    assert "drift" not in drift.replace("new untyped", "")  # the path, never the value


def report(
    instance: DagsterInstance, name: str, passed: bool, key: AssetKey = KEY, **metadata: object
) -> None:
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=key,
            check_name=name,
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=f"{name} as the check wrote it",
            metadata=metadata,
        )
    )


def test_holes_and_red_freshness_are_posted_once_each(instance, webhook):
    ticker = Alerts(instance, webhook)
    ticker.tick()
    days = [d.isoformat() for d in DAYS]
    # the hole check runs with every sync: the same holes are posted once
    report(instance, checks.NO_HOLES, False, unsettled_days=days[:2], unsettled_count=2)
    report(instance, checks.NO_HOLES, False, unsettled_days=days[:2], unsettled_count=2)
    ticker.tick()
    (holes,) = ticker.new
    assert days[0] in holes and days[1] in holes
    report(instance, checks.NO_HOLES, False, unsettled_days=days[:3], unsettled_count=3)
    ticker.tick()
    (more,) = ticker.new
    assert days[2] in more and days[0] not in more

    late = {"late_days": days[3:5], "minutes_since_sync": {days[3]: 130.0, days[4]: 125.0}}
    report(instance, day_freshness.CHECK_NAME, False, **late)
    report(instance, day_freshness.CHECK_NAME, False, **late)
    ticker.tick()
    (red,) = ticker.new
    assert "is late" in red and day_freshness.CHECK_NAME in red
    report(instance, day_freshness.CHECK_NAME, True, late_days=[])
    report(instance, day_freshness.CHECK_NAME, False, **late)  # red again after green
    report(instance, schema_drift.CHECK_NAME, True, new_fields_by_day={})
    ticker.tick()
    assert len(ticker.new) == 1 and "is late" in ticker.new[0]


@pytest.fixture
def no_cg_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CG_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_project_sensor_is_opt_in_and_never_shows_the_url(instance, webhook, no_cg_env):
    """The project's defs.yaml gives its tenant the sensor customergauge_alerts on
    CG_ALERT_WEBHOOK_URL: there even while the variable is unset (it skips, naming it), the
    URL read at each tick."""
    variable = "CG_ALERT_WEBHOOK_URL"
    sensor = build_definitions(LoadSettings(automation=True)).get_sensor_def(alerts.SENSOR_NAME)
    skipped = sensor(build_sensor_context(instance=instance))
    assert isinstance(skipped, SkipReason) and variable in skipped.skip_message
    no_cg_env.setenv(variable, webhook.url)  # set after the load: read when it ticks
    context = build_sensor_context(instance=instance)
    sensor(context)  # the first tick: starts at the end of the log
    report(instance, checks.NO_HOLES, False, unsettled_days=[DAYS[0].isoformat()])
    result = sensor(build_sensor_context(instance=instance, cursor=context.cursor))
    assert webhook.url not in result.skip_message and "1 alert(s) posted" in result.skip_message
    assert len(webhook.bodies) == 1
    assert webhook.url not in (sensor.description or "") and variable in (sensor.description or "")


class SensorTicks:
    """A tenant's sensor ticked as the daemon would: its own cursor from tick to tick."""

    def __init__(self, sensor: SensorDefinition, instance: DagsterInstance, hook: Webhook):
        self.sensor, self.instance, self.hook = sensor, instance, hook
        self.cursor: str | None = None

    def tick(self) -> list[str]:
        before = len(self.hook.bodies)
        context = build_sensor_context(instance=self.instance, cursor=self.cursor)
        self.sensor(context)
        self.cursor = context.cursor
        return self.hook.texts()[before:]


CONNECTION = {
    "region": None,
    "per_page": TEST_PER_PAGE,
    "http_timeout": [2, 2],
    "max_retries": 1,
    "backoff_seconds": 0.001,
    "tables": ["non_responses"],
}


def test_two_tenants_each_alert_their_own_webhook_about_their_own_failures_only(
    simulator, control, instance, tmp_path, monkeypatch
):
    ok_day, broken_day = DAYS[0].isoformat(), DAYS[1].isoformat()
    with serving() as eu_hook, serving() as us_hook:
        hooks = {"cg_eu": eu_hook, "cg_us": us_hook}
        tenants = {}
        for prefix, hook in hooks.items():
            env = prefix.upper()
            monkeypatch.setenv(f"{env}_CLIENT_ID", DEMO_CLIENT_ID)
            monkeypatch.setenv(f"{env}_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            monkeypatch.setenv(f"{env}_ALERT_WEBHOOK_URL", hook.url)
            tenants[prefix] = attributes(
                prefix,
                tmp_path,
                api_url=simulator.url,
                auth_url=simulator.token_url,
                alert_webhook_url=f"{{{{ env.{env}_ALERT_WEBHOOK_URL }}}}",
                **CONNECTION,
            )
        with load_tenants(tenants) as defs:
            ticks = {
                p: SensorTicks(defs.get_sensor_def(f"{p}_alerts"), instance, hooks[p])
                for p in hooks
            }

            def run(prefix: str, day: str) -> bool:
                job = defs.resolve_job_def(f"{prefix}_sync_job")
                return job.execute_in_process(
                    instance=instance, partition_key=day, raise_on_error=False
                ).success

            def tick_both() -> dict[str, list[str]]:
                return {p: t.tick() for p, t in ticks.items()}

            assert tick_both() == {"cg_eu": [], "cg_us": []}  # both start at the log's end
            control.configure(broken_days=[broken_day])

            # EU fails a day while US syncs one: only EU's webhook hears of it.
            assert not run("cg_eu", broken_day)
            assert run("cg_us", ok_day)
            heard = tick_both()
            assert heard["cg_us"] == []
            (eu_failure,) = heard["cg_eu"]
            assert f"cg_eu/non_responses {broken_day} failed to sync" in eu_failure

            # And the other way round: EU's sensor does not post US's failure of the same day.
            assert not run("cg_us", broken_day)
            heard = tick_both()
            assert heard["cg_eu"] == []
            (us_failure,) = heard["cg_us"]
            assert f"cg_us/non_responses {broken_day} failed to sync" in us_failure

            # A check of one tenant's table goes to that tenant's webhook only.
            report(
                instance,
                checks.NO_HOLES,
                False,
                key=AssetKey(["cg_us", "non_responses"]),
                unsettled_days=[ok_day],
            )
            heard = tick_both()
            assert heard["cg_eu"] == [] and len(heard["cg_us"]) == 1
            assert "cg_us/non_responses" in heard["cg_us"][0]

    for tick in ticks.values():
        # Neither URL is kept by the instance (the cursor), nor posted to either webhook.
        assert tick.cursor is not None
        assert eu_hook.url not in tick.cursor and us_hook.url not in tick.cursor
    posted = json.dumps(eu_hook.bodies + us_hook.bodies)
    assert eu_hook.url not in posted and us_hook.url not in posted


def test_a_tenant_without_a_webhook_has_no_alert_sensor_and_one_unset_skips(
    instance, tmp_path, monkeypatch
):
    for prefix in ("cg_eu", "cg_us"):
        monkeypatch.setenv(f"{prefix.upper()}_CLIENT_ID", "id")
        monkeypatch.setenv(f"{prefix.upper()}_CLIENT_SECRET", "secret")
    monkeypatch.delenv("CG_EU_ALERT_WEBHOOK_URL", raising=False)
    tenants = {
        # Written, its variable unset where the code location loads: the sensor stays.
        "cg_eu": attributes(
            "cg_eu", tmp_path, alert_webhook_url="{{ env.CG_EU_ALERT_WEBHOOK_URL }}"
        ),
        "cg_us": attributes("cg_us", tmp_path),  # not written: no alert sensor
    }
    with load_tenants(tenants) as defs:
        sensors = {s.name for s in defs.sensors or []}
        assert "cg_eu_alerts" in sensors and "cg_us_alerts" not in sensors
        skipped = defs.get_sensor_def("cg_eu_alerts")(build_sensor_context(instance=instance))
    assert isinstance(skipped, SkipReason)
    assert "CG_EU_ALERT_WEBHOOK_URL is not set" in skipped.skip_message


def test_a_literal_webhook_url_is_refused_without_echoing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CG_EU_CLIENT_ID", "id")
    monkeypatch.setenv("CG_EU_CLIENT_SECRET", "secret")
    url = "https://hooks.slack.com/services/T000/B000/do-not-show-this"
    with (
        pytest.raises(Exception) as caught,
        load_tenants({"cg_eu": attributes("cg_eu", tmp_path, alert_webhook_url=url)}),
    ):
        pass
    text = error_chain(caught.value)
    ours = next(line for line in text.splitlines() if "a secret must be written" in line)
    assert url not in ours
