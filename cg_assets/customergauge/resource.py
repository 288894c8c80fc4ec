"""The Dagster resource: settings in, a ready `CustomerGaugeClient` out."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import ConfigDict, Field, PrivateAttr

from cg_assets.customergauge.client import CustomerGaugeClient
from cg_assets.settings import ClientSettings, SettingsError

CREDENTIAL_FIELDS = ("client_id", "client_secret")


def variable_for(field_name: str) -> str:
    """Every setting field is named after its variable: per_page <-> CG_PER_PAGE."""
    return "CG_" + field_name.upper()


def _setting(accepts: str) -> Any:
    return Field(default=None, description=f"{accepts} (docs/configuration.md).")


class CustomerGaugeResource(ConfigurableResource):
    """OAuth2 client-credentials access to the CustomerGauge v7 sync APIs.

    Every field is a run-time setting, named after its environment variable, and is
    normally given as `dagster.EnvVar` (see `from_environment`): resolved when a run
    starts, never shown as a value in run config or the UI. Values are text, parsed and
    validated by `ClientSettings` (one parser, whose errors name the variable) when the
    resource is set up for a run. A new setting is one line here: a field named like its
    variable (CG_FOO -> foo) and a matching field in ClientSettings.
    """

    # Tests and Python callers may pass numbers (per_page=50): they are taken as text.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    client_id: str = Field(description="Connected App client id (EnvVar('CG_CLIENT_ID')).")
    client_secret: str = Field(description="Connected App secret (EnvVar('CG_CLIENT_SECRET')).")
    region: str | None = _setting("CG_REGION: eu, us or au")
    api_url: str | None = _setting("CG_API_URL: default from the region")
    auth_url: str | None = _setting("CG_AUTH_URL: default from the region")
    per_page: str | None = _setting("CG_PER_PAGE: 1..1000, default 1000")
    http_timeout: str | None = _setting("CG_HTTP_TIMEOUT: CONNECT,READ seconds")
    max_retries: str | None = _setting("CG_MAX_RETRIES: 0..50")
    retry_budget_seconds: str | None = _setting("CG_RETRY_BUDGET_SECONDS")
    backoff_seconds: str | None = _setting("CG_BACKOFF_SECONDS")
    extra_params: str | None = _setting("CG_EXTRA_PARAMS: a query string sent on every page")
    concurrency: str | None = _setting("CG_CONCURRENCY: days synced at once, 1..16, default 1")
    max_requests_per_second: str | None = _setting(
        "CG_MAX_REQUESTS_PER_SECOND: a ceiling across all day streams, unset for none"
    )
    # Hardening (docs/hardening.md)
    http_headers_deadline_seconds: str | None = _setting("CG_HTTP_HEADERS_DEADLINE_SECONDS")
    http_response_deadline_seconds: str | None = _setting("CG_HTTP_RESPONSE_DEADLINE_SECONDS")
    max_body_bytes: str | None = _setting("CG_MAX_BODY_BYTES")
    max_json_depth: str | None = _setting("CG_MAX_JSON_DEPTH")
    max_pages_per_day: str | None = _setting("CG_MAX_PAGES_PER_DAY")

    _settings: ClientSettings | None = PrivateAttr(default=None)

    @classmethod
    def setting_fields(cls) -> list[str]:
        return [name for name in cls.model_fields if name not in CREDENTIAL_FIELDS]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CustomerGaugeResource:
        """The shipped wiring: each field an EnvVar of its variable. The credentials always
        (a missing one fails the run naming it); another setting when its variable is set
        where the code location loads (an unset EnvVar would fail the run, and an unset
        setting has a default)."""
        environ = os.environ if environ is None else environ
        settings = {
            name: EnvVar(variable_for(name))
            for name in cls.setting_fields()
            if environ.get(variable_for(name), "").strip()
        }
        return cls(
            client_id=EnvVar("CG_CLIENT_ID"), client_secret=EnvVar("CG_CLIENT_SECRET"), **settings
        )

    def client_settings(self) -> ClientSettings:
        if self._settings is None:
            values = {variable_for(name): getattr(self, name) for name in self.setting_fields()}
            return ClientSettings.from_env({k: v for k, v in values.items() if v is not None})
        return self._settings

    def credentials(self) -> tuple[str, str]:
        for variable, value in (
            ("CG_CLIENT_ID", self.client_id),
            ("CG_CLIENT_SECRET", self.client_secret),
        ):
            if not value or not value.strip():
                raise SettingsError(
                    f"{variable} is empty: set it to the Connected App's "
                    f"{'client id' if variable.endswith('ID') else 'client secret'}."
                )
        return self.client_id.strip(), self.client_secret.strip()

    def validate(self) -> ClientSettings:
        """Fail at the start of a run, naming the setting, rather than on the first request."""
        self.credentials()
        return self.client_settings()

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._settings = self.validate()

    @contextmanager
    def get_client(self) -> Iterator[CustomerGaugeClient]:
        client_id, client_secret = self.credentials()
        with CustomerGaugeClient(self.client_settings(), client_id, client_secret) as client:
            yield client
