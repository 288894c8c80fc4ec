"""A small ``requests`` client for the simulator's control endpoints, and a context manager
that runs a simulator in this process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cg_assets.customergauge import wire
from cg_simulator.dataset import DATE_SENT, NON_RESPONSES
from cg_simulator.server import CONTROL_PREFIX, SimulatorServer

if TYPE_CHECKING:
    import requests


def _day(value: dt.date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.strftime(wire.PERIOD_DATE_FORMAT)


class SimulatorControl:
    """Drive a running simulator (in this process or another) over HTTP."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        import requests  # only the control client needs it: the server is stdlib-only

        self._session: requests.Session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SimulatorControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        route: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}{CONTROL_PREFIX}{route}",
            params=params,
            json=body,
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"simulator {method} {route} failed: {response.status_code} {response.text[:500]}"
            )
        return response.json()

    def health(self) -> bool:
        """True when the simulator answers (raises if it cannot be reached)."""
        return bool(self._call("GET", "/health").get("ok"))

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset_stats(self) -> None:
        self._call("POST", "/stats/reset")

    def truth(
        self,
        field: str = DATE_SENT,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        endpoint: str = NON_RESPONSES,
    ) -> list[dict[str, Any]]:
        """Every record of `endpoint` (non_responses or responses) matching the filter, in
        the API's order, with every expansion."""
        params = {"field": field, "start": _day(start), "end": _day(end), "endpoint": endpoint}
        return self._call("GET", "/truth", params={k: v for k, v in params.items() if v})["data"]

    def add_records(self, day: dt.date | str, count: int, field: str = DATE_SENT) -> list[int]:
        """Add records whose `field` falls on `day`; returns their number_customergauge."""
        body = {"day": _day(day), "count": count, "field": field}
        return self._call("POST", "/records/add", body=body)["keys"]

    def _mutate(
        self,
        route: str,
        keys: Iterable[int] | None,
        day: dt.date | str | None,
        count: int | None,
    ) -> list[int]:
        if keys is not None:
            body: dict[str, Any] = {"keys": list(keys)}
        else:
            body = {"day": _day(day), "count": count}
        return self._call("POST", route, body=body)["keys"]

    def fail_records(
        self,
        keys: Iterable[int] | None = None,
        *,
        day: dt.date | str | None = None,
        count: int | None = None,
    ) -> list[int]:
        """Turn records into failures (status survey-failed, same pk); returns their keys."""
        return self._mutate("/records/fail", keys, day, count)

    def respond_records(
        self,
        keys: Iterable[int] | None = None,
        *,
        day: dt.date | str | None = None,
        count: int | None = None,
        at: dt.datetime | None = None,
    ) -> list[int]:
        """Answer non-responses: they leave non-responses and appear in responses with the
        same key (answered at `at`, else soon after they were sent); returns their keys."""
        body: dict[str, Any] = (
            {"keys": list(keys)} if keys is not None else {"day": _day(day), "count": count}
        )
        if at is not None:
            body["at"] = at.isoformat()
        return self._call("POST", "/records/respond", body=body)["keys"]

    def inject(self, *faults: dict[str, Any]) -> int:
        """Queue faults; returns how many requests the queue will still hit."""
        return self._call("POST", "/faults", body={"faults": list(faults)})["faults_pending"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def configure(self, **config: Any) -> dict[str, Any]:
        """Merge config (latency_ms, max_page_size, expire_tokens_after_requests,
        token_ttl_seconds, omit_expires_in, revoked, throttle_every_requests,
        throttle_seconds, throttle_retry_after); returns the whole config."""
        return self._call("POST", "/config", body=config)

    def reset(self, **kw: Any) -> None:
        """Regenerate the data (seed, records, start, end, respond_share) and clear faults,
        config, stats."""
        body = {k: _day(v) if isinstance(v, dt.date) else v for k, v in kw.items()}
        self._call("POST", "/reset", body=body)


@contextmanager
def running_simulator(**kwargs: Any) -> Iterator[SimulatorServer]:
    """Start a SimulatorServer (same keyword arguments) and stop it on exit."""
    server = SimulatorServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
