"""The provider's side over HTTP: discovery, the JWKS (cached, refreshed on an unknown key id at
most once per ``refresh_min_s``), and the token endpoint of the authorization code flow.

The discovery document must name the configured issuer exactly, and every endpoint it names must
be https (plain http only on a loopback host, for a local issuer). Keys are kept for
``keys_ttl_s``; a token naming a key id not in the cache triggers one refetch, but never more
often than ``refresh_min_s``, so tokens with made-up key ids cannot make the service hammer the
provider. When the provider cannot be reached, the keys already fetched keep working (a refresh
that fails is logged and tried again after ``refresh_min_s``), and without any keys the failure
is remembered for ``FAILURE_BACKOFF_S``, so requests fail fast instead of queueing on timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ..errors import ConfigError, ProviderUnavailable, TokenRejected
from .claims import KeySet, token_kid, verify_jwt
from .config import OidcSettings, check_provider_url

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 10.0
KEYS_TTL_S = 3600.0
REFRESH_MIN_S = 30.0
FAILURE_BACKOFF_S = 5.0
MAX_DOCUMENT_BYTES = 512 * 1024


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery says (the fields this service uses)."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str = ""


def metadata_from_document(doc: Any, issuer: str) -> ProviderMetadata:
    """Check a discovery document against the configured issuer; raises ProviderUnavailable."""
    if not isinstance(doc, dict):
        raise ProviderUnavailable("the OIDC discovery document is not a JSON object")
    if doc.get("issuer") != issuer:
        raise ProviderUnavailable(f"the OIDC discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}")
    urls: dict[str, str] = {}
    for name in ("jwks_uri", "authorization_endpoint", "token_endpoint", "end_session_endpoint"):
        value = doc.get(name)
        if value is None and name in ("end_session_endpoint", "authorization_endpoint", "token_endpoint"):
            urls[name] = ""
            continue
        if not isinstance(value, str):
            raise ProviderUnavailable(f"the OIDC discovery document has no {name}")
        try:
            urls[name] = check_provider_url(value, f"the provider's {name}")
        except ConfigError as e:
            raise ProviderUnavailable(str(e)) from e
    return ProviderMetadata(issuer=issuer, **urls)


class OidcProvider:
    """One provider: verifies its tokens (``verify``) and exchanges authorization codes.

    Owns an aiohttp client session from ``start()`` to ``close()``.
    """

    def __init__(
        self,
        settings: OidcSettings,
        *,
        keys_ttl_s: float = KEYS_TTL_S,
        refresh_min_s: float = REFRESH_MIN_S,
    ) -> None:
        self.settings = settings
        self.keys_ttl_s = keys_ttl_s
        self.refresh_min_s = refresh_min_s
        self._http: aiohttp.ClientSession | None = None
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._fetched_at = -1e18
        self._lock = asyncio.Lock()
        self._failed: tuple[float, ProviderUnavailable] | None = None
        self.jwks_fetches = 0

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _get_json(self, url: str) -> Any:
        await self.start()
        assert self._http is not None
        try:
            async with self._http.get(url, headers={"Accept": "application/json"}, allow_redirects=False) as r:
                if r.status != 200:
                    raise ProviderUnavailable(f"the OIDC provider answered {r.status} for {url}")
                body = await r.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ProviderUnavailable(f"the OIDC provider's answer for {url} is too large")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ProviderUnavailable(f"the OIDC provider cannot be reached ({type(e).__name__})") from e
        try:
            return json.loads(body)
        except ValueError as e:
            raise ProviderUnavailable(f"the OIDC provider's answer for {url} is not JSON") from e

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            if self._failed is not None and time.monotonic() - self._failed[0] < FAILURE_BACKOFF_S:
                raise self._failed[1]
            try:
                doc = await self._get_json(self.settings.discovery_url)
                self._metadata = metadata_from_document(doc, self.settings.issuer)
            except ProviderUnavailable as e:
                self._failed = (time.monotonic(), e)
                raise
        return self._metadata

    async def _fetch_keys(self) -> KeySet:
        meta = await self.metadata()
        self._fetched_at = time.monotonic()
        self.jwks_fetches += 1
        keys = KeySet(await self._get_json(meta.jwks_uri))
        self._keys, self._keys_at, self._failed = keys, time.monotonic(), None
        log.info("OIDC keys fetched from %s: %d signing keys", meta.jwks_uri, len(keys))
        return keys

    async def keys(self, *, wanted_kid: str | None = None) -> KeySet:
        """The cached keys; fetched when stale, or when ``wanted_kid`` is missing (bounded)."""
        async with self._lock:
            now = time.monotonic()
            keys = self._keys
            if keys is None:
                if self._failed is not None and now - self._failed[0] < FAILURE_BACKOFF_S:
                    raise self._failed[1]
                try:
                    return await self._fetch_keys()
                except ProviderUnavailable as e:
                    self._failed = (time.monotonic(), e)
                    raise
            stale = now - self._keys_at > self.keys_ttl_s
            missing = wanted_kid is not None and wanted_kid not in keys
            if (stale or missing) and now - self._fetched_at >= self.refresh_min_s:
                try:
                    return await self._fetch_keys()
                except ProviderUnavailable as e:
                    log.warning("OIDC keys not refreshed, the ones fetched before stay in use: %s", e)
            return keys

    async def verify(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """The verified claims of ``token`` (for ``audience``, by default the configured one);
        raises TokenRejected or ProviderUnavailable."""
        kid = token_kid(token)
        keys = await self.keys(wanted_kid=kid)
        s = self.settings
        return verify_jwt(token, keys, issuer=s.issuer, audience=audience or s.expected_audience, leeway_s=s.leeway_s)

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code (PKCE); raises TokenRejected."""
        meta = await self.metadata()
        if not meta.token_endpoint:
            raise ProviderUnavailable("the OIDC provider names no token endpoint")
        await self.start()
        assert self._http is not None
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        if self.settings.client_secret:  # client_secret_basic (RFC 6749 2.3.1: each part form-encoded)
            pair = f"{quote(self.settings.client_id, safe='')}:{quote(self.settings.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            async with self._http.post(meta.token_endpoint, data=form, headers=headers, allow_redirects=False) as r:
                body: Any = None
                with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
                    body = await r.json(content_type=None)
                if r.status != 200 or not isinstance(body, dict):
                    detail = body.get("error") if isinstance(body, dict) else r.status
                    raise TokenRejected(f"the provider refused the sign-in code ({detail})", "sign_in_failed")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ProviderUnavailable(f"the OIDC provider cannot be reached ({type(e).__name__})") from e
        return body


__all__ = ["OidcProvider", "ProviderMetadata", "metadata_from_document"]
