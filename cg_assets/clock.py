"""The one place the Dagster layer asks what time it is.

Settling, healing and the hole check all compare a day with "now"; reading it here lets
the lifetime tests run months of schedule and sensor ticks in simulated time.
"""

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
