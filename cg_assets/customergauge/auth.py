"""OAuth2 client-credentials tokens: fetch, cache until shortly before expiry, invalidate on 401;
one cache shared by every stream of a client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from cg_assets.customergauge import http, wire
from cg_assets.customergauge.errors import AuthenticationError
from cg_assets.customergauge.retry import RetryPolicy

# Refresh this long before the token's stated expiry, so a token never dies mid-request.
REFRESH_MARGIN_SECONDS = 60.0


class TokenProvider:
    """One token cache for every stream of a client (thread-safe).

    A renewal (first use, expiry, or a 401) happens once: the stream that finds the token
    missing fetches it while holding the lock; the others wait on the lock and reuse it.
    """

    def __init__(
        self,
        auth_url: str,
        client_id: str,
        client_secret: str,
        limits: http.Limits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth_url = auth_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._accepted = False  # the API has answered a request made with the current token
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def token(self, session: requests.Session, retry: RetryPolicy) -> tuple[str, bool]:
        """The current token, fetched first (with the caller's session and retries) if
        there is none or it is about to expire; and whether this call fetched it."""
        with self._lock:
            if self._token is not None and self._clock() < self._expires_at:
                return self._token, False
            self._token = self._fetch(session, retry)
            self._accepted = False
            return self._token, True

    @property
    def current(self) -> str | None:
        return self._token

    def accepted(self, token: str) -> None:
        """The API answered a request made with `token` (not a 401)."""
        if token == self._token:
            self._accepted = True

    def was_refused_fresh(self, token: str) -> bool:
        """`token` is the current one and the API has never accepted it: a renewal will not
        help (the credentials cannot read this API, or the URLs are of different regions)."""
        with self._lock:
            return token == self._token and not self._accepted

    def invalidate(self, token: str) -> None:
        """Drop `token` after a 401, unless another stream has already replaced it: then
        the replacement stands and no second renewal happens."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self, session: requests.Session, retry: RetryPolicy) -> str:
        what = f"the token request to {self._auth_url}"
        started = self._clock()
        body = retry.run(lambda: self._attempt_fetch(session), what)
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

    def _attempt_fetch(self, session: requests.Session) -> object:
        form = {
            wire.TOKEN_FORM_GRANT_TYPE: wire.TOKEN_GRANT_TYPE,
            wire.TOKEN_FORM_CLIENT_ID: self._client_id,
            wire.TOKEN_FORM_CLIENT_SECRET: self._client_secret,
        }
        response = http.attempt(
            session, "POST", self._auth_url, self._limits, "the token request", data=form
        )
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(
                f"CustomerGauge rejected the client credentials (HTTP {response.status_code} from "
                f"{self._auth_url}). Check CG_CLIENT_ID and CG_CLIENT_SECRET: they come from a "
                "Connected App in CustomerGauge, whose secret is shown only once, when it is "
                "created. Check CG_REGION (or CG_AUTH_URL) as well."
            )
        http.raise_for_unexpected(response, "the token request")
        return http.decode_json_body(response, "the token request")
