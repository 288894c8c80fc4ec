"""Run the days of one run side by side: up to `concurrency` at a time, each reported to
the caller as soon as it is done. No Dagster here: the asset passes the work of one day
(plan + sync) and records each day's materialization from `on_result`.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

R = TypeVar("R")

# What a worker thread hands back: the day, its result or the exception it raised.
_Outcome = tuple[dt.date, object, BaseException | None]


def run_days(
    days: Sequence[dt.date],
    work: Callable[[dt.date], R],
    concurrency: int,
    on_result: Callable[[dt.date, R | None, BaseException | None], None],
) -> None:
    """Call `work(day)` for every day, up to `concurrency` days at once, oldest day first.

    - `on_result(day, result, None)` or `on_result(day, None, exc)` runs in the calling
      thread as soon as that day is done, so the caller can record it at once (Dagster's
      context is not for worker threads). Days finish, and are reported, in any order when
      `concurrency` > 1.
    - A day that raises an `Exception` fails alone: it is reported and the others go on.
    - `KeyboardInterrupt`, `SystemExit` and any other `BaseException` from a day, and
      anything `on_result` raises or that interrupts the wait, propagate at once, and no
      further day starts. Days
      already running are not waited for (threads cannot be stopped): each publishes its
      file atomically or not at all, and a published file whose day was not recorded is
      adopted by the next run (see `sync.plan_day`).
    - Memory is bounded: never more than `concurrency` days run at once; a finished
      day's result is held only until it is reported.
    - With `concurrency` 1 the days run in the calling thread, one after the other.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, got {concurrency}")
    ordered = sorted(days)
    if len(set(ordered)) != len(ordered):
        # Two streams writing one day's file at once would race for it.
        raise ValueError("a day appears twice in the days to run")
    if concurrency == 1:
        for day in ordered:
            try:
                result = work(day)
            except Exception as exc:
                on_result(day, None, exc)
            else:
                on_result(day, result, None)
        return
    _run_threaded(ordered, work, concurrency, on_result)


def _run_threaded(
    days: list[dt.date],
    work: Callable[[dt.date], R],
    concurrency: int,
    on_result: Callable[[dt.date, R | None, BaseException | None], None],
) -> None:
    finished: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()

    def run_one(day: dt.date) -> None:
        try:
            finished.put((day, work(day), None))
        except BaseException as exc:  # handed to the calling thread, which decides
            finished.put((day, None, exc))

    pending = iter(days)
    running = 0

    def start_next() -> None:
        nonlocal running
        day = next(pending, None)
        if day is None:
            return
        # Daemon: a run that is interrupted does not wait for its running days (see above).
        threading.Thread(
            target=run_one, args=(day,), name=f"cg-day-{day.isoformat()}", daemon=True
        ).start()
        running += 1

    for _ in range(concurrency):
        start_next()
    while running:
        day, result, error = finished.get()
        running -= 1
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit, ...: stop the run
        start_next()  # before reporting, so the slot is not idle while the caller records
        on_result(day, result, error)  # type: ignore[arg-type]
