"""OIDC settings: the provider's issuer, the audience, the console's client, and the map from
groups to scopes. Pure parsing; the environment is read by ``katopotato.settings``.

``COUCHPOTATO_OIDC_GROUP_SCOPES`` reads ``group=scope,scope;group=scope``, e.g.
``transcribers=sessions:read,sessions:write;admins=*``: ``*`` is every scope (``admin``). A group
that appears twice is an error (which one would win is not obvious), and so is a group with no
scope. Whether each scope exists is checked by the service, which knows the plugins' scopes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import ConfigError

ALL_SCOPES = "*"
ADMIN_SCOPE = "admin"
DEFAULT_GROUPS_CLAIM = "groups"
DEFAULT_SESSION_TTL_S = 8 * 3600.0


def parse_group_scopes(text: str) -> dict[str, frozenset[str]]:
    """``"a=s1,s2;b=*"`` → ``{"a": {"s1", "s2"}, "b": {"admin"}}``; raises ConfigError."""
    mapping: dict[str, frozenset[str]] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        group, eq, scopes_text = part.partition("=")
        group = group.strip()
        if not eq or not group:
            raise ConfigError(f"COUCHPOTATO_OIDC_GROUP_SCOPES: {part!r} is not group=scope,scope")
        if group in mapping:
            raise ConfigError(f"COUCHPOTATO_OIDC_GROUP_SCOPES: group {group!r} is given twice")
        scopes = {s.strip() for s in scopes_text.split(",") if s.strip()}
        if not scopes:
            raise ConfigError(f"COUCHPOTATO_OIDC_GROUP_SCOPES: group {group!r} has no scope")
        if ALL_SCOPES in scopes:
            if len(scopes) > 1:
                raise ConfigError(f"COUCHPOTATO_OIDC_GROUP_SCOPES: group {group!r}: '*' stands alone")
            scopes = {ADMIN_SCOPE}
        mapping[group] = frozenset(scopes)
    return mapping


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_provider_url(url: str, what: str) -> str:
    """``url`` if it is https, or http on a loopback host (a local test issuer); else ConfigError."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{what} {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{what} {url!r}: plain http is allowed only for a loopback issuer; use https")
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} {url!r} must not have a query or fragment")
    return url


@dataclass(frozen=True)
class OidcSettings:
    """How the service trusts one OpenID Connect provider.

    Attributes:
        issuer: the provider's issuer URL, exactly as its tokens' ``iss`` says ("" turns OIDC off);
            discovery is at ``<issuer>/.well-known/openid-configuration``.
        audience: the ``aud`` a token must carry (default: ``client_id``).
        client_id: the console's client at the provider (authorization code + PKCE).
        client_secret: its secret, for a confidential client ("" for a public client).
        group_scopes: group name → scopes it grants.
        groups_claim: the claim holding the groups (``groups``; ``cognito:groups`` for Cognito; a
            dotted path such as ``realm_access.roles`` reaches into an object).
        allowed_domains: Google Workspace domains (the ``hd`` claim) allowed to sign in; empty
            allows any.
        first_login_group: a group every user is given on their first sign-in ("" for none).
        session_ttl_s: how long a console sign-in lasts.
        leeway_s: clock skew tolerated on ``exp``/``nbf``/``iat``.
    """

    issuer: str = ""
    audience: str = ""
    client_id: str = ""
    client_secret: str = ""
    group_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    allowed_domains: tuple[str, ...] = ()
    first_login_group: str = ""
    session_ttl_s: float = DEFAULT_SESSION_TTL_S
    leeway_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.issuer:
            return
        check_provider_url(self.issuer, "COUCHPOTATO_OIDC_ISSUER")
        if not self.audience and not self.client_id:
            raise ConfigError("COUCHPOTATO_OIDC_ISSUER needs COUCHPOTATO_OIDC_AUDIENCE or COUCHPOTATO_OIDC_CLIENT_ID")
        if not self.groups_claim:
            raise ConfigError("COUCHPOTATO_OIDC_GROUPS_CLAIM must not be empty")
        if self.session_ttl_s <= 0:
            raise ConfigError("COUCHPOTATO_OIDC_SESSION_TTL_S must be positive")

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    @property
    def expected_audience(self) -> str:
        return self.audience or self.client_id

    @property
    def console_sign_in(self) -> bool:
        """The console can sign users in (a client id is configured)."""
        return self.enabled and bool(self.client_id)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"

    def unknown_scopes(self, known: set[str]) -> list[str]:
        """Scopes the group map grants that the service does not know."""
        return sorted({s for scopes in self.group_scopes.values() for s in scopes} - known)


__all__ = [
    "ALL_SCOPES",
    "OidcSettings",
    "check_provider_url",
    "is_loopback_host",
    "parse_group_scopes",
]
