"""People signed in with OIDC: a bearer JWT made into a ``Principal``, a console sign-in made into
an ``Identity``, and the ``users`` table (who signed in, and the groups assigned to them here).

The first (successful) console sign-in of a user can assign a configured group (``first_login_group``, e.g. the
SMS plugin's texters): it is stored with the user, and counts like a group their tokens name, for
the console and for their bearer JWTs alike. A bearer JWT never creates a user.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from .auth import KIND_OIDC, Principal
from .db import Database, UserRow
from .errors import InvalidScope, TokenRejected
from .oidc import Identity, OidcProvider, OidcSettings, groups_of, identity_from_claims

log = logging.getLogger(__name__)
ASSIGNED_CACHE_S = 10.0


def user_id(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class UserInfo:
    """A stored user."""

    id: str
    subject: str
    email: str
    name: str
    groups: tuple[str, ...]
    assigned_groups: tuple[str, ...]
    created_at: float
    last_login_at: float | None


class Identities:
    """Verifies the provider's tokens and keeps the users table."""

    def __init__(self, settings: OidcSettings, db: Database, provider: OidcProvider | None = None) -> None:
        self.settings = settings
        self.db = db
        self.provider = provider or OidcProvider(settings)
        self._assigned: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def start(self) -> None:
        await self.provider.start()

    async def close(self) -> None:
        await self.provider.close()

    async def _assigned_groups(self, uid: str) -> tuple[str, ...]:
        now = time.monotonic()
        cached = self._assigned.get(uid)
        if cached is not None and now - cached[0] < ASSIGNED_CACHE_S:
            return cached[1]
        async with self.db.read() as conn:
            row = (await conn.execute(select(UserRow.assigned_groups).where(UserRow.id == uid))).one_or_none()
        groups = tuple(row[0]) if row is not None else ()
        if len(self._assigned) > 10_000:
            self._assigned.clear()
        self._assigned[uid] = (now, groups)
        return groups

    def _identity(self, claims: dict[str, object], extra: tuple[str, ...]) -> Identity:
        s = self.settings
        return identity_from_claims(
            claims, s.group_scopes, groups_claim=s.groups_claim, allowed_domains=s.allowed_domains, extra_groups=extra
        )

    async def principal_for_jwt(self, token: str) -> Principal:
        """The principal of a bearer JWT; raises TokenRejected (401), NotPermitted (403) or
        ProviderUnavailable."""
        claims = await self.provider.verify(token)
        extra = await self._assigned_groups(user_id(str(claims["iss"]), str(claims["sub"])))
        who = self._identity(claims, extra)
        return Principal(f"oidc:{who.subject}"[:64], who.name, who.scopes, KIND_OIDC, who.subject, who.email)

    async def sign_in(self, id_token: str, nonce: str) -> Identity:
        """A console sign-in: the ID token (for the console's client) checked, its nonce matched,
        the user recorded (with the first-login group on their first sign-in), their scopes mapped."""
        claims = await self.provider.verify(id_token, audience=self.settings.client_id)
        if claims.get("nonce") != nonce:
            raise TokenRejected("the sign-in's nonce does not match", "sign_in_failed")
        iss, sub = str(claims["iss"]), str(claims["sub"])
        uid = user_id(iss, sub)
        now = time.time()
        token_groups = self._identity_groups(claims)
        email = str(claims.get("email") or "")
        name = str(claims.get("name") or claims.get("preferred_username") or "")
        async with self.db.write() as conn:
            row = (await conn.execute(select(UserRow.assigned_groups).where(UserRow.id == uid))).one_or_none()
            first = row is None
            if row is not None:
                assigned = list(row[0])
            else:
                assigned = [self.settings.first_login_group] if self.settings.first_login_group else []
            who = self._identity(claims, tuple(assigned))  # NotPermitted: a refused sign-in records nothing
            if first:
                values = {"id": uid, "issuer": iss, "subject": sub, "assigned_groups": assigned, "created_at": now}
                await conn.execute(
                    insert(UserRow).values(**values, email=email, name=name, groups=token_groups, last_login_at=now)
                )
                if assigned:
                    log.info("first sign-in of %s: assigned group %s", sub, assigned[0])
            else:
                await conn.execute(
                    update(UserRow)
                    .where(UserRow.id == uid)
                    .values(groups=token_groups, email=email, name=name, last_login_at=now)
                )
        self._assigned.pop(uid, None)
        return who

    def _identity_groups(self, claims: dict[str, object]) -> list[str]:
        return groups_of(claims, self.settings.groups_claim)

    async def assign(self, uid: str, groups: list[str]) -> UserInfo | None:
        """Give a user these groups here (replacing the ones given before); None when there is no
        such user. Raises InvalidScope for a group the group map does not know."""
        unknown = sorted(set(groups) - set(self.settings.group_scopes))
        if unknown:
            known = ", ".join(self.settings.group_scopes) or "none"
            raise InvalidScope(f"unknown group {', '.join(unknown)}; the groups are {known}")
        async with self.db.write() as conn:
            result = await conn.execute(
                update(UserRow).where(UserRow.id == uid).values(assigned_groups=list(dict.fromkeys(groups)))
            )
        self._assigned.pop(uid, None)
        if not getattr(result, "rowcount", 0):
            return None
        found = await self.users(uid)
        return found[0] if found else None

    async def user(self, subject: str) -> UserInfo | None:
        """The user with this subject at the configured issuer."""
        found = await self.users(user_id(self.settings.issuer, subject))
        return found[0] if found else None

    async def users(self, uid: str | None = None) -> list[UserInfo]:
        query = select(UserRow.__table__).order_by(UserRow.created_at)
        if uid is not None:
            query = query.where(UserRow.id == uid)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            UserInfo(
                r.id,
                r.subject,
                r.email,
                r.name,
                tuple(r.groups),
                tuple(r.assigned_groups),
                r.created_at,
                r.last_login_at,
            )
            for r in rows
        ]


__all__ = ["Identities", "UserInfo", "user_id"]
