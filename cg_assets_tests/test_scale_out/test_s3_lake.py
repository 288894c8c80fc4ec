"""The Parquet lake on an S3-compatible server (moto, over loopback HTTP): settings, one PUT
per change, no partial object ever, whatever fails during an upload, and the writer lease."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq
import pytest
from moto.core.exceptions import ServiceException
from moto.s3.exceptions import AccessForbidden

from cg_assets.defs.resources import LakeResource
from cg_assets.lake import locks, parquet_lake
from cg_assets.lake.locks import DayLockBusyError, LeaseLostError
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import SettingsError
from cg_assets_tests.test_scale_out.conftest import ROOT
from cg_assets_tests.test_scale_out.s3_checks import S3Calls, check_reader_view
from cg_assets_tests.test_scale_out.s3_child import (
    DAY,
    DAY_KEY,
    LARGE,
    PART,
    SCHEMA,
    SMALL,
    TABLE,
    day_table,
    write_day,
)


class InternalError(ServiceException):
    code = "InternalError"
    message = "injected: a transient server error"

    def __init__(self) -> None:
        super().__init__()
        self.code = 500


def run_child(*args: str) -> str:
    """s3_child in its own interpreter, with this test's environment (dummy AWS settings)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "cg_assets_tests.test_scale_out.s3_child", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("how", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "uri-query"])
def test_the_endpoint_comes_from_the_environment_or_the_uri(s3, monkeypatch, how):
    root = s3.root
    nowhere = "http://127.0.0.1:9"  # what loses must not be used: nothing listens there
    if how == "AWS_ENDPOINT_URL_S3":  # wins over AWS_ENDPOINT_URL
        monkeypatch.setenv("AWS_ENDPOINT_URL", nowhere)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.server.url)
    elif how == "uri-query":  # wins over the environment
        monkeypatch.setenv("AWS_ENDPOINT_URL", nowhere)
        root = f"{s3.root}?endpoint_override={s3.server.host}:{s3.server.port}&scheme=http"
    lake = LakeResource(root=root).get_lake()
    assert not lake.is_local
    assert lake.days(TABLE) == [] and lake.day_state(TABLE, DAY) is None
    write_day(lake, day_table(*SMALL))
    assert s3.keys() == [DAY_KEY]
    assert lake.days(TABLE) == [DAY]
    assert lake.read_day(TABLE, DAY).num_rows == SMALL[1]
    assert lake.day_state(TABLE, DAY).cursor == 1
    assert lake.display_path(TABLE, DAY) == f"s3://{s3.name}/{DAY_KEY}"
    assert lake.open_day(TABLE, DAY + dt.timedelta(days=1)) is None


def test_a_small_day_is_replaced_by_exactly_one_put_and_stages_locally(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    with lake.day_writer(TABLE, DAY, SCHEMA) as writer:
        writer.write(day_table(500, 70))
        # mid-write: the staging file is a local temp file, the bucket holds the old day only
        staged = writer._staged
        assert staged.startswith(tempfile.gettempdir()) and os.path.exists(staged)
        assert s3.keys() == [DAY_KEY] and check_reader_view(s3) == SMALL[1]
        writer.commit({"cg_assets.cursor": "2"})
    assert not os.path.exists(staged)
    assert calls.counts["put_object"] == 2  # one per change of the day
    assert calls.counts["create_multipart_upload"] == 0
    assert calls.keys == [("put_object", DAY_KEY)] * 2
    assert s3.keys() == [DAY_KEY]  # no "directory" objects, no temp objects
    assert check_reader_view(s3) == 70


def test_a_large_day_is_one_put_and_appears_only_once_it_is_complete(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)
    seen_mid_upload: list[bytes] = []

    def mid_upload(*args, **kwargs):
        # the whole body has reached the server; the object is not replaced yet
        assert check_reader_view(s3) == SMALL[1]
        seen_mid_upload.append(s3.get(DAY_KEY))

    with calls.hook("put_object", mid_upload):
        write_day(lake, day_table(*LARGE))
    assert seen_mid_upload == [old]
    assert calls.counts["create_multipart_upload"] == 0 and calls.counts["put_object"] == 2
    assert s3.keys() == [DAY_KEY] and check_reader_view(s3) == LARGE[1]
    assert len(s3.get(DAY_KEY)) > 2 * PART


def test_a_refused_put_publishes_nothing_and_the_next_write_goes_through(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)
    refused: list[int] = []

    def refuse_only_the_first(*args, **kwargs):
        if not refused:
            refused.append(1)
            raise AccessForbidden("injected: PUT refused")

    with calls.hook("put_object", refuse_only_the_first):
        with pytest.raises(OSError, match="injected"):
            write_day(lake, day_table(500, 70))
        assert s3.keys() == [DAY_KEY] and s3.get(DAY_KEY) == old
        assert not os.listdir(lake._staging_dir(TABLE))  # the staged file went with the PUT
        write_day(lake, day_table(500, 70))  # the store accepts the next PUT
    assert check_reader_view(s3) == 70


def test_a_transient_error_on_the_first_put_is_retried_and_published_once(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    failures: list[int] = []

    def fail_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise InternalError()

    with calls.hook("put_object", fail_once):
        write_day(lake, day_table(*SMALL))
    assert calls.counts["put_object"] == 2  # the refused PUT and its retry: the same object
    assert s3.keys() == [DAY_KEY] and check_reader_view(s3) == SMALL[1]


@pytest.mark.stack
def test_a_writer_killed_mid_upload_publishes_nothing(s3, monkeypatch):
    """The writer process dies (SIGKILL) while its PUT is in flight: the store never
    publishes a PUT whose request did not complete, so readers keep the old day."""
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "cg_assets_tests.test_scale_out.s3_child", "write", s3.root],
        cwd=ROOT,
        env=env,
    )

    def kill_the_writer(*args, **kwargs):
        child.kill()
        child.wait(timeout=30)
        raise ConnectionError("injected: the writer died mid-upload")

    with calls.hook("put_object", kill_the_writer):
        child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert s3.keys() == [DAY_KEY] and s3.get(DAY_KEY) == old
    assert s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", []) == []
    # the dead writer's staged file is cleared by the next holder of the day
    assert os.listdir(lake._staging_dir(TABLE))
    with lake.day_lock(TABLE, DAY, "run next"):
        assert not os.listdir(lake._staging_dir(TABLE))


