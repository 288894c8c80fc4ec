"""cg_assets: keep a Parquet data lake in step with the CustomerGauge v7 sync APIs."""
