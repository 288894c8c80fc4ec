"""The documented normalisation and name rule, value by value (no server needed)."""

from __future__ import annotations

import re

import hypothesis
import hypothesis.strategies
import pytest

from cg_assets.privacy.hashing import Keyring, PiiKey, PiiKeyError, normalise, parse_keys
from cg_assets.privacy.rules import looks_like_email, personal_key
from cg_assets_tests.test_privacy.helpers import KEY_A, KEY_B, independent_hmac


@pytest.mark.parametrize(
    ("kind", "spellings", "normal"),
    [
        ("email", [" Anna.Smit@Example.COM ", "anna.smit@example.com"], "anna.smit@example.com"),
        (
            "phone",
            ["+31 6-1234 5678", "0031612345678", "31612345678", "(+31) 612 345 678"],
            "31612345678",
        ),
        ("name", [" ANNA  Müller", "anna müller", "Anna\tMüller"], "anna müller"),
        ("name", ["Straße"], "strasse"),  # case-folding, not lower-casing
        ("text", ["  https://cg.example/s/abc  "], "https://cg.example/s/abc"),
    ],
)
def test_spellings_of_one_value_hash_alike(kind, spellings, normal):
    key = PiiKey(KEY_A)
    assert {normalise(kind, s) for s in spellings} == {normal}
    assert {key.hash_value(kind, s) for s in spellings} == {independent_hmac(KEY_A, normal)}
    assert PiiKey(KEY_B).hash_value(kind, spellings[0]) != independent_hmac(KEY_A, normal)


def test_a_hash_and_an_empty_string_are_left_as_they_are():
    key = PiiKey(KEY_A)
    hashed = key.hash_value("email", "a@b.example")
    assert key.hash_value("email", hashed) == hashed
    assert key.hash_value("name", "") == ""


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("email", "email"),
        ("e-mail", "email"),
        ("secondaryEmail", "email"),
        ("contact_mail", "email"),
        ("mobile", "phone"),
        ("contactPhone", "phone"),
        ("fax_number", "phone"),
        ("first_name", "name"),
        ("lastName", "name"),
        ("full_name", "name"),
        ("surname", "name"),
        ("name", "name"),
        ("account_name", None),
        ("campaignName", None),
        ("survey_name", None),
        ("date_email_sent", None),
        ("email_status", None),
        ("phone_verified", None),
        ("number_customer", None),
        ("notes", None),
    ],
)
def test_the_name_rule_for_kept_extras(name, kind):
    assert personal_key(name) == kind


def test_keys_are_never_shown_and_must_be_long_enough():
    key = PiiKey(KEY_A)
    assert KEY_A not in repr(key) and KEY_A not in repr(Keyring(key))
    assert key.key_id == PiiKey(KEY_A).key_id != PiiKey(KEY_B).key_id
    with pytest.raises(PiiKeyError, match="CG_PII_KEY is too short") as error:
        PiiKey("short-but-secret")
    assert "short-but-secret" not in str(error.value)
    with pytest.raises(PiiKeyError, match="CG_PII_PREVIOUS_KEYS: key #2") as error:
        parse_keys(f"{KEY_A},tiny-secret", "CG_PII_PREVIOUS_KEYS")
    assert "tiny-secret" not in str(error.value)


# The pattern e-mail detection used before it went linear (issue 21): the reference.
_REFERENCE_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[A-Za-z]{2,}")


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    hypothesis.strategies.text(alphabet="ab.Z9@ @<>:,'\"é-_+\t\n", max_size=40),
)
def test_email_detection_agrees_with_the_reference_pattern(text):
    assert looks_like_email(text) == (_REFERENCE_EMAIL.search(text) is not None)
    whole = _REFERENCE_EMAIL.fullmatch(text.strip()) is not None
    assert looks_like_email(text, whole=True) == whole


@pytest.mark.parametrize(
    "blob",
    [
        "a" * 10_000_000,  # a run without spaces, the reference pattern's worst case
        "x@" * 5_000_000,  # an "@" at every other character
        "ab@cd" * 2_000_000 + " ",
        ("Zm9v" * 2_500_000)[:-3] + "@x",  # base64 with one "@" at the end
    ],
)
def test_ten_megabytes_without_spaces_are_scanned_in_one_pass(blob):
    # The reference pattern takes minutes on each of these: quadratic in the run's length.
    assert not looks_like_email(blob)
    assert looks_like_email(blob + " mail me: jo@example.org")
