"""The command line: one line on stdout, serves, exits cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cg_simulator import SimulatorControl

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"CustomerGauge simulator listening on (http://127\.0\.0\.1:(\d+))")


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cg_simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    line = proc.stdout.readline()
    match = LINE.fullmatch(line.strip())
    if not match:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {proc.stderr.read()}")
    assert int(match.group(2)) > 0
    return proc, match.group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_starts_on_port_0_prints_its_line_and_stops(sig):
    proc, url = _start("--records", "300", "--start", "2026-01-01", "--end", "2026-01-03")
    try:
        ctl = SimulatorControl(url)
        assert ctl.health()
        truth = ctl.truth()
        assert len(truth) == 300
        assert {r["date_sent"][:10] for r in truth} == {"2026-01-01", "2026-01-02", "2026-01-03"}
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the one line
    assert "Traceback" not in err


def test_cli_defaults_to_the_last_14_days_and_live_records():
    proc, url = _start("--records", "140", "--timezone", "UTC", "--live-every", "0.2")
    try:
        ctl = SimulatorControl(url)
        today = dt.datetime.now(dt.timezone.utc).date()
        days = {r["date_sent"][:10] for r in ctl.truth()}
        assert min(days) == str(today - dt.timedelta(days=13))
        assert max(days) >= str(today)
        before = ctl.stats()["live_records"]
        time.sleep(1.0)
        after = ctl.truth("date_sent", today, today)
        assert ctl.stats()["live_records"] > before
        assert all(r["date_sent"].startswith(str(today)) for r in after)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0
