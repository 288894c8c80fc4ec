"""run_days: bounded, isolated, reported in the calling thread as each day finishes."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from cg_assets.day_runner import run_days

DAYS = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(7)]
WAIT = 10.0  # generous: only reached when the behaviour under test is broken


class Recorder:
    """on_result that records what it saw and in which thread."""

    def __init__(self) -> None:
        self.reported: list[tuple[dt.date, object, BaseException | None]] = []
        self.threads: set[int] = set()

    def __call__(self, day: dt.date, result: object, error: BaseException | None) -> None:
        self.threads.add(threading.get_ident())
        self.reported.append((day, result, error))


def test_concurrency_one_runs_oldest_first_in_the_calling_thread():
    ran_in: set[int] = set()
    recorder = Recorder()

    def work(day: dt.date) -> str:
        ran_in.add(threading.get_ident())
        return day.isoformat()

    run_days(list(reversed(DAYS)), work, 1, recorder)
    assert [day for day, _, _ in recorder.reported] == DAYS
    assert [result for _, result, _ in recorder.reported] == [d.isoformat() for d in DAYS]
    assert ran_in == recorder.threads == {threading.get_ident()}


def test_up_to_n_days_run_at_once_and_never_more():
    lock = threading.Lock()
    running = peak = 0
    first_three = threading.Barrier(3, timeout=WAIT)  # breaks unless 3 days run together
    work_threads: set[int] = set()
    recorder = Recorder()

    def work(day: dt.date) -> dt.date:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            work_threads.add(threading.get_ident())
        try:
            if day in DAYS[:3]:
                first_three.wait()
            return day
        finally:
            with lock:
                running -= 1

    run_days(DAYS, work, 3, recorder)
    assert peak == 3
    assert sorted(day for day, _, _ in recorder.reported) == DAYS
    assert all(error is None and result == day for day, result, error in recorder.reported)
    assert recorder.threads == {threading.get_ident()}  # on_result in the calling thread
    assert threading.get_ident() not in work_threads


def test_each_day_is_reported_as_soon_as_it_is_done():
    slow, fast = DAYS[0], DAYS[1]
    fast_reported = threading.Event()
    recorder = Recorder()

    def on_result(day: dt.date, result: object, error: BaseException | None) -> None:
        recorder(day, result, error)
        if day == fast:
            fast_reported.set()

    def work(day: dt.date) -> bool:
        # The oldest day finishes only once the next day has been reported.
        return fast_reported.wait(WAIT) if day == slow else True

    run_days([slow, fast], work, 2, on_result)
    assert [day for day, _, _ in recorder.reported] == [fast, slow]
    assert recorder.reported[1][1] is True


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_failing_day_fails_alone(concurrency):
    recorder = Recorder()
    broken = DAYS[2]

    def work(day: dt.date) -> dt.date:
        if day == broken:
            raise ValueError(f"day {day} is broken")
        return day

    run_days(DAYS, work, concurrency, recorder)
    outcomes = {day: (result, error) for day, result, error in recorder.reported}
    assert sorted(outcomes) == DAYS
    result, error = outcomes.pop(broken)
    assert result is None and isinstance(error, ValueError) and "broken" in str(error)
    assert all(result == day and error is None for day, (result, error) in outcomes.items())


@pytest.mark.parametrize("concurrency", [1, 2])
@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_a_day_stops_the_run(concurrency, stop):
    started: list[dt.date] = []
    lock = threading.Lock()

    def work(day: dt.date) -> dt.date:
        with lock:
            started.append(day)
        if day == DAYS[1]:
            raise stop()
        return day

    with pytest.raises(stop):
        run_days(DAYS, work, concurrency, Recorder())
    assert len(started) <= concurrency + 2  # no day starts once the interrupt is seen
    assert DAYS[-1] not in started


def test_an_error_in_on_result_propagates():
    def on_result(day: dt.date, result: object, error: BaseException | None) -> None:
        raise RuntimeError("recording failed")

    with pytest.raises(RuntimeError, match="recording failed"):
        run_days(DAYS, lambda day: day, 2, on_result)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="concurrency"):
        run_days(DAYS, lambda day: day, 0, Recorder())
    with pytest.raises(ValueError, match="twice"):
        run_days([DAYS[0], DAYS[0]], lambda day: day, 2, Recorder())


def test_no_days_is_nothing_to_do():
    recorder = Recorder()
    run_days([], lambda day: day, 4, recorder)
    assert recorder.reported == []
