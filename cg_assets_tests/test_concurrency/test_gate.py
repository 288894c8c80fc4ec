"""The rate gate's rules on an injected clock (the HTTP behaviour is in test_streams.py)."""

from __future__ import annotations

import threading

import pytest

from cg_assets.customergauge.gate import CAUTIOUS_SECONDS, RateGate

BLOCKED = 0.3  # how long a thread that must stay blocked is given to (wrongly) get through


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def gate_on(fake: FakeTime, ceiling: float | None = None) -> RateGate:
    return RateGate(ceiling, clock=fake.monotonic, sleep=fake.sleep)


def admit_in_thread(gate: RateGate) -> threading.Thread:
    thread = threading.Thread(target=gate.admit, daemon=True)
    thread.start()
    return thread


def test_an_open_gate_lets_requests_through_at_once():
    fake = FakeTime()
    gate = gate_on(fake)
    for _ in range(5):
        gate.admit()  # five streams, none has reported yet
    assert fake.sleeps == []


def test_a_pause_holds_every_request_until_it_ends_and_never_shortens():
    fake = FakeTime()
    gate = gate_on(fake)
    gate.admit()
    gate.admit()  # two streams with a request in flight
    gate.report(7.0)  # a 429 with Retry-After: 7
    gate.report(2.0)  # the other's shorter pause does not shorten the one set
    assert gate.seconds_closed() == 7.0
    gate.admit()
    assert fake.sleeps == [7.0] and gate.pauses == 1


def test_after_a_pause_one_request_at_a_time_until_the_api_is_calm():
    fake = FakeTime()
    gate = gate_on(fake)
    gate.admit()
    gate.report(1.0)
    gate.admit()  # sleeps the pause, then goes: nothing else is in flight
    second = admit_in_thread(gate)
    second.join(BLOCKED)
    assert second.is_alive()  # waits for the first one's answer
    gate.report(None)
    second.join(5)
    assert not second.is_alive()
    gate.report(None)
    fake.now += 1.0 + CAUTIOUS_SECONDS  # calm for long enough: all streams again
    gate.admit()
    gate.admit()
    assert fake.sleeps == [1.0]


def test_a_new_pause_while_cautious_extends_the_caution():
    fake = FakeTime()
    gate = gate_on(fake)
    gate.admit()
    gate.report(1.0)
    fake.now += 1.0 + CAUTIOUS_SECONDS - 0.5
    gate.admit()
    gate.report(1.0)  # pushed back again: cautious for CAUTIOUS_SECONDS after this pause
    fake.now += 1.0 + CAUTIOUS_SECONDS - 0.5
    gate.admit()
    second = admit_in_thread(gate)
    second.join(BLOCKED)
    assert second.is_alive()
    gate.report(None)
    second.join(5)
    assert not second.is_alive()


def test_the_ceiling_spaces_request_starts_over_all_callers():
    fake = FakeTime()
    gate = gate_on(fake, ceiling=4)
    for _ in range(5):
        gate.admit()
    assert fake.sleeps == [0.25, 0.25, 0.25, 0.25]
    assert gate.max_requests_per_second == 4
    with pytest.raises(ValueError, match="above 0"):
        RateGate(0)
