"""Shared fixtures: a real simulator on loopback, a real Dagster instance, a temp lake."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from cg_assets.customergauge.client import CustomerGaugeClient
from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.defs.io_managers import LAKE_IO_MANAGER_KEY, LakeFrameIOManager
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.run_guards import IN_MEMORY_OK, SETTINGS_KEY
from cg_assets_tests.instances import pooled_overrides
from cg_simulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    SimulatorControl,
    SimulatorServer,
    running_simulator,
)

ROOT = Path(__file__).resolve().parents[1]
# The longest tests start first, so that no worker is left with one of them at the end.
FIRST_MARKERS = ("lifetime", "e2e", "stack")


def _memory_basetemp() -> Path | None:
    """Where tmp_path lives unless --basetemp says otherwise: a folder in /dev/shm, per
    checkout. SQLite commits and fsyncs dominate the instance-heavy tests on a disk (the
    lifetime test takes 85 s instead of 160 s in memory); the files and their atomic
    renames behave the same."""
    shm = Path("/dev/shm")
    if os.environ.get("CG_TEST_TMP_ON_DISK") or not (shm.is_dir() and os.access(shm, os.W_OK)):
        return None
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    prefix = f"cg_assets-tests-{os.getuid()}-{checkout}-"
    # One folder per pytest run, not per checkout: two runs side by side in one checkout
    # must not share (the first to end would delete the other's files). Folders of runs
    # that were killed are memory: take them back.
    for stale in shm.glob(prefix + "*"):
        pid = stale.name.removeprefix(prefix)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return shm / f"{prefix}{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pytest_configure(config: pytest.Config) -> None:
    # Only the controller picks it; xdist hands each worker a folder inside it.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        base = _memory_basetemp()
        if base is not None:
            config.option.basetemp = str(base)
            config.stash[_CLEAN_UP] = base


def pytest_unconfigure(config: pytest.Config) -> None:
    base = config.stash.get(_CLEAN_UP, None)
    if base is not None and not os.environ.get("CG_KEEP_TEST_TMP"):
        shutil.rmtree(base, ignore_errors=True)  # it is memory, not disk


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        for position, marker in enumerate(FIRST_MARKERS):
            if item.get_closest_marker(marker) is not None:
                return position
        return len(FIRST_MARKERS)

    items.sort(key=rank)  # stable: the file order stays within each rank


_CLEAN_UP = pytest.StashKey[Path]()

# A fixed past range: tests never depend on today's date unless they say so.
SIM_START = dt.date(2026, 10, 1)
SIM_END = dt.date(2026, 10, 5)
SIM_RECORDS = 600
TEST_PER_PAGE = 50  # small pages, so every sync crosses several pages


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with running_simulator(records=SIM_RECORDS, start=SIM_START, end=SIM_END, seed=11) as server:
        yield server


@pytest.fixture
def control(simulator: SimulatorServer) -> Iterator[SimulatorControl]:
    with SimulatorControl(simulator.url) as ctl:
        yield ctl


def make_resource(simulator: SimulatorServer, **overrides: object) -> CustomerGaugeResource:
    fields: dict[str, object] = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "api_url": simulator.url,
        "auth_url": simulator.token_url,
        "per_page": TEST_PER_PAGE,
        "http_timeout": [2, 2],
        "max_retries": 4,
        "backoff_seconds": 0.001,
    }
    fields.update(overrides)
    return CustomerGaugeResource(**fields)  # type: ignore[arg-type]


@pytest.fixture
def cg_resource(simulator: SimulatorServer) -> CustomerGaugeResource:
    return make_resource(simulator)


@pytest.fixture
def client(cg_resource: CustomerGaugeResource) -> Iterator[CustomerGaugeClient]:
    with cg_resource.get_client() as c:
        yield c


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def with_lake_io_manager(resources: Mapping[str, object]) -> dict[str, object]:
    """`resources` and the lake IO manager on the same lake as its `lake`, as definitions.py
    binds them: the sync assets declare its key (LAKE_IO_MANAGER_KEY), so a run of them
    needs it bound even though they write no output. A test's own binding wins."""
    lake = resources["lake"]
    assert isinstance(lake, LakeResource)
    io_manager = LakeFrameIOManager(root=lake.root, table_format=lake.table_format)
    return {LAKE_IO_MANAGER_KEY: io_manager, **resources}


@pytest.fixture
def resources(cg_resource: CustomerGaugeResource, lake_root: Path) -> dict[str, object]:
    return with_lake_io_manager(
        {"customergauge": cg_resource, "lake": LakeResource(root=str(lake_root))}
    )


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Dagster's SQLite files with pooled connections (cg_assets_tests/instances.py)
    with instance_for_test(temp_dir=str(home), overrides=pooled_overrides(home)) as inst:
        yield inst


def in_memory_instance() -> DagsterInstance:
    """An in-memory instance, for tests that read their cursors back from it in the same
    process (a sync refuses to run on one otherwise: cg_assets/defs/run_guards.py)."""
    return DagsterInstance.ephemeral(settings={SETTINGS_KEY: {IN_MEMORY_OK: True}})
