"""Checks at the start of a sync run, before any request or write.

- **No throw-away instance.** Each day's cursor lives in the Dagster instance. A run on an
  ephemeral one (a CLI run without DAGSTER_HOME) would write files whose cursors are then
  lost, so it refuses.
- **One API per lake and per instance.** Cursors and files from one CustomerGauge API (a
  tenant, or the demo's simulator) are meaningless against another: a catch-up would send
  the simulator's cursor to the real API, and the demo's days would look settled. The lake
  (`_origin.json`, see cg_assets/lake/origin.py) and the instance (an observation of the
  asset) remember a fingerprint of the API they were written from: a hash of CG_API_URL and
  CG_CLIENT_ID. A run against another API fails, naming CG_LAKE_ROOT or DAGSTER_HOME.
- **Pinned by data, not by an attempt.** The fingerprint is recorded only once this API's
  data is written: in the lake just before a run publishes its first day file, in the
  instance by each day's materialization. A first run that fails (a 401 from a typo'd
  CG_CLIENT_ID, placeholder credentials under the hourly schedule) or writes nothing
  leaves both free, so the corrected settings are accepted by the next run.
- **Moving on deliberately** (the same tenant under a new URL or a new Connected App):
  CG_ADOPT_API=<the new fingerprint, printed in the error> (the lake resource's
  `adopt_api`, read where the definitions load like every setting) makes the next run
  record the new API. The value must match, so a leftover variable never accepts another
  switch.
"""

from __future__ import annotations

import hashlib
import os
import threading

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
)

from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.defs.resources import LakeResource
from cg_assets.lake.origin import FINGERPRINT_KEY, origin_path, read_origin, write_origin
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import SettingsError

ADOPT_VARIABLE = "CG_ADOPT_API"
OBSERVATIONS_SCANNED = 20


def api_fingerprint(api_url: str, client_id: str) -> str:
    """A stable, one-way name for (API URL, client id): neither can be read back from it."""
    digest = hashlib.sha256(f"{api_url.rstrip('/')}\n{client_id}".encode()).hexdigest()
    return digest[:16]


# Where Dagster's CLI (`dagster asset materialize` without DAGSTER_HOME) puts the instance it
# deletes when the command exits: a folder with this prefix in the working directory.
CLI_THROWAWAY_PREFIX = ".tmp_dagster_home_"


def is_throwaway(instance: DagsterInstance) -> bool:
    """An in-memory instance, or the temporary one the CLI makes without DAGSTER_HOME."""
    if instance.is_ephemeral:
        return True
    folder = os.path.basename(os.path.normpath(instance.root_directory))
    return not os.environ.get("DAGSTER_HOME") and folder.startswith(CLI_THROWAWAY_PREFIX)


# Tests that read their cursors back from the same in-memory instance say so in its
# settings: DagsterInstance.ephemeral(settings={"cg_assets": {"in_memory_ok": True}}). Only an
# instance made in code can carry it (dagster.yaml has no such key).
SETTINGS_KEY = "cg_assets"
IN_MEMORY_OK = "in_memory_ok"


def refuse_ephemeral_instance(instance: DagsterInstance) -> None:
    if is_throwaway(instance) and not instance.get_settings(SETTINGS_KEY).get(IN_MEMORY_OK):
        raise SettingsError(
            "DAGSTER_HOME is not set, so this run has a throw-away Dagster instance: each day's "
            "cursor is kept in the instance and would be lost, and the next run would fetch "
            "everything again. Nothing was fetched or written. Set DAGSTER_HOME to the folder of "
            "your instance (make run uses .dagster_home/tenant) and run again, e.g. "
            "DAGSTER_HOME=$PWD/.dagster_home/tenant dagster asset materialize ..."
        )


def instance_fingerprint(instance: DagsterInstance, key: AssetKey) -> str | None:
    """The fingerprint recorded for this asset in the instance, or None before any day is.

    Every day a sync records carries it, so the asset's latest materialization (one query)
    answers. An asset with no materialization has no cursor to protect, whatever an earlier
    version observed at a failed first run. Observations answer only for days recorded before
    the materializations carried the fingerprint."""
    latest = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records
    if not latest:
        return None
    event = latest[0].asset_materialization
    entry = event.metadata.get(FINGERPRINT_KEY) if event is not None else None
    if entry is not None:
        return str(entry.value)
    records = instance.fetch_observations(
        AssetRecordsFilter(asset_key=key), limit=OBSERVATIONS_SCANNED
    ).records
    for record in records:
        observation = record.asset_observation
        entry = observation.metadata.get(FINGERPRINT_KEY) if observation else None
        if entry is not None:
            return str(entry.value)
    return None


