"""`cg_assets.CustomerGaugeComponent`: one CustomerGauge tenant in any dg project.

A `defs.yaml` per tenant (`dg scaffold defs cg_assets.CustomerGaugeComponent <name>`):

    type: cg_assets.CustomerGaugeComponent
    attributes:
      key_prefix: customergauge_eu
      region: eu
      client_id: "{{ env.CG_EU_CLIENT_ID }}"
      client_secret: "{{ env.CG_EU_CLIENT_SECRET }}"
      lake_root: /srv/lake/eu

This project's own tenant is one too (cg_assets/defs/customergauge/defs.yaml), every
attribute there an `"{{ env.CG_... }}"` template of the variables of docs/configuration.md.

The attributes are typed and checked when the code location loads (`dg check defs` names
a bad one) by the rules of cg_assets/settings.py, the same as `make run`'s pre-check; an
attribute written as an env template is read by them too (env_templates.py). The
definitions are built by tenant_defs.py from the typed values. Secrets are `EnvVar`s:
their values are read only when a run starts (the alert webhook's when its sensor ticks).
docs/component.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

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
from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator

from cg_assets.components.env_templates import (
    UNSET,
    FromVariable,
    identifier_field,
    secret_field,
    setting_field,
)
from cg_assets.components.scaffolder import CustomerGaugeScaffolder
from cg_assets.customergauge.endpoints import ENDPOINTS
from cg_assets.customergauge.resource import CustomerGaugeResource
from cg_assets.defs.io_managers import LakeFrameIOManager
from cg_assets.defs.resources import LakeResource
from cg_assets.defs.tenant import DEFAULT_PREFIX, Tenant, check_prefix
from cg_assets.defs.tenant_defs import build_tenant_definitions
from cg_assets.privacy.resource import PrivacyResource
from cg_assets.settings import (
    CLIENT_RULES,
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HEADERS_DEADLINE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JSON_DEPTH,
    DEFAULT_MAX_PAGES_PER_DAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RESPONSE_DEADLINE_SECONDS,
    DEFAULT_RETRY_BUDGET_SECONDS,
    LOAD_RULES,
    PRIVACY_RULES,
    RULES,
    ClientSettings,
    LoadSettings,
    SettingsError,
    check_client_values,
    load_settings,
    privacy_settings,
)


def _doc(description: str) -> Resolver:
    """A field's description, in the schema dg shows (`dg list components`, the UI)."""
    return Resolver.default(description=description)


def _setting(name: str, model_field_type: Any) -> Resolver:
    return setting_field(RULES[name], model_field_type)


TableName = Literal["non_responses", "responses"]
Region = Literal["eu", "us", "au"]
DateField = Literal["date_sent", "date_creation", "date_order"]
ResponsesDateField = Literal["date_sent", "date_creation", "date_order", "date_survey_response"]
SchemaContract = Literal["evolve", "freeze"]
TableFormat = Literal["parquet", "delta"]
PiiMode = Literal["keep", "hash", "drop"]
Timeout = float | list[float]

LOAD_ATTRIBUTES = tuple(r.name for r in LOAD_RULES)
CLIENT_ATTRIBUTES = tuple(r.name for r in CLIENT_RULES)
PRIVACY_ATTRIBUTES = tuple(r.name for r in PRIVACY_RULES)
_VARIABLES = "cg_assets/variables"  # the validation context's attribute -> variable


