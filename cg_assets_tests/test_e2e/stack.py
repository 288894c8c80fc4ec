"""The simulator and `dagster dev` as real subprocesses, each in its own process group.

Used by the end-to-end test and by scripts/ui-screenshot. Output goes to log files; a
group is stopped with SIGTERM, then SIGKILL, and `stop` reports any process left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin dir (not resolved: that leaves the venv)
SIM_LINE = re.compile(r"CustomerGauge simulator listening on (http://[\w.\-]+:(\d+))")
LOCATION = "cg_assets"
TAIL_LINES = 60
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Group:
    """One subprocess started with start_new_session=True: its pid is its process group id."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pgid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            text = ANSI.sub("", self.log.read_text(errors="replace"))
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def start_group(
    name: str, argv: list[str], *, cwd: Path, env: Mapping[str, str], log_dir: Path
) -> Group:
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Group(name, popen, log)


def _processes() -> Iterator[tuple[int, str, int, Path]]:
    """(pid, state, pgrp, /proc entry) of every process, where /proc exists."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(entry.name), fields[0], int(fields[2]), entry


def _describe(pid: int, state: str, entry: Path) -> str:
    try:
        cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = "?"
    return f"pid {pid} state {state}: {cmdline.strip()[:200]}"


def group_members(pgid: int) -> list[str]:
    """The live processes of process group `pgid`. Zombies do not count: they have exited,
    and reaping them is their parent's business (init's, for orphans)."""
    if not Path("/proc").is_dir():  # not Linux: ask the kernel whether the group still exists
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [f"process group {pgid}"]
    return [
        _describe(pid, state, entry)
        for pid, state, pgrp, entry in _processes()
        if pgrp == pgid and state not in ("Z", "X")
    ]


def processes_with_env(name: str, value: str) -> list[str]:
    """Live processes whose environment has name=value, whatever their process group."""
    if not Path("/proc").is_dir():
        return []
    wanted = f"{name}={value}".encode()
    found = []
    for pid, state, _, entry in _processes():
        if pid == os.getpid() or state in ("Z", "X"):
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            found.append(_describe(pid, state, entry))
    return found


def _wait_group_empty(pgid: int, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        left = group_members(pgid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def stop_group(group: Group, term_seconds: float = 15.0) -> list[str]:
    """SIGTERM the whole group, wait, SIGKILL what is left; returns processes still there."""
    try:
        os.killpg(group.pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        group.popen.wait(timeout=term_seconds)
    except subprocess.TimeoutExpired:
        pass
    # the leader may be gone while its children (code server, daemon, webserver) linger
    _wait_group_empty(group.pgid, 2.0)
    try:
        os.killpg(group.pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        group.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    # killed orphans are reaped by init: give it a moment
    return _wait_group_empty(group.pgid, 10.0)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any CG_* or DAGSTER_* setting, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CG_", "DAGSTER_", "PYTHONPATH"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_simulator(log_dir: Path, *args: str, timeout: float = 60.0) -> tuple[Group, str]:
    group = start_group(
        "simulator",
        [sys.executable, "-m", "cg_simulator", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=ROOT,
        env=clean_env({}),
        log_dir=log_dir,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = SIM_LINE.search(group.log.read_text(errors="replace"))
        if match:
            return group, match.group(1)
        if group.popen.poll() is not None:
            break
        time.sleep(0.1)
    stop_group(group)
    raise RuntimeError(f"the simulator did not print its URL; its log:\n{group.tail()}")


def cg_env(sim_url: str, lake_root: Path, **overrides: str) -> dict[str, str]:
    """The settings `dagster dev` gets: the simulator as CustomerGauge, a temporary lake."""
    env = {
        "CG_API_URL": sim_url,
        "CG_AUTH_URL": f"{sim_url}/oauth2/token",
        "CG_CLIENT_ID": DEMO_CLIENT_ID,
        "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "CG_LAKE_ROOT": str(lake_root),
    }
    env.update(overrides)
    return env


def make_dagster_home(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", path / "dagster.yaml")
    return path


def start_dagster_dev(
    log_dir: Path, dagster_home: Path, cg: Mapping[str, str], port: int, host: str = "127.0.0.1"
) -> Group:
    argv = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", host, "-p", str(port)]
    env = clean_env({**cg, "DAGSTER_HOME": str(dagster_home)})
    return start_group("dagster-dev", argv, cwd=ROOT, env=env, log_dir=log_dir)


# --- GraphQL ---------------------------------------------------------------------------


class GraphQLError(RuntimeError):
    pass


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    if response.status_code != 200:
        raise GraphQLError(f"{response.status_code}: {response.text[:2000]}")
    body = response.json()
    if body.get("errors"):
        raise GraphQLError(json.dumps(body["errors"])[:2000])
    return body["data"]


WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_until_loaded(
    url: str, group: Group, location: str = LOCATION, timeout: float = 180.0
) -> list[dict[str, Any]]:
    """Poll the webserver until `location` is loaded; returns its repositories."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if group.popen.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {group.popen.returncode}")
        try:
            data = graphql(url, WORKSPACE_QUERY)["workspaceOrError"]
        except (requests.RequestException, GraphQLError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            entries = {e["name"]: e for e in data.get("locationEntries", [])}
            entry = entries.get(location)
            last = json.dumps(data)[:1000]
            if entry and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "PythonError":
                    raise RuntimeError(f"{location} failed to load: {loaded['message']}")
                if loaded.get("__typename") == "RepositoryLocation":
                    return loaded["repositories"]
        time.sleep(0.25)
    raise TimeoutError(f"{location} was not loaded after {timeout:.0f} s; last answer: {last}")


@dataclass
class Stack:
    """A simulator and a `dagster dev` pointed at it, with their logs."""

    sim_url: str
    host: str
    port: int
    dagster_home: Path
    lake_root: Path
    groups: list[Group] = field(default_factory=list)

    @property
    def graphql_url(self) -> str:
        return f"http://{self.host}:{self.port}/graphql"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def tails(self) -> str:
        return "\n".join(
            f"----- last lines of {g.name} ({g.log}) -----\n{g.tail()}" for g in self.groups
        )

    @contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        """Re-raise any failure with the processes' log tails in its message."""
        try:
            yield
        except Exception as exc:
            raise AssertionError(f"{type(exc).__name__}: {exc}\n\n{self.tails()}") from exc

    def stop(self) -> dict[str, list[str]]:
        """Stop every group, newest first; returns what is left of each (empty when clean)."""
        left = {}
        for group in reversed(self.groups):
            remaining = stop_group(group)
            if remaining:
                left[group.name] = remaining
        # a process that left its group (setsid) would still carry this instance's home
        escaped = processes_with_env("DAGSTER_HOME", str(self.dagster_home))
        if escaped:
            left["DAGSTER_HOME=" + str(self.dagster_home)] = escaped
        return left


@contextmanager
def running_stack(
    work_dir: Path,
    sim_args: list[str],
    cg_overrides: Mapping[str, str],
    *,
    port: int | None = None,
    load_timeout: float = 180.0,
) -> Iterator[Stack]:
    """Start the simulator and `dagster dev`, wait for the code location, stop both after."""
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sim, sim_url = start_simulator(log_dir, *sim_args)
    stack = Stack(
        sim_url=sim_url,
        host="127.0.0.1",
        port=port or free_port(),
        dagster_home=make_dagster_home(work_dir / "dagster_home"),
        lake_root=work_dir / "lake",
        groups=[sim],
    )
    try:
        cg = cg_env(sim_url, stack.lake_root, **cg_overrides)
        stack.groups.append(
            start_dagster_dev(log_dir, stack.dagster_home, cg, stack.port, stack.host)
        )
        with stack.logs_on_failure():
            wait_until_loaded(stack.graphql_url, stack.groups[-1], timeout=load_timeout)
        yield stack
    finally:
        # runs on failure too; an exception raised here keeps the original as its context
        left = stack.stop()
        if left:
            raise AssertionError(f"processes left after stopping their groups: {left}")
