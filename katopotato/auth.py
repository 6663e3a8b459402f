"""Bearer tokens and scopes.

A token is ``kp_<id>_<secret>``; only its SHA-256 is stored (the secret has 256 bits of entropy,
so a slow hash adds nothing). A token carries scopes and nothing else: no scope, no access.
``admin`` allows everything. ``COUCHPOTATO_API_TOKEN`` names one more admin token, compared by
hash in memory and never written anywhere. On a start without it and without any active admin
token, the service creates one and shows it once.

A token may expire (``expires_at``; API tokens made without one never do). A console sign-in
with OIDC is a token too (``kind="console"``, the user's ``subject``, a few hours' expiry): its
secret lives only in the browser's HttpOnly cookie, and signing out revokes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from .db import Database, TokenRow
from .errors import InvalidScope

SCOPES: tuple[str, ...] = (
    "sessions:read",
    "sessions:write",
    "search",
    "jobs:read",
    "jobs:write",
    "metrics",
    "admin",
)
ADMIN = "admin"
TOKEN_PREFIX = "kp_"
ENV_TOKEN_ID = "env"
KIND_API = "api"
KIND_CONSOLE = "console"
KIND_OIDC = "oidc"  # a bearer JWT of the OIDC provider (never stored)
CACHE_TTL_S = 10.0  # a revoked token may still work this long in a running service


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's id and name, and what it may do.

    Attributes:
        token_id: the API token's id, the console sign-in's id, or ``oidc:<subject>`` for a JWT.
        name: the token's name, or the user's display name.
        scopes: what it may do.
        kind: ``api`` (an API token), ``console`` (a console sign-in), ``oidc`` (a bearer JWT).
        subject: the OIDC subject behind it ("" for API tokens).
        email: the user's email, when known.
    """

    token_id: str
    name: str
    scopes: frozenset[str]
    kind: str = KIND_API
    subject: str = ""
    email: str = ""

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None
    expires_at: float | None = None
    kind: str = KIND_API
    subject: str = ""

    def active(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_scopes(scopes: Iterable[str], extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Validated, de-duplicated scopes in canonical order (the host's, then ``extra``: the
    plugins' scopes, sorted); raises InvalidScope."""
    known = (*SCOPES, *sorted(set(extra) - set(SCOPES)))
    wanted = {s.strip() for s in scopes if s.strip()}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise InvalidScope(f"unknown scope {', '.join(unknown)}; scopes are {', '.join(known)}")
    if not wanted:
        raise InvalidScope(f"a token needs at least one scope ({', '.join(known)})")
    return tuple(s for s in known if s in wanted)


class TokenStore:
    """Creates, lists, revokes and checks tokens.

    Attributes:
        env_token: the admin token from ``COUCHPOTATO_API_TOKEN`` ("" when unset).
        extra_scopes: the plugins' scopes, which tokens may carry besides the host's.
    """

    def __init__(self, db: Database, env_token: str = "", extra_scopes: Iterable[str] = ()) -> None:
        self.db = db
        self.extra_scopes = tuple(extra_scopes)
        self._env_hash = hash_token(env_token) if env_token else ""
        self._cache: dict[str, tuple[float, Principal | None, float | None]] = {}

    async def create(
        self,
        scopes: Iterable[str],
        name: str = "",
        *,
        expires_in_s: float | None = None,
        kind: str = KIND_API,
        subject: str = "",
    ) -> tuple[str, TokenInfo]:
        """A new token: returns its secret form (shown once) and what is stored about it."""
        checked = check_scopes(scopes, self.extra_scopes)
        if expires_in_s is not None and expires_in_s <= 0:
            raise InvalidScope("a token's expiry must be in the future")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        expires_at = now + expires_in_s if expires_in_s is not None else None
        async with self.db.write() as conn:
            await conn.execute(
                insert(TokenRow).values(
                    id=token_id,
                    name=name,
                    hash=hash_token(token),
                    scopes=list(checked),
                    created_at=now,
                    expires_at=expires_at,
                    kind=kind,
                    subject=subject,
                )
            )
        return token, TokenInfo(token_id, name, checked, now, None, expires_at, kind, subject)

    async def ensure_admin(self) -> str | None:
        """On a start without ``COUCHPOTATO_API_TOKEN`` and with no active admin token, make one.

        Returns the new token's secret (to be shown once), or None when nothing was made.
        """
        if self._env_hash:
            return None
        for info in await self.list():
            if info.active() and info.kind == KIND_API and ADMIN in info.scopes:
                return None
        token, _ = await self.create([ADMIN], name="generated on first start")
        return token

    async def list(self) -> list[TokenInfo]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(TokenRow.__table__).order_by(TokenRow.created_at))).all()
        return [
            TokenInfo(r.id, r.name, tuple(r.scopes), r.created_at, r.revoked_at, r.expires_at, r.kind, r.subject)
            for r in rows
        ]

    async def revoke(self, token_id: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(TokenRow)
                .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        self._cache.clear()
        return bool(getattr(result, "rowcount", 0))

    async def authenticate(self, token: str) -> Principal | None:
        """The principal of a presented token, or None when it is unknown, revoked or expired."""
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        if self._env_hash and hmac.compare_digest(digest, self._env_hash):
            return Principal(ENV_TOKEN_ID, "COUCHPOTATO_API_TOKEN", frozenset({ADMIN}))
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            expires_at = cached[2]
            return cached[1] if expires_at is None or expires_at > time.time() else None
        async with self.db.read() as conn:
            row = (await conn.execute(select(TokenRow.__table__).where(TokenRow.hash == digest))).one_or_none()
        principal, expires_at = None, None
        if row is not None and row.revoked_at is None:
            principal = Principal(row.id, row.name, frozenset(row.scopes), row.kind, row.subject)
            expires_at = row.expires_at
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, principal, expires_at)
        return principal if expires_at is None or expires_at > time.time() else None


__all__ = [
    "ADMIN",
    "KIND_API",
    "KIND_CONSOLE",
    "KIND_OIDC",
    "SCOPES",
    "InvalidScope",
    "Principal",
    "TokenInfo",
    "TokenStore",
    "check_scopes",
    "hash_token",
]
