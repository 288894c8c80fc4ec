"""Personal data in the lake: keyed hashing, the keep|hash|drop policy, suppression of
erased contacts, erasure and retention. Plain functions and classes, no Dagster (the
Dagster layer is cg_assets/defs/privacy_*.py)."""
