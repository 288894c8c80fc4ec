"""`cg_assets.CustomerGaugeComponent`: one CustomerGauge tenant in any dg project.

A `defs.yaml` per tenant (`dg scaffold defs cg_assets.CustomerGaugeComponent <name>`):

    type: cg_assets.CustomerGaugeComponent
    attributes:
      key_prefix: customergauge_eu
      region: eu
      client_id: "{{ env.CG_EU_CLIENT_ID }}"
      client_secret: "{{ env.CG_EU_CLIENT_SECRET }}"
      lake_root: /srv/lake/eu

The attributes are validated when the code location loads (`dg check defs` names a bad
one) by the same parsers as the CG_* variables of the project's own code location, and
the definitions are built by the same function (cg_assets/defs/tenant_defs.py). Secrets
are `EnvVar`s (secrets.py): their values are read only when a run starts. docs/component.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from dagster import (
    AssetSpec,
    Component,
    ComponentLoadContext,
    Definitions,
    EnvVar,
    Model,
    Resolvable,
    Resolver,
    scaffold_with,
)
from pydantic import ConfigDict

from cg_assets.components.scaffolder import CustomerGaugeScaffolder
from cg_assets.components.secrets import identifier_field, secret_field
from cg_assets.customergauge import wire
from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.defs.io_managers import LakeFrameIOManager
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.tenant import DEFAULT_PREFIX, Tenant, check_prefix
from cg_assets.defs.tenant_defs import build_tenant_definitions
from cg_assets.privacy.resource import PrivacyResource
from cg_assets.settings import (
    ClientSettings,
    LoadSettings,
    PrivacySettings,
    SettingsError,
    parse_path,
    table_format_from_env,
)

T = TypeVar("T")


def _doc(description: str) -> Resolver:
    """A field's description, in the schema dg shows (`dg list components`, the UI)."""
    return Resolver.default(description=description)


TableName = Literal["non_responses", "responses"]

# Attributes passed to CustomerGaugeResource as they are (its fields carry the same names).
CLIENT_ATTRIBUTES = (
    "region",
    "api_url",
    "auth_url",
    "per_page",
    "http_timeout",
    "max_retries",
    "retry_budget_seconds",
    "backoff_seconds",
    "extra_params",
    "concurrency",
    "max_requests_per_second",
    "http_headers_deadline_seconds",
    "http_response_deadline_seconds",
    "max_body_bytes",
    "max_json_depth",
    "max_pages_per_day",
)
LOAD_ATTRIBUTES = (
    "timezone",
    "start_date",
    "date_field",
    "responses_date_field",
    "settle_after_hours",
    "answer_window_days",
    "schedule_minute",
    "settle_max_per_tick",
    "sensor_interval_seconds",
)
PRIVACY_ATTRIBUTES = ("pii_mode", "pii_retention_days", "pii_clear_segments")


def _variable(attribute: str) -> str:
    """Each attribute is the CG_* variable of the env-driven code location, lower-cased."""
    return "CG_" + attribute.upper()


