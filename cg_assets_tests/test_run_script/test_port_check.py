"""`make run` beside a running one (cg_assets.port_check, and through scripts/run-demo): it
refuses before starting anything, naming the variable and the process on the port."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from cg_assets.port_check import EXIT_PORT_TAKEN, listeners, main, port_problem
from cg_assets_tests.test_e2e.stack import free_port
from cg_assets_tests.test_run_script.test_run_demo import run_script


@contextmanager
def listening(port: int) -> Iterator[socket.socket]:
    """A server on 127.0.0.1:port, as an earlier `make run`'s simulator or webserver."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        yield server


def test_a_free_port_passes_and_a_taken_one_names_its_process(capsys):
    port = free_port()
    assert port_problem("127.0.0.1", port) is None
    assert main([f"CG_SIMULATOR_PORT=127.0.0.1:{port}"]) == 0
    with listening(port):
        assert port_problem("127.0.0.1", port) == "in use"
        assert port_problem("0.0.0.0", port) == "in use"  # a wider bind collides too
        assert os.getpid() in [pid for pid, _ in listeners(port)]
        assert main([f"CG_SIMULATOR_PORT=127.0.0.1:{port}"]) == EXIT_PORT_TAKEN
    err = capsys.readouterr().err
    assert f"CG_SIMULATOR_PORT: 127.0.0.1:{port} is in use by pid {os.getpid()}" in err
    assert "Nothing was started." in err


@pytest.mark.stack
@pytest.mark.parametrize("variable", ["CG_SIMULATOR_PORT", "DAGSTER_PORT"])
def test_make_run_beside_a_running_one_refuses_before_starting_anything(tmp_path, variable):
    home = tmp_path / "home"
    ports = {"CG_SIMULATOR_PORT": str(free_port()), "DAGSTER_PORT": str(free_port())}
    with listening(int(ports[variable])):
        done = run_script({**ports, "DAGSTER_HOME": str(home), "CG_LAKE_ROOT": str(tmp_path)})
    assert done.returncode == EXIT_PORT_TAKEN, done.stderr[-2000:]
    assert f"{variable}: 127.0.0.1:{ports[variable]} is in use by pid {os.getpid()}" in done.stderr
    assert "Traceback" not in done.stderr and "DEMO MODE" not in done.stdout
    assert not home.exists()  # no instance, no simulator journal: nothing started
