"""Per-endpoint settings: each table's date field comes from its own variable."""

from __future__ import annotations

import pytest

from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES
from cg_assets.settings import LoadSettings, SettingsError


def test_each_endpoint_reads_its_own_date_field_setting():
    settings = LoadSettings.from_env(
        {"CG_DATE_FIELD": "date_creation", "CG_RESPONSES_DATE_FIELD": "date_survey_response"}
    )
    assert NON_RESPONSES.date_field(settings) == "date_creation"
    assert RESPONSES.date_field(settings) == "date_survey_response"
    default = LoadSettings.from_env({})
    assert NON_RESPONSES.date_field(default) == RESPONSES.date_field(default) == "date_sent"


def test_date_survey_response_is_refused_for_non_responses_with_a_clear_message():
    with pytest.raises(SettingsError, match=r"CG_DATE_FIELD='date_survey_response' is invalid"):
        LoadSettings.from_env({"CG_DATE_FIELD": "date_survey_response"})
    with pytest.raises(SettingsError) as info:
        LoadSettings.from_env({"CG_RESPONSES_DATE_FIELD": "date_opened"})
    assert "CG_RESPONSES_DATE_FIELD" in str(info.value)
    assert "date_survey_response" in str(info.value)  # says what it accepts


def test_every_period_field_of_an_endpoint_is_one_of_its_timestamp_columns():
    for endpoint in (NON_RESPONSES, RESPONSES):
        types = {c.name: c.kind.name for c in endpoint.columns}
        assert all(types[f] == "timestamp" for f in endpoint.period_fields)
        assert not set(endpoint.preview_columns) & set(endpoint.personal_columns)
    assert set(RESPONSES.personal_columns) >= {
        "contact_first_name",
        "contact_last_name",
        "email",
        "phone",
        "link",
    }