# -- the writer lease ---------------------------------------------------------------------


def test_a_lease_that_cannot_be_deleted_does_not_fail_the_day(s3, monkeypatch):
    """The day's file is published; releasing the lease then fails (a store error, or a
    role without s3:DeleteObject): the day stands, and the lease simply expires."""
    from moto.s3.models import S3Backend

    def refuse(*args, **kwargs):
        raise AccessForbidden("injected: delete refused")

    monkeypatch.setattr(S3Backend, "delete_object", refuse)
    lake = ParquetLake(s3.root)
    with lake.day_lock(TABLE, DAY, "run ok"):
        write_day(lake, day_table(*SMALL))
    assert check_reader_view(s3) == SMALL[1]
    assert json.loads(s3.get(LEASE_KEY))["holder"] == "run ok"  # left to expire


LEASE_KEY = f"lake/customergauge/_locks/{TABLE}/date={DAY.isoformat()}.lease"


def test_a_second_writer_of_a_day_fails_at_once_naming_the_first(s3):
    first, second = ParquetLake(s3.root), ParquetLake(s3.root)
    with first.day_lock(TABLE, DAY, "run aaaa"):
        assert s3.keys("lake/customergauge/_locks/") == [LEASE_KEY]
        with pytest.raises(DayLockBusyError, match="run aaaa"):
            with second.day_lock(TABLE, DAY, "run bbbb"):
                pass
        # another day is free
        with second.day_lock(TABLE, DAY + dt.timedelta(days=1), "run bbbb"):
            pass
    assert s3.keys("lake/customergauge/_locks/") == []  # released
    with second.day_lock(TABLE, DAY, "run bbbb"):
        pass


def test_a_dead_writers_lease_expires_and_is_taken_over(s3):
    expired = {"holder": "run dead", "pid": 1, "host": "gone", "expires_at": time.time() - 1}
    s3.client.put_object(Bucket=s3.name, Key=LEASE_KEY, Body=json.dumps(expired).encode())
    lake = ParquetLake(s3.root)
    with lake.day_lock(TABLE, DAY, "run next"):
        held = json.loads(s3.get(LEASE_KEY))
        assert held["holder"] == "run next" and held["expires_at"] > time.time()
        write_day(lake, day_table(*SMALL))
    assert check_reader_view(s3) == SMALL[1]


def test_a_live_lease_is_renewed_and_a_lost_lease_publishes_nothing(s3, monkeypatch):
    monkeypatch.setattr(locks, "LEASE_RENEW_SECONDS", 0.2)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)
    with lake.day_lock(TABLE, DAY, "run slow"):
        before = json.loads(s3.get(LEASE_KEY))["expires_at"]
        deadline = time.monotonic() + 20
        while json.loads(s3.get(LEASE_KEY))["expires_at"] == before:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
        # someone takes the lease over (as if this writer had been silent past its expiry)
        thief = {"holder": "run thief", "expires_at": time.time() + 600}
        s3.client.put_object(Bucket=s3.name, Key=LEASE_KEY, Body=json.dumps(thief).encode())
        deadline = time.monotonic() + 20
        with pytest.raises(LeaseLostError, match="taken over"):
            while True:
                assert time.monotonic() < deadline, "the lost lease was never noticed"
                with lake.day_writer(TABLE, DAY, SCHEMA) as writer:
                    writer.write(day_table(500, 70))
                    writer.commit({"cg_assets.cursor": "2"})
                old = s3.get(DAY_KEY)  # published before the renewer saw the takeover
                time.sleep(0.05)
    assert s3.get(DAY_KEY) == old
    assert json.loads(s3.get(LEASE_KEY))["holder"] == "run thief"  # not deleted on release


