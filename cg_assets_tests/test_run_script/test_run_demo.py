"""`make run` through its script (scripts/run-demo), as a user starts it.

- A bad load-time setting, or half of the credentials, stops it at once: a short message
  naming the variable, no traceback, nothing started or created.
- The demo starts in its own instance and lake, syncs today and yesterday first, shows no
  community pop-up, and SIGTERM or SIGINT to the script stops every process it started
  (simulator, webserver, daemon, code server, run workers).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from dagster import AssetRecordsFilter, DagsterInstance, RunsFilter

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.assets import asset_key_for
from cg_assets.defs.automation import AUTOMATION_TAG, DAYS_SEPARATOR, DAYS_TAG
from cg_assets_tests.test_e2e.stack import (
    clean_env,
    free_port,
    graphql,
    group_members,
    processes_with_env,
)

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run-demo"
BAD_SETTING_TIMEOUT = 60.0  # bounds the wait only: the check itself takes about a second
START_TIMEOUT = 240.0
# The script stops its groups one after the other, each within CG_STOP_SECONDS (30 here)
# before it kills it: the worst case is a little over 3 x 30 s.
STOP_TIMEOUT = 120.0


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT)],
        cwd=ROOT,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BAD_SETTING_TIMEOUT,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CG_TIMEZONE": "Mars/Olympus"}, "CG_TIMEZONE='Mars/Olympus' is invalid"),
        ({"CG_START_DATE": "2999-01-01"}, "CG_START_DATE"),
        ({"CG_CLIENT_ID": "some-id"}, "CG_CLIENT_ID is set but CG_CLIENT_SECRET is not"),
        ({"CG_CLIENT_SECRET": "some-secret"}, "CG_CLIENT_SECRET is set but CG_CLIENT_ID is not"),
        ({"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "secret"}, "CG_REGION is not set"),
        # Settings that used to be accepted and then mislead (issue 22), in the demo too.
        ({"CG_EXTRA_PARAMS": "period[field]=date_order"}, "CG_EXTRA_PARAMS sets 'period[field]'"),
        ({"CG_LAKE_ROOT": " /tmp/cg-lake"}, "CG_LAKE_ROOT contains white space"),
        ({"CG_LAKE_ROOT": "~/cg-lake"}, "CG_LAKE_ROOT='~/cg-lake' contains `~`"),
        ({"CG_HTTP_TIMEOUT": "inf"}, "CG_HTTP_TIMEOUT='inf' is invalid"),
        ({"CG_MAX_REQUESTS_PER_SECOND": "1e-300"}, "CG_MAX_REQUESTS_PER_SECOND='1e-300'"),
        ({"CG_PII_CLEAR_SEGMENTS": "Country,,Division"}, "CG_PII_CLEAR_SEGMENTS"),
        # Settings a run reads at its start: accepted before issue 19, then every run failed.
        ({"CG_PII_MODE": "hush"}, "CG_PII_MODE='hush' is invalid"),
        ({"CG_PII_MODE": "hash"}, "CG_PII_KEY is not set"),
        ({"CG_PII_MODE": "hash", "CG_PII_KEY": "some-secret"}, "CG_PII_KEY is too short"),
        ({"CG_LAKE_ROOT": "/proc/cg-lake"}, "CG_LAKE_ROOT='/proc/cg-lake' is not writable"),
        ({"CG_LAKE_ROOT": "gs://bucket/lake"}, "gs:// is not supported"),
    ],
)
def test_a_bad_setting_stops_make_run_before_anything_starts(tmp_path, env, named):
    home = tmp_path / "home"
    port = free_port()
    done = run_script(
        {**env, "DAGSTER_HOME": str(home), "CG_SIMULATOR_PORT": str(port), "DAGSTER_PORT": "1"}
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert named in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 4
    assert "DEMO MODE" not in done.stdout  # the half-set credentials did not become the demo
    assert not home.exists()  # no instance folder, no simulator journal: nothing started
    assert "some-secret" not in done.stderr and "some-id" not in done.stderr


RESET_SIGNALS_AND_EXEC = (
    "import os, signal, sys\n"
    "for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(number, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@contextmanager
def running_demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, dict[str, str], Path]]:
    """scripts/run-demo in its own session (so the test can always clean up), on free ports,
    with a temporary instance and lake; its output goes to a log file."""
    settings = {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "CG_LAKE_ROOT": str(tmp_path / "lake"),
        "CG_SIMULATOR_PORT": str(free_port()),
        "DAGSTER_PORT": str(free_port()),
        "CG_DEMO_RECORDS": "300",
        "CG_STOP_SECONDS": "30",
        # Dagster's own knob (default 30 s): the freshness test needs one evaluation after
        # the first sync, not a wait for the next half-minute.
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "3",
    }
    log = tmp_path / "run-demo.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            # With SIGINT and SIGTERM at their defaults, as from a terminal: a signal ignored
            # when bash starts cannot be trapped, and the pytest worker may have inherited
            # or set them ignored (in the full suite the stop tests then waited for ever).
            [sys.executable, "-c", RESET_SIGNALS_AND_EXEC, str(SCRIPT)],
            cwd=ROOT,
            env=clean_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield popen, settings, log
    finally:
        if popen.poll() is None:  # the test failed before stopping it: clean up hard
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=30)
        for pid_line in processes_with_env("DAGSTER_HOME", settings["DAGSTER_HOME"]):
            pid = int(pid_line.split()[1])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for_ui(url: str, popen: subprocess.Popen, log: Path) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert popen.poll() is None, f"run-demo exited early:\n{tail(log)}"
        try:
            entries = graphql(url, query)["workspaceOrError"]["locationEntries"]
            if any(e["name"] == "cg_assets" and e["loadStatus"] == "LOADED" for e in entries):
                return
        except (requests.RequestException, RuntimeError, KeyError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"the UI did not load the code location:\n{tail(log)}")


def own_lines(log: Path) -> str:
    """The script's own messages (a stop under way, a group killed), wherever they are."""
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in text if line.startswith("run-demo:")) or "(none)"


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop_and_assert_clean(
    popen: subprocess.Popen, settings: dict[str, str], log: Path, signum: int
) -> None:
    popen.send_signal(signum)  # to the script only, as `kill PID` or Ctrl-C in its terminal
    assert_stopped_clean(popen, settings, log, repr(signum))


