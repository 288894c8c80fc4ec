"""The Dagster resource: settings in, a ready `CustomerGaugeClient` out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource
from pydantic import Field

from cg_assets.customergauge.client import CustomerGaugeClient
from cg_assets.settings import ClientSettings, SettingsError

# Resource field -> the environment variable it overrides. A field left as None is read
# from its variable when the run starts, so the README's table is the whole story.
_FIELD_TO_ENV = {
    "region": "CG_REGION",
    "api_url": "CG_API_URL",
    "auth_url": "CG_AUTH_URL",
    "per_page": "CG_PER_PAGE",
    "http_timeout": "CG_HTTP_TIMEOUT",
    "max_retries": "CG_MAX_RETRIES",
    "retry_budget_seconds": "CG_RETRY_BUDGET_SECONDS",
    "backoff_seconds": "CG_BACKOFF_SECONDS",
    "extra_params": "CG_EXTRA_PARAMS",
    "concurrency": "CG_CONCURRENCY",
    "max_requests_per_second": "CG_MAX_REQUESTS_PER_SECOND",
}


class CustomerGaugeResource(ConfigurableResource):
    """OAuth2 client-credentials access to the CustomerGauge v7 sync APIs.

    Pass the secrets as `dagster.EnvVar` so they never appear in run config or the UI.
    Every other field overrides the environment variable named in the README.
    """

    client_id: str = Field(description="Connected App client id (use EnvVar('CG_CLIENT_ID')).")
    client_secret: str = Field(description="Connected App secret (use EnvVar('CG_CLIENT_SECRET')).")
    region: str | None = Field(default=None, description="eu, us or au; default CG_REGION.")
    api_url: str | None = Field(default=None, description="Default CG_API_URL or from the region.")
    auth_url: str | None = Field(
        default=None, description="Default CG_AUTH_URL or from the region."
    )
    per_page: int | None = Field(default=None, description="1..1000; default CG_PER_PAGE or 1000.")
    http_timeout: str | None = Field(
        default=None, description="CONNECT,READ seconds; default CG_HTTP_TIMEOUT."
    )
    max_retries: int | None = Field(default=None, description="Default CG_MAX_RETRIES.")
    retry_budget_seconds: float | None = Field(
        default=None, description="Default CG_RETRY_BUDGET_SECONDS."
    )
    backoff_seconds: float | None = Field(default=None, description="Default CG_BACKOFF_SECONDS.")
    extra_params: str | None = Field(
        default=None, description="Extra query string; default CG_EXTRA_PARAMS."
    )
    concurrency: int | None = Field(default=None, description="1..16; default CG_CONCURRENCY or 1.")
    max_requests_per_second: float | None = Field(
        default=None, description="Default CG_MAX_REQUESTS_PER_SECOND (unset: no ceiling)."
    )

    def client_settings(self) -> ClientSettings:
        env = dict(os.environ)
        for field_name, variable in _FIELD_TO_ENV.items():
            value = getattr(self, field_name)
            if value is not None:
                env[variable] = str(value)
        return ClientSettings.from_env(env)

    def _credentials(self) -> tuple[str, str]:
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

    def validate(self) -> None:
        """Fail at the start of a run, naming the setting, rather than on the first request."""
        self.client_settings()
        self._credentials()

    @contextmanager
    def get_client(self) -> Iterator[CustomerGaugeClient]:
        client_id, client_secret = self._credentials()
        with CustomerGaugeClient(self.client_settings(), client_id, client_secret) as client:
            yield client
