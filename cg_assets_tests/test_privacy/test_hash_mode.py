"""CG_PII_MODE over HTTP to the simulator, on real instances, every file read back.

- hash: the hash is HMAC-SHA256 of the normalised value under the key (computed here
  independently), deterministic across two separate lakes, different under another key;
  no e-mail, name, phone or link of any contact remains in clear in any column of any
  file, nested items and kept extras included.
- drop: the personal columns stay in the schema, all null.
- hash without a key: the run fails at its start naming CG_PII_KEY, nothing written.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.resources import LakeResource
from cg_assets.lake.schema import RecordDecoder
from cg_assets.privacy.resource import PrivacyResource
from cg_assets_tests.conftest import SIM_END, SIM_START
from cg_assets_tests.test_privacy.helpers import (
    KEY_A,
    KEY_B,
    day_files,
    file_rows,
    footer,
    independent_hmac,
    latest_metadata,
    personal_values,
    string_leaves,
    sync,
    truth_by_key,
)
from cg_assets_tests.test_reliability.helpers import failure_text
from cg_assets_tests.truth import day_file

DAY = dt.date(2026, 10, 2)
PERSONAL = ("contact_first_name", "contact_last_name", "email", "phone", "link")
DECLARED = RecordDecoder(NON_RESPONSES.columns).schema


def resources_for(cg_resource, root, **privacy) -> dict:
    return {
        "customergauge": cg_resource,
        "lake": LakeResource(root=str(root), privacy=PrivacyResource(**privacy)),
    }


def test_with_hash_mode_no_personal_value_is_left_in_clear_anywhere(
    instance, cg_resource, control, lake_root
):
    control.configure(extra_personal_fields=True)
    resources = resources_for(cg_resource, lake_root, key=KEY_A, mode="hash")
    sync(instance, resources, SIM_START, SIM_END)

    truth = truth_by_key(control, SIM_START, SIM_END)
    files = day_files(lake_root)
    assert len(files) == (SIM_END - SIM_START).days + 1
    emails_and_phones = {
        v.lower()
        for r in truth.values()
        for v in (r["email"], r["phone"], r["secondary_email"])
        if v
    }
    rows_seen = 0
    for path in files:
        assert footer(path)["cg_assets.pii"] == "hashed"
        assert pq.read_schema(path).equals(DECLARED, check_metadata=False)  # same schema
        for row in file_rows(path):
            rows_seen += 1
            record = truth[row["number_customergauge"]]
            mine = personal_values(record)
            # Every string of every column, nested items (segment values) and extras JSON.
            leaves = list(string_leaves(row))
            found = mine.intersection(leaves)
            assert not found, f"record {row['number_customergauge']}: clear personal value(s)"
            everything = " ".join(string_leaves(row)).lower()
            assert not any(v in everything for v in emails_and_phones if v in everything), (
                f"record {row['number_customergauge']}: an e-mail or phone in clear"
            )
            # The hashes are HMAC-SHA256 of the documented normalisation, under the key.
            contact = record["contact"]
            assert row["email"] == independent_hmac(KEY_A, record["email"].strip().lower())
            assert row["contact_first_name"] == independent_hmac(
                KEY_A, contact["first_name"].strip().casefold()
            )
            assert row["link"] == independent_hmac(KEY_A, record["link"].strip())
            if record["phone"] is None:
                assert row["phone"] is None  # null stays null
            else:
                digits = "".join(c for c in record["phone"] if c.isdigit())
                assert row["phone"] == independent_hmac(KEY_A, digits)
            # Kept extras: personal keys hashed at any depth, the rest as the API sent it.
            extras = json.loads(row["extra_fields"])
            assert extras["secondary_email"] == row["email"]  # same normalised e-mail
            assert extras["recipient"]["addresses"][0]["email"] == row["email"]
            assert extras["recipient"]["full_name"] == independent_hmac(
                KEY_A, f"{contact['first_name']} {contact['last_name']}".casefold()
            )
            assert extras["contact"]["mobile"] == row["phone"]
            assert extras["survey_meta"] == {"channel": "email", "wave": 2}
            assert extras["recipient"]["addresses"][0]["kind"] == "work"
            # What is not personal is untouched.
            assert row["status"] == record["status"]
            assert row["number_customer"] == record["number_customer"]
    assert rows_seen == len(truth)
    md = latest_metadata(instance, DAY)
    assert md["pii"] == "hashed"


def test_one_key_gives_the_same_hashes_in_two_lakes_and_another_key_other_ones(
    instance, cg_resource, control, tmp_path
):
    lakes = {
        "a1": (tmp_path / "lake-a1", KEY_A),
        "a2": (tmp_path / "lake-a2", KEY_A),
        "b": (tmp_path / "lake-b", KEY_B),
    }
    columns = {}
    for name, (root, key) in lakes.items():
        # separate lakes and separate runs; the instance only holds run history
        sync(instance, resources_for(cg_resource, root, key=key, mode="hash"), DAY)
        table = pq.read_table(day_file(root, DAY)).sort_by("number_customergauge")
        columns[name] = {c: table.column(c).to_pylist() for c in PERSONAL}
        assert footer(day_file(root, DAY))["cg_assets.pii_key_id"]
    for column in PERSONAL:
        assert columns["a1"][column] == columns["a2"][column], column
        differ = [
            (a, b)
            for a, b in zip(columns["a1"][column], columns["b"][column], strict=True)
            if a is not None
        ]
        assert differ and all(a != b for a, b in differ), column
    key_ids = {
        name: footer(day_file(root, DAY))["cg_assets.pii_key_id"]
        for name, (root, _) in lakes.items()
    }
    assert key_ids["a1"] == key_ids["a2"] != key_ids["b"]
    assert KEY_A not in str(key_ids)


def test_drop_mode_keeps_the_columns_all_null(instance, cg_resource, control, lake_root):
    control.configure(extra_personal_fields=True)
    sync(instance, resources_for(cg_resource, lake_root, mode="drop"), DAY)
    table = pq.read_table(day_file(lake_root, DAY))
    assert table.schema.equals(DECLARED, check_metadata=False)
    for column in PERSONAL:
        assert table.column(column).null_count == table.num_rows, column
    truth = truth_by_key(control, DAY, DAY)
    for row in table.to_pylist():
        extras = json.loads(row["extra_fields"])
        assert extras["secondary_email"] is None and extras["contact"]["mobile"] is None
        assert extras["recipient"]["full_name"] is None
        assert extras["survey_meta"] == {"channel": "email", "wave": 2}
        assert row["status"] == truth[row["number_customergauge"]]["status"]
    assert footer(day_file(lake_root, DAY))["cg_assets.pii"] == "dropped"
    assert latest_metadata(instance, DAY)["pii"] == "dropped"


def test_keep_mode_is_the_default_and_says_clear(instance, cg_resource, control, lake_root):
    sync(instance, resources_for(cg_resource, lake_root), DAY)
    truth = truth_by_key(control, DAY, DAY)
    for row in pq.read_table(day_file(lake_root, DAY)).to_pylist():
        assert row["email"] == truth[row["number_customergauge"]]["email"]
    assert footer(day_file(lake_root, DAY))["cg_assets.pii"] == "clear"
    assert latest_metadata(instance, DAY)["pii"] == "clear"


@pytest.mark.parametrize(
    ("privacy", "names"),
    [
        ({"mode": "scramble"}, ["mode", "'keep', 'hash' or 'drop'"]),
        ({"retention_days": -1}, ["retention_days=-1 is invalid", "from 0 to 36600"]),
        ({"clear_segments": ["Country", "country"]}, ["clear_segments=", "each name once"]),
    ],
)
def test_a_bad_privacy_setting_is_refused_when_the_resource_is_made(privacy, names):
    with pytest.raises(ValidationError) as info:
        PrivacyResource(**privacy)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("privacy", "names"),
    [
        ({"mode": "hash"}, ["CG_PII_KEY is not set", "CG_PII_MODE=hash"]),
        ({"mode": "hash", "key": "short"}, ["CG_PII_KEY is too short", "at least 32"]),
        ({"retention_days": 30}, ["CG_PII_KEY is not set", "CG_PII_RETENTION_DAYS=30"]),
    ],
)
def test_a_bad_privacy_setting_fails_the_run_at_its_start_naming_the_variable(
    instance, cg_resource, control, lake_root, privacy, names
):
    control.reset_stats()
    result = sync(
        instance, resources_for(cg_resource, lake_root, **privacy), DAY, raise_on_error=False
    )
    assert not result.success
    message = failure_text(result)
    for name in names:
        assert name in message
    assert "short" not in message.split("CG_PII_KEY is too short")[0]  # the value is never shown
    assert control.stats()["api_requests"] == 0
    assert day_files(lake_root) == []


def test_the_key_never_leaves_the_environment(
    instance, simulator, control, tmp_path, monkeypatch, capfd
):
    """The shipped wiring (CG_PII_KEY through dagster.EnvVar): after a hashed sync, a
    retention pass and an erasure, the key is nowhere under DAGSTER_HOME, in the lake, in
    run configs, the event log or the process output."""
    from cg_assets.components.project import project_component
    from cg_assets_tests.test_privacy.helpers import erase_job_result, retention_job_result
    from cg_assets_tests.test_privacy.test_erasure import everything_under
    from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    lake_root = tmp_path / "lake"
    for name, value in {
        "CG_CLIENT_ID": DEMO_CLIENT_ID,
        "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "CG_API_URL": simulator.url,
        "CG_AUTH_URL": simulator.token_url,
        "CG_PER_PAGE": "50",
        "CG_LAKE_ROOT": str(lake_root),
        "CG_PII_KEY": KEY_A,
        "CG_PII_MODE": "hash",
        "CG_PII_RETENTION_DAYS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    resources = project_component().resources()  # the project's defs.yaml
    sync(instance, resources, DAY)
    assert retention_job_result(instance, resources).success
    victim = control.truth(start=DAY, end=DAY)[0]
    requests = tmp_path / "request.txt"
    requests.write_text(victim["email"] + "\n")
    assert erase_job_result(instance, resources, requests).success
    table = pq.read_table(day_file(lake_root, DAY))
    assert independent_hmac(KEY_A, victim["email"].lower()) not in table.column("email").to_pylist()

    out, err = capfd.readouterr()
    stored = everything_under(tmp_path / "dagster_home") + everything_under(lake_root) + out + err
    for run in instance.get_runs():
        stored += str(run.run_config) + "".join(str(e) for e in instance.all_logs(run.run_id))
    # the erasure's metadata holds the victim's hash: the search reaches the event log
    assert independent_hmac(KEY_A, victim["email"].lower()) in stored
    assert KEY_A not in stored
