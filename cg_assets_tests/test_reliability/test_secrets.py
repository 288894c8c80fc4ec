"""The client secret and the tokens never appear in anything a run leaves behind.

Runs go through the shipped resource wiring (secrets as EnvVar) on a real SQLite instance
in a temporary DAGSTER_HOME: runs that succeed, and runs that fail in every way that
builds an error message (401s, retries exhausted, an HTML page, revoked credentials, a
broken record, a wrong secret, a token endpoint whose error page echoes the secret).
Then everything is searched: every file under DAGSTER_HOME and the lake (raw bytes), every
value of every SQLite table (zlib-compressed snapshots decompressed), every Parquet file's
rows and footer, each run's config and tags, each event of the event log, the process's
stdout/stderr and Python logging.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sqlite3
import zlib
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from dagster import instance_for_test, serialize_value

from cg_assets.components.project import project_component
from cg_assets.settings import LoadSettings
from cg_assets_tests.test_reliability.helpers import run_asset
from cg_simulator import DEMO_CLIENT_ID, SimulatorControl, running_simulator
from cg_simulator import server as simulator_server

SECRET = "cgsecret-7f1c9e2a4b6d8f00-never-print-me"
WRONG_SECRET = "cgsecret-not-the-right-one-5e5e5e5e"
FIRST = dt.date(2026, 10, 1)
LAST = FIRST + dt.timedelta(days=2)
YOUNG = LoadSettings(start_date=FIRST, settle_after_hours=8784)
OLD = LoadSettings(start_date=FIRST, settle_after_hours=0, answer_window_days=366)
MAX_RETRIES = 1


def sqlite_text(path: Path) -> list[str]:
    """Every value of every table, as text; compressed blobs (Dagster's snapshots) unpacked."""
    out = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        out.append(value.decode("utf-8", "replace"))
                        try:
                            out.append(zlib.decompress(value).decode("utf-8", "replace"))
                        except zlib.error:
                            pass
                    elif value is not None:
                        out.append(str(value))
                        if isinstance(value, str) and value.isascii() and len(value) > 16:
                            try:  # some columns hold compressed text encoded as hex
                                out.append(zlib.decompress(bytes.fromhex(value)).decode())
                            except (ValueError, zlib.error):
                                pass
    return out


def everything(root: Path, instance, run_ids: list[str]) -> str:
    parts: list[str] = []
    databases = 0
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            parts.append(path.read_bytes().decode("utf-8", "replace"))
            if name.endswith(".db"):
                parts.extend(sqlite_text(path))
                databases += 1
            if name.endswith(".parquet"):
                parquet_file = pq.ParquetFile(path)
                parts.append(str(parquet_file.metadata.metadata))
                parts.append(str(parquet_file.read().to_pylist()))
    assert databases >= 2, "the instance's SQLite storage was not found"
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        parts.append(serialize_value(run))
        parts.append(str(run.run_config) + str(run.tags))
        for entry in instance.all_logs(run_id):
            parts.append(serialize_value(entry))
    return "\n".join(parts)


def test_no_secret_or_token_in_anything_a_run_leaves_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    tokens: list[str] = []
    real_token_hex = simulator_server.secrets.token_hex

    def token_hex(nbytes: int) -> str:
        token = real_token_hex(nbytes)
        tokens.append(token)
        return token

    monkeypatch.setattr(simulator_server, "secrets", SimpleNamespace(token_hex=token_hex))
    lake_root = tmp_path / "lake"
    home = tmp_path / "dagster_home"
    home.mkdir()
    with (
        running_simulator(records=240, start=FIRST, end=LAST, seed=5, client_secret=SECRET) as sim,
        SimulatorControl(sim.url) as control,
        instance_for_test(temp_dir=str(home)) as instance,
    ):
        for name, value in {
            "CG_CLIENT_ID": DEMO_CLIENT_ID,
            "CG_CLIENT_SECRET": SECRET,
            "CG_API_URL": sim.url,
            "CG_AUTH_URL": sim.token_url,
            "CG_PER_PAGE": "20",
            "CG_HTTP_TIMEOUT": "2,2",
            "CG_MAX_RETRIES": str(MAX_RETRIES),
            "CG_BACKOFF_SECONDS": "0.001",
            "CG_LAKE_ROOT": str(lake_root),
        }.items():
            monkeypatch.setenv(name, value)
        # the shipped wiring: the project's defs.yaml, its secrets through EnvVar
        resources = project_component().resources()
        attempts = f"failed after {MAX_RETRIES + 1} attempt(s)"
        scenarios = [
            ("a range, all good", [], None, YOUNG, None),
            ("a token rejected twice", [{"kind": "unauthorized", "times": 2}], None, YOUNG, "401"),
            (
                "5xx to the end",
                [{"kind": "status", "code": 503, "times": 9}],
                None,
                YOUNG,
                attempts,
            ),
            ("an HTML page", [{"kind": "html", "times": 9}], None, YOUNG, "not JSON"),
            (
                "a token endpoint echoing the secret",
                [
                    {
                        "kind": "status",
                        "code": 500,
                        "target": "token",
                        "times": 9,
                        "body": f"<html>bad request: client_secret={SECRET}</html>",
                    }
                ],
                None,
                YOUNG,
                attempts,
            ),
            ("a broken record", [{"kind": "bad_date"}], None, OLD, "31/02/2026 25:00"),
            (
                "revoked credentials",
                [],
                {"revoked": True},
                YOUNG,
                "rejected the client credentials",
            ),
        ]
        run_ids = []
        for what, faults, config, settings, expected in scenarios:
            control.clear_faults()
            control.configure(revoked=False)
            if faults:
                control.inject(*faults)
            if config:
                control.configure(**config)
            control.add_records(FIRST, 3)
            result = run_asset(instance, resources, settings, FIRST, LAST)
            run_ids.append(result.run_id)
            if expected is None:
                assert result.success, what
            else:
                assert not result.success, what
                message = result.failure_data_for_node("customergauge__non_responses").error
                assert expected in str(message), f"{what}: {message}"
        control.clear_faults()
        control.configure(revoked=False)
        monkeypatch.setenv("CG_CLIENT_SECRET", WRONG_SECRET)
        result = run_asset(instance, resources, YOUNG, FIRST, LAST)
        assert not result.success
        run_ids.append(result.run_id)
        monkeypatch.setenv("CG_CLIENT_SECRET", SECRET)
        control.fail_records(day=FIRST, count=4)
        assert run_asset(instance, resources, OLD, FIRST, LAST).success  # a settle
        corpus = everything(tmp_path, instance, run_ids)

    captured = capfd.readouterr()
    corpus += captured.out + captured.err + caplog.text
    # The search did reach what it had to: the runs' error messages, and the job snapshot
    # (stored zlib-compressed), whose resource config names the secret's variable only.
    assert attempts in corpus and "31/02/2026 25:00" in corpus
    assert re.search(r"client_secret\W+env\W+CG_CLIENT_SECRET", corpus)
    assert len(tokens) >= 5
    for secret in (SECRET, WRONG_SECRET, *tokens):
        assert secret not in corpus, "a secret or a token was written down"
