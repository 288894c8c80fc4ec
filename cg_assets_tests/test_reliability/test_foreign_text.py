"""A hostile server's text in our messages (issue 21): a token endpoint that echoes its
form, a 4xx that repeats records, a date that holds an address. Real runs of the asset
against a simulator whose secret has characters that URL-encoding changes; nothing secret
or personal may reach the run's event log, in any encoding, and no event is huge."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any

import pytest

from cg_assets.customergauge.foreign_text import (
    MESSAGE_CHARS,
    describe_body,
    describe_value,
    secret_forms,
)
from cg_assets.defs.resources import LakeResource
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_END, SIM_RECORDS, SIM_START, in_memory_instance
from cg_assets_tests.conftest import make_resource as make_demo_resource
from cg_assets_tests.test_reliability.helpers import (
    event_log,
    failure_text,
    personal_values,
    run_asset,
)
from cg_simulator import DEMO_CLIENT_ID, SimulatorControl
from cg_simulator.control import running_simulator

SECRET = "s3cr+t/with=padding&more+chars=="  # changes under URL-, JSON- and form-encoding
DAY = SIM_START + dt.timedelta(days=1)
OLD = LoadSettings(start_date=SIM_START, settle_after_hours=0)
PASS = {"kind": "slow", "seconds": 0}


@pytest.fixture
def hostile() -> Any:
    with running_simulator(
        records=SIM_RECORDS, start=SIM_START, end=SIM_END, seed=11, client_secret=SECRET
    ) as server:
        yield server


def resources(server: Any, tmp_path) -> dict[str, Any]:
    resource = make_demo_resource(server, client_secret=SECRET, max_retries=1)
    return {"customergauge": resource, "lake": LakeResource(root=str(tmp_path / "lake"))}


def form_echo() -> str:
    return urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": SECRET}
    )


def assert_clean(text: str, control: SimulatorControl) -> None:
    for form in secret_forms(SECRET):
        assert form not in text, f"the secret is in the log as {form!r}"
    for value in personal_values(control, DAY):
        assert value not in text, "a personal value is in the log"


@pytest.mark.parametrize(
    ("fault", "phrase"),
    [
        ({"kind": "status", "target": "token", "code": 500, "body": form_echo()}, "HTTP 500"),
        ({"kind": "status", "target": "token", "code": 404, "body": form_echo()}, "HTTP 404"),
        ({"kind": "echo", "target": "token", "code": 400}, "rejected the client credentials"),
        ({"kind": "echo", "target": "token", "code": 502}, "an HTML page"),
    ],
)
def test_a_token_endpoint_echoing_its_form_leaks_no_form_of_the_secret(
    hostile, tmp_path, fault, phrase
):
    instance = in_memory_instance()
    with SimulatorControl(hostile.url) as control:
        control.inject({**fault, "times": 5})
        result = run_asset(instance, resources(hostile, tmp_path), OLD, DAY)
        assert not result.success
        text = failure_text(result)
        assert phrase in text and ("the token request" in text or "oauth2/token" in text), text
        assert_clean(text + event_log(instance, result.run_id), control)


def test_a_refusal_that_repeats_the_records_quotes_only_the_apis_message(hostile, tmp_path):
    instance = in_memory_instance()
    with SimulatorControl(hostile.url) as control:
        records = control.truth(field="date_sent", start=DAY, end=DAY)[:20]
        body = json.dumps({"message": "Payload too large for jo.doe@example.org", "data": records})
        control.inject(PASS, {"kind": "status", "code": 413, "body": body})
        result = run_asset(instance, resources(hostile, tmp_path), OLD, DAY)
        assert not result.success
        text = failure_text(result)
        assert "HTTP 413" in text and "Payload too large for <e-mail>" in text, text
        assert "jo.doe@example.org" not in text
        assert_clean(text + event_log(instance, result.run_id), control)


def test_a_huge_error_body_makes_no_huge_event(hostile, tmp_path):
    instance = in_memory_instance()
    with SimulatorControl(hostile.url) as control:
        huge = "x" * 3_000_000
        control.inject(PASS, {"kind": "status", "code": 400, "body": {"message": huge}})
        result = run_asset(instance, resources(hostile, tmp_path), OLD, DAY)
        assert not result.success
        biggest = max(len(line) for line in event_log(instance, result.run_id).splitlines())
        assert biggest < 20 * MESSAGE_CHARS  # an event's envelope, not the body


def test_bodies_are_described_not_quoted():
    page = json.dumps({"data": [{"email": "jo@example.org", "name": "Jo Doe"}]}).encode()
    assert "jo@example.org" not in describe_body(page) and "Jo Doe" not in describe_body(page)
    assert describe_body(page).startswith(f"{len(page)} bytes of JSON")
    refused = json.dumps(
        {"message": "The given data was invalid.", "errors": {"period[field]": ["Bad field."]}}
    ).encode()
    assert "period[field]: Bad field." in describe_body(refused)
    echoed = form_echo().encode()
    described = describe_body(echoed)
    assert all(form not in described for form in secret_forms(SECRET)), described
    assert describe_body(b"  ") == "an empty body (2 bytes)"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("31/02/2026 25:00", True),
        ("2026-13-01 00:00:00", True),
        (None, True),
        (12, True),
        ("yesterday, ask jo@example.org", False),
        ("x" * 10_000_000, False),
    ],
)
def test_a_records_value_is_quoted_only_when_plainly_not_personal(value, quoted):
    described = describe_value(value)
    assert (repr(value) == described) == quoted
    assert len(described) < 100
