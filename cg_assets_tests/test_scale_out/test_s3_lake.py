"""The Parquet lake on an S3-compatible server (moto, over loopback HTTP): settings, one PUT
per change, and no partial object ever, whatever fails during an upload."""

from __future__ import annotations

import datetime as dt
import gc
import os
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq
import pytest
from moto.s3.exceptions import AccessForbidden

from cg_assets.defs.resources import LakeResource
from cg_assets.lake import parquet_lake
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import SettingsError
from cg_assets_tests.test_scale_out.conftest import ROOT
from cg_assets_tests.test_scale_out.s3_checks import S3Calls, check_reader_view
from cg_assets_tests.test_scale_out.s3_child import (
    DAY,
    DAY_KEY,
    FAILED_AS_INJECTED,
    LARGE,
    PART,
    SCHEMA,
    SMALL,
    TABLE,
    day_table,
    write_day,
)


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
        assert os.path.dirname(staged) == tempfile.gettempdir() and os.path.exists(staged)
        assert s3.keys() == [DAY_KEY] and check_reader_view(s3) == SMALL[1]
        writer.commit({"cg_assets.cursor": "2"})
    assert not os.path.exists(staged)
    assert calls.counts["put_object"] == 2  # one per change of the day
    assert calls.counts["create_multipart_upload"] == 0
    assert calls.keys == [("put_object", DAY_KEY)] * 2
    assert s3.keys() == [DAY_KEY]  # no "directory" objects, no temp objects
    assert check_reader_view(s3) == 70


def test_a_large_day_appears_only_when_its_last_part_is_in(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)
    seen_mid_upload: list[bytes] = []

    def mid_upload(bucket_name, multipart_id, part_id, value):
        if part_id == 2:  # part 1 is in: what does a reader see now?
            assert check_reader_view(s3) == SMALL[1]
            seen_mid_upload.append(s3.get(DAY_KEY))

    with calls.hook("upload_part", mid_upload):
        write_day(lake, day_table(*LARGE))
    assert seen_mid_upload == [old]
    assert calls.counts["create_multipart_upload"] == 1 and calls.counts["upload_part"] >= 3
    assert s3.keys() == [DAY_KEY] and check_reader_view(s3) == LARGE[1]
    assert len(s3.get(DAY_KEY)) > 2 * PART


def test_a_part_failing_mid_upload_publishes_nothing(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)

    def fail_part_2(bucket_name, multipart_id, part_id, value):
        if part_id == 2:
            raise AccessForbidden("injected: part 2 refused")

    with calls.hook("upload_part", fail_part_2), pytest.raises(OSError, match="injected"):
        write_day(lake, day_table(*LARGE))
    gc.collect()
    assert calls.counts["complete_multipart_upload"] == 0
    assert s3.keys() == [DAY_KEY] and s3.get(DAY_KEY) == old
    # the unfinished upload is invisible to readers; a lifecycle rule removes it
    assert len(s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", [])) == 1


def test_a_failing_single_put_publishes_nothing(s3, monkeypatch):
    calls = S3Calls(monkeypatch)
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)

    def refuse(*args, **kwargs):
        raise AccessForbidden("injected: PUT refused")

    with calls.hook("put_object", refuse), pytest.raises(OSError, match="injected"):
        write_day(lake, day_table(500, 70))
    gc.collect()
    assert s3.keys() == [DAY_KEY] and s3.get(DAY_KEY) == old


@pytest.mark.parametrize("size", ["small", "large"], ids=["single-put", "multipart"])
def test_a_writer_failing_mid_upload_publishes_nothing_even_once_the_process_ends(s3, size):
    """The upload fails after the store got half the file (for a large file: a whole part);
    the process then ends normally, releasing everything, and still nothing is published."""
    lake = ParquetLake(s3.root)
    write_day(lake, day_table(*SMALL))
    old = s3.get(DAY_KEY)
    assert FAILED_AS_INJECTED in run_child("fail-mid-upload", s3.root, size)
    assert s3.keys() == [DAY_KEY] and s3.get(DAY_KEY) == old
    uploads = s3.client.list_multipart_uploads(Bucket=s3.name).get("Uploads", [])
    assert len(uploads) == (1 if size == "large" else 0)  # invisible; a lifecycle rule ends it


def test_the_hazard_is_real_a_half_written_stream_is_published_when_dropped(s3):
    """Why upload_whole abandons a failed stream instead of closing or dropping it: pyarrow
    completes the upload with whatever the stream holds when it is closed, and its
    destructor closes it. If this changes in a later pyarrow, the test above still holds."""
    run_child("drop-half-written-stream", s3.root)
    assert s3.keys("lake/half-written") == ["lake/half-written"]
    assert len(s3.get("lake/half-written")) == PART + 1000


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
