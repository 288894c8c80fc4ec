"""The lake side: the declared Arrow schema and the Parquet files, one per day."""
