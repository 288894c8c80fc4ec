"""Every validation error of the sync endpoint: 422 with a per-parameter explanation."""

from __future__ import annotations

import pytest

from cg_assets.customergauge import wire

P, C = wire.PARAM_PER_PAGE, wire.PARAM_CURSOR
F, S, E = wire.PARAM_PERIOD_FIELD, wire.PARAM_PERIOD_START, wire.PARAM_PERIOD_END


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({P: "abc"}, P),
        ({P: "1.5"}, P),
        ({P: ""}, P),
        ({P: 0}, P),
        ({P: 1001}, P),
        ({P: -3}, P),
        ({C: "abc"}, C),
        ({C: "1e3"}, C),
        ({F: "date_opened"}, F),
        ({F: "date_sent", S: "2026-02-30"}, S),
        ({F: "date_sent", S: "2026/03/01"}, S),
        ({F: "date_sent", E: "03-01-2026"}, E),
        ({F: "date_sent", E: "2026-3-1"}, E),
        ({F: "date_sent", S: "2026-03-05", E: "2026-03-04"}, E),
        ({S: "2026-03-01", E: "2026-03-02"}, F),
        ({E: "2026-03-02"}, F),
    ],
)
def test_invalid_params_get_422(api, params, bad):
    response = api.get(params)
    assert response.status_code == 422
    body = response.json()
    assert body[wire.BODY_MESSAGE] == "The given data was invalid."
    assert list(body["errors"]) == [bad]
    assert body["errors"][bad] and all(isinstance(m, str) and m for m in body["errors"][bad])


def test_several_errors_at_once(api):
    response = api.get({P: "x", C: "y", F: "nope"})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {P, C, F}


@pytest.mark.parametrize(
    "params",
    [
        {P: 1},
        {P: 1000},
        {C: 0},
        {F: "date_order"},
        {F: "date_creation", S: "2026-03-02"},
        {F: "date_sent", S: "2026-03-02", E: "2026-03-02"},
    ],
)
def test_valid_edges_are_accepted(api, params):
    assert api.get(params).status_code == 200
