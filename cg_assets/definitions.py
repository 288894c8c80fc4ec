"""Wires the endpoint table, assets, checks, automation and resources into `Definitions`."""

from __future__ import annotations

from dagster import Definitions

from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.defs.assets import asset_key_for, build_sync_asset
from cg_assets.defs.checks import build_freshness_check
from cg_assets.defs.resources import default_resources
from cg_assets.settings import LoadSettings


def build_definitions(settings: LoadSettings) -> Definitions:
    return Definitions(
        assets=[build_sync_asset(endpoint, settings) for endpoint in ENDPOINTS],
        asset_checks=[build_freshness_check(asset_key_for(e), settings) for e in ENDPOINTS],
        resources=default_resources(),
    )


defs = build_definitions(LoadSettings.from_env())
