"""Fixtures for the simulator tests: a live simulator over real HTTP, and a small client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cg_assets.customergauge import wire
from cg_simulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    SimulatorControl,
    SimulatorServer,
    running_simulator,
)

START = dt.date(2026, 3, 1)
END = dt.date(2026, 3, 7)
RECORDS = 700
SEED = 3


class Api:
    """A bare-bones client of the simulator's wire endpoints (no retries: we test the wire)."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.token: str | None = None
        self.path = wire.NON_RESPONSES_PATH  # or wire.RESPONSES_PATH

    def request_token(
        self,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        grant_type: str | None = wire.TOKEN_GRANT_TYPE,
    ) -> requests.Response:
        form = {wire.TOKEN_FORM_CLIENT_ID: client_id, wire.TOKEN_FORM_CLIENT_SECRET: client_secret}
        if grant_type is not None:
            form[wire.TOKEN_FORM_GRANT_TYPE] = grant_type
        return requests.post(self.sim.token_url, data=form, timeout=10)

    def login(self) -> str:
        response = self.request_token()
        assert response.status_code == 200, response.text
        self.token = response.json()[wire.TOKEN_RESPONSE_ACCESS_TOKEN]
        return self.token

    def get(
        self, params: dict[str, Any] | None = None, token: str | None = None, **kw: Any
    ) -> requests.Response:
        token = token if token is not None else self.token
        headers = {wire.AUTH_HEADER: f"{wire.AUTH_SCHEME} {token}"} if token else {}
        return self.session.get(
            self.sim.url + self.path,
            params=params or {},
            headers=headers,
            timeout=kw.pop("timeout", 10),
            **kw,
        )

    def page(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.get(params)
        assert response.status_code == 200, response.text
        return response.json()

    def fetch_all(
        self,
        params: dict[str, Any] | None = None,
        cursor: int | None = None,
        per_page: int = 1000,
    ) -> tuple[list[dict[str, Any]], int | None, list[int]]:
        """Page until an empty page; returns records, the last cursor, and the page sizes."""
        records: list[dict[str, Any]] = []
        sizes: list[int] = []
        for _ in range(10_000):
            query = dict(params or {})
            query[wire.PARAM_PER_PAGE] = per_page
            if cursor is not None:
                query[wire.PARAM_CURSOR] = cursor
            body = self.page(query)
            data = body[wire.BODY_DATA]
            next_cursor = body[wire.BODY_CURSOR][wire.BODY_CURSOR_NEXT]
            if not data:
                assert next_cursor == (cursor if cursor is not None else 0)
                return records, cursor, sizes
            assert cursor is None or next_cursor > cursor
            records.extend(data)
            sizes.append(len(data))
            cursor = next_cursor
        raise AssertionError("paging never ended")


def period(field: str, start: dt.date | str | None, end: dt.date | str | None) -> dict[str, str]:
    params = {wire.PARAM_PERIOD_FIELD: field}
    if start is not None:
        params[wire.PARAM_PERIOD_START] = str(start)
    if end is not None:
        params[wire.PARAM_PERIOD_END] = str(end)
    return params


def keys(records: list[dict[str, Any]]) -> list[int]:
    return [r[wire.RECORD_KEY] for r in records]


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with running_simulator(records=RECORDS, start=START, end=END, seed=SEED) as server:
        yield server


@pytest.fixture
def ctl(sim: SimulatorServer) -> Iterator[SimulatorControl]:
    control = SimulatorControl(sim.url)
    yield control
    control.close()


@pytest.fixture
def api(sim: SimulatorServer) -> Iterator[Api]:
    client = Api(sim)
    client.login()
    yield client
    client.session.close()
