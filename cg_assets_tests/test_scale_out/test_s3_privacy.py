"""Personal data on the S3 lake (moto's server on loopback): hash mode, an erasure across
days with its suppression list and audit entry kept in the bucket, a full refresh that does
not bring the contacts back, and the retention pass; every object of the bucket searched
for the erased identifiers."""

from __future__ import annotations

import datetime as dt
import io
import json

import pyarrow.parquet as pq

from cg_assets.defs.resources import LakeResource
from cg_assets.privacy.resource import PrivacyResource
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.test_privacy.helpers import (
    KEY_A,
    contains_identifier,
    erase_job_result,
    independent_hmac,
    retention_job_result,
    sync,
    truth_by_key,
)

FIRST = SIM_START
LAST = SIM_START + dt.timedelta(days=2)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(3)]
PREFIX = "lake/customergauge/non_responses/"


def day_keys(s3) -> dict[str, set[int]]:
    out = {}
    for key in s3.keys(PREFIX):
        table = pq.read_table(io.BytesIO(s3.get(key)))
        out[key.split("/")[-2]] = set(table.column("number_customergauge").to_pylist())
    return out


def test_erasure_and_retention_on_the_s3_lake(instance, cg_resource, control, s3, tmp_path):
    hashed = {
        "customergauge": cg_resource,
        "lake": LakeResource(root=s3.root, privacy=PrivacyResource(key=KEY_A, mode="hash")),
    }
    sync(instance, hashed, FIRST, LAST)
    truth = truth_by_key(control, FIRST, LAST)
    by_day: dict[str, list[dict]] = {}
    for record in truth.values():
        by_day.setdefault(record["date_sent"][:10], []).append(record)
    victims = [by_day[d.isoformat()][4] for d in DAYS[:2]]
    identifiers = [victims[0]["email"], victims[1]["number_customer"]]
    covered = {
        k
        for k, r in truth.items()
        if r["email"].lower() == identifiers[0].lower() or r["number_customer"] == identifiers[1]
    }
    requests = tmp_path / "erasure-request.txt"
    requests.write_text("\n".join(identifiers) + "\n")

    result = erase_job_result(instance, hashed, requests)

    assert result.success
    keys = day_keys(s3)
    assert len(keys) == 3
    for day in DAYS:
        in_truth = {k for k, r in truth.items() if r["date_sent"].startswith(day.isoformat())}
        assert keys[f"date={day.isoformat()}"] == in_truth - covered
    (suppressed,) = s3.keys("lake/customergauge/_suppressed/")
    entries = pq.read_table(io.BytesIO(s3.get(suppressed))).to_pylist()
    assert {e["hash"] for e in entries} == {
        independent_hmac(KEY_A, identifiers[0].lower()),
        independent_hmac(KEY_A, identifiers[1]),
    }
    (audit_key,) = s3.keys("lake/customergauge/_audit/")
    audit = json.loads(s3.get(audit_key))
    assert sum(sum(d.values()) for d in audit["rows_removed"].values()) == len(covered)

    # A full refresh reads the suppression list from the bucket and applies it.
    sync(instance, hashed, FIRST, LAST, full_refresh=True)
    assert not set().union(*day_keys(s3).values()) & covered

    # Retention in drop mode rewrites every aged day on S3.
    dropping = {
        "customergauge": cg_resource,
        "lake": LakeResource(
            root=s3.root, privacy=PrivacyResource(key=KEY_A, mode="drop", retention_days=1)
        ),
    }
    assert retention_job_result(instance, dropping).success
    for key in s3.keys(PREFIX):
        parquet = pq.ParquetFile(io.BytesIO(s3.get(key)))
        assert parquet.metadata.metadata[b"cg_assets.pii"] == b"dropped"
        assert (
            parquet.read(columns=["email"]).column("email").null_count == parquet.metadata.num_rows
        )

    # No erased identifier in any object of the bucket, in any form.
    everything = []
    for key in s3.keys():
        body = s3.get(key)
        everything.append(body.decode("utf-8", "replace"))
        if key.endswith(".parquet"):
            everything.append(str(pq.read_table(io.BytesIO(body)).to_pylist()))
    text = "\n".join(everything)
    assert not any(contains_identifier(text, i) for i in identifiers)
