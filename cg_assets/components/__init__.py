"""cg_assets as a Dagster Component (`cg_assets.CustomerGaugeComponent`, docs/component.md)."""
