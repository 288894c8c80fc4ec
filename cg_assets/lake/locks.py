"""One writer per table day, enforced where the data lives.

A day file is rewritten whole (read the old version, merge, publish the new one), so two
writers of one day would lose the rows of whichever published first. Run-queue limits in
`dagster.yaml` cannot promise this alone: `dagster asset materialize` bypasses the queue,
and a second deployment pointed at the same lake has its own queue. So every rewrite of
a day holds that day's lock, kept beside the data:

- local lake: an exclusive `flock` on `_locks/{table}/date=YYYY-MM-DD.lock`. The kernel
  releases it when the holder's process dies, however it dies (SIGKILL, OOM), so a dead
  writer never blocks the next run.
- object store: a lease object created with a conditional PUT (`If-None-Match: *`), renewed
  by its holder every LEASE_RENEW_SECONDS with `If-Match` on its own ETag. A holder that
  died stops renewing; its lease expires LEASE_SECONDS after its last renewal, and the next
  writer takes it over with `If-Match` on the expired lease's ETag (so two writers cannot
  both take over the same lease).
  A lease alone cannot stop a holder that stalled (a frozen VM, a long pause) after its
  last check and before its upload reached the store. So the publish is fenced too: the
  holder notes the day object's ETag when it takes the lease, and uploads with `If-Match`
  on it (`If-None-Match: *` when there was no day yet). Once a later holder has published,
  the stalled upload is refused, and LeaseLostError says nothing was published.

A day whose lock is held fails at once, naming the holder: the other days of the run go
on, and the schedule or the settle sensor asks for the day again later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cg_assets.lake.object_store import S3Store

LOCKS_DIR = "_locks"
# An object-store lease outlives a silent holder by at most this long; a live holder renews
# it well before (a day's sync can take longer than a lease: renewal, not the lifetime,
# covers that).
LEASE_SECONDS = 300
LEASE_RENEW_SECONDS = 60
# A publish starts only while the lease has at least this long to live, so the upload ends
# well before anyone may take the lease over.
PUBLISH_MARGIN_SECONDS = 120


class DayLockBusyError(RuntimeError):
    """Another live writer holds the day; the message names it."""


class LeaseLostError(RuntimeError):
    """This writer's lease expired or was taken over before it published: nothing was
    published, so no rows are lost; the day is synced again by a later run."""


def describe_holder(run: str) -> dict[str, Any]:
    return {
        "holder": run,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _busy_message(table: str, day: dt.date, info: dict[str, Any] | None) -> str:
    if info:
        who = (
            f"{info.get('holder', 'another writer')} (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {info.get('since', '?')})"
        )
    else:
        who = "another writer"
    return (
        f"{table} {day.isoformat()} is being written by {who}. One writer per table day: this "
        "day was left unchanged and will be synced again by a later run (the schedule or the "
        "settle sensor), or re-run it once that writer has finished."
    )


@contextlib.contextmanager
def local_day_lock(lock_path: str, table: str, day: dt.date, holder: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DayLockBusyError(_busy_message(table, day, _read_info(fd))) from None
        # The file stays (deleting a flock file races with a writer opening it); only its
        # content, who holds it now, changes.
        info = json.dumps(describe_holder(holder)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _read_info(fd: int) -> dict[str, Any] | None:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None


class ObjectStoreLease:
    """A lease on one table day in an object store (see the module docstring)."""

    def __init__(self, store: S3Store, key: str, table: str, day: dt.date, holder: str) -> None:
        self._store, self._key = store, key
        self._table, self._day, self._holder = table, day, holder
        self._etag: str | None = None
        self._lost: str | None = None
        # The ETag of the day object when the lease was taken (None: there was none), then
        # of each version this holder published: its next publish replaces only that one.
        self.day_version: str | None = None
        self._renewed_at = 0.0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._lock = threading.Lock()

    def _body(self) -> bytes:
        info = describe_holder(self._holder)
        info["expires_at"] = time.time() + LEASE_SECONDS
        return json.dumps(info).encode()

    def acquire(self) -> None:
        etag = self._store.put_if_absent(self._key, self._body())
        if etag is None:
            current = self._store.get_with_etag(self._key)
            if current is None:  # released in between: try once more
                etag = self._store.put_if_absent(self._key, self._body())
            else:
                body, current_etag = current
                info = _parse(body)
                if info is not None and float(info.get("expires_at", 0)) > time.time():
                    raise DayLockBusyError(_busy_message(self._table, self._day, info))
                # Expired (its holder died): take it over, unless someone else just did.
                etag = self._store.put_if_match(self._key, self._body(), current_etag)
            if etag is None:
                latest = self._store.get_with_etag(self._key)
                raise DayLockBusyError(
                    _busy_message(self._table, self._day, _parse(latest[0]) if latest else None)
                )
        self._etag = etag
        self._renewed_at = time.monotonic()
        self._renewer = threading.Thread(target=self._renew_loop, name="cg-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(LEASE_RENEW_SECONDS):
            with self._lock:
                try:
                    etag = self._store.put_if_match(self._key, self._body(), self._etag or "")
                except OSError:
                    continue  # the store did not answer: try again next round (see check)
                if etag is None:
                    self._lost = "the lease was taken over by another writer"
                    return
                self._etag = etag
                self._renewed_at = time.monotonic()

    def lost(self, reason: str) -> None:
        with self._lock:
            self._lost = self._lost or reason

    def check(self) -> None:
        """Raise unless this writer still holds the lease (called right before publishing)."""
        if (
            not self._lost
            and time.monotonic() - self._renewed_at > LEASE_SECONDS - PUBLISH_MARGIN_SECONDS
        ):
            self._lost = (
                f"the lease was not renewed for over {LEASE_SECONDS} s and may have expired"
            )
        if self._lost:
            raise LeaseLostError(
                f"{self._table} {self._day.isoformat()}: {self._lost}; nothing was published."
            )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
        with self._lock:
            if self._lost or self._etag is None:
                return
            # Best effort: the day's work is done (or has already failed for its own
            # reason); a lease that cannot be deleted expires LEASE_SECONDS after its last
            # renewal, so an S3 error here must not fail the day.
            with contextlib.suppress(OSError):
                current = self._store.get_with_etag(self._key)
                if current is not None and current[1] == self._etag:
                    self._store.delete(self._key)


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@contextlib.contextmanager
def object_store_day_lock(
    store: S3Store, key: str, table: str, day: dt.date, holder: str
) -> Iterator[ObjectStoreLease]:
    lease = ObjectStoreLease(store, key, table, day, holder)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()
