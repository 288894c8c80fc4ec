"""The settings check `make run` does before starting anything (cg_assets.settings_check)."""

from __future__ import annotations

import os

import pytest

from cg_assets.settings import SettingsError
from cg_assets.settings_check import DEMO, EXIT_BAD_SETTING, TENANT, check, main


def test_no_credentials_is_the_demo():
    assert check({}) == DEMO
    assert check({"CG_CLIENT_ID": "  ", "CG_CLIENT_SECRET": ""}) == DEMO  # blank is unset


def test_both_credentials_and_a_region_is_the_tenant():
    env = {"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "secret", "CG_REGION": "eu"}
    assert check(env) == TENANT


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CG_CLIENT_ID": "id"}, ["CG_CLIENT_ID is set but CG_CLIENT_SECRET is not"]),
        ({"CG_CLIENT_SECRET": "s"}, ["CG_CLIENT_SECRET is set but CG_CLIENT_ID is not"]),
        ({"CG_TIMEZONE": "Mars/Olympus"}, ["CG_TIMEZONE='Mars/Olympus'", "IANA"]),
        ({"CG_AUTOMATION": "sometimes"}, ["CG_AUTOMATION"]),
        ({"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "s"}, ["CG_REGION"]),
        (
            {"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "s", "CG_REGION": "eu", "CG_PER_PAGE": "0"},
            ["CG_PER_PAGE"],
        ),
    ],
)
def test_a_bad_or_half_set_setting_names_the_variable(env, names):
    with pytest.raises(SettingsError) as info:
        check(env)
    for name in names:
        assert name in str(info.value)


def test_main_prints_a_short_message_and_never_the_secret(capsys):
    code = main({"CG_CLIENT_SECRET": "s3cr3t-value"})
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_SETTING and out == ""
    assert "CG_CLIENT_ID" in err and len(err.splitlines()) <= 3
    assert "s3cr3t-value" not in err


KEY = "k" * 32
TENANT_ENV = {"CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "secret", "CG_REGION": "eu"}


# Settings a run reads at its start that `make run` used to accept, so that it started the
# whole stack with automation on and every run failed (issue 19).
@pytest.mark.parametrize("base", [{}, TENANT_ENV], ids=["demo", "tenant"])
@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CG_PII_MODE": "hush"}, ["CG_PII_MODE='hush' is invalid", "keep", "hash", "drop"]),
        ({"CG_PII_MODE": "hash"}, ["CG_PII_KEY is not set", "CG_PII_MODE=hash", "32"]),
        ({"CG_PII_MODE": "hash", "CG_PII_KEY": "short-key"}, ["CG_PII_KEY is too short"]),
        ({"CG_PII_RETENTION_DAYS": "30"}, ["CG_PII_KEY is not set", "CG_PII_MODE=drop"]),
        ({"CG_PII_PREVIOUS_KEYS": f"{KEY},short"}, ["CG_PII_PREVIOUS_KEYS: key #2"]),
        ({"CG_LAKE_ROOT": "gs://bucket/lake"}, ["CG_LAKE_ROOT='gs://bucket/lake'", "s3://"]),
        ({"CG_LAKE_ROOT": "abfs://c@a/lake"}, ["abfs:// is not supported"]),
        # a read-only filesystem refuses even root, who may write any folder by mode bits
        ({"CG_LAKE_ROOT": "/proc/cg-lake"}, ["CG_LAKE_ROOT='/proc/cg-lake' is not writable"]),
        ({"CG_LAKE_ROOT": "file:///proc/cg-lake"}, ["is not writable"]),
        ({"CG_TABLE_FORMAT": "iceberg"}, ["CG_TABLE_FORMAT='iceberg'", "parquet or delta"]),
    ],
)
def test_a_setting_every_run_would_fail_on_is_refused_first(base, env, names):
    with pytest.raises(SettingsError) as info:
        check({**base, **env})
    for name in names:
        assert name in str(info.value)
    assert "short-key" not in str(info.value)  # a key's value is never shown


def test_a_lake_root_that_is_a_file_or_read_only_is_refused(tmp_path):
    a_file = tmp_path / "lake"
    a_file.write_text("")
    with pytest.raises(SettingsError, match="is a file, not a folder"):
        check({"CG_LAKE_ROOT": str(a_file / "deeper")})
    if os.geteuid() != 0:  # root writes a read-only folder anyway (the /proc case covers it)
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o555)
        with pytest.raises(SettingsError, match="is not writable"):
            check({"CG_LAKE_ROOT": str(read_only / "lake")})


def test_the_modes_default_lake_root_is_checked_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # make run runs the check from the project folder
    (tmp_path / "data").write_text("")  # data/demo-lake and data/lake cannot be created
    with pytest.raises(SettingsError, match="CG_LAKE_ROOT='data/demo-lake'"):
        check({})
    with pytest.raises(SettingsError, match="CG_LAKE_ROOT='data/lake'"):
        check(TENANT_ENV)


def test_a_lake_with_a_suppression_list_needs_the_key(tmp_path):
    lake = tmp_path / "lake"
    listed = lake / "customergauge" / "_suppressed"
    listed.mkdir(parents=True)
    (listed / "2026-11-02.parquet").write_bytes(b"")
    with pytest.raises(SettingsError, match="suppression list"):
        check({"CG_LAKE_ROOT": str(lake)})
    assert check({"CG_LAKE_ROOT": str(lake), "CG_PII_KEY": KEY}) == DEMO


def test_settings_a_run_accepts_pass_and_leave_nothing_behind(tmp_path):
    lake = tmp_path / "new" / "lake"
    assert check({"CG_LAKE_ROOT": str(lake), "CG_PII_MODE": "hash", "CG_PII_KEY": KEY}) == DEMO
    assert check({"CG_LAKE_ROOT": f"file://{lake}", "CG_PII_MODE": "drop"}) == DEMO
    assert check({"CG_LAKE_ROOT": "s3://bucket/lake", **TENANT_ENV}) == TENANT  # no request
    assert check({"CG_PII_RETENTION_DAYS": "30", "CG_PII_MODE": "drop"}) == DEMO
    assert list(tmp_path.iterdir()) == []  # the probe created nothing, not even the folder
