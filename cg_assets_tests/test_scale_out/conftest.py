"""Servers for the scale-out tests: an S3-compatible store and PostgreSQL, both on loopback.

- S3: moto's server (from PyPI, `moto[server]`) runs in a thread of the test process on a
  free 127.0.0.1 port for the session; each test gets its own bucket and an environment
  with dummy credentials and AWS_ENDPOINT_URL pointing at it (never real credentials: the
  AWS config files are pointed at nothing and the instance metadata service is disabled).
- PostgreSQL: the server binaries of the Debian package (`scripts/ensure-postgres` installs
  them in CI), run by `initdb` + `pg_ctl` in a temporary folder on a free loopback port for
  the session, as the `postgres` user when the tests run as root. Each test gets a fresh
  database and a DagsterInstance loaded from deploy/dagster.yaml itself. Without the
  binaries the Postgres tests skip, saying why; under CI=true (CI sets it) or
  CG_REQUIRE_POSTGRES=1 they fail instead, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"
REGION = "us-east-1"
DUMMY_KEY = "cg-test-access-key"
DUMMY_SECRET = "cg-test-secret-key"
PG_START_TIMEOUT = 60


# -- S3 ----------------------------------------------------------------------------------


@dataclass
class S3Server:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class S3Bucket:
    server: S3Server
    name: str
    client: object  # a boto3 S3 client

    @property
    def root(self) -> str:
        """CG_LAKE_ROOT for this bucket (the endpoint comes from AWS_ENDPOINT_URL)."""
        return f"s3://{self.name}/lake"

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        ):
            out.extend(item["Key"] for item in page.get("Contents", []))
        return out

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def polars_options(self) -> dict[str, str]:
        return {
            "aws_endpoint_url": self.server.url,
            "aws_access_key_id": DUMMY_KEY,
            "aws_secret_access_key": DUMMY_SECRET,
            "aws_region": REGION,
            "aws_allow_http": "true",
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(host, port)
    finally:
        server.stop()


def aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> None:
    """Dummy credentials and the endpoint, and nothing from the machine's own AWS setup."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL_S3",
        "AWS_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Bucket:
    """A fresh bucket, and the environment a deployment would have (CG_LAKE_ROOT included)."""
    import boto3

    aws_test_env(monkeypatch, tmp_path, s3_server.url)
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        region_name=REGION,
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_SECRET,
    )
    bucket = S3Bucket(s3_server, f"cg-{uuid.uuid4().hex[:12]}", client)
    client.create_bucket(Bucket=bucket.name)
    monkeypatch.setenv("CG_LAKE_ROOT", bucket.root)
    return bucket


# -- PostgreSQL --------------------------------------------------------------------------


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    for name in ("CG_REQUIRE_POSTGRES", "CI"):
        if _truthy(name):
            pytest.fail(f"{name} is set but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason} (see scripts/ensure-postgres)")


def _pg_bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        _unavailable("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_root = os.geteuid() == 0
    run_as: list[str] = []
    owner = None
    if as_root:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            _unavailable("running as root and `runuser` is missing")
        run_as = [runuser, "-u", "postgres", "--"]
    # Not under pytest's tmp_path: its parents are private to root, the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="cg-pg-"))
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    sockets.mkdir()
    if owner is not None:
        for path in (base, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def pg(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*run_as, *argv], capture_output=True, text=True, check=check, timeout=120
        )

    started = False
    try:
        pg(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = _free_port()
            options = (
                f"-p {port} -h 127.0.0.1 -k {sockets} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            result = pg(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(PG_START_TIMEOUT),
                "-o",
                options,
                "start",
                check=False,
            )
            if result.returncode == 0:
                started = True
                break
        if not started:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail}")
        yield PostgresServer("127.0.0.1", port, "postgres")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{exc.cmd[len(run_as)]} failed:\n{exc.stdout}{exc.stderr}")
    finally:
        if started:
            pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for one test; returns its name."""
    import psycopg2

    name = f"cg_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(
        host=postgres_server.host,
        port=postgres_server.port,
        user=postgres_server.user,
        dbname="postgres",
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return name


@pytest.fixture
def pg_instance(
    postgres_server: PostgresServer,
    postgres_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[object]:
    """A DagsterInstance loaded from deploy/dagster.yaml, pointed at the test database the
    way a deployment points it at its own: through the DAGSTER_PG_* variables."""
    from dagster import DagsterInstance

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_DAGSTER_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", postgres_server.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(postgres_server.port))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", postgres_server.user)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
    monkeypatch.setenv("DAGSTER_PG_DB", postgres_db)
    instance = DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        with contextlib.suppress(Exception):
            instance.dispose()
