"""Dagster instances for the tests: on disk (so subprocesses and reopened instances see the
same cursors), without telemetry, and with the event log in one SQLite file.

Why one file: Dagster's default SQLite event log opens a new database per run, with its
schema, which makes a run cost about 40% more; the lifetime test runs hundreds of them.
Instances shared by several processes at once keep the default (one database per run
writes with less lock contention).
"""

from __future__ import annotations

from pathlib import Path

QUIET = """\
telemetry:
  enabled: false
compute_logs:
  module: dagster.core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""


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
