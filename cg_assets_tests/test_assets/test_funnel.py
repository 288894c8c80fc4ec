"""The survey funnel and the lake IO manager: real runs over HTTP to the simulator, a real
instance, the day files read back."""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    evaluate_automation_conditions,
    materialize,
)

from cg_assets.customergauge.endpoints import NON_RESPONSES, RESPONSES
from cg_assets.definitions import defs
from cg_assets.defs.assets import build_sync_asset
from cg_assets.defs.funnel import FUNNEL_KEY, FUNNEL_SCHEMA, build_funnel_asset, nps_category
from cg_assets.defs.io_managers import LAKE_IO_MANAGER_KEY, LakeFrameIOManager, scan_days
from cg_assets.defs.partitions import daily_partitions
from cg_assets.lake.parquet_lake import ParquetLake
from cg_assets.settings import LoadSettings
from cg_assets_tests.conftest import SIM_START, TEST_PER_PAGE
from cg_assets_tests.truth import day_file, response_truth_rows, truth_rows
from cg_simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

DAY = dt.date(2026, 10, 2)
SETTINGS = LoadSettings(start_date=SIM_START, settle_after_hours=8784)
RANGE_TAGS = {
    "dagster/asset_partition_range_start": SIM_START.isoformat(),
    "dagster/asset_partition_range_end": (SIM_START + dt.timedelta(days=2)).isoformat(),
}


def sync_assets() -> list:
    return [build_sync_asset(e, SETTINGS) for e in (NON_RESPONSES, RESPONSES)]


def lake_resources(resources: dict, lake_root) -> dict:
    return {**resources, LAKE_IO_MANAGER_KEY: LakeFrameIOManager(root=str(lake_root))}


def sync_then(downstream: list, partition: str, instance, resources: dict, lake_root):
    """The day's sync run, then a run of the downstream assets, as the automation sensor
    launches them: a sync records its days one by one and yields no output, so a
    downstream asset runs in a run of its own."""
    io = lake_resources(resources, lake_root)
    synced = materialize(sync_assets(), partition_key=partition, instance=instance, resources=io)
    assert synced.success
    return materialize(
        [*sync_assets(), *downstream],
        selection=[a.key for a in downstream],
        partition_key=partition,
        instance=instance,
        resources=io,
    )


def test_the_funnel_counts_both_tables_of_its_day(instance, resources, control, lake_root):
    control.respond_records(day=DAY, count=9)
    failed = control.fail_records(day=DAY, count=4)
    result = sync_then(
        [build_funnel_asset(SETTINGS)], DAY.isoformat(), instance, resources, lake_root
    )
    assert result.success
    funnel = pq.read_table(day_file(lake_root, DAY, "survey_funnel"))
    assert funnel.schema.equals(FUNNEL_SCHEMA) and funnel.num_rows == 1
    row = funnel.to_pylist()[0]
    non_responses = pq.read_metadata(day_file(lake_root, DAY, "non_responses")).num_rows
    responses = pq.read_metadata(day_file(lake_root, DAY, "responses")).num_rows
    assert row["responded"] == responses == 9 == len(response_truth_rows(control, DAY))
    assert row["sent"] == non_responses + responses
    assert non_responses == len(truth_rows(control, DAY))
    assert row["response_rate"] == responses / (non_responses + responses)
    assert row["failed"] == len(failed)
    truth = truth_rows(control, DAY).values()
    assert row["opened"] == sum(1 for r in truth if r["date_opened"] is not None)
    assert row["clicked"] == sum(1 for r in truth if r["date_clicked"] is not None)
    # NPS from the simulator's own answers: % promoters (9-10) - % detractors (0-6)
    scores = [r["nps"] for r in control.truth("date_sent", DAY, DAY, "responses")]
    promoters = sum(1 for n in scores if n >= 9)
    detractors = sum(1 for n in scores if n <= 6)
    assert (row["promoters"], row["detractors"]) == (promoters, detractors)
    assert row["passives"] == len(scores) - promoters - detractors
    assert row["nps"] == pytest.approx(100 * (promoters - detractors) / len(scores))
    # the day's figures on its materialization, which the UI plots over the days
    (materialization,) = result.asset_materializations_for_node("customergauge__survey_funnel")
    figures = {k: v.value for k, v in materialization.metadata.items()}
    assert (figures["sent"], figures["responded"]) == (row["sent"], row["responded"])
    assert figures["response_rate"] == pytest.approx(row["response_rate"])


