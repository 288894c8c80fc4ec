"""Token endpoint and bearer-token checks."""

from __future__ import annotations

import re
import time

from cg_assets.customergauge import wire
from cg_simulator import running_simulator

from .conftest import END, START, Api

UNAUTH = {wire.BODY_MESSAGE: "Unauthenticated."}
INVALID_CLIENT = {"error": "invalid_client", wire.BODY_MESSAGE: "Unauthenticated."}


def test_token_is_issued_for_valid_credentials(sim):
    response = Api(sim).request_token()
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"[0-9a-f]{40}", body[wire.TOKEN_RESPONSE_ACCESS_TOKEN])
    assert body["token_type"] == wire.AUTH_SCHEME
    assert body[wire.TOKEN_RESPONSE_EXPIRES_IN] == wire.TOKEN_DEFAULT_LIFETIME_SECONDS
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert (
        Api(sim).request_token().json()[wire.TOKEN_RESPONSE_ACCESS_TOKEN]
        != (body[wire.TOKEN_RESPONSE_ACCESS_TOKEN])
    )


def test_wrong_credentials_get_401(sim):
    api = Api(sim)
    for client_id, secret in [
        ("cg-demo-client", "nope"),
        ("someone-else", "cg-demo-secret-do-not-use"),
    ]:
        response = api.request_token(client_id, secret)
        assert response.status_code == 401
        assert response.json() == INVALID_CLIENT


def test_missing_or_wrong_grant_type_gets_400(sim):
    api = Api(sim)
    for grant in (None, "password", ""):
        response = api.request_token(grant_type=grant)
        assert response.status_code == 400
        assert response.json() == {"error": "unsupported_grant_type"}


def test_custom_credentials():
    with running_simulator(
        records=10, start=START, end=END, client_id="my-id", client_secret="my-secret"
    ) as sim:
        api = Api(sim)
        assert api.request_token().status_code == 401
        assert api.request_token("my-id", "my-secret").status_code == 200


def test_token_ttl_and_omit_expires_in(sim, ctl):
    api = Api(sim)
    ctl.configure(token_ttl_seconds=120)
    assert api.request_token().json()[wire.TOKEN_RESPONSE_EXPIRES_IN] == 120
    ctl.configure(omit_expires_in=True)
    body = api.request_token().json()
    assert wire.TOKEN_RESPONSE_EXPIRES_IN not in body
    assert body[wire.TOKEN_RESPONSE_ACCESS_TOKEN]


def test_revoked_credentials(sim, ctl):
    api = Api(sim)
    ctl.configure(revoked=True)
    response = api.request_token()
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    ctl.configure(revoked=False)
    assert api.request_token().status_code == 200


def test_missing_unknown_and_malformed_tokens_get_401(api):
    assert api.get().status_code == 200
    for token in ("", "0" * 40):
        response = (
            api.get(token=token)
            if token
            else api.session.get(api.sim.url + wire.NON_RESPONSES_PATH, timeout=10)
        )
        assert response.status_code == 401
        assert response.json() == UNAUTH
    response = api.session.get(
        api.sim.url + wire.NON_RESPONSES_PATH,
        headers={wire.AUTH_HEADER: f"Basic {api.token}"},
        timeout=10,
    )
    assert response.status_code == 401


def test_token_expires_after_its_ttl(api, ctl):
    ctl.configure(token_ttl_seconds=0.4)
    token = api.login()
    assert api.get(token=token).status_code == 200
    time.sleep(0.6)
    response = api.get(token=token)
    assert response.status_code == 401
    assert response.json() == UNAUTH
    assert api.get(token=api.login()).status_code == 200


def test_expire_tokens_after_requests(api, ctl):
    ctl.configure(expire_tokens_after_requests=2)
    token = api.login()
    assert [api.get(token=token).status_code for _ in range(3)] == [200, 200, 401]
    assert api.get(token=api.login()).status_code == 200
    ctl.configure(expire_tokens_after_requests=None)
    assert [api.get().status_code for _ in range(3)] == [200, 200, 200]
