"""Daily partitions in the CustomerGauge system time zone, through today (hourly catch-up)."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from cg_assets.settings import LoadSettings


def daily_partitions(settings: LoadSettings) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(),
        timezone=settings.timezone,
        # end_offset=1 adds today's (still open) day, so it can be synced every hour.
        end_offset=1,
    )
