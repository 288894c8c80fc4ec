"""The Dagster layer, thin: each module turns plain sync results into Dagster objects."""