@scaffold_with(CustomerGaugeScaffolder)
class CustomerGaugeComponent(Component, Resolvable, Model):
    """One CustomerGauge tenant: its survey tables synced day by day into its own lake, with
    the settle sensor, the hourly catch-up, the funnel, the checks and the privacy jobs."""

    # EnvVar attributes stay EnvVars (pydantic would turn them into plain strings).
    model_config = ConfigDict(arbitrary_types_allowed=True)

    key_prefix: Annotated[
        str,
        _doc(
            "The asset key prefix, and the prefix of every job, schedule, sensor, "
            "resource key and pool of this tenant: give each tenant of a code location its own "
            "(lower-case letters, digits, underscores)."
        ),
    ] = DEFAULT_PREFIX
    client_id: Annotated[
        EnvVar | str,
        identifier_field(
            'The Connected App client id, usually "{{ env.CG_CLIENT_ID }}" (read when a run '
            "starts); a literal id is allowed."
        ),
    ]
    client_secret: Annotated[
        EnvVar,
        secret_field(
            'The Connected App secret, as "{{ env.NAME }}": read when a run starts, never '
            "stored in the snapshot, the run config or the UI. A literal is refused."
        ),
    ]
    lake_root: Annotated[
        str,
        _doc(
            "Where this tenant's lake lives: a local folder or s3://bucket/prefix. "
            "Each tenant needs its own."
        ),
    ]
    region: Annotated[
        Literal["eu", "us", "au"] | None,
        _doc(
            "The region in the URL you log in at (cvm.{region}.customergauge.com); "
            "or set api_url and auth_url."
        ),
    ] = None
    api_url: Annotated[str | None, _doc("Default from the region.")] = None
    auth_url: Annotated[str | None, _doc("Default from the region.")] = None
    start_date: Annotated[str, _doc("The first day (YYYY-MM-DD) partitions exist for.")] = (
        "2024-01-01"
    )
    timezone: Annotated[str, _doc("The CustomerGauge system's time zone: days are its days.")] = (
        "UTC"
    )
    tables: Annotated[
        list[TableName] | None,
        _doc("Which tables to sync; unset: both (the funnel needs both)."),
    ] = None
    date_field: Annotated[
        str,
        _doc("The non-responses date field a day is a day of: " + ", ".join(wire.PERIOD_FIELDS)),
    ] = "date_sent"
    responses_date_field: Annotated[
        str, _doc("The responses date field: " + ", ".join(wire.RESPONSES_PERIOD_FIELDS))
    ] = "date_sent"
    settle_after_hours: Annotated[
        int, _doc("Hours after a day ends before it is fetched whole and settled.")
    ] = 48
    answer_window_days: Annotated[
        int, _doc("Days a send day stays open for answers (revisited daily).")
    ] = 30
    automation: Annotated[bool, _doc("Start the schedules and sensors running (else stopped).")] = (
        False
    )
    schedule_minute: Annotated[int, _doc("Minute of the hourly catch-up.")] = 5
    settle_max_per_tick: Annotated[int, _doc("Runs a settle sensor tick asks.")] = 3
    sensor_interval_seconds: Annotated[int, _doc("Settle sensor interval.")] = 300
    table_format: Annotated[
        Literal["parquet", "delta"], _doc("One Parquet file per day, or a Delta table per table.")
    ] = "parquet"
    pii_mode: Annotated[
        Literal["keep", "hash", "drop"],
        _doc("Personal columns kept clear, HMAC-hashed or dropped."),
    ] = "keep"
    pii_key: Annotated[
        EnvVar | None,
        secret_field('The HMAC key of hash mode, as "{{ env.NAME }}".'),
    ] = None
    pii_previous_keys: Annotated[
        EnvVar | None,
        secret_field('Earlier keys after a rotation, comma-separated, as "{{ env.NAME }}".'),
    ] = None
    pii_retention_days: Annotated[
        int | None, _doc("Days after which personal values are hashed; unset: never.")
    ] = None
    pii_clear_segments: Annotated[
        list[str] | None, _doc("Segment names whose values stay clear in hash/drop mode.")
    ] = None
    concurrency: Annotated[int | None, _doc("Days a run syncs at once, 1-16.")] = None
    per_page: Annotated[int | None, _doc("Records a page, 1-1000.")] = None
    max_requests_per_second: Annotated[
        float | None, _doc("A request ceiling across all days of a run.")
    ] = None
    http_timeout: Annotated[
        float | list[float] | None, _doc("Seconds for both, or [connect, read], e.g. [10, 60].")
    ] = None
    max_retries: Annotated[int | None, _doc("Retries of a request, 0-50.")] = None
    retry_budget_seconds: Annotated[float | None, _doc("Retry time budget.")] = None
    backoff_seconds: Annotated[float | None, _doc("First retry back-off.")] = None
    extra_params: Annotated[
        str | None, _doc("A query string sent on every page, e.g. filter[cgid]=12.")
    ] = None
    http_headers_deadline_seconds: Annotated[
        float | None, _doc("Seconds a response's headers may take, at most 86400 (90).")
    ] = None
    http_response_deadline_seconds: Annotated[
        float | None, _doc("Seconds a whole response may take, at most 86400 (300).")
    ] = None
    max_body_bytes: Annotated[int | None, _doc("Largest response body read (64 MiB).")] = None
    max_json_depth: Annotated[int | None, _doc("Deepest JSON nesting accepted, 8-512 (64).")] = None
    max_pages_per_day: Annotated[int | None, _doc("Pages a day may take (5000).")] = None

    # --- hooks ----------------------------------------------------------------------------

    def get_asset_spec(self, spec: AssetSpec) -> AssetSpec:
        """Override to group, tag or describe the assets (`spec.replace_attributes(...)`).
        The key is the key_prefix's: sensors, jobs and the funnel refer to it."""
        return spec

    # --- building -------------------------------------------------------------------------

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.key_prefix)

    def setting_values(self) -> dict[str, str]:
        """The attributes as the CG_* variables the settings parsers read."""
        values: dict[str, str] = {}
        for name in (*CLIENT_ATTRIBUTES, *LOAD_ATTRIBUTES, *PRIVACY_ATTRIBUTES, "table_format"):
            text = self._text(name)
            if text is not None:
                values[_variable(name)] = text
        values["CG_AUTOMATION"] = "on" if self.automation else "off"
        return values

    def _text(self, name: str) -> str | None:
        """An attribute as its variable's text (lists comma-separated), None when unset."""
        value = getattr(self, name)
        if value is None:
            return None
        return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)

    def load_settings(self) -> LoadSettings:
        return _named(self, lambda: LoadSettings.from_env(self.setting_values()))

    def validate_run_settings(self) -> None:
        """The run-time settings, checked where the code location loads (not when a run
        starts, as the env-driven route must): an attribute is known here."""
        values = self.setting_values()
        check_prefix(self.key_prefix)
        _named(self, lambda: ClientSettings.from_env(values))
        _named(self, lambda: PrivacySettings.from_env(values))
        _named(self, lambda: table_format_from_env(values))
        _named(self, lambda: parse_path(_variable("lake_root"), self.lake_root))
        if self.pii_mode == "hash" and self.pii_key is None:
            raise SettingsError(
                f"CustomerGaugeComponent {self.key_prefix}: pii_mode is hash but pii_key is not "
                'set: add pii_key: "{{ env.NAME }}" (the HMAC key, at least 32 characters).'
            )
        if self.tables is not None and (
            not self.tables or len(set(self.tables)) != len(self.tables)
        ):
            raise SettingsError(
                f"CustomerGaugeComponent {self.key_prefix}: tables is empty or lists a table "
                "twice: expected non_responses and/or responses, each once (unset: both)."
            )

    def client_resource(self) -> CustomerGaugeResource:
        fields = {n: self._text(n) for n in CLIENT_ATTRIBUTES if getattr(self, n) is not None}
        return CustomerGaugeResource(
            client_id=self.client_id, client_secret=self.client_secret, **fields
        )

    def lake_resource(self) -> LakeResource:
        return LakeResource(
            root=self.lake_root,
            table_format=self.table_format,
            privacy=PrivacyResource(
                key=self.pii_key,
                previous_keys=self.pii_previous_keys,
                mode=self.pii_mode,
                retention_days=self.pii_retention_days,
                clear_segments=",".join(self.pii_clear_segments)
                if self.pii_clear_segments
                else None,
                read_environment=False,
            ),
        )

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        settings = self.load_settings()
        self.validate_run_settings()
        defs = build_tenant_definitions(
            settings,
            client=self.client_resource(),
            lake=self.lake_resource(),
            io_manager=LakeFrameIOManager(root=self.lake_root, table_format=self.table_format),
            tenant=self.tenant,
            endpoints=tuple(e for e in ENDPOINTS if self.tables is None or e.name in self.tables),
            retention_set=self.pii_retention_days is not None,
        )
        if type(self).get_asset_spec is CustomerGaugeComponent.get_asset_spec:
            return defs
        return defs.map_asset_specs(func=self._checked_spec)

    def _checked_spec(self, spec: AssetSpec) -> AssetSpec:
        new = self.get_asset_spec(spec)
        if new.key != spec.key:
            raise SettingsError(
                f"get_asset_spec changed the key {spec.key.to_user_string()} to "
                f"{new.key.to_user_string()}: set key_prefix instead (the sensors, jobs and "
                "the funnel refer to the key)."
            )
        return new


_VARIABLE = re.compile(r"\bCG_[A-Z_]+\b")


def _named(component: CustomerGaugeComponent, parse: Callable[[], T]) -> T:
    """Run a settings parser; its error names the attribute, not the variable."""
    attributes = set(component.__class__.model_fields)
    try:
        return parse()
    except (SettingsError, ValueError) as exc:

        def attribute(match: re.Match[str]) -> str:
            name = match.group(0)[3:].lower()
            return name if name in attributes or name == "automation" else match.group(0)

        raise SettingsError(
            f"CustomerGaugeComponent {component.key_prefix}: {_VARIABLE.sub(attribute, str(exc))}"
        ) from None
