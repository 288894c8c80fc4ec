"""The erasure job over HTTP to the simulator, on a real instance and a real lake.

- It removes exactly the listed contacts (e-mail or number_customer) from every day file
  of every table: here two tables, one written in clear and one hashed.
- It leaves no erased identifier anywhere under DAGSTER_HOME (every file's bytes, every
  SQLite value, the compute logs) nor in the lake; only keyed hashes, in the op's metadata,
  the audit entry and the suppression list.
- Later syncs (a full refresh, a settle) do not bring the contacts back.
- A key rotation does not undo it: without the old key syncs refuse to run; with it they
  suppress; a re-run of the erasure under the new key retires the old one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq

from cg_assets.customergauge.endpoints import NON_RESPONSES
from cg_assets.defs.resources import LakeResource
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.erasure import audit_entries
from cg_assets.privacy.resource import PrivacyResource
from cg_assets.privacy.suppression import SuppressionList
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.test_privacy.helpers import (
    KEY_A,
    KEY_B,
    OLD,
    contains_identifier,
    erase_job_result,
    footer,
    independent_hmac,
    latest_metadata,
    sync,
    truth_by_key,
)
from cg_assets_tests.test_reliability.test_secrets import sqlite_text
from cg_assets_tests.truth import day_file, expected_row

# A second table with the same contacts, as responses will have: erasure covers every table.
COPY = dataclasses.replace(NON_RESPONSES, name="non_responses_copy")
FIRST = SIM_START
LAST = SIM_START + dt.timedelta(days=2)
DAYS = [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
TABLES = (NON_RESPONSES, COPY)


def lake_resource(root: Path, **privacy: object) -> LakeResource:
    return LakeResource(root=str(root), privacy=PrivacyResource(**privacy))


def pick_victims(truth: dict[int, dict]) -> tuple[list[str], set[int]]:
    """Identifiers of contacts on different days (an e-mail spelled differently, another
    e-mail, a number_customer), and the keys of every record they cover."""
    by_day: dict[str, list[dict]] = {}
    for record in truth.values():
        by_day.setdefault(record["date_sent"][:10], []).append(record)
    days = sorted(by_day)
    first, second, third = by_day[days[0]][3], by_day[days[1]][5], by_day[days[2]][7]
    identifiers = [
        f"  {first['email'].upper()} ",  # normalised like the e-mail columns
        second["number_customer"],
        third["email"],
    ]
    emails = {first["email"].lower(), third["email"].lower()}
    numbers = {second["number_customer"]}
    covered = {
        k
        for k, r in truth.items()
        if r["email"].lower() in emails or r["number_customer"] in numbers
    }
    return identifiers, covered


def write_identifiers(tmp_path: Path, identifiers: list[str]) -> Path:
    # Outside DAGSTER_HOME and the lake, named without any identifier.
    path = tmp_path / "requests" / "erasure-request.txt"
    path.parent.mkdir()
    path.write_text("# erasure request 42\n\n" + "\n".join(identifiers) + "\n")
    return path


def lake_keys(root: Path, table: str) -> dict[str, set[int]]:
    out = {}
    for day in DAYS:
        path = day_file(root, day, table)
        out[day.isoformat()] = set(pq.read_table(path).column("number_customergauge").to_pylist())
    return out


def everything_under(folder: Path) -> str:
    """Every file's bytes, and every SQLite value (compressed snapshots unpacked)."""
    parts = []
    for base, _, names in os.walk(folder):
        for name in names:
            path = Path(base) / name
            parts.append(path.read_bytes().decode("utf-8", "replace"))
            if name.endswith(".db"):
                parts.extend(sqlite_text(path))
            if name.endswith(".parquet"):
                parts.append(str(pq.read_table(path).to_pylist()))
    return "\n".join(parts)


