"""The alert sensor against a webhook server of the test's own on loopback, reading a real
instance's events from real sync runs (and check results reported to it)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    DagsterInstance,
    SkipReason,
    build_sensor_context,
)

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs import alerts, checks, day_freshness, schema_drift
from cg_assets.defs.assets import asset_key_for
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.test_privacy.helpers import sync
from cg_simulator import DEMO_CLIENT_SECRET

KEY = asset_key_for(NON_RESPONSES)
TABLE = KEY.to_user_string()
DAYS = [SIM_START + dt.timedelta(days=i) for i in range(5)]


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


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


class Alerts:
    def __init__(self, instance: DagsterInstance, webhook: Webhook) -> None:
        self.instance, self.webhook, self.cursor = instance, webhook, None

    def tick(self) -> alerts.AlertTick:
        before = len(self.webhook.bodies)
        tick = alerts.evaluate_alert_tick(self.instance, self.webhook.url, self.cursor)
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


def report(instance: DagsterInstance, name: str, passed: bool, **metadata: object) -> None:
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=KEY,
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


def test_the_sensor_is_opt_in_and_never_shows_the_url(instance, webhook, monkeypatch):
    sensor = alerts.build_alert_sensor(LoadSettings(automation=True))
    monkeypatch.delenv(alerts.URL_VARIABLE, raising=False)
    skipped = sensor(build_sensor_context(instance=instance))
    assert isinstance(skipped, SkipReason) and alerts.URL_VARIABLE in skipped.skip_message
    monkeypatch.setenv(alerts.URL_VARIABLE, webhook.url)
    context = build_sensor_context(instance=instance)
    sensor(context)  # the first tick: starts at the end of the log
    report(instance, checks.NO_HOLES, False, unsettled_days=[DAYS[0].isoformat()])
    result = sensor(build_sensor_context(instance=instance, cursor=context.cursor))
    assert webhook.url not in result.skip_message and "1 alert(s) posted" in result.skip_message
    assert len(webhook.bodies) == 1
