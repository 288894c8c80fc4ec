"""Readers of a Delta table see a whole version while a day is replaced again and again:
polars scan_delta and DuckDB over the table's Arrow dataset, 0 errors, 0 wrong counts.
(benchmarks/delta_vs_parquet.py runs the same with the Parquet lake's figure beside it.)"""

from __future__ import annotations

from cg_assets_tests.test_lake.reader_stress import replace_while_reading


def test_readers_see_whole_versions_while_a_day_is_replaced(tmp_path):
    result = replace_while_reading("delta", str(tmp_path / "lake"), replacements=30)
    assert result.errors == {}, result.first_errors
    assert result.wrong_counts == {}
    # Both engines really scanned while the day was being replaced.
    assert result.scans["polars"] > 0 and result.scans["duckdb"] > 0
