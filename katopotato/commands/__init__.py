"""Subcommands of the ``katopotato`` console script, one module each.

``katopotato.cli`` loads every module of this package that exposes
``register(subparsers: argparse._SubParsersAction) -> None``. ``register`` adds its parser and
sets a handler with ``parser.set_defaults(handler=fn)``, where ``fn(args) -> int`` returns the exit
status (it may also return an awaitable of one, which the CLI runs with ``asyncio.run``). A handler
reports expected failures by raising ``katopotato.errors.KatoPotatoError`` or
``couchpotato.errors.CouchPotatoError``: the CLI prints one line and exits non-zero.
"""
