"""CG_LAKE_ROOT checked before anything starts (`make run`'s pre-check), without writing.

A run checks the lake itself when it starts (ParquetLake.ensure_writable, and the
filesystem kinds in parquet_lake.OBJECT_STORES); by then `make run` would have started the
whole stack with automation on, and every run would fail. This answers the same questions
beforehand: a supported scheme (decided from the URI alone: no request to any store), and
for a local folder, that this process may create files where the lake goes. It creates
nothing that stays: the probe is an anonymous temporary file in the deepest folder that
already exists.
"""

from __future__ import annotations

import os
import tempfile

from cg_assets.lake.parquet_lake import NAMESPACE, OBJECT_STORES
from cg_assets.settings import SettingsError

VARIABLE = "CG_LAKE_ROOT"
LOCAL_SCHEMES = ("file",)


def check_lake_root(root: str) -> None:
    """Raise SettingsError naming CG_LAKE_ROOT if a run could not write the lake at `root`."""
    if "://" in root:
        scheme = root.split("://", 1)[0].lower()
        if scheme in OBJECT_STORES:
            return  # the bucket and its permissions are the store's to answer, at the run
        if scheme not in LOCAL_SCHEMES:
            raise SettingsError(
                f"{VARIABLE}={root!r}: {scheme}:// is not supported (a day file cannot be "
                "replaced atomically there). Use a local folder (or a mounted volume) or "
                "s3://bucket/prefix; Google Cloud Storage works through its S3 API: "
                "s3://bucket/prefix?endpoint_override=storage.googleapis.com."
            )
        root = root.split("://", 1)[1]
    _check_writable(root, os.path.join(os.path.abspath(root), NAMESPACE))


def _check_writable(root: str, where: str) -> None:
    folder = where
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise SettingsError(
            f"{VARIABLE}={root!r}: {folder} is a file, not a folder, so the lake cannot be "
            "created there. Point CG_LAKE_ROOT at a folder (it is created if missing)."
        )
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".cg-probe-"):
            pass
    except OSError as exc:
        raise SettingsError(
            f"{VARIABLE}={root!r} is not writable: {folder} refuses new files "
            f"({exc.strerror or exc}). Point CG_LAKE_ROOT at a folder this user may write, "
            "or fix its permissions or mount."
        ) from None
