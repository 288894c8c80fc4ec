"""`make run` refuses to start beside a running one: `python -m cg_assets.port_check VAR=host:port ...`.

Without it a second `make run` goes half-alive: the webserver cannot bind and logs one
line while a headless daemon runs on with automation on, and a new simulator that cannot
bind leaves the demo talking to an old one. Each argument names the variable that sets
the port (DAGSTER_PORT, CG_SIMULATOR_PORT). A port is free when this process can bind it
the way the servers do (SO_REUSEADDR: a closed connection's TIME_WAIT does not count).
For a taken one it names the process that listens there, when /proc says so (Linux, a
process of this user or run as root). Exits 0 when all are free, else 3 after a few lines
on stderr. No Dagster import: it answers at once.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_PORT_TAKEN = 3
LISTEN = "0A"  # TCP state in /proc/net/tcp
# Command-line words that make a holder look like a make run of this project.
OURS = ("cg_assets", "dagster", "dg dev")
SHOWN_CHARS = 120


def port_problem(host: str, port: int) -> str | None:
    """None when `host:port` can be bound now, else why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "in use"
            return f"cannot be bound ({exc.strerror or exc})"
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == LISTEN
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def _holds(process: Path, sockets: set[str]) -> bool:
    for fd in (process / "fd").iterdir():
        try:
            if os.readlink(fd) in sockets:
                return True
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, for one)
    return False


def listeners(port: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes listening on `port`, as far as /proc shows."""
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    found = []
    for entry in Path("/proc").glob("[0-9]*") if sockets else ():
        try:
            if _holds(entry, sockets):
                words = (entry / "cmdline").read_bytes().split(b"\0")
                found.append((int(entry.name), b" ".join(words).decode(errors="replace").strip()))
        except OSError:
            continue  # gone, or not ours to look at
    return found


def describe(variable: str, host: str, port: int, problem: str) -> str:
    holders = listeners(port) if problem == "in use" else []
    if not holders:
        who = "" if problem != "in use" else " (its process is not visible to this user)"
        return f"{variable}: {host}:{port} {problem}{who}: set {variable} to a free port."
    names = "; ".join(
        f"pid {pid}: {command[:SHOWN_CHARS]}{'...' if len(command) > SHOWN_CHARS else ''}"
        for pid, command in holders
    )
    ours = any(word in command for _, command in holders for word in OURS)
    hint = (
        "another `make run` looks up: use that one, or stop it (Ctrl-C in its terminal, or "
        f"kill {' '.join(str(pid) for pid, _ in holders)})"
        if ours
        else f"stop it, or set {variable} to a free port"
    )
    return f"{variable}: {host}:{port} is in use by {names}. {hint}."


def main(arguments: Sequence[str]) -> int:
    problems = []
    for argument in arguments:
        variable, _, address = argument.partition("=")
        host, _, port = address.rpartition(":")
        problem = port_problem(host, int(port))
        if problem is not None:
            problems.append(describe(variable, host, int(port), problem))
    for line in problems:
        print(f"make run: {line}", file=sys.stderr)
    if problems:
        print("Nothing was started.", file=sys.stderr)
        return EXIT_PORT_TAKEN
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
