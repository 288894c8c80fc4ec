"""Bounded, jittered retries shared by the token and the page requests.

Budgets and attempt counts are per request. The waits the API asks for (429) and the
back-off after a 5xx go through the client's shared `RateGate`, so they pause every stream
of the client, not only the one that was told to wait.

Written by hand rather than with urllib3's `Retry`: two of our transient faults are
invisible to urllib3 (a 200 whose body is cut short or is an HTML error page), and the
assets report retries by cause, which needs one place that sees every retry.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cg_assets.customergauge.errors import RetriesExhaustedError
from cg_assets.customergauge.gate import RateGate

T = TypeVar("T")

# A server asking for a longer pause than this is treated as asking for this long; the
# total retry budget still bounds the wait.
RETRY_AFTER_CAP_SECONDS = 300.0
BACKOFF_CAP_SECONDS = 60.0
# Causes that say the API is under pressure: their wait pauses every stream (the gate).
# A timeout, a dropped connection or a broken body is one request's bad luck: only that
# request waits.
GATE_CAUSES = frozenset({"429", "5xx"})


class TransientError(Exception):
    """One attempt failed in a way that a later attempt may not: retry it."""

    def __init__(self, cause: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryPolicy:
    max_retries: int
    budget_seconds: float
    backoff_seconds: float
    on_retry: Callable[[str], None] = lambda cause: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    gate: RateGate | None = None  # shared by every stream of one client

    def run(self, attempt: Callable[[], T], what: str) -> T:
        started = self.clock()
        tries = 0
        while True:
            tries += 1
            # Waiting at the gate (a pause, the ceiling) counts against this request's budget.
            if self.gate is not None:
                self.gate.admit()
            try:
                result = attempt()
            except TransientError as exc:
                elapsed = self.clock() - started
                wait = self._wait_before(tries, exc)
                # A 429 or a 5xx asks every stream to wait, even when this request gives
                # up below; any other fault is this request's own bad luck.
                pushed_back = wait if exc.cause in GATE_CAUSES else None
                if self.gate is not None:
                    self.gate.report(pushed_back)
                out_of_tries = tries > self.max_retries
                out_of_time = elapsed + wait > self.budget_seconds
                if out_of_tries or out_of_time:
                    why = (
                        f"after {tries} attempt(s)"
                        if out_of_tries
                        else f"after {tries} attempt(s): the next wait of {wait:.1f} s would pass "
                        f"the retry budget of {self.budget_seconds:.0f} s (CG_RETRY_BUDGET_SECONDS)"
                    )
                    raise RetriesExhaustedError(
                        f"{what} failed {why} over {elapsed:.1f} s; last failure: "
                        f"{exc.cause}: {exc.detail}",
                        last_cause=exc.cause,
                    ) from None
                self.on_retry(exc.cause)
                if self.gate is None or pushed_back is None:
                    self.sleep(wait)
                # else: the next admit() sleeps the pause, together with every other stream
                continue
            except BaseException:
                if self.gate is not None:
                    self.gate.report(None)  # a final error: no pressure to report
                raise
            if self.gate is not None:
                self.gate.report(None)
            return result

    def _wait_before(self, tries: int, exc: TransientError) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, RETRY_AFTER_CAP_SECONDS)
        # Full jitter: spreads out clients that failed together.
        ceiling = min(BACKOFF_CAP_SECONDS, self.backoff_seconds * 2 ** (tries - 1))
        return self.rng.uniform(0, ceiling)
