"""Which rows of a batch belong to a partition's day."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc


def in_day_mask(dates: pa.Array | pa.ChunkedArray, day: dt.date) -> pa.Array | pa.ChunkedArray:
    """True where a timestamp falls on `day`; a null date is not on any day."""
    on_day = pc.equal(pc.cast(dates, pa.date32()), pa.scalar(day, pa.date32()))
    return pc.fill_null(on_day, False)
