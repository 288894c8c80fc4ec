"""Dagster instances for the tests: on disk (so subprocesses and reopened instances see the
same cursors), without telemetry, and with the event log in one SQLite file.

Why one file: Dagster's default SQLite event log opens a new database per run, with its
schema, which makes a run cost about 40% more; the lifetime test runs hundreds of them.
Instances shared by several processes at once keep the default (one database per run
writes with less lock contention).

Why pooled connections: Dagster's SQLite storages build a new SQLAlchemy engine and open a
new SQLite connection for every statement batch (NullPool), which is safe for any number
of processes but costs about 1 ms each, and a run makes hundreds: in the lifetime test
83,000 engines took a fifth of the time. The in-process instances of the tests reuse one
engine per database with a connection pool instead. The files, schema and SQL are Dagster's
own; a subprocess (the CLI, a crash worker) opening the same home reads them with Dagster's
stock storages, since its dagster.yaml names only stock classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

QUIET = """\
telemetry:
  enabled: false
compute_logs:
  module: dagster.core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""

# Dagster's own busy timeout for its SQLite files: concurrent writers wait, not fail.
BUSY_TIMEOUT_SECONDS = 30


def consolidated(home: Path) -> str:
    return QUIET + (
        "event_log_storage:\n"
        "  module: dagster.core.storage.event_log\n"
        "  class: ConsolidatedSqliteEventLogStorage\n"
        "  config:\n"
        f"    base_dir: {home / 'history'}\n"
    )


def write_dagster_yaml(home: Path, *, one_event_log: bool = False) -> Path:
    """`home/dagster.yaml` for a test instance; returns `home`."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(consolidated(home) if one_event_log else QUIET)
    return home


class _PooledEngine:
    """One engine per storage object, created on first use and closed with the instance."""

    _conn_string: str
    _pooled: Engine | None = None

    @contextmanager
    def _pooled_connection(self) -> Iterator[Connection]:
        if self._pooled is None:
            self._pooled = create_engine(
                self._conn_string, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}
            )
        with self._pooled.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        if self._pooled is not None:
            self._pooled.dispose()
            self._pooled = None


class _PooledLocalStorage(_PooledEngine):
    """Dagster's run and schedule storages: `from_config_value` would build the stock class."""

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> Any:
        return cls.from_local(inst_data=inst_data, **config_value)  # type: ignore[attr-defined]

    def connect(self) -> Any:
        return self._pooled_connection()


class PooledSqliteRunStorage(_PooledLocalStorage, SqliteRunStorage):
    pass


class PooledSqliteScheduleStorage(_PooledLocalStorage, SqliteScheduleStorage):
    pass


class PooledConsolidatedEventLogStorage(_PooledEngine, ConsolidatedSqliteEventLogStorage):
    def _connect(self) -> Any:
        return self._pooled_connection()

    def has_table(self, table_name: str) -> bool:  # asked before every event it stores
        with self._pooled_connection() as conn:
            return bool(conn.dialect.has_table(conn, table_name))


def _storage(name: str, folder: Path) -> dict[str, Any]:
    return {"module": __name__, "class": name, "config": {"base_dir": str(folder)}}


def pooled_overrides(home: Path) -> dict[str, Any]:
    """Instance config for an in-process instance on `home`: the files of Dagster's own
    SQLite storages (those of `consolidated(home)` for the event log), pooled connections."""
    return {
        "telemetry": {"enabled": False},
        "run_storage": _storage("PooledSqliteRunStorage", home / "history"),
        "event_log_storage": _storage("PooledConsolidatedEventLogStorage", home / "history"),
        "schedule_storage": _storage("PooledSqliteScheduleStorage", home / "schedules"),
    }


def open_instance(home: Path) -> DagsterInstance:
    """The instance of `home` (written by `write_dagster_yaml(one_event_log=True)`) for this
    process, with pooled connections. Use it as a context manager."""
    return DagsterInstance.from_ref(
        InstanceRef.from_dir(str(home), overrides=pooled_overrides(home))
    )
