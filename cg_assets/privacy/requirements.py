"""Which keys the personal-data settings need, checked without the lake's data.

Shared by a run's start (policy.LakePrivacy.validate) and by `make run`'s pre-check
(cg_assets/settings_check.py), so that a setting the pre-check accepts is one a run accepts.
No pyarrow here: the pre-check answers within a second.
"""

from __future__ import annotations

from collections.abc import Mapping

from cg_assets.privacy.hashing import Keyring, PiiKey, parse_keys
from cg_assets.settings import PrivacySettings

KEY_VARIABLE = "CG_PII_KEY"
PREVIOUS_KEYS_VARIABLE = "CG_PII_PREVIOUS_KEYS"


def keyring_of(key: str | None, previous_keys: str | None) -> Keyring:
    """The keys as given (a blank key is no key); a short one fails naming its variable."""
    current = PiiKey(key, KEY_VARIABLE) if key and key.strip() else None
    return Keyring(current, parse_keys(previous_keys, PREVIOUS_KEYS_VARIABLE))


def keyring_from_env(env: Mapping[str, str]) -> Keyring:
    return keyring_of(env.get(KEY_VARIABLE), env.get(PREVIOUS_KEYS_VARIABLE))


def require_keys(settings: PrivacySettings, keyring: Keyring, *, suppression_list: bool) -> None:
    """Fail naming the variable when the settings need a key that is not set."""
    if settings.mode == "hash":
        keyring.require_current("CG_PII_MODE=hash hashes personal columns with it")
    if settings.retention_days is not None and settings.mode != "drop":
        keyring.require_current(
            f"CG_PII_RETENTION_DAYS={settings.retention_days} hashes personal columns "
            "of older days with it (or set CG_PII_MODE=drop to null them instead)"
        )
    if suppression_list:
        keyring.require_current(
            "the lake has a suppression list (erased contacts) that every write must apply"
        )
