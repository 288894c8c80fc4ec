"""The lake's table schema, by job (this module only gathers their public names):

- `columns.py`: how an endpoint row declares columns (kinds, personal flags) and the one
  explicit Arrow schema they make;
- `decode.py`: wire records -> a RecordBatch of that schema, undeclared fields kept;
- `envelope.py`: a page body parsed by Arrow straight into records;
- `day_mask.py`: which rows belong to a partition's day.
"""

from cg_assets.lake.columns import (
    BOOL,
    EXTRA_FIELDS_COLUMN,
    FLOAT,
    INT,
    KEY,
    SCHEMA_VERSION,
    STRING,
    STRING_LIST,
    SYNCED_AT_COLUMN,
    TIMESTAMP,
    Column,
    Item,
    Kind,
    arrow_schema,
    struct_list,
)
from cg_assets.lake.day_mask import in_day_mask
from cg_assets.lake.decode import RecordDecodeError, RecordDecoder

__all__ = [
    "BOOL",
    "EXTRA_FIELDS_COLUMN",
    "FLOAT",
    "INT",
    "KEY",
    "SCHEMA_VERSION",
    "STRING",
    "STRING_LIST",
    "SYNCED_AT_COLUMN",
    "TIMESTAMP",
    "Column",
    "Item",
    "Kind",
    "RecordDecodeError",
    "RecordDecoder",
    "arrow_schema",
    "in_day_mask",
    "struct_list",
]