def test_nps_categories_at_their_edges():
    scores = pl.DataFrame({"nps": [0, 6, 7, 8, 9, 10, None, 11, -1]})
    assert scores.select(nps_category(pl.col("nps"))).to_series().to_list() == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
        None,
        None,
        None,
    ]


def funnel_run(instance, resources, lake_root, day: dt.date):
    return materialize(
        [*sync_assets(), build_funnel_asset(SETTINGS)],
        selection=[FUNNEL_KEY],
        partition_key=day.isoformat(),
        instance=instance,
        resources=lake_resources(resources, lake_root),
    )


def funnel_metadata(result) -> dict:
    (event,) = result.asset_materializations_for_node("customergauge__survey_funnel")
    return {k: v.value for k, v in event.metadata.items()}


def test_a_day_that_was_never_synced_gives_a_funnel_of_unknowns(instance, resources, lake_root):
    empty_day = SIM_START + dt.timedelta(days=20)
    result = funnel_run(instance, resources, lake_root, empty_day)
    assert result.success
    row = pq.read_table(day_file(lake_root, empty_day, "survey_funnel")).to_pylist()[0]
    assert {k for k, v in row.items() if v is not None} == {"computed_at"}
    assert "non_responses and responses not synced" in funnel_metadata(result)["unknown"]


def test_a_day_whose_responses_are_not_synced_has_no_response_rate(
    instance, resources, control, lake_root
):
    # The first load of only non_responses (issue 19): the rate was 0.0, a wrong number.
    control.respond_records(day=DAY, count=7)
    io = lake_resources(resources, lake_root)
    assert materialize(
        sync_assets()[:1], partition_key=DAY.isoformat(), instance=instance, resources=io
    ).success
    result = funnel_run(instance, resources, lake_root, DAY)
    assert result.success
    row = pq.read_table(day_file(lake_root, DAY, "survey_funnel")).to_pylist()[0]
    assert row["non_responses"] == len(truth_rows(control, DAY)) > 0
    assert row["response_rate"] is None and row["sent"] is None and row["responded"] is None
    assert row["nps"] is None and row["promoters"] is None
    metadata = funnel_metadata(result)
    assert metadata["unknown"].startswith("responses not synced")
    assert "response_rate" not in metadata and metadata["non_responses"] == row["non_responses"]

    assert materialize(
        sync_assets()[1:], partition_key=DAY.isoformat(), instance=instance, resources=io
    ).success
    result = funnel_run(instance, resources, lake_root, DAY)
    row = pq.read_table(day_file(lake_root, DAY, "survey_funnel")).to_pylist()[0]
    assert row["responded"] == 7 and row["sent"] == row["non_responses"] + 7
    assert row["response_rate"] == pytest.approx(7 / row["sent"])
    metadata = funnel_metadata(result)
    assert "unknown" not in metadata
    assert metadata["response_rate"] == pytest.approx(row["response_rate"], abs=1e-4)
    assert metadata["sent"] == row["sent"]


def test_the_funnel_declares_its_column_schema():
    spec = build_funnel_asset(SETTINGS).specs_by_key[FUNNEL_KEY]
    columns = spec.metadata["dagster/column_schema"].columns
    assert [c.name for c in columns] == FUNNEL_SCHEMA.names
    assert all(c.description for c in columns)


def test_a_synced_day_of_any_age_brings_the_funnel_up_to_date(instance, resources, lake_root):
    assets = [*sync_assets(), build_funnel_asset(SETTINGS)]
    defs = Definitions(assets=assets, resources=lake_resources(resources, lake_root))
    first = evaluate_automation_conditions(defs=defs, instance=instance)  # a tick before
    assert first.total_requested == 0
    # a day weeks old, as a settle or a full refresh writes it
    materialize(assets[:2], partition_key=DAY.isoformat(), instance=instance, resources=resources)
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert evaluation.get_requested_partitions(FUNNEL_KEY) == {DAY.isoformat()}
    # only one table's day: the funnel waits for the other
    materialize(
        assets[:1], partition_key=SIM_START.isoformat(), instance=instance, resources=resources
    )
    later = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert later.get_requested_partitions(FUNNEL_KEY) == set()


