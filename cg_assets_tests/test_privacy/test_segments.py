"""Segment values (`properties`) are personal by default in hash and drop mode.

Over HTTP to the simulator, on a real instance and real Parquet files: the simulator's own
"Account Manager" segment holds people's names from the same lists as the contacts'. With
CG_PII_MODE=hash no person's name from the simulator's lists is left in clear anywhere in
the lake (the account names, a company's, aside); the segments on CG_PII_CLEAR_SEGMENTS stay
clear, except values that look like an e-mail or a phone; an erasure still finds people.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cg_assets.defs.resources import LakeResource
from cg_assets.privacy.hashing import PiiKey, is_hashed
from cg_assets.privacy.resource import PrivacyResource
from cg_assets.privacy.segments import treat_segments
from cg_assets.settings import PrivacySettings, SettingsError
from cg_assets_tests.conftest import SIM_END, SIM_START
from cg_assets_tests.test_privacy.helpers import (
    KEY_A,
    day_files,
    erase_job_result,
    file_rows,
    independent_hmac,
    string_leaves,
    sync,
    truth_by_key,
)
from cg_assets_tests.test_privacy.test_erasure import _op_metadata
from cg_assets_tests.truth import day_file
from cg_simulator.dataset import _FIRST_NAMES, _LAST_NAMES

DAY = dt.date(2026, 10, 2)
PERSON_NAMES = {n for pair in (*_FIRST_NAMES, *_LAST_NAMES) for n in pair} | {
    f"{first} {last}" for first, _ in _FIRST_NAMES for last, _ in _LAST_NAMES
}


def resources_for(cg_resource, root: Path, **privacy: object) -> dict:
    return {
        "customergauge": cg_resource,
        "lake": LakeResource(root=str(root), privacy=PrivacyResource(key=KEY_A, **privacy)),
    }


def name_hash(value: str) -> str:
    return independent_hmac(KEY_A, unicodedata.normalize("NFKC", value).strip().casefold())


def test_hash_mode_leaves_no_person_name_from_the_simulator_in_clear(
    instance, cg_resource, control, lake_root
):
    control.configure(extra_personal_fields=True)
    sync(instance, resources_for(cg_resource, lake_root, mode="hash"), SIM_START, SIM_END)
    truth = truth_by_key(control, SIM_START, SIM_END)
    managers = 0
    rows = 0
    for path in day_files(lake_root):
        for row in file_rows(path):
            rows += 1
            # Every string of every column but the company's name ("Zoë's Café B.V.").
            leaves = set(string_leaves({k: v for k, v in row.items() if k != "account_name"}))
            clear = {n for n in PERSON_NAMES if n in leaves}
            assert not clear, f"record {row['number_customergauge']}: a clear person's name"
            sent = {
                p["field"]: p["reference"] for p in truth[row["number_customergauge"]]["properties"]
            }
            stored = {p["field"]: p["reference"] for p in row["properties"]}
            assert stored.keys() == sent.keys()  # the segment names stay clear
            for field, value in sent.items():
                if value is None:
                    assert stored[field] is None
                    continue
                assert is_hashed(stored[field]), field
                if field == "Account Manager":
                    managers += 1
                    assert stored[field] == name_hash(value)
            email = truth[row["number_customergauge"]]["email"]
            assert (
                stored["Contact E-mail"] == row["email"] == independent_hmac(KEY_A, email.lower())
            )
    assert rows == len(truth) and managers > 50


def test_the_allow_list_keeps_those_segments_clear_but_never_an_email_or_phone(
    instance, cg_resource, control, lake_root
):
    control.configure(extra_personal_fields=True)
    allowed = [
        " country ",
        "Division",
        "Contact E-mail",
        "Callback Number",
    ]  # spaces, case: ignored
    resources = resources_for(cg_resource, lake_root, mode="hash", clear_segments=allowed)
    sync(instance, resources, DAY)
    truth = truth_by_key(control, DAY, DAY)
    for row in pq.read_table(day_file(lake_root, DAY)).to_pylist():
        record = truth[row["number_customergauge"]]
        sent = {p["field"]: p["reference"] for p in record["properties"]}
        stored = {p["field"]: p["reference"] for p in row["properties"]}
        assert stored["Country"] == sent["Country"]
        assert stored["Division"] == sent["Division"]
        for field in ("Touchpoint", "Segment A", "Account Manager", "Key Contact"):
            assert stored[field] == (None if sent[field] is None else name_hash(sent[field]))
        # On the list, and treated all the same: an e-mail and a phone.
        assert stored["Contact E-mail"] == independent_hmac(KEY_A, record["email"].lower())
        if record["phone"] is None:
            assert stored["Callback Number"] is None
        else:
            digits = "".join(c for c in record["phone"] if c.isdigit())
            assert stored["Callback Number"] == independent_hmac(KEY_A, digits)


def test_drop_mode_nulls_the_segment_values_but_the_allowed_ones(
    instance, cg_resource, control, lake_root
):
    control.configure(extra_personal_fields=True)
    resources = resources_for(cg_resource, lake_root, mode="drop", clear_segments=["Country"])
    sync(instance, resources, DAY)
    truth = truth_by_key(control, DAY, DAY)
    for row in pq.read_table(day_file(lake_root, DAY)).to_pylist():
        sent = {
            p["field"]: p["reference"] for p in truth[row["number_customergauge"]]["properties"]
        }
        stored = {p["field"]: p["reference"] for p in row["properties"]}
        assert stored == {f: (sent["Country"] if f == "Country" else None) for f in sent}


def test_keep_mode_keeps_the_segments(instance, cg_resource, control, lake_root):
    sync(instance, resources_for(cg_resource, lake_root), DAY)
    truth = truth_by_key(control, DAY, DAY)
    for row in pq.read_table(day_file(lake_root, DAY)).to_pylist():
        assert row["properties"] == truth[row["number_customergauge"]]["properties"]


def test_an_erasure_still_finds_people_in_a_hashed_lake_and_a_resync_hashes_alike(
    instance, cg_resource, control, lake_root, tmp_path
):
    resources = resources_for(cg_resource, lake_root, mode="hash")
    sync(instance, resources, DAY)
    before = pq.read_table(day_file(lake_root, DAY)).sort_by("number_customergauge")
    sync(instance, resources, DAY, full_refresh=True)  # a hash is never hashed again
    again = pq.read_table(day_file(lake_root, DAY)).sort_by("number_customergauge")
    assert again.column("properties").to_pylist() == before.column("properties").to_pylist()
    victim = next(iter(truth_by_key(control, DAY, DAY).values()))
    requests = tmp_path / "request.txt"
    requests.write_text(f"{victim['email']}\n")
    md = _op_metadata(erase_job_result(instance, resources, requests))
    assert md["by_kind"]["email"]["matched"] == 1 and md["total_rows_removed"] >= 1
    keys = pq.read_table(day_file(lake_root, DAY)).column("number_customergauge").to_pylist()
    assert victim["number_customergauge"] not in keys


PROPERTIES = pa.list_(pa.struct([("field", pa.string()), ("reference", pa.string())]))


def test_treat_segments_keeps_the_shape_of_sliced_and_null_lists():
    key = PiiKey(KEY_A)
    rows = [
        [{"field": "Country", "reference": "NL"}, {"field": "Owner", "reference": "Anna Smit"}],
        None,
        [],
        [{"field": "country", "reference": "+31 6 1234 5678"}, None],
        [{"field": "Country", "reference": "Write to a.smit@example.org"}],
        [{"field": "Owner", "reference": None}, {"field": None, "reference": "2024-01-15"}],
    ]
    array = pa.array(rows, PROPERTIES).slice(1)  # a batch is often a slice
    out = treat_segments(array, "field", "reference", "hash", key, frozenset({"country"}))
    assert out.type == PROPERTIES
    got = out.to_pylist()
    assert (
        got[0] is None
        and got[1] == []
        and got[3][0]["reference"] == key.hash_value("text", "Write to a.smit@example.org")
    )
    assert got[2] == [
        {"field": "country", "reference": key.hash_value("phone", "+31 6 1234 5678")},
        None,
    ]
    assert got[4] == [
        {"field": "Owner", "reference": None},
        {"field": None, "reference": key.hash_value("name", "2024-01-15")},
    ]
    chunked = pa.chunked_array([pa.array(rows[:1], PROPERTIES), pa.array(rows[1:], PROPERTIES)])
    whole = treat_segments(chunked, "field", "reference", "drop", None, frozenset({"country"}))
    assert whole.to_pylist()[0] == [
        {"field": "Country", "reference": "NL"},
        {"field": "Owner", "reference": None},
    ]
    assert whole.to_pylist()[4] == [{"field": "Country", "reference": None}]


@pytest.mark.parametrize("raw", ["Country,,Division", "Country, ", "Country,country"])
def test_a_bad_allow_list_is_refused_naming_the_variable(raw):
    with pytest.raises(SettingsError, match="CG_PII_CLEAR_SEGMENTS"):
        PrivacySettings.from_env({"CG_PII_CLEAR_SEGMENTS": raw})
    assert PrivacySettings.from_env({"CG_PII_CLEAR_SEGMENTS": "A, b"}).clear_segments == {"A", "b"}
