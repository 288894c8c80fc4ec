"""The Dagster resource: typed settings in, a ready `CustomerGaugeClient` out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import ConfigDict, Field, model_validator

from cg_assets.customergauge.client import CustomerGaugeClient
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
    RULES,
    ClientSettings,
    Region,
    SettingsError,
    check_client_values,
    client_settings,
    variable_of,
)

CREDENTIAL_FIELDS = ("client_id", "client_secret")


def variable_for(field_name: str) -> str:
    """Every setting field is named after its variable: per_page <-> CG_PER_PAGE."""
    return variable_of(field_name)


class CustomerGaugeResource(ConfigurableResource):
    """OAuth2 client-credentials access to the CustomerGauge v7 sync APIs.

    Every setting is a typed field, named like its attribute of `CustomerGaugeComponent` and
    its CG_* variable (per_page, CG_PER_PAGE), checked by its rule (cg_assets/settings.py)
    when the resource is made: a bad value fails where the definitions load, naming the
    field. A run uses the values as they are; nothing here reads the environment. The
    credentials are `dagster.EnvVar`s, read when a run starts and checked then, as is the
    one setting a run cannot do without: a region, or both URLs.
    """

    # A refused value's error must not quote the others: the keys are among them once a
    # run resolves its EnvVars.
    model_config = ConfigDict(hide_input_in_errors=True)

    client_id: str = Field(description="Connected App client id (EnvVar('CG_CLIENT_ID')).")
    client_secret: str = Field(description="Connected App secret (EnvVar('CG_CLIENT_SECRET')).")
    region: Region | None = Field(default=None, description=RULES["region"].description)
    api_url: str | None = Field(default=None, description=RULES["api_url"].description)
    auth_url: str | None = Field(default=None, description=RULES["auth_url"].description)
    per_page: int = Field(
        default=ClientSettings.per_page, description=RULES["per_page"].description
    )
    http_timeout: list[float] = Field(
        default=[DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT],
        description=RULES["http_timeout"].description,
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES, description=RULES["max_retries"].description
    )
    retry_budget_seconds: float = Field(
        default=DEFAULT_RETRY_BUDGET_SECONDS,
        description=RULES["retry_budget_seconds"].description,
    )
    backoff_seconds: float = Field(
        default=DEFAULT_BACKOFF_SECONDS, description=RULES["backoff_seconds"].description
    )
    extra_params: str | None = Field(default=None, description=RULES["extra_params"].description)
    concurrency: int = Field(
        default=ClientSettings.concurrency, description=RULES["concurrency"].description
    )
    max_requests_per_second: float | None = Field(
        default=None, description=RULES["max_requests_per_second"].description
    )
    # Hardening (docs/hardening.md)
    http_headers_deadline_seconds: float = Field(
        default=DEFAULT_HEADERS_DEADLINE_SECONDS,
        description=RULES["http_headers_deadline_seconds"].description,
    )
    http_response_deadline_seconds: float = Field(
        default=DEFAULT_RESPONSE_DEADLINE_SECONDS,
        description=RULES["http_response_deadline_seconds"].description,
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, description=RULES["max_body_bytes"].description
    )
    max_json_depth: int = Field(
        default=DEFAULT_MAX_JSON_DEPTH, description=RULES["max_json_depth"].description
    )
    max_pages_per_day: int = Field(
        default=DEFAULT_MAX_PAGES_PER_DAY, description=RULES["max_pages_per_day"].description
    )

    @classmethod
    def setting_fields(cls) -> list[str]:
        return [name for name in cls.model_fields if name not in CREDENTIAL_FIELDS]

    @model_validator(mode="after")
    def _settings_are_valid(self) -> CustomerGaugeResource:
        # Made with EnvVar credentials where the definitions load, and again with their
        # values when a run starts: only the settings are judged here.
        check_client_values(self._setting_values())
        return self

    def _setting_values(self) -> dict[str, Any]:
        return {rule.name: getattr(self, rule.name) for rule in CLIENT_RULES}

    def client_settings(self) -> ClientSettings:
        """The typed fields as the client takes them; fails naming the region (or the URLs)
        when neither is set."""
        return client_settings(self._setting_values())

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
        self.validate()

    @contextmanager
    def get_client(self) -> Iterator[CustomerGaugeClient]:
        client_id, client_secret = self.credentials()
        with CustomerGaugeClient(self.client_settings(), client_id, client_secret) as client:
            yield client
