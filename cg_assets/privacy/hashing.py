"""Keyed hashing of personal values: HMAC-SHA256 under CG_PII_KEY.

Why keyed: an e-mail address has little entropy (first.last@a-few-domains), so a plain
SHA-256 of it is reversed by hashing guesses. Under a secret key nobody without the key
can test a guess, yet the same input gives the same hash everywhere the key is the same
(across days, tables and separate lakes), so hashes stay join keys.

Normalisation before hashing (so that trivially different spellings of one value join):
- e-mail: surrounding white space removed, lower-cased (`" Anna.Smit@Example.COM "` and
  `"anna.smit@example.com"` hash alike);
- phone: only the digits are kept, and a leading international `00` counts as `+`
  (`"+31 6-1234 5678"`, `"0031612345678"` and `"31612345678"` hash alike); a national
  number without its country code hashes differently from the international form;
- name: Unicode NFKC, surrounding white space removed, inner runs of white space made one
  space, case-folded (`" ANNA  Müller"` and `"anna müller"` hash alike);
- anything else (a survey link, free text): surrounding white space removed.
A hash is written as 64 lowercase hex digits. Null stays null and an empty string stays
empty (there is nothing to protect in it). A value that already is 64 lowercase hex
digits is taken to be a hash and left as it is, so applying the policy twice (a catch-up
re-writes the rows already in the file) never hashes a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

from cg_assets.privacy.rules import PiiKind
from cg_assets.settings import SettingsError

MIN_KEY_LENGTH = 32
RECENT_HASHES = 100_000
_HASHED = re.compile(r"[0-9a-f]{64}")
_SPACES = re.compile(r"\s+")
_NOT_DIGITS = re.compile(r"\D")


class PiiKeyError(SettingsError):
    """A key is missing or unusable; the message names the variable, never the value."""


def normalise(kind: PiiKind, value: str) -> str:
    if kind == "email":
        return value.strip().lower()
    if kind == "phone":
        stripped = value.strip()
        digits = _NOT_DIGITS.sub("", stripped)
        if not stripped.startswith("+") and digits.startswith("00"):
            digits = digits[2:]
        return digits
    if kind == "name":
        return _SPACES.sub(" ", unicodedata.normalize("NFKC", value).strip()).casefold()
    return value.strip()


def is_hashed(value: str) -> bool:
    return _HASHED.fullmatch(value) is not None


class PiiKey:
    """One HMAC key. Its `key_id` (a keyed digest of a constant) names it in footers and in
    the suppression list without revealing anything about it; repr never shows the key."""

    def __init__(self, secret: str, variable: str = "CG_PII_KEY") -> None:
        secret = secret.strip()
        if len(secret) < MIN_KEY_LENGTH:
            raise PiiKeyError(
                f"{variable} is too short ({len(secret)} characters): expected at least "
                f"{MIN_KEY_LENGTH} characters of random text, for example the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`, kept in a secret store."
            )
        self._secret = secret.encode()
        self._keyed = hmac.new(self._secret, digestmod=hashlib.sha256)
        # A contact's values recur (the same e-mail in a column and in the extras, a first
        # name on many records): recent hashes are reused. In memory only, never written.
        self._recent: dict[str, str] = {}
        self.key_id = hmac.new(self._secret, b"cg_assets/pii-key-id", hashlib.sha256).hexdigest()[
            :12
        ]

    def digest(self, normalised: str) -> str:
        # A copy of the keyed state skips the key schedule: measured 4 us against 7 us a value.
        state = self._keyed.copy()
        state.update(normalised.encode())
        return state.hexdigest()

    def hash_value(self, kind: PiiKind, value: str) -> str:
        """The keyed hash of a clear value (an existing hash and "" are returned as they are)."""
        if value == "" or is_hashed(value):
            return value
        normal = normalise(kind, value)
        hashed = self._recent.get(normal)
        if hashed is None:
            if len(self._recent) >= RECENT_HASHES:
                self._recent.clear()
            hashed = self._recent[normal] = self.digest(normal)
        return hashed

    def __repr__(self) -> str:
        return f"PiiKey(key_id={self.key_id!r})"


class Keyring:
    """The current key (hashes new data) and earlier keys (still recognise suppressed contacts
    whose suppression entries were hashed under them; see suppression.py)."""

    def __init__(self, current: PiiKey | None, previous: Iterable[PiiKey] = ()) -> None:
        self.current = current
        self.previous = tuple(k for k in previous if current is None or k.key_id != current.key_id)

    @property
    def all(self) -> tuple[PiiKey, ...]:
        return ((self.current,) if self.current else ()) + self.previous

    def by_id(self, key_id: str) -> PiiKey | None:
        return next((k for k in self.all if k.key_id == key_id), None)

    def require_current(self, why: str) -> PiiKey:
        if self.current is None:
            raise PiiKeyError(
                f"CG_PII_KEY is not set, and {why}: set CG_PII_KEY to a secret of at least "
                f"{MIN_KEY_LENGTH} characters (read through dagster.EnvVar, never shown), the same "
                "one for every run and code location."
            )
        return self.current


def parse_keys(raw: str | None, variable: str) -> list[PiiKey]:
    """A comma-separated list of keys (CG_PII_PREVIOUS_KEYS); errors name the position."""
    if raw is None or not raw.strip():
        return []
    keys = []
    for position, part in enumerate(raw.split(","), start=1):
        try:
            keys.append(PiiKey(part, variable))
        except PiiKeyError:
            raise PiiKeyError(
                f"{variable}: key #{position} is shorter than {MIN_KEY_LENGTH} characters; expected "
                "comma-separated keys that were once CG_PII_KEY."
            ) from None
    return keys