# The example of a user's asset in docs/lake.md: the lake as polars frames, a day or a range.
partitions = daily_partitions(SETTINGS)


@asset(
    partitions_def=partitions,
    backfill_policy=BackfillPolicy.single_run(),
    ins={
        "non_responses": AssetIn(key=["customergauge", "non_responses"]),
        "responses": AssetIn(key=["customergauge", "responses"]),
    },
)
def answered_by_language(non_responses: pl.LazyFrame, responses: pl.LazyFrame) -> MaterializeResult:
    both = pl.concat(
        [
            non_responses.select("date", "language", answered=pl.lit(False)),
            responses.select("date", "language", answered=pl.lit(True)),
        ]
    )
    table = both.group_by("date", "language").agg(pl.col("answered").mean()).collect()
    return MaterializeResult(
        metadata={
            "rows_read": both.select(pl.len()).collect().item(),
            "days": sorted(d.isoformat() for d in table["date"].unique()),
        }
    )


def test_a_users_asset_gets_a_partition_or_a_range_as_lazy_frames(
    instance, resources, control, lake_root
):
    control.respond_records(day=SIM_START, count=5)
    control.respond_records(day=DAY, count=5)
    assets = [*sync_assets(), answered_by_language]
    io = lake_resources(resources, lake_root)
    one_day = sync_then([answered_by_language], DAY.isoformat(), instance, resources, lake_root)
    md = one_day.asset_materializations_for_node("answered_by_language")[0].metadata
    assert md["rows_read"].value == len(truth_rows(control, DAY)) + 5
    assert md["days"].value == [DAY.isoformat()]

    # a range in one run: SIM_START and DAY are synced by now; the day after is not
    materialize(
        assets[:2], partition_key=SIM_START.isoformat(), instance=instance, resources=resources
    )
    ranged = materialize(
        [answered_by_language, *assets[:2]],
        selection=[AssetKey("answered_by_language")],
        tags=RANGE_TAGS,
        instance=instance,
        resources=io,
    )
    md = ranged.asset_materializations_for_node("answered_by_language")[0].metadata
    want = sum(len(truth_rows(control, d)) for d in (SIM_START, DAY)) + 10
    assert md["rows_read"].value == want
    assert md["days"].value == [SIM_START.isoformat(), DAY.isoformat()]


# The copyable example in docs/lake.md, verbatim: a daily asset that returns a DataFrame.
@asset(
    partitions_def=daily_partitions(SETTINGS),
    backfill_policy=BackfillPolicy.multi_run(
        1
    ),  # one day per run: the lake stores one day per output
    ins={
        "non_responses": AssetIn(key=["customergauge", "non_responses"]),
        "responses": AssetIn(key=["customergauge", "responses"]),
    },
    io_manager_key="customergauge_io_manager",  # the DataFrame goes into the lake
)
def response_rate_by_language(non_responses: pl.LazyFrame, responses: pl.LazyFrame) -> pl.DataFrame:
    surveys = pl.concat(
        [
            non_responses.select("language", answered=pl.lit(False)),
            responses.select("language", answered=pl.lit(True)),
        ]
    )
    return (
        surveys.group_by("language")
        .agg(sent=pl.len().cast(pl.Int64), response_rate=pl.col("answered").cast(pl.Float64).mean())
        .collect()
    )


def test_the_readme_example_writes_its_day_into_the_lake(instance, resources, control, lake_root):
    control.respond_records(day=DAY, count=6)
    result = sync_then([response_rate_by_language], DAY.isoformat(), instance, resources, lake_root)
    assert result.success
    written = pq.read_table(day_file(lake_root, DAY, "response_rate_by_language"))
    assert sum(written.column("sent").to_pylist()) == len(truth_rows(control, DAY)) + 6
    assert not any(str(f.type) == "null" for f in written.schema)
    # read back as a later asset would get it (a table cg_assets does not declare)
    frame = scan_days(ParquetLake(str(lake_root)), "response_rate_by_language", [DAY]).collect()
    assert frame.height == written.num_rows and frame["date"].unique().to_list() == [DAY]


