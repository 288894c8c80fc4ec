"""Where lake files live, how a day is replaced atomically, and how a day is read back.

One Parquet file per day, `{root}/customergauge/{table}/date=YYYY-MM-DD/data.parquet`,
rewritten whole by every run that changes the day. A new version is written to a
staging file outside the table's folder (so no reader scanning the table ever sees it),
then published in one atomic step: a rename on a local disk, a single PutObject on an
object store (which makes an object visible only once it is complete). Every rewrite of a
day happens under that day's writer lock (`day_lock`, see locks.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cg_assets.lake import staging
from cg_assets.lake.cursor_codec import decode_cursor
from cg_assets.lake.locks import (
    LOCKS_DIR,
    ObjectStoreLease,
    local_day_lock,
    object_store_day_lock,
)
from cg_assets.lake.object_store import S3Store
from cg_assets.settings import SettingsError

NAMESPACE = "customergauge"
DAY_FILE_NAME = "data.parquet"
STAGING_DIR = "_staging"
ROW_GROUP_ROWS = 10_000
COMPRESSION = "zstd"

# Key-value metadata in every file's footer: enough to tell whether the file is the one
# the last materialization describes, and under which settings it was written.
KV_CURSOR = "cg_assets.cursor"  # JSON: the API cursor this file is complete up to
KV_DATE_FIELD = "cg_assets.date_field"
KV_TIMEZONE = "cg_assets.timezone"
KV_DAY = "cg_assets.day"
KV_SCHEMA_VERSION = "cg_assets.schema_version"
KV_SETTLED = "cg_assets.settled"  # fetched whole at least the settle lag after the day
KV_CLOSED = "cg_assets.closed"  # fetched whole after the answer window: final
KV_WHOLE_FETCH_AT = "cg_assets.whole_fetch_at"  # when the last whole fetch began (UTC)
KV_SYNCED_AT = "cg_assets.synced_at"
# The longest wait between whole fetches after the settle, in hours (the window's promise).
KV_LONGEST_GAP_HOURS = "cg_assets.longest_gap_hours"


@dataclass(frozen=True)
class DayFileState:
    """What a day's file says about itself (its footer only; no data is read)."""

    path: str
    rows: int
    cursor: Any
    date_field: str | None
    timezone: str | None
    schema_version: str | None
    settled: bool
    schema: pa.Schema
    closed: bool = False
    # When the newest whole fetch in this file began; None if unknown (a catch-up-only file).
    whole_fetch_at: dt.datetime | None = None
    longest_gap_hours: float | None = None


