"""Which values are personal, and of which kind: the one place that decides it.

- A declared column is personal when its endpoint row flags it (`Column(..., personal=True)`).
  Its kind comes from its name (see `kind_of_name`): it only chooses the normalisation
  before hashing.
- Inside `extra_fields` (record fields the row does not declare, kept as JSON), a key is
  personal when its name says e-mail, phone or a person's name (`personal_key`); every
  value under it, at any depth, is treated. A string that contains an e-mail address is
  treated wherever it is, whatever its key: an address in a free-text field is still an
  address.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

PiiKind = Literal["email", "phone", "name", "text"]

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# An e-mail address: `local@domain.tld`, neither part holding space or @<>()[],;:"'.
# Matched from each "@" outward, not with one search: a single pattern that starts with
# `[^...]+` is tried at every position of a long run without spaces (a base64 blob, a
# URL) and backtracks the whole run each time, quadratic (10 MB took minutes, issue 21).
# From the "@", each part is scanned once: linear.
_ADDRESS_CHARS = r"[^\s@<>()\[\],;:\"']"
_LOCAL_PART = re.compile(rf"{_ADDRESS_CHARS}+")
_DOMAIN_PART = re.compile(rf"{_ADDRESS_CHARS}+\.[A-Za-z]{{2,}}")
# The same search anchored on the "@" (one character of local part looked behind): the
# engine skips to each "@" in C, and each domain run is scanned from one "@" only.
_AT_ADDRESS = re.compile(rf"(?<={_ADDRESS_CHARS})@{_ADDRESS_CHARS}+\.[A-Za-z]{{2,}}")

_EMAIL_WORDS = frozenset({"email", "mail", "emailaddress", "mailaddress"})
_PHONE_WORDS = frozenset(
    {"phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "msisdn", "gsm"}
)
_NAME_WORDS = frozenset(
    {
        "name",
        "firstname",
        "lastname",
        "fullname",
        "surname",
        "givenname",
        "familyname",
        "middlename",
        "nickname",
        "username",
        "displayname",
        "maidenname",
    }
)
# A "name" qualified by one of these is not a person's: account_name, campaignName, ...
_NOT_A_PERSON = frozenset(
    {
        "account",
        "company",
        "organisation",
        "organization",
        "org",
        "business",
        "brand",
        "product",
        "campaign",
        "survey",
        "question",
        "driver",
        "tag",
        "segment",
        "property",
        "field",
        "file",
        "domain",
        "host",
        "team",
        "group",
        "division",
        "region",
        "country",
        "city",
        "template",
        "system",
        "channel",
        "touchpoint",
        "language",
    }
)


# An e-mail or phone field qualified by one of these is about the channel, not the address
# itself: date_email_sent, email_status, phone_verified, ...
_ABOUT_THE_CHANNEL = frozenset(
    {
        "date",
        "time",
        "at",
        "sent",
        "opened",
        "clicked",
        "bounced",
        "status",
        "count",
        "verified",
        "valid",
        "consent",
        "optin",
        "opt",
        "type",
    }
)


def words(name: str) -> list[str]:
    """`contact_firstName` -> ["contact", "first", "name"]; e-mail -> ["e", "mail"]."""
    return [w.lower() for w in _WORD.findall(name)]


@functools.lru_cache(maxsize=4096)  # extras repeat the same few keys on every record
def personal_key(name: str) -> PiiKind | None:
    """The kind of personal data a field named `name` holds, or None if the name says none."""
    parts = words(name)
    joined = "".join(parts)
    about_channel = bool(_ABOUT_THE_CHANNEL & set(parts))
    if (_EMAIL_WORDS & set(parts) or "email" in joined) and not about_channel:
        return "email"
    if (_PHONE_WORDS & set(parts) or "phone" in joined) and not about_channel:
        return "phone"
    if _NAME_WORDS & set(parts) or any(j in joined for j in _NAME_WORDS - {"name"}):
        if _NOT_A_PERSON & set(parts):
            return None
        return "name"
    return None


def kind_of_name(name: str) -> PiiKind:
    """The kind of a column the endpoint row flags personal: chooses its normalisation."""
    kind = personal_key(name)
    return "text" if kind is None else kind


def looks_like_email(value: str, whole: bool = False) -> bool:
    """Does the text contain (or, with `whole`, is it) an e-mail address? Linear in the text."""
    if whole:
        text = value.strip()
        at = text.find("@")
        return (
            at > 0
            and text.find("@", at + 1) == -1
            and _LOCAL_PART.fullmatch(text, 0, at) is not None
            and _DOMAIN_PART.fullmatch(text, at + 1) is not None
        )
    return _AT_ADDRESS.search(value) is not None


# A phone number: an optional + or 00, then digits with the usual separators. A date or a
# short code is not one: at least 9 digits, or 7 after a + or 00 (an international number).
_PHONE = re.compile(r"(\+|00)?\(?\d[\d\s().\-/]*\d")


def looks_like_phone(value: str) -> bool:
    text = value.strip()
    match = _PHONE.fullmatch(text)
    if match is None:
        return False
    digits = sum(c.isdigit() for c in text)
    return digits >= 9 or (match.group(1) is not None and digits >= 7)
