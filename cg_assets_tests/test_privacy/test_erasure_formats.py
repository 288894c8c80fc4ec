"""The erasure accounts for every identifier: each file a real team produces either erases
the person or is refused naming the line, and the job's counts equal what was removed.

Over HTTP to the simulator, on a real instance and real Parquet files. The first cases are
the ones that used to exit 0 and miss people (a BOM, a CSV, decorations, invisible
characters); the rest are more spellings of the same people.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cg_assets.defs.resources import LakeResource
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.privacy.erasure import audit_entries
from cg_assets.privacy.identifiers import IdentifiersFileError, parse
from cg_assets.privacy.resource import PrivacyResource
from cg_assets.privacy.suppression import SuppressionList
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.test_privacy.helpers import KEY_A, erase_job_result, sync, truth_by_key
from cg_assets_tests.test_privacy.test_erasure import _failure, _op_metadata
from cg_assets_tests.truth import day_file

DAY = SIM_START
NBSP, ZWSP, ZWJ, LRM = "\u00a0", "\u200b", "\u200d", "\u200e"

Record = dict
# A case: the victims' records -> the file's bytes, and which identifiers it names
# (e-mails, number_customers).
Builder = Callable[[list[Record]], tuple[bytes, set[str], set[str]]]


def _emails(records: list[Record]) -> set[str]:
    return {r["email"].lower() for r in records}


def _numbers(records: list[Record]) -> set[str]:
    return {r["number_customer"] for r in records}


def bom_two_addresses(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    text = f"{v[0]['email']}\n{v[1]['email']}\n"
    return text.encode("utf-8-sig"), _emails(v[:2]), set()


def csv_email_name(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    rows = [
        f'{r["email"]},"{r["contact"]["last_name"]}, {r["contact"]["first_name"]}"' for r in v[:2]
    ]
    return ("email,name\n" + "\n".join(rows) + "\n").encode(), _emails(v[:2]), set()


def csv_semicolon_number(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    text = f"number_customer;note\n{v[0]['number_customer']};asked by phone\n"
    return text.encode(), set(), _numbers(v[:1])


def decorations(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    text = f'mailto:{v[0]["email"]}\n<{v[1]["email"]}>\n"{v[2]["email"]}"\n'
    return text.encode(), _emails(v[:3]), set()


def invisible_characters(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    text = f"{NBSP}{v[0]['email']}{ZWSP}\n"
    return text.encode(), _emails(v[:1]), set()


def crlf_mixed_kinds_and_comments(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    lines = ["# request 7", "", v[0]["email"].upper(), f"\t{v[1]['number_customer']} "]
    return "\r\n".join(lines).encode(), _emails(v[:1]), _numbers(v[1:2])


def utf16_with_bom(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    return f"{v[0]['email']}\r\n".encode("utf-16"), _emails(v[:1]), set()


def display_names_and_smart_quotes(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    first = v[0]["contact"]
    text = (
        f'"{first["first_name"]} {first["last_name"]}" <mailto:{v[0]["email"]}>\n'
        f"\u201c{v[1]['email']}\u201d\n"
        f"'{v[2]['number_customer']}'\n"
    )
    return text.encode(), _emails(v[:2]), _numbers(v[2:3])


def full_width_and_format_characters(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    local, domain = v[0]["email"].split("@")
    # Full-width @ and digits (an Asian keyboard), joiners and a direction mark inside.
    number = "".join(chr(ord(c) + 0xFEE0) for c in v[1]["number_customer"])
    text = f"{local}{ZWJ}\uff20{domain}{LRM}\n{number}\n"
    return text.encode(), _emails(v[:1]), _numbers(v[1:2])


def excel_csv_with_bom_both_columns(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    # Excel's CSV UTF-8: a BOM, CRLF, quoted cells, a person given by either column.
    rows = [
        '"E-mail";"Number_Customer";"Name"',
        f'"{v[0]["email"]}";"";"x"',
        f'"";"{v[1]["number_customer"]}";"y"',
        f'"{v[2]["email"]}";"{v[2]["number_customer"]}";"z"',
        ";;",  # an empty row Excel leaves at the end
    ]
    data = ("\r\n".join(rows) + "\r\n").encode("utf-8-sig")
    return data, _emails([v[0], v[2]]), _numbers([v[1], v[2]])


def tab_separated_single_header(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    text = "Email Address\tComment\n" + f"{v[0]['email']}\tfirst\n{v[1]['email']}\tsecond\n"
    return text.encode(), _emails(v[:2]), set()


def one_column_header_and_duplicates(v: list[Record]) -> tuple[bytes, set[str], set[str]]:
    text = f"email\n{v[0]['email']}\n{v[0]['email'].upper()}\n  {v[1]['email']}\n"
    return text.encode(), _emails(v[:2]), set()


CASES: dict[str, Builder] = {
    "utf8-bom": bom_two_addresses,
    "csv-email-name": csv_email_name,
    "csv-semicolon-number": csv_semicolon_number,
    "mailto-angle-quotes": decorations,
    "nbsp-zero-width": invisible_characters,
    "crlf-comments-both-kinds": crlf_mixed_kinds_and_comments,
    "utf16-bom": utf16_with_bom,
    "display-name-smart-quotes": display_names_and_smart_quotes,
    "full-width-format-chars": full_width_and_format_characters,
    "excel-csv-bom-two-columns": excel_csv_with_bom_both_columns,
    "tsv-named-header": tab_separated_single_header,
    "one-column-header-duplicates": one_column_header_and_duplicates,
}


def lake_resource(root: Path, **privacy: object) -> LakeResource:
    return LakeResource(root=str(root), privacy=PrivacyResource(key=KEY_A, **privacy))


def victims_of(truth: dict[int, Record]) -> list[Record]:
    """Three records of the day with distinct e-mails and number_customers."""
    out: list[Record] = []
    for record in sorted(truth.values(), key=lambda r: r["number_customergauge"])[5:]:
        if record["email"].lower() in _emails(out) or record["number_customer"] in _numbers(out):
            continue
        out.append(record)
        if len(out) == 3:
            return out
    raise AssertionError("the simulator's day has fewer than three distinct contacts")


def covered(truth: dict[int, Record], emails: set[str], numbers: set[str]) -> dict[str, set[int]]:
    by_email = {k for k, r in truth.items() if r["email"].lower() in emails}
    by_number = {k for k, r in truth.items() if r["number_customer"] in numbers}
    return {"email": by_email, "number_customer": by_number}


def day_keys(lake_root: Path) -> set[int]:
    table = pq.read_table(day_file(lake_root, DAY), columns=["number_customergauge"])
    return set(table.column("number_customergauge").to_pylist())


def request_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "requests" / "erasure-request.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


# Every case on a clear lake; two on a hashed one (the file's hashes meet the lake's).
RUNS = [(case, "keep") for case in sorted(CASES)] + [
    ("utf8-bom", "hash"),
    ("excel-csv-bom-two-columns", "hash"),
]


@pytest.mark.parametrize(("case", "mode"), RUNS)
def test_every_accepted_format_erases_the_people_and_counts_what_it_removed(
    instance, cg_resource, control, tmp_path, case, mode
):
    lake_root = tmp_path / "lake"
    resources = {"customergauge": cg_resource, "lake": lake_resource(lake_root, mode=mode)}
    sync(instance, resources, DAY)
    truth = truth_by_key(control, DAY, DAY)
    data, emails, numbers = CASES[case](victims_of(truth))
    gone = covered(truth, emails, numbers)
    everyone = gone["email"] | gone["number_customer"]
    assert everyone and day_keys(lake_root) == set(truth)

    result = erase_job_result(instance, resources, request_file(tmp_path, data))

    assert result.success
    assert day_keys(lake_root) == set(truth) - everyone
    md = _op_metadata(result)
    assert md["total_rows_removed"] == len(everyone)
    assert md["rows_removed"] == {"non_responses": {DAY.isoformat(): len(everyone)}}
    assert md["unmatched"] == 0
    for kind, given in (("email", emails), ("number_customer", numbers)):
        assert md["by_kind"][kind] == {
            "given": len(given),
            "matched": len(given),
            "unmatched": 0,
            "rows": len(gone[kind]),
            "already_listed": 0,
        }, kind
    (audit,) = audit_entries(ParquetLake(str(lake_root)))
    assert audit["by_kind"] == md["by_kind"] and audit["total_rows_removed"] == len(everyone)
    # The suppression list holds one working hash per identifier: a full refresh keeps
    # every one of them out.
    assert len(SuppressionList.load(ParquetLake(str(lake_root)))) == len(emails) + len(numbers)
    sync(instance, resources, DAY, full_refresh=True)
    assert day_keys(lake_root) == set(truth) - everyone


def test_a_dry_run_shows_the_counts_and_writes_nothing(instance, cg_resource, control, tmp_path):
    lake_root = tmp_path / "lake"
    resources = {"customergauge": cg_resource, "lake": lake_resource(lake_root)}
    sync(instance, resources, DAY)
    truth = truth_by_key(control, DAY, DAY)
    victims = victims_of(truth)
    nobody = "nobody.at.all@example.invalid"
    data = f"{victims[0]['email']}\n{victims[1]['number_customer']}\n{nobody}\n".encode()
    requests = request_file(tmp_path, data)
    before = hashlib.sha256(day_file(lake_root, DAY).read_bytes()).hexdigest()

    dry = erase_job_result(instance, resources, requests, dry_run=True)

    assert dry.success
    assert hashlib.sha256(day_file(lake_root, DAY).read_bytes()).hexdigest() == before
    assert not (lake_root / "customergauge" / "_suppressed").exists()
    assert not (lake_root / "customergauge" / "_audit").exists()
    counted = _op_metadata(dry)
    assert counted["dry_run"] is True and counted["unmatched"] == 1
    assert counted["by_kind"]["email"]["given"] == 2
    assert counted["by_kind"]["email"]["unmatched"] == 1
    assert counted["by_kind"]["number_customer"]["matched"] == 1

    real = erase_job_result(instance, resources, requests)

    done = _op_metadata(real)
    assert done["dry_run"] is False
    for name in ("by_kind", "rows_removed", "total_rows_removed", "unmatched"):
        assert done[name] == counted[name], name
    gone = covered(truth, _emails(victims[:1]), _numbers(victims[1:2]))
    assert len(truth) - len(day_keys(lake_root)) == done["total_rows_removed"]
    assert done["total_rows_removed"] == len(gone["email"] | gone["number_customer"])
    # Run again: nothing left to remove, and the report says they were erased before.
    again = _op_metadata(erase_job_result(instance, resources, requests))
    assert again["total_rows_removed"] == 0 and again["unmatched"] == 3
    assert again["by_kind"]["email"]["already_listed"] == 2


REFUSED = {
    # name: (file text, the line the refusal names, a value it must not quote)
    "two-at-signs": ("a@example.org\nbad@@example.org\n", 2, "bad@@example.org"),
    "space-inside": ("# x\n\nanna smit@example.org\n", 3, "anna smit"),
    "two-addresses-on-a-line": ("anna@example.org, bob@example.org\n", 1, "anna@example.org"),
    "undotted-domain": ("12345\nanna@localhost\n", 2, "anna@localhost"),
    "csv-without-an-identifier-column": ("name,note\nAnna Smit,x\n", 1, "Anna Smit"),
    "csv-row-too-short": ("email,name\nanna@example.org,Anna\nbob@example.org\n", 3, "bob@"),
    "csv-empty-identifier": ("email;name\nanna@example.org;A\n;Bob Jansen\n", 3, "Bob Jansen"),
    "csv-number-in-email-column": ("email\n123456\n", 2, "123456"),
    "csv-unclosed-quote": ('email\n"anna@example.org\n', 2, "anna@example.org"),
    "free-text": ("anna@example.org\nplease erase Anna Smit\n", 2, "Anna Smit"),
    "punctuation": ("123456\n(123457)\n", 2, "123457"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_anything_else_is_refused_naming_the_line_never_the_value(case):
    text, line, secret = REFUSED[case]
    with pytest.raises(IdentifiersFileError) as refused:
        parse(text, "/secure/request.txt")
    message = str(refused.value)
    assert f"line {line}:" in message
    assert secret not in message and "example.org" not in message


def test_refusals_of_the_file_itself():
    for text in ("", "\n# only a comment\n\n", f"{ZWSP}\n{NBSP}\n"):
        with pytest.raises(IdentifiersFileError, match="holds no identifier"):
            parse(text, "/r.txt")


def test_a_refused_file_fails_the_job_before_anything_is_written(
    instance, cg_resource, control, tmp_path
):
    lake_root = tmp_path / "lake"
    resources = {"customergauge": cg_resource, "lake": lake_resource(lake_root)}
    sync(instance, resources, DAY)
    victim = victims_of(truth_by_key(control, DAY, DAY))[0]
    # Latin-1 bytes (an export in the wrong encoding) on line 3.
    data = f"{victim['email']}\n123456\n".encode() + "Jos\u00e9@example.org\n".encode("latin-1")
    result = erase_job_result(
        instance, resources, request_file(tmp_path, data), raise_on_error=False
    )
    assert not result.success
    message = _failure(result)
    assert "line 3" in message and "UTF-8" in message and victim["email"] not in message
    assert not (lake_root / "customergauge" / "_suppressed").exists()
    assert len(day_keys(lake_root)) == len(truth_by_key(control, DAY, DAY))


def test_parse_gives_the_cleaned_values():
    text = "\ufeffMAILTO:Anna@Example.org\n\u201c 42-A \u201d\n"
    assert [(i.kind, i.value, i.line) for i in parse(text, "/r.txt")] == [
        ("email", "Anna@Example.org", 1),
        ("number_customer", "42-A", 2),
    ]
