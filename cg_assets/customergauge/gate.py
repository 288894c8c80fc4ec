"""One rate gate for every stream of a client: a shared pause after 429s and 5xx, and an
optional ceiling on requests per second.

Why shared: with several day streams running side by side, a per-stream back-off would let
the other streams carry on at full speed while the API is asking us to slow down, so
concurrency would multiply the very pressure the 429 or the 5xx reported. Instead, any
stream that is told to wait closes the gate for all of them until the wait is over.

When a pause ends, one request goes first (the probe) and the others wait for its answer:
if the API is still pushing back, one request learns it, not one per stream. So N streams
draw about as many 429s from a throttled API as one stream does.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# A stream waiting for the probe's answer re-checks this often, in case the probe's thread
# died without reporting (it always reports, from a `finally`; this is belt and braces).
PROBE_RECHECK_SECONDS = 1.0


class RateGate:
    """Every request (token and page, every stream) calls `admit()` before it is sent and
    `report()` once its outcome is known. Thread-safe."""

    def __init__(
        self,
        max_requests_per_second: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # `sleep(s)` must let `clock()` advance by at least s (a test passes both, faked).
        if max_requests_per_second is not None and not max_requests_per_second > 0:
            raise ValueError("max_requests_per_second must be above 0 (or None: no ceiling)")
        self._interval = 1.0 / max_requests_per_second if max_requests_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._probe_done = threading.Condition(self._lock)
        self._reopen_at = -math.inf  # closed until this clock reading
        self._probe_needed = False  # a pause ended: one request goes first
        self._probe_in_flight = False
        self._next_slot = -math.inf  # the earliest start of the next request (ceiling)
        self._generation = 0  # counts pauses, so a probe's success cannot end a later one
        self.pauses = 0  # how often a pause closed the gate or made it close for longer

    @property
    def max_requests_per_second(self) -> float | None:
        return 1.0 / self._interval if self._interval else None

    def seconds_closed(self) -> float:
        """How long the gate stays closed from now (0 when open)."""
        with self._lock:
            return max(0.0, self._reopen_at - self._clock())

    def admit(self) -> Ticket:
        """Block until this request may be sent; pass the ticket to `report`."""
        while True:
            with self._lock:
                now = self._clock()
                reopen = self._reopen_at
                closed = reopen > now
                if not closed and self._probe_needed and self._probe_in_flight:
                    self._probe_done.wait(PROBE_RECHECK_SECONDS)
                    continue
                if not closed:
                    ticket = Ticket(self._generation if self._probe_needed else None)
                    if ticket.probe:
                        self._probe_in_flight = True
                    # Strict spacing of 1/rate between request starts over all streams,
                    # so no burst passes the ceiling in any window.
                    slot = max(now, self._next_slot)
                    if self._interval:
                        self._next_slot = slot + self._interval
                    if slot <= now:
                        return ticket
            if closed:
                self._sleep(reopen - now)
                continue
            self._sleep(slot - now)  # our slot under the ceiling
            if ticket.probe or self.seconds_closed() == 0:
                return ticket
            # A pause began while we waited for the slot: wait for it like everyone else.

    def report(self, ticket: Ticket, pause_seconds: float | None) -> None:
        """The outcome of a request `admit` let through. `pause_seconds`: the API pushed
        back (a 429 or a 5xx): close the gate for every stream that long from now (a longer
        pause already set stands). None: any other outcome, the request did not add
        pressure."""
        with self._lock:
            if pause_seconds is not None:
                until = self._clock() + max(0.0, pause_seconds)
                if until > self._reopen_at:
                    self._reopen_at = until
                    self.pauses += 1
                self._probe_needed = True
                self._generation += 1
            elif ticket.probe and ticket.generation == self._generation:
                self._probe_needed = False  # no stream was pushed back since: all may go
            if ticket.probe:
                self._probe_in_flight = False
                self._probe_done.notify_all()


@dataclass(frozen=True)
class Ticket:
    """What `admit` hands out: the pause generation a probe was sent for (None: no probe)."""

    generation: int | None

    @property
    def probe(self) -> bool:
        return self.generation is not None
