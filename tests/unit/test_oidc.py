"""OIDC tokens against a local issuer that signs real RS256 JWTs and serves its discovery document
and JWKS over HTTP: what is accepted, what is refused and with which code, the group → scope map,
and the bounded refresh of the keys."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from katopotato.api.ratelimit import RateLimiter, TooManyRequests
from katopotato.api.service import check_oidc
from katopotato.errors import ConfigError, NotPermitted, ProviderUnavailable, TokenRejected
from katopotato.oidc import (
    OidcProvider,
    OidcSettings,
    challenge,
    identity_from_claims,
    new_verifier,
    parse_group_scopes,
)
from katopotato.oidc.config import check_provider_url
from katopotato.plugin_host import load_plugins
from katopotato.settings import Settings
from tests.oidc_issuer import CLIENT_ID, LocalIssuer, User, new_key, serve_issuer

GROUPS = parse_group_scopes("transcribers=sessions:read,sessions:write;admins=*")


@pytest.fixture
async def issuer() -> AsyncIterator[LocalIssuer]:
    users = {"ada": User("ada", "ada@example.org", "Ada", ["transcribers"])}
    async with serve_issuer(LocalIssuer(users=users)) as served:
        yield served


@pytest.fixture
async def provider(issuer: LocalIssuer) -> AsyncIterator[OidcProvider]:
    p = OidcProvider(OidcSettings(issuer=issuer.issuer, client_id=CLIENT_ID, group_scopes=GROUPS), refresh_min_s=60)
    try:
        yield p
    finally:
        await p.close()


def test_group_scopes_syntax() -> None:
    assert {"transcribers": {"sessions:read", "sessions:write"}, "admins": {"admin"}} == GROUPS
    assert parse_group_scopes(" a = search ; ; b=jobs:read, jobs:write ") == {
        "a": {"search"},
        "b": {"jobs:read", "jobs:write"},
    }
    for bad in ("a", "=search", "a=", "a=search;a=metrics", "a=*,search"):
        with pytest.raises(ConfigError):
            parse_group_scopes(bad)


def test_pkce_s256_matches_rfc_7636() -> None:
    # RFC 7636, appendix B
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    verifier = new_verifier()
    assert len(verifier) == 43 and verifier != new_verifier()


def test_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "COUCHPOTATO_OIDC_ISSUER": "https://idp.example.org/realms/team",
        "COUCHPOTATO_OIDC_CLIENT_ID": "console",
        "COUCHPOTATO_OIDC_GROUP_SCOPES": "transcribers=sessions:read,sessions:write;admins=*",
        "COUCHPOTATO_OIDC_GROUPS_CLAIM": "realm_access.roles",
        "COUCHPOTATO_OIDC_ALLOWED_DOMAINS": "example.org, example.com",
        "COUCHPOTATO_OIDC_FIRST_LOGIN_GROUP": "transcribers",
    }
    oidc = Settings.load(env).oidc
    assert oidc.enabled and oidc.console_sign_in and oidc.expected_audience == "console"
    assert oidc.discovery_url == "https://idp.example.org/realms/team/.well-known/openid-configuration"
    assert oidc.group_scopes == GROUPS and oidc.groups_claim == "realm_access.roles"
    assert oidc.allowed_domains == ("example.org", "example.com")
    assert not Settings.load({"HOME": str(tmp_path)}).oidc.enabled, "off unless an issuer is set"
    with pytest.raises(ConfigError, match="loopback"):
        Settings.load({**env, "COUCHPOTATO_OIDC_ISSUER": "http://idp.example.org"})
    with pytest.raises(ConfigError):
        Settings.load({**env, "COUCHPOTATO_OIDC_GROUP_SCOPES": "transcribers"})
    registry = load_plugins(installed=False)
    check_oidc(Settings.load(env), registry)
    with pytest.raises(ConfigError, match="unknown scopes everything"):
        check_oidc(Settings.load({**env, "COUCHPOTATO_OIDC_GROUP_SCOPES": "a=everything"}), registry)
    with pytest.raises(ConfigError, match="FIRST_LOGIN_GROUP"):
        check_oidc(Settings.load({**env, "COUCHPOTATO_OIDC_FIRST_LOGIN_GROUP": "texters"}), registry)


def test_plain_http_only_for_loopback_issuers() -> None:
    assert check_provider_url("http://127.0.0.1:8080/realms/x", "issuer")
    assert check_provider_url("http://localhost:9000", "issuer")
    assert check_provider_url("http://[::1]:9000", "issuer")
    assert check_provider_url("https://accounts.google.com", "issuer")
    for bad in ("http://idp.example.org", "http://10.0.0.5", "ftp://127.0.0.1", "https://x.org/?a=1"):
        with pytest.raises(ConfigError):
            check_provider_url(bad, "issuer")
    with pytest.raises(ConfigError, match="loopback"):
        OidcSettings(issuer="http://idp.example.org", client_id="c")
    with pytest.raises(ConfigError, match="AUDIENCE"):
        OidcSettings(issuer="https://idp.example.org")


async def test_a_valid_token_maps_to_scopes(issuer: LocalIssuer, provider: OidcProvider) -> None:
    claims = await provider.verify(issuer.mint("ada"))
    assert claims["sub"] == "ada" and claims["iss"] == issuer.issuer
    who = identity_from_claims(claims, GROUPS, groups_claim="groups")
    assert who.scopes == {"sessions:read", "sessions:write"}
    assert (who.email, who.name, who.groups) == ("ada@example.org", "Ada", ("transcribers",))
    admin = identity_from_claims(
        await provider.verify(issuer.mint("x", groups=["admins"])), GROUPS, groups_claim="groups"
    )
    assert admin.scopes == {"admin"}
    both = identity_from_claims(
        await provider.verify(issuer.mint("x", groups=["other", "transcribers"])), GROUPS, groups_claim="groups"
    )
    assert both.groups == ("transcribers",)


def _tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["admins"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{forged}.{sig}"


async def test_refusals_each_have_their_code(issuer: LocalIssuer, provider: OidcProvider) -> None:
    cases = {
        "token_expired": issuer.mint("ada", iat_offset_s=-3600, ttl_s=600),
        "token_not_yet_valid": issuer.mint("ada", iat_offset_s=600),
        "wrong_audience": issuer.mint("ada", aud="someone-else"),
        "wrong_issuer": issuer.mint("ada", iss="https://evil.example.org"),
        "bad_signature": _tamper(issuer.mint("ada")),
        "unknown_key": issuer.mint("ada", kid="nobody-knows", key=new_key()),
        "invalid_token": "not.a.jwt",
    }
    for code, token in cases.items():
        with pytest.raises(TokenRejected) as caught:
            await provider.verify(token)
        assert caught.value.code == code, (code, str(caught.value))
    # signed by another key under the published kid: the signature is what is wrong
    with pytest.raises(TokenRejected) as caught:
        await provider.verify(issuer.mint("ada", key=new_key()))
    assert caught.value.code == "bad_signature"
    # the token did verify without the change: the refusal above is the tampering's doing
    assert (await provider.verify(issuer.mint("ada")))["sub"] == "ada"


async def test_algorithms_come_from_the_keys(issuer: LocalIssuer, provider: OidcProvider) -> None:
    unsigned = jwt.encode(
        {"iss": issuer.issuer, "sub": "ada", "aud": CLIENT_ID, "exp": 2**31},
        None,
        algorithm="none",
        headers={"kid": "key-1"},
    )
    with pytest.raises(TokenRejected, match="algorithm"):
        await provider.verify(unsigned)
    # HS256 keyed with the public key's PEM: the classic confusion attack
    from cryptography.hazmat.primitives import serialization

    pem = (
        issuer.keys["key-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "key-1", "typ": "JWT"}).encode())
    payload = base64.urlsafe_b64encode(
        json.dumps({"iss": issuer.issuer, "sub": "ada", "aud": CLIENT_ID, "exp": 2**31}).encode()
    )
    import hashlib
    import hmac

    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    mac = base64.urlsafe_b64encode(hmac.new(pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(TokenRejected, match="algorithm"):
        await provider.verify((signing_input + b"." + mac).decode())


async def test_keys_refresh_on_an_unknown_kid_with_a_bound(issuer: LocalIssuer) -> None:
    settings = OidcSettings(issuer=issuer.issuer, client_id=CLIENT_ID, group_scopes=GROUPS)
    provider = OidcProvider(settings, refresh_min_s=0.0)
    try:
        await provider.verify(issuer.mint("ada"))
        assert issuer.jwks_requests == 1
        await provider.verify(issuer.mint("ada"))
        assert issuer.jwks_requests == 1, "known keys are cached"
        issuer.add_key("key-2")  # the provider rotates its keys
        assert (await provider.verify(issuer.mint("ada", kid="key-2")))["sub"] == "ada"
        assert issuer.jwks_requests == 2, "an unknown kid refetched the keys once"
    finally:
        await provider.close()
    bounded = OidcProvider(settings, refresh_min_s=60.0)
    try:
        await bounded.verify(issuer.mint("ada"))
        before = issuer.jwks_requests
        stranger = new_key()
        for i in range(20):  # made-up key ids cannot make the service hammer the provider
            with pytest.raises(TokenRejected) as caught:
                await bounded.verify(issuer.mint("ada", kid=f"made-up-{i}", key=stranger))
            assert caught.value.code == "unknown_key"
        assert issuer.jwks_requests == before, "keys fetched moments ago are not refetched within refresh_min_s"
        bounded.refresh_min_s = 0.0  # once the bound has passed, one unknown kid refetches once
        with pytest.raises(TokenRejected):
            await bounded.verify(issuer.mint("ada", kid="made-up-again", key=stranger))
        assert issuer.jwks_requests == before + 1
    finally:
        await bounded.close()


async def test_discovery_must_name_the_issuer(issuer: LocalIssuer) -> None:
    other = OidcSettings(issuer=issuer.issuer + "/realms/other", client_id=CLIENT_ID)
    provider = OidcProvider(other)
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.verify(issuer.mint("ada"))
    finally:
        await provider.close()


async def test_no_mapped_group_and_domains(issuer: LocalIssuer, provider: OidcProvider) -> None:
    claims = await provider.verify(issuer.mint("bob", groups=["visitors"]))
    with pytest.raises(NotPermitted) as caught:
        identity_from_claims(claims, GROUPS, groups_claim="groups")
    assert caught.value.code == "no_role"
    # a group this service assigned (the first-login group) counts like one from the token
    assert identity_from_claims(claims, GROUPS, groups_claim="groups", extra_groups=["transcribers"]).scopes
    google = await provider.verify(issuer.mint("g", groups=["admins"], hd="example.org"))
    assert identity_from_claims(google, GROUPS, groups_claim="groups", allowed_domains=["example.org"]).scopes
    with pytest.raises(NotPermitted) as caught:
        identity_from_claims(google, GROUPS, groups_claim="groups", allowed_domains=["corp.example.com"])
    assert caught.value.code == "domain_not_allowed"


async def test_the_groups_claim_is_configurable(issuer: LocalIssuer, provider: OidcProvider) -> None:
    cognito = await provider.verify(issuer.mint("c", groups=None, **{"cognito:groups": ["transcribers"]}))
    assert identity_from_claims(cognito, GROUPS, groups_claim="cognito:groups").scopes
    with pytest.raises(NotPermitted):
        identity_from_claims(cognito, GROUPS, groups_claim="groups")
    keycloak = await provider.verify(issuer.mint("k", groups=None, realm_access={"roles": ["admins"]}))
    assert identity_from_claims(keycloak, GROUPS, groups_claim="realm_access.roles").scopes == {"admin"}


async def test_keys_outlive_a_provider_outage() -> None:
    issuer = LocalIssuer(users={"ada": User("ada", "ada@example.org", "Ada", ["transcribers"])})
    async with serve_issuer(issuer):
        settings = OidcSettings(issuer=issuer.issuer, client_id=CLIENT_ID, group_scopes=GROUPS)
        provider = OidcProvider(settings, keys_ttl_s=0.0, refresh_min_s=0.0)
        await provider.verify(issuer.mint("ada"))
        token = issuer.mint("ada")
    try:  # the issuer is gone: the keys fetched before keep working, though stale
        assert (await provider.verify(token))["sub"] == "ada"
    finally:
        await provider.close()
    fresh = OidcProvider(settings)
    try:  # never fetched: refused at once, and the failure is remembered for a moment
        with pytest.raises(ProviderUnavailable) as first:
            await fresh.verify(token)
        with pytest.raises(ProviderUnavailable) as again:
            await fresh.verify(token)
        assert again.value is first.value, "no new attempt within the back-off"
    finally:
        await fresh.close()


def test_rate_limiter_window_slides_per_client() -> None:
    limiter = RateLimiter(limit=3, window_s=60.0)
    for t in (0.0, 10.0, 20.0):
        limiter.check("10.0.0.1", now=t)
    with pytest.raises(TooManyRequests) as caught:
        limiter.check("10.0.0.1", now=30.0)
    assert caught.value.retry_after_s == pytest.approx(30.0) and caught.value.status == 429
    assert caught.value.response().headers["Retry-After"] == "30"
    limiter.check("10.0.0.2", now=30.0)  # another client has its own count
    limiter.check("10.0.0.1", now=60.0)  # the first request left the window
    with pytest.raises(TooManyRequests):
        limiter.check("10.0.0.1", now=61.0)