def test_a_missing_bucket_fails_the_run_at_its_start_naming_cg_lake_root(s3):
    with pytest.raises(SettingsError, match=r"CG_LAKE_ROOT=.*bucket 'no-such-bucket' does not"):
        LakeResource(root="s3://no-such-bucket/lake").get_lake()


@pytest.mark.parametrize(
    "root", ["abfs://container@account.dfs.core.windows.net/lake", "s3:///no-bucket?bad=1"]
)
def test_filesystems_without_an_atomic_replace_and_bad_uris_are_refused(s3, root):
    with pytest.raises(SettingsError, match="CG_LAKE_ROOT"):
        ParquetLake(root)


def test_a_local_root_is_unchanged(tmp_path):
    lake = ParquetLake(str(tmp_path / "lake"))
    assert lake.is_local and isinstance(lake.fs, parquet_lake.pafs.LocalFileSystem)
    write_day(lake, day_table(*SMALL))
    path = tmp_path / "lake" / "customergauge" / TABLE / f"date={DAY.isoformat()}" / "data.parquet"
    assert pq.read_table(path).num_rows == SMALL[1]


# -- the fenced publish -------------------------------------------------------------------


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.stack
def test_a_writer_stalled_inside_its_upload_past_its_lease_publishes_nothing(s3):
    """Writer A freezes (every thread) inside its upload and its lease runs out; B takes the
    day over, keeps A's staging file (A is alive), publishes. When A's upload lands it is
    refused: the day stays B's, A's run fails with LeaseLostError."""
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "cg_assets_tests.test_scale_out.s3_child", "stall", s3.root],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("stalled "), line
        staged = line.split(" ", 1)[1].strip()
        deadline = time.monotonic() + 30
        while _process_state(child.pid) != "T":
            assert time.monotonic() < deadline, "the writer never stopped"
            time.sleep(0.05)
        assert os.path.exists(staged)
        deadline = time.monotonic() + 30
        while True:  # A's lease (3 s) runs out: nobody renews it while A is frozen
            try:
                lease = lake.day_lock(TABLE, DAY, "run B")
                lease.__enter__()
                break
            except DayLockBusyError:
                assert time.monotonic() < deadline, "the stalled writer's lease never expired"
                time.sleep(0.2)
        try:
            assert os.path.exists(staged), "the takeover deleted a live writer's staging file"
            with lake.day_writer(TABLE, DAY, SCHEMA) as writer:
                writer.write(day_table(1, 1011))
                writer.commit({"cg_assets.cursor": "3011"})
        finally:
            lease.__exit__(None, None, None)
        newer = s3.get(DAY_KEY)
    finally:
        child.send_signal(signal.SIGCONT)
        out, _ = child.communicate(timeout=120)
    assert child.returncode == 3, out
    assert "refused" in out and "nothing was published" in out
    assert s3.get(DAY_KEY) == newer and lake.read_day(TABLE, DAY).num_rows == 1011
    footer = pq.read_metadata(lake.fs.open_input_file(lake.day_path(TABLE, DAY))).metadata
    assert footer[b"cg_assets.cursor"] == b"3011"  # the stored cursor did not go backwards
    assert s3.keys() == [DAY_KEY] and not os.path.exists(staged)


def test_a_publish_over_a_version_it_did_not_see_is_refused(s3):
    """The other order: a stalled writer's upload lands after B took the lease but before
    B publishes. B's publish is then refused (and B's run fails: a later run syncs the day
    again), rather than silently replacing a version B never read."""
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    with lake.day_lock(TABLE, DAY, "run B"):
        late = ParquetLake(s3.root)  # no lease: lands whatever the version
        write_day(late, day_table(1, 1000))
        landed = s3.get(DAY_KEY)
        with pytest.raises(LeaseLostError, match="nothing was published"):
            with lake.day_writer(TABLE, DAY, SCHEMA) as writer:
                writer.write(day_table(1, 1011))
                writer.commit({"cg_assets.cursor": "3011"})
    assert s3.get(DAY_KEY) == landed


def test_a_holder_publishes_twice_over_its_own_versions_and_a_first_day_is_if_none_match(s3):
    lake = ParquetLake(s3.root)
    with lake.day_lock(TABLE, DAY, "run A"):
        assert lake._leases[(TABLE, DAY)].day_version is None  # no day yet
        write_day(lake, day_table(*SMALL))
        write_day(lake, day_table(1, 70))  # over the version it published itself
        assert (
            lake._leases[(TABLE, DAY)].day_version
            == s3.client.head_object(Bucket=s3.name, Key=DAY_KEY)["ETag"]
        )
    assert lake.read_day(TABLE, DAY).num_rows == 70
    # A day that appeared meanwhile is not overwritten by a holder that saw none.
    s3.client.delete_object(Bucket=s3.name, Key=DAY_KEY)
    with lake.day_lock(TABLE, DAY, "run A"):
        write_day(ParquetLake(s3.root), day_table(1, 5))
        with pytest.raises(LeaseLostError):
            write_day(lake, day_table(*SMALL))
    assert lake.read_day(TABLE, DAY).num_rows == 5
