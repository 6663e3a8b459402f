"""Pure logic of OIDC tokens: check a JWT against a key set, and map its claims to scopes.

No I/O here: ``verify_jwt`` takes the provider's keys (a JWKS document already fetched), so every
refusal can be tested with real keys and real signatures and no server. Each refusal is a
``TokenRejected`` whose ``code`` is the API's stable code:

| code                  | the token                                               |
|-----------------------|---------------------------------------------------------|
| `token_expired`       | ``exp`` has passed (beyond the leeway)                  |
| `token_not_yet_valid` | ``nbf`` (or ``iat``) is in the future                   |
| `wrong_audience`      | ``aud`` does not name this service                      |
| `wrong_issuer`        | ``iss`` is not the configured issuer                    |
| `bad_signature`       | the signature does not verify with the key it names     |
| `unknown_key`         | its ``kid`` is not in the provider's keys               |
| `invalid_token`       | malformed, no ``kid``, an algorithm refused, a claim missing |

The algorithm is the key's, never the token's choice: only asymmetric algorithms are accepted
(``none`` and HMAC never are, so a public key cannot be used as an HMAC secret), and a key that
declares its ``alg`` is used with that one only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK

from ..errors import NotPermitted, TokenRejected
from .config import ADMIN_SCOPE

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KTY_ALGORITHMS = {
    "RSA": {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
    "EC": {"ES256", "ES384", "ES512"},
    "OKP": {"EdDSA"},
}
MAX_TOKEN_CHARS = 16_384


class KeySet:
    """The provider's signing keys by ``kid``, from a JWKS document (keys that are not for
    signatures, or of a type this service cannot use, are skipped)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys: dict[str, tuple[PyJWK, str | None]] = {}
        for raw in jwks.get("keys", []) if isinstance(jwks, Mapping) else []:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("kid"), str):
                continue
            if raw.get("use", "sig") != "sig" or raw.get("kty") not in _KTY_ALGORITHMS:
                continue
            alg = raw.get("alg")
            if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
                continue
            try:
                key = PyJWK(dict(raw), algorithm=alg)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue
            self.keys[raw["kid"]] = (key, alg)

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys

    def __len__(self) -> int:
        return len(self.keys)


def token_kid(token: str) -> str:
    """The ``kid`` of a JWT's header; raises TokenRejected (``invalid_token``) when it has none."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("the bearer token is empty or too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as e:
        raise TokenRejected(f"the bearer token is not a JWT ({e})") from e
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("the token's header names no key (kid)")
    return kid


def verify_jwt(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    audience: str,
    leeway_s: float = 30.0,
) -> dict[str, Any]:
    """The claims of ``token`` once its signature, ``exp``, ``nbf``, ``iss`` and ``aud`` are checked."""
    kid = token_kid(token)
    if kid not in keys:
        raise TokenRejected(f"the token is signed by a key the issuer does not publish (kid {kid!r})", "unknown_key")
    key, key_alg = keys.keys[kid]
    header_alg = jwt.get_unverified_header(token).get("alg")
    allowed = {key_alg} if key_alg else _KTY_ALGORITHMS.get(str(key.key_type), set())
    if header_alg not in allowed or header_alg not in ASYMMETRIC_ALGORITHMS:
        raise TokenRejected(f"the token's algorithm {header_alg!r} is not accepted for key {kid!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[header_alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"], "verify_iat": True},
        )
    except jwt.ExpiredSignatureError as e:
        raise TokenRejected("the token has expired", "token_expired") from e
    except jwt.ImmatureSignatureError as e:
        raise TokenRejected("the token is not valid yet (nbf or iat in the future)", "token_not_yet_valid") from e
    except jwt.InvalidAudienceError as e:
        raise TokenRejected("the token is for another audience", "wrong_audience") from e
    except jwt.InvalidIssuerError as e:
        raise TokenRejected("the token is from another issuer", "wrong_issuer") from e
    except jwt.InvalidSignatureError as e:
        raise TokenRejected("the token's signature does not verify", "bad_signature") from e
    except jwt.MissingRequiredClaimError as e:
        raise TokenRejected(f"the token lacks a claim: {e}") from e
    except jwt.PyJWTError as e:
        raise TokenRejected(f"the token is not valid ({e})") from e
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenRejected("the token's subject (sub) is empty")
    return claims


def claim_path(claims: Mapping[str, Any], name: str) -> Any:
    """``claims[name]``, or for a dotted name not present as such, the path into nested objects."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def groups_of(claims: Mapping[str, Any], groups_claim: str) -> list[str]:
    """The groups a token names: a list of strings, or one string of space- or comma-separated names."""
    value = claim_path(claims, groups_claim)
    if isinstance(value, str):
        return [g for g in value.replace(",", " ").split() if g]
    if isinstance(value, Sequence):
        return [g for g in value if isinstance(g, str) and g]
    return []


@dataclass(frozen=True)
class Identity:
    """Who a valid token says the user is, and what they may do here.

    Attributes:
        subject: the provider's ``sub``.
        issuer: the provider's ``iss``.
        email: the ``email`` claim ("" when absent).
        name: a display name (``name``, ``preferred_username``, the email or the subject).
        groups: the groups that granted scopes (token groups and groups assigned here).
        scopes: what those groups grant.
        expires_at: the token's ``exp``.
    """

    subject: str
    issuer: str
    email: str
    name: str
    groups: tuple[str, ...]
    scopes: frozenset[str]
    expires_at: float


def identity_from_claims(
    claims: Mapping[str, Any],
    group_scopes: Mapping[str, frozenset[str]],
    *,
    groups_claim: str,
    allowed_domains: Sequence[str] = (),
    extra_groups: Sequence[str] = (),
) -> Identity:
    """Map a verified token's claims to scopes; raises NotPermitted when none are granted.

    ``extra_groups`` are groups this service assigned the user (the first-login group)."""
    if allowed_domains:
        hd = claims.get("hd")
        if not isinstance(hd, str) or hd.lower() not in {d.lower() for d in allowed_domains}:
            raise NotPermitted("this account's domain may not sign in here", "domain_not_allowed")
    named = [*groups_of(claims, groups_claim), *extra_groups]
    granting = tuple(dict.fromkeys(g for g in named if g in group_scopes))
    scopes = frozenset(s for g in granting for s in group_scopes[g])
    if not scopes:
        raise NotPermitted("this account is in no group that grants a role here", "no_role")
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    name = next(
        (v for v in (claims.get("name"), claims.get("preferred_username"), email) if isinstance(v, str) and v),
        str(claims["sub"]),
    )
    return Identity(
        subject=str(claims["sub"]),
        issuer=str(claims.get("iss", "")),
        email=str(email or ""),
        name=name,
        groups=granting,
        scopes=scopes if ADMIN_SCOPE not in scopes else frozenset({ADMIN_SCOPE}),
        expires_at=float(claims.get("exp", time.time())),
    )


__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "Identity",
    "KeySet",
    "claim_path",
    "groups_of",
    "identity_from_claims",
    "token_kid",
    "verify_jwt",
]
