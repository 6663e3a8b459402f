"""``katopotato tokens create --scope … [--name …]``, ``tokens list``, ``tokens revoke ID``.

Works on the service's database directly (running service or not): ``create`` prints the token,
alone on stdout, once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

from ..auth import SCOPES, InvalidScope, TokenStore, check_scopes
from ..db import Database
from ..errors import ConfigError
from ..plugin_host import load_plugins
from ..settings import Settings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("tokens", help="create, list and revoke API tokens", description=__doc__)
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file (also $COUCHPOTATO_CONFIG)")
    sub = p.add_subparsers(dest="tokens_command", required=True)
    c = sub.add_parser("create", help="create a token and print it once")
    c.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="SCOPE",
        help=f"a scope (repeat, or comma-separate): {', '.join(SCOPES)}, or an installed plugin's (sms:text…)",
    )
    c.add_argument("--name", default="", help="what the token is for")
    c.add_argument(
        "--expires-in-days", type=float, default=None, metavar="DAYS", help="the token stops working after this long"
    )
    c.set_defaults(handler=create)
    ls = sub.add_parser("list", help="list tokens (never their secrets)")
    ls.set_defaults(handler=list_tokens)
    r = sub.add_parser("revoke", help="revoke a token by id")
    r.add_argument("id")
    r.set_defaults(handler=revoke)


def _plugin_scopes() -> tuple[str, ...]:
    """The installed plugins' scopes (``sms:text``…), which tokens may carry too."""
    return tuple(load_plugins().scopes())


def _store(args: argparse.Namespace) -> tuple[Database, TokenStore]:
    settings = Settings.load(config=args.config)
    return (db := Database(settings.database_url)), TokenStore(db, extra_scopes=_plugin_scopes())


async def create(args: argparse.Namespace) -> int:
    try:
        scopes = check_scopes((s for arg in args.scope for s in arg.split(",")), _plugin_scopes())
        if args.expires_in_days is not None and args.expires_in_days <= 0:
            raise InvalidScope("--expires-in-days must be positive")
    except InvalidScope as e:
        raise ConfigError(str(e)) from e
    expires_in_s = args.expires_in_days * 86400 if args.expires_in_days is not None else None
    db, store = _store(args)
    try:
        await db.start(load_plugins().migrations())  # as the service migrates it: a plugin's branch too
        token, info = await store.create(scopes, name=args.name, expires_in_s=expires_in_s)
    finally:
        await db.close()
    print(token)
    print(
        f"katopotato: token {info.id} with scopes {', '.join(info.scopes)}; shown once, keep it now",
        file=sys.stderr,
    )
    return 0


async def list_tokens(args: argparse.Namespace) -> int:
    db, store = _store(args)
    try:
        await db.start(load_plugins().migrations())
        infos = await store.list()
    finally:
        await db.close()
    for i in infos:
        created = datetime.datetime.fromtimestamp(i.created_at, datetime.UTC).strftime("%Y-%m-%d %H:%M")
        state = "revoked" if i.revoked_at else ("active" if i.active() else "expired")
        expires = ""
        if i.expires_at is not None:
            expires = (
                " (expires "
                + datetime.datetime.fromtimestamp(i.expires_at, datetime.UTC).strftime("%Y-%m-%d %H:%M")
                + ")"
            )
        print(f"{i.id}  {state:7}  {created}  {','.join(i.scopes):40}  {i.kind:7}  {i.name}{expires}")
    return 0


async def revoke(args: argparse.Namespace) -> int:
    db, store = _store(args)
    try:
        await db.start(load_plugins().migrations())
        done = await store.revoke(args.id)
    finally:
        await db.close()
    if not done:
        print(f"katopotato: error: no active token {args.id!r}", file=sys.stderr)
        return 1
    print(f"katopotato: token {args.id} revoked (a running service stops accepting it within 10 s)", file=sys.stderr)
    return 0
