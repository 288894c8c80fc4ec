"""OAuth2 client-credentials tokens: fetch, cache until shortly before expiry, invalidate on 401."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from cg_assets.customergauge import http, wire
from cg_assets.customergauge.errors import AuthenticationError
from cg_assets.customergauge.retry import RetryPolicy

# Refresh this long before the token's stated expiry, so a token never dies mid-request.
REFRESH_MARGIN_SECONDS = 60.0


class TokenProvider:
    def __init__(
        self,
        session: requests.Session,
        auth_url: str,
        client_id: str,
        client_secret: str,
        timeout: tuple[float, float],
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._auth_url = auth_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._retry = retry
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def token(self) -> str:
        if self._token is None or self._clock() >= self._expires_at:
            self._token = self._fetch()
        return self._token

    @property
    def current(self) -> str | None:
        return self._token

    def invalidate(self) -> None:
        self._token = None

    def _fetch(self) -> str:
        what = f"the token request to {self._auth_url}"
        started = self._clock()
        body = self._retry.run(self._attempt_fetch, what)
        token = body.get(wire.TOKEN_RESPONSE_ACCESS_TOKEN) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(
                f"The token response from {self._auth_url} has no "
                f"'{wire.TOKEN_RESPONSE_ACCESS_TOKEN}': is CG_AUTH_URL the OAuth2 token endpoint?"
            )
        lifetime = body.get(wire.TOKEN_RESPONSE_EXPIRES_IN)
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = wire.TOKEN_DEFAULT_LIFETIME_SECONDS
        self._expires_at = started + lifetime - min(REFRESH_MARGIN_SECONDS, lifetime / 10)
        self.tokens_fetched += 1
        return token

    def _attempt_fetch(self) -> object:
        form = {
            wire.TOKEN_FORM_GRANT_TYPE: wire.TOKEN_GRANT_TYPE,
            wire.TOKEN_FORM_CLIENT_ID: self._client_id,
            wire.TOKEN_FORM_CLIENT_SECRET: self._client_secret,
        }
        response = http.attempt(self._session, "POST", self._auth_url, self._timeout, data=form)
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(
                f"CustomerGauge rejected the client credentials (HTTP {response.status_code} from "
                f"{self._auth_url}). Check CG_CLIENT_ID and CG_CLIENT_SECRET: they come from a "
                "Connected App in CustomerGauge, whose secret is shown only once, when it is "
                "created. Check CG_REGION (or CG_AUTH_URL) as well."
            )
        http.raise_for_unexpected(response, "the token request")
        return http.decode_json_body(response, "the token request")
