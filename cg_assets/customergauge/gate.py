"""One rate gate for every stream of a client: a shared pause after 429s and 5xx, and an
optional ceiling on requests per second.

Why shared: with several day streams running side by side, a per-stream back-off would let
the other streams carry on at full speed while the API is asking us to slow down, so
concurrency would multiply the very pressure the 429 or the 5xx reported. Instead, any
stream that is told to wait closes the gate for all of them until the wait is over.

After a pause the streams are cautious: one request at a time (whichever stream's turn
it is) until the API has left them alone for `CAUTIOUS_SECONDS` after the pause ended,
then all of them again. So while the API keeps pushing back, N streams put about as much
pressure on it as one stream does; when it stops, full speed returns on its own. What no
client can avoid: the requests other streams already had on the wire when the first 429
of a storm was answered (at most N - 1 per storm that finds them at full speed).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# After a pause, one request at a time until this long after the gate reopened.
CAUTIOUS_SECONDS = 10.0
# A stream waiting for its turn re-checks this often (the cautious period may end).
TURN_RECHECK_SECONDS = 0.5


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
        self._turn_free = threading.Condition(self._lock)
        self._reopen_at = -math.inf  # closed until this clock reading
        self._cautious_until = -math.inf  # one request at a time until this clock reading
        self._in_flight = 0  # admitted, not yet reported
        self._next_slot = -math.inf  # the earliest start of the next request (ceiling)
        self.pauses = 0  # how often a pause closed the gate or made it close for longer

    @property
    def max_requests_per_second(self) -> float | None:
        return 1.0 / self._interval if self._interval else None

    def seconds_closed(self) -> float:
        """How long the gate stays closed from now (0 when open)."""
        with self._lock:
            return max(0.0, self._reopen_at - self._clock())

    def admit(self) -> None:
        """Block until this request may be sent; then call `report` exactly once."""
        while True:
            with self._lock:
                now = self._clock()
                if self._reopen_at > now:
                    pause_left = self._reopen_at - now
                elif now < self._cautious_until and self._in_flight > 0:
                    self._turn_free.wait(min(TURN_RECHECK_SECONDS, self._cautious_until - now))
                    continue
                else:
                    self._in_flight += 1
                    # Strict spacing of 1/rate between request starts over all streams,
                    # so no burst passes the ceiling in any window.
                    slot = max(now, self._next_slot)
                    if self._interval:
                        self._next_slot = slot + self._interval
                    break
            self._sleep(pause_left)  # then look again: the pause may have grown
        if slot > now:
            self._sleep(slot - now)  # our slot under the ceiling

    def report(self, pause_seconds: float | None) -> None:
        """The outcome of a request `admit` let through. `pause_seconds`: the API pushed
        back (a 429 or a 5xx): close the gate for every stream that long from now (a longer
        pause already set stands), then be cautious. None: any other outcome."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if pause_seconds is not None:
                until = self._clock() + max(0.0, pause_seconds)
                if until > self._reopen_at:
                    self._reopen_at = until
                    self.pauses += 1
                self._cautious_until = max(self._cautious_until, self._reopen_at + CAUTIOUS_SECONDS)
            self._turn_free.notify_all()