@scaffold_with(CustomerGaugeScaffolder)
class CustomerGaugeComponent(Component, Resolvable, Model):
    """One CustomerGauge tenant: its survey tables synced day by day into its own lake, with
    the settle sensor, the hourly catch-up, the funnel, the checks and the privacy jobs."""

    # EnvVar attributes stay EnvVars (pydantic would turn them into plain strings).
    model_config = ConfigDict(arbitrary_types_allowed=True, hide_input_in_errors=True)

    key_prefix: Annotated[
        str,
        _doc(
            "The asset key prefix, and the prefix of every job, schedule, sensor, "
            "resource key and pool of this tenant: give each tenant of a code location its own "
            "(lower-case letters, digits, underscores)."
        ),
    ] = DEFAULT_PREFIX
    legacy_resource_keys: Annotated[
        bool,
        _doc(
            "This project's own tenant only: the resource keys customergauge and lake it "
            "always had instead of prefixed ones (its IO manager is customergauge_io_manager "
            "either way). At most one tenant of a code location may."
        ),
    ] = False
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
    lake_root: Annotated[str, _setting("lake_root", str)]
    region: Annotated[Region | None, _setting("region", Region | None)] = None
    api_url: Annotated[str | None, _setting("api_url", str | None)] = None
    auth_url: Annotated[str | None, _setting("auth_url", str | None)] = None
    start_date: Annotated[dt.date, _setting("start_date", str)] = LoadSettings.start_date
    timezone: Annotated[str, _setting("timezone", str)] = LoadSettings.timezone
    tables: Annotated[
        list[TableName] | None,
        _doc("Which tables to sync; unset: both (the funnel needs both)."),
    ] = None
    date_field: Annotated[DateField, _setting("date_field", DateField)] = "date_sent"
    responses_date_field: Annotated[
        ResponsesDateField, _setting("responses_date_field", ResponsesDateField)
    ] = "date_sent"
    settle_after_hours: Annotated[int, _setting("settle_after_hours", int)] = (
        LoadSettings.settle_after_hours
    )
    answer_window_days: Annotated[int, _setting("answer_window_days", int)] = (
        LoadSettings.answer_window_days
    )
    automation: Annotated[bool, _setting("automation", bool)] = LoadSettings.automation
    schedule_minute: Annotated[int, _setting("schedule_minute", int)] = LoadSettings.schedule_minute
    settle_max_per_tick: Annotated[int, _setting("settle_max_per_tick", int)] = (
        LoadSettings.settle_max_per_tick
    )
    sensor_interval_seconds: Annotated[int, _setting("sensor_interval_seconds", int)] = (
        LoadSettings.sensor_interval_seconds
    )
    alert_webhook_url: Annotated[
        EnvVar | None,
        secret_field(
            'A Slack-compatible incoming webhook, as "{{ env.NAME }}": the sensor '
            "{key_prefix}_alerts posts to it once per failed sync day, hole or overdue close, "
            "red freshness check and new untyped field of this tenant (docs/operations.md). "
            "Read at each tick, never shown; while the variable is unset the sensor skips, "
            "saying so. Not written: no alert sensor. A literal is refused.",
            required=False,
            # Written but unset: the sensor stays and its skip names the variable, so a
            # missing secret shows in the UI instead of the alerts vanishing unnoticed.
            keep_when_unset=True,
        ),
    ] = None
    schema_contract: Annotated[SchemaContract, _setting("schema_contract", SchemaContract)] = (
        "evolve"
    )
    table_format: Annotated[TableFormat, _setting("table_format", TableFormat)] = "parquet"
    pii_mode: Annotated[PiiMode, _setting("pii_mode", PiiMode)] = "keep"
    pii_key: Annotated[
        EnvVar | None,
        secret_field(
            "The HMAC key of hash mode, retention and erasure (at least 32 characters), as "
            '"{{ env.NAME }}"; left unset when that variable is not set where the code '
            "location loads.",
            required=False,
        ),
    ] = None
    pii_previous_keys: Annotated[
        EnvVar | None,
        secret_field(
            'Earlier keys after a rotation, comma-separated, as "{{ env.NAME }}": the '
            "suppression list is still matched under them.",
            required=False,
        ),
    ] = None
    pii_retention_days: Annotated[int | None, _setting("pii_retention_days", int | None)] = None
    pii_clear_segments: Annotated[list[str], _setting("pii_clear_segments", list[str] | str)] = []
    concurrency: Annotated[int, _setting("concurrency", int)] = ClientSettings.concurrency
    per_page: Annotated[int, _setting("per_page", int)] = ClientSettings.per_page
    max_requests_per_second: Annotated[
        float | None, _setting("max_requests_per_second", float | None)
    ] = None
    http_timeout: Annotated[Timeout, _setting("http_timeout", Timeout)] = [
        DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_READ_TIMEOUT,
    ]
    max_retries: Annotated[int, _setting("max_retries", int)] = DEFAULT_MAX_RETRIES
    retry_budget_seconds: Annotated[float, _setting("retry_budget_seconds", float)] = (
        DEFAULT_RETRY_BUDGET_SECONDS
    )
    backoff_seconds: Annotated[float, _setting("backoff_seconds", float)] = DEFAULT_BACKOFF_SECONDS
    extra_params: Annotated[str | None, _setting("extra_params", str | None)] = None
    http_headers_deadline_seconds: Annotated[
        float, _setting("http_headers_deadline_seconds", float)
    ] = DEFAULT_HEADERS_DEADLINE_SECONDS
    http_response_deadline_seconds: Annotated[
        float, _setting("http_response_deadline_seconds", float)
    ] = DEFAULT_RESPONSE_DEADLINE_SECONDS
    max_body_bytes: Annotated[int, _setting("max_body_bytes", int)] = DEFAULT_MAX_BODY_BYTES
    max_json_depth: Annotated[int, _setting("max_json_depth", int)] = DEFAULT_MAX_JSON_DEPTH
    max_pages_per_day: Annotated[int, _setting("max_pages_per_day", int)] = (
        DEFAULT_MAX_PAGES_PER_DAY
    )
    adopt_api: Annotated[str | None, _setting("adopt_api", str | None)] = None

    # --- checks, when the component is made (from a defs.yaml or in Python) --------------

    def __init__(self, **data: Any) -> None:
        # BaseModel.__init__ without a validation context; ours collects the variables the
        # attributes were read from, so that an error names what the user set.
        self.__pydantic_validator__.validate_python(
            data, self_instance=self, context={_VARIABLES: {}}
        )

    @model_validator(mode="before")
    @classmethod
    def _unset_is_the_default(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        variables = info.context.get(_VARIABLES, {}) if isinstance(info.context, dict) else {}
        values = {}
        for key, value in data.items():
            if isinstance(value, FromVariable):
                variables[key] = value.variable
                value = value.value
            if value is not UNSET:
                values[key] = value
        return values

    @field_validator(*RULES, mode="after")
    @classmethod
    def _by_its_rule(cls, value: Any, info: ValidationInfo) -> Any:
        # A value written in YAML was checked by the same rule when it was read; one given
        # in Python is checked here.
        return value if value is None else RULES[str(info.field_name)].of(value, info.field_name)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> CustomerGaugeComponent:
        variables = info.context.get(_VARIABLES, {}) if isinstance(info.context, dict) else {}

        def name(attribute: str) -> str:
            return variables.get(attribute, attribute)

        check_prefix(self.key_prefix)
        load_settings(self._values(LOAD_ATTRIBUTES), name)  # the start date, in its time zone
        check_client_values(self._values(CLIENT_ATTRIBUTES), name)
        privacy_settings(self._values(PRIVACY_ATTRIBUTES), name)
        keep_needs_key = self.pii_retention_days is not None and self.pii_mode != "drop"
        if self.pii_key is None and (self.pii_mode == "hash" or keep_needs_key):
            need = "pii_mode is hash" if self.pii_mode == "hash" else "pii_retention_days is set"
            raise SettingsError(
                f"{need} but pii_key is not set (or its variable is not set where the code "
                'location loads): add pii_key: "{{ env.NAME }}" (the HMAC key, at least 32 '
                "characters)" + ("" if self.pii_mode == "hash" else ", or set pii_mode: drop") + "."
            )
        if self.tables is not None and (
            not self.tables or len(set(self.tables)) != len(self.tables)
        ):
            raise SettingsError(
                "tables is empty or lists a table twice: expected non_responses and/or "
                "responses, each once (unset: both)."
            )
        return self

    # --- hooks ----------------------------------------------------------------------------

    def get_asset_spec(self, spec: AssetSpec) -> AssetSpec:
        """Override to group, tag or describe the assets (`spec.replace_attributes(...)`).
        The key is the key_prefix's: sensors, jobs and the funnel refer to it."""
        return spec

    # --- building -------------------------------------------------------------------------

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.key_prefix, legacy_resource_keys=self.legacy_resource_keys)

    def _values(self, names: tuple[str, ...]) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names}

    def load_settings(self) -> LoadSettings:
        return load_settings(self._values(LOAD_ATTRIBUTES))

    def client_resource(self) -> CustomerGaugeResource:
        settings = {name: getattr(self, name) for name in CLIENT_ATTRIBUTES}
        # One number is both timeouts: the resource holds [connect, read].
        settings["http_timeout"] = RULES["http_timeout"].of(self.http_timeout)
        return CustomerGaugeResource(
            client_id=self.client_id, client_secret=self.client_secret, **settings
        )

    def lake_resource(self) -> LakeResource:
        return LakeResource(
            root=self.lake_root,
            table_format=self.table_format,
            adopt_api=self.adopt_api,
            privacy=PrivacyResource(
                key=self.pii_key,
                previous_keys=self.pii_previous_keys,
                mode=self.pii_mode,
                retention_days=self.pii_retention_days,
                clear_segments=self.pii_clear_segments,
            ),
        )

    def io_manager(self) -> LakeFrameIOManager:
        return LakeFrameIOManager(root=self.lake_root, table_format=self.table_format)

    def resources(self) -> dict[str, Any]:
        """The tenant's resources under its resource keys, as its definitions bind them."""
        tenant = self.tenant
        return {
            tenant.client_resource_key: self.client_resource(),
            tenant.lake_resource_key: self.lake_resource(),
            tenant.io_manager_key: self.io_manager(),
        }

    def build_tenant(self, settings: LoadSettings) -> Definitions:
        """This tenant's definitions, shaped by `settings` (the attributes' own, or a test's)."""
        defs = build_tenant_definitions(
            settings,
            client=self.client_resource(),
            lake=self.lake_resource(),
            io_manager=self.io_manager(),
            tenant=self.tenant,
            endpoints=tuple(e for e in ENDPOINTS if self.tables is None or e.name in self.tables),
            alert_webhook_url=self.alert_webhook_url,
        )
        if type(self).get_asset_spec is CustomerGaugeComponent.get_asset_spec:
            return defs
        return defs.map_asset_specs(func=self._checked_spec)

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        return self.build_tenant(self.load_settings())

    def _checked_spec(self, spec: AssetSpec) -> AssetSpec:
        new = self.get_asset_spec(spec)
        if new.key != spec.key:
            raise SettingsError(
                f"get_asset_spec changed the key {spec.key.to_user_string()} to "
                f"{new.key.to_user_string()}: set key_prefix instead (the sensors, jobs and "
                "the funnel refer to the key)."
            )
        return new
