"""The responses endpoint: answering moves a non-response there, over real HTTP."""

from __future__ import annotations

import datetime as dt
import time

from cg_assets.customergauge import wire
from cg_simulator import SimulatorControl, running_simulator

from .conftest import START, keys, period

DAY = START + dt.timedelta(days=2)
EVERYTHING = {wire.PARAM_WITH: ["drivers", "tags", "questions", "properties"]}


def test_answering_moves_a_record_with_its_key_and_answer(api, ctl):
    invitations = {r[wire.RECORD_KEY]: r for r in ctl.truth("date_sent", DAY, DAY)}
    answered = ctl.respond_records(sorted(invitations)[:5])
    api.path = wire.RESPONSES_PATH
    responses, _, _ = api.fetch_all({**period("date_sent", DAY, DAY), **EVERYTHING})
    assert keys(responses) == answered  # in the order they were answered
    assert not set(answered) & set(keys(ctl.truth("date_sent", DAY, DAY)))
    for response in responses:
        invitation = invitations[response[wire.RECORD_KEY]]
        assert "status" not in response
        for name in ("email", "date_sent", "number_order", "contact", "account"):
            assert response[name] == invitation[name]
        assert response["date_survey_response"] >= response["date_sent"]
        assert 0 <= response["nps"] <= 10 and "comment" in response
        assert all(set(d) == {"label"} for d in response["drivers"])
        assert {"field", "reference", "field_id"} == set(response["properties"][0])
    assert ctl.truth("date_sent", DAY, DAY, endpoint="responses") == responses
    assert ctl.stats()["responses"] == 5


def test_the_responses_cursor_follows_the_order_of_answering(api, ctl):
    day_keys = sorted(keys(ctl.truth("date_sent", DAY, DAY)))
    ctl.respond_records(day_keys[-2:])
    api.path = wire.RESPONSES_PATH
    first, cursor, _ = api.fetch_all(period("date_sent", DAY, DAY))
    later = ctl.respond_records(day_keys[:1])  # an older invitation, answered later
    new, _, _ = api.fetch_all(period("date_sent", DAY, DAY), cursor=cursor)
    assert keys(new) == later and len(first) == 2


def test_in_cgid_order_an_older_invitation_answered_later_sits_below_the_cursor(api, ctl):
    """The switch the product must survive: the cursor as the vendor's older pages describe
    it, a keyset position on the invitation, so a catch-up from it misses the answer."""
    ctl.configure(responses_order="cgid")
    day_keys = sorted(keys(ctl.truth("date_sent", DAY, DAY)))
    ctl.respond_records([day_keys[-1], day_keys[-3]])
    api.path = wire.RESPONSES_PATH
    first, cursor, _ = api.fetch_all(period("date_sent", DAY, DAY))
    assert keys(first) == [day_keys[-3], day_keys[-1]]  # by CGID, not by answer
    later = ctl.respond_records([day_keys[0], day_keys[-2]])
    new, _, _ = api.fetch_all(period("date_sent", DAY, DAY), cursor=cursor)
    assert new == []  # both below the cursor
    whole, _, _ = api.fetch_all(period("date_sent", DAY, DAY))
    assert keys(whole) == sorted([*later, day_keys[-1], day_keys[-3]])
    assert keys(ctl.truth("date_sent", DAY, DAY, endpoint="responses")) == keys(whole)


def test_answers_come_mostly_within_two_days_with_a_tail_past_thirty(ctl):
    ctl.reset(records=4000, respond_share=1.0, start="2026-01-01", end="2026-06-30")
    lags = []
    for response in ctl.truth(endpoint="responses"):
        sent = dt.datetime.fromisoformat(response["date_sent"])
        answered = dt.datetime.fromisoformat(response["date_survey_response"])
        lags.append((answered - sent).total_seconds() / 86_400)
    within_two = sum(lag <= 2 for lag in lags) / len(lags)
    past_thirty = sum(lag > 30 for lag in lags) / len(lags)
    assert 0.6 < within_two < 0.8 and 0.01 < past_thirty < 0.08
    assert max(lags) > 35


def test_expansions_are_sent_only_when_asked_for(api, ctl):
    ctl.respond_records(day=DAY, count=2)
    api.path = wire.RESPONSES_PATH
    bare = api.page()["data"][0]
    assert not {"drivers", "tags", "questions", "properties"} & set(bare)
    tagged = api.page({wire.PARAM_WITH: ["tags"]})["data"][0]
    assert "tags" in tagged and "drivers" not in tagged


def test_date_survey_response_is_a_period_field_of_responses_only(api, ctl):
    answered_at = dt.datetime.combine(DAY + dt.timedelta(days=3), dt.time(8, 0))
    answered = ctl.respond_records(day=DAY, count=3, at=answered_at)
    query = period("date_survey_response", answered_at.date(), answered_at.date())
    assert api.get(query).status_code == 422  # non-responses do not know the field
    api.path = wire.RESPONSES_PATH
    records, _, _ = api.fetch_all(query)
    assert sorted(keys(records)) == sorted(answered)
    assert {r["date_survey_response"] for r in records} == {"2026-03-06 08:00:00"}


def test_a_generated_share_of_answers_and_a_reset(ctl):
    ctl.reset(records=400, respond_share=0.25)
    responses = ctl.truth(endpoint="responses")
    non_responses = ctl.truth()
    assert 60 < len(responses) < 140 and len(responses) + len(non_responses) == 400
    assert not set(keys(responses)) & set(keys(non_responses))


def test_a_restart_replays_the_live_answers(tmp_path):
    journal = str(tmp_path / "sim.journal")
    args = {"records": 200, "start": dt.date(2026, 11, 1), "end": dt.date(2026, 11, 10)}
    with running_simulator(**args, seed=5, live_every_seconds=0.02, journal=journal) as sim:
        with SimulatorControl(sim.url) as ctl:
            deadline = time.monotonic() + 30
            while ctl.stats()["responses"] < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
    with running_simulator(**args, seed=5, journal=journal) as sim:
        with SimulatorControl(sim.url) as ctl:
            before = (ctl.truth(endpoint="responses"), ctl.truth())
    assert len(before[0]) >= 3
    with running_simulator(records=10, seed=9, journal=journal) as sim:
        with SimulatorControl(sim.url) as ctl:
            assert (ctl.truth(endpoint="responses"), ctl.truth()) == before
