"""Run ``couchpotato`` from another checkout of the code (a before/after comparison).

    .venv/bin/python benchmarks/checkout_cli.py CHECKOUT transcribe FILE …

``PYTHONPATH=CHECKOUT`` is not enough: the project is installed in editable mode, and setuptools'
editable finder sits on ``sys.meta_path`` ahead of the path entries, so ``import couchpotato``
would still load this checkout. This drops that finder, puts CHECKOUT first, and checks where
``couchpotato`` came from before running its CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    checkout = Path(sys.argv[1]).resolve()
    if not (checkout / "couchpotato" / "__init__.py").is_file():
        raise SystemExit(f"{checkout} is not a checkout of CouchPotato (no couchpotato/__init__.py)")
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, str(checkout))
    import couchpotato

    where = Path(couchpotato.__file__).resolve()
    if checkout not in where.parents:
        raise SystemExit(f"couchpotato was imported from {where}, not from {checkout}")
    from couchpotato.cli import main as cli

    sys.argv = ["couchpotato", *sys.argv[2:]]
    sys.exit(cli())


if __name__ == "__main__":
    main()
