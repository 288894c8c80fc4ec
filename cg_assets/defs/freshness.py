"""How fresh the lake should be: Dagster's own freshness policy on each sync asset.

Dagster's freshness daemon evaluates it on its own schedule (every 30 s under `dg dev` and
`dagster-daemon run`), whether or not a run happens, and the UI shows the asset as fresh,
late (warn) or stale (fail). With automation on, the hourly catch-up syncs at minute
CG_SCHEDULE_MINUTE, so the newest sync is normally under an hour old: one missed hour
warns, two fail. With automation off nothing keeps the lake current on its own, so no
policy is set (the asset shows no freshness rather than a failure nobody asked for).

The policy judges the asset as a whole (any day's sync counts): a sync of an old day keeps
it green while today's catch-up fails. day_freshness.py judges today and yesterday each.
"""

from __future__ import annotations

import datetime as dt

from dagster import FreshnessPolicy

from cg_assets.settings import LoadSettings

WARN_AFTER = dt.timedelta(minutes=90)
FAIL_AFTER = dt.timedelta(hours=2)


def freshness_policy(settings: LoadSettings) -> FreshnessPolicy | None:
    if not settings.automation:
        return None
    return FreshnessPolicy.time_window(fail_window=FAIL_AFTER, warn_window=WARN_AFTER)
