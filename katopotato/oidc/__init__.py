"""OpenID Connect sign-in ("Turbotots"): settings, token checks, the provider over HTTP, PKCE.

``config`` and ``claims`` are pure (parsing, verifying a JWT against keys, mapping groups to
scopes); ``provider`` does the I/O (discovery, JWKS, the token endpoint).
"""

from __future__ import annotations

from .claims import ASYMMETRIC_ALGORITHMS, Identity, KeySet, groups_of, identity_from_claims, token_kid, verify_jwt
from .config import OidcSettings, check_provider_url, is_loopback_host, parse_group_scopes
from .pkce import challenge, new_state, new_verifier
from .provider import OidcProvider, ProviderMetadata, metadata_from_document

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "Identity",
    "KeySet",
    "OidcProvider",
    "OidcSettings",
    "ProviderMetadata",
    "challenge",
    "check_provider_url",
    "groups_of",
    "identity_from_claims",
    "is_loopback_host",
    "metadata_from_document",
    "new_state",
    "new_verifier",
    "parse_group_scopes",
    "token_kid",
    "verify_jwt",
]
