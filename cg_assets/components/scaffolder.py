"""`dg scaffold defs cg_assets.CustomerGaugeComponent <name>`: a commented defs.yaml."""

from __future__ import annotations

from dagster import Scaffolder, ScaffoldRequest

DEFS_YAML = """\
# One CustomerGauge tenant (docs/component.md in cg_assets). Add a folder like this one per
# tenant, each with its own key_prefix and lake_root.
type: {type_name}

attributes:
  # Prefix of this tenant's asset keys, jobs, schedules, sensors, resources and pool.
  key_prefix: {prefix}

  # The region you log in at, cvm.<region>.customergauge.com: eu, us or au
  # (or set api_url and auth_url instead).
  region: eu

  # The Connected App's credentials, as environment variable templates: they are read
  # when a run starts and never stored in the code location or shown in the UI.
  client_id: "{{{{ env.{env}_CLIENT_ID }}}}"
  client_secret: "{{{{ env.{env}_CLIENT_SECRET }}}}"

  # Where this tenant's lake lives: a folder, or s3://bucket/prefix. One per tenant.
  lake_root: data/{prefix}

  # The first day to sync (YYYY-MM-DD) and the CustomerGauge system's time zone.
  start_date: "2024-01-01"
  timezone: UTC

  # Start the hourly catch-up and the settle sensor running.
  automation: false

  # Personal data: keep, hash (needs pii_key: "{{{{ env.NAME }}}}") or drop.
  # pii_mode: keep

  # Alerts: failed days, holes, late days and new fields of this tenant, posted by the
  # sensor {prefix}_alerts to a Slack-compatible webhook (a secret, so a template).
  # alert_webhook_url: "{{{{ env.{env}_ALERT_WEBHOOK_URL }}}}"

  # Every other attribute (tables, date fields, settle_after_hours, answer_window_days,
  # table_format, concurrency, ...): docs/component.md.
"""


def _prefix_of(target_name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in target_name.lower()).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "customergauge_" + cleaned
    return cleaned[:63]


class CustomerGaugeScaffolder(Scaffolder):
    def scaffold(self, request: ScaffoldRequest) -> None:
        prefix = _prefix_of(request.target_path.name)
        path = request.target_path / "defs.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            DEFS_YAML.format(type_name=request.type_name, prefix=prefix, env=prefix.upper())
        )
