"""Schema drift named: a field the simulator adds shows in the day's metadata and in a WARN
check; with CG_SCHEMA_CONTRACT=freeze its day fails naming it and nothing is written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from dagster import AssetCheckSeverity

from cg_assets.defs.schema_drift import CHECK_NAME, EXTRA_PATHS_KEY, NULL_COLUMNS_KEY
from cg_assets_tests.conftest import SIM_START
from cg_assets_tests.test_privacy.helpers import YOUNG, sync
from cg_assets_tests.test_reliability.helpers import failure_text, latest_record
from cg_assets_tests.truth import day_file as day_file_path

NEW_FIELD = "survey_meta.wave_code"
DAYS = [SIM_START + dt.timedelta(days=i) for i in range(4)]


def metadata(instance, day: dt.date) -> dict:
    record = latest_record(instance, day)
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def drift_check(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    return evaluation


def test_a_new_field_is_named_in_metadata_and_a_warn_check_never_its_value(
    instance, resources, control
):
    first = sync(instance, resources, DAYS[0], DAYS[1])
    assert drift_check(first).passed
    baseline = metadata(instance, DAYS[1])
    assert NEW_FIELD not in baseline[EXTRA_PATHS_KEY]
    assert isinstance(baseline[NULL_COLUMNS_KEY], list)

    control.configure(unknown_field=NEW_FIELD)
    result = sync(instance, resources, DAYS[2])
    md = metadata(instance, DAYS[2])
    assert md[EXTRA_PATHS_KEY][NEW_FIELD] == md["dagster/row_count"] > 0
    check = drift_check(result)
    assert (check.passed, check.severity) == (False, AssetCheckSeverity.WARN)
    assert NEW_FIELD in check.description
    assert check.metadata["new_fields_by_day"].value == {DAYS[2].isoformat(): [NEW_FIELD]}
    # paths and counts only: the value the simulator sent is nowhere in what Dagster shows
    shown = (
        json.dumps(md, default=str)
        + check.description
        + json.dumps({k: v.value for k, v in check.metadata.items()}, default=str)
    )
    assert '"drift"' not in shown and "'drift'" not in shown

    # the next day carries it too: seen on the previous synced day, so no longer new
    assert drift_check(sync(instance, resources, DAYS[3])).passed


def test_with_freeze_a_day_with_a_new_field_fails_naming_it_and_nothing_is_written(
    instance, resources, control, lake_root
):
    frozen = dataclasses.replace(YOUNG, schema_contract="freeze")
    assert sync(instance, resources, DAYS[0], DAYS[1], settings=frozen).success
    control.configure(unknown_field="loyalty_tier")
    result = sync(instance, resources, DAYS[2], settings=frozen, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert "loyalty_tier" in text and "CG_SCHEMA_CONTRACT" in text
    assert latest_record(instance, DAYS[2]) is None
    assert not day_file_path(lake_root, DAYS[2]).exists()
    # a day already in the lake keeps its file when a catch-up brings the field
    before = day_file_path(lake_root, DAYS[1]).read_bytes()
    control.add_records(DAYS[1], 3)
    again = sync(instance, resources, DAYS[1], settings=frozen, raise_on_error=False)
    assert not again.success and "loyalty_tier" in failure_text(again)
    assert day_file_path(lake_root, DAYS[1]).read_bytes() == before
    # evolve accepts it
    assert sync(instance, resources, DAYS[2]).success
    assert "loyalty_tier" in metadata(instance, DAYS[2])[EXTRA_PATHS_KEY]
