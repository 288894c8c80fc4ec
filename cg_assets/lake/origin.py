"""Which CustomerGauge API a lake was written from: one small file beside its tables.

`{CG_LAKE_ROOT}/customergauge/_origin.json` holds a fingerprint (a hash of the API URL and
the client id, never either in clear). Readers of the tables never see it: it is not under
a table's folder, and a leading underscore is what Hive-style readers skip. It goes
through the lake's own pyarrow filesystem, so it works the same on a local disk and on S3.
"""

from __future__ import annotations

import json

from cg_assets.lake.parquet_lake import NAMESPACE, ParquetLake
from cg_assets.settings import SettingsError

ORIGIN_FILE = "_origin.json"
FINGERPRINT_KEY = "api_fingerprint"


def origin_path(lake: ParquetLake) -> str:
    return f"{lake.base}/{NAMESPACE}/{ORIGIN_FILE}"


def read_origin(lake: ParquetLake) -> str | None:
    """The fingerprint the lake was written from, or None for a lake that has none yet."""
    path = origin_path(lake)
    try:
        with lake.fs.open_input_stream(path) as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"CG_LAKE_ROOT={lake.root!r}: {path} cannot be read ({exc}).") from None
    try:
        fingerprint = json.loads(raw)[FINGERPRINT_KEY]
        if not isinstance(fingerprint, str):
            raise TypeError(fingerprint)
    except (ValueError, KeyError, TypeError):
        raise SettingsError(
            f"CG_LAKE_ROOT={lake.root!r}: {path} is damaged, so which CustomerGauge API this lake "
            "was written from is unknown. Remove the file only if you are sure the lake holds "
            "this API's data; the next run then records it again."
        ) from None
    return fingerprint


def write_origin(lake: ParquetLake, fingerprint: str) -> None:
    """Record the fingerprint; a reader sees the old file or the new one, whole."""
    path = origin_path(lake)
    lake.put_small_file(path, json.dumps({FINGERPRINT_KEY: fingerprint}).encode())