# A user's own assets beside the project's tenant, in the same code location: values that are
# not frames, which only Dagster's default IO manager can store.
@asset
def survey_owners() -> dict:
    return {"team": "cx", "tables": ["non_responses", "responses"]}


@asset
def survey_owner_count(survey_owners: dict) -> int:
    return len(survey_owners["tables"])


def io_managers_used(result) -> dict[tuple[str, str], str]:
    """(step, input or output name) -> the key of the IO manager that loaded or stored it."""
    used = {}
    for event in result.all_events:
        if event.event_type_value in ("HANDLED_OUTPUT", "LOADED_INPUT"):
            data = event.event_specific_data
            name = getattr(data, "input_name", None) or data.output_name
            used[(event.step_key, name)] = data.manager_key
    return used


def test_a_users_asset_keeps_the_default_io_manager_beside_the_lake_one(
    simulator, control, instance, lake_root, monkeypatch
):
    """The project's code location (cg_assets.definitions, from CG_* variables) merged with a
    user's assets, run on a real instance: the user's dict goes through Dagster's default
    io_manager, the funnel still reads both tables and writes its day through the lake's."""
    for name in [n for n in os.environ if n.startswith("CG_")]:
        monkeypatch.delenv(name)
    settings = {  # the project's code location as make_resource configures the client
        "CG_API_URL": simulator.url,
        "CG_AUTH_URL": simulator.token_url,
        "CG_CLIENT_ID": DEMO_CLIENT_ID,
        "CG_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "CG_PER_PAGE": str(TEST_PER_PAGE),
        "CG_HTTP_TIMEOUT": "2,2",
        "CG_MAX_RETRIES": "4",
        "CG_BACKOFF_SECONDS": "0.001",
        "CG_START_DATE": SIM_START.isoformat(),
        "CG_SETTLE_AFTER_HOURS": "8784",
        "CG_LAKE_ROOT": str(lake_root),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    mine = Definitions(
        assets=[survey_owners, survey_owner_count],
        jobs=[
            define_asset_job("owners", selection=[survey_owners, survey_owner_count]),
            define_asset_job("funnel", selection=[FUNNEL_KEY]),
        ],
    )
    merged = Definitions.merge(defs(), mine)
    resources = merged.resolve_job_def("owners").resource_defs
    assert LAKE_IO_MANAGER_KEY == "customergauge_io_manager" != "io_manager"
    assert type(merged.resources[LAKE_IO_MANAGER_KEY]).__name__ == "LakeFrameIOManager"
    assert "io_manager" not in merged.resources and "io_manager" in resources  # Dagster's

    owners = merged.resolve_job_def("owners").execute_in_process(instance=instance)
    assert owners.success
    assert owners.output_for_node("survey_owner_count") == 2
    assert io_managers_used(owners) == {
        ("survey_owners", "result"): "io_manager",
        ("survey_owner_count", "survey_owners"): "io_manager",
        ("survey_owner_count", "result"): "io_manager",
    }
    # pickled where Dagster's filesystem IO manager keeps outputs, nothing in the lake
    assert os.path.isfile(os.path.join(instance.storage_directory(), "survey_owners"))
    assert not lake_root.exists()

    control.respond_records(day=DAY, count=5)
    synced = merged.resolve_job_def("customergauge_sync_job").execute_in_process(
        instance=instance, partition_key=DAY.isoformat()
    )
    assert synced.success
    funnel = merged.resolve_job_def("funnel").execute_in_process(
        instance=instance, partition_key=DAY.isoformat()
    )
    assert funnel.success
    step = "customergauge__survey_funnel"
    assert io_managers_used(funnel) == {
        (step, "non_responses"): LAKE_IO_MANAGER_KEY,
        (step, "responses"): LAKE_IO_MANAGER_KEY,
        (step, "result"): LAKE_IO_MANAGER_KEY,
    }
    row = pq.read_table(day_file(lake_root, DAY, "survey_funnel")).to_pylist()[0]
    assert row["responded"] == 5 and row["non_responses"] == len(truth_rows(control, DAY)) > 0