def _fresh_start_hint() -> str:
    return (
        "To start fresh, point CG_LAKE_ROOT at an empty folder (or prefix) and DAGSTER_HOME at a "
        "new instance folder: the cursors live in the instance. If it is the same CustomerGauge "
        "tenant under a new URL or a new Connected App, move on deliberately: set "
    )


class ApiPin:
    """This run's API fingerprint, and the one-time recording of it in the lake.

    `record_in_lake` is called just before each day file is published, from any of the run's
    worker threads; it writes `_origin.json` once, and refuses if another API claimed the
    lake since the run started."""

    def __init__(
        self, fingerprint: str, adopting: bool, lake_had: str | None, instance_had: str | None
    ) -> None:
        self.fingerprint = fingerprint
        self._adopting = adopting
        self._lake_had, self._instance_had = lake_had, instance_had
        self._recorded = lake_had == fingerprint
        self._lock = threading.Lock()

    def record_in_lake(self, parquet_lake: ParquetLake) -> None:
        if self._recorded:
            return
        with self._lock:
            if self._recorded:
                return
            now = read_origin(parquet_lake)
            if now not in (self._lake_had, self.fingerprint):
                raise SettingsError(
                    f"CG_LAKE_ROOT={parquet_lake.root!r} was claimed by another CustomerGauge "
                    f"API (fingerprint {now}) while this run (API {self.fingerprint}) was "
                    "fetching; this day was not written. Two setups share one lake: give "
                    "each its own CG_LAKE_ROOT."
                )
            if now != self.fingerprint:
                write_origin(parquet_lake, self.fingerprint)
            self._recorded = True

    def adopted_warning(self) -> str | None:
        """For a run under CG_ADOPT_API that recorded a day: what it moved from."""
        was = (self._lake_had, self._instance_had)
        if not self._adopting or was == (self.fingerprint, self.fingerprint):
            return None
        return (
            f"{ADOPT_VARIABLE}: the lake and the instance now record API {self.fingerprint} "
            f"(were {was[0]} and {was[1]}). Unset {ADOPT_VARIABLE}."
        )


def check_run_start(
    context: AssetExecutionContext, customergauge: CustomerGaugeResource, lake: LakeResource
) -> ApiPin:
    """Refuse a run that would lose its cursors or mix two APIs, before any request.

    Nothing is recorded here: the returned pin records the API in the lake before the first
    day file is published, and every day's materialization carries the fingerprint."""
    instance = context.instance
    refuse_ephemeral_instance(instance)
    settings = customergauge.client_settings()
    current = api_fingerprint(settings.api_url, customergauge.credentials()[0])
    in_instance = instance_fingerprint(instance, context.asset_key)
    adopting = lake.adopt_api == current
    move_on = (
        f"{ADOPT_VARIABLE}={current} (a component tenant's attribute adopt_api) for one run. "
        "Nothing was fetched or written."
    )
    if not adopting and in_instance not in (None, current):
        home = instance.root_directory  # DAGSTER_HOME, as the instance was opened
        raise SettingsError(
            f"DAGSTER_HOME={home!r} holds cursors of {context.asset_key.to_user_string()} "
            f"from another CustomerGauge API (fingerprint {in_instance}; this run's API, from "
            f"CG_API_URL and CG_CLIENT_ID, is {current}). {_fresh_start_hint()}{move_on}"
        )
    parquet_lake = lake.get_lake()  # fails naming CG_LAKE_ROOT if it cannot be written
    in_lake = read_origin(parquet_lake)
    if not adopting and in_lake not in (None, current):
        raise SettingsError(
            f"CG_LAKE_ROOT={parquet_lake.root!r} was written from another CustomerGauge API "
            f"(fingerprint {in_lake} in {origin_path(parquet_lake)}; this run's API, from "
            f"CG_API_URL and CG_CLIENT_ID, is {current}). {_fresh_start_hint()}{move_on}"
        )
    return ApiPin(current, adopting, in_lake, in_instance)