class ParquetLake:
    def __init__(self, root: str) -> None:
        self.root = root
        if "://" in root:
            self.fs, base = _filesystem_from_uri(root)
            self.is_local = isinstance(self.fs, pafs.LocalFileSystem)
        else:
            self.fs, base = pafs.LocalFileSystem(), os.path.abspath(root)
            self.is_local = True
        self.base = base.rstrip("/")
        self.store = None if self.is_local else S3Store(root)
        # The leases this process holds, checked right before each publish.
        self._leases: dict[tuple[str, dt.date], ObjectStoreLease] = {}
        # Called right before each day file is published (a sync run records which API the
        # lake's data comes from there: defs/run_guards.py); raising keeps the day unpublished.
        self.before_publish: Callable[[], None] | None = None

    # -- paths ----------------------------------------------------------------------

    def table_dir(self, table: str) -> str:
        return f"{self.base}/{NAMESPACE}/{table}"

    def day_dir(self, table: str, day: dt.date) -> str:
        return f"{self.table_dir(table)}/date={day.isoformat()}"

    def day_path(self, table: str, day: dt.date) -> str:
        return f"{self.day_dir(table, day)}/{DAY_FILE_NAME}"

    def display_path(self, table: str, day: dt.date) -> str:
        path = self.day_path(table, day)
        return path if self.is_local else f"{self.root.split('://', 1)[0]}://{path}"

    def _staging_dir(self, table: str) -> str:
        """Where a day's new version is written before it is published: beside the tables
        on a local lake (so the publish is a rename), in this machine's temp folder for an
        object store (one folder per lake, so the next writer of a day finds what a dead one
        left)."""
        if self.is_local:
            return f"{self.base}/{NAMESPACE}/{STAGING_DIR}/{table}"
        lake_id = hashlib.sha256(self.root.encode()).hexdigest()[:16]
        return os.path.join(tempfile.gettempdir(), "cg_assets_staging", lake_id, table)

    # -- checks ---------------------------------------------------------------------

    def ensure_writable(self) -> None:
        """Fail at the start of a run, naming CG_LAKE_ROOT, if files cannot be written."""
        if not self.is_local:
            self._ensure_bucket()
            return  # the store answers for write permission on the first upload
        probe_dir = f"{self.base}/{NAMESPACE}/{STAGING_DIR}"
        try:
            os.makedirs(probe_dir, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".probe-"):
                pass
        except OSError as exc:
            raise SettingsError(
                f"CG_LAKE_ROOT={self.root!r} is not writable ({exc.strerror or exc}): expected a "
                "folder this process may create files in, or a filesystem URI such as s3://bucket/prefix."
            ) from None

    def _ensure_bucket(self) -> None:
        bucket = self.base.split("/", 1)[0]
        try:
            found = self.fs.get_file_info(bucket).type != pafs.FileType.NotFound
        except OSError as exc:
            raise SettingsError(
                f"CG_LAKE_ROOT={self.root!r}: the object store did not answer for bucket "
                f"{bucket!r} ({exc}). Check the credentials (AWS_ACCESS_KEY_ID, a role, ...) and, "
                "for an S3-compatible store, AWS_ENDPOINT_URL."
            ) from None
        if not found:
            raise SettingsError(
                f"CG_LAKE_ROOT={self.root!r}: bucket {bucket!r} does not exist (or these credentials "
                "cannot see it): create it first; cg_assets never creates buckets."
            )

    # -- one writer per table day -----------------------------------------------------

    @contextlib.contextmanager
    def day_lock(self, table: str, day: dt.date, holder: str) -> Iterator[None]:
        """Hold the day's writer lock (locks.py) for a rewrite of the day: read, merge,
        publish. Raises DayLockBusyError, naming the holder, if another live writer has it."""
        lock_path = f"{self.base}/{NAMESPACE}/{LOCKS_DIR}/{table}/date={day.isoformat()}"
        if self.store is None:
            with local_day_lock(lock_path + ".lock", table, day, holder):
                self._clear_stale_staging(table, day)
                yield
            return
        key = self.store.key_of(lock_path + ".lease")
        with object_store_day_lock(self.store, key, table, day, holder) as lease:
            # The version of the day this holder may replace: its publish is conditional on
            # it, so a writer that lost the lease while stalled cannot overwrite a newer day.
            lease.day_version = self.store.head_etag(self.store.key_of(self.day_path(table, day)))
            self._leases[(table, day)] = lease
            try:
                self._clear_stale_staging(table, day)
                yield
            finally:
                self._leases.pop((table, day), None)

    def _clear_stale_staging(self, table: str, day: dt.date) -> None:
        """Staging files of this day left by a writer that died; a live writer's (one whose
        lease was taken over while it stalled) keeps its flock, and its file (staging.py)."""
        pattern = os.path.join(self._staging_dir(table), f"{day.isoformat()}.*.parquet.tmp")
        staging.clear_abandoned(pattern)

    # -- reading --------------------------------------------------------------------

    def day_state(self, table: str, day: dt.date) -> DayFileState | None:
        path = self.day_path(table, day)
        try:
            with self.fs.open_input_file(path) as handle:
                meta = pq.read_metadata(handle)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid):
            return None  # unreadable: treated as missing, so the day is fetched again in full
        kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
        cursor_text = kv.get(KV_CURSOR)
        return DayFileState(
            path=path,
            rows=meta.num_rows,
            cursor=decode_cursor(cursor_text) if cursor_text else None,
            date_field=kv.get(KV_DATE_FIELD),
            timezone=kv.get(KV_TIMEZONE),
            schema_version=kv.get(KV_SCHEMA_VERSION),
            settled=kv.get(KV_SETTLED) == "true",
            schema=meta.schema.to_arrow_schema(),
            closed=kv.get(KV_CLOSED) == "true",
            whole_fetch_at=_whole_fetch_at(kv),
            longest_gap_hours=_float_or_none(kv.get(KV_LONGEST_GAP_HOURS)),
        )

    def open_day(self, table: str, day: dt.date) -> pq.ParquetFile | None:
        try:
            return pq.ParquetFile(self.fs.open_input_file(self.day_path(table, day)))
        except FileNotFoundError:
            return None

    def read_day(
        self, table: str, day: dt.date, columns: list[str] | None = None
    ) -> pa.Table | None:
        parquet_file = self.open_day(table, day)
        if parquet_file is None:
            return None
        with parquet_file:
            return parquet_file.read(columns=columns)

    def days(self, table: str) -> list[dt.date]:
        """The days that have a file, oldest first."""
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        out = []
        for info in self.fs.get_file_info(selector):
            name = info.base_name
            if info.type == pafs.FileType.Directory and name.startswith("date="):
                out.append(dt.date.fromisoformat(name.removeprefix("date=")))
        return sorted(out)

    # -- writing --------------------------------------------------------------------

    def put_small_file(self, path: str, data: bytes) -> None:
        """Publish `data` at `path` atomically: a rename on a local disk, one PutObject on an
        object store (never a pyarrow output stream, which publishes whatever it holds)."""
        if self.is_local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            fd, staged = tempfile.mkstemp(dir=folder, prefix=".staged-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(staged, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staged)
                raise
            return
        assert self.store is not None
        fd, staged = tempfile.mkstemp(prefix="cg-small-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self.store.put_file(self.store.key_of(path), staged)
        finally:
            os.unlink(staged)

    def day_writer(self, table: str, day: dt.date, schema: pa.Schema) -> DayWriter:
        return DayWriter(self, table, day, schema)


class DayWriter:
    """Streams a day's new version into a staging file; `commit` publishes it atomically.

    Leaving the `with` block without `commit` (an error, a crash) discards the staging
    file, and the day's previous file stays as it was.
    """

    def __init__(self, lake: ParquetLake, table: str, day: dt.date, schema: pa.Schema) -> None:
        self._lake = lake
        self._table, self._day = table, day
        self._final = lake.day_path(table, day)
        self.schema = schema
        staging_dir = lake._staging_dir(table)
        os.makedirs(staging_dir, exist_ok=True)
        self._staged = os.path.join(
            staging_dir, f"{day.isoformat()}.{uuid.uuid4().hex}.parquet.tmp"
        )
        self._owned: int | None = staging.create_owned(self._staged)  # until published
        self._handle: IO[bytes] = open(self._staged, "wb")
        self._writer = pq.ParquetWriter(self._handle, schema, compression=COMPRESSION)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0
        self.bytes_written = 0
        self._done = False

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            if batch.num_rows:
                self._pending.append(batch)
                self._pending_rows += batch.num_rows
                self.rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def flush(self) -> None:
        """Write the rows buffered so far as a row group now, rather than at the next
        ROW_GROUP_ROWS or at commit (the sync calls it when a day's rows have most likely
        all arrived, so the encoding overlaps the wait for the closing page)."""
        self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self._pending, self._pending_rows = [], 0

    def commit(self, metadata: Mapping[str, str]) -> None:
        self._flush()
        self._writer.add_key_value_metadata(dict(metadata))
        self._writer.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self.bytes_written = os.path.getsize(self._staged)
        try:
            if self._lake.before_publish is not None:
                self._lake.before_publish()
            self._publish()
        finally:
            staging.release(self._owned)
            self._owned = None
        self._done = True

    def _publish(self) -> None:
        lake = self._lake
        if lake.is_local:
            lake.fs.create_dir(self._final.rsplit("/", 1)[0], recursive=True)
            os.replace(self._staged, self._final)  # atomic on POSIX: readers see old or new
            _fsync_dir(os.path.dirname(self._final))
            return
        lease = lake._leases.get((self._table, self._day))
        try:
            # No "directories" are created on an object store: a reader listing the table
            # sees day files only.
            assert lake.store is not None
            key = lake.store.key_of(self._final)
            if lease is None:
                lake.store.put_file(key, self._staged)
                return
            lease.check()  # never publish over a day another writer may own by now
            # Fenced: only over the version seen when the lease was taken (locks.py).
            lease.day_version = lake.store.put_file_fenced(key, self._staged, lease.day_version)
            if lease.day_version is None:
                lease.lost(
                    "another writer published the day after this one's lease ran out (this "
                    "upload came too late and was refused)"
                )
                lease.check()
        finally:
            os.unlink(self._staged)
            staging.release(self._owned)
            self._owned = None

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._writer.close()
        except Exception:
            pass
        self._handle.close()
        try:
            os.unlink(self._staged)
        except FileNotFoundError:
            pass
        staging.release(self._owned)
        self._owned = None

    def __enter__(self) -> DayWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


# Object stores on which a day is replaced atomically (one PutObject) and a writer lease
# can be taken (conditional PUTs). Google Cloud Storage speaks this API too (its XML API
# with HMAC keys: s3://bucket?endpoint_override=storage.googleapis.com). pyarrow's Azure
# and GCS streams publish whatever they hold when closed, so abfs:// and gs:// are refused
# rather than silently unsafe.
OBJECT_STORES = ("s3",)


def _filesystem_from_uri(root: str) -> tuple[pafs.FileSystem, str]:
    """CG_LAKE_ROOT as a URI: file:// or s3://bucket/prefix.

    S3 takes the usual AWS settings from the environment (AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, a role, AWS_REGION) and
    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible store (MinIO, ...); URI
    query options such as ?endpoint_override=host:port&scheme=http&region=... win over them.
    """
    try:
        fs, base = pafs.FileSystem.from_uri(root)
    except (ValueError, OSError) as exc:  # pa.ArrowInvalid is a ValueError
        raise SettingsError(
            f"CG_LAKE_ROOT={root!r} cannot be opened ({exc}): expected a local folder, "
            "s3://bucket/prefix."
        ) from None
    kind = fs.type_name
    if kind != "local" and kind not in OBJECT_STORES:
        raise SettingsError(
            f"CG_LAKE_ROOT={root!r} is a {kind!r} filesystem, on which a day file cannot be "
            "replaced atomically: expected a local folder (or a mounted volume) or "
            "s3://bucket/prefix (AWS S3, or an S3-compatible store such as MinIO, or Google "
            "Cloud Storage through its S3 API with ?endpoint_override=storage.googleapis.com)."
        )
    return fs, base


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_table_batches(
    parquet_file: pq.ParquetFile, batch_rows: int = 10_000
) -> Iterator[pa.RecordBatch]:
    yield from parquet_file.iter_batches(batch_size=batch_rows)


def _whole_fetch_at(kv: dict[str, str]) -> dt.datetime | None:
    text = kv.get(KV_WHOLE_FETCH_AT)
    # Files written before the answer window: a settled file was always one whole fetch,
    # written when it was synced.
    if text is None and kv.get(KV_SETTLED) == "true":
        text = kv.get(KV_SYNCED_AT)
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