def assert_stopped_clean(
    popen: subprocess.Popen, settings: dict[str, str], log: Path, signum: str
) -> None:
    try:
        popen.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"run-demo did not exit on {signum!r}:\n{own_lines(log)}\n{tail(log)}"
        ) from None
    deadline = time.monotonic() + 10.0
    left = processes_with_env("DAGSTER_HOME", settings["DAGSTER_HOME"])
    while left and time.monotonic() < deadline:  # orphans being reaped by init
        time.sleep(0.2)
        left = processes_with_env("DAGSTER_HOME", settings["DAGSTER_HOME"])
    assert not left, f"left running after {signum!r}: {left}\n{tail(log)}"
    assert not group_members(popen.pid)


def synced_days(instance: DagsterInstance) -> dict[str, float]:
    key = asset_key_for(NON_RESPONSES)
    out = {}
    for record in instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key), limit=100
    ).records:
        partition = record.event_log_entry.dagster_event.partition
        out.setdefault(partition, record.timestamp)
    return out


FRESHNESS_QUERY = """
{ assetNodes(assetKeys: [{path: ["customergauge", "non_responses"]}]) {
    freshnessStatusInfo { freshnessStatus } } }
"""


def freshness(url: str) -> str | None:
    (node,) = graphql(url, FRESHNESS_QUERY)["assetNodes"]
    info = node["freshnessStatusInfo"]
    return info["freshnessStatus"] if info else None


@pytest.mark.e2e
def test_the_demo_syncs_today_first_and_sigterm_stops_everything(tmp_path):
    with running_demo(tmp_path) as (popen, settings, log):
        url = f"http://127.0.0.1:{settings['DAGSTER_PORT']}/graphql"
        wait_for_ui(url, popen, log)
        assert graphql(url, "{ shouldShowNux }")["shouldShowNux"] is False

        home = Path(settings["DAGSTER_HOME"])
        today = dt.datetime.now(dt.timezone.utc).date()
        wanted = {today.isoformat(), (today - dt.timedelta(days=1)).isoformat()}
        deadline = time.monotonic() + START_TIMEOUT
        with DagsterInstance.from_config(str(home)) as instance:
            while not wanted <= set(synced_days(instance)):
                assert time.monotonic() < deadline, f"not synced: {wanted}\n{tail(log)}"
                time.sleep(0.5)
            first = instance.get_runs(filters=RunsFilter(tags={AUTOMATION_TAG: "demo-first-sync"}))
            # one run for both days, as the hourly schedule asks
            assert [run.tags[DAYS_TAG] for run in first] == [DAYS_SEPARATOR.join(sorted(wanted))]
        assert (Path(settings["CG_LAKE_ROOT"]) / "customergauge" / "non_responses").is_dir()
        # Dagster's freshness daemon evaluates the asset's policy by itself, no run needed
        while freshness(url) != "HEALTHY":
            assert time.monotonic() < deadline, f"freshness {freshness(url)}\n{tail(log)}"
            time.sleep(0.5)
        stop_and_assert_clean(popen, settings, log, signal.SIGTERM)
    output = log.read_text(errors="replace")
    for noise in ("BetaWarning", "SupersessionWarning", "PreviewWarning"):
        assert noise not in output, f"{noise} in the output of make run"


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_sigint_or_sighup_stops_everything(tmp_path, signum):
    with running_demo(tmp_path) as (popen, settings, log):
        wait_for_ui(f"http://127.0.0.1:{settings['DAGSTER_PORT']}/graphql", popen, log)
        stop_and_assert_clean(popen, settings, log, signum)


@pytest.mark.e2e
def test_sigterm_to_the_whole_group_twice_stops_everything(tmp_path):
    """`kill -TERM -PGID` of `make run`: the script gets SIGTERM, then make forwards another
    while the script is stopping its services. The second one used to kill the script
    half-way, before it stopped the simulator."""
    with running_demo(tmp_path) as (popen, settings, log):
        wait_for_ui(f"http://127.0.0.1:{settings['DAGSTER_PORT']}/graphql", popen, log)
        os.killpg(popen.pid, signal.SIGTERM)  # its own session: the group is the script's
        deadline = time.monotonic() + STOP_TIMEOUT
        while "stopping everything it started" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"no stop under way:\n{tail(log)}"
            time.sleep(0.05)
        assert popen.poll() is None  # still stopping the webserver, not the simulator yet
        os.killpg(popen.pid, signal.SIGTERM)
        assert_stopped_clean(popen, settings, log, "two SIGTERMs to the group")
        assert popen.returncode == 143