def test_erasure_removes_exactly_the_listed_contacts_and_they_never_come_back(
    instance, cg_resource, control, tmp_path
):
    lake_root = tmp_path / "lake"
    clear = {"customergauge": cg_resource, "lake": lake_resource(lake_root, key=KEY_A)}
    hashed = {
        "customergauge": cg_resource,
        "lake": lake_resource(lake_root, key=KEY_A, mode="hash"),
    }
    sync(instance, clear, FIRST, LAST)
    sync(instance, hashed, FIRST, LAST, endpoint=COPY)
    truth = truth_by_key(control, FIRST, LAST)
    identifiers, covered = pick_victims(truth)
    assert len(covered) >= 3
    requests = write_identifiers(tmp_path, identifiers)

    result = erase_job_result(instance, clear, requests, TABLES)

    assert result.success
    # Exactly the covered records are gone, from both tables, on every day.
    expected_removed: dict[str, dict[str, int]] = {}
    for endpoint in TABLES:
        for day, keys in lake_keys(lake_root, endpoint.name).items():
            in_truth = {k for k, r in truth.items() if r["date_sent"].startswith(day)}
            assert keys == in_truth - covered, f"{endpoint.name} {day}"
            gone = len(in_truth & covered)
            if gone:
                expected_removed.setdefault(endpoint.name, {})[day] = gone
    assert len(expected_removed[NON_RESPONSES.name]) == 3  # three days touched
    # The clear table's other rows are exactly as before; its footer is kept.
    for day in DAYS:
        path = day_file(lake_root, day, NON_RESPONSES.name)
        for row in pq.read_table(path).to_pylist():
            want = expected_row(truth[row["number_customergauge"]])
            assert {k: row[k] for k in want} == want
        assert footer(path)["cg_assets.pii"] == "clear"
        assert footer(day_file(lake_root, day, COPY.name))["cg_assets.pii"] == "hashed"
    # Op metadata and the audit entry: counts and keyed hashes only.
    md = _op_metadata(result)
    normalised = [identifiers[0].strip().lower(), identifiers[1].strip(), identifiers[2].lower()]
    want_hashes = sorted(independent_hmac(KEY_A, n) for n in normalised)
    assert md["identifiers"] == 3
    assert md["identifiers_by_kind"] == {"email": 2, "number_customer": 1}
    assert sorted(h["hash"] for h in md["hashed_identifiers"]) == want_hashes
    assert md["rows_removed"] == expected_removed
    lake = ParquetLake(str(lake_root))
    (audit,) = audit_entries(lake)
    assert audit["rows_removed"] == expected_removed and audit["identifiers"] == 3
    assert sorted(h["hash"] for h in audit["hashed_identifiers"]) == want_hashes
    assert "started_at" in audit
    suppression = SuppressionList.load(lake)
    assert sorted(e.hash for e in suppression.entries) == want_hashes
    # Nowhere in the instance (run config, event log, compute logs, SQLite) nor the lake.
    home = Path(instance.root_directory)
    compute_logs = list(home.rglob("compute_logs/*.err"))
    assert compute_logs and any("Erasing 3 identifier(s)" in p.read_text() for p in compute_logs)
    stored = everything_under(home) + everything_under(lake_root)
    assert "erasure-request.txt" in stored  # the run config is in there: the search works
    for run in instance.get_runs():
        stored += str(run.run_config) + str(run.tags)
        stored += "".join(str(e) for e in instance.all_logs(run.run_id))
    for identifier in normalised:
        assert not contains_identifier(stored, identifier), "an erased identifier is stored"

    # Later syncs apply the suppression list: a full refresh, then a settle, of every day.
    sync(instance, clear, FIRST, LAST, full_refresh=True)
    sync(instance, hashed, FIRST, LAST, endpoint=COPY, full_refresh=True)
    for endpoint in TABLES:
        for day, keys in lake_keys(lake_root, endpoint.name).items():
            assert not keys & covered, f"{endpoint.name} {day}: an erased contact came back"
    suppressed = sum(latest_metadata(instance, day)["suppressed_rows"] for day in DAYS)
    assert suppressed == len(covered)
    sync(instance, clear, FIRST, LAST, settings=OLD)
    assert all(latest_metadata(instance, day)["settled"] for day in DAYS)
    for day, keys in lake_keys(lake_root, NON_RESPONSES.name).items():
        assert not keys & covered, f"{day}: an erased contact came back with the settle"


def _op_metadata(result) -> dict:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def test_a_catch_up_after_an_erasure_does_not_write_the_contact(
    instance, cg_resource, control, tmp_path
):
    """A contact erased before its new record reaches the lake: the catch-up that fetches
    the record drops it, and keeps the rest."""
    lake_root = tmp_path / "lake"
    resources = {"customergauge": cg_resource, "lake": lake_resource(lake_root, key=KEY_A)}
    day = FIRST
    sync(instance, resources, day)
    new_keys = control.add_records(day, 5)
    truth = truth_by_key(control, day, day)
    victim = truth[new_keys[2]]
    requests = write_identifiers(tmp_path, [victim["email"]])
    erased = erase_job_result(instance, resources, requests)
    assert _op_metadata(erased)["total_rows_removed"] == 0  # not in the lake yet

    sync(instance, resources, day)

    md = latest_metadata(instance, day)
    assert md["fetch"] == "incremental" and md["suppressed_rows"] == 1
    keys = set(pq.read_table(day_file(lake_root, day)).column("number_customergauge").to_pylist())
    assert keys == set(truth) - {victim["number_customergauge"]}


