"""The settings check `make run` does before starting anything (cg_assets.settings_check)."""

from __future__ import annotations

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
