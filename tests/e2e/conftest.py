"""End-to-end helpers: run the real ``couchpotato`` CLI as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CLI = Path(sys.executable).with_name("couchpotato")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def text(self) -> str:
        return " ".join(e["text"] for e in self.events() if e.get("type") == "segment")


def couchpotato(*args: str, allow: str | None = "127.0.0.0/8", stdin: bytes | None = None, timeout: float = 240) -> Run:
    env = dict(os.environ)
    env.pop("COUCHPOTATO_URL_ALLOWLIST", None)
    if allow is not None:
        env["COUCHPOTATO_URL_ALLOWLIST"] = allow
    p = subprocess.run([str(CLI), *args], input=stdin, capture_output=True, timeout=timeout, env=env, check=False)
    return Run(p.returncode, p.stdout.decode(), p.stderr.decode())


@pytest.fixture
def cli() -> Any:
    if not CLI.exists():
        pytest.skip(f"{CLI} not installed (run make install)")
    return couchpotato