def test_erasure_refuses_without_a_key_or_with_a_bad_line_and_never_quotes_it(
    instance, cg_resource, control, tmp_path
):
    lake_root = tmp_path / "lake"
    sync(instance, {"customergauge": cg_resource, "lake": lake_resource(lake_root)}, FIRST)
    secret_line = "not an address@@example.org"
    requests = write_identifiers(tmp_path, ["someone@example.org", secret_line])
    no_key = erase_job_result(
        instance, {"lake": lake_resource(lake_root)}, requests, raise_on_error=False
    )
    assert not no_key.success
    assert "CG_PII_KEY is not set" in _failure(no_key)
    bad = erase_job_result(
        instance, {"lake": lake_resource(lake_root, key=KEY_A)}, requests, raise_on_error=False
    )
    assert not bad.success
    message = _failure(bad)
    assert "line 4" in message and secret_line not in message and "example.org" not in message
    assert not (lake_root / "customergauge" / "_suppressed").exists()


def _failure(result) -> str:
    failure = result.failure_data_for_node("erase_contacts")
    parts, error = [], failure.error
    while error is not None:
        parts.append(error.message)
        error = error.cause or error.context
    return "\n".join(parts)


def test_a_key_rotation_does_not_undo_an_erasure(instance, cg_resource, control, tmp_path):
    lake_root = tmp_path / "lake"
    day = FIRST
    under_a = {"customergauge": cg_resource, "lake": lake_resource(lake_root, key=KEY_A)}
    sync(instance, under_a, day)
    truth = truth_by_key(control, day, day)
    victim = next(iter(truth.values()))
    requests = write_identifiers(tmp_path, [victim["email"]])
    assert erase_job_result(instance, under_a, requests).success

    # A new key alone: the list's hashes cannot be matched, so syncs refuse to run.
    only_b = {"customergauge": cg_resource, "lake": lake_resource(lake_root, key=KEY_B)}
    refused = sync(instance, only_b, day, full_refresh=True, raise_on_error=False)
    assert not refused.success
    from cg_assets_tests.test_reliability.helpers import failure_text

    message = failure_text(refused)
    assert "CG_PII_PREVIOUS_KEYS" in message and KEY_A not in message and KEY_B not in message
    # The new key with the old one as a previous key: the erased contact stays out.
    rotating = {
        "customergauge": cg_resource,
        "lake": lake_resource(lake_root, key=KEY_B, previous_keys=KEY_A),
    }
    sync(instance, rotating, day, full_refresh=True)
    keys = set(pq.read_table(day_file(lake_root, day)).column("number_customergauge").to_pylist())
    assert victim["number_customergauge"] not in keys
    # Re-running the erasure under the new key links the new hash to the old entry...
    rerun = erase_job_result(instance, rotating, requests)
    assert _op_metadata(rerun)["contacts_only_under_previous_keys"] == 0
    lake = ParquetLake(str(lake_root))
    suppression = SuppressionList.load(lake)
    assert len(suppression) == 1  # one contact, hashed under two keys
    assert {e.hash for e in suppression.entries} == {
        independent_hmac(KEY_A, victim["email"].lower()),
        independent_hmac(KEY_B, victim["email"].lower()),
    }
    # ...so the old key can go.
    sync(instance, only_b, day, full_refresh=True)
    keys = set(pq.read_table(day_file(lake_root, day)).column("number_customergauge").to_pylist())
    assert victim["number_customergauge"] not in keys
    assert json.loads(json.dumps(audit_entries(lake)))  # two audit entries, readable
    assert len(audit_entries(lake)) == 2


def test_the_suppression_list_holds_hashes_only(instance, cg_resource, control, tmp_path):
    lake_root = tmp_path / "lake"
    resources = {"customergauge": cg_resource, "lake": lake_resource(lake_root, key=KEY_A)}
    sync(instance, resources, FIRST)
    victim = next(iter(truth_by_key(control, FIRST, FIRST).values()))
    requests = write_identifiers(tmp_path, [victim["email"], victim["number_customer"]])
    assert erase_job_result(instance, resources, requests).success
    files = list((lake_root / "customergauge" / "_suppressed").glob("*.parquet"))
    assert len(files) == 1
    table = pq.read_table(io.BytesIO(files[0].read_bytes()))
    assert table.column_names == ["subject", "kind", "key_id", "hash"]
    text = files[0].read_bytes().decode("utf-8", "replace") + str(table.to_pylist())
    assert not contains_identifier(text, victim["email"])
    assert not contains_identifier(text, victim["number_customer"])
